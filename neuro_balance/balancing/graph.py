"""The cost graph: a network's parameters aggregated per pair of units (ARCHITECTURE.md, "The one idea").

For a cost with terms ``alpha_t |w|**p_t`` the total cost after scaling by log-scales ``u`` is::

    F(u) = sum_t alpha_t sum_(j->i) K_t[i, j] * exp(p_t * (u_i - c_j * u_j))

where ``K_t[i, j]`` sums ``|w|**p_t`` over every parameter between unit j and unit i (a dense weight,
a kernel slice, a bias from the ground unit), and ``c_j`` is the degree of unit j. For L-infinity,
``K[i, j]`` is the largest ``|w|`` and sums become maxima. Balancing, the global solver and the
metrics all work on this graph, never on single synapses, and scale the weights once at the end.

Units of a population may be tied into groups that share one scale (`build_graph` ``tie=``); the
graph is then built over groups. Parameters joining two units of one group (self-loops, and edges
within a tied layer) are kept apart as ``loops``: they scale by ``exp(p (1 - c) u)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .arena import empty_like_all
from .costs import Cost
from .flat import FlatGraph, Point, balance_sides
from ..model.kinds import get_kind
from ..model.network import Network

__all__ = ["Block", "CostGraph", "build_graph", "cost_shift", "shifted_cost", "TIES"]

TIES = (None, "channel", "layer")


@dataclass
class Block:
    """Aggregated cost of every parameter from population ``pre`` to population ``post``."""

    post: str
    pre: str
    K: list[np.ndarray]  # one (n_post, n_pre) array per cost term; loops removed from self-blocks


@dataclass
class CostGraph:
    """The cost graph of a network for one cost (see the module docstring).

    Attributes
    ----------
    cost : Cost
    sizes : dict
        Number of units (scale groups) per population.
    degree : dict
        Degree ``c`` per population (1 for ground populations).
    free : dict
        Boolean mask per population: the units balancing may scale.
    dead : dict
        Boolean mask per population: balanced units with zero in- or out-cost, never scaled.
    pinned : dict
        Boolean mask per population: one unit per ground-less component, held fixed so the
        component's common factor is defined (the component is still balanced exactly).
    unbounded : dict
        Boolean mask: units of ground-less components whose cost has no minimum (BiPU cycles).
    blocks, bias, loops
        Aggregated costs: per block, per population's bias and per population's loops, one array
        per cost term.
    tie_index : dict
        Group of every unit of the network per population (identity without ties).
    """

    cost: Cost
    sizes: dict[str, int]
    degree: dict[str, float]
    free: dict[str, np.ndarray]
    dead: dict[str, np.ndarray]
    pinned: dict[str, np.ndarray]
    unbounded: dict[str, np.ndarray]
    blocks: list[Block]
    bias: dict[str, list[np.ndarray]]
    loops: dict[str, list[np.ndarray]]
    tie_index: dict[str, np.ndarray]
    shift: int = 0  # K is the cost of the parameters times 2**-shift (`cost_shift`)
    log_unit: float = 0.0  # log of the factor from the graph's costs to the parameters' (`shifted_cost`)
    lossy: list[str] = field(default_factory=list)  # parameters whose |w|**p is below float64's normal range
    # Per projection name and per population bias ("bias of NAME"): the largest |w| and the smallest (0 when
    # some parameter is 0), read from term 0's |w|**p on the way (`verify.within_range` bounds the scaled ones)
    magnitudes: dict[str, tuple[float, float]] = field(default_factory=dict)
    exponents: tuple[float, ...] = field(init=False)
    alphas: tuple[float, ...] = field(init=False)
    linf: bool = field(init=False)  # sums are maxima (L-infinity)
    origin: Point | None = field(default=None, init=False, repr=False)  # `FlatGraph.evaluate` at u = 0

    def __post_init__(self) -> None:
        self.alphas = tuple(alpha for alpha, _ in self.cost.terms)
        self.exponents = tuple(1.0 if math.isinf(p) else p for _, p in self.cost.terms)
        self.linf = self.cost.is_linf

    @property
    def n_terms(self) -> int:
        return len(self.cost.terms)

    @property
    def n_free(self) -> int:
        """Number of units balancing scales."""
        return int(sum(m.sum() for m in self.free.values()))

    def zeros(self) -> dict[str, np.ndarray]:
        """Zero log-scales for every population."""
        return {name: np.zeros(n) for name, n in self.sizes.items()}

    def expand(self, u: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Log-scales of the network's units from log-scales of the graph's (tied) units."""
        return {name: u[name][idx] for name, idx in self.tie_index.items()}

    # ---------------------------------------------------------------- evaluation
    @cached_property
    def flat(self) -> FlatGraph:
        """The graph laid out over one vector of units (`FlatGraph`); built once (its masks read again by `build_graph`)."""
        return FlatGraph(self)

    def unit_costs(self, u: dict[str, np.ndarray], point: Point | None = None
                   ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per population, arrays ``A, B, S`` of shape ``(n_terms, size)`` at log-scales ``u``.

        ``A`` is the in-cost (bias included if the cost says so), ``B`` the out-cost, both without
        loops; ``S`` is the loop cost. Under L-infinity they are maxima. ``point`` reuses a
        `FlatGraph.evaluate` at the same ``u`` (at ``u = 0``, the one made when the graph was built).
        """
        pt = self.evaluate(u) if point is None else point
        return {name: (pt.A[:, sl], pt.B[:, sl], pt.S[:, sl]) for name, sl in self.flat.slices.items()}

    def evaluate(self, u: dict[str, np.ndarray]) -> Point:
        """`FlatGraph.evaluate` at log-scales ``u`` (at ``u = 0``: the point made when the graph was built)."""
        x = self.flat.pack(u)
        return self.origin if self.origin is not None and not x.any() else self.flat.evaluate(x)

    def total_cost(self, u: dict[str, np.ndarray], costs=None) -> float:
        """``F(u)``: the cost of all parameters after scaling (the maximum under L-infinity)."""
        costs = self.unit_costs(u) if costs is None else costs
        if self.linf:
            return float(max(max(A.max(initial=0.0), S.max(initial=0.0)) for A, _, S in costs.values()))
        return float(sum(np.dot(self.alphas, A.sum(axis=1) + S.sum(axis=1)) for A, _, S in costs.values()))


def cost_shift(net: Network, cost: Cost) -> int:
    """The power of two ``shift`` by which the costs divide every parameter before ``|w|**p``: the largest
    ``|w|`` then lies in ``[1/2, 1)`` and no ``|w|**p`` overflows (see `shifted_cost`)."""
    arrays = [proj.weight for proj in net.projections]
    if cost.include_bias:
        arrays += [pop.bias for pop in net.populations.values() if pop.bias is not None]
    largest = max((max(float(a.max()), -float(a.min())) for a in arrays if a.size), default=0.0)
    if not 0.0 < largest < math.inf:
        return 0
    return math.frexp(largest)[1]


def shifted_cost(cost: Cost, shift: int) -> tuple[Cost, float]:
    """The cost whose graph, built for ``w * 2**-shift``, has the balanced state of ``cost`` on ``w``; and the log
    of the factor from its values to those of ``cost``.

    A term ``alpha |w|**p`` is ``alpha 2**(p shift) |w 2**-shift|**p``: the coefficients become
    ``alpha_t 2**(p_t shift)``, divided by their largest (the factor) so they stay in float64. The
    cost is then that factor times the graph's at every log-scale, so the minimiser is the same. A
    term whose coefficient falls below float64 next to another's weighs less than 1e-308 of it and
    is left out (the minimiser moves by as little).
    """
    logs = [math.log(alpha) + p * shift * math.log(2.0) for alpha, p in cost.terms]
    top = max(logs)
    terms = tuple((math.exp(x - top), p) for x, (_, p) in zip(logs, cost.terms))
    return Cost(tuple(t for t in terms if t[0] > 0.0), cost.include_bias), top


def _needs_shift(cost: Cost, found: dict[str, tuple[float, float]], lossy: list[str], overflowed: list) -> bool:
    """Whether some ``|w|**p`` overflowed, or term 0's largest (``found``: per array, the largest and smallest)
    leaves ``[2**-256, 2**256]``, or every one underflowed to 0 while some parameter is not 0 (not for
    L-infinity, whose costs are ``|w|`` itself)."""
    if cost.is_linf:
        return False
    top = max((hi for hi, _ in found.values()), default=0.0)
    return bool(overflowed) or (bool(lossy) if top == 0 else abs(math.log2(top)) > 256)


def _scan(K: np.ndarray, w: np.ndarray, where: str, lossy: list[str]) -> tuple[float, float]:
    """The largest and smallest ``|w|**p`` in ``K``; ``where`` goes into ``lossy`` if a nonzero ``w`` fell below
    float64's normal range there. Two passes over ``K`` (a third over ``w`` only when something is that small)."""
    top, bottom = float(K.max(initial=0.0)), float(K.min(initial=math.inf))
    if bottom < np.finfo(float).tiny and np.count_nonzero(K >= np.finfo(float).tiny) < np.count_nonzero(w):
        lossy.append(where)
    return top, bottom


def _magnitudes(cost: Cost, found: dict[str, tuple[float, float]], shift: int) -> dict[str, tuple[float, float]]:
    """Largest and smallest ``|w|`` from those of term 0's ``|(w * 2**-shift)|**p``."""
    p = 1.0 if cost.is_linf else cost.terms[0][1]
    with np.errstate(over="ignore", divide="ignore"):
        return {key: tuple(math.ldexp(float(np.float64(k) ** (1.0 / p)), shift) if math.isfinite(k) else math.inf
                           for k in pair) for key, pair in found.items()}


def _aggregate(values: np.ndarray, post_idx: np.ndarray, pre_idx: np.ndarray, n_post: int, n_pre: int,
               linf: bool) -> np.ndarray:
    """Sum (or max) ``values`` into an ``(n_post, n_pre)`` array by the parameters' unit indices."""
    if _one_per_pair(values.shape, post_idx, pre_idx, n_post, n_pre):
        return np.array(values, copy=True) if values.base is not None else values
    post_idx = np.broadcast_to(post_idx, values.shape)
    pre_idx = np.broadcast_to(pre_idx, values.shape)
    flat = (post_idx * n_pre + pre_idx).ravel()
    if linf:
        K = np.zeros(n_post * n_pre)
        np.maximum.at(K, flat, values.ravel())
        return K.reshape(n_post, n_pre)
    return np.bincount(flat, weights=values.ravel(), minlength=n_post * n_pre).reshape(n_post, n_pre)


def _one_per_pair(shape: tuple, post_idx: np.ndarray, pre_idx: np.ndarray, n_post: int, n_pre: int) -> bool:
    """Whether parameters of ``shape`` with these unit indices are one per (post, pre) pair, in order."""
    if shape != (n_post, n_pre) or post_idx.ndim != 2 or pre_idx.ndim != 2:
        return False
    rows, cols = post_idx[:, 0], pre_idx[0]  # the indices broadcast along the other axis
    return len(rows) == n_post and len(cols) == n_pre and bool((rows == np.arange(n_post)).all()) \
        and bool((cols == np.arange(n_pre)).all())


def _tie_groups(net: Network, name: str, tie: str | None) -> np.ndarray:
    pop = net.populations[name]
    if tie == "layer" and pop.balanced:
        return np.zeros(pop.size, dtype=np.intp)
    if tie == "channel" and pop.balanced and pop.shape is not None and pop.size == pop.n_features:
        return np.arange(pop.size) // (pop.shape[1] * pop.shape[2])
    return np.arange(pop.size)


def _coarsen(K: np.ndarray, rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int,
             linf: bool) -> np.ndarray:
    if len(rows) == n_rows and len(cols) == n_cols:
        return K
    return _aggregate(K, rows[:, None], cols[None, :], n_rows, n_cols, linf)


def build_graph(net: Network, cost: Cost, tie: str | None = None) -> CostGraph:
    """Aggregate a network's parameters into its `CostGraph` for ``cost``.

    Parameters
    ----------
    net : Network
    cost : Cost
    tie : {None, "channel", "layer"}
        None: every unit has its own scale. ``"layer"``: one scale per balanced population.
        ``"channel"``: one scale per channel of feature maps whose positions are separate units.

    Returns
    -------
    CostGraph
        When some ``|w|**p`` would leave float64 (or the largest lies outside ``2**±256``), its costs
        are those of ``w * 2**-shift`` under `shifted_cost` (same balanced state), and
        ``exp(graph.log_unit)`` times them are the parameters' costs.
    """
    graph = _build(net, cost, tie, 0)
    if graph is None:  # |w|**p of the largest parameter far from 1: the costs of w * 2**-shift
        shift = cost_shift(net, cost)
        scaled, log_unit = shifted_cost(cost, shift)
        graph = _build(net, scaled, tie, shift)
        graph.log_unit = log_unit
    return graph


def _build(net: Network, cost: Cost, tie: str | None, shift: int) -> CostGraph | None:
    """`build_graph` for the parameters times ``2**-shift``; None when ``shift=0`` and a shift is needed (`_needs_shift`)."""
    if tie not in TIES:
        raise ValueError(f"tie must be one of {TIES}, got {tie!r}")
    linf = cost.is_linf
    n_terms = len(cost.terms)
    tie_index = {name: _tie_groups(net, name, tie) for name in net.populations}
    sizes = {name: int(idx.max()) + 1 for name, idx in tie_index.items()}
    degree = {name: pop.degree for name, pop in net.populations.items()}
    combine = np.maximum if linf else np.add

    blocks: dict[tuple[str, str], Block] = {}
    loops: dict[str, list[np.ndarray]] = {}
    lossy: list[str] = []
    magnitudes: dict[str, tuple[float, float]] = {}
    overflowed: list[str] = []

    def scan(K: np.ndarray, w: np.ndarray, t: int, where: str, key: str) -> None:
        found = _scan(K, w, where, lossy)
        if not math.isfinite(found[0]):
            overflowed.append(where)
        if t == 0:
            magnitudes[key] = found
    groups = [get_kind(proj.kind).groups(proj, net.populations[proj.pre], net.populations[proj.post])
              for proj in net.projections]
    # Projections whose parameters are one per pair of units (plain dense ones, untied): K = |W|**p is
    # written once, straight into one allocation for all of them.
    direct = [_one_per_pair(proj.weight.shape, *idx, net.populations[proj.post].size, net.populations[proj.pre].size)
              and sizes[proj.post] == net.populations[proj.post].size and sizes[proj.pre] == net.populations[proj.pre].size
              for proj, idx in zip(net.projections, groups)]
    slots = iter(empty_like_all([proj.weight for proj, d in zip(net.projections, direct) if d for _ in range(n_terms)]))
    for proj, (post_idx, pre_idx), one in zip(net.projections, groups, direct):
        pre, post = net.populations[proj.pre], net.populations[proj.post]
        Ks = []
        for t in range(n_terms):
            with np.errstate(over="ignore"):  # an overflow makes `build_graph` build again, shifted
                values = cost.elementwise(proj.weight, t, out=next(slots) if one else None, shift=shift)
            scan(values, proj.weight, t, f"projection {proj.name!r}", proj.name)
            if one:
                Ks.append(values)
                continue
            K = _aggregate(values, post_idx, pre_idx, post.size, pre.size, linf)
            Ks.append(_coarsen(K, tie_index[post.name], tie_index[pre.name], sizes[post.name], sizes[pre.name], linf))
        if proj.pre == proj.post:
            diag = [np.diagonal(K).copy() for K in Ks]
            for K in Ks:
                np.fill_diagonal(K, 0.0)
            if proj.post in loops:
                loops[proj.post] = [combine(a, b) for a, b in zip(loops[proj.post], diag)]
            else:
                loops[proj.post] = diag
        key = (proj.post, proj.pre)
        if key in blocks:
            blocks[key].K = [combine(a, b) for a, b in zip(blocks[key].K, Ks)]
        else:
            blocks[key] = Block(proj.post, proj.pre, Ks)

    bias: dict[str, list[np.ndarray]] = {}
    if cost.include_bias:
        for name, pop in net.populations.items():
            if pop.bias is not None:
                terms = []
                for t in range(n_terms):
                    with np.errstate(over="ignore"):
                        values = cost.elementwise(pop.bias, t, shift=shift)
                    scan(values, pop.bias, t, f"population {name!r} bias", f"bias of {name}")
                    grouped = np.zeros(sizes[name])
                    (np.maximum.at if linf else np.add.at)(grouped, tie_index[name], values)
                    terms.append(grouped)
                bias[name] = terms

    if shift == 0 and _needs_shift(cost, magnitudes, lossy, overflowed):
        return None
    balanced = {name: np.full(sizes[name], pop.balanced) for name, pop in net.populations.items()}
    none = {name: np.zeros(n, dtype=bool) for name, n in sizes.items()}
    graph = CostGraph(cost, sizes, degree, balanced, none, dict(none), dict(none), list(blocks.values()),
                      bias, loops, tie_index, shift, 0.0, lossy, _magnitudes(cost, magnitudes, shift))
    _mark_dead_and_floating(graph)
    graph.flat.set_masks(graph)  # the masks are final only now
    return graph


def _mark_dead_and_floating(graph: CostGraph) -> None:
    """Mark dead units, then ground-less components (pinned, or unbounded for BiPU cycles)."""
    graph.origin = graph.flat.evaluate(np.zeros(graph.flat.n))
    costs = graph.unit_costs(graph.zeros(), graph.origin)
    n_blocks = len(graph.blocks)
    row_sums, col_sums = graph.origin.ins[:n_blocks], graph.origin.outs[:n_blocks]  # K @ 1, 1 @ K (term 0)

    def into(k: int, mask: np.ndarray) -> np.ndarray:
        """Post units of block k with a nonzero parameter from a unit in ``mask``."""
        return (row_sums[k] if mask.all() else graph.blocks[k].K[0] @ mask.astype(float)) > 0

    def out_of(k: int, mask: np.ndarray) -> np.ndarray:
        """Pre units of block k with a nonzero parameter to a unit in ``mask``."""
        return (col_sums[k] if mask.all() else mask.astype(float) @ graph.blocks[k].K[0]) > 0

    for name, (A, B, _) in costs.items():
        dead = graph.free[name] & ((A.sum(axis=0) == 0) | (B.sum(axis=0) == 0))
        graph.dead[name] = dead
        graph.free[name] = graph.free[name] & ~dead
    free = graph.free
    # A unit is grounded when a path of nonzero parameters joins it to a fixed unit or a bias.
    reached = {name: np.zeros(n, dtype=bool) for name, n in graph.sizes.items()}
    for name, terms in graph.bias.items():
        reached[name] |= free[name] & (terms[0] > 0)
    fixed = {name: ~m for name, m in free.items()}
    for k, blk in enumerate(graph.blocks):
        if fixed[blk.pre].any():
            reached[blk.post] |= free[blk.post] & into(k, fixed[blk.pre])
        if fixed[blk.post].any():
            reached[blk.pre] |= free[blk.pre] & out_of(k, fixed[blk.post])
    changed = True
    while changed and any((free[n] & ~reached[n]).any() for n in free):
        changed = False
        for k, blk in enumerate(graph.blocks):
            if (free[blk.post] & ~reached[blk.post]).any() and reached[blk.pre].any():
                new = free[blk.post] & ~reached[blk.post] & into(k, reached[blk.pre])
                if new.any():
                    reached[blk.post] |= new
                    changed = True
            if (free[blk.pre] & ~reached[blk.pre]).any() and reached[blk.post].any():
                new = free[blk.pre] & ~reached[blk.pre] & out_of(k, reached[blk.post])
                if new.any():
                    reached[blk.pre] |= new
                    changed = True
    floating = {name: free[name] & ~reached[name] for name in free}
    if not any(m.any() for m in floating.values()):
        return
    # Components of the floating units: few and small, so an explicit sparse graph is fine.
    names = list(graph.sizes)
    offset = dict(zip(names, np.cumsum([0] + [graph.sizes[n] for n in names[:-1]])))
    rows, cols = [], []
    for blk in graph.blocks:
        mask = np.outer(floating[blk.post], floating[blk.pre]) & (blk.K[0] > 0)
        i, j = np.nonzero(mask)
        rows.append(i + offset[blk.post])
        cols.append(j + offset[blk.pre])
    total = sum(graph.sizes.values())
    rows_a = np.concatenate(rows) if rows else np.zeros(0, dtype=int)
    cols_a = np.concatenate(cols) if cols else np.zeros(0, dtype=int)
    adjacency = coo_matrix((np.ones(len(rows_a)), (rows_a, cols_a)), shape=(total, total))
    _, labels = connected_components(adjacency, directed=False)
    flat_floating = np.concatenate([floating[n] for n in names])
    flat_degree = np.concatenate([np.full(graph.sizes[n], graph.degree[n]) for n in names])
    flat_pinned = np.zeros(total, dtype=bool)
    flat_unbounded = np.zeros(total, dtype=bool)
    for label in np.unique(labels[flat_floating]):
        members = np.flatnonzero((labels == label) & flat_floating)
        if np.all(flat_degree[members] == 1.0):
            flat_pinned[members[0]] = True
        else:
            flat_unbounded[members] = True
    for name in names:
        sl = slice(offset[name], offset[name] + graph.sizes[name])
        graph.pinned[name] = flat_pinned[sl]
        graph.unbounded[name] = flat_unbounded[sl]
        graph.free[name] = free[name] & ~flat_pinned[sl] & ~flat_unbounded[sl]


def balance_statistics(graph: CostGraph, costs) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per population, the two sides of the balance equation (theory eq 3.2).

    For Lp costs ``g_in = sum_t alpha_t p_t (A_t + S_t)`` and ``g_out = c * sum_t alpha_t p_t (B_t + S_t)``;
    a unit is balanced (the cost is stationary in its scale) exactly when ``g_in == g_out``. For pure
    BiLU Lp this is the paper's ``in-cost == out-cost``. Under L-infinity: the rising and falling
    maxima of `closed_form.linf_sides` (loops count on the side they move with).
    """
    w = np.asarray(graph.alphas) * np.asarray(graph.exponents)
    return {name: balance_sides(graph.linf, w, A, B, S, graph.degree[name]) for name, (A, B, S) in costs.items()}


def relative_imbalance(graph: CostGraph, costs) -> dict[str, np.ndarray]:
    """``|g_in - g_out| / max(g_in, g_out)`` per unit (NaN where not defined, e.g. dead units)."""
    out = {}
    for name, (gin, gout) in balance_statistics(graph, costs).items():
        top = np.maximum(gin, gout)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(top > 0, np.abs(gin - gout) / np.where(top > 0, top, 1.0), np.nan)
    return out


def max_imbalance(graph: CostGraph, costs) -> float:
    """The largest relative imbalance over the units balancing scales (0 if there are none)."""
    worst = 0.0
    for name, rel in relative_imbalance(graph, costs).items():
        mask = graph.free[name] | graph.pinned[name]
        if mask.any():
            worst = max(worst, float(np.max(rel[mask])))
    return worst
