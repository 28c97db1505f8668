"""Spike-count quantisation bounds for the integrate-and-fire readout (no Brian2 import here).

For a non-leaky integrate-and-fire unit with reset by subtraction, over any window of length ``T``::

    dN_j = sum_i w_ji dN_i + b_j R T - dv_j                                        (exact)

(every spike subtracts exactly one threshold). Measured before balancing (weights ``w``) and after
(``w_ji lam_j / lam_i``, ``b_j lam_j``), the normalised count difference
``d_j = dN_j(before) - dN_j(after) / lam_j`` of a unit active in both windows therefore obeys::

    d_j = sum_i w_ji d_i + e_j,      e_j = -dv_j(before) + dv_j(after) / lam_j

exactly, with the sum over active units (units the ANN says are silent never spike: ``d = 0``).
So ``d = Q e`` with ``Q = (I - W_active)^-1`` (signed: paths of opposite sign cancel), and the
integrating output, read as ``y = dv / (R T) = b + sum_j w_oj dN_j / (R T)``, moves by exactly
``(W_o Q e) / (R T)``. A current-coded input unit keeps ``v`` in ``[0, 1)``, so ``|e_in| < 2``.
Assuming every hidden potential stays within a range ``V_j = 1 + sum_i |w_ji|`` (one threshold plus
one volley in which every pre unit spikes once; ``V'_j`` from the balanced weights),
``|e_j| <= E_j = V_j + V'_j / lam_j`` and::

    |y(before) - y(after)|_o <= sum_j |(W_o Q)_oj| E_j / (R T)
    |r_after / (lam_j r_before) - 1| <= sum_k |Q_jk| E_k / dN_j(before)

Both shrink like ``1 / T``: the spike-count quantisation of the run length. Propagating the signed
``Q`` instead of ``|W|`` layer by layer keeps the bound within a small factor of the errors seen.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.network import Network

__all__ = ["QuantizationBound", "quantization_bound"]


@dataclass
class QuantizationBound:
    """Bounds of `quantization_bound`.

    Attributes
    ----------
    output : ndarray
        Bound on ``|y_before - y_after|`` per output unit.
    count : dict of ndarray
        ``D_j`` per hidden population: bound on the normalised count difference (spikes).
    """

    output: np.ndarray
    count: dict[str, np.ndarray]

    def ratio(self, name: str, counts_before: np.ndarray) -> np.ndarray:
        """Bound on ``|r_after / (lam r_before) - 1|`` for units of ``name`` with these counts."""
        with np.errstate(divide="ignore"):
            return np.where(counts_before > 0, self.count[name] / np.maximum(counts_before, 1), np.inf)


def quantization_bound(net: Network, x: np.ndarray, log_scales: dict[str, np.ndarray], input_rate: float,
                       duration: float) -> QuantizationBound:
    """Spike-count quantisation bound of a before/after comparison (see the module docstring).

    Parameters
    ----------
    net : Network
        The feedforward network before balancing (ReLU hidden units, integrating output).
    x : ndarray, shape (n_in,)
        The current-coded input (``>= 0``).
    log_scales : dict of ndarray
        Cumulative log-scales applied between the two windows.
    input_rate : float
        ``R`` in Hz.
    duration : float
        Window length ``T`` in seconds.
    """
    acts = net.forward(np.asarray(x, dtype=np.float64)[None, :], return_all=True)
    units = [n for n in net.order if net.populations[n].role != "output"]
    offset = dict(zip(units, np.cumsum([0] + [net.populations[n].size for n in units])))
    n = offset[units[-1]] + net.populations[units[-1]].size
    active = np.concatenate([acts[u][0] > 0 for u in units])
    W = np.zeros((n, n))
    W_out = np.zeros((net.output.size, n))
    E = np.zeros(n)
    for name in units:
        pop, sl = net.populations[name], slice(offset[name], offset[name] + net.populations[name].size)
        if pop.role == "input":
            E[sl] = 2.0
            continue
        lam = np.exp(log_scales.get(name, np.zeros(pop.size)))
        volley, volley_after = np.ones(pop.size), 1.0 / lam
        for proj in net.incoming(name):
            pre = slice(offset[proj.pre], offset[proj.pre] + net.populations[proj.pre].size)
            W[sl, pre] = proj.weight
            lam_pre = np.exp(log_scales.get(proj.pre, np.zeros(net.populations[proj.pre].size)))
            volley = volley + np.abs(proj.weight).sum(axis=1)
            volley_after = volley_after + (np.abs(proj.weight) / lam_pre[None, :]).sum(axis=1)
        E[sl] = volley + volley_after  # V_j + V'_j / lam_j
    for proj in net.incoming(net.output.name):
        pre = slice(offset[proj.pre], offset[proj.pre] + net.populations[proj.pre].size)
        W_out[:, pre] = proj.weight
    E = np.where(active, E, 0.0)
    W = W * active[:, None] * active[None, :]
    Q = np.linalg.inv(np.eye(n) - W)
    D = np.abs(Q) @ E
    output = np.abs(W_out @ Q) @ E / (input_rate * duration)
    return QuantizationBound(output, {u: D[offset[u]:offset[u] + net.populations[u].size] for u in units
                                      if net.populations[u].role == "hidden"})
