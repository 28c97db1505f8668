"""Global balancing: the unique minimiser of the convex cost F(u) on the cost graph (theory Thm 5.1).

``F(u) = sum_t alpha_t sum_(j->i) K_t[i, j] exp(p_t (u_i - c_j u_j))`` is a sum of exponentials of
linear forms of ``u``, strictly convex on every component of free units joined to ground (theory
§5, eq 5.4). Its gradient is the balance equation of every unit at once and its Hessian is a weighted
graph Laplacian (plus ground terms), so Newton's method applies directly:

* the gradient and the Hessian's diagonal come from one evaluation of all in- and out-costs;
* Newton directions are solved by conjugate gradients with Hessian-vector products done as two
  matrix-vector products per block of the cost graph (never a loop over synapses), preconditioned by
  the diagonal plus an exact coarse correction on the population-constant directions (one scale per
  population: the modes local balancing is slowest to fix);
* a backtracking line search keeps every step a decrease of F.

L-infinity: the cost ``max |w|`` is convex but not strictly, so its minimisers form a set. What is
unique is the max-balanced state (every unit's largest incoming parameter equals its largest
outgoing one, Schneider & Schneider 1991), which the L-infinity sweep converges to; `global_balance`
returns that state for L-infinity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .closed_form import loop_rate
from .graph import CostGraph, max_imbalance

__all__ = ["global_balance", "SolverRun"]


@dataclass
class SolverRun:
    """Outcome of `global_balance`."""

    u: dict[str, np.ndarray]
    iterations: int
    cg_iterations: int
    converged: bool
    history: dict[str, list[float]]


class _Newton:
    """Gradient, Hessian products and preconditioner of F at one point ``u``."""

    def __init__(self, graph: CostGraph, u: dict[str, np.ndarray], sums, costs) -> None:
        self.graph = graph
        self.u = u
        self.names = [n for n in graph.sizes if graph.free[n].any()]
        self.free = {n: graph.free[n].astype(np.float64) for n in graph.sizes}
        w1 = np.asarray(graph.alphas) * np.asarray(graph.exponents)
        w2 = w1 * np.asarray(graph.exponents)
        self.grad, self.diag = {}, {}
        for n in self.names:
            A, B, S = costs[n]
            c, r = graph.degree[n], loop_rate(graph.degree[n])
            self.grad[n] = (w1 @ (A - c * B + r * S)) * self.free[n]
            self.diag[n] = w2 @ (A + c * c * B + r * r * S)
        # Per block and term: the scale vectors a = exp(p u_post), b = exp(-p c u_pre).
        self.terms = []
        for t, p in enumerate(graph.exponents):
            for blk, (ins, outs) in zip(graph.blocks, sums[t]):
                if blk.post in self.grad or blk.pre in self.grad:
                    a = np.exp(p * u[blk.post])
                    b = np.exp(-p * graph.degree[blk.pre] * u[blk.pre])
                    self.terms.append((blk, blk.K[t], a, b, graph.alphas[t] * p * p, ins, outs))
        self._coarse(costs, w2)

    def _coarse(self, costs, w2) -> None:
        """Z^T H Z for Z = indicators of each population's free units (exact, from block totals)."""
        g = self.graph
        index = {n: k for k, n in enumerate(self.names)}
        Hc = np.zeros((len(self.names), len(self.names)))
        for n in self.names:
            k = index[n]
            if n in g.bias:
                for t, p in enumerate(g.exponents):
                    Hc[k, k] += w2[t] * np.sum(g.bias[n][t] * np.exp(p * self.u[n]) * self.free[n])
            if n in g.loops:
                Hc[k, k] += loop_rate(g.degree[n]) ** 2 * (w2 @ costs[n][2] * self.free[n]).sum()
        for blk, K, a, b, w, ins, outs in self.terms:
            fp, fq = self.free[blk.post], self.free[blk.pre]
            c = g.degree[blk.pre]
            tot_f_any = ins @ fp  # parameters whose post unit is free
            tot_any_f = outs @ fq  # parameters whose pre unit is free
            if not fp.any() or not fq.any():
                tot_ff = 0.0
            elif fq.all():
                tot_ff = tot_f_any
            elif fp.all():
                tot_ff = tot_any_f
            else:  # both populations partly fixed (dead or pinned units): one extra product
                tot_ff = (a * fp) @ (K @ (b * fq))
            tot_fn, tot_nf = tot_f_any - tot_ff, tot_any_f - tot_ff
            P, Q = index.get(blk.post), index.get(blk.pre)
            if P is not None:
                Hc[P, P] += w * (tot_ff + tot_fn)
            if Q is not None:
                Hc[Q, Q] += w * c * c * (tot_ff + tot_nf)
            if P is not None and Q is not None:
                if P == Q:
                    Hc[P, P] += w * tot_ff * (-2 * c)
                else:
                    Hc[P, Q] -= w * c * tot_ff
                    Hc[Q, P] -= w * c * tot_ff
        self.coarse = np.linalg.pinv(Hc, hermitian=True)
        self.index = index

    def hessian_product(self, v: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {n: self.diag[n] * v[n] for n in self.names}
        for blk, K, a, b, w, _, _ in self.terms:
            c = self.graph.degree[blk.pre]
            if blk.post in out and blk.pre in v:
                out[blk.post] -= w * c * a * (K @ (b * v[blk.pre]))
            if blk.pre in out and blk.post in v:
                out[blk.pre] -= w * c * b * ((a * v[blk.post]) @ K)
        return {n: out[n] * self.free[n] for n in self.names}

    def precondition(self, r: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        z = {n: r[n] / np.where(self.diag[n] > 0, self.diag[n], 1.0) * self.free[n] for n in self.names}
        coarse_r = np.array([r[n] @ self.free[n] for n in self.names])
        coarse_z = self.coarse @ coarse_r
        for n in self.names:
            z[n] += coarse_z[self.index[n]] * self.free[n]
        return z


def _dot(x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> float:
    return float(sum(x[n] @ y[n] for n in x))


def _conjugate_gradient(newton: _Newton, rtol: float, max_iter: int) -> tuple[dict[str, np.ndarray], int]:
    """Solve ``H d = -g`` by preconditioned CG to a relative residual ``rtol``."""
    r = {n: -g for n, g in newton.grad.items()}
    d = {n: np.zeros_like(g) for n, g in r.items()}
    z = newton.precondition(r)
    s = dict(z)
    rz = _dot(r, z)
    target = rtol * np.sqrt(_dot(r, r))
    for k in range(1, max_iter + 1):
        Hs = newton.hessian_product(s)
        curvature = _dot(s, Hs)
        if curvature <= 0:
            return d, k
        alpha = rz / curvature
        for n in d:
            d[n] += alpha * s[n]
            r[n] -= alpha * Hs[n]
        if np.sqrt(_dot(r, r)) <= target:
            return d, k
        z = newton.precondition(r)
        rz_new = _dot(r, z)
        s = {n: z[n] + (rz_new / rz) * s[n] for n in s}
        rz = rz_new
    return d, max_iter


def global_balance(graph: CostGraph, *, tol: float = 1e-10, max_iter: int = 100,
                   u: dict[str, np.ndarray] | None = None) -> SolverRun:
    """Minimise F(u) over the free units by Newton-CG until the max relative imbalance is ``<= tol``.

    Parameters
    ----------
    graph : CostGraph
        Must not be L-infinity (use the sweep; see the module docstring).
    tol : float
        Target max relative imbalance (1e-12 is reachable in float64).
    max_iter : int
        Newton iterations.
    u : dict, optional
        Starting log-scales.

    Returns
    -------
    SolverRun
    """
    if graph.linf:
        raise ValueError("the Newton solver needs an Lp cost; L-infinity is balanced by sweeps")
    u = {n: np.array(v, dtype=np.float64) for n, v in (u or graph.zeros()).items()}
    sums = graph.block_sums(u)
    costs = graph.unit_costs(u, sums)
    F = graph.total_cost(u, costs)
    history = {"imbalance": [max_imbalance(graph, costs)], "cost": [F]}
    cg_total = 0
    iterations = 0
    # Bound on a step's largest log change: keeps exp() finite far from the optimum.
    max_step = 20.0 / max(graph.exponents)
    while history["imbalance"][-1] > tol and iterations < max_iter:
        iterations += 1
        newton = _Newton(graph, u, sums, costs)
        if not newton.names:
            break
        rtol = min(0.1, max(history["imbalance"][-1], 1e-14))
        d, k = _conjugate_gradient(newton, rtol, max_iter=100)
        cg_total += k
        biggest = max(float(np.max(np.abs(v))) for v in d.values())
        t = min(1.0, max_step / biggest) if biggest > 0 else 1.0
        slope = _dot(newton.grad, d)
        while True:
            trial = {n: u[n] + t * d[n] if n in d else u[n] for n in u}
            trial_sums = graph.block_sums(trial)
            trial_costs = graph.unit_costs(trial, trial_sums)
            trial_F = graph.total_cost(trial, trial_costs)
            # Armijo, with room for rounding: near the optimum F changes by less than its last bit.
            if trial_F <= F + 1e-4 * t * slope + 8 * np.finfo(float).eps * abs(F):
                break
            t *= 0.5
            if t < 1e-12:
                break
        if t < 1e-12:  # no decrease possible in floating point
            break
        u, sums, costs, F = trial, trial_sums, trial_costs, trial_F
        history["imbalance"].append(max_imbalance(graph, costs))
        history["cost"].append(F)
    return SolverRun(u, iterations, cg_total, history["imbalance"][-1] <= tol, history)
