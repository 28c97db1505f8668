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

from .flat import CACHED, FlatGraph, Point, both_products
from .graph import CostGraph
from .local import BalanceState, colour_classes

__all__ = ["global_balance", "SolverRun", "HESSIAN_DTYPES"]

HESSIAN_DTYPES = ("float64", "float32")

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


class _Coarse:
    """The population-constant directions: one per population with free units (its free units' indicator)."""

    def __init__(self, flat: FlatGraph) -> None:
        self.starts = np.array([sl.start for sl in flat.slices.values()], dtype=np.intp)
        self.sizes = np.array([sl.stop - sl.start for sl in flat.slices.values()], dtype=np.intp)
        self.live = np.array([flat.free[sl].any() for sl in flat.slices.values()], dtype=bool)
        self.index = np.cumsum(self.live) - 1  # row of each population in the coarse matrix
        self.n = int(self.live.sum())

    def restrict(self, r: np.ndarray) -> np.ndarray:
        """``Z^T r`` for every population (0 for those without free units; ``r`` is 0 off the free units)."""
        return np.add.reduceat(r, self.starts)

    def prolong(self, y: np.ndarray) -> np.ndarray:
        """``Z y`` before masking: each population's value repeated over its units."""
        return np.repeat(y, self.sizes)


class _Newton:
    """Gradient, Hessian-vector products and preconditioner of F at one evaluated point.

    ``H v = diag * v - sum_t w2_t (ea_t * y_t + c * eb_t * z_t)`` with ``y_t = K @ (c eb_t v)`` and
    ``z_t = (ea_t v) @ K`` gathered over the blocks joining free units: two mat-vecs per block.
    ``hessian_K`` may hold the blocks' K in float32 for these products (the gradient, the cost and
    the line search always use float64, so the solution is the same; only the Newton step is less exact).
    """

    def __init__(self, flat: FlatGraph, pt: Point, coarse: _Coarse, hessian_K: list | None) -> None:
        self.flat, self.free = flat, flat.free_mask
        c, r = flat.c, flat.rate
        self.grad = (flat.w1 @ (pt.A - c * pt.B + r * pt.S)) * self.free
        self.diag = flat.w2 @ (pt.A + c * c * pt.B + r * r * pt.S)
        self.inv_diag = np.divide(self.free, self.diag, out=np.zeros(flat.n), where=self.diag > 0)
        dtype = np.float32 if hessian_K is not None else np.float64
        self.ea = [(flat.w2[t] * pt.ea[t]).astype(dtype) for t in range(len(flat.ps))]
        self.ebc = [(c * pt.eb[t]).astype(dtype) for t in range(len(flat.ps))]
        self.dtype = dtype
        Ks = hessian_K if hessian_K is not None else [blk[1] for blk in flat.blocks]
        self.chunked = sum(K.nbytes for K, inner in zip(Ks, flat.inner) if inner) > CACHED
        self.terms = [(t, K, post, pre) for (t, _, post, pre, _), K, inner in zip(flat.blocks, Ks, flat.inner) if inner]
        self.coarse = coarse
        self.coarse_inverse = self._coarse_inverse(pt)

    def _coarse_inverse(self, pt: Point) -> np.ndarray:
        """``(Z^T H Z)^-1``, embedded in a matrix over all populations (zero rows for those without free units).

        Exact, from block totals: a block's share of ``Z^T H Z`` is its cost between free units.
        """
        flat, free, co = self.flat, self.free, self.coarse
        Hc = np.diag(co.restrict(self.diag * free))
        for (t, K, post, pre, c), ins, outs, inner in zip(flat.blocks, pt.ins, pt.outs, flat.inner):
            if not inner:
                continue
            fp, fq = free[post], free[pre]
            if flat.all_free[pre.start]:
                tot_ff = ins @ fp  # every pre unit free: the block's cost into free post units
            elif flat.all_free[post.start]:
                tot_ff = outs @ fq
            else:  # both populations partly fixed (dead or pinned units): one extra product
                tot_ff = (pt.ea[t, post] * fp) @ (K @ (pt.eb[t, pre] * fq))
            P, Q = flat.population[post.start], flat.population[pre.start]
            h = flat.w2[t] * c * tot_ff
            Hc[P, Q] -= h
            Hc[Q, P] -= h
        live = np.ix_(co.live, co.live)
        inverse = np.zeros_like(Hc)
        try:  # positive definite: every free unit is joined to ground
            inverse[live] = np.linalg.inv(Hc[live])
        except np.linalg.LinAlgError:
            inverse[live] = np.linalg.pinv(Hc[live], hermitian=True)
        return inverse

    def hessian_product(self, v: np.ndarray) -> np.ndarray:
        flat = self.flat
        out = self.diag * v
        v_cast = v.astype(self.dtype, copy=False)
        for t in range(len(flat.ps)):
            bv, av = self.ebc[t] * v_cast, self.ea[t] * v_cast
            y, z = np.zeros(flat.n, dtype=self.dtype), np.zeros(flat.n, dtype=self.dtype)
            for s, K, post, pre in self.terms:
                if s == t:
                    rows, cols = both_products(K, bv[pre], av[post], self.chunked)
                    y[post] += rows
                    z[pre] += cols
            out -= self.ea[t] * y
            out -= self.ebc[t] * z
        return out * self.free

    def precondition(self, r: np.ndarray) -> np.ndarray:
        co = self.coarse
        return r * self.inv_diag + co.prolong(self.coarse_inverse @ co.restrict(r)) * self.free


