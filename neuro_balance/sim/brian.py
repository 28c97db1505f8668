"""Neurons as agents: event-driven local balancing (and spiking) in Brian2 (DESIGN §6).

Every balanced population is a `NeuronGroup` whose units carry a Poisson ``balance`` event. Every
projection is a `Synapses` object with ``on_event`` pathways that add ``|w|**p`` into the pre unit's
``cout`` and the post unit's ``cin`` (accumulate), a ``run_on_event`` that computes the unit's factor
``lam`` (see `neuro_balance.sim.equations`), and pathways that rescale ``w`` (scale). All three
stages sit in the ``synapses`` slot with explicit orders (accumulate < lambda < scale, staggered by
population). Events are gated by a greedy colouring of the shares-a-parameter graph stored per unit,
so neighbours never balance in the same step: the simulation is exactly the sequential algorithm on
layered, skip and recurrent graphs, and `neuro_balance.sim.replay` reproduces it from the recorded
events. There is no ``network_operation`` and no summed variable: the same model runs on the
numpy, cython and cpp_standalone targets.

In spiking mode the units are non-leaky integrate-and-fire neurons with reset by subtraction, whose
rate is ``R * relu(input)``: balancing a unit by ``lam`` multiplies its rate by ``lam`` and leaves
the output unchanged, while it keeps spiking.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from ..balancing.local import unit_colours
from ..balancing.costs import Cost
from ..errors import ModelError
from ..balancing.graph import build_graph, relative_imbalance
from ..model.kinds import get_kind
from ..model.network import Network
from .equations import SCALE_IN, balance_condition, cost_code, lambda_code, neuron_balance_model, scale_out_code
from .replay import BalanceEvents

__all__ = ["BalancingNetwork", "SpikeMeasurement", "TARGETS", "CODINGS", "READOUTS"]

TARGETS = ("numpy", "cython", "cpp_standalone")
CODINGS = ("current", "poisson")
READOUTS = ("potential", "rate")
_SPIKE_ORDER = -1  # spikes are delivered before any balancing stage of the step


def _seconds(value, what: str) -> float:
    """A duration given in seconds or as a Brian2 quantity, as float seconds."""
    if hasattr(value, "dim"):
        from brian2 import second
        from brian2.units.fundamentalunits import fail_for_dimension_mismatch
        fail_for_dimension_mismatch(value, second, f"{what} must be a time")
        value = float(value / second)
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a positive time, got {value!r}")
    return value


def _hertz(value, what: str) -> float:
    """A rate given in Hz or as a Brian2 quantity, as float Hz."""
    if hasattr(value, "dim"):
        from brian2 import Hz
        from brian2.units.fundamentalunits import fail_for_dimension_mismatch
        fail_for_dimension_mismatch(value, Hz, f"{what} must be a rate")
        value = float(value / Hz)
    value = float(value)
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a rate >= 0 Hz, got {value!r}")
    return value


def _identifier(prefix: str, k: int, name: str) -> str:
    """A stable Brian2 object name (stable names keep Cython's code cache warm across runs)."""
    return f"nb_{prefix}{k}_{re.sub(r'[^0-9a-zA-Z_]', '_', name)}"


@dataclass
class SpikeMeasurement:
    """Spike rates and output readout over one measurement window.

    Attributes
    ----------
    duration : float
        Window length in seconds.
    rates : dict of ndarray
        Rate (Hz) of every spiking population's units over the window.
    counts : dict of ndarray
        Spike counts over the window.
    output : ndarray
        The readout: ``f(dv / (R T))`` of the integrating output units (``potential``), or
        ``count / (R T)`` of spiking output units (``rate``).
    """

    duration: float
    rates: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    output: np.ndarray


@dataclass
class _SynapseSet:
    """One Brian2 Synapses object and the projection parameters it carries."""

    projection: str
    synapses: object
    flat_index: np.ndarray


class BalancingNetwork:
    """A network whose balanced units are autonomous Brian2 agents (optionally spiking).

    Parameters
    ----------
    net : Network
        Any network: layered, skip (DAG) or recurrent, mixed activations. Hidden homogeneous
        populations are agents; input, output and non-homogeneous populations are ground.
    cost : Cost
        ``Lp(p)`` for any ``p > 0`` (fast paths for p = 1, 2) or ``Linf()``; biases count in the
        in-cost when ``cost.include_bias``.
    rate : float, quantity or dict
        Mean balance rate per unit in Hz (a dict gives one per population).
    spiking : bool
        Add non-leaky integrate-and-fire dynamics (see the module docstring).
    target : {"numpy", "cython", "cpp_standalone"}
        Brian2 code generation target. cpp_standalone builds the binary on the first read of a
        result; all `run` calls must come before.
    dt : float or quantity, optional
        Time step (default 0.1 ms).
    seed : int
        Seed of Brian2's random numbers (the balance clocks and Poisson inputs).
    colouring : bool
        Gate events by colour so neighbours never balance in the same step (exactly sequential).
        Without it, units of one population that share a parameter (recurrent projections) may
        balance together (a Jacobi step for them).
    input_rate : float
        ``R`` in Hz: an activity of 1 is a rate of ``R`` (spiking only).
    coding : {"current", "poisson"}
        Input coding: integrate-and-fire input units driven by ``x * R``, or Poisson spike trains.
    readout : {"potential", "rate"}
        Output units integrate without spiking (read ``dv / (R T)``), or spike like hidden units.
    monitor_dt : float, optional
        Sampling period of the lambda and imbalance monitors (default 1 ms; None: no monitors).
    directory : str, optional
        Build directory for cpp_standalone (default: a new temporary directory).
    balancing : bool
        False builds the same spiking network without any agent (the baseline of the agents'
        overhead); requires ``spiking=True``.
    balance_every : int
        The agents' own clock ticks every this many time steps (the balance events, lambda and
        scaling run only then; spikes every step). The mean balance rate is unchanged; what it saves
        is the agents' fixed cost per step when few events fire.
    record_spikes : bool
        Record every spike (SpikeMonitor per spiking population; see `spikes`).

    Examples
    --------
    >>> import neuro_balance as nb
    >>> from neuro_balance.sim import BalancingNetwork
    >>> bn = BalancingNetwork(nb.mlp([6, 5, 4, 2], seed=0), nb.Lp(2), rate=500.0)
    >>> bn.run(0.05)
    >>> nb.imbalance(bn.network, nb.Lp(2)).max_relative < 1e-3
    True
    """

    def __init__(self, net: Network, cost: Cost, rate: float | Mapping[str, float] = 100.0, spiking: bool = False,
                 target: str = "numpy", dt=None, seed: int = 0, colouring: bool = True, *,
                 input_rate: float = 200.0, coding: str = "current", readout: str = "potential",
                 monitor_dt: float | None = 1e-3, directory: str | None = None, balancing: bool = True,
                 balance_every: int = 1, record_spikes: bool = False) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if coding not in CODINGS:
            raise ValueError(f"coding must be one of {CODINGS}, got {coding!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        self.source = net
        self.cost = cost
        self.target = target
        self.spiking = bool(spiking)
        self.colouring = bool(colouring)
        self.seed = int(seed)
        self.dt = 1e-4 if dt is None else _seconds(dt, "dt")
        if not (isinstance(balance_every, (int, np.integer)) and balance_every >= 1):
            raise ValueError(f"balance_every must be an integer >= 1, got {balance_every!r}")
        self.balance_every = int(balance_every)
        self.balance_dt = self.dt * self.balance_every
        self.input_rate = _hertz(input_rate, "input_rate")
        self.coding, self.readout = coding, readout
        self.monitor_dt = None if monitor_dt is None else _seconds(monitor_dt, "monitor_dt")
        self.record_spikes = bool(record_spikes) and self.spiking
        self.code = cost_code(cost)
        self.graph = build_graph(net, cost)
        if not (balancing or spiking):
            raise ValueError("balancing=False needs spiking=True (otherwise there is nothing to simulate)")
        self.agents = [name for name in net.order if net.populations[name].balanced] if balancing else []
        self.rates = self._rates(rate)
        self._check(net)
        self._colours, self.n_colours = self._compact_colours()
        if self.colouring:
            worst = max((self.rates[n] for n in self.agents), default=0.0)
            if self.n_colours * worst * self.balance_dt > 1:
                raise ValueError(f"rate: {self.n_colours} colours x {worst} Hz x {self.balance_dt} s > 1; colour "
                                 f"gating needs n_colours * rate * dt * balance_every <= 1 (lower rate or dt)")
        self._x: np.ndarray | None = None
        self._runs = 0
        self._started = False
        self._cache: dict | None = None
        self.standalone_run_time: float | None = None  # seconds the cpp_standalone binary ran
        self._directory = directory
        with self._codegen():
            self._build()

    # ------------------------------------------------------------------ checks
    def _rates(self, rate) -> dict[str, float]:
        if isinstance(rate, Mapping):
            unknown = set(rate) - set(self.agents)
            if unknown:
                raise ModelError(f"rate: {sorted(unknown)} are not balanced populations (agents: {self.agents})")
            return {name: _hertz(rate.get(name, 0.0), f"rate[{name!r}]") for name in self.agents}
        value = _hertz(rate, "rate")
        return {name: value for name in self.agents}

    def _check(self, net: Network) -> None:
        for name in self.agents:
            pop = net.populations[name]
            if pop.degree != 1.0 and name in self.graph.loops and any(L.any() for L in self.graph.loops[name]):
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
        """Colours of the agents' units, renumbered 0..m-1 over the colours agents actually use."""
        colours = unit_colours(self.graph)
        used = np.unique(np.concatenate([colours[n] for n in self.agents])) if self.agents else np.zeros(0, int)
        lookup = {int(c): k for k, c in enumerate(used)}
        return ({n: np.array([lookup[int(c)] for c in colours[n]], dtype=np.int64) for n in self.agents},
                max(len(used), 1))

    # ------------------------------------------------------------------ Brian2 plumbing
    @contextlib.contextmanager
    def _codegen(self):
        from brian2 import prefs
        old = prefs.codegen.target
        prefs.codegen.target = "numpy" if self.target == "cpp_standalone" else self.target
        try:
            yield
        finally:
            prefs.codegen.target = old

    def _build(self) -> None:
        import brian2 as b2
        if self.target == "cpp_standalone":
            self._directory = self._directory or tempfile.mkdtemp(prefix="nb_standalone_")
            b2.set_device("cpp_standalone", directory=self._directory, build_on_run=False)
            b2.device.reinit()
            b2.device.activate(directory=self._directory, build_on_run=False)
        net = self.source
        self.namespace = {"R_in": self.input_rate * b2.Hz}
        self.clock = b2.Clock(self.dt * b2.second, name="nb_clock")
        rank = {name: r for r, name in enumerate(self.agents)}
        self.groups, self.synapses, self.event_monitors, self.state_monitors = {}, [], {}, {}
        self.spike_monitors = {}
        needed = set(self.agents) | ({n for n in net.populations} if self.spiking else set())
        for proj in net.projections:
            if proj.pre in rank or proj.post in rank:
                needed |= {proj.pre, proj.post}
        for k, name in enumerate(net.populations):
            if name in needed:
                self.groups[name] = self._make_group(b2, k, name, rank)
        for k, proj in enumerate(net.projections):
            self._make_synapses(b2, k, proj, rank)
        objects = list(self.groups.values()) + [s.synapses for s in self.synapses]
        for name in self.agents:
            G = self.groups[name]
            self.event_monitors[name] = b2.EventMonitor(G, "balance", record=True, name=G.name + "_events")
            objects.append(self.event_monitors[name])
            if self.monitor_dt is not None:
                self.state_monitors[name] = b2.StateMonitor(G, ["lam_cum", "imb"], record=True, when="end",
                                                            dt=self.monitor_dt * b2.second, name=G.name + "_states")
                objects.append(self.state_monitors[name])
        if self.record_spikes:
            for name, G in self.groups.items():
                if "spike" in G.events:
                    self.spike_monitors[name] = b2.SpikeMonitor(G, record=True, name=G.name + "_spikes")
                    objects.append(self.spike_monitors[name])
        if self.balance_every > 1:
            self._move_agents_to_their_clock(b2)
        if self.spiking:
            self.set_input(np.zeros(net.input.size), _check=False)
        self.net = b2.Network(*objects, name="nb_network")

    def _move_agents_to_their_clock(self, b2) -> None:
        """Run every balance stage (event check, lambda, pathways, event monitor) on a slower clock.

        Brian2 gives these objects their group's clock and has no argument to choose another, so
        the clock is reassigned before the first run; the Network then runs them only on the ticks
        of ``balance_clock`` (which fall on steps of the main clock), in the same slots and orders.
        """
        self.balance_clock = b2.Clock(self.balance_dt * b2.second, name="nb_balance_clock")
        moved = []
        for name in self.agents:
            G = self.groups[name]
            moved += [G.thresholder["balance"], G.resetter["balance"], self.event_monitors[name]]
        for s in self.synapses:
            moved += [path for path in s.synapses._pathways if path.event == "balance"]
        for obj in moved:
            obj._clock = self.balance_clock

    def _make_group(self, b2, k: int, name: str, rank: dict[str, int]):
        pop = self.source.populations[name]
        agent = name in rank
        has_bias = pop.bias is not None
        if self.spiking and pop.role == "input" and self.coding == "poisson":
            return b2.PoissonGroup(pop.size, rates=0 * b2.Hz, name=_identifier("g", k, name), namespace=self.namespace,
                                   clock=self.clock)
        lines, kwargs = [], {}
        if agent:
            lines.append(neuron_balance_model(has_bias, self.code))
            kwargs["events"] = {"balance": balance_condition(self.colouring)}
        elif has_bias and self.spiking:
            lines.append("b : 1")
        if self.spiking:
            drive = "x_in*R_in" if pop.role == "input" else ("b*R_in" if has_bias else "0*Hz")
            lines += [f"dv/dt = {drive} : 1", "nspk : 1"]
            if pop.role == "input":
                lines.append("x_in : 1")
            if pop.role != "output" or self.readout == "rate":
                kwargs.update(threshold="v > 1", reset="v -= 1\nnspk += 1")
            kwargs["method"] = "euler"  # the drive is constant between spikes: Euler is exact
        G = b2.NeuronGroup(pop.size, "\n".join(lines) or "unused : 1", name=_identifier("g", k, name),
                           namespace=self.namespace, clock=self.clock, **kwargs)
        if has_bias and (agent or self.spiking):
            G.b = pop.bias
        if agent:
            r = rank[name]
            G.lam = 1.0
            G.lam_cum = 1.0
            G.agent = (self.graph.free[name] | self.graph.dead[name]).astype(np.int64)
            G.colour = self._colours[name]
            G.rate_bal = self.rates[name] * b2.Hz
            imb = relative_imbalance(self.graph, self.graph.unit_costs(self.graph.zeros()))[name]
            G.imb = np.where(self.graph.free[name], np.nan_to_num(imb), 0.0)
            G.n_colours = self.n_colours
            G.balance_every = self.balance_every
            G.dt_bal = self.balance_dt * b2.second
            G.expo = self.code.exponent(pop.degree)
            G.c_out = self.code.out_factor(pop.degree)
            if self.code.generic:
                G.p_cost = self.code.p
            G.run_on_event("balance", lambda_code(self.code, self.cost.include_bias, has_bias),
                           when="synapses", order=3 * r + 1)
        return G

    def _make_synapses(self, b2, k: int, proj, rank: dict[str, int]) -> None:
        net = self.source
        pre, post = net.populations[proj.pre], net.populations[proj.post]
        post_idx, pre_idx = get_kind(proj.kind).groups(proj, pre, post)
        post_idx = np.broadcast_to(post_idx, proj.weight.shape).ravel()
        pre_idx = np.broadcast_to(pre_idx, proj.weight.shape).ravel()
        flat = np.arange(proj.weight.size)
        loop = (pre_idx == post_idx) if proj.pre == proj.post else np.zeros(len(flat), dtype=bool)
        balancing = proj.pre in rank or proj.post in rank
        parts = [(~loop, balancing, "")]
        if loop.any():
            parts.append((loop, False, "_loops"))  # a loop scales by lam/lam = 1 (BiLU): never touched
        for mask, balance, suffix in parts:
            if not mask.any() or not (self.spiking or balance):
                continue
            on_pre, on_post, on_event = {}, {}, {}
            if self.spiking:
                on_pre["pre"] = "v_post += w"
                on_event["pre"] = "spike"
            if balance and proj.pre in rank:
                on_pre["acc_out"] = self.code.accumulate("cout_pre", "w", "p_cost_pre")
                on_pre["scale_out"] = scale_out_code(pre.degree)
                on_event.update(acc_out="balance", scale_out="balance")
            if balance and proj.post in rank:
                on_post["acc_in"] = self.code.accumulate("cin_post", "w", "p_cost_post")
                on_post["scale_in"] = SCALE_IN
                on_event.update(acc_in="balance", scale_in="balance")
            S = b2.Synapses(self.groups[proj.pre], self.groups[proj.post], "w : 1\nk : integer (constant)",
                            on_pre=on_pre or None, on_post=on_post or None, on_event=on_event,
                            namespace=self.namespace, clock=self.clock, name=_identifier("s", k, proj.name) + suffix)
            S.connect(i=pre_idx[mask], j=post_idx[mask])
            S.w = proj.weight.ravel()[mask]
            S.k = flat[mask]
            if self.spiking:
                S.pre.order = _SPIKE_ORDER
            if "acc_out" in on_pre:
                S.acc_out.order, S.scale_out.order = 3 * rank[proj.pre], 3 * rank[proj.pre] + 2
            if "acc_in" in on_post:
                S.acc_in.order, S.scale_in.order = 3 * rank[proj.post], 3 * rank[proj.post] + 2
            self.synapses.append(_SynapseSet(proj.name, S, flat[mask]))

    # ------------------------------------------------------------------ running
    def run(self, duration, progress: Callable | str | None = None) -> None:
        """Simulate ``duration`` (seconds or a Brian2 quantity) with balancing on.

        ``progress`` is passed to Brian2's ``report`` (``"text"``, ``"stdout"`` or a callable
        ``(elapsed, completed, start, duration)``).
        """
        seconds = _seconds(duration, "duration")
        self._run(seconds, progress)
        if self.spiking:
            self._check_ceiling()

    def _run(self, seconds: float, progress=None) -> None:
        import brian2 as b2
        if self._cache is not None:
            raise RuntimeError("cpp_standalone: the binary has been built and run; create a new BalancingNetwork "
                               "for further simulation")
        with self._codegen():
            if not self._started:
                b2.seed(self.seed)
                self._started = True
            self.net.run(seconds * b2.second, report=progress, report_period=0.5 * b2.second, namespace=self.namespace)
        self._runs += 1

    def set_balance_rate(self, rate: float | Mapping[str, float]) -> None:
        """Change the balance rate (Hz) of every agent, or per population; 0 switches balancing off."""
        import brian2 as b2
        rates = self._rates(rate)
        if self.colouring and self.n_colours * max(rates.values(), default=0.0) * self.balance_dt > 1:
            raise ValueError("rate: n_colours * rate * dt * balance_every must be <= 1")
        self.rates = rates
        for name in self.agents:
            self.groups[name].rate_bal = rates[name] * b2.Hz

    def set_input(self, x: np.ndarray, _check: bool = True) -> None:
        """Present input ``x`` of shape ``(n_in,)``, coded as ``x * input_rate`` (spiking mode, x >= 0)."""
        import brian2 as b2
        if not self.spiking:
            raise ModelError("set_input: this BalancingNetwork was built with spiking=False")
        x = np.asarray(x, dtype=np.float64)
        n_in = self.source.input.size
        if x.shape != (n_in,):
            raise ModelError(f"set_input: expected an input of shape ({n_in},), got {x.shape}")
        if np.any(x < 0) or not np.all(np.isfinite(x)):
            raise ModelError("set_input: spiking input activities are rates and must be finite and >= 0")
        G = self.groups[self.source.input.name]
        if self.coding == "poisson":
            G.rates = x * self.input_rate * b2.Hz
        else:
            G.x_in = x
        self._x = x
        if _check:
            self._check_ceiling()

    def _check_ceiling(self) -> None:
        """Warn when a unit's rate (R times its activity under the current weights) exceeds 1/dt."""
        if self._x is None or self.source.recurrent or self.target == "cpp_standalone":
            return
        acts = self.network.forward(self._x[None, :], return_all=True)
        limit = 1.0 / self.dt
        for name, pop in self.source.populations.items():
            if pop.role == "output" and self.readout == "potential":
                continue
            top = float(np.max(acts[name])) * self.input_rate
            if top > limit:
                warnings.warn(f"population {name!r}: a unit's rate would be {top:.4g} Hz > 1/dt = {limit:.4g} Hz; "
                              "integrate-and-fire units saturate at one spike per step (lower input_rate or dt)",
                              RuntimeWarning, stacklevel=3)

    def measure(self, duration, balance: bool = False, progress: Callable | None = None) -> SpikeMeasurement:
        """Run a measurement window and return spike rates and the output readout (runtime targets).

        Parameters
        ----------
        duration : float or quantity
        balance : bool
            Keep balancing during the window (default: off, the agents pause).
        progress : callable, optional
            Brian2 ``report`` callable, as in `run`.
        """
        if not self.spiking:
            raise ModelError("measure: this BalancingNetwork was built with spiking=False")
        if self.target == "cpp_standalone":
            raise ModelError("measure: reading spike counts between runs needs a runtime target (numpy or cython)")
        seconds = _seconds(duration, "duration")
        spiking = {n: G for n, G in self.groups.items() if "nspk" in G.variables}
        before = {n: np.array(G.nspk[:]) for n, G in spiking.items()}
        out = self.groups[self.source.output.name]
        v0 = np.array(out.v[:])
        saved = dict(self.rates)
        if not balance:
            self.set_balance_rate(0.0)
        try:
            self._run(seconds, progress)
        finally:
            if not balance:
                self.set_balance_rate(saved)
        counts = {n: np.array(G.nspk[:]) - before[n] for n, G in spiking.items()}
        rates = {n: c / seconds for n, c in counts.items()}
        scale = self.input_rate * seconds
        pop = self.source.output
        if self.readout == "potential":
            output = pop.activation((np.array(out.v[:]) - v0) / scale)
        else:
            output = counts[pop.name] / scale
        return SpikeMeasurement(seconds, rates, counts, output)

    # ------------------------------------------------------------------ results
    def _results(self) -> dict:
        """Arrays read from Brian2 (cpp_standalone: build, run, read once, then release the device)."""
        if self.target != "cpp_standalone":
            return self._read()
        if self._cache is None:
            import brian2 as b2
            if self._runs == 0:
                raise RuntimeError("cpp_standalone: call run() before reading results")
            make = b2.prefs.devices.cpp_standalone
            old_args = list(make.extra_make_args_unix)
            make.extra_make_args_unix = [f"-j{os.cpu_count() or 2}"]  # Brian2's bare -j forks one compiler per file
            try:
                with self._codegen():
                    b2.device.build(directory=self._directory, compile=True, run=True)
            finally:
                make.extra_make_args_unix = old_args
            self._cache = self._read()
            self.standalone_run_time = float(b2.device._last_run_time)
            b2.device.reinit()
            b2.set_device("runtime")
        return self._cache

    def _read(self) -> dict:
        out = {"w": [(s.projection, np.array(s.synapses.k[:]), np.array(s.synapses.w[:])) for s in self.synapses],
               "b": {n: np.array(G.b[:]) for n, G in self.groups.items() if n in self.agents and "b" in G.variables},
               "lam_cum": {n: np.array(self.groups[n].lam_cum[:]) for n in self.agents},
               "events": {n: (np.array(m.t_[:]), np.array(m.i[:])) for n, m in self.event_monitors.items()},
               "states": {n: (np.array(m.t_[:]), np.array(m.lam_cum[:]), np.array(m.imb[:]))
                          for n, m in self.state_monitors.items()},
               "spikes": {n: (np.array(m.t_[:]), np.array(m.i[:]).astype(np.int64))
                          for n, m in self.spike_monitors.items()}}
        return out

    @property
    def network(self) -> Network:
        """The current weights and biases as a new `Network` (the function of the source network)."""
        res = self._results()
        out = self.source.copy()
        for name, k, w in res["w"]:
            out.projection(name).weight.flat[k] = w
        for name, b in res["b"].items():
            out.populations[name].bias = b
        return out

    @property
    def log_scales(self) -> dict[str, np.ndarray]:
        """Cumulative log-scale ``u = log(prod lam)`` of every agent unit."""
        return {n: np.log(v) for n, v in self._results()["lam_cum"].items()}

    @property
    def events(self) -> BalanceEvents:
        """Every balance event so far (time, population, unit index), from the EventMonitors."""
        rec = self._results()["events"]
        t = np.concatenate([rec[n][0] for n in self.agents]) if self.agents else np.zeros(0)
        idx = np.concatenate([rec[n][1] for n in self.agents]).astype(np.int64) if self.agents else np.zeros(0, int)
        pop = np.concatenate([np.full(len(rec[n][0]), n, dtype=object) for n in self.agents]) if self.agents \
            else np.zeros(0, dtype=object)
        step = np.rint(t / self.dt).astype(np.int64)
        rank = np.concatenate([np.full(len(rec[n][0]), r) for r, n in enumerate(self.agents)]) if self.agents \
            else np.zeros(0, int)
        order = np.lexsort((idx, rank, step))
        return BalanceEvents(t[order], step[order], pop[order], idx[order], tuple(self.agents))

    @property
    def spikes(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Spike times (s) and unit indices per spiking population (``record_spikes=True``), in network order."""
        return self._results()["spikes"]

    @property
    def history(self) -> dict:
        """Monitors sampled every ``monitor_dt``.

        Returns
        -------
        dict
            ``t`` (sample times, s); ``lam`` per population ``(n_samples, size)`` cumulative factors;
            ``imbalance`` per population ``(n_samples,)``: the largest relative imbalance any unit
            measured at its latest event (its own view; the initial state before its first event);
            ``max_imbalance`` ``(n_samples,)`` over all populations.
        """
        states = self._results()["states"]
        if not states:
            return {"t": np.zeros(0), "lam": {}, "imbalance": {}, "max_imbalance": np.zeros(0)}
        t = next(iter(states.values()))[0]
        lam = {n: s[1].T for n, s in states.items()}
        imb = {n: s[2].max(axis=0) for n, s in states.items()}
        return {"t": t, "lam": lam, "imbalance": imb, "max_imbalance": np.max(np.stack(list(imb.values())), axis=0)}

    def __repr__(self) -> str:
        return (f"BalancingNetwork({self.source.name!r}, {self.cost}, target={self.target!r}, "
                f"spiking={self.spiking}, agents={self.agents}, colours={self.n_colours}, dt={self.dt:g} s)")
