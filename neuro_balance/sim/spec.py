"""What a Brian2 agent network is asked to be: its arguments, checked once, and the choices they imply.

`AgentSpec` holds the validated arguments of a `BalancingNetwork` (which populations are agents,
their rates, the schedule, spiking options, drift); the Brian2 objects are built from it by
`neuro_balance.sim.build`. No Brian2 import here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..balancing.costs import Cost
from ..balancing.graph import CostGraph, build_graph
from ..balancing.local import unit_colours
from ..errors import ModelError
from ..model.network import Network
from .equations import CostCode, cost_code

__all__ = ["AgentSpec", "Drift", "SCHEDULES", "CODINGS", "READOUTS", "seconds", "hertz"]

SCHEDULES = ("local", "colour")
CODINGS = ("current", "poisson")
READOUTS = ("potential", "rate")


def seconds(value, what: str) -> float:
    """A duration given in seconds or as a Brian2 quantity, as float seconds (> 0)."""
    if hasattr(value, "dim"):
        from brian2 import second
        from brian2.units.fundamentalunits import fail_for_dimension_mismatch
        fail_for_dimension_mismatch(value, second, f"{what} must be a time")
        value = float(value / second)
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a positive time, got {value!r}")
    return value


def hertz(value, what: str) -> float:
    """A rate given in Hz or as a Brian2 quantity, as float Hz (>= 0)."""
    if hasattr(value, "dim"):
        from brian2 import Hz
        from brian2.units.fundamentalunits import fail_for_dimension_mismatch
        fail_for_dimension_mismatch(value, Hz, f"{what} must be a rate")
        value = float(value / Hz)
    value = float(value)
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a rate >= 0 Hz, got {value!r}")
    return value


@dataclass(frozen=True)
class Drift:
    """Multiplicative Ornstein-Uhlenbeck drift of every synapse: ``w = w_base * exp(xi)``.

    ``xi`` is an OU process per synapse with correlation time ``tau`` (s) and stationary standard
    deviation ``sigma``, updated exactly every ``dt`` (s):
    ``xi <- xi exp(-dt / tau) + sigma sqrt(1 - exp(-2 dt / tau)) N(0, 1)``. The agents rescale
    ``w_base``; ``xi`` is the plasticity they have to keep up with.
    """

    sigma: float
    tau: float
    dt: float = 1e-3

    def __post_init__(self) -> None:
        if not (self.sigma >= 0 and math.isfinite(self.sigma)):
            raise ValueError(f"drift.sigma must be finite and >= 0, got {self.sigma!r}")
        for name in ("tau", "dt"):
            seconds(getattr(self, name), f"drift.{name}")


@dataclass
class AgentSpec:
    """The checked arguments of a `BalancingNetwork` (see there for their meaning)."""

    net: Network
    cost: Cost
    code: CostCode
    graph: CostGraph
    agents: list[str]
    rates: dict[str, float]
    schedule: str
    spiking: bool
    dt: float
    balance_every: int
    input_rate: float
    coding: str
    readout: str
    monitor_dt: float | None
    record_spikes: bool
    drift: Drift | None
    weight_dt: float | None
    colours: dict[str, np.ndarray]
    n_colours: int

    def shape_key(self) -> str:
        """What decides the generated Brian2 objects and code, not their values: one build per shape.

        Populations and projections (names, sizes, roles, activations, bias or not, weight shapes),
        the cost's code, and every option that adds or changes objects.
        """
        net = self.net
        parts = [(n, p.size, p.role, repr(p.activation), p.bias is not None) for n, p in net.populations.items()]
        parts += [(q.name, q.pre, q.post, q.kind, q.weight.shape) for q in net.projections]
        parts += [self.agents, self.code, self.schedule, self.spiking, self.coding, self.readout, self.record_spikes,
                  self.drift is not None, self.weight_dt is not None, self.monitor_dt is not None,
                  self.cost.include_bias]
        return repr(parts)

    @property
    def balance_dt(self) -> float:
        """Period of the agents' clock (s)."""
        return self.dt * self.balance_every

    @classmethod
    def create(cls, net: Network, cost: Cost, rate, spiking: bool, dt, schedule: str, balance_every: int,
               input_rate, coding: str, readout: str, monitor_dt, record_spikes: bool, balancing: bool,
               drift: Drift | None, weight_dt=None) -> "AgentSpec":
        """Check every argument once (errors name the argument and value)."""
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        if coding not in CODINGS:
            raise ValueError(f"coding must be one of {CODINGS}, got {coding!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if not (isinstance(balance_every, (int, np.integer)) and balance_every >= 1):
            raise ValueError(f"balance_every must be an integer >= 1, got {balance_every!r}")
        if not (balancing or spiking):
            raise ValueError("balancing=False needs spiking=True (otherwise there is nothing to simulate)")
        if drift is not None and not isinstance(drift, Drift):
            raise ValueError(f"drift must be a Drift or None, got {drift!r}")
        code = cost_code(cost)
        graph = build_graph(net, cost)
        agents = [name for name in net.order if net.populations[name].balanced] if balancing else []
        step = 1e-4 if dt is None else seconds(dt, "dt")
        spec = cls(net, cost, code, graph, agents, {}, schedule, bool(spiking), step,
                   int(balance_every), hertz(input_rate, "input_rate"), coding, readout,
                   None if monitor_dt is None else seconds(monitor_dt, "monitor_dt"),
                   bool(record_spikes) and bool(spiking), drift,
                   None if weight_dt is None else seconds(weight_dt, "weight_dt"), {}, 1)
        spec._check_network()
        spec.colours, spec.n_colours = spec._compact_colours()
        spec.rates = spec.checked_rates(rate)
        return spec

    def checked_rates(self, rate: float | Mapping[str, float]) -> dict[str, float]:
        """Balance rate (Hz) per agent population; the colour schedule's ``n_colours * rate * dt`` <= 1."""
        if isinstance(rate, Mapping):
            unknown = set(rate) - set(self.agents)
            if unknown:
                raise ModelError(f"rate: {sorted(unknown)} are not balanced populations (agents: {self.agents})")
            rates = {name: hertz(rate.get(name, 0.0), f"rate[{name!r}]") for name in self.agents}
        else:
            value = hertz(rate, "rate")
            rates = {name: value for name in self.agents}
        worst = max(rates.values(), default=0.0)
        if self.schedule == "colour" and self.n_colours * worst * self.balance_dt > 1:
            raise ValueError(f"rate: {self.n_colours} colours x {worst} Hz x {self.balance_dt} s > 1; the colour "
                             "schedule needs n_colours * rate * dt * balance_every <= 1 (lower rate or dt)")
        return rates

    def _check_network(self) -> None:
        net, graph = self.net, self.graph
        for name in self.agents:
            pop = net.populations[name]
            if pop.degree != 1.0 and name in graph.loops and any(L.any() for L in graph.loops[name]):
                raise ModelError(f"populations[{name!r}].activation: units of degree {pop.degree} with self-loops "
                                 "have no closed-form local step; the Brian2 agents support them without loops only")
        if not self.spiking:
            return
        for name, pop in net.populations.items():
            if pop.n_features != pop.size:
                raise ModelError(f"populations[{name!r}].size: spiking mode needs one unit per feature, got size "
                                 f"{pop.size} for {pop.n_features} features")
            act = pop.activation
            relu = act.kind == "bilu" and act.a == 0.0 and act.b == 1.0
            if pop.role == "hidden" and not relu:
                raise ModelError(f"populations[{name!r}].activation: spiking hidden units are integrate-and-fire "
                                 f"neurons (a ReLU of their input), got {act}")
            if pop.role == "output" and self.readout == "rate" and not relu:
                raise ModelError(f"populations[{name!r}].activation: readout='rate' needs ReLU output units, got {act}; "
                                 "use readout='potential'")
        for proj in net.projections:
            if proj.kind != "dense":
                raise ModelError(f"projections[{proj.name!r}].kind: spiking mode supports dense projections, "
                                 f"got {proj.kind!r}")

    def _compact_colours(self) -> tuple[dict[str, np.ndarray], int]:
        """Colours of the agents' units, renumbered 0..m-1 over the colours agents use (colour schedule)."""
        if self.schedule != "colour" or not self.agents:
            return {n: np.zeros(self.net.populations[n].size, dtype=np.int64) for n in self.agents}, 1
        colours = unit_colours(self.graph)
        used = np.unique(np.concatenate([colours[n] for n in self.agents]))
        lookup = {int(c): k for k, c in enumerate(used)}
        return ({n: np.array([lookup[int(c)] for c in colours[n]], dtype=np.int64) for n in self.agents},
                max(len(used), 1))
