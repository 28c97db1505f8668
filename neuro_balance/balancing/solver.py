"""Global balancing: the unique minimiser of the convex cost F(u) on the cost graph (theory Thm 5.1).

``F(u) = sum_t alpha_t sum_(j->i) K_t[i, j] exp(p_t (u_i - c_j u_j))`` is a sum of exponentials of
linear forms of ``u``, strictly convex on every component of free units joined to ground (theory
§5, eq 5.4). Its gradient is the balance equation of every unit at once and its Hessian is a weighted
graph Laplacian (plus ground terms), so Newton's method applies directly:

* everything works on the flat cost graph (`FlatGraph`): with ``a = exp(p u_post)`` and
  ``b = exp(-p c u_pre)`` a block costs ``a^T K b``, with ``K = |W|**p`` aggregated once;
* the gradient and the Hessian's diagonal come from one evaluation of all in- and out-costs (two
  mat-vecs per block), which the line search's accepted trial already did;
* Newton directions are solved by conjugate gradients with Hessian-vector products done as two
  mat-vecs per block joining free units (never a loop over synapses, never a copy of K),
  preconditioned by the diagonal plus an exact coarse correction on the population-constant
  directions (one scale per population: the modes local balancing is slowest to fix);
* a backtracking line search keeps every step a decrease of F;
* far from balance Newton on a sum of exponentials takes short steps, so two colour sweeps (each
  unit's exact closed-form step, two mat-vecs per block per sweep) come first.

L-infinity: the cost ``max |w|`` is convex but not strictly, so its minimisers form a set. What is
unique is the max-balanced state (every unit's largest incoming parameter equals its largest
outgoing one, Schneider & Schneider 1991), which the L-infinity sweep converges to; `global_balance`
returns that state for L-infinity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flat import FlatGraph, Point
from .graph import CostGraph
from .local import BalanceState, colour_classes

__all__ = ["global_balance", "SolverRun"]

WARM_SWEEPS = 2  # colour sweeps before Newton when the start is far from balance
_FAR = 0.1  # max relative imbalance above which the start counts as far


@dataclass
class SolverRun:
    """Outcome of `global_balance`."""

    u: dict[str, np.ndarray]
    iterations: int
    cg_iterations: int
    converged: bool
    history: dict[str, list[float]]


class _Newton:
    """Gradient, Hessian-vector products and preconditioner of F at one evaluated point."""

    def __init__(self, flat: FlatGraph, pt: Point, groups: np.ndarray, n_groups: int) -> None:
        self.flat = flat
        self.free = flat.free.astype(np.float64)
        c, r = flat.c, flat.rate
        self.grad = (flat.w1 @ (pt.A - c * pt.B + r * pt.S)) * self.free
        self.diag = flat.w2 @ (pt.A + c * c * pt.B + r * r * pt.S)
        self.inv_diag = np.where(self.diag > 0, 1.0 / np.where(self.diag > 0, self.diag, 1.0), 0.0) * self.free
        self.groups, self.n_groups = groups, n_groups
        # Blocks joining free units on both sides: the off-diagonal part of the Hessian.
        self.terms = []
        for (t, K, post, pre, c_pre), ins, outs in zip(flat.blocks, pt.ins, pt.outs):
            self.terms.append((K, post, pre, flat.w2[t] * c_pre, pt.ea[t, post], pt.eb[t, pre], ins, outs,
                               flat.w2[t], c_pre))
        self._coarse(pt)
        self.terms = [term for term in self.terms if self.free[term[1]].any() and self.free[term[2]].any()]

    def _coarse(self, pt: Point) -> None:
        """Z^T H Z for Z = indicators of each population's free units (exact, from block totals)."""
        flat, free, groups = self.flat, self.free, self.groups
        Hc = np.zeros((self.n_groups, self.n_groups))
        ground = flat.w2 @ (flat.rate ** 2 * pt.S)
        for t, sl, costs in flat.bias:
            ground[sl] += flat.w2[t] * costs * pt.ea[t, sl]
        live = groups >= 0
        np.add.at(Hc, (groups[live], groups[live]), (ground * free)[live])
        for K, post, pre, _, a, b, ins, outs, w, c in self.terms:
            fp, fq = free[post], free[pre]
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
            P = groups[post.start] if fp.any() else -1
            Q = groups[pre.start] if fq.any() else -1
            if P >= 0:
                Hc[P, P] += w * (tot_ff + tot_fn)
            if Q >= 0:
                Hc[Q, Q] += w * c * c * (tot_ff + tot_nf)
            if P >= 0 and Q >= 0:
                if P == Q:
                    Hc[P, P] -= 2 * c * w * tot_ff
                else:
                    Hc[P, Q] -= w * c * tot_ff
                    Hc[Q, P] -= w * c * tot_ff
        self.coarse = np.linalg.pinv(Hc, hermitian=True)

    def hessian_product(self, v: np.ndarray) -> np.ndarray:
        out = self.diag * v
        for K, post, pre, wc, a, b, *_ in self.terms:
            out[post] -= wc * a * (K @ (b * v[pre]))
            out[pre] -= wc * b * ((a * v[post]) @ K)
        return out * self.free

    def precondition(self, r: np.ndarray) -> np.ndarray:
        live = self.groups >= 0
        coarse_r = np.bincount(self.groups[live], weights=(r * self.free)[live], minlength=self.n_groups)
        z = r * self.inv_diag
        z[live] += (self.coarse @ coarse_r)[self.groups[live]] * self.free[live]
        return z


