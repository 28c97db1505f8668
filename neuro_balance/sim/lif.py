"""What the rate exchange does to a leaky integrate-and-fire neuron, and the exact gauge that does nothing.

Rate exchange (what balancing does): a unit's incoming weights are multiplied by ``lam`` and its
outgoing ones divided by ``lam``. For a non-leaky integrate-and-fire unit the rate is homogeneous,
``r(lam mu) = lam r(mu)``, and the exchange keeps the network's function exactly. A LIF with
refractoriness (``tau dv/dt = -(v - v_rest) + mu``, threshold ``theta`` and reset ``rho`` measured
from rest, dead time ``t_ref``) has, for a constant drive ``mu > theta``::

    r(mu) = 1 / (t_ref + tau log((mu - rho) / (mu - theta)))                                   (exact)

which is not homogeneous. High-rate linear regime: for ``mu >> theta``,
``tau log((mu - rho) / (mu - theta)) = tau D / (mu - m) + O(mu^-3)`` with ``D = theta - rho`` and
``m = (theta + rho) / 2`` (the two first orders of the expansion in ``1 / mu`` agree), so::

    r_lin(mu) = 1 / (t_ref + tau D / (mu - m))

a non-leaky IF of threshold ``D`` whose drive is reduced by the leak's mean loss ``m`` and which
waits ``t_ref`` after each spike. Under the exchange the rate moves from the homogeneous target
``lam r`` by::

    r(lam mu) / (lam r(mu)) = (t_ref + tau D / x) / (lam t_ref + lam tau D / (lam x + (lam - 1) m)),   x = mu - m
                            ~ 1 + (1 - 1/lam) m / x - (lam - 1) t_ref r(mu)                    (first order)

The leak makes the neuron super-linear (``m / x``: a unit scaled up gains relatively more), the dead
time sub-linear (``t_ref r``); both vanish in the high-rate, short-refractory limit. With Poisson
synaptic input ``mu = tau * sum_k w_k nu_k`` (the mean drive); fluctuations add rate near and below
threshold, where the prediction does not apply. `exchange_ratio` is the prediction,
`measure_exchange` measures the same ratio in Brian2 (benchmarks/lif_exchange.py prints the table).

The exact gauge is another operation: multiply a unit's incoming weights, bias (drive), threshold,
reset, resting potential and membrane potential by ``lam`` and leave its outgoing weights alone:
every voltage is measured in a unit ``lam`` times larger, so its spike train does not change at
all (`exact_gauge`). It moves the unit's cost but not its rate, so it is not what balancing does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .device import Target

__all__ = ["lif_rate", "linear_rate", "exchange_ratio", "ExchangeMeasurement", "measure_exchange", "exact_gauge"]


def lif_rate(mu, tau: float, theta: float, rho: float, t_ref: float) -> np.ndarray:
    """Exact rate (Hz) of a LIF under constant drive ``mu`` (voltages from rest; 0 for ``mu <= theta``)."""
    mu = np.asarray(mu, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        isi = t_ref + tau * np.log((mu - rho) / (mu - theta))
    return np.where(mu > theta, 1.0 / isi, 0.0)


def linear_rate(mu, tau: float, theta: float, rho: float, t_ref: float) -> np.ndarray:
    """High-rate linear-regime rate ``1 / (t_ref + tau (theta - rho) / (mu - (theta + rho) / 2))`` (0 below)."""
    x = np.asarray(mu, dtype=np.float64) - (theta + rho) / 2
    with np.errstate(divide="ignore"):
        return np.where(x > 0, 1.0 / (t_ref + tau * (theta - rho) / np.where(x > 0, x, 1.0)), 0.0)


def exchange_ratio(lam, mu, tau: float, theta: float, rho: float, t_ref: float) -> np.ndarray:
    """Predicted ``r(lam mu) / (lam r(mu))`` in the high-rate linear regime (1 for a non-leaky IF)."""
    lam = np.asarray(lam, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return linear_rate(lam * mu, tau, theta, rho, t_ref) / (lam * linear_rate(mu, tau, theta, rho, t_ref))


@dataclass
class ExchangeMeasurement:
    """Measured rates before and after the exchange, one row per (tau, input rate, lam).

    ``mu`` is the mean drive ``tau K w nu`` (V), ``before``/``after`` rates (Hz) averaged over
    ``neurons`` independent neurons and ``duration``; ``ratio = after / (lam before)``, ``error`` its
    standard error from the spike counts (Poisson).
    """

    tau: np.ndarray
    input_rate: np.ndarray
    lam: np.ndarray
    mu: np.ndarray
    before: np.ndarray
    after: np.ndarray
    ratio: np.ndarray
    error: np.ndarray


def measure_exchange(taus, input_rates, lams, *, n_inputs: int = 100, weight: float = 0.5e-3, theta: float = 16e-3,
                     rho: float = 5e-3, t_ref: float = 2e-3, neurons: int = 4, duration: float = 2.0,
                     dt: float = 1e-4, seed: int = 0, target: str = "numpy") -> ExchangeMeasurement:
    """Rates of LIF neurons driven by ``n_inputs`` Poisson inputs of weight ``weight`` (V), before and after
    scaling every incoming weight by ``lam``, for every ``tau`` x input rate x ``lam``.

    Every condition has ``neurons`` independent neurons with their own inputs, simulated together
    in one Brian2 network (voltages from rest; threshold ``theta``, reset ``rho``, dead time ``t_ref``).
    """
    import brian2 as b2
    taus, input_rates, lams = (np.asarray(a, dtype=np.float64) for a in (taus, input_rates, lams))
    grid = np.array([(t, r, lam) for t in taus for r in input_rates for lam in np.concatenate([[1.0], lams])])
    cond = np.repeat(np.arange(len(grid)), neurons)
    n = len(cond)
    with Target(target, seed=seed).active():
        G = b2.NeuronGroup(n, "dv/dt = -v/tau_m : volt (unless refractory)\ntau_m : second (constant)",
                           threshold="v > theta", reset="v = rho", refractory=t_ref * b2.second, method="exact",
                           namespace={"theta": theta * b2.volt, "rho": rho * b2.volt}, name="nb_lif_exchange")
        G.tau_m = grid[cond, 0] * b2.second
        P = b2.PoissonGroup(n * n_inputs, rates=np.repeat(grid[cond, 1], n_inputs) * b2.Hz, name="nb_lif_inputs")
        S = b2.Synapses(P, G, "w : volt (constant)", on_pre="v_post += w", name="nb_lif_synapses")
        S.connect(i=np.arange(n * n_inputs), j=np.repeat(np.arange(n), n_inputs))
        S.w = np.repeat(grid[cond, 2], n_inputs) * weight * b2.volt
        M = b2.SpikeMonitor(G, record=False, name="nb_lif_spikes")
        b2.Network(G, P, S, M).run(duration * b2.second, namespace={})
        counts = np.asarray(M.count[:], dtype=np.float64)
    per = counts.reshape(len(grid), neurons).sum(axis=1)
    rate = per / (neurons * duration)
    k = len(lams) + 1
    rate, per = rate.reshape(-1, k), per.reshape(-1, k)
    params = grid.reshape(-1, k, 3)
    base, base_n = rate[:, :1], per[:, :1]
    lam = params[:, 1:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = rate[:, 1:] / (lam * base)
        error = ratio * np.sqrt(1.0 / np.maximum(per[:, 1:], 1) + 1.0 / np.maximum(base_n, 1))
    rows = params[:, 1:, :].reshape(-1, 3)
    mu = rows[:, 0] * n_inputs * weight * rows[:, 1]
    return ExchangeMeasurement(rows[:, 0], rows[:, 1], rows[:, 2], mu, np.repeat(base[:, 0], k - 1),
                               rate[:, 1:].ravel(), ratio.ravel(), error.ravel())


def exact_gauge(group, lam, incoming=(), *, voltages=("v",), drives=(), weight: str = "w") -> None:
    """The exact gauge of LIF units: every voltage of ``group`` and its incoming weights times ``lam``.

    Parameters
    ----------
    group : NeuronGroup
        Units whose threshold, reset, resting potential and drive are per-unit variables.
    lam : float or ndarray of shape (len(group),)
        Positive factors, one per unit.
    incoming : iterable of Synapses
        Every synapse set whose target is ``group`` (their ``weight`` is multiplied by ``lam_post``).
    voltages : iterable of str
        The group's voltage variables: membrane, threshold, reset, rest (all must scale together).
    drives : iterable of str
        Bias or drive variables entering the membrane equation linearly.
    weight : str

    Outgoing weights are not touched: the unit's spike train is unchanged, so nothing downstream sees
    the gauge. (Compare the rate exchange of balancing, which divides the outgoing weights instead and
    changes the leaky unit's rate; see the module docstring.)
    """
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), (len(group),))
    if not np.all(lam > 0) or not np.all(np.isfinite(lam)):
        raise ValueError("lam: gauge factors must be finite and > 0")
    for name in (*voltages, *drives):
        setattr(group, name, getattr(group, name)[:] * lam)
    for S in incoming:
        if S.target is not group:
            raise ValueError(f"incoming: {S.name!r} does not target {group.name!r}")
        post = np.asarray(S.j[:])
        setattr(S, weight, getattr(S, weight)[:] * lam[post])
