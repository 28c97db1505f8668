"""The steady-state imbalance that agents leave under multiplicative synaptic drift, predicted (no Brian2 import).

Setting (`neuro_balance.sim.Drift`, L2 cost without biases, small ``sigma``): every synapse carries
``w = w_base * exp(xi)``, ``xi`` an Ornstein-Uhlenbeck process (correlation time ``tau``, stationary
standard deviation ``sigma``) updated exactly every time step ``dt``: ``xi <- a xi + ...`` with
``a = exp(-dt / tau)``. Right after unit j balances, ``A_j = B_j``. ``m`` drift steps later each
log-factor has moved by ``dxi`` with variance ``2 sigma^2 (1 - a^m)``, independently per synapse; to
first order ``dlog A_j = sum_k (2 w_k^2 / A_j) dxi_k`` over the incoming synapses, so
``Var(dlog A_j) = 4 q_in,j Var(dxi)`` with ``q_in,j = sum_k w_k^4 / A_j^2``, the same for ``B_j``, and
the two sides are independent::

    E[log(A_j / B_j)^2] = 8 sigma^2 q_j (1 - E[a^M])

with ``M`` the number of drift steps since the unit's last event. `predicted_rms` averages
``a^M`` over the ages measured at the very samples where the imbalance is measured
(`event_ages`), which carries the step and the delays of lost conflicts. For a Poisson clock
without conflicts, ``M`` is geometric (``E[a^M] = r dt / (1 - (1 - r dt) a)``) and, as ``dt -> 0``,
``E[a^M] = r tau / (1 + r tau)``, i.e. ``rms = sigma sqrt(8 q / (1 + r tau))`` (`continuous_rms`):
at a 2 ms step and ``r tau ~ 3`` that limit lies 10-25 % above the data, the age form within a few
per cent. Neglected: a neighbour's event also moves a unit's costs (a relative correction of order
``1 / (2 sqrt(n))`` for ``n`` synapses per side) and the second order of ``exp(xi)``.
"""
from __future__ import annotations

import numpy as np

from ..model.network import Network
from .replay import BalanceEvents

__all__ = ["participation", "event_ages", "predicted_rms", "continuous_rms"]


def participation(net: Network) -> float:
    """Mean over hidden units of ``q_in + q_out = sum w^4 / A^2 + sum w^4 / B^2`` (a layered net, L2)."""
    ws = [p.weight for p in net.projections]
    q = [((ws[k] ** 4).sum(axis=1) / (ws[k] ** 2).sum(axis=1) ** 2
          + (ws[k + 1] ** 4).sum(axis=0) / (ws[k + 1] ** 2).sum(axis=0) ** 2) for k in range(len(ws) - 1)]
    return float(np.mean(np.concatenate(q)))


def event_ages(events: BalanceEvents, sizes: dict[str, int], sample_steps: np.ndarray) -> np.ndarray:
    """Drift steps since each unit's last event, at samples taken at the end of ``sample_steps``.

    An event at step ``k`` (after that step's drift update) is ``s - k`` drift steps old at the end
    of step ``s``; before its first event a unit counts from the start (balanced, ``k = -1``).
    Returns ``(n_samples, n_units)``, units in ``events.order`` then index order.
    """
    sample_steps = np.asarray(sample_steps, dtype=np.int64)
    columns = []
    for name in events.order:
        sel = events.population == name
        for unit in range(sizes[name]):
            steps = np.concatenate([[-1], np.sort(events.step[sel & (events.index == unit)])])
            last = steps[np.searchsorted(steps, sample_steps, side="right") - 1]
            columns.append(sample_steps - last)
    return np.stack(columns, axis=1) if columns else np.zeros((len(sample_steps), 0), dtype=np.int64)


def predicted_rms(sigma: float, q: float, ages: np.ndarray, dt: float, tau: float) -> float:
    """Steady-state ``rms log(A / B)`` for units whose last events are ``ages`` drift steps old.

    Parameters
    ----------
    sigma, tau : float
        The drift's stationary standard deviation and correlation time (s).
    q : float
        `participation` of the network.
    ages : ndarray of int
        Ages (`event_ages`) at the samples where the imbalance is measured.
    dt : float
        Time step of the simulation and of the drift (s).
    """
    a = np.exp(-dt / tau)
    return float(sigma * np.sqrt(8.0 * q * (1.0 - np.mean(a ** np.asarray(ages, dtype=np.float64)))))


def continuous_rms(sigma: float, q: float, r_tau) -> np.ndarray:
    """The continuous-time limit ``sigma sqrt(8 q / (1 + r tau))`` (Poisson events at rate ``r``, ``dt -> 0``)."""
    return sigma * np.sqrt(8.0 * q / (1.0 + np.asarray(r_tau, dtype=np.float64)))
