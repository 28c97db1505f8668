"""The cost graph as one vector: every unit's log-scale in one array, each block two mat-vecs over its K.

With ``a = exp(p u_post)`` and ``b = exp(-p c u_pre)`` the cost of a block is ``a^T K b``; the in-costs
of its post units are ``a * (K @ b)`` and the out-costs of its pre units ``b * (a @ K)`` (maxima under
L-infinity). `FlatGraph.evaluate` computes all of them at once: two passes over every K, nothing
else read, nothing copied. The global solver and the cost graph's statistics both work from here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arena import empty_like_all
from .closed_form import linf_sides, loop_rate

__all__ = ["FlatGraph", "Point", "balance_sides", "rows_max", "cols_max", "both_products"]

_CHUNK = 64  # rows per chunk of an L-infinity product: the temporary stays in cache
CACHED = 16 << 20  # bytes of K above which a pair of products reads K once, a cache-sized chunk at a time
_ROWS_BYTES = 512 << 10  # bytes of K per chunk of rows in `both_products`


def both_products(K: np.ndarray, x: np.ndarray, y: np.ndarray, chunked: bool) -> tuple[np.ndarray, np.ndarray]:
    """``K @ x`` and ``y @ K``; ``chunked``: reading K from memory once, a chunk of rows at a time.

    Two separate products read K twice, which costs twice as much once the K of all blocks no longer
    fits in cache; a chunk of rows is read once and used for both while it is in cache.
    """
    if not chunked:
        return K @ x, y @ K
    step = max(1, _ROWS_BYTES // max(1, K.shape[1] * K.itemsize))
    rows, cols, part = np.empty(K.shape[0], dtype=K.dtype), np.zeros(K.shape[1], dtype=K.dtype), \
        np.empty(K.shape[1], dtype=K.dtype)
    for start in range(0, K.shape[0], step):
        chunk = K[start:start + step]
        np.dot(chunk, x, out=rows[start:start + step])
        np.dot(y[start:start + step], chunk, out=part)
        cols += part
    return rows, cols


def rows_max(K: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``max_j K[i, j] * b[j]`` per row (0 for an empty row), without a temporary the size of ``K``."""
    out = np.zeros(K.shape[0])
    for start in range(0, K.shape[0], _CHUNK):
        part = K[start:start + _CHUNK] * b
        part.max(axis=1, initial=0.0, out=out[start:start + _CHUNK])
    return out


