"""Balancing agents on a Brian2 model the user wrote: the declarations to add, and `attach_balancing`.

A Brian2 user keeps their own `NeuronGroup`, `Synapses` and `Network` (any neuron model: LIF with
refractoriness, Poisson inputs, STDP on the weights, ...) and adds balancing the way one adds a
plasticity rule, by declaring it in the constructors, all through Brian2's public API::

    from neuro_balance.sim import agent_equations, attach_balancing
    eq = agent_equations(nb.Lp(2), weight_unit=mV)             # what to declare
    G = NeuronGroup(N, lif_model + eq.neuron, events=eq.events, threshold=..., reset=..., refractory=...)
    S_in = Synapses(P, G, stdp_model, **eq.synapses(post=True, on_pre=stdp_pre, on_post=stdp_post))
    S_out = Synapses(G, O, "w : volt", **eq.synapses(pre=True, on_pre="v_post += w"))
    net = Network(P, G, O, S_in, S_out, ...)
    agents = attach_balancing(net, groups=[G], pathways=[S_in, S_out], cost=nb.Lp(2), rate=200 * Hz)
    net.run(1 * second)                                         # units balance while the model runs
    agents.network()                                            # the balanced pathways as a Network

What the declarations are (`AgentEquations`): ``neuron`` adds the agents' state variables to an
agent group's model (``cin``, ``cout``, ``lam``, ``lam_cum``, the request bookkeeping and the next
request time ``t_next``: none touches the user's variables); ``events`` adds the custom events
``request``, ``balance``, ``retry`` and ``balance2`` (the local schedule of
`neuro_balance.sim.equations`: own Poisson clocks, neighbours resolved through shared synapses);
``synapses(pre=..., post=...)`` merges into the user's ``on_pre``/``on_post`` the pathways that
accumulate ``|w / weight_unit|**p`` and scale ``w`` on the agent sides (``w *= lam_post`` on
incoming, ``w /= lam_pre`` on outgoing synapses), triggered by those events. `attach_balancing`
then sets their schedule (all in the ``synapses`` slot, after the spikes' pathways), the agents'
clocks and parameters, and adds event monitors to the network.

On cpp_standalone the user chooses the device as for any Brian2 model, before creating their objects
(``set_device("cpp_standalone", directory=..., build_on_run=...)``), and attaches the agents before the
first run (at t = 0). Brian2 cannot read a synapse's values before the binary has run, so every
balanced pathway must be connected with explicit ``i`` and ``j`` arrays (``S.connect(i=..., j=...)``:
its size is then known, as Brian2's own ``StateMonitor(S, ..., record=True)`` requires there), and the
weights the agents start from (`Attachment.source`) are sampled by the binary as the first run starts
(one `StateMonitor` per pathway, ticking once). Everything of the `Attachment` is read after the
binary has run. `neuro_balance.sim.device.claim_build_directory` gives a build directory per model
shape that later builds reuse (``make`` recompiles only the files whose code changed).

The exchange is the rate exchange of a ReLU unit (degree 1, no bias term): every agent unit's
incoming weights are multiplied by ``lam`` and its outgoing ones divided by ``lam``. For a non-leaky
integrate-and-fire unit that is exact; for a leaky one it is approximate (see
`neuro_balance.sim.lif`). Self-synapses (``i == j`` within one group) are refused: they are
invariant and a unit would compete with itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..balancing.costs import Cost
from ..errors import ModelError
from ..model.network import Network, Population, Projection
from ..seeding import check_random_state
from .build import PATHWAYS, agent_pathways, first_requests, order_pathways, schedule_agent_events
from .equations import DECIDE, DECIDE2, ORDERS, RETRY, cost_code, lambda_code, neuron_balance_model, request_condition
from .replay import BalanceEvents
from .units import hertz

__all__ = ["AgentEquations", "agent_equations", "Attachment", "attach_balancing"]

SCHEDULE = "local"
EVENTS = ("request", "balance", "retry", "balance2")
ONCE = 1e9
"""Period (s) of the clock of the standalone start-weight monitors: they tick at t = 0 and not again."""


def _unit_expression(weight: str, unit) -> str:
    """``weight`` divided by ``unit`` as Brian2 code (base-unit names only, so no namespace is needed)."""
    if unit is None:
        return weight
    from brian2.units.fundamentalunits import get_unit
    base = get_unit(unit.dim)
    return f"({weight}/({float(unit / base)!r}*{base!r}))"


@dataclass(frozen=True)
class AgentEquations:
    """What a user adds to their own Brian2 objects to carry balancing agents (see the module docstring).

    Attributes
    ----------
    neuron : str
        Lines to append to an agent group's model equations.
    conditions : tuple of (str, str)
        The custom events and their conditions (`events` gives them as a new dict each time).
    weight : str
        The synaptic weight variable the agents scale (a parameter of the user's synapses).
    measure : str
        Brian2 code of the dimensionless weight (``weight / weight_unit``) whose ``|.|**p`` is summed.
    """

    cost: Cost
    neuron: str
    conditions: tuple = ()
    weight: str = "w"
    measure: str = "w"

    @property
    def events(self) -> dict:
        """Custom events to pass as ``events=`` of an agent group (merge in any of your own).

        A new dict on every access: Brian2's `NeuronGroup` adds its ``spike`` event to the dict it is given.
        """
        return dict(self.conditions)

    def synapses(self, pre: bool = False, post: bool = False, on_pre=None, on_post=None, on_event=None) -> dict:
        """Keyword arguments for the user's `Synapses` with the agents' pathways merged in.

        Parameters
        ----------
        pre, post : bool
            Whether the source (pre) and target (post) groups are agent groups.
        on_pre, on_post : str or dict, optional
            The user's own pathways (a string is the pathway ``pre``/``post`` on spikes, as in Brian2).
        on_event : dict, optional
            The user's own pathway events.

        Returns
        -------
        dict
            ``on_pre``, ``on_post`` and ``on_event`` for ``Synapses(..., **kwargs)``.
        """
        code = cost_code(self.cost)
        out_pre = _pathways(on_pre, "pre")
        out_post = _pathways(on_post, "post")
        events = dict(on_event or {})
        for side, mine, agent in (("pre", out_pre, pre), ("post", out_post, post)):
            if agent:
                clash = set(mine) & set(PATHWAYS)
                if clash:
                    raise ModelError(f"on_{side}: pathway names {sorted(clash)} are the agents'; rename yours")
                agent_pathways(code, SCHEDULE, side, 1.0, pre and post, self.weight, mine, events, self.measure)
        return {"on_pre": out_pre or None, "on_post": out_post or None, "on_event": events or None}


def _pathways(code, default: str) -> dict:
    if code is None:
        return {}
    if isinstance(code, str):
        return {default: code}
    return dict(code)


def agent_equations(cost: Cost, weight: str = "w", weight_unit=None) -> AgentEquations:
    """The declarations that make a user's groups and synapses carry balancing agents.

    Parameters
    ----------
    cost : Cost
        A single Lp or Linf term (biases are not part of the exchange here).
    weight : str
        Name of the weight parameter in the user's synapses.
    weight_unit : Quantity, optional
        Unit of the weight (e.g. ``mV`` for ``v_post += w``); costs are sums of ``|w / weight_unit|**p``.
        Use one unit for every balanced pathway: the balanced state depends on the units only through
        their ratios.

    Returns
    -------
    AgentEquations

    Examples
    --------
    >>> import neuro_balance as nb
    >>> eq = agent_equations(nb.Lp(2))
    >>> sorted(eq.events)
    ['balance', 'balance2', 'request', 'retry']
    >>> "lam_cum : 1" in eq.neuron
    True
    """
    code = cost_code(cost)
    events = (("request", request_condition(SCHEDULE)), ("balance", DECIDE), ("retry", RETRY), ("balance2", DECIDE2))
    return AgentEquations(cost, neuron_balance_model(False, code, SCHEDULE), events, weight,
                          _unit_expression(weight, weight_unit))


class Attachment:
    """Balancing agents attached to a user's Brian2 objects (`attach_balancing`).

    Attributes
    ----------
    groups : list
        The agent NeuronGroups.
    pathways : list
        The balanced Synapses.
    monitors : list
        The EventMonitors of the agents' events (added to the user's network).
    """

    def __init__(self, groups, pathways, cost: Cost, equations: AgentEquations, weight_unit, monitors: dict,
                 start_monitors: dict | None = None) -> None:
        self.groups, self.pathways, self.cost, self.equations = list(groups), list(pathways), cost, equations
        self.weight_unit = weight_unit
        self.monitors = monitors
        self._start_monitors = start_monitors
        self._source = None if start_monitors else self.network()

    @property
    def source(self) -> Network:
        """The balanced pathways as the agents started, as a `Network` (see `network`).

        The weights at `attach_balancing`; on cpp_standalone, the weights as the first run started,
        sampled by the binary (read after it has run).
        """
        if self._source is None:
            weight = self.equations.weight
            self._source = self._network(lambda S: getattr(self._start_monitors[S.name], weight)[:, 0])
        return self._source

    def _weights(self, values) -> np.ndarray:
        w = np.asarray(values)
        if self.weight_unit is not None:
            w = np.asarray(values / self.weight_unit)
        return w.astype(np.float64)

    def network(self) -> Network:
        """The balanced pathways' current weights as a `Network` (in units of ``weight_unit``).

        Agent groups are hidden ReLU populations; of the other groups, one that only sends is the
        input, one that only receives is the output, any other is a ground hidden population.
        """
        return self._network(lambda S: getattr(S, self.equations.weight)[:])

    def _network(self, weights) -> Network:
        """The balanced pathways as a `Network`, with ``weights(S)`` (a Brian2 quantity array) per pathway."""
        names = {id(G): G.name for G in self.groups}
        sends, receives = {}, {}
        for S in self.pathways:
            for G, table in ((S.source, sends), (S.target, receives)):
                names.setdefault(id(G), G.name)
                table[id(G)] = G
        sizes = {id(G): len(G) for G in list(sends.values()) + list(receives.values())}
        agent_ids = {id(G) for G in self.groups}
        pops, has_in, has_out = [], False, False
        for key, name in names.items():
            if key in agent_ids:
                pops.append(Population(name, sizes[key], "hidden", "relu"))
            elif key not in receives and not has_in:
                pops.append(Population(name, sizes[key], "input", "linear"))
                has_in = True
            elif key not in sends and not has_out:
                pops.append(Population(name, sizes[key], "output", "linear"))
                has_out = True
            else:
                pops.append(Population(name, sizes[key], "hidden", "linear", ground=True))
        if not has_in:
            pops.append(Population("nb_ground_in", 1, "input", "linear"))
        if not has_out:
            pops.append(Population("nb_ground_out", 1, "output", "linear"))
        projections = []
        for S in self.pathways:
            i, j = np.asarray(S.i[:]), np.asarray(S.j[:])
            W = np.zeros((len(S.target), len(S.source)))
            W[j, i] = self._weights(weights(S))
            projections.append(Projection(S.source.name, S.target.name, W, delay=int(S.source is S.target),
                                          name=S.name))
        return Network(pops, projections, name="attached")

    @property
    def log_scales(self) -> dict[str, np.ndarray]:
        """Cumulative log-scale ``log(prod lam)`` of every agent unit, per group name."""
        return {G.name: np.log(np.asarray(G.lam_cum[:])) for G in self.groups}

    @property
    def events(self) -> BalanceEvents:
        """Every balance event so far, with the factor each unit recorded (for `replay`)."""
        t, step, pop, idx, lam = [], [], [], [], []
        for G in self.groups:
            for mon in self.monitors[G.name]:
                n = len(mon.t_[:])
                t.append(np.asarray(mon.t_[:]))
                step.append(np.rint(np.asarray(mon.t_[:]) / float(G.clock.dt_)).astype(np.int64))
                pop.append(np.full(n, G.name, dtype=object))
                idx.append(np.asarray(mon.i[:]).astype(np.int64))
                lam.append(np.asarray(mon.lam_cum[:]))
        names = tuple(G.name for G in self.groups)
        if not t:
            return BalanceEvents(np.zeros(0), np.zeros(0, int), np.zeros(0, dtype=object), np.zeros(0, int), names,
                                 np.zeros(0))
        t, step, pop, idx, lam = (np.concatenate(a) for a in (t, step, pop, idx, lam))
        rank = np.array([names.index(p) for p in pop])
        order = np.lexsort((idx, rank, step))
        return BalanceEvents(t[order], step[order], pop[order], idx[order], names, lam[order])


def _check(network, groups, pathways, equations: AgentEquations, standalone: bool) -> None:
    import brian2 as b2
    agent_ids = {id(G) for G in groups}
    listed = {id(S) for S in pathways}
    for obj in network.objects:
        if isinstance(obj, b2.Synapses) and id(obj) not in listed and (id(obj.source) in agent_ids
                                                                       or id(obj.target) in agent_ids):
            raise ModelError(f"pathways: the synapses {obj.name!r} touch an agent group but are not balanced; a "
                             "unit's every synapse must take part in the exchange (add them to pathways)")
    for G in groups:
        missing = [v for v in ("cin", "cout", "lam", "lam_cum", "t_next", "prio") if v not in G.variables]
        missing_events = [e for e in EVENTS if e not in G.events]
        if missing or missing_events:
            raise ModelError(f"groups[{G.name!r}]: add agent_equations(...).neuron to its model and .events to its "
                             f"events= (missing variables {missing}, events {missing_events})")
    for S in pathways:
        if equations.weight not in S.variables:
            raise ModelError(f"pathways[{S.name!r}]: no weight variable {equations.weight!r}")
        if standalone and not _counted(S):
            raise ModelError(f"pathways[{S.name!r}]: on cpp_standalone connect it with explicit arrays, "
                             "S.connect(i=..., j=...), so that its synapses are known before the binary runs")
        for side, suffix, group in (("pre", "out", S.source), ("post", "in", S.target)):
            agent, declared = id(group) in agent_ids, hasattr(S, f"acc_{suffix}")
            if agent and not declared:
                raise ModelError(f"pathways[{S.name!r}]: its {side} group {group.name!r} is an agent group; create the "
                                 f"Synapses with **agent_equations(...).synapses({side}=True, ...)")
            if declared and not agent:
                raise ModelError(f"pathways[{S.name!r}]: declares agent pathways on its {side} side, but "
                                 f"{group.name!r} is not in groups")
        if S.source is S.target and np.any(np.asarray(S.i[:]) == np.asarray(S.j[:])):
            raise ModelError(f"pathways[{S.name!r}]: self-synapses (i == j) are invariant under balancing and "
                             "would make a unit compete with itself; leave them out of the balanced pathway")


def _counted(S) -> bool:
    """Whether the number of synapses of ``S`` is known now (cpp_standalone: only after ``connect(i=..., j=...)``)."""
    try:
        len(S)
    except NotImplementedError:
        return False
    return True


def attach_balancing(network, groups, pathways, cost: Cost, rate, *, equations: AgentEquations | None = None,
                     weight_unit=None, seed: int = 0) -> Attachment:
    """Attach balancing agents to a user's Brian2 objects (call after ``connect`` and setting the weights).

    Works on the current Brian2 device and target (cpp_standalone: see the module docstring).

    Parameters
    ----------
    network : brian2.Network
        The user's network; the agents' event monitors are added to it.
    groups : list of NeuronGroup
        Agent groups, built with `agent_equations` (every unit is an agent).
    pathways : list of Synapses
        The balanced synapses, built with ``AgentEquations.synapses``; every synapse touching an agent
        group must be among them (a synapse left out would escape the exchange).
    cost : Cost
        The same cost given to `agent_equations`.
    rate : float or Quantity
        Mean balance events per unit per second (Hz); each unit has its own Poisson clock.
    equations : AgentEquations, optional
        The declarations used (default: ``agent_equations(cost, weight_unit=weight_unit)``).
    weight_unit : Quantity, optional
        As in `agent_equations`.
    seed : int
        Seed of the first request times (later ones come from Brian2's ``rand()``, seeded by the user).

    Returns
    -------
    Attachment

    Raises
    ------
    ModelError
        For missing declarations, a synapse touching an agent group left out of ``pathways``,
        self-synapses; on cpp_standalone, a pathway connected without explicit arrays, or a network
        that has run before.
    """
    import brian2 as b2
    from brian2.devices.device import RuntimeDevice, get_device
    equations = equations or agent_equations(cost, weight_unit=weight_unit)
    groups, pathways = list(groups), list(pathways)
    standalone = not isinstance(get_device(), RuntimeDevice)
    _check(network, groups, pathways, equations, standalone)
    code = cost_code(cost)
    rate_hz = hertz(rate, "rate")
    rng = check_random_state(seed)
    start = float(network.t_)  # the network's time: a clock shared with an earlier network still shows that one's
    if standalone and start != 0.0:
        raise ModelError(f"attach_balancing: on cpp_standalone attach the agents before the first run (t = 0), "
                         f"not at t = {start!r} s")
    starts = first_requests({G.name: rate_hz for G in groups}, {G.name: len(G) for G in groups}, start, rng)
    monitors = {}
    for G in groups:
        G.lam = 1.0
        G.lam_cum = 1.0
        G.agent = 1
        G.imb = 0.0
        G.rate_bal = rate_hz * b2.Hz
        G.expo = code.exponent(1.0)
        G.c_out = code.out_factor(1.0)
        G.balance_every = 1
        if code.generic:
            G.p_cost = code.p
        G.t_next = starts[G.name] * b2.second
        schedule_agent_events(G, lambda_code(code, False, False, False, SCHEDULE), SCHEDULE)
        monitors[G.name] = [b2.EventMonitor(G, event, variables=["lam_cum"], record=True, when="synapses",
                                            order=ORDERS["monitor"], name=f"{G.name}_{event}_agent_events")
                            for event in ("balance", "balance2")]
        network.add(*monitors[G.name])
    for S in pathways:
        order_pathways(S)
    start_monitors = None
    if standalone:  # the weights cannot be read before the binary runs: it samples them as the first run starts
        start_monitors = {S.name: b2.StateMonitor(S, equations.weight, record=True, when="start", dt=ONCE * b2.second,
                                                  name=f"{S.name}_agent_start") for S in pathways}
        network.add(*start_monitors.values())
    return Attachment(groups, pathways, cost, equations, weight_unit, monitors, start_monitors)
