"""Brian2 objects from an `AgentSpec`: one NeuronGroup per population, one Synapses per projection.

Agent populations carry the ``request`` and ``balance`` events and their code
(`neuro_balance.sim.equations`); every projection touching an agent gets ``on_event`` pathways that
accumulate (and, local schedule, detect a neighbour's competing request) and scale. Spiking adds
non-leaky integrate-and-fire dynamics and spike pathways; drift adds an Ornstein-Uhlenbeck
log-factor per synapse. On the runtime targets a `RequestGate` runs the agents' stages only on
ticks where an agent requests. Must be called inside `Target.active()`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..balancing.graph import relative_imbalance
from ..model.kinds import get_kind
from ..seeding import check_random_state
from .device import gated_network, run_on_clock
from .equations import (DECIDE, DECIDE2, DRIFT_CODE, ORDERS, RESCALE, RESCALE_SLOT, RETRY, RETRY_CODE,
                        CostCode, detect_code, knock_code, lambda_code, neuron_balance_model, request_code,
                        request_condition, scale_in_code, scale_out_code, synapse_model)
from .neurons import NIR_SLOT, UnitModel, nir_input, nir_orders, nir_unit, toolkit_unit
from .spec import AgentSpec

__all__ = ["BrianObjects", "SynapseSet", "RequestGate", "build_objects", "first_requests", "schedule_agent_events",
           "agent_pathways", "order_pathways", "PATHWAYS"]


@dataclass
class SynapseSet:
    """One Brian2 Synapses object and the projection parameters it carries."""

    projection: str
    synapses: object
    flat_index: np.ndarray


@dataclass
class BrianObjects:
    """Everything `build_objects` made, and the Brian2 Network that runs it."""

    network: object
    namespace: dict
    groups: dict = field(default_factory=dict)
    synapses: list = field(default_factory=list)
    event_monitors: dict = field(default_factory=dict)
    state_monitors: dict = field(default_factory=dict)
    spike_monitors: dict = field(default_factory=dict)
    readout_monitor: object = None
    weight_monitors: list = field(default_factory=list)
    gate: "RequestGate | None" = None


PATHWAYS = ("acc_out", "scale_out", "acc_in", "scale_in", "det2_out", "det2_in", "scale2_out", "scale2_in")
STAGE = {"acc": "accumulate", "scale": "scale", "det2": "detect", "scale2": "scale2"}  # pathway prefix -> order


def _identifier(prefix: str, k: int, name: str) -> str:
    """A stable Brian2 object name (stable names keep Cython's code cache warm across runs)."""
    return f"nb_{prefix}{k}_{re.sub(r'[^0-9a-zA-Z_]', '_', name)}"


def first_requests(rates: dict[str, float], sizes: dict[str, int], start: float, rng) -> dict[str, np.ndarray]:
    """Each unit's next request time: ``start`` plus an exponential wait (inf at rate 0)."""
    out = {}
    for name, rate in rates.items():
        wait = rng.exponential(1.0, sizes[name])
        out[name] = start + (wait / rate if rate > 0 else np.full(sizes[name], np.inf))
    return out


class RequestGate:
    """The agents' stages are due only on ticks where some agent requests: idle agents cost nothing.

    Local schedule: a unit requests on the first tick (of every ``every``-th) with ``t >= t_next``
    (its own Poisson clock; a loser keeps its ``t_next`` and so requests again on the next such
    tick), so the stages are due exactly when the clock reaches the earliest ``t_next`` of any agent
    unit: the same comparison, on the same numbers, as the ``request`` event's. Colour schedule: a
    request is a coin flip every tick, so the stages are due on every tick while any agent's rate is
    above 0.
    """

    def __init__(self, groups: dict, local: bool, every: int = 1) -> None:
        self.groups, self.local, self.every = groups, local, every
        self.next = np.inf
        self.opened = 0  # ticks on which the stages ran
        self._agents: dict = {}

    def prepare(self) -> None:
        self._agents = {name: np.asarray(G.agent[:]) > 0 for name, G in self.groups.items()}
        self._find_next()

    def ready(self, t: float, step: int) -> bool:
        return t >= self.next and step % self.every == 0

    def update(self) -> None:
        self.opened += 1
        self._find_next()

    def _find_next(self) -> None:
        nexts = [np.inf]
        for name, G in self.groups.items():
            agent = self._agents[name]
            if self.local:
                nexts.append(np.min(G.variables["t_next"].get_value()[agent], initial=np.inf))
            elif agent.any() and G.variables["rate_bal"].get_value().item() > 0:
                nexts.append(-np.inf)
        self.next = float(min(nexts))


def build_objects(spec: AgentSpec, seed: int, gated: bool = False) -> BrianObjects:
    """Build the Brian2 objects of ``spec`` (inside `Target.active()`); ``seed`` draws the first requests.

    ``gated`` (runtime targets): the agents' stages run only on ticks where an agent requests
    (`RequestGate`), so idle agents cost one Python call per tick and scheduling slot in all.
    """
    import brian2 as b2
    net = spec.net
    objects = BrianObjects(None, {"R_in": spec.input_rate * b2.Hz})
    clock = b2.Clock(spec.dt * b2.second, name="nb_clock")
    needed = set(spec.agents) | (set(net.populations) if spec.spiking else set())
    for proj in net.projections:
        if proj.pre in spec.agents or proj.post in spec.agents:
            needed |= {proj.pre, proj.post}
    rng = check_random_state(seed)
    starts = first_requests(spec.rates, {n: net.populations[n].size for n in spec.agents}, 0.0, rng)
    for k, name in enumerate(net.populations):
        if name in needed:
            objects.groups[name] = _group(b2, spec, k, name, clock, objects.namespace, starts)
    for k, proj in enumerate(net.projections):
        _synapses(b2, spec, k, proj, clock, objects, rng)
    parts = list(objects.groups.values()) + [s.synapses for s in objects.synapses]
    for name in spec.agents:
        G = objects.groups[name]
        objects.event_monitors[name] = [
            b2.EventMonitor(G, event, variables=["lam_cum"], record=True, when="synapses", order=ORDERS["monitor"],
                            name=G.name + "_" + event + "_events")
            for event in _balance_events(spec)]
        parts += objects.event_monitors[name]
        if spec.monitor_dt is not None:
            objects.state_monitors[name] = b2.StateMonitor(G, ["lam_cum", "imb"] + (["v"] if spec.spiking else []),
                                                           record=True, when="end",
                                                           dt=spec.monitor_dt * b2.second, name=G.name + "_states")
            parts.append(objects.state_monitors[name])
    if spec.record_spikes:
        for name, G in objects.groups.items():
            if "spike" in G.events:
                objects.spike_monitors[name] = b2.SpikeMonitor(G, record=True, name=G.name + "_spikes")
                parts.append(objects.spike_monitors[name])
        out = objects.groups[net.output.name]
        if "spike" not in out.events:  # an integrating (or NIR non-spiking) output: read its potential
            objects.readout_monitor = b2.StateMonitor(out, "v", record=True, when="end", name=out.name + "_readout")
            parts.append(objects.readout_monitor)
    if spec.weight_dt is not None:
        for syn in objects.synapses:
            mon = b2.StateMonitor(syn.synapses, "w", record=True, when="end", dt=spec.weight_dt * b2.second,
                                  name=syn.synapses.name + "_weights")
            objects.weight_monitors.append(mon)
            parts.append(mon)
    if gated and spec.agents:
        objects.gate = RequestGate({name: objects.groups[name] for name in spec.agents}, spec.schedule == "local",
                                   spec.balance_every)
        objects.network = gated_network(parts, _agent_code_objects(objects, spec), objects.gate, clock,
                                        name="nb_network")
    else:
        if spec.agents:  # cpp_standalone: the binary runs the agents' stages only every balance_every ticks
            agent_clock = b2.Clock(spec.balance_dt * b2.second, name="nb_agent_clock")
            run_on_clock(_agent_code_objects(objects, spec), agent_clock)
        objects.network = b2.Network(*parts, name="nb_network")
    return objects


def _balance_events(spec: AgentSpec) -> tuple[str, ...]:
    """The events on which a unit balances: one round (colour), two rounds (local)."""
    return ("balance", "balance2") if spec.schedule == "local" else ("balance",)


def _agent_code_objects(objects: BrianObjects, spec: AgentSpec) -> list:
    """Every code object of the agents' stages (gated together on the runtime targets)."""
    out = []
    for name in spec.agents:
        G = objects.groups[name]
        for event in G.events:
            if event not in ("spike", "emit"):
                out += [G.thresholder[event], G.resetter[event]]
        out += objects.event_monitors[name]
    for s in objects.synapses:
        out += [getattr(s.synapses, path) for path in PATHWAYS if hasattr(s.synapses, path)]
    return out


def unit_model(spec: AgentSpec, name: str) -> UnitModel | None:
    """The spiking units of population ``name`` (None: not spiking, or an input group without a neuron model)."""
    pop = spec.net.populations[name]
    if not spec.spiking or (pop.role == "input" and spec.coding != "current"):
        return None
    if spec.nir_mode:
        return nir_input() if pop.role == "input" else nir_unit(pop, spec.nir, spec.dt, name in spec.gauged)
    return toolkit_unit(pop, spec.neuron, pop.role != "output" or spec.readout == "rate")


def _group(b2, spec: AgentSpec, k: int, name: str, clock, namespace: dict, starts: dict):
    pop = spec.net.populations[name]
    agent = name in spec.agents
    has_bias = pop.bias is not None
    ident = _identifier("g", k, name)
    schedule = nir_orders(k) if spec.nir_mode else {"spike": 0}
    when = NIR_SLOT if spec.nir_mode else "thresholds"
    if spec.spiking and pop.role == "input" and spec.coding == "poisson":
        return b2.PoissonGroup(pop.size, rates=0 * b2.Hz, name=ident, namespace=namespace, clock=clock, when=when,
                               order=schedule["spike"])
    if spec.spiking and pop.role == "input" and spec.coding == "spikes":
        return b2.SpikeGeneratorGroup(pop.size, [], [] * b2.second, name=ident, clock=clock, when=when,
                                      order=schedule["spike"])
    unit = unit_model(spec, name)
    lines, kwargs = [], {}
    if agent:
        lines.append(neuron_balance_model(has_bias, spec.code, spec.schedule, spec.spiking))
        kwargs["events"] = {"request": request_condition(spec.schedule), "balance": DECIDE}
        if spec.spiking:
            kwargs["events"]["rescale"] = RESCALE
        if spec.schedule == "local":
            kwargs["events"].update(retry=RETRY, balance2=DECIDE2)
    elif has_bias and spec.spiking:
        lines.append("b : 1")
    if unit is not None:
        lines.append(unit.equations)
        kwargs["method"] = unit.method
        if unit.threshold is not None:
            kwargs.update(threshold=unit.threshold, reset=unit.reset)
        if unit.refractory is not None:
            kwargs["refractory"] = unit.refractory
        if unit.emits is not None:
            kwargs.setdefault("events", {})["emit"] = "True"
    G = b2.NeuronGroup(pop.size, "\n".join(lines) or "unused : 1", name=ident, namespace=namespace, clock=clock,
                       **{k_: v for k_, v in kwargs.items() if v is not None})
    if unit is not None:
        for key, value in (unit.values or {}).items():
            setattr(G, key, b2.Quantity(value, dim=G.variables[key].dim))
        if unit.update is not None:
            G.run_regularly(unit.update, when=NIR_SLOT, order=schedule["update"], name=ident + "_step")
        if unit.emits is not None:
            G.set_event_schedule("emit", when=NIR_SLOT, order=schedule["spike"])
        elif spec.nir_mode:
            G.set_event_schedule("spike", when=NIR_SLOT, order=schedule["spike"])
            reset = G.resetter["spike"]  # moved as set_event_schedule moves the threshold
            reset.when, reset.order = NIR_SLOT, schedule["reset"]
    if has_bias and (agent or spec.spiking):
        G.b = pop.bias
    if agent:
        _init_agent(b2, spec, G, name, has_bias, starts, unit)
    return G


def _init_agent(b2, spec: AgentSpec, G, name: str, has_bias: bool, starts: dict, unit: UnitModel | None) -> None:
    pop, graph, code = spec.net.populations[name], spec.graph, spec.code
    G.lam = 1.0
    G.lam_cum = 1.0
    G.agent = (graph.free[name] | graph.dead[name]).astype(np.int64)
    G.rate_bal = spec.rates[name] * b2.Hz
    imb = relative_imbalance(graph, graph.unit_costs(graph.zeros()))[name]
    G.imb = np.where(graph.free[name], np.nan_to_num(imb), 0.0)
    if name in spec.gauged:  # the gauge moves the in-cost alone: mu = (cout / cin) ** (1 / p), no out factor
        G.expo, G.c_out = (1.0 if code.linf else 1.0 / code.p), 1.0
    else:
        G.expo, G.c_out = code.exponent(pop.degree), code.out_factor(pop.degree)
    G.balance_every = spec.balance_every
    if code.generic:
        G.p_cost = code.p
    if spec.schedule == "local":
        G.t_next = starts[name] * b2.second
    else:
        G.colour = spec.colours[name]
        G.n_colours = spec.n_colours
        G.dt_bal = spec.balance_dt * b2.second
    schedule_agent_events(G, lambda_code(code, spec.cost.include_bias, has_bias, spec.spiking, spec.schedule),
                          spec.schedule, None if unit is None else unit.rescale)


def schedule_agent_events(G, step: str, schedule: str, rescale: str | None = None) -> None:
    """Slots, orders and code of an agent group's events (`neuro_balance.sim.equations.ORDERS`).

    ``step`` is the winner's code (`lambda_code`); ``rescale`` (spiking units, `UnitModel.rescale`) scales
    the unit's state by its factor after the resets.
    """
    G.set_event_schedule("request", when="synapses", order=ORDERS["request"])
    G.run_on_event("request", request_code(schedule), when="synapses", order=ORDERS["draw"])
    G.set_event_schedule("balance", when="synapses", order=ORDERS["decide"])
    G.run_on_event("balance", step, when="synapses", order=ORDERS["lambda"])
    if schedule == "local":
        G.set_event_schedule("retry", when="synapses", order=ORDERS["retry"])
        G.run_on_event("retry", RETRY_CODE, when="synapses", order=ORDERS["redraw"])
        G.set_event_schedule("balance2", when="synapses", order=ORDERS["decide2"])
        G.run_on_event("balance2", step, when="synapses", order=ORDERS["lambda2"])
    if rescale is not None:
        G.set_event_schedule("rescale", when=RESCALE_SLOT, order=0)
        G.run_on_event("rescale", rescale + "\nresc = 0", when=RESCALE_SLOT, order=1)


def _synapses(b2, spec: AgentSpec, k: int, proj, clock, objects: BrianObjects, rng) -> None:
    net, agents = spec.net, spec.agents
    pre, post = net.populations[proj.pre], net.populations[proj.post]
    post_idx, pre_idx = get_kind(proj.kind).groups(proj, pre, post)
    post_idx = np.broadcast_to(post_idx, proj.weight.shape).ravel()
    pre_idx = np.broadcast_to(pre_idx, proj.weight.shape).ravel()
    flat = np.arange(proj.weight.size)
    loop = (pre_idx == post_idx) if proj.pre == proj.post else np.zeros(len(flat), dtype=bool)
    balancing = proj.pre in agents or proj.post in agents
    parts = [(~loop, balancing, "")]
    if loop.any():
        parts.append((loop, False, "_loops"))  # a loop scales by lam/lam = 1 (BiLU): never touched
    drift = spec.drift is not None
    weight = "w_base" if drift else "w"
    for mask, balance, suffix in parts:
        if not mask.any() or not (spec.spiking or balance or drift):
            continue
        on_pre, on_post, on_event = {}, {}, {}
        if spec.spiking:
            source = unit_model(spec, proj.pre)
            emits = None if source is None else source.emits
            on_pre["pre"] = unit_model(spec, proj.post).on_spike if emits is None else f"z_post += w*{emits}_pre"
            on_event["pre"] = "spike" if emits is None else "emit"
        for side, other, pop in (("pre", "post", pre), ("post", "pre", post)):
            if balance and getattr(proj, side) in agents:
                agent_pathways(spec.code, spec.schedule, side, pop.degree, getattr(proj, other) in agents, weight,
                               on_pre if side == "pre" else on_post, on_event,
                               scales=not (side == "pre" and proj.pre in spec.gauged))
        if suffix == "_loops" and proj.post in spec.gauged:  # the gauge scales self-connections as incoming weights
            for path, event in zip(("scale_in", "scale2_in"), _balance_events(spec)):
                on_post[path], on_event[path] = scale_in_code(weight), event
        S = b2.Synapses(objects.groups[proj.pre], objects.groups[proj.post], synapse_model(drift),
                        on_pre=on_pre or None, on_post=on_post or None, on_event=on_event or None,
                        namespace=objects.namespace, clock=clock, name=_identifier("s", k, proj.name) + suffix)
        S.connect(i=pre_idx[mask], j=post_idx[mask])
        w0 = proj.weight.ravel()[mask]
        S.k = flat[mask]
        if drift:  # start in the drift's stationary state, with w = w_base * exp(xi) the given weights
            d = spec.drift
            xi = rng.normal(0.0, d.sigma, len(w0))
            S.sigma_d = d.sigma
            S.decay_d = float(np.exp(-d.dt / d.tau))
            S.logdrift = xi
            w0 = w0 * np.exp(-xi)
        setattr(S, weight, w0)
        if drift:
            S.run_regularly(DRIFT_CODE, dt=d.dt * b2.second, when="start", name=S.name + "_drift")
        if spec.nir_mode:  # delivered right after the pre population fired; a forward delay-1 one step later
            S.pre.when, S.pre.order = NIR_SLOT, nir_orders(net.order.index(proj.pre))["deliver"]
            if proj.delay == 1 and net.order.index(proj.pre) < net.order.index(proj.post):
                S.pre.delay = spec.dt * b2.second
        elif spec.spiking:
            S.pre.order = ORDERS["spike"]
        order_pathways(S)
        objects.synapses.append(SynapseSet(proj.name, S, flat[mask]))


def order_pathways(S) -> None:
    """Give every agent pathway of the Synapses ``S`` its stage's order (`ORDERS`)."""
    for path in PATHWAYS:
        if hasattr(S, path):
            getattr(S, path).order = ORDERS[STAGE[path.split("_")[0]]]


def agent_pathways(cost: CostCode, schedule: str, side: str, degree: float, other_is_agent: bool, weight: str,
                   code: dict, on_event: dict, measure: str = "w", scales: bool = True) -> None:
    """The pathways of one agent end (``side``) of a projection: accumulate (and detect), scale (and knock).

    Adds them to ``code`` (``on_pre`` for the pre side, ``on_post`` for the post side) and
    ``on_event``. Pathway names end in ``_out`` for the pre side (the unit's outgoing synapses) and
    ``_in`` for the post side; the local schedule adds the second round's detection and scaling.
    ``weight`` is the variable scaled, ``measure`` the dimensionless expression whose ``|.|**p``
    is accumulated. ``scales=False`` (the outgoing side of a unit balancing by its gauge) only knocks.
    """
    other = "post" if side == "pre" else "pre"
    suffix = "out" if side == "pre" else "in"
    local = schedule == "local"
    acc = [cost.accumulate(f"c{suffix}_{side}", measure, f"p_cost_{side}")]
    scale = [scale_out_code(degree, weight) if side == "pre" else scale_in_code(weight)] if scales else []
    if local and other_is_agent:
        acc.append(detect_code(side))
        code[f"det2_{suffix}"] = detect_code(side, "rt")
        on_event[f"det2_{suffix}"] = "retry"
    if local and scales:
        code[f"scale2_{suffix}"] = scale[0]
        on_event[f"scale2_{suffix}"] = "balance2"
    if local and other_is_agent:
        scale.append(knock_code(other))
    code[f"acc_{suffix}"] = "\n".join(acc)
    on_event[f"acc_{suffix}"] = "request"
    if scale:
        code[f"scale_{suffix}"] = "\n".join(scale)
        on_event[f"scale_{suffix}"] = "balance"
