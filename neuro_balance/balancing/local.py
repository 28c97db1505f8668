"""Local balancing: one unit (or one colour class of units) at a time, on the cost graph.

Balancing unit i is the exact minimisation of the cost over its log-scale (`unit_step`: the closed
forms of `closed_form`, else a 1-D convex solve). Every update reads only the unit's own in- and
out-costs. The schedules decide who balances next:

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
from .graph import CostGraph
from .unit_step import LN2, best_pow2_step, optimal_log_step, scalar_root
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
        self._fast: dict[str, list[tuple]] = {}
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

    def _rows(self, name: str) -> list[tuple]:
        """Per term, what `balance_one` reads for a unit of ``name``: row views and scale vectors."""
        if name not in self._fast:
            g = self.graph
            self._fast[name] = [
                ([(Ks[t], self._eb[t][pre]) for pre, Ks in self._into[name]],
                 [(self._rows_of_transpose(Ks[t], slice(None)), self._ea[t][post]) for post, Ks in self._from[name]],
                 g.bias[name][t] if name in g.bias else None, g.loops[name][t] if name in g.loops else None,
                 self._ea[t][name], self._eb[t][name], p)
                for t, p in enumerate(g.exponents)]
        return self._fast[name]

    def balance_one(self, name: str, i: int, fraction: float = 1.0, grid: str | None = None) -> float:
        """Balance the single unit ``i`` of ``name``; returns its log step.

        Reads row ``i`` of each incoming ``K`` and of each outgoing ``K``'s transpose as views and works
        on scalars: the stochastic algorithm's inner loop, O(fan-in + fan-out) per update.
        """
        if grid is not None:
            return float(self.balance(name, np.array([i]), fraction, grid)[0])
        g = self.graph
        c, u = g.degree[name], self.u[name]
        A, B, S = [], [], []
        for ins, outs, bias, loops, ea, eb, p in self._rows(name):
            a = 0.0 if bias is None else bias[i]
            b = 0.0
            if g.linf:
                for K, v in ins:
                    a = max(a, (K[i] * v).max(initial=0.0))
                for KT, v in outs:
                    b = max(b, (KT[i] * v).max(initial=0.0))
            else:
                for K, v in ins:
                    a += K[i].dot(v)
                for KT, v in outs:
                    b += KT[i].dot(v)
            A.append(float(a * ea[i]))
            B.append(float(b * eb[i]))
            S.append(0.0 if loops is None else float(loops[i] * math.exp(p * loop_rate(c) * u[i])))
        if g.linf:
            delta = float(linf_log_step(A[0], B[0], S[0] if S[0] > 0 else None, c))
        elif len(A) == 1 and (c == 1.0 or S[0] == 0.0):
            delta = float(lp_log_step(A[0], B[0], g.exponents[0], c))
        else:
            delta = scalar_root(g, c, A, B, S)
        delta *= fraction
        ui = u[i] + delta
        u[i] = ui
        for t, p in enumerate(g.exponents):
            self._ea[t][name][i] = math.exp(p * ui)
            self._eb[t][name][i] = math.exp(-p * c * ui)
        return delta

    def balance(self, name: str, idx: np.ndarray, fraction: float = 1.0, grid: str | None = None) -> np.ndarray:
        """Balance units ``idx`` of ``name`` (which must share no parameter); returns the log steps."""
        A, B, S = self.local_costs(name, idx)
        c = self.graph.degree[name]
        delta = fraction * optimal_log_step(self.graph, c, A, B, S)
        if grid == "pow2":
            delta = best_pow2_step(self.graph, c, A, B, S, delta)
        self.shift(name, idx, delta)
        if grid == "pow2":  # keep u an exact multiple of log 2, so the factors are exact powers of two
            self.u[name][idx] = np.round(self.u[name][idx] / LN2) * LN2
        return delta


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
        point = graph.evaluate(state.u)
        history["imbalance"].append(graph.flat.max_imbalance(point))
        history["cost"].append(graph.flat.cost(point))
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
