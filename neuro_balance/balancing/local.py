"""Local balancing: one unit (or one colour class of units) at a time, on the cost graph.

Balancing unit i is the exact minimisation of the cost over its log-scale: the closed forms of
`closed_form` (theory eq 3.3; L-infinity with its loop term) and, for weighted sums of Lp terms or
BiPU units with loops, a 1-D convex minimisation. Every update reads
only the unit's own in- and out-costs. The schedules decide who balances next:

* ``random``: a fresh random permutation of the units each sweep (the paper's stochastic algorithm);
* ``cyclic`` / ``reverse``: the units in network order, or the reverse;
* ``colour``: colour classes of the shares-a-parameter graph, each balanced at once. Units of one class
  share no parameter, so this is exactly the sequential algorithm in a vectorised order.

All schedules work on log-scales ``u`` and never touch a weight; `scale` applies the result once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .closed_form import linf_log_step, loop_rate, lp_log_step
from .flat import cols_max, rows_max
from .graph import CostGraph, max_imbalance
from ..seeding import check_random_state

__all__ = ["SCHEDULES", "BalanceState", "optimal_log_step", "colour_classes", "unit_colours", "run_schedule"]

SCHEDULES = ("random", "cyclic", "reverse", "colour")
_LN2 = math.log(2.0)


def optimal_log_step(graph: CostGraph, degree: float, A: np.ndarray, B: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Log of the balancing factor for units with current costs ``A, B, S`` (each ``(n_terms, n)``).

    Minimises ``phi(d) = sum_t alpha_t (A_t e^{p_t d} + B_t e^{-c p_t d} + S_t e^{p_t (1-c) d})``.
    """
    c = degree
    if graph.linf:
        return linf_log_step(A[0], B[0], S[0], c)
    if graph.n_terms == 1 and (c == 1.0 or not S.any()):
        return lp_log_step(A[0], B[0], graph.exponents[0], c)
    return _convex_root(graph, c, A, B, S)


