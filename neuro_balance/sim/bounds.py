"""Spike-count quantisation bounds for the integrate-and-fire readout (no Brian2 import here).

For a non-leaky integrate-and-fire unit with reset by subtraction, over any window of length ``T``::

    dN_j = sum_i w_ji dN_i + b_j R T - dv_j                                        (exact)

(every spike subtracts exactly one threshold). Measured before balancing (weights ``w``) and after
(``w_ji lam_j / lam_i``, ``b_j lam_j``), the normalised count difference
``d_j = dN_j(before) - dN_j(after) / lam_j`` of a unit active in both windows therefore obeys::

    d_j = sum_i w_ji d_i - dv_j(before) + dv_j(after) / lam_j

A current-coded input unit keeps ``v`` in ``[0, 1)``, so ``|d_in| < 1``. Assuming every potential
stays within ``V_j = 1 + sum_i |w_ji|`` (one threshold plus one volley in which every pre unit
spikes once), ``|d_j| <= D_j`` with::

    D_in = 1,   D_j = sum_i |w_ji| D_i + V_j (1 + 1 / lam_j)   (active j),   D_j = 0 (inactive j)

The integrating output reads ``y = dv / (R T) = b + sum_j w_oj dN_j / (R T)`` exactly, so::

    |y(before) - y(after)| <= sum_j |w_oj| D_j / (R T)

and a hidden unit's rate ratio obeys ``|r_after / (lam r_before) - 1| <= D_j / dN_j(before)``.
Both shrink like ``1 / T``: the spike-count quantisation of the run length.
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
    D: dict[str, np.ndarray] = {}
    output = np.zeros(net.output.size)
    for name in net.order:
        pop = net.populations[name]
        if pop.role == "input":
            D[name] = np.ones(pop.size)
            continue
        spread = np.zeros(pop.size)
        volley = np.ones(pop.size)
        for proj in net.incoming(name):
            W = np.abs(proj.weight)
            spread += W @ D[proj.pre]
            volley += W.sum(axis=1)
        if pop.role == "output":
            output = spread / (input_rate * duration)
            continue
        lam = np.exp(log_scales.get(name, np.zeros(pop.size)))
        D[name] = np.where(acts[name][0] > 0, spread + volley * (1.0 + 1.0 / lam), 0.0)
    return QuantizationBound(output, {n: d for n, d in D.items() if net.populations[n].role == "hidden"})
