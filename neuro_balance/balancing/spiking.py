"""Balancing networks of NIR neuron models: the right symmetry for every unit (`model.neurons`).

Two invariances, kept apart:

``invariance="exact"`` (the default, what `balance` does when a network has spiking units)
    Non-spiking units (LI, CubaLI, I, plain homogeneous units) are balanced by the usual exchange
    (incoming x ``lam``, outgoing x ``1/lam``, ``v_leak`` x ``lam``): exact. Spiking units (IF, LIF,
    CubaLIF) get the **gauge**: incoming weights, bias, ``v_threshold``, ``v_reset`` and ``v_leak``
    x ``mu`` with ``mu`` chosen so that the unit's in-cost equals its out-cost (with ``tie="layer"``,
    one ``mu`` per population equalises the summed costs: one threshold per layer, as snnTorch reads); outgoing weights
    are unchanged and so is every spike train (bit for bit with ``scale_grid="pow2"``, where every
    ``mu`` is a power of two, since float products by powers of two are exact). The two steps
    alternate until both are balanced to ``tol``.
``invariance="rate"``
    The paper's exchange applied to IF units with their threshold fixed, after the exact gauge that sets
    every hidden IF threshold to 1 (`rate_view`: the unit is then its rate model ``relu(z)``, what the
    Brian2 agents run, and `imbalance` measures the same): a unit's rate is
    multiplied by ``lam``, the next layer's input rate is kept. Rate-level only: for IF units with
    reset by subtraction whose membranes end a window within ``[-v_threshold, v_threshold]``, a
    ground unit ``k`` fed by balanced units ``j`` changes its count over the window by at most
    ``2 + dt r_k sum_j |W_kj| (1 + 1/lam_j) / v_threshold_k`` spikes (its summed output, for a
    readout without neuron model, by at most ``sum_j |W_kj| (1 + 1/lam_j)``), since a unit's count is
    ``(dt r sum_t z - v_end) / v_threshold`` exactly. Leaky units (LIF, CubaLIF) are refused: a leak
    makes the rate a non-homogeneous function of the input.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import ModelError, NumericalError
from ..model.kinds import get_kind
from ..model.network import Network, Projection
from .costs import Cost
from .metrics import INVARIANCES, imbalance, rate_coded, unit_invariance
from .scaling import factors, scale

__all__ = ["gauge", "balance_spiking", "spiking_populations", "rate_view", "with_neurons", "INVARIANCES"]


def spiking_populations(net: Network) -> list[str]:
    """Names of the populations whose neuron model spikes (IF, LIF, CubaLIF), in network order."""
    return [n for n in net.order if net.populations[n].neuron is not None and net.populations[n].neuron.spiking]


def gauge(net: Network, log_mu: Mapping[str, np.ndarray], *, inplace: bool = False) -> Network:
    """Apply the gauge of spiking units: incoming weights, bias and potentials x ``mu = exp(log_mu)``.

    Every spike train is unchanged (`model.neurons`); outgoing weights are not touched.

    Parameters
    ----------
    net : Network
    log_mu : mapping of population name to ndarray of shape (size,)
        Spiking populations only.
    inplace : bool

    Returns
    -------
    Network
    """
    for name, values in log_mu.items():
        pop = net.populations.get(name)
        if pop is None or pop.neuron is None or not pop.neuron.spiking:
            raise ModelError(f"log_mu: {name!r} is not a spiking population (IF, LIF or CubaLIF): the gauge "
                             "keeps only a spiking unit's output")
        if np.shape(values) != (pop.size,) or not np.all(np.isfinite(values)):
            raise ModelError(f"log_mu[{name!r}]: expected {pop.size} finite values")
        with np.errstate(over="ignore"):
            f = factors(values)
        bad = np.flatnonzero(~(np.isfinite(f) & (f > 0)))
        if bad.size:
            i = int(bad[0])
            raise NumericalError(f"{'overflow' if values[i] > 0 else 'underflow to 0'}: the gauge of spiking unit "
                                 f"{name}[{i}] needs a factor e^{values[i]:.6g}, outside float64")
    out = net if inplace else net.copy()
    for proj in out.projections:
        if proj.post in log_mu:
            pre, post = out.populations[proj.pre], out.populations[proj.post]
            post_idx, _ = get_kind(proj.kind).groups(proj, pre, post)
            proj.weight *= factors(log_mu[proj.post])[post_idx]
    for name, values in log_mu.items():
        pop = out.populations[name]
        f = factors(values)
        if pop.bias is not None:
            pop.bias *= f
        try:
            pop.neuron = pop.neuron.with_potentials_scaled(f)
        except ModelError as err:  # a potential times the factor left float64
            raise NumericalError(f"overflow: the gauge of spiking population {name!r} (factors up to "
                                 f"e^{float(np.max(np.abs(values))):.6g}) takes its potentials outside float64: {err}") from None
    return out


def rate_view(net: Network) -> tuple[Network, dict]:
    """The rate model of a network of IF units, for engines that balance by the rate exchange (Brian2 agents).

    Every hidden IF population first takes the exact gauge ``mu = 1 / v_threshold`` (thresholds to 1,
    spike trains unchanged), then drops its neuron model: it becomes a ``relu`` unit, the rate of an
    IF unit with threshold 1 and reset by subtraction, which the Brian2 agents simulate.

    Returns
    -------
    (Network, dict)
        The view and the neuron models it dropped (thresholds now 1), for `with_neurons`.

    Raises
    ------
    ModelError
        For a hidden LIF or CubaLIF population (named), whose rate the exchange does not keep.
    """
    names = rate_coded(net)
    log_mu = {}
    for name in names:
        pop = net.populations[name]
        theta = pop.neuron.params["v_threshold"].reshape(pop.size, -1)
        if np.any(theta <= 0) or np.any(theta != theta[:, :1]):
            raise ModelError(f"node {name!r}.v_threshold: the rate view needs one positive threshold per unit")
        log_mu[name] = -np.log(theta[:, 0])
    view = gauge(net, log_mu) if log_mu else net.copy()
    dropped = {}
    for name in names:
        dropped[name], view.populations[name].neuron = view.populations[name].neuron, None
    return view, dropped


def with_neurons(net: Network, neurons: Mapping[str, object]) -> Network:
    """A copy of ``net`` with the neuron models that `rate_view` dropped put back."""
    out = net.copy()
    for name, neuron in neurons.items():
        out.populations[name].neuron = neuron
    return out


def _gauge_pass(net: Network, cost: Cost, names: list[str], log_mu: dict[str, np.ndarray],
                tie: str | None) -> Network:
    """One pass over spiking populations, downstream first: set each unit's in-cost to its out-cost.

    With ``tie="layer"`` a population takes one ``mu``, which equalises its summed in- and out-costs
    (frameworks such as snnTorch read one threshold per layer).
    """
    for name in reversed(names):
        rep = imbalance(net, cost, tie)  # mu from the cost graph's own costs: finite where |w|**p overflows
        with np.errstate(divide="ignore"):
            step = np.log(rep.lam_star[name])  # dead units keep mu = 1
        if not np.isfinite(step).all():
            i = int(np.flatnonzero(~np.isfinite(step))[0])
            raise NumericalError(f"{'overflow' if step[i] > 0 else 'underflow to 0'}: the gauge of spiking unit "
                                 f"{name}[{i}] needs a factor outside float64")
        log_mu[name] = log_mu.get(name, np.zeros(step.shape)) + step
        net = gauge(net, {name: step}, inplace=True)
    return net


def _exact(net: Network, cost: Cost, tol: float, max_rounds: int, scale_grid: str | None, engine, kwargs):
    names = [n for n in spiking_populations(net) if net.populations[n].role == "hidden"]
    tie = kwargs.get("tie")
    work = net.copy()
    log_mu: dict[str, np.ndarray] = {}
    log_lam: dict[str, np.ndarray] = {}
    history: dict[str, list[float]] = {"imbalance": [imbalance(net, cost, tie).max_relative],
                                       "cost": [imbalance(net, cost).total_cost]}
    converged, rounds, result = False, 0, None
    while rounds < max_rounds and not converged:
        rounds += 1
        result = engine(work, cost, tol=tol, scale_grid=scale_grid, **kwargs)
        work = result.network
        for key, value in result.log_scales.items():
            log_lam[key] = log_lam.get(key, 0.0) + value
        work = _gauge_pass(work, cost, names, log_mu, tie)
        history["imbalance"].append(imbalance(work, cost, tie).max_relative)
        history["cost"].append(imbalance(work, cost).total_cost)
        converged = history["imbalance"][-1] <= tol
    if scale_grid == "pow2" and log_mu:
        # One rounding of the total gauge to powers of two, applied to the untouched spiking units.
        exchanged = scale(net, log_lam)
        log_mu = {k: np.round(v / np.log(2.0)) * np.log(2.0) for k, v in log_mu.items()}
        work = gauge(exchanged, log_mu)
        history["imbalance"].append(imbalance(work, cost, tie).max_relative)
        history["cost"].append(imbalance(work, cost).total_cost)
    return work, log_lam, log_mu, converged, rounds, history, result


def _rate_bound(before: Network, log_lam: Mapping[str, np.ndarray], dt: float) -> dict[str, np.ndarray]:
    """Per-feature bound on the change of a ground unit's count (module docstring), for units fed by balanced ones."""
    bounds = {}
    for name, pop in before.populations.items():
        if name in log_lam or pop.role == "input":
            continue
        drift = np.zeros(pop.n_features)
        for proj in before.incoming(name):
            if proj.pre not in log_lam:
                continue
            pre = before.populations[proj.pre]
            slack = np.repeat(1.0 + 1.0 / factors(log_lam[proj.pre]), pre.n_features // pre.size)
            absolute = Projection(proj.pre, proj.post, np.abs(proj.weight), proj.kind, proj.delay, proj.name,
                                  proj.options)
            drift += get_kind(proj.kind).propagate(absolute, pre, pop, slack[None, :])[0]
        if not drift.any():
            continue
        if pop.neuron is not None:
            prm = {k: v.reshape(-1) for k, v in pop.neuron.params.items()}
            drift = 2.0 + dt * prm["r"] * drift / prm["v_threshold"]
        bounds[name] = drift
    return bounds


def balance_spiking(net: Network, cost: Cost, invariance: str = "exact", *, engine, tol: float = 1e-10,
                    max_rounds: int = 100, scale_grid: str | None = None, dt: float = 1.0, **kwargs):
    """Balance a network with neuron models, keeping what it computes (module docstring).

    Parameters
    ----------
    net : Network
    cost : Cost
    invariance : {"exact", "rate"}
    engine : callable
        The exchange engine, ``engine(net, cost, tol=..., scale_grid=..., **kwargs) -> BalanceResult``
        (`neuro_balance.balancing.balance._balance`).
    tol : float
        Target max relative imbalance (exchange and gauge units alike).
    max_rounds : int
        Alternations of exchange and gauge (``exact``).
    scale_grid : {None, "pow2"}
        ``pow2``: every factor a power of two (spike trains then unchanged bit for bit).
    dt : float
        Euler step used by the rate bound (``rate``).
    **kwargs
        Passed to ``engine`` (method, seed, schedule, ...).

    Returns
    -------
    BalanceResult
        ``extra`` holds ``invariance``, ``gauge`` (log ``mu`` per spiking population, ``exact``),
        ``symmetry`` (per hidden population, `unit_invariance`) and ``rate_bound`` (``rate``, whose
        result has every hidden IF threshold at 1).

    Raises
    ------
    ModelError
        Naming the node and the reason when a unit cannot be balanced under ``invariance``.
    """
    if invariance not in INVARIANCES:
        raise ValueError(f"invariance must be one of {INVARIANCES}, got {invariance!r}")
    symmetry = {n: unit_invariance(p, invariance) for n, p in net.populations.items() if p.role == "hidden"}
    if invariance == "rate":
        view, dropped = rate_view(net)  # thresholds 1 (exact), then each IF unit is its rate model
        result = engine(view, cost, tol=tol, scale_grid=scale_grid, **kwargs)
        result.network = with_neurons(result.network, dropped)
        result.extra.update(invariance="rate", symmetry=symmetry,
                            rate_bound=_rate_bound(with_neurons(view, dropped), result.log_scales, dt))
        return result
    work, log_lam, log_mu, converged, rounds, history, last = _exact(net, cost, tol, max_rounds, scale_grid,
                                                                     engine, kwargs)
    last.network, last.log_scales, last.converged, last.iterations = work, log_lam, converged, rounds
    last.history, last.cost_before, last.cost_after = history, history["cost"][0], history["cost"][-1]
    last.extra.update(invariance="exact", gauge=log_mu, symmetry=symmetry)
    return last
