"""`run_agents`: one call that balances a network with Brian2 agents and checks what it claims.

It runs the agents (optionally spiking on one input), then compares their weights with the global
solution (`balance(method="global")`), checks the network function, and, in spiking mode, measures
rates before and after online balancing against the spike-count quantisation bound
(`neuro_balance.sim.bounds`).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..balancing.costs import Cost
from ..balancing.balance import balance
from ..balancing.metrics import imbalance
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
        Largest output change on random inputs, relative to the largest output.
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

    @property
    def output_difference(self) -> float:
        """Largest ``|y_before - y_after|`` of the spiking readout (NaN without spiking)."""
        if self.before is None:
            return float("nan")
        return float(np.max(np.abs(self.before.output - self.after.output)))

    def rate_ratios(self, min_count: int = 1) -> dict[str, np.ndarray]:
        """``r_after / (lam r_before)`` of every hidden unit with at least ``min_count`` spikes before.

        1 up to the spike-count quantisation (``bound.ratio``): a unit with ``N`` spikes in the window
        can be off by a few spikes, so ratios of units with few spikes spread more.
        """
        if self.before is None:
            return {}
        out = {}
        for name, u in self.log_scales.items():
            on = self.before.counts[name] >= max(min_count, 1)
            out[name] = self.after.rates[name][on] / (np.exp(u[on]) * self.before.rates[name][on])
        return out

    def __repr__(self) -> str:
        text = (f"AgentRun({len(self.events)} events, imbalance {self.imbalance_before:.3g} -> "
                f"{self.imbalance_after:.3g}, |agents - global| = {self.global_difference:.2g}, "
                f"function change {self.function_change:.2g}")
        if self.before is not None:
            text += (f", spiking output change {self.output_difference:.3g} "
                     f"(bound {float(np.max(self.bound.output)):.3g})")
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
               compile_progress=None, schedule: str = "local") -> AgentRun:
    """Balance ``net`` with Brian2 agents and check the result against the global solution.

    Parameters
    ----------
    net : Network
    cost : Cost
    x : ndarray of shape (n_in,), optional
        An input (``>= 0``). Given: the network spikes (integrate-and-fire), and rates are measured
        over ``window`` before and after ``duration`` of balancing concurrent with spikes.
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
                          schedule=schedule)
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
    if spiking and not net.recurrent:
        bound = quantization_bound(net, x, bn.log_scales, input_rate, window)
    best = balance(net, cost, method="global", tol=1e-12)
    rng = check_random_state(seed)
    xs = rng.normal(size=(8, 16, net.input.n_features)) if net.recurrent else rng.normal(size=(64, net.input.n_features))
    y0 = net.forward(xs)
    change = float(np.max(np.abs(result.forward(xs) - y0)) / max(np.max(np.abs(y0)), 1e-300))
    hist = bn.history
    return AgentRun(result, bn.events, {"t": hist["t"], "imbalance": hist["max_imbalance"]},
                    imbalance(net, cost).max_relative, imbalance(result, cost).max_relative,
                    max_relative_difference(result, best.network), change, bn.log_scales, before, after, bound,
                    time.perf_counter() - start, caught, bn.spikes if record_spikes else None)