def _conjugate_gradient(newton: _Newton, rtol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Solve ``H d = -g`` by preconditioned CG to a relative residual ``rtol``."""
    r = -newton.grad
    d = np.zeros_like(r)
    z = newton.precondition(r)
    s = z.copy()
    rz = r @ z
    target = rtol * np.sqrt(r @ r)
    for k in range(1, max_iter + 1):
        Hs = newton.hessian_product(s)
        curvature = s @ Hs
        if curvature <= 0:
            return d, k
        alpha = rz / curvature
        d += alpha * s
        r -= alpha * Hs
        if np.sqrt(r @ r) <= target:
            return d, k
        z = newton.precondition(r)
        rz_new = r @ z
        s = z + (rz_new / rz) * s
        rz = rz_new
    return d, max_iter


def _population_groups(flat: FlatGraph) -> tuple[np.ndarray, int]:
    """Coarse group of every unit: its population's index among populations with free units, else -1."""
    groups = np.full(flat.n, -1, dtype=np.intp)
    k = 0
    for sl in flat.slices.values():
        if flat.free[sl].any():
            groups[sl] = k
            k += 1
    return groups, k


def _warm_start(graph: CostGraph, u: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """`WARM_SWEEPS` colour sweeps of exact local steps from ``u``."""
    state = BalanceState(graph, u)
    classes = colour_classes(graph)
    for _ in range(WARM_SWEEPS):
        for members in classes:
            for name, idx in members:
                state.balance(name, idx)
    return state.u


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
        ``iterations`` counts Newton steps; the warm-start sweeps, if any, are the history's second
        entry.
    """
    if graph.linf:
        raise ValueError("the Newton solver needs an Lp cost; L-infinity is balanced by sweeps")
    flat = graph.flat
    pt = graph.evaluate(u if u is not None else graph.zeros())
    x = pt.u.copy()  # never hand out the graph's own origin
    F = flat.cost(pt)
    history = {"imbalance": [flat.max_imbalance(pt)], "cost": [F]}
    if history["imbalance"][-1] > max(tol, _FAR) and flat.free.any():
        x = flat.pack(_warm_start(graph, flat.unpack(x)))
        pt = flat.evaluate(x)
        F = flat.cost(pt)
        history["imbalance"].append(flat.max_imbalance(pt))
        history["cost"].append(F)
    groups, n_groups = _population_groups(flat)
    cg_total = iterations = 0
    # Bound on a step's largest log change: keeps exp() finite far from the optimum.
    max_step = 20.0 / float(np.max(flat.ps))
    while history["imbalance"][-1] > tol and iterations < max_iter and n_groups:
        iterations += 1
        newton = _Newton(flat, pt, groups, n_groups)
        rtol = min(0.1, max(history["imbalance"][-1], 1e-14))
        d, k = _conjugate_gradient(newton, rtol, max_iter=100)
        cg_total += k
        biggest = float(np.max(np.abs(d)))
        t = min(1.0, max_step / biggest) if biggest > 0 else 1.0
        slope = float(newton.grad @ d)
        while True:
            trial = flat.evaluate(x + t * d)
            trial_F = flat.cost(trial)
            # Armijo, with room for rounding: near the optimum F changes by less than its last bit.
            if trial_F <= F + 1e-4 * t * slope + 8 * np.finfo(float).eps * abs(F):
                break
            t *= 0.5
            if t < 1e-12:
                break
        if t < 1e-12:  # no decrease possible in floating point
            break
        x, pt, F = trial.u, trial, trial_F
        history["imbalance"].append(flat.max_imbalance(pt))
        history["cost"].append(F)
    return SolverRun(flat.unpack(x), iterations, cg_total, history["imbalance"][-1] <= tol, history)
