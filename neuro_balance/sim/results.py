"""Reading a Brian2 agent network's results: weights, events, monitors and spike windows as numpy data.

`read_results` copies every recorded array out of Brian2 once (for cpp_standalone after the binary
ran); the functions below turn that plain data into a `Network`, `BalanceEvents`, the monitor
history and `SpikeMeasurement` windows. No Brian2 import here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.network import Network
from .replay import BalanceEvents

__all__ = ["Results", "SpikeMeasurement", "read_results", "to_network", "to_events", "to_history", "to_weight_history"]


@dataclass
class Results:
    """Every array read from Brian2, keyed by projection or population name."""

    weights: list            # (projection, flat index, weight)
    biases: dict
    lam_cum: dict
    events: dict             # population -> (t, i, lam_cum after the event)
    states: dict             # population -> (t, lam_cum, imb, v or None), each (units, samples) after t
    spikes: dict             # population -> (t, i)
    readout: tuple | None    # (t, v (units, samples)) of the integrating output, sampled at the end of each step
    weights_over_time: list  # (projection, flat index, t, w (synapses, samples)) per weight monitor


def read_results(objects, agents: list[str]) -> Results:
    """Copy everything `build_objects` recorded out of Brian2 (inside `Target.active()`)."""
    def pair(m, a, b):
        return np.array(getattr(m, a)[:]), np.array(getattr(m, b)[:])

    ro = objects.readout_monitor
    return Results(
        [(s.projection, np.array(s.synapses.k[:]), np.array(s.synapses.w[:])) for s in objects.synapses],
        {n: np.array(G.b[:]) for n, G in objects.groups.items() if n in agents and "b" in G.variables},
        {n: np.array(objects.groups[n].lam_cum[:]) for n in agents},
        {n: tuple(np.concatenate(a) for a in zip(*((*pair(m, "t_", "i"), np.array(m.lam_cum[:])) for m in ms)))
         for n, ms in objects.event_monitors.items()},
        {n: (np.array(m.t_[:]), np.array(m.lam_cum[:]), np.array(m.imb[:]),
             np.array(m.v[:]) if "v" in m.record_variables else None) for n, m in objects.state_monitors.items()},
        {n: pair(m, "t_", "i") for n, m in objects.spike_monitors.items()},
        None if ro is None else (np.array(ro.t_[:]), np.array(ro.v[:])),
        [(s.projection, np.array(s.synapses.k[:]), np.array(m.t_[:]), np.array(m.w[:]))
         for s, m in zip(objects.synapses, objects.weight_monitors)])


def to_network(source: Network, res: Results, potentials: tuple[str, ...] = ()) -> Network:
    """``source`` with the agents' current weights and biases.

    The NIR potentials of the populations in ``potentials`` (`AgentSpec.potentials_scale`) are multiplied by
    each unit's cumulative factor.
    """
    out = source.copy()
    for name, k, w in res.weights:
        out.projection(name).weight.flat[k] = w
    for name, b in res.biases.items():
        out.populations[name].bias = b
    for name in potentials:
        pop = out.populations[name]
        pop.neuron = pop.neuron.with_potentials_scaled(res.lam_cum[name])
    return out


def to_events(res: Results, agents: list[str], dt: float) -> BalanceEvents:
    """Every balance event, sorted by step, population rank and unit."""
    if not agents:
        return BalanceEvents(np.zeros(0), np.zeros(0, int), np.zeros(0, dtype=object), np.zeros(0, int), (),
                             np.zeros(0))
    rec = {n: (t, i.astype(np.int64), lam) for n, (t, i, lam) in res.events.items()}
    t = np.concatenate([rec[n][0] for n in agents])
    lam_cum = np.concatenate([rec[n][2] for n in agents])
    idx = np.concatenate([rec[n][1] for n in agents]).astype(np.int64)
    pop = np.concatenate([np.full(len(rec[n][0]), n, dtype=object) for n in agents])
    rank = np.concatenate([np.full(len(rec[n][0]), r) for r, n in enumerate(agents)])
    step = np.rint(t / dt).astype(np.int64)
    order = np.lexsort((idx, rank, step))
    return BalanceEvents(t[order], step[order], pop[order], idx[order], tuple(agents), lam_cum[order])


def to_history(res: Results) -> dict:
    """The monitors' samples (see `BalancingNetwork.history`)."""
    states = res.states
    if not states:
        return {"t": np.zeros(0), "lam": {}, "imbalance": {}, "max_imbalance": np.zeros(0)}
    t = next(iter(states.values()))[0]
    lam = {n: s[1].T for n, s in states.items()}
    imb = {n: s[2].max(axis=0) for n, s in states.items()}
    out = {"t": t, "lam": lam, "imbalance": imb, "max_imbalance": np.max(np.stack(list(imb.values())), axis=0)}
    if all(s[3] is not None for s in states.values()):
        out["v"] = {n: s[3].T for n, s in states.items()}
    return out


