"""One unit's optimal log step: the closed forms of `closed_form` where they apply, else a 1-D convex solve.

The unit's cost after a log step ``d`` is ``phi(d) = sum_t alpha_t (A_t e^{p_t d} + B_t e^{-c p_t d}
+ S_t e^{p_t (1 - c) d})`` (the maximum of the three parts under L-infinity). `optimal_log_step`
minimises it for many units at once, `scalar_root` for one unit on Python floats (the stochastic
inner loop), `best_pow2_step` restricts the step to powers of two.
"""
from __future__ import annotations

import math

import numpy as np

from .closed_form import linf_log_step, loop_rate, lp_log_step
from .graph import CostGraph

__all__ = ["LN2", "optimal_log_step", "scalar_root", "best_pow2_step"]

LN2 = math.log(2.0)


def optimal_log_step(graph: CostGraph, degree: float, A: np.ndarray, B: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Log of the balancing factor for units with current costs ``A, B, S`` (each ``(n_terms, n)``).

    Minimises ``phi(d) = sum_t alpha_t (A_t e^{p_t d} + B_t e^{-c p_t d} + S_t e^{p_t (1-c) d})``.
    """
    c = degree
    if graph.linf:
        return linf_log_step(A[0], B[0], S[0], c)
    if graph.n_terms == 1 and (c == 1.0 or not S.any()):
        return lp_log_step(A[0], B[0], graph.exponents[0], c)
    if A.shape[1] == 1:  # one unit: Python floats beat arrays of one element
        return np.array([scalar_root(graph, c, A[:, 0].tolist(), B[:, 0].tolist(), S[:, 0].tolist())])
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


def scalar_root(graph: CostGraph, c: float, A: list, B: list, S: list) -> float:
    """`_convex_root` for one unit, on Python floats (the stochastic inner loop: no array overhead)."""
    terms = [(alpha * p, alpha * p * p, p, a, b, s)
             for alpha, p, a, b, s in zip(graph.alphas, graph.exponents, A, B, S)]
    r = loop_rate(c)

    def derivatives(d: float) -> tuple[float, float]:
        g = h = 0.0
        for w1, w2, p, a, b, s in terms:  # exponents capped at 709: a term that large only needs its sign
            ea, eb = math.exp(min(p * d, 709.0)), math.exp(min(-c * p * d, 709.0))
            es = math.exp(min(p * r * d, 709.0))
            g += w1 * (a * ea - c * b * eb + r * s * es)
            h += w2 * (a * ea + c * c * b * eb + r * r * s * es)
        return g, h

    singles = [float(lp_log_step(a, b, p, c)) for _, _, p, a, b, _ in terms if a > 0 and b > 0] or [0.0]
    lo, hi = min(singles) - 1.0, max(singles) + 1.0
    for _ in range(200):
        g_lo, g_hi = derivatives(lo)[0], derivatives(hi)[0]
        if g_lo < 0 < g_hi:
            break
        width = hi - lo
        lo, hi = (lo if g_lo < 0 else lo - 2 * width), (hi if g_hi > 0 else hi + 2 * width)
    d = 0.5 * (lo + hi)
    for _ in range(200):
        g, h = derivatives(d)
        lo, hi = (d if g < 0 else lo), (d if g > 0 else hi)
        step = d - g / h
        new = step if lo < step < hi else 0.5 * (lo + hi)
        if abs(new - d) <= 1e-15 * max(1.0, abs(d)):
            return new
        d = new
    return d


def _phi(graph: CostGraph, c: float, A, B, S, d) -> np.ndarray:
    """The units' local cost after a log step ``d`` (L-infinity: the largest of in, out, loops)."""
    ps = np.asarray(graph.exponents)[:, None]
    parts = (A * np.exp(ps * d), B * np.exp(-c * ps * d), S * np.exp(ps * loop_rate(c) * d))
    if graph.linf:
        return np.maximum(np.maximum(parts[0], parts[1]), parts[2])[0]
    alphas = np.asarray(graph.alphas)[:, None]
    return (alphas * (parts[0] + parts[1] + parts[2])).sum(axis=0)


def best_pow2_step(graph: CostGraph, c: float, A, B, S, delta) -> np.ndarray:
    """The power-of-two step (multiple of log 2) nearest the optimum with the lowest cost.

    Candidates are the two grid points around ``delta`` and 0, so the cost never increases and a
    unit already at its best grid point stays put.
    """
    k = np.floor(delta / LN2)
    candidates = np.stack([np.zeros_like(delta), k * LN2, (k + 1) * LN2])
    costs = np.stack([_phi(graph, c, A, B, S, d) for d in candidates])
    # Prefer the current point unless a move lowers the cost by more than rounding noise.
    costs[1:] = np.where(costs[1:] < costs[0] * (1 - 1e-12), costs[1:], np.inf)
    return candidates[np.argmin(costs, axis=0), np.arange(len(delta))]
