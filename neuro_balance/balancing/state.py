"""Log-scales of a cost graph under local balancing, with each block's two products computed once per change.

A block ``K`` from population ``pre`` to ``post`` gives its post units the in-cost share ``K @ b_pre`` and
its pre units the out-cost share ``a_post @ K`` (``b = exp(-p c u)``, ``a = exp(p u)``; maxima under
L-infinity). The first depends on ``pre``'s log-scales only, the second on ``post``'s: each product is
kept with the version of the population it depends on and recomputed only after that population moved.
In a layered network a colour sweep then reads every K twice (once per side) and the imbalance after
the sweep costs no further read, because the products it needs are the ones the next sweep starts with.
"""
from __future__ import annotations

import math
from functools import reduce

import numpy as np

from .closed_form import linf_log_step, loop_rate, lp_log_step
from .flat import balance_sides, cols_max, rows_max
from .graph import CostGraph
from .unit_step import LN2, best_pow2_step, optimal_log_step, scalar_root
from .verify import step_error

__all__ = ["BalanceState"]

IN, OUT = 0, 1  # the two products of a block: K @ b_pre (in-cost shares), a_post @ K (out-cost shares)


class BalanceState:
    """Log-scales ``u`` of a cost graph with cached ``exp`` factors and block products for cheap local updates.

    In-costs read rows of each block's ``K``, out-costs its columns; a product over a whole block is
    cached until the population it depends on moves (`shift`, `balance_one`, `moved`). ``ea[t][name]``
    and ``eb[t][name]`` hold ``exp(p_t u)`` and ``exp(-p_t c u)``; ``into[name]`` and ``out_of[name]``
    the indices of the blocks into and out of a population. A step of a few units
    that finds no fresh product reads only their rows (``K[idx] @ b``) and columns (rows of a
    transposed copy made once on first use).
    """

    def __init__(self, graph: CostGraph, u: dict[str, np.ndarray] | None = None) -> None:
        self.graph = graph
        self.u = {name: np.array(v, dtype=np.float64) for name, v in (u or graph.zeros()).items()}
        self.into = {name: [] for name in graph.sizes}
        self.out_of = {name: [] for name in graph.sizes}
        for k, blk in enumerate(graph.blocks):
            self.into[blk.post].append(k)
            self.out_of[blk.pre].append(k)
        self._transposed: dict[int, np.ndarray] = {}
        self._fast: dict[str, list[tuple]] = {}
        self._version = dict.fromkeys(graph.sizes, 0)
        self._everyone = {name: np.arange(n) for name, n in graph.sizes.items()}
        anchored = {name: graph.flat.anchored[sl] for name, sl in graph.flat.slices.items()}
        self._anchored = [(name, None if m.all() else m) for name, m in anchored.items() if m.any()]
        self._w1 = graph.flat.w1
        self._products: dict[tuple[int, int, int], tuple[int, np.ndarray]] = {}
        self.ea, self.eb = [], []
        for p in graph.exponents:
            self.ea.append({n: np.exp(p * v) for n, v in self.u.items()})
            self.eb.append({n: np.exp(-p * graph.degree[n] * v) for n, v in self.u.items()})

    def _rows_of_transpose(self, K: np.ndarray, idx) -> np.ndarray:
        """``K[:, idx].T`` as rows of a contiguous transposed copy of ``K`` (made once)."""
        KT = self._transposed.get(id(K))
        if KT is None:
            KT = self._transposed[id(K)] = np.ascontiguousarray(K.T)
        return KT[idx]

    def _fresh(self, side: int, k: int, t: int) -> np.ndarray | None:
        """Block ``k``'s cached product ``side`` for term ``t`` if its population has not moved since."""
        blk = self.graph.blocks[k]
        hit = self._products.get((side, k, t))
        src = blk.pre if side == IN else blk.post
        return hit[1] if hit is not None and hit[0] == self._version[src] else None

    def product(self, side: int, k: int, t: int, idx: np.ndarray | None = None) -> np.ndarray:
        """Block ``k``'s in-cost shares (``side=IN``, per post unit) or out-cost shares (``OUT``, per pre unit).

        Without ``eb``/``ea`` of the units themselves. ``idx``: only these units; a product over all
        units is cached, one over ``idx`` is read from the cache or from rows ``idx`` alone.
        """
        g = self.graph
        blk = g.blocks[k]
        vec = self._fresh(side, k, t)
        if vec is not None:
            return vec if idx is None else vec[idx]
        K = blk.K[t]
        if side == IN:
            v = self.eb[t][blk.pre]
            rows = K if idx is None else K[idx]
            vec = rows_max(rows, v) if g.linf else rows @ v
        else:
            v = self.ea[t][blk.post]
            if idx is None:
                vec = cols_max(v, K) if g.linf else v @ K
            else:
                KT = self._rows_of_transpose(K, idx)
                vec = rows_max(KT, v) if g.linf else KT @ v
        if idx is None:
            self._products[(side, k, t)] = (self._version[blk.pre if side == IN else blk.post], vec)
        return vec

    def local_costs(self, name: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Current ``A, B, S`` (each ``(n_terms, len(idx))``) of units ``idx`` of population ``name``."""
        return self._costs(name, self._selection(name, idx), len(idx))

    def _selection(self, name: str, idx: np.ndarray) -> np.ndarray | slice:
        """``idx``, or a full slice when it is every unit of ``name`` in order (products from the cache)."""
        whole = len(idx) == self.graph.sizes[name] and np.array_equal(idx, self._everyone[name])
        return slice(None) if whole else idx

    def _costs(self, name: str, idx: np.ndarray | slice, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`local_costs` of ``n`` units ``idx`` (a `_selection`)."""
        g = self.graph
        sel = None if isinstance(idx, slice) else idx
        agg = np.maximum if g.linf else np.add
        A, B, S = np.empty((g.n_terms, n)), np.empty((g.n_terms, n)), np.zeros((g.n_terms, n))
        for t, p in enumerate(g.exponents):
            ins = [self.product(IN, k, t, sel) for k in self.into[name]]
            if name in g.bias:
                ins.append(g.bias[name][t][idx])
            outs = [self.product(OUT, k, t, sel) for k in self.out_of[name]]
            np.multiply(reduce(agg, ins) if ins else 0.0, self.ea[t][name][idx], out=A[t])
            np.multiply(reduce(agg, outs) if outs else 0.0, self.eb[t][name][idx], out=B[t])
            if name in g.loops:
                S[t] = g.loops[name][t][idx] * np.exp(p * loop_rate(g.degree[name]) * self.u[name][idx])
        return A, B, S

    def check(self) -> tuple[float, float]:
        """The max relative imbalance over the anchored units and ``F(u)``, from fresh or cached products.

        The imbalance is `FlatGraph.max_imbalance`'s; each block's share of ``F`` is summed from
        whichever of its products is fresh (the in-costs of ground units serve nothing else).
        """
        g = self.graph
        worst = 0.0
        for name, mask in self._anchored:
            A, B, S = self._costs(name, slice(None), self.graph.sizes[name])
            if mask is not None:
                A, B, S = A[:, mask], B[:, mask], S[:, mask]
            gin, gout = balance_sides(g.linf, self._w1, A, B, S, g.degree[name])
            top = np.maximum(gin, gout)
            live = top > 0
            if live.any():  # NaN (a cost that left float64) wins: max() alone would drop it
                here = float(np.max(np.abs(gin[live] - gout[live]) / top[live]))
                worst = here if here != here or here > worst else worst
            if np.isnan(top).any():
                worst = math.nan
        total = [0.0] * g.n_terms
        for t, p in enumerate(g.exponents):
            shares = []
            for k, blk in enumerate(g.blocks):
                outs = self._fresh(OUT, k, t)
                shares.append((self.ea[t][blk.post], self.product(IN, k, t)) if outs is None
                              else (outs, self.eb[t][blk.pre]))
            shares += [(costs[t], self.ea[t][name]) for name, costs in g.bias.items()]
            shares += [(costs[t], np.exp(p * loop_rate(g.degree[name]) * self.u[name]))
                       for name, costs in g.loops.items()]
            if g.linf:
                total[t] = max((x * y).max(initial=0.0) for x, y in shares) if shares else 0.0
            else:
                total[t] = sum(float(np.dot(x, y)) for x, y in shares)
        return worst, max(total) if g.linf else float(np.dot(g.alphas, total))

    def moved(self, name: str) -> None:
        """Mark the cached products that depend on ``name``'s log-scales as stale."""
        self._version[name] += 1

    def shift(self, name: str, idx: np.ndarray | slice, delta: np.ndarray) -> None:
        """Add ``delta`` to the log-scales of units ``idx`` (indices or a slice) of ``name``; refresh the caches."""
        u = self.u[name]
        u[idx] += delta
        c = self.graph.degree[name]
        self.moved(name)
        for t, p in enumerate(self.graph.exponents):
            self.ea[t][name][idx] = np.exp(p * u[idx])
            self.eb[t][name][idx] = np.exp(-p * c * u[idx])

    def _rows(self, name: str) -> list[tuple]:
        """Per term, what `balance_one` reads for a unit of ``name``: row views and scale vectors."""
        if name not in self._fast:
            g = self.graph
            self._fast[name] = [
                ([(g.blocks[k].K[t], self.eb[t][g.blocks[k].pre]) for k in self.into[name]],
                 [(self._rows_of_transpose(g.blocks[k].K[t], slice(None)), self.ea[t][g.blocks[k].post])
                  for k in self.out_of[name]],
                 g.bias[name][t] if name in g.bias else None, g.loops[name][t] if name in g.loops else None,
                 self.ea[t][name], self.eb[t][name], p)
                for t, p in enumerate(g.exponents)]
        return self._fast[name]

    def balance_one(self, name: str, i: int, fraction: float = 1.0, grid: str | None = None) -> float:
        """Balance the single unit ``i`` of ``name``; returns its log step.

        Reads row ``i`` of each incoming ``K`` and of each outgoing ``K``'s transpose as views and works
        on scalars: O(fan-in + fan-out) per update.
        """
        if grid is not None:
            return float(self.balance(name, np.array([i]), fraction, grid)[0])
        try:
            return self._balance_one(name, i, fraction)
        except (ValueError, ZeroDivisionError, OverflowError) as err:  # exp(> 709), log(0)
            raise step_error(name, i, err) from None

    def _balance_one(self, name: str, i: int, fraction: float) -> float:
        """`balance_one` without a grid."""
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
        self.moved(name)
        for t, p in enumerate(g.exponents):
            self.ea[t][name][i] = math.exp(p * ui)
            self.eb[t][name][i] = math.exp(-p * c * ui)
        return delta

    def balance(self, name: str, idx: np.ndarray, fraction: float = 1.0, grid: str | None = None) -> np.ndarray:
        """Balance units ``idx`` of ``name`` (which must share no parameter); returns the log steps."""
        sel = self._selection(name, idx)
        A, B, S = self._costs(name, sel, len(idx))
        c = self.graph.degree[name]
        delta = fraction * optimal_log_step(self.graph, c, A, B, S)
        if grid == "pow2":
            delta = best_pow2_step(self.graph, c, A, B, S, delta)
        self.shift(name, sel, delta)
        if grid == "pow2":  # keep u an exact multiple of log 2, so the factors are exact powers of two
            self.u[name][sel] = np.round(self.u[name][sel] / LN2) * LN2
        return delta