def cols_max(a: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``max_i a[i] * K[i, j]`` per column (0 for an empty column), chunked like `rows_max`."""
    out = np.zeros(K.shape[1])
    for start in range(0, K.shape[0], _CHUNK):
        part = K[start:start + _CHUNK] * a[start:start + _CHUNK, None]
        np.maximum(out, part.max(axis=0, initial=0.0), out=out)
    return out


def balance_sides(linf: bool, weights: np.ndarray, A: np.ndarray, B: np.ndarray, S: np.ndarray, c):
    """The two sides of every unit's balance equation from costs ``A, B, S`` of shape ``(n_terms, n)``.

    Lp: ``sum_t alpha_t p_t (A_t + S_t)`` and ``c sum_t alpha_t p_t (B_t + S_t)`` (``weights`` are the
    ``alpha_t p_t``); the cost is stationary in a unit's scale exactly when they are equal. L-infinity:
    `closed_form.linf_sides`.
    """
    if linf:
        return linf_sides(A[0], B[0], S[0], c)
    return weights @ (A + S), c * (weights @ (B + S))


@dataclass
class Point:
    """The cost graph evaluated at flat log-scales ``u``: scale vectors, unit costs and block sums."""

    u: np.ndarray
    ea: np.ndarray  # (n_terms, n): exp(p u)
    eb: np.ndarray  # (n_terms, n): exp(-p c u)
    A: np.ndarray  # (n_terms, n): in-costs (biases included), loops excluded
    B: np.ndarray  # (n_terms, n): out-costs, loops excluded
    S: np.ndarray  # (n_terms, n): loop costs
    ins: list  # per block: its share of each post unit's in-cost
    outs: list  # per block: its share of each pre unit's out-cost


class FlatGraph:
    """A `CostGraph` laid out over one vector of units (population after population).

    Attributes
    ----------
    slices : dict
        The units of each population in the flat vector.
    c, rate : ndarray
        Degree and `closed_form.loop_rate` of every unit.
    free, anchored : ndarray of bool
        Units balancing scales; units whose balance is reported (free or pinned).
    blocks : list of (term, K, post slice, pre slice, pre degree)
    bias, loops : list of (term, slice, costs)
    """

    def __init__(self, graph) -> None:
        names = list(graph.sizes)
        offsets = np.cumsum([0] + [graph.sizes[n] for n in names])
        self.slices = {n: slice(int(offsets[k]), int(offsets[k + 1])) for k, n in enumerate(names)}
        self.n = int(offsets[-1])
        self.linf = graph.linf
        self.ps = np.asarray(graph.exponents, dtype=np.float64)
        self.alphas = np.asarray(graph.alphas, dtype=np.float64)
        self.w1 = self.alphas * self.ps
        self.w2 = self.w1 * self.ps
        self.c = self._concat(lambda n: np.full(graph.sizes[n], graph.degree[n]))
        self.rate = loop_rate(self.c)
        self.blocks = [(t, blk.K[t], self.slices[blk.post], self.slices[blk.pre], graph.degree[blk.pre])
                       for t in range(graph.n_terms) for blk in graph.blocks]
        self.bias = [(t, self.slices[n], costs[t]) for n, costs in graph.bias.items() for t in range(graph.n_terms)]
        self.loops = [(t, self.slices[n], costs[t]) for n, costs in graph.loops.items() for t in range(graph.n_terms)]
        self.names = names
        self.chunked = sum(blk[1].nbytes for blk in self.blocks) > CACHED
        self._sizes = [sl.stop - sl.start for sl in self.slices.values()]
        self.population = np.repeat(np.arange(len(self._sizes)), self._sizes)
        self.set_masks(graph)

    def set_masks(self, graph) -> None:
        """Read the graph's masks again (free, pinned): they change once, when dead and ground-less units are marked."""
        self.free = self._concat(lambda n: graph.free[n]).astype(bool)
        self.anchored = self.free | self._concat(lambda n: graph.pinned[n]).astype(bool)
        self.anchored_index = np.flatnonzero(self.anchored)
        self.free_mask = self.free.astype(np.float64)
        self.all_free = np.repeat([bool(self.free[sl].all()) for sl in self.slices.values()], self._sizes)
        # Blocks joining free units on both sides: the off-diagonal part of the Hessian.
        self.inner = [bool(self.free[post].any() and self.free[pre].any()) for _, _, post, pre, _ in self.blocks]

    def blocks_as(self, dtype) -> list[np.ndarray | None]:
        """Copies of the inner blocks' K in ``dtype`` (one allocation), None for the other blocks."""
        slots = iter(empty_like_all([blk[1] for blk, keep in zip(self.blocks, self.inner) if keep], dtype))
        out = []
        for blk, keep in zip(self.blocks, self.inner):
            out.append(next(slots) if keep else None)
            if keep:
                out[-1][...] = blk[1]
        return out

    def _concat(self, per_population) -> np.ndarray:
        parts = [per_population(n) for n in self.slices]
        return np.concatenate(parts) if parts else np.zeros(0)

    def pack(self, u: dict[str, np.ndarray]) -> np.ndarray:
        """Flat log-scales from per-population ones."""
        return self._concat(lambda n: np.asarray(u[n], dtype=np.float64))

    def unpack(self, v: np.ndarray) -> dict[str, np.ndarray]:
        """Per-population views of flat ``v``."""
        return {n: v[sl] for n, sl in self.slices.items()}

    def evaluate(self, u: np.ndarray) -> Point:
        """All unit costs and block sums at flat log-scales ``u``: two passes over every K."""
        T = len(self.ps)
        pu = self.ps[:, None] * u
        ea, eb = np.exp(pu), np.exp(-pu * self.c)
        A, B, S = np.zeros((T, self.n)), np.zeros((T, self.n)), np.zeros((T, self.n))
        ins, outs = [], []
        agg = np.maximum if self.linf else np.add
        for t, K, post, pre, _ in self.blocks:
            a, b = ea[t, post], eb[t, pre]
            if self.linf:
                i, o = a * rows_max(K, b), b * cols_max(a, K)
            else:
                i, o = both_products(K, b, a, self.chunked)
                i *= a
                o *= b
            agg(A[t, post], i, out=A[t, post])
            agg(B[t, pre], o, out=B[t, pre])
            ins.append(i)
            outs.append(o)
        for t, sl, costs in self.bias:
            agg(A[t, sl], costs * ea[t, sl], out=A[t, sl])
        for t, sl, costs in self.loops:
            S[t, sl] = costs * np.exp(self.ps[t] * self.rate[sl] * u[sl])
        return Point(u, ea, eb, A, B, S, ins, outs)

    def cost(self, pt: Point) -> float:
        """``F(u)``: the cost of all parameters (the largest one under L-infinity)."""
        if self.linf:
            return float(max(pt.A.max(initial=0.0), pt.S.max(initial=0.0)))
        return float(self.alphas @ (pt.A.sum(axis=1) + pt.S.sum(axis=1)))

    def max_imbalance(self, pt: Point) -> float:
        """The largest relative imbalance ``|in - out| / max(in, out)`` over the anchored units."""
        gin, gout = balance_sides(self.linf, self.w1, pt.A, pt.B, pt.S, self.c)
        gin, gout = gin[self.anchored_index], gout[self.anchored_index]
        top = np.maximum(gin, gout)
        gap = np.abs(gin - gout)
        return float(np.divide(gap, top, out=np.zeros_like(gap), where=top > 0).max(initial=0.0))