def _convex_root(graph: CostGraph, c: float, A: np.ndarray, B: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Safeguarded Newton on ``phi'(d) = 0``, vectorised over units (phi is strictly convex)."""
    alphas = np.asarray(graph.alphas)[:, None]
    ps = np.asarray(graph.exponents)[:, None]
    r = loop_rate(c)

    def derivatives(d):
        ea, eb, es = np.exp(ps * d), np.exp(-c * ps * d), np.exp(ps * r * d)
        g = (alphas * ps * (A * ea - c * B * eb + r * S * es)).sum(axis=0)
        h = (alphas * ps ** 2 * (A * ea + c * c * B * eb + r * r * S * es)).sum(axis=0)
        return g, h

    with np.errstate(divide="ignore", invalid="ignore"):
        single = lp_log_step(A, B, ps, c)
    single = np.where(np.isfinite(single), single, 0.0)
    lo, hi = single.min(axis=0) - 1.0, single.max(axis=0) + 1.0
    for _ in range(200):
        g_lo, _ = derivatives(lo)
        g_hi, _ = derivatives(hi)
        if np.all(g_lo < 0) and np.all(g_hi > 0):
            break
        lo = np.where(g_lo < 0, lo, lo - 2 * (hi - lo))
        hi = np.where(g_hi > 0, hi, hi + 2 * (hi - lo))
    d = 0.5 * (lo + hi)
    for _ in range(200):
        g, h = derivatives(d)
        lo = np.where(g < 0, d, lo)
        hi = np.where(g > 0, d, hi)
        step = d - g / h
        inside = (step > lo) & (step < hi)
        new = np.where(inside, step, 0.5 * (lo + hi))
        if np.all(np.abs(new - d) <= 1e-15 * np.maximum(1.0, np.abs(d))):
            return new
        d = new
    return d


def unit_colours(graph: CostGraph) -> dict[str, np.ndarray]:
    """A greedy colouring of the units of the shares-a-parameter graph.

    Populations are coloured greedily (two populations joined by a projection never share a
    colour); inside a population with internal edges (a recurrent projection onto itself) units
    are coloured greedily too. Colour ``k * m + j`` means population colour ``k`` and internal
    colour ``j``. Units with one colour never share a parameter.
    """
    names = list(graph.sizes)
    neighbours = {n: set() for n in names}
    internal = {}
    for blk in graph.blocks:
        nonzero = any(K.any() for K in blk.K)
        if blk.post == blk.pre:
            if nonzero:
                adj = np.zeros_like(blk.K[0], dtype=bool)
                for K in blk.K:
                    adj |= K > 0
                internal[blk.post] = adj | adj.T
        elif nonzero:
            neighbours[blk.post].add(blk.pre)
            neighbours[blk.pre].add(blk.post)
    pop_colour: dict[str, int] = {}
    for name in names:
        used = {pop_colour[m] for m in neighbours[name] if m in pop_colour}
        pop_colour[name] = next(k for k in range(len(names) + 1) if k not in used)
    inner = {}
    for name in names:
        colours = np.zeros(graph.sizes[name], dtype=np.intp)
        if name in internal:
            adj = internal[name]
            colours[:] = -1
            for i in range(graph.sizes[name]):
                taken = colours[adj[i]]
                free = np.ones(graph.sizes[name] + 1, dtype=bool)
                free[taken[taken >= 0]] = False
                colours[i] = int(np.argmax(free))
        inner[name] = colours
    width = max(int(c.max()) + 1 for c in inner.values())
    return {name: pop_colour[name] * width + inner[name] for name in names}


def colour_classes(graph: CostGraph) -> list[list[tuple[str, np.ndarray]]]:
    """Colour classes of free units, as lists of ``(population, unit indices)``."""
    colours = unit_colours(graph)
    classes: dict[int, list[tuple[str, np.ndarray]]] = {}
    for name, col in colours.items():
        for k in np.unique(col[graph.free[name]]):
            classes.setdefault(int(k), []).append((name, np.flatnonzero(graph.free[name] & (col == k))))
    return [classes[k] for k in sorted(classes)]


class BalanceState:
    """Log-scales ``u`` of a cost graph with cached ``exp`` factors for cheap local updates.

    In-costs read rows of each block's ``K`` (``K[idx] @ b``), out-costs its columns (``a @ K`` for a
    whole population, rows of a transposed copy made once on first use otherwise): a unit's update
    reads its fan-in and fan-out, nothing else.
    """

    def __init__(self, graph: CostGraph, u: dict[str, np.ndarray] | None = None) -> None:
        self.graph = graph
        self.u = {name: np.array(v, dtype=np.float64) for name, v in (u or graph.zeros()).items()}
        self._into = {name: [] for name in graph.sizes}
        self._from = {name: [] for name in graph.sizes}
        for blk in graph.blocks:
            self._into[blk.post].append((blk.pre, blk.K))
            self._from[blk.pre].append((blk.post, blk.K))
        self._transposed: dict[int, np.ndarray] = {}
        self._fast: dict[str, tuple | None] = {}
        self._ea, self._eb = [], []
        for p in graph.exponents:
            self._ea.append({n: np.exp(p * v) for n, v in self.u.items()})
            self._eb.append({n: np.exp(-p * graph.degree[n] * v) for n, v in self.u.items()})

    def _rows_of_transpose(self, K: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``K[:, idx].T`` as rows of a contiguous transposed copy of ``K`` (made once)."""
        KT = self._transposed.get(id(K))
        if KT is None:
            KT = self._transposed[id(K)] = np.ascontiguousarray(K.T)
        return KT[idx]

    def local_costs(self, name: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Current ``A, B, S`` (each ``(n_terms, len(idx))``) of units ``idx`` of population ``name``."""
        g = self.graph
        T = g.n_terms
        whole = len(idx) == g.sizes[name] and np.array_equal(idx, np.arange(len(idx)))
        A, B, S = np.zeros((T, len(idx))), np.zeros((T, len(idx))), np.zeros((T, len(idx)))
        agg = np.maximum if g.linf else np.add
        for t, p in enumerate(g.exponents):
            ea, eb = self._ea[t], self._eb[t]
            for pre, Ks in self._into[name]:
                K = Ks[t] if whole else Ks[t][idx]
                agg(A[t], rows_max(K, eb[pre]) if g.linf else K @ eb[pre], out=A[t])
            if name in g.bias:
                agg(A[t], g.bias[name][t][idx], out=A[t])
            A[t] *= ea[name][idx]
            for post, Ks in self._from[name]:
                if whole:
                    cols = cols_max(ea[post], Ks[t]) if g.linf else ea[post] @ Ks[t]
                else:
                    KT = self._rows_of_transpose(Ks[t], idx)
                    cols = rows_max(KT, ea[post]) if g.linf else KT @ ea[post]
                agg(B[t], cols, out=B[t])
            B[t] *= eb[name][idx]
            if name in g.loops:
                S[t] = g.loops[name][t][idx] * np.exp(p * loop_rate(g.degree[name]) * self.u[name][idx])
        return A, B, S

    def shift(self, name: str, idx: np.ndarray, delta: np.ndarray) -> None:
        """Add ``delta`` to the log-scales of units ``idx`` of ``name`` and refresh the caches."""
        u = self.u[name]
        u[idx] += delta
        c = self.graph.degree[name]
        for t, p in enumerate(self.graph.exponents):
            self._ea[t][name][idx] = np.exp(p * u[idx])
            self._eb[t][name][idx] = np.exp(-p * c * u[idx])

    def _fast_path(self, name: str) -> tuple | None:
        """What `balance_one` reads for a unit of ``name`` (one Lp or L-infinity term, no loop), or None."""
        if name not in self._fast:
            g = self.graph
            if g.n_terms != 1 or name in g.loops:
                self._fast[name] = None
            else:
                ea, eb = self._ea[0], self._eb[0]
                ins = [(Ks[0], eb[pre]) for pre, Ks in self._into[name]]
                outs = [(self._rows_of_transpose(Ks[0], slice(None)), ea[post]) for post, Ks in self._from[name]]
                bias = g.bias[name][0] if name in g.bias else None
                self._fast[name] = (ins, outs, bias, ea[name], eb[name], self.u[name], g.degree[name],
                                    g.exponents[0])
        return self._fast[name]

    def balance_one(self, name: str, i: int, fraction: float = 1.0, grid: str | None = None) -> float:
        """Balance the single unit ``i`` of ``name``; returns its log step.

        The common case (one term, no loop) reads row ``i`` of each incoming ``K`` and of each
        outgoing ``K``'s transpose as views and works on scalars: the stochastic algorithm's inner loop,
        O(fan-in + fan-out) per update.
        """
        fast = self._fast_path(name) if grid is None else None
        if fast is None:
            return float(self.balance(name, np.array([i]), fraction, grid)[0])
        ins, outs, bias, ea, eb, u, c, p = fast
        A = 0.0 if bias is None else bias[i]
        B = 0.0
        if self.graph.linf:
            for K, b in ins:
                A = max(A, (K[i] * b).max(initial=0.0))
            for KT, a in outs:
                B = max(B, (KT[i] * a).max(initial=0.0))
            delta = fraction * float(linf_log_step(A * ea[i], B * eb[i], None, c))
        else:
            for K, b in ins:
                A += K[i].dot(b)
            for KT, a in outs:
                B += KT[i].dot(a)
            delta = fraction * float(lp_log_step(A * ea[i], B * eb[i], p, c))
        ui = u[i] + delta
        u[i] = ui
        ea[i] = math.exp(p * ui)
        eb[i] = math.exp(-p * c * ui)
        return delta

    def balance(self, name: str, idx: np.ndarray, fraction: float = 1.0, grid: str | None = None) -> np.ndarray:
        """Balance units ``idx`` of ``name`` (which must share no parameter); returns the log steps."""
        A, B, S = self.local_costs(name, idx)
        c = self.graph.degree[name]
        delta = fraction * optimal_log_step(self.graph, c, A, B, S)
        if grid == "pow2":
            delta = _best_pow2_step(self.graph, c, A, B, S, delta)
        self.shift(name, idx, delta)
        if grid == "pow2":  # keep u an exact multiple of log 2, so the factors are exact powers of two
            self.u[name][idx] = np.round(self.u[name][idx] / _LN2) * _LN2
        return delta


def _phi(graph: CostGraph, c: float, A, B, S, d) -> np.ndarray:
    """The units' local cost after a log step ``d`` (L-infinity: the largest of in, out, loops)."""
    ps = np.asarray(graph.exponents)[:, None]
    parts = (A * np.exp(ps * d), B * np.exp(-c * ps * d), S * np.exp(ps * loop_rate(c) * d))
    if graph.linf:
        return np.maximum(np.maximum(parts[0], parts[1]), parts[2])[0]
    alphas = np.asarray(graph.alphas)[:, None]
    return (alphas * (parts[0] + parts[1] + parts[2])).sum(axis=0)


def _best_pow2_step(graph: CostGraph, c: float, A, B, S, delta) -> np.ndarray:
    """The power-of-two step (multiple of log 2) nearest the optimum with the lowest cost.

    Candidates are the two grid points around ``delta`` and 0, so the cost never increases and a
    unit already at its best grid point stays put.
    """
    k = np.floor(delta / _LN2)
    candidates = np.stack([np.zeros_like(delta), k * _LN2, (k + 1) * _LN2])
    costs = np.stack([_phi(graph, c, A, B, S, d) for d in candidates])
    # Prefer the current point unless a move lowers the cost by more than rounding noise.
    costs[1:] = np.where(costs[1:] < costs[0] * (1 - 1e-12), costs[1:], np.inf)
    return candidates[np.argmin(costs, axis=0), np.arange(len(delta))]


@dataclass
class ScheduleRun:
    """What `run_schedule` did: final state, sweeps, per-sweep history, convergence."""

    state: BalanceState
    sweeps: int
    updates: int
    converged: bool
    history: dict[str, list[float]]


def run_schedule(graph: CostGraph, schedule: str = "random", *, tol: float = 1e-10, max_sweeps: int = 10_000,
                 rng: np.random.Generator | None = None, fraction: float = 1.0, grid: str | None = None,
                 u: dict[str, np.ndarray] | None = None) -> ScheduleRun:
    """Balance units in sweeps following ``schedule`` until the max relative imbalance is ``<= tol``.

    Parameters
    ----------
    graph : CostGraph
    schedule : {"random", "cyclic", "reverse", "colour"}
    tol : float
        Stop when every free unit's relative imbalance is at most ``tol``.
    max_sweeps : int
        A sweep visits every free unit once.
    rng : numpy.random.Generator
        Drives the random order.
    fraction : float in (0, 1]
        Partial (favourable) scaling: apply ``lam_star ** fraction`` (theory Remark 5.8).
    grid : {None, "pow2"}
        Restrict every factor to a power of two (exact shifts in fixed point).
    u : dict, optional
        Starting log-scales.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    rng = check_random_state(0 if rng is None else rng)
    state = BalanceState(graph, u)
    units = [(name, int(i)) for name in graph.sizes for i in np.flatnonzero(graph.free[name])]
    classes = colour_classes(graph) if schedule == "colour" else None
    history = {"imbalance": [], "cost": []}

    def record() -> float:
        costs = graph.unit_costs(state.u)
        history["imbalance"].append(max_imbalance(graph, costs))
        history["cost"].append(graph.total_cost(state.u, costs))
        return history["imbalance"][-1]

    worst = record()
    sweeps = updates = 0
    previous_cost = history["cost"][-1]
    while worst > tol and sweeps < max_sweeps and units:
        if schedule == "colour":
            for members in classes:
                for name, idx in members:
                    state.balance(name, idx, fraction, grid)
                    updates += len(idx)
        else:
            order = range(len(units))
            if schedule == "random":
                order = rng.permutation(len(units))
            elif schedule == "reverse":
                order = reversed(order)
            for k in order:
                name, i = units[k]
                state.balance_one(name, i, fraction, grid)
                updates += 1
        sweeps += 1
        worst = record()
        if grid == "pow2" and history["cost"][-1] >= previous_cost:
            break  # no unit could move to a better power of two: a grid optimum
        previous_cost = history["cost"][-1]
    converged = worst <= tol or (grid == "pow2" and sweeps > 0 and history["cost"][-1] >= history["cost"][-2])
    return ScheduleRun(state, sweeps, updates, bool(converged) or not units, history)
