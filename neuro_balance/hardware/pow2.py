"""Quantisation-aware balancing: every factor a power of two, applied as exact shifts.

`neuro_balance.balance` with ``scale_grid="pow2"`` finds log-scales ``u_i = k_i log 2`` (each unit
moves to the power of two of lowest cost, so the cost never increases). Multiplying a weight by
``exp(u_i - u_j)`` in floating point is, however, not an exact power of two (``exp(k log 2)`` is off
by an ulp for most ``k``). On chip a power of two is a shift of the mantissa or a change of the
shared exponent, so `balance_pow2` rounds the log-scales to the integers ``k_i`` and applies
``w * 2**(k_i - c_j k_j)`` with `numpy.ldexp`, which is exact: the balanced network computes the
same function as the original up to the float rounding of the forward pass only, and every
weight's mantissa is unchanged.

A grid finer than powers of two (a chip's mantissa grid) would not help: a non-power-of-two factor
needs a rounding multiplication of every stored mantissa, which is a second quantisation, not a
rescaling.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..costs import Cost
from ..engines import BalanceResult, balance
from ..kinds import get_kind
from ..network import Network

__all__ = ["Pow2Balance", "balance_pow2", "apply_pow2"]

_LN2 = math.log(2.0)


@dataclass
class Pow2Balance:
    """Result of `balance_pow2`.

    Attributes
    ----------
    network : Network
        The original network with every parameter multiplied by an exact power of two.
    exponents : dict of ndarray of int
        ``k`` per balanced unit (``lam = 2**k``).
    result : BalanceResult
        The engine's result (costs, history, convergence).
    """

    network: Network
    exponents: dict[str, np.ndarray]
    result: BalanceResult

    def __repr__(self) -> str:
        ks = np.concatenate([v for v in self.exponents.values()]) if self.exponents else np.zeros(0, int)
        return (f"Pow2Balance(exponents in [{ks.min(initial=0)}, {ks.max(initial=0)}], "
                f"cost {self.result.cost_before:.6g} -> {self.result.cost_after:.6g})")


def apply_pow2(net: Network, exponents: dict[str, np.ndarray]) -> Network:
    """Multiply every parameter on j->i by ``2**(k_i - c_j k_j)`` exactly (`numpy.ldexp`).

    Parameters
    ----------
    net : Network
    exponents : dict of int arrays
        ``k`` per unit of balanced populations; ``c_j k_j`` must be an integer.

    Returns
    -------
    Network
    """
    out = net.copy()
    k = {name: np.asarray(v, dtype=np.int64) for name, v in exponents.items()}
    for proj in out.projections:
        if proj.post not in k and proj.pre not in k:
            continue
        pre, post = out.populations[proj.pre], out.populations[proj.post]
        post_idx, pre_idx = get_kind(proj.kind).groups(proj, pre, post)
        shift = np.zeros(np.broadcast_shapes(np.shape(post_idx), np.shape(pre_idx)), dtype=np.int64)
        if proj.post in k:
            shift = shift + k[proj.post][post_idx]
        if proj.pre in k:
            scaled = pre.degree * k[proj.pre]
            if not np.all(scaled == np.rint(scaled)):
                raise ValueError(f"apply_pow2: degree {pre.degree} of {proj.pre!r} times its exponents is not an "
                                 "integer; powers of two are exact only for integer degrees")
            shift = shift - np.rint(scaled).astype(np.int64)[pre_idx]
        proj.weight = np.ldexp(proj.weight, np.broadcast_to(shift, proj.weight.shape))
    for name, values in k.items():
        pop = out.populations[name]
        if pop.bias is not None:
            pop.bias = np.ldexp(pop.bias, values)
    return out


def balance_pow2(net: Network, cost: Cost, method: str = "sweep", **kwargs) -> Pow2Balance:
    """Balance with every factor a power of two, applied exactly.

    Parameters
    ----------
    net : Network
    cost : Cost
    method : {"sweep", "stochastic"}
        Local engine (the global solver has no grid).
    **kwargs
        Passed to `neuro_balance.balance` (``seed``, ``schedule``, ``max_iter``, ...).

    Returns
    -------
    Pow2Balance

    Examples
    --------
    >>> import neuro_balance as nb
    >>> res = balance_pow2(nb.mlp([6, 8, 8, 3], seed=2), nb.Lp(2))
    >>> all(v.dtype.kind == "i" for v in res.exponents.values())
    True
    """
    res = balance(net, cost, method=method, scale_grid="pow2", **kwargs)
    exponents = {name: np.rint(u / _LN2).astype(np.int64) for name, u in res.log_scales.items()}
    return Pow2Balance(apply_pow2(net, exponents), exponents, res)