def _conjugate_gradient(newton: _Newton, rtol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Solve ``H d = -g`` by preconditioned CG to a relative residual ``rtol``."""
    r = -newton.grad
    d = np.zeros_like(r)
    z = newton.precondition(r)
    s = z
    rz = r @ z
    target = rtol * rtol * (r @ r)
    for k in range(1, max_iter + 1):
        Hs = newton.hessian_product(s)
        curvature = s @ Hs
        if curvature <= 0:
            return d, k
        alpha = rz / curvature
        d += alpha * s
        r -= alpha * Hs
        if r @ r <= target:
            return d, k
        z = newton.precondition(r)
        rz_new = r @ z
        s = z + (rz_new / rz) * s
        rz = rz_new
    return d, max_iter


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
                   u: dict[str, np.ndarray] | None = None, hessian_dtype: str = "float64") -> SolverRun:
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
    hessian_dtype : {"float64", "float32"}
        Precision of the Hessian-vector products inside conjugate gradients (a float32 copy of K).
        The gradient, the cost and the line search stay float64, so the solution and ``tol`` are the
        same; float32 halves the bytes each product reads, at the price of a less exact Newton step.

    Returns
    -------
    SolverRun
        ``iterations`` counts Newton steps; the warm-start sweeps, if any, are the history's second
        entry.
    """
    if graph.linf:
        raise ValueError("the Newton solver needs an Lp cost; L-infinity is balanced by sweeps")
    if hessian_dtype not in HESSIAN_DTYPES:
        raise ValueError(f"hessian_dtype must be one of {HESSIAN_DTYPES}, got {hessian_dtype!r}")
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
    coarse = _Coarse(flat)
    hessian_K = flat.blocks_as(np.float32) if hessian_dtype == "float32" and coarse.n else None
    cg_total = iterations = 0
    # Bound on a step's largest log change: keeps exp() finite far from the optimum.
    max_step = 20.0 / float(np.max(flat.ps))
    while history["imbalance"][-1] > tol and iterations < max_iter and coarse.n:
        iterations += 1
        newton = _Newton(flat, pt, coarse, hessian_K)
        # Inexact Newton: a residual ``rtol`` times the gradient leaves an imbalance of about ``rtol`` times
        # the current one, so near the end ``0.1 tol / imbalance`` is enough; far from it, ``imbalance``
        # keeps the convergence quadratic.
        worst = history["imbalance"][-1]
        rtol = min(0.1, max(worst, 0.1 * tol / worst, 1e-14))
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
