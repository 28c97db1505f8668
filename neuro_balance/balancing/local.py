"""Local balancing: one unit (or one colour class of units) at a time, on the cost graph.

Balancing unit i is the exact minimisation of the cost over its log-scale (`unit_step`: the closed
forms of `closed_form`, else a 1-D convex solve). Every update reads only the unit's own in- and
out-costs. The schedules decide who balances next:

* ``random``: a fresh random permutation of the units each sweep (the paper's stochastic algorithm);
* ``cyclic`` / ``reverse``: the units in network order, or the reverse;
* ``colour``: colour classes of the shares-a-parameter graph, each balanced at once. Units of one class
  share no parameter, so this is exactly the sequential algorithm in a vectorised order.

All schedules work on log-scales ``u`` and never touch a weight; `scale` applies the result once.
`BalanceState` keeps each block's products until a population they depend on moves, so a sweep and its
convergence check read every K about twice; the one-unit schedules run in `stochastic.UnitLoop`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import CostGraph
from .state import BalanceState
from .stochastic import UnitLoop
from .unit_step import optimal_log_step
from ..seeding import check_random_state

__all__ = ["SCHEDULES", "BalanceState", "optimal_log_step", "colour_classes", "unit_colours", "run_schedule"]

SCHEDULES = ("random", "cyclic", "reverse", "colour")


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
        nonzero = any(K.size and (K.flat[0] != 0 or K.any()) for K in blk.K)  # usually decided by one entry
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
        imbalance, cost = state.check()
        history["imbalance"].append(imbalance)
        history["cost"].append(cost)
        return history["imbalance"][-1]

    worst = record()
    fast = schedule != "colour" and grid is None and graph.n_terms == 1
    loop = None
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
            if fast:
                loop = loop or UnitLoop(state, units)
                loop.run(order.tolist() if schedule == "random" else order, fraction)
                loop.sync()
            else:
                for k in order:
                    name, i = units[k]
                    state.balance_one(name, i, fraction, grid)
            updates += len(units)
        sweeps += 1
        worst = record()
        if grid == "pow2" and history["cost"][-1] >= previous_cost:
            break  # no unit could move to a better power of two: a grid optimum
        previous_cost = history["cost"][-1]
    converged = worst <= tol or (grid == "pow2" and sweeps > 0 and history["cost"][-1] >= history["cost"][-2])
    return ScheduleRun(state, sweeps, updates, bool(converged) or not units, history)
