"""`balance`: the front door to the three balancing engines (global, stochastic, sweep)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .local import SCHEDULES, BalanceState, run_schedule
from . import verify
from .costs import Cost, Linf
from ..errors import ModelError, NumericalError
from .graph import build_graph
from ..model.network import Network
from ..seeding import check_random_state
from .scaling import scale
from .solver import HESSIAN_DTYPES, global_balance

__all__ = ["BalanceResult", "balance", "balance_unit", "METHODS"]

METHODS = ("global", "stochastic", "sweep")


@dataclass
class BalanceResult:
    """Outcome of `balance` (in the spirit of `scipy.optimize.OptimizeResult`).

    Attributes
    ----------
    network : Network
        The balanced network (computes the same function as the input).
    log_scales : dict of ndarray
        Log-scale ``u`` of every unit that was applied (``lam = exp(u)``); zero for ground units.
    converged : bool
        Whether the max relative imbalance reached ``tol`` (for ``scale_grid="pow2"``: whether no
        unit could move to a better power of two).
    iterations : int
        Newton iterations (global) or sweeps over all units (stochastic, sweep).
    history : dict of list
        ``imbalance`` (max relative imbalance) and ``cost`` after every iteration, starting with the
        initial state.
    cost_before, cost_after : float
    dead_units : dict of ndarray
        Indices of dead units (zero in- or out-cost) per population: never scaled.
    ungrounded_units : dict of ndarray
        Indices of units held fixed to anchor a component with no path to ground (the component is
        balanced up to one common factor), or whose cost has no minimum (skipped).
    method, schedule : str
    updates : int
        Local balancing operations performed (0 for the global solver).
    """

    network: Network
    log_scales: dict[str, np.ndarray]
    converged: bool
    iterations: int
    history: dict[str, list[float]]
    cost_before: float
    cost_after: float
    dead_units: dict[str, np.ndarray]
    ungrounded_units: dict[str, np.ndarray]
    method: str
    schedule: str | None = None
    updates: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def imbalance(self) -> float:
        """Final max relative imbalance."""
        return self.history["imbalance"][-1]

    @property
    def log_costs(self) -> tuple[float, float]:
        """Natural logs of ``cost_before`` and ``cost_after``, also where those are outside float64 (0 or inf)."""
        if "log_costs" in self.extra:
            return self.extra["log_costs"]
        return tuple(math.log(c) if c > 0 else -math.inf for c in (self.cost_before, self.cost_after))

    def __repr__(self) -> str:
        dead = sum(len(v) for v in self.dead_units.values())
        return (f"BalanceResult(method={self.method!r}{', schedule=' + repr(self.schedule) if self.schedule else ''}, "
                f"converged={self.converged}, iterations={self.iterations}, imbalance={self.imbalance:.3g}, "
                f"cost {verify.cost_text(self.cost_before, self.log_costs[0])} -> "
                f"{verify.cost_text(self.cost_after, self.log_costs[1])}, dead units={dead})")


def balance(net: Network, cost: Cost, method: str = "global", *, tol: float = 1e-10, max_iter: int | None = None,
            seed: int | np.random.Generator | None = 0, schedule: str | None = None, tie: str | None = None,
            fraction: float = 1.0, scale_grid: str | None = None, inplace: bool = False,
            invariance: str = "exact", hessian_dtype: str = "float64") -> BalanceResult:
    """Balance every hidden homogeneous unit of ``net`` for ``cost``.

    All methods reach the same unique balanced state (theory Thm 5.1); they differ in how.

    Parameters
    ----------
    net : Network
    cost : Cost
        ``Lp(p)`` for any p > 0, ``Linf()``, or a weighted sum of Lp terms.
    method : {"global", "stochastic", "sweep"}
        ``global``: Newton's method on the convex cost. L-infinity has no Newton step: ``global``
        then runs colour sweeps to the max-balanced state and the result says ``method='sweep'``.
        ``stochastic``: the paper's algorithm, one unit at a time in random order (or
        ``schedule``). ``sweep``: colour classes balanced at once (a layer at a time in a layered
        network), exactly equivalent to sequential balancing.
    tol : float
        Stop when the max relative imbalance over balanced units is at most ``tol``.
    max_iter : int, optional
        Newton iterations (default 100) or sweeps (default 10000); 0 runs none and reports the
        starting state.
    seed : int, None or numpy.random.Generator
        Random order of the stochastic schedule (see `neuro_balance.seeding.check_random_state`).
    schedule : {"random", "cyclic", "reverse", "colour"}, optional
        Visiting order of the local methods (default ``random`` for ``stochastic``, ``colour`` for
        ``sweep``); not for ``global``.
    tie : {None, "channel", "layer"}
        Units forced to share one scale (see `build_graph`).
    fraction : float in (0, 1]
        Partial (favourable) scaling for the local methods: each step applies ``lam_star**fraction``.
    scale_grid : {None, "pow2"}
        Restrict every factor to a power of two (exact shifts on fixed-point hardware); local methods.
    inplace : bool
        Rescale ``net`` itself.
    invariance : {"exact", "rate"}
        For networks with spiking units (NIR IF, LIF, CubaLIF): ``exact`` balances them with the
        gauge (spike trains unchanged), ``rate`` with the rate-level exchange (IF only); see
        `neuro_balance.balancing.spiking`. Ignored for networks without spiking units.
    hessian_dtype : {"float64", "float32"}
        ``global`` only: precision of the Hessian-vector products of the Newton steps. ``float32``
        keeps a float32 copy of K (half the bytes of K more memory) and reads it instead of K inside
        conjugate gradients; the cost, its gradient and ``tol`` stay float64, so the result is the
        same balanced state.

    Returns
    -------
    BalanceResult
        ``method`` and ``schedule`` say which engine ran.

    Raises
    ------
    ValueError
        For an unknown ``method``, ``schedule`` or ``scale_grid``, a ``tol`` that is not > 0, a
        ``max_iter`` that is not a non-negative int, a bad ``seed``, or ``method="global"`` with
        ``schedule``, ``fraction != 1`` or ``scale_grid`` (options of the local methods only), or a
        local method with ``hessian_dtype="float32"``.
    NumericalError
        When the result would not be one: a balanced parameter beyond float64 (overflow, underflow to
        0 or into the subnormals), a NaN imbalance, or an output changed on a probe batch; the message
        names the limit and the projection and unit. Costs whose ``|w|**p`` would leave float64 are
        computed for ``w * 2**-shift`` (`graph.shifted_cost`), so a common magnitude of the weights
        (1e-300 .. 1e300) alone never causes it.

    Examples
    --------
    >>> import neuro_balance as nb
    >>> res = nb.balance(nb.mlp([8, 16, 16, 4], seed=1), nb.Lp(2))
    >>> res.converged, res.cost_after < res.cost_before
    (True, True)
    """
    if any(p.neuron is not None and p.neuron.spiking for p in net.populations.values()):
        from .spiking import balance_spiking

        if inplace:
            raise ValueError("inplace: not available for networks with spiking units")
        result = balance_spiking(net, cost, invariance, engine=_balance, tol=tol, scale_grid=scale_grid,
                                 method=method, max_iter=max_iter, seed=seed, schedule=schedule, tie=tie,
                                 fraction=fraction, hessian_dtype=hessian_dtype)
        verify.check_parameters(net, result.network, None)  # the gauge scales outside `_balance`'s checks
        if not math.isfinite(result.imbalance):
            raise NumericalError(f"NaN: the max relative imbalance of the result is {result.imbalance}: costs of "
                                 "spiking units left float64")
        return result
    return _balance(net, cost, method, tol=tol, max_iter=max_iter, seed=seed, schedule=schedule, tie=tie,
                    fraction=fraction, scale_grid=scale_grid, inplace=inplace, hessian_dtype=hessian_dtype)


def _balance(net: Network, cost: Cost, method: str = "global", *, tol: float = 1e-10, max_iter: int | None = None,
             seed: int | np.random.Generator | None = 0, schedule: str | None = None, tie: str | None = None,
             fraction: float = 1.0, scale_grid: str | None = None, inplace: bool = False,
             hessian_dtype: str = "float64", rounds: int = 0) -> BalanceResult:
    """`balance` by the exchange alone (every balanced unit; spiking units are ground).

    Ends with `verify`'s checks; ``rounds`` counts runs continued from an earlier one's output.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if schedule is not None and schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if scale_grid not in (None, "pow2"):
        raise ValueError(f"scale_grid must be None or 'pow2', got {scale_grid!r}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    if max_iter is not None and (not isinstance(max_iter, (int, np.integer)) or isinstance(max_iter, bool)
                                 or max_iter < 0):
        raise ValueError(f"max_iter must be a non-negative int or None, got {max_iter!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if hessian_dtype not in HESSIAN_DTYPES:
        raise ValueError(f"hessian_dtype must be one of {HESSIAN_DTYPES}, got {hessian_dtype!r}")
    if hessian_dtype != "float64" and method != "global":
        raise ValueError(f"method={method!r} has no hessian_dtype={hessian_dtype!r}: it is an option of method='global'")
    rng = check_random_state(seed)
    if method == "global":
        local_only = {"schedule": schedule, "scale_grid": scale_grid, "fraction": None if fraction == 1 else fraction}
        given = {k: v for k, v in local_only.items() if v is not None}
        if given:
            raise ValueError(f"method='global' has no {', '.join(f'{k}={v!r}' for k, v in given.items())}: "
                             "use method='sweep' or 'stochastic'")
        if cost.is_linf:
            method = "sweep"  # L-infinity has no Newton step; colour sweeps reach its max-balanced state
    graph = build_graph(net, cost, tie)
    if graph.lossy and rounds == 0 and not cost.is_linf and max_iter != 0:
        return _prebalanced(net, graph, cost, method, dict(tol=tol, max_iter=max_iter, seed=rng, schedule=schedule,
                                                           tie=tie, fraction=fraction, scale_grid=scale_grid,
                                                           hessian_dtype=hessian_dtype), inplace)
    if method != "global" or max_iter == 0:  # max_iter=0: no step at all (the solver warm-starts with sweeps)
        if schedule is None:
            schedule = "random" if method == "stochastic" else "colour"
        with np.errstate(all="ignore"):  # a cost leaving float64 ends in `_checked_scale`'s error, not in warnings
            run = run_schedule(graph, schedule, tol=tol, max_sweeps=10_000 if max_iter is None else int(max_iter),
                               rng=rng, fraction=fraction, grid=scale_grid)
        u, iterations, history, converged, updates = run.state.u, run.sweeps, run.history, run.converged, run.updates
        schedule = None if method == "global" else schedule
    else:
        with np.errstate(all="ignore"):
            run = global_balance(graph, tol=tol, max_iter=100 if max_iter is None else int(max_iter),
                                 hessian_dtype=hessian_dtype)
        u, iterations, history, converged, updates = run.u, run.iterations, run.history, run.converged, 0
        schedule = None
    log_scales = {name: values for name, values in graph.expand(u).items() if net.populations[name].balanced}
    out = _checked_scale(net, graph, u, log_scales, history["imbalance"][-1], inplace)
    dead = {n: np.flatnonzero(graph.expand(graph.dead)[n]) for n in graph.sizes if graph.dead[n].any()}
    ungrounded = {n: np.flatnonzero(graph.expand(graph.pinned)[n] | graph.expand(graph.unbounded)[n])
                  for n in graph.sizes if graph.pinned[n].any() or graph.unbounded[n].any()}
    extra = {"cg_iterations": getattr(run, "cg_iterations", 0)}
    if graph.log_unit:  # the graph's costs are the parameters' times exp(-log_unit) (`graph.shifted_cost`)
        extra["log_costs"] = tuple(math.log(c) + graph.log_unit if c > 0 else -math.inf
                                   for c in (history["cost"][0], history["cost"][-1]))
        history["cost"] = [verify.unscaled(c, graph.log_unit) for c in history["cost"]]
    result = BalanceResult(out, log_scales, converged, iterations, history, history["cost"][0], history["cost"][-1],
                           dead, ungrounded, method, schedule, updates, extra)
    if graph.lossy and rounds < _LOSSY_ROUNDS and scale_grid is None:
        _check_dead(net, graph, cost, tie)
        fresh = build_graph(out, cost, tie)
        if fresh.flat.max_imbalance(fresh.origin) > tol:  # costs lost to underflow hid an imbalance: go on from here
            again = _balance(out, cost, method, tol=tol, max_iter=max_iter, seed=rng, schedule=schedule, tie=tie,
                             fraction=fraction, inplace=inplace, hessian_dtype=hessian_dtype, rounds=rounds + 1)
            result = _chained(result, again)
    return result


_LOSSY_ROUNDS = 3  # runs of an engine on its own result when underflowing costs may have hidden an imbalance


def _checked_scale(net: Network, graph, u, log_scales: dict[str, np.ndarray], imbalance: float,
                   inplace: bool) -> Network:
    """`scale` ``net`` by ``log_scales``, or raise `NumericalError` unless the result is finite and computes the same.

    When the factors surely keep every parameter in float64's normal range (`verify.within_range`, from
    the graph's magnitudes) ``net`` is scaled as asked (in place: scaled back if the probe batch then
    shows a change); otherwise a scaled copy is checked parameter by parameter first, and written into
    ``net`` after when in place. A failed run leaves ``net`` as it was (to rounding).
    """
    verify.check_log_scales(log_scales)
    if not math.isfinite(imbalance):
        verify.check_imbalance(graph, u)
    x = verify.probe_batch(net)
    with np.errstate(all="ignore"):
        y0 = net.forward(x)
    if verify.within_range(net, log_scales, graph.magnitudes):
        out = scale(net, log_scales, inplace=inplace)
        try:
            verify.check_neurons(out)
            verify.check_function(out, x, y0)
        except NumericalError:
            if inplace:
                scale(net, {name: -values for name, values in log_scales.items()}, inplace=True)
            raise
        return out
    with np.errstate(all="ignore"):
        out = scale(net, log_scales)
    verify.check_parameters(net, out, log_scales)
    verify.check_function(out, x, y0)
    if not inplace:
        return out
    for old, new in zip(net.projections, out.projections):
        old.weight[...] = new.weight
    for old, new in zip(net.populations.values(), out.populations.values()):
        if old.bias is not None:
            old.bias[...] = new.bias
        old.neuron = new.neuron
    return net


def _prebalanced(net: Network, graph, cost: Cost, method: str, options: dict, inplace: bool) -> BalanceResult:
    """Balance ``net`` from the max-balanced state (L-infinity), when some ``|w|**p`` underflowed at the start.

    L-infinity sweeps read ``|w|`` itself, so they see every parameter; their state evens the weights'
    magnitudes out, and the cost graph there usually loses none of them. The result counts from ``net``.
    """
    linf = build_graph(net, Linf(include_bias=cost.include_bias), options["tie"])
    start = run_schedule(linf, "colour", tol=1e-3, max_sweeps=_PRE_SWEEPS).state.u
    if options["scale_grid"] == "pow2":  # powers of two stay powers of two
        start = {n: np.round(v / np.log(2.0)) * np.log(2.0) for n, v in start.items()}
    u0 = {n: v for n, v in linf.expand(start).items() if net.populations[n].balanced}
    verify.check_log_scales(u0)
    with np.errstate(all="ignore"):
        moved = scale(net, u0)
    verify.check_parameters(net, moved, u0)
    then = _balance(moved, cost, method, rounds=1, **options)
    log_scales = {n: u0[n] + then.log_scales[n] for n in then.log_scales}
    out = _checked_scale(net, graph, None, log_scales, 0.0, inplace)
    raw = graph.flat.cost(graph.origin)  # the input's cost, in the graph's unit
    before = verify.unscaled(raw, graph.log_unit)
    history = {"imbalance": [graph.flat.max_imbalance(graph.origin)] + then.history["imbalance"],
               "cost": [before] + then.history["cost"]}
    log_before = math.log(raw) + graph.log_unit if raw > 0 else -math.inf
    return BalanceResult(out, log_scales, then.converged, then.iterations, history, before, then.cost_after,
                         then.dead_units, then.ungrounded_units, then.method, then.schedule, then.updates,
                         {**then.extra, "prebalanced": True, "log_costs": (log_before, then.log_costs[1])})


_PRE_SWEEPS = 50  # L-infinity sweeps before an Lp run whose costs underflowed


def _check_dead(net: Network, graph, cost: Cost, tie: str | None) -> None:
    """Refuse units counted dead only because ``|w|**p`` of all their parameters on one side underflowed to 0."""
    if not any(m.any() for m in graph.dead.values()):
        return
    exact = build_graph(net, Linf(include_bias=cost.include_bias), tie)  # |w| itself: zero only if w is
    for name, dead in graph.dead.items():
        lost = np.flatnonzero(dead & ~exact.dead[name])
        if lost.size:
            raise NumericalError(f"underflow to 0: |w|**{cost.terms[0][1]:g} of every incoming or every outgoing "
                                 f"parameter of unit {name}[{lost[0]}] is below float64's smallest number (4.9e-324), "
                                 f"so it cannot be balanced ({lost.size} unit(s) of {name!r} alike; "
                                 f"{', '.join(graph.lossy[:3])})")


def _chained(first: BalanceResult, then: BalanceResult) -> BalanceResult:
    """One result for a run continued by another from its output."""
    log_scales = {n: first.log_scales[n] + then.log_scales.get(n, 0.0) for n in first.log_scales}
    history = {k: first.history[k] + then.history[k][1:] for k in first.history}
    return BalanceResult(then.network, log_scales, then.converged, first.iterations + then.iterations, history,
                         first.cost_before, then.cost_after, then.dead_units, then.ungrounded_units, then.method,
                         then.schedule, first.updates + then.updates,
                         {"cg_iterations": first.extra["cg_iterations"] + then.extra["cg_iterations"],
                          "log_costs": (first.log_costs[0], then.log_costs[1])})


def balance_unit(net: Network, cost: Cost, population: str, unit: int, *, inplace: bool = False) -> tuple[Network, float]:
    """Balance one unit: scale its incoming parameters by ``lam_star`` and outgoing ones by ``1/lam_star**c``.

    Implements the balancing operation B(i) of theory §1 (closed form eq 3.3 for Lp and BiLU:
    ``lam_star = (B / A) ** (1 / (2 p))``; BiPU ``(c B / A) ** (1 / (p (1 + c)))``; a 1-D convex solve
    for weighted sums or units with self-loops; ``(B / A) ** (1 / (1 + c))`` with maxima for L-infinity).

    Parameters
    ----------
    net : Network
    cost : Cost
    population : str
        A hidden population with a homogeneous activation.
    unit : int
        Index of the unit in ``population``.
    inplace : bool

    Returns
    -------
    (Network, float)
        The network after balancing and the factor applied (1.0 for dead units, which are skipped;
        0 or inf when the factor alone is beyond float64 but the scaled parameters are not).

    Raises
    ------
    NumericalError
        When the scaled parameters are beyond float64 (as `balance`).

    Examples
    --------
    >>> import neuro_balance as nb
    >>> net2, lam = nb.balance_unit(nb.mlp([3, 4, 2], seed=0), nb.Lp(2), "h1", 0)
    >>> round(nb.balance_unit(net2, nb.Lp(2), "h1", 0)[1], 12)   # idempotent
    1.0
    """
    if population not in net.populations or not net.populations[population].balanced:
        raise ModelError(f"population: {population!r} is not a hidden population with a homogeneous activation")
    if not 0 <= unit < net.populations[population].size:
        raise ModelError(f"unit: {unit} is out of range for population {population!r} "
                         f"of size {net.populations[population].size}")
    graph = build_graph(net, cost)
    if not graph.free[population][unit]:
        return (net if inplace else net.copy()), 1.0
    state = BalanceState(graph)
    with np.errstate(all="ignore"):
        step = float(state.balance(population, np.array([unit]))[0])
    u = np.zeros(net.populations[population].size)
    u[unit] = step
    out = _checked_scale(net, graph, None, {population: u}, 0.0, inplace)
    with np.errstate(over="ignore", under="ignore"):
        return out, float(np.exp(step))