def to_weight_history(source: Network, res: Results) -> dict:
    """``t`` (s) and, per projection, its weights at every sample ``(n_samples, *weight.shape)``.

    Entries the agents do not simulate (projections between ground populations) keep their value.
    """
    if not res.weights_over_time:
        return {"t": np.zeros(0), "weights": {}}
    t = res.weights_over_time[0][2]
    out = {p.name: np.repeat(p.weight[None], len(t), axis=0) for p in source.projections}
    for name, k, _, w in res.weights_over_time:
        flat = out[name].reshape(len(t), -1)
        flat[:, k] = w.T
    return {"t": t, "weights": out}


class SpikeMeasurement:
    """Spike rates and output readout over one window ``[start, stop)``, read from the monitors.

    The numbers are computed on first access, so on cpp_standalone they become available once the
    binary has run (reading them builds it). The readout is ``f(dv / (R T))`` of the integrating
    output units (``potential``) or ``count / (R T)`` of spiking output units (``rate``); for a NIR
    graph, its output units' spikes per step, or their potential at the window's end if they do not spike.

    Attributes
    ----------
    start, stop, duration : float
        The window in seconds.
    rates, counts : dict of ndarray
        Rate (Hz) and spike count of every spiking population's units over the window.
    output : ndarray
    """

    def __init__(self, owner, start: float, stop: float) -> None:
        self._owner, self.start, self.stop = owner, start, stop
        self.duration = stop - start
        self._values: tuple | None = None

    def _compute(self) -> tuple:
        if self._values is None:
            owner = self._owner
            res, net = owner.results(), owner.source
            counts = {}
            for name, (t, i) in res.spikes.items():
                inside = (t >= self.start - owner.dt / 2) & (t < self.stop - owner.dt / 2)
                counts[name] = np.bincount(i[inside], minlength=net.populations[name].size)
            rates = {n: c / self.duration for n, c in counts.items()}
            scale = owner.input_rate * self.duration
            pop = net.output
            if owner.spec.nir_mode:  # the graph's own output: spikes per step, or the potential at the end
                output = (counts[pop.name] / round(self.duration / owner.dt) if res.readout is None
                          else _potential_at(res.readout, self.stop, owner.dt))
            elif res.readout is not None:
                dv = _potential_at(res.readout, self.stop, owner.dt) - _potential_at(res.readout, self.start, owner.dt)
                output = pop.activation(dv / scale)
            else:
                output = counts[pop.name] / scale
            self._values = (rates, counts, output)
        return self._values

    @property
    def rates(self) -> dict[str, np.ndarray]:
        return self._compute()[0]

    @property
    def counts(self) -> dict[str, np.ndarray]:
        return self._compute()[1]

    @property
    def output(self) -> np.ndarray:
        return self._compute()[2]

    def __repr__(self) -> str:
        return f"SpikeMeasurement({self.start:g}..{self.stop:g} s)"


def _potential_at(readout: tuple, time: float, dt: float) -> np.ndarray:
    """The output potential at a step boundary: the sample taken at the end of the step before it."""
    t, v = readout
    if time <= dt / 2:
        return np.zeros(v.shape[0])  # potentials start at 0
    k = int(np.searchsorted(t, time - dt - dt / 2))
    if k >= len(t) or abs(t[k] - (time - dt)) > dt / 2:
        raise RuntimeError(f"no readout sample at t = {time:g} s")
    return v[:, k]
