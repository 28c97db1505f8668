"""`run_agents`: one call that balances a network with Brian2 agents and checks what it claims.

It runs the agents (optionally spiking on one input), then compares their weights with the global
solution (`balance(method="global")`), checks the network function, and, in spiking mode, measures
rates before and after online balancing against the spike-count quantisation bound
(`neuro_balance.sim.bounds`). A NIR graph runs its own neuron models (`neuro_balance.sim.neurons`):
its function is checked on random spike trains with `run_steps`, and its spiking units, balanced by
their gauge, keep every spike.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..balancing.costs import Cost
from ..balancing.balance import balance
from ..balancing.metrics import imbalance
from ..model.dynamics import run_steps
from ..model.network import Network
from ..seeding import check_random_state
from .bounds import QuantizationBound, quantization_bound
from .network import BalancingNetwork
from .results import SpikeMeasurement
from .replay import BalanceEvents, max_relative_difference

__all__ = ["AgentRun", "run_agents"]


@dataclass
class AgentRun:
    """What `run_agents` measured.

    Attributes
    ----------
    network : Network
        The agents' weights after the run.
    events : BalanceEvents
    history : dict
        ``t`` (s) and ``imbalance``: max relative imbalance the agents measured, over time.
    imbalance_before, imbalance_after : float
        Exact max relative imbalance of the network before and after.
    global_difference : float
        Largest parameter difference from `balance(method="global")`, relative per array.
    function_change : float
        Largest output change on random inputs, relative to the largest output (NIR graphs: of their
        `run_steps` outputs on random spike trains).
    log_scales : dict of ndarray
        Cumulative log-scale of every agent.
    before, after : SpikeMeasurement or None
        Spiking windows before and after online balancing (None without ``x``).
    bound : QuantizationBound or None
        Spike-count quantisation bound of the before/after comparison.
    wall_time : float
        Seconds spent in the whole call.
    warnings : list of str
        Rate-ceiling warnings raised while spiking.
    spikes : dict of (times, indices) or None
        Every spike per spiking population (``record_spikes=True``): the windows start at 0.1 s
        (before), then ``duration`` of balancing, 0.1 s, and the after window.
    gauged : tuple of str
        Populations balanced by their gauge (their rates do not change; the others' by ``lam``).
    spike_changes : dict of int or None
        NIR graphs, spiking: per population, the spikes of the run that the same run without agents
        does not have, and the reverse (0 everywhere: balancing changed no spike).
    """

    network: Network
    events: BalanceEvents
    history: dict
    imbalance_before: float
    imbalance_after: float
    global_difference: float
    function_change: float
    log_scales: dict[str, np.ndarray]
    before: SpikeMeasurement | None = None
    after: SpikeMeasurement | None = None
    bound: QuantizationBound | None = None
    wall_time: float = 0.0
    warnings: list[str] = field(default_factory=list)
    spikes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    gauged: tuple[str, ...] = ()
    spike_changes: dict[str, int] | None = None

    @property
    def output_difference(self) -> float:
        """Largest ``|y_before - y_after|`` of the spiking readout (NaN without spiking)."""
        if self.before is None:
            return float("nan")
        return float(np.max(np.abs(self.before.output - self.after.output)))

    def rate_ratios(self, min_count: int = 1) -> dict[str, np.ndarray]:
        """``r_after / (lam r_before)`` of every hidden unit with at least ``min_count`` spikes before.

        1 up to the spike-count quantisation (``bound.ratio``): a unit with ``N`` spikes in the window
        can be off by a few spikes, so ratios of units with few spikes spread more. A unit balanced by
        its gauge keeps its rate: its ratio is ``r_after / r_before``.
        """
        if self.before is None:
            return {}
        out = {}
        for name, u in self.log_scales.items():
            on = self.before.counts[name] >= max(min_count, 1)
            lam = 1.0 if name in self.gauged else np.exp(u[on])
            out[name] = self.after.rates[name][on] / (lam * self.before.rates[name][on])
        return out

    def __repr__(self) -> str:
        text = (f"AgentRun({len(self.events)} events, imbalance {self.imbalance_before:.3g} -> "
                f"{self.imbalance_after:.3g}, |agents - global| = {self.global_difference:.2g}, "
                f"function change {self.function_change:.2g}")
        if self.before is not None:
            text += f", spiking output change {self.output_difference:.3g}"
            if self.bound is not None:
                text += f" (bound {float(np.max(self.bound.output)):.3g})"
        return text + f", {self.wall_time:.1f} s)"


def _phase_report(progress, done: float, length: float, total: float):
    """A Brian2 ``report`` callable for one run of several: reports the fraction of the whole ``total``."""
    if progress is None:
        return None

    def report(elapsed, completed, start, duration):
        progress(elapsed, (done + float(completed) * length) / total, start, duration)
    return report


def run_agents(net: Network, cost: Cost, x: np.ndarray | None = None, *, target: str = "numpy",
               rate: float = 1000.0, duration: float = 0.1, window: float = 1.0, input_rate: float = 2000.0,
               dt: float = 1e-4, seed: int = 0, progress=None, record_spikes: bool = False,
               compile_progress=None, schedule: str = "local", invariance: str = "exact") -> AgentRun:
    """Balance ``net`` with Brian2 agents and check the result against the global solution.

    Parameters
    ----------
    net : Network
    cost : Cost
    x : ndarray of shape (n_in,), optional
        An input (``>= 0``; a NIR graph's input current, any sign). Given: the network spikes, and rates
        are measured over ``window`` before and after ``duration`` of balancing concurrent with spikes.
    target : {"numpy", "cython"}
    rate : float
        Balance events per unit per second.
    duration : float
        Seconds of balancing (``rate * duration`` events per unit; ~40 reach imbalance 1e-12).
    window : float
        Length of each spiking measurement window (the quantisation error scales like 1 / window).
    input_rate : float
        Rate (Hz) that codes an activity of 1. Higher means more spikes per window (less
        quantisation) up to the 1/dt ceiling: 2 kHz keeps a 64-32-32-10 MLP's units below 2.2 kHz.
    dt : float
        Time step (s).
    seed : int
    progress : callable, optional
        Brian2 ``report`` callable ``(elapsed, completed, start, duration)``, called during every run of
        the call; ``completed`` is the fraction of the call's whole simulated time (measurement windows
        included).
    record_spikes : bool
        Keep every spike of the spiking run (`AgentRun.spikes`).
    compile_progress : callable, optional
        ``compile_progress(message, done, total)`` while Brian2 compiles code on first use
        (`BalancingNetwork`'s ``progress``; cython: one call per module missing from the cache
        `neuro_balance.sim.cache_directory`; cpp_standalone: the binary's build).
    schedule : {"local", "colour"}
        How neighbours avoid balancing together (see `BalancingNetwork`).
    invariance : {"exact", "rate"}
        For NIR graphs: their spiking units balance by their gauge (``exact``) or the rate exchange.

    Returns
    -------
    AgentRun

    Examples
    --------
    >>> import neuro_balance as nb
    >>> run = run_agents(nb.mlp([6, 5, 4, 2], seed=0), nb.Lp(2), duration=0.05)
    >>> run.global_difference < 1e-6
    True
    """
    start = time.perf_counter()
    spiking = x is not None
    bn = BalancingNetwork(net, cost, rate=rate, spiking=spiking, target=target, dt=dt, seed=seed,
                          input_rate=input_rate, monitor_dt=min(1e-3, duration / 20), progress=compile_progress,
                          schedule=schedule, invariance=invariance)
    before = after = bound = None
    caught: list[str] = []
    phases = [0.1, window, duration, 0.1, window] if spiking else [duration]
    report = [_phase_report(progress, sum(phases[:k]), length, sum(phases)) for k, length in enumerate(phases)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always", RuntimeWarning)
        if spiking:
            bn.set_input(np.asarray(x, dtype=np.float64))
            bn.measure(0.1, progress=report[0])  # transient from v = 0
            before = bn.measure(window, progress=report[1])
        bn.run(duration, progress=report[2 if spiking else 0])
        if spiking:
            bn.measure(0.1, progress=report[3])
            after = bn.measure(window, progress=report[4])
    caught = sorted({str(w.message) for w in record if issubclass(w.category, RuntimeWarning)})
    result = bn.network
    nir = any(p.neuron is not None for p in net.populations.values())
    changes = None
    if spiking and nir:
        with BalancingNetwork(net, cost, rate=0.0, spiking=True, target=target, dt=dt, seed=seed, monitor_dt=None,
                              invariance=invariance) as twin:
            twin.set_input(np.asarray(x, dtype=np.float64))
            twin.run(sum(phases))
            changes = {name: _spike_difference(bn.spikes[name], train, dt) for name, train in twin.spikes.items()}
    if spiking and not net.recurrent and not nir:
        bound = quantization_bound(net, x, bn.log_scales, input_rate, window)
    best = balance(net, cost, method="global", tol=1e-12, invariance=invariance)
    rng = check_random_state(seed)
    if nir:  # the graph's own dynamics on random spike trains, 32 steps
        xs = (rng.random((32, 8, net.input.n_features)) < 0.3).astype(np.float64)
        y0, y1 = (run_steps(m, xs, dt=dt).outputs[net.output.name] for m in (net, result))
    else:
        shape = (8, 16, net.input.n_features) if net.recurrent else (64, net.input.n_features)
        xs = rng.normal(size=shape)
        y0, y1 = net.forward(xs), result.forward(xs)
    change = float(np.max(np.abs(y1 - y0)) / max(np.max(np.abs(y0)), 1e-300))
    hist = bn.history
    return AgentRun(result, bn.events, {"t": hist["t"], "imbalance": hist["max_imbalance"]},
                    imbalance(net, cost).max_relative, imbalance(result, cost).max_relative,
                    max_relative_difference(result, best.network), change, bn.log_scales, before, after, bound,
                    time.perf_counter() - start, caught, bn.spikes if record_spikes else None,
                    tuple(sorted(bn.spec.gauged)), changes)


def _spike_difference(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], dt: float) -> int:
    """Spikes (step, unit) in one train and not the other."""
    keys = [set(zip(np.rint(t / dt).astype(np.int64).tolist(), i.tolist())) for t, i in (a, b)]
    return len(keys[0] ^ keys[1])
