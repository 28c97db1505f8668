"""The numpy oracle for the Brian2 agents: replay recorded balance events on the cost graph.

Within one time step the Brian2 agents process populations in a fixed order (``BalanceEvents.order``,
the ranks of their scheduling orders) and, inside a population, all of the step's events at once.
Replaying the events in exactly that order with `BalanceState` (exact local balancing on log-scales,
theory eq 3.3) is the sequential asynchronous algorithm the simulation claims to run; the Brian2
weights must equal ``scale(net, u)`` of the replayed log-scales ``u`` up to rounding, and so must
the whole trajectory: the cumulative factor each agent recorded at each of its events equals
``exp(u)`` of the replay right after that event (`trajectory_difference`). A NIR graph's hidden
spiking units balance by their gauge; its replay applies `nb.balance`'s own gauge and exchange
steps. Final weights alone are a weak oracle on a converged run (the balanced state is unique, so a
wrong schedule that still converges ends in the same weights); the trajectory is not.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..balancing.costs import Cost
from ..balancing.graph import build_graph, max_imbalance
from ..balancing.local import BalanceState
from ..balancing.metrics import imbalance
from ..balancing.scaling import scale
from ..balancing.spiking import gauge, spiking_populations
from ..model.network import Network
from ..model.neurons import POTENTIALS

__all__ = ["BalanceEvents", "ReplayResult", "replay", "max_relative_difference", "trajectory_difference"]


@dataclass
class BalanceEvents:
    """Every balance event of a simulation, in time order.

    Attributes
    ----------
    t : ndarray of float, shape (n,)
        Time of each event in seconds.
    step : ndarray of int, shape (n,)
        Time step of each event (``round(t / dt)``).
    population : ndarray of str, shape (n,)
        Population of the unit that balanced.
    index : ndarray of int, shape (n,)
        Unit index within its population.
    order : tuple of str
        Order in which populations are processed within one step.
    lam_cum : ndarray of float, shape (n,), optional
        The unit's cumulative factor right after the event, as the agent recorded it.
    """

    t: np.ndarray
    step: np.ndarray
    population: np.ndarray
    index: np.ndarray
    order: tuple[str, ...]
    lam_cum: np.ndarray | None = None

    def select(self, keep: np.ndarray) -> "BalanceEvents":
        """The events where the boolean mask ``keep`` is True."""
        return BalanceEvents(self.t[keep], self.step[keep], self.population[keep], self.index[keep], self.order,
                             None if self.lam_cum is None else self.lam_cum[keep])

    def __len__(self) -> int:
        return len(self.t)

    def counts(self) -> dict[str, np.ndarray]:
        """Number of events per unit, per population (only populations that had events)."""
        out = {}
        for name in self.order:
            sel = self.population == name
            if sel.any():
                out[name] = np.bincount(self.index[sel])
        return out

    def __repr__(self) -> str:
        span = f"{self.t[0]:.4g}..{self.t[-1]:.4g} s" if len(self) else "empty"
        return f"BalanceEvents({len(self)} events, {span}, populations {list(self.order)})"


@dataclass
class ReplayResult:
    """Outcome of `replay`: the replayed network, its log-scales and the exact imbalance history.

    ``event_log_scales[k]`` is the log-scale of event ``k``'s unit right after the event (events in
    the order given to `replay`).
    """

    network: Network
    log_scales: dict[str, np.ndarray]
    steps: np.ndarray
    imbalance: np.ndarray
    event_log_scales: np.ndarray


def replay(net: Network, cost: Cost, events: BalanceEvents, *, record_every: int | None = None) -> ReplayResult:
    """Replay balance events in the agents' order with exact local balancing (theory eq 3.3).

    Events of one step are grouped per population and applied population by population in
    ``events.order``; units without a free scale (dead, anchoring a ground-less component) keep
    ``u = 0``, exactly as the agents' guard keeps ``lam = 1``.

    Parameters
    ----------
    net : Network
        The network before the first event.
    cost : Cost
    events : BalanceEvents
    record_every : int, optional
        Record the exact max relative imbalance every this many time steps (None: only at the end).

    Returns
    -------
    ReplayResult
        ``network`` = ``scale(net, u)``; ``log_scales`` = ``u`` of the balanced populations;
        ``steps``/``imbalance`` the recorded history (the initial state first).

    Examples
    --------
    >>> import neuro_balance as nb, numpy as np
    >>> net = nb.mlp([4, 3, 2], seed=0)
    >>> ev = BalanceEvents(np.zeros(1), np.zeros(1, int), np.array(["h1"]), np.array([0]), ("h1",))
    >>> bool(np.allclose(replay(net, nb.Lp(2), ev).network.forward(np.ones((1, 4))), net.forward(np.ones((1, 4)))))
    True
    """
    if spiking_populations(net):
        return _replay_nir(net, cost, events, record_every)
    graph = build_graph(net, cost)
    state = BalanceState(graph)

    def step(name: str, group: np.ndarray) -> np.ndarray:
        idx = group[graph.free[name][group]]
        if len(idx):
            state.balance(name, idx)
        return state.u[name][group]

    steps, history, after = _replay_groups(events, record_every, step,
                                           lambda: max_imbalance(graph, graph.unit_costs(state.u)))
    log_scales = {name: u for name, u in state.u.items() if net.populations[name].balanced}
    return ReplayResult(scale(net, log_scales), log_scales, steps, history, after)


def _event_groups(events: BalanceEvents):
    """``(step, population, units, positions)`` of every step's events of one population, in the agents' order."""
    rank = {name: r for r, name in enumerate(events.order)}
    pop_rank = np.array([rank[name] for name in events.population], dtype=np.int64)
    order = np.lexsort((pop_rank, events.step)) if len(events) else np.zeros(0, dtype=np.int64)
    steps, ranks = np.asarray(events.step)[order], pop_rank[order]
    if not len(order):
        return
    bounds = np.flatnonzero(np.diff(steps) | np.diff(ranks)) + 1
    for a, b in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(order)]])):
        yield int(steps[a]), events.order[ranks[a]], np.asarray(events.index)[order[a:b]], order[a:b]


def _replay_groups(events: BalanceEvents, record_every: int | None, step, measure) -> tuple:
    """Apply ``step(population, units)`` to every group of `_event_groups` in order.

    ``step`` returns the units' log-scales right after it; ``measure()`` is the exact max relative
    imbalance, recorded at the start, every ``record_every`` time steps and at the end.
    Returns ``(steps, imbalance, event_log_scales)``.
    """
    history_steps, history = [0], [measure()]
    after = np.zeros(len(events))
    next_record = record_every
    last = 0
    for when, name, group, positions in _event_groups(events):
        if next_record is not None and when >= next_record:
            history_steps.append(when)
            history.append(measure())
            next_record = (when // record_every + 1) * record_every
        after[positions] = step(name, group)
        last = when
    if len(events):
        history_steps.append(last + 1)
        history.append(measure())
    return np.array(history_steps), np.array(history), after


def _replay_nir(net: Network, cost: Cost, events: BalanceEvents, record_every: int | None) -> ReplayResult:
    """`replay` for a NIR graph: hidden spiking units take their gauge, the others the exchange.

    Each group's factors are `imbalance`'s local steps (``lam_star``) on the network as it stands (a dead
    unit keeps 1), applied with `gauge` or `scale`: the numpy path of `nb.balance`, not the agents' code.
    """
    gauged = {n for n in spiking_populations(net) if net.populations[n].role == "hidden"}
    u = {name: np.zeros(net.populations[name].size) for name in events.order}
    work = [net.copy()]  # the network as it stands, replaced by each exchange step

    def step(name: str, group: np.ndarray) -> np.ndarray:
        lam = imbalance(work[0], cost).lam_star[name][group]
        delta = np.zeros(net.populations[name].size)
        delta[group] = np.log(np.where(np.isfinite(lam) & (lam > 0), lam, 1.0))
        work[0] = gauge(work[0], {name: delta}, inplace=True) if name in gauged else scale(work[0], {name: delta})
        u[name] += delta
        return u[name][group]

    steps, history, after = _replay_groups(events, record_every, step,
                                           lambda: imbalance(work[0], cost).max_relative)
    return ReplayResult(work[0], u, steps, history, after)


def trajectory_difference(events: BalanceEvents, result: ReplayResult) -> float:
    """Largest ``|log lam_cum - u|`` over all events: the agents' recorded factors against the replay's.

    ``result`` must be the `replay` of ``events`` (same order), which must carry ``lam_cum``.
    """
    if events.lam_cum is None:
        raise ValueError("events: no recorded lam_cum (events read from a BalancingNetwork carry it)")
    if not len(events):
        return 0.0
    return float(np.max(np.abs(np.log(events.lam_cum) - result.event_log_scales)))


def max_relative_difference(a: Network, b: Network) -> float:
    """Largest difference between two networks' parameters, relative to each array's largest ``|b|``.

    Compares every projection's weight, every population's bias and the potentials of NIR neuron
    models (``v_threshold``, ``v_reset``, ``v_leak``; same structure assumed).
    """
    worst = 0.0
    pairs = [(pa.weight, pb.weight) for pa, pb in zip(a.projections, b.projections)]
    pairs += [(a.populations[n].bias, pop.bias) for n, pop in b.populations.items() if pop.bias is not None]
    pairs += [(a.populations[n].neuron.params[k], v) for n, pop in b.populations.items() if pop.neuron is not None
              for k, v in pop.neuron.params.items() if k in POTENTIALS]
    for x, y in pairs:
        top = float(np.max(np.abs(y), initial=0.0))
        if top > 0:
            worst = max(worst, float(np.max(np.abs(x - y))) / top)
    return worst
