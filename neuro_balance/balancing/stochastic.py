"""The one-unit-at-a-time inner loop of the stochastic algorithm: one BLAS call and Python floats per update.

For every population with free units, a unit's fan-in (its row of every incoming ``K``) and fan-out (its
column of every outgoing ``K``) are laid side by side in one contiguous row of ``R`` (``n x L``), and
the scale vectors they meet in the two rows of ``M`` (``2 x L``): row 0 holds ``b`` of the pre units
of the incoming blocks, row 1 ``a`` of the post units of the outgoing ones. ``M @ R[i]`` is then the
unit's in- and out-cost sums in one call, O(fan-in + fan-out) (maxima under L-infinity). Blocks from or
to populations without free units never change: they are summed once into constant offsets (with the
bias). After a step the unit writes its new ``a`` and ``b`` into the ``M`` of every population it
shares a parameter with. The steps are those of `BalanceState.balance_one`, in the same order (sums in
another order, so equal to rounding).

Used for a single Lp term or L-infinity without a power-of-two grid; weighted sums of terms take
`BalanceState.balance_one`.
"""
from __future__ import annotations

import math

import numpy as np

from .closed_form import lambda_exponent, linf_log_step, loop_rate, out_factor
from .state import IN, OUT, BalanceState
from .unit_step import scalar_root
from .verify import step_error

__all__ = ["UnitLoop"]


class UnitLoop:
    """`BalanceState.balance_one` for a list of units, laid out for speed (see the module docstring).

    Parameters
    ----------
    state : BalanceState
        Read at construction; `run` works on private copies of its log-scales, `sync` writes them back.
    units : list of (population, unit index)
        The units `run` addresses by position.
    """

    def __init__(self, state: BalanceState, units: list[tuple[str, int]]) -> None:
        g = state.graph
        self.state = state
        p = g.exponents[0]
        moving = {name for name in g.sizes if g.free[name].any()}
        self._u = {name: state.u[name].tolist() for name in moving}
        self._ea = {name: state.ea[0][name].tolist() for name in moving}
        self._eb = {name: state.eb[0][name].tolist() for name in moving}
        pops, writes = {}, {name: ([], []) for name in moving}  # writes: (row of M, offset) for b, then for a
        agg = np.maximum if g.linf else np.add
        for name in moving:
            const_in = g.bias[name][0].copy() if name in g.bias else np.zeros(g.sizes[name])
            const_out = np.zeros(g.sizes[name])
            parts, vec_in, vec_out, offset = [], [], [], 0
            for side, ks, const, vecs in ((IN, state.into[name], const_in, vec_in),
                                          (OUT, state.out_of[name], const_out, vec_out)):
                for k in ks:
                    blk = g.blocks[k]
                    other = blk.pre if side == IN else blk.post
                    if other not in moving:
                        agg(const, state.product(side, k, 0), out=const)
                        continue
                    parts.append(blk.K[0] if side == IN else blk.K[0].T)
                    vecs.append((other, offset))
                    offset += g.sizes[other]
            if len(parts) > 1:
                R = np.concatenate(parts, axis=1)
            else:  # a single incoming K is its own layout: no copy
                R = np.ascontiguousarray(parts[0]) if parts else np.zeros((g.sizes[name], 1))
            M = np.zeros((2, max(offset, 1)))
            for column, vecs, scale in ((0, vec_in, state.eb[0]), (1, vec_out, state.ea[0])):
                for other, start in vecs:
                    M[column, start:start + g.sizes[other]] = scale[other]
                    writes[other][column].append((M[column], start))
            c = g.degree[name]
            loops = g.loops[name][0].tolist() if name in g.loops and c != 1.0 else None
            sums = (lambda row, M=M: (M * row).max(axis=1)) if g.linf else M.dot
            pops[name] = (list(R), sums, const_in.tolist(), const_out.tolist(), self._u[name], self._ea[name],
                          self._eb[name], p, p * c, out_factor(c, g.linf), lambda_exponent(p, c, g.linf), loops,
                          p * loop_rate(c), c, writes[name])
        self._plan = [(pops[name], i) for name, i in units]
        self._units = units

    def run(self, order, fraction: float = 1.0) -> None:
        """Balance ``units[k]`` for every ``k`` of ``order``, one after the other.

        Raises
        ------
        NumericalError
            When a unit's in- or out-cost, or its factor, leaves float64 (naming the unit).
        """
        exp, log, graph = math.exp, math.log, self.state.graph
        plan, linf = self._plan, graph.linf
        agg = max if linf else float.__add__
        k = None
        try:
            for k in order:
                pop, i = plan[k]
                rows, sums, cin, cout, u, ea, eb, p, pc, factor, power, loops, rate, c, (write_b, write_a) = pop
                s_in, s_out = sums(rows[i]).tolist()
                A, B = ea[i] * agg(s_in, cin[i]), eb[i] * agg(s_out, cout[i])
                if loops is not None and loops[i] > 0.0:
                    S = loops[i] * exp(rate * u[i])
                    delta = float(linf_log_step(A, B, S, c)) if linf else scalar_root(graph, c, [A], [B], [S])
                else:
                    delta = log(factor * B / A) * power
                ui = u[i] + delta * fraction
                u[i] = ui
                a, b = exp(p * ui), exp(-pc * ui)
                ea[i], eb[i] = a, b
                for row, start in write_b:
                    row[start + i] = b
                for row, start in write_a:
                    row[start + i] = a
        except (ValueError, ZeroDivisionError, OverflowError) as err:  # log(0), x / 0, exp(> 709)
            name, i = self._units[k]
            raise step_error(name, i, err) from None

    def sync(self) -> None:
        """Write the log-scales and factors of `run` back into the state (its cached products go stale)."""
        st = self.state
        for name, u in self._u.items():
            st.u[name][:] = u
            st.ea[0][name][:] = self._ea[name]
            st.eb[0][name][:] = self._eb[name]
            st.moved(name)
