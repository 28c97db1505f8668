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
from ..balancing.metrics import rate_coded
from ..errors import ModelError
from ..model.network import Network
from .equations import CostCode, cost_code
from .neurons import LIF, NIRSteps
from .units import hertz, seconds

__all__ = ["AgentSpec", "Drift", "SCHEDULES", "CODINGS", "READOUTS", "INVARIANCES"]

SCHEDULES = ("local", "colour")
CODINGS = ("current", "poisson", "spikes")
READOUTS = ("potential", "rate")
INVARIANCES = ("exact", "rate")


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


def _agents_view(net: Network, invariance: str) -> Network:
    """``net`` as the agents' cost graph sees it: a hidden spiking NIR unit balances like a ReLU unit.

    Under ``exact`` it takes its gauge (`AgentSpec.gauged`); ``rate`` is refused, since its exchange is
    that of the rate model (`rate_view`), a different network.
    """
    spiking = [n for n, p in net.populations.items() if p.role == "hidden" and p.neuron is not None
               and p.neuron.spiking]
    if not spiking:
        return net
    if invariance == "rate":
        rate_coded(net)  # a hidden LIF or CubaLIF has no rate exchange (named ModelError)
        raise ModelError(f"invariance='rate': the rate exchange of the IF populations {spiking} is balanced on their "
                         "rate model, thresholds gauged to 1 (as nb.balance does): pass "
                         "neuro_balance.balancing.spiking.rate_view(net)[0]")
    view = net.copy()
    for name in spiking:
        view.populations[name].neuron = None
    return view


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
    neuron: LIF | None = None
    nir: NIRSteps | None = None
    invariance: str = "exact"
    gauged: frozenset = frozenset()

    @property
    def nir_mode(self) -> bool:
        """Spiking units follow the network's own NIR neuron models (`neuro_balance.sim.neurons`)."""
        return self.nir is not None

    def potentials_scale(self, name: str) -> bool:
        """True when an agent population's NIR potentials move with its factor (gauge, or a linear NIR unit)."""
        neuron = self.net.populations[name].neuron
        return neuron is not None and (name in self.gauged or not neuron.spiking)

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
                  self.cost.include_bias, self.neuron, self.nir, sorted(self.gauged)]
        parts += [(n, p.neuron.model) for n, p in net.populations.items() if p.neuron is not None]
        return repr(parts)

    @property
    def balance_dt(self) -> float:
        """Period of the agents' clock (s)."""
        return self.dt * self.balance_every

    @classmethod
    def create(cls, net: Network, cost: Cost, rate, spiking: bool, dt, schedule: str, balance_every: int,
               input_rate, coding: str, readout: str, monitor_dt, record_spikes: bool, balancing: bool,
               drift: Drift | None, weight_dt=None, neuron: LIF | NIRSteps | None = None,
               invariance: str = "exact") -> "AgentSpec":
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
        if neuron is not None and not isinstance(neuron, (LIF, NIRSteps)):
            raise ValueError(f"neuron must be a LIF, a NIRSteps or None, got {neuron!r}")
        if invariance not in INVARIANCES:
            raise ValueError(f"invariance must be one of {INVARIANCES}, got {invariance!r}")
        code = cost_code(cost)
        view = _agents_view(net, invariance)
        graph = build_graph(view, cost)
        agents = [name for name in net.order if view.populations[name].balanced] if balancing else []
        step = 1e-4 if dt is None else seconds(dt, "dt")
        spec = cls(net, cost, code, graph, agents, {}, schedule, bool(spiking), step,
                   int(balance_every), hertz(input_rate, "input_rate"), coding, readout,
                   None if monitor_dt is None else seconds(monitor_dt, "monitor_dt"),
                   bool(record_spikes) and bool(spiking), drift,
                   None if weight_dt is None else seconds(weight_dt, "weight_dt"), {}, 1,
                   invariance=invariance)
        spec._choose_units(neuron)
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
        for proj in net.projections:
            if proj.kind != "dense":
                raise ModelError(f"projections[{proj.name!r}].kind: spiking mode supports dense projections, "
                                 f"got {proj.kind!r}")
        for name, pop in net.populations.items():
            if pop.n_features != pop.size:
                raise ModelError(f"populations[{name!r}].size: spiking mode needs one unit per feature, got size "
                                 f"{pop.size} for {pop.n_features} features")
            if self.nir_mode:
                continue
            act = pop.activation
            relu = act.kind == "bilu" and act.a == 0.0 and act.b == 1.0
            if pop.role == "hidden" and not relu:
                raise ModelError(f"populations[{name!r}].activation: spiking hidden units are integrate-and-fire "
                                 f"neurons (a ReLU of their input), got {act}")
            if pop.role == "output" and self.readout == "rate" and not relu:
                raise ModelError(f"populations[{name!r}].activation: readout='rate' needs ReLU output units, got {act}; "
                                 "use readout='potential'")
        if self.nir_mode:
            for proj in net.projections:
                if proj.delay == 0 and net.order.index(proj.pre) >= net.order.index(proj.post):
                    raise ModelError(f"projections[{proj.name!r}]: a delay-0 projection must run forward in the "
                                     f"network order ({proj.pre!r} -> {proj.post!r})")

    def _choose_units(self, neuron: LIF | NIRSteps | None) -> None:
        """Which spiking units run (toolkit IF/LIF or the graph's NIR models) and who balances by the gauge."""
        net = self.net
        nir = [n for n, p in net.populations.items() if p.neuron is not None]
        self.gauged = frozenset(n for n in self.agents if n in nir and net.populations[n].neuron.spiking)
        if not nir:
            if isinstance(neuron, NIRSteps):
                raise ModelError("neuron: NIRSteps runs a NIR graph's neuron models, and this network has none "
                                 "(use LIF(...) or None)")
            self.neuron = neuron
            return
        if isinstance(neuron, LIF):
            raise ModelError(f"neuron: populations {nir} carry their own NIR neuron models; pass NIRSteps(...) "
                             "(or None) to say how they step")
        if not self.spiking:
            return
        plain = [n for n, p in net.populations.items() if p.role != "input" and p.neuron is None]
        if plain:
            raise ModelError(f"populations {plain}: in a NIR graph every non-input population needs a neuron "
                             "model to run in Brian2 (spiking=False balances its weights without running it)")
        self.nir = neuron if neuron is not None else NIRSteps()

    def _compact_colours(self) -> tuple[dict[str, np.ndarray], int]:
        """Colours of the agents' units, renumbered 0..m-1 over the colours agents use (colour schedule)."""
        if self.schedule != "colour" or not self.agents:
            return {n: np.zeros(self.net.populations[n].size, dtype=np.int64) for n in self.agents}, 1
        colours = unit_colours(self.graph)
        used = np.unique(np.concatenate([colours[n] for n in self.agents]))
        lookup = {int(c): k for k, c in enumerate(used)}
        return ({n: np.array([lookup[int(c)] for c in colours[n]], dtype=np.int64) for n in self.agents},
                max(len(used), 1))
