"""Running neurons as balancing agents in Brian2: `BalancingNetwork` (build, run, measure, read).

Every balanced population is a `NeuronGroup` whose units are autonomous agents: each has its own
Poisson clock, and when neighbours (units sharing a parameter) request in the same tick they find
out through their shared synapses and the higher random priority wins, the other retries (the
``local`` schedule; ``colour`` keeps the older central timetable, a greedy colouring and a shared
clock phase, for comparison). Winners never share a parameter, so a run is exactly the sequential
algorithm and `neuro_balance.sim.replay` reproduces it from the recorded events. The equations are
in `neuro_balance.sim.equations`, the objects are made by `neuro_balance.sim.build`, and every
Brian2 call goes through `neuro_balance.sim.device.Target`, which restores Brian2's global device
and preferences afterwards. The same model runs on the numpy, cython and cpp_standalone targets.

Idle agents cost (almost) nothing: on the runtime targets (numpy, cython) the agents' stages run
only on ticks where some unit's own clock has run out (one Python call per tick and slot otherwise,
a few percent of a spiking network's step); cpp_standalone evaluates their conditions on every tick
of their own clock (every ``balance_every`` steps, `neuro_balance.sim.device.run_on_clock`).

In spiking mode the units are, by default, non-leaky integrate-and-fire neurons with reset by
subtraction, whose rate is ``R * relu(input)``: balancing a unit by ``lam`` multiplies its rate (and,
after the tick's reset, its membrane potential) by ``lam`` and leaves the output unchanged, while it
keeps spiking. ``neuron=LIF(...)`` runs leaky units with refractoriness and exponential current
synapses instead (the exchange then moves their rates by what `neuro_balance.sim.lif` measures), and a
NIR graph's populations run their own neuron models (IF, LIF, CubaLIF, LI, CubaLI, I), step for step
as `neuro_balance.model.dynamics.run_steps` does, its spiking units balancing by their gauge so that no
spike changes (`neuro_balance.sim.neurons`).
"""
from __future__ import annotations

import warnings
from typing import Callable, Mapping

import numpy as np

from ..balancing.costs import Cost
from ..errors import ModelError
from ..model.network import Network
from ..seeding import check_random_state
from .build import build_objects, first_requests
from .device import Target, compile_progress
from .neurons import LIF, NIRSteps
from .replay import BalanceEvents
from .results import (Results, SpikeMeasurement, read_results, to_events, to_history, to_network,
                      to_weight_history)
from .spec import AgentSpec, Drift
from .units import seconds

__all__ = ["BalancingNetwork"]


class BalancingNetwork:
    """A network whose balanced units are autonomous Brian2 agents (optionally spiking, optionally drifting).

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
        Run spiking units while the agents balance (see the module docstring and ``neuron``).
    target : {"numpy", "cython", "cpp_standalone"}
        Brian2 code generation target. cpp_standalone builds and runs the binary on the first read
        of a result; all `run` calls must come before.
    dt : float or quantity, optional
        Time step (default 0.1 ms).
    seed : int
        Seed of the first request times and of the network's own stream of Brian2 random numbers
        (priorities, next request times, Poisson inputs, drift); numpy's global generator is left
        as it was.
    schedule : {"local", "colour"}
        ``local``: own Poisson clocks, conflicts resolved through shared synapses. ``colour``: a
        greedy colouring of the whole graph and a shared clock phase decide who may balance when.
    input_rate : float
        ``R`` in Hz: an activity of 1 is a rate of ``R`` (spiking only).
    coding : {"current", "poisson", "spikes"}
        Input coding: integrate-and-fire input units driven by ``x * R`` (NIR graphs: the input ``x``
        itself every step), Poisson spike trains at ``x * R``, or given spike trains (`set_input_spikes`).
    readout : {"potential", "rate"}
        Output units integrate without spiking (read ``dv / (R T)``), or spike like hidden units.
    monitor_dt : float, optional
        Sampling period of the lambda and imbalance monitors (default 1 ms; None: no monitors).
    directory : str, optional
        Build directory for cpp_standalone (default: a cached directory for networks of this shape,
        so a second network of the shape compiles only what changed; see
        `neuro_balance.sim.device.claim_build_directory`).
    balancing : bool
        False builds the same spiking network without any agent (the baseline of the agents'
        overhead); requires ``spiking=True``.
    balance_every : int
        Agents act only on every this many time steps (requests, decisions and scaling; spikes
        every step). The runtime targets skip the other ticks; on cpp_standalone the agents'
        objects run on their own clock of this many steps.
    record_spikes : bool
        Spiking: record every spike and the output potential (needed by `measure` and `spikes`).
    drift : Drift, optional
        Multiplicative Ornstein-Uhlenbeck drift of every synapse while the agents balance.
    weight_dt : float, optional
        Sample every weight this often (s; see `weight_history`). None: no weight monitor.
    progress : callable, optional
        ``progress(message, done, total)`` while code compiles on first use.
    neuron : LIF or NIRSteps, optional
        Toolkit networks: ``LIF(tau_m, t_ref, tau_syn, reset)`` for leaky hidden units (None:
        non-leaky IF). NIR graphs: how their neuron models step (`NIRSteps`; None: the defaults).
    invariance : {"exact", "rate"}
        For NIR graphs, as in `neuro_balance.balance`: ``exact`` balances hidden spiking units by their
        gauge (the agents then reach ``nb.balance(net, cost)``). ``rate`` is refused for graphs with hidden
        spiking units: its exchange is that of their rate model, which `rate_view` gives as a network.

    Examples
    --------
    >>> import neuro_balance as nb
    >>> from neuro_balance.sim import BalancingNetwork
    >>> with BalancingNetwork(nb.mlp([6, 5, 4, 2], seed=0), nb.Lp(2), rate=500.0) as bn:
    ...     bn.run(0.05)
    ...     bool(nb.imbalance(bn.network, nb.Lp(2)).max_relative < 1e-3)
    True
    """

    def __init__(self, net: Network, cost: Cost, rate: float | Mapping[str, float] = 100.0, spiking: bool = False,
                 target: str = "numpy", dt=None, seed: int = 0, schedule: str = "local", *,
                 input_rate: float = 200.0, coding: str = "current", readout: str = "potential",
                 monitor_dt: float | None = 1e-3, directory: str | None = None, balancing: bool = True,
                 balance_every: int = 1, record_spikes: bool = True, drift: Drift | None = None,
                 weight_dt: float | None = None, progress: Callable[[str, int, int], None] | None = None,
                 neuron: LIF | NIRSteps | None = None, invariance: str = "exact") -> None:
        self.spec = AgentSpec.create(net, cost, rate, spiking, dt, schedule, balance_every, input_rate, coding,
                                     readout, monitor_dt, record_spikes, balancing, drift, weight_dt, neuron,
                                     invariance)
        self.target = Target(target, directory, progress, seed, key=self.spec.shape_key())
        self.seed = int(seed)
        self.rates = dict(self.spec.rates)
        self.time = 0.0  # seconds simulated so far
        self._rng = check_random_state(np.random.SeedSequence([self.seed, 1]))
        self._x: np.ndarray | None = None
        self._started = False
        self._results: Results | None = None
        with self.target.active():
            self.objects = build_objects(self.spec, self.seed, gated=not self.target.standalone)
            if self.spec.spiking and self.spec.coding != "spikes":
                self._set_input(np.zeros(net.input.size))

    # ------------------------------------------------------------------ the spec, read-only
    source = property(lambda self: self.spec.net, doc="The network the agents started from.")
    cost = property(lambda self: self.spec.cost)
    agents = property(lambda self: self.spec.agents, doc="Names of the agent populations, in network order.")
    spiking = property(lambda self: self.spec.spiking)
    dt = property(lambda self: self.spec.dt, doc="Time step (s).")
    input_rate = property(lambda self: self.spec.input_rate)
    schedule = property(lambda self: self.spec.schedule)
    n_colours = property(lambda self: self.spec.n_colours, doc="Colours of the colour schedule (1 for local).")
    groups = property(lambda self: self.objects.groups, doc="The Brian2 NeuronGroup of every population.")

    # ------------------------------------------------------------------ life cycle
    def __enter__(self) -> "BalancingNetwork":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the Brian2 objects and a temporary standalone build directory (results read so far stay)."""
        self.objects = None
        self.target.close()

    # ------------------------------------------------------------------ running
    def run(self, duration, progress: Callable | str | None = None) -> None:
        """Simulate ``duration`` (seconds or a Brian2 quantity) with balancing on.

        ``progress`` is passed to Brian2's ``report`` (``"text"``, ``"stdout"`` or a callable
        ``(elapsed, completed, start, duration)``).
        """
        self._run(seconds(duration, "duration"), progress)
        if self.spiking:
            self._check_ceiling()

    def _run(self, duration: float, progress=None) -> None:
        import brian2 as b2
        if self.target.built:
            raise RuntimeError("cpp_standalone: the binary has been built and run; create a new BalancingNetwork "
                               "for further simulation")
        with self.target.active(), compile_progress(self.target.progress, len(self.objects.network.objects)):
            self._started = True
            self.objects.network.run(duration * b2.second, report=progress, report_period=0.5 * b2.second,
                                     namespace=self.objects.namespace)
        self.time += duration
        self._results = None

    def set_balance_rate(self, rate: float | Mapping[str, float]) -> None:
        """Change the balance rate (Hz) of every agent, or per population; 0 switches balancing off.

        Local schedule: every unit draws a new next request time at the new rate (the clock is
        memoryless, so this is the same Poisson process) and drops a pending request.
        """
        import brian2 as b2
        rates = self.spec.checked_rates(rate)
        self.rates = rates
        sizes = {n: self.source.populations[n].size for n in self.agents}
        nexts = first_requests(rates, sizes, self.time, self._rng)
        with self.target.active():
            for name in self.agents:
                G = self.groups[name]
                G.rate_bal = rates[name] * b2.Hz
                if self.schedule == "local":
                    G.t_next = nexts[name] * b2.second
                    G.req = 0

    def set_input(self, x: np.ndarray) -> None:
        """Present input ``x`` of shape ``(n_in,)``, coded as ``x * input_rate`` (spiking mode, x >= 0).

        NIR graphs with ``coding="current"``: ``x`` is the input population's output at every step (any sign).
        """
        if not self.spiking:
            raise ModelError("set_input: this BalancingNetwork was built with spiking=False")
        if self.spec.coding == "spikes":
            raise ModelError("set_input: this BalancingNetwork was built with coding='spikes'; use set_input_spikes")
        x = np.asarray(x, dtype=np.float64)
        n_in = self.source.input.size
        if x.shape != (n_in,):
            raise ModelError(f"set_input: expected an input of shape ({n_in},), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ModelError("set_input: input activities must be finite")
        if np.any(x < 0) and not (self.spec.nir_mode and self.spec.coding == "current"):
            raise ModelError("set_input: spiking input activities are rates and must be >= 0")
        with self.target.active():
            self._set_input(x)
        self._check_ceiling()

    def set_input_spikes(self, indices, times) -> None:
        """Give the input units spike trains (``coding="spikes"``): unit ``indices[k]`` fires at ``times[k]``.

        Times are absolute (seconds or a quantity), at or after the time simulated so far; they replace
        the spikes given before. Spikes on one step of the grid ``dt`` reach the next population on that
        step (NIR graphs) or the next (toolkit networks).
        """
        import brian2 as b2
        if not self.spiking or self.spec.coding != "spikes":
            raise ModelError("set_input_spikes: needs spiking=True and coding='spikes'")
        indices = np.asarray(indices)
        times = np.asarray(times / b2.second if hasattr(times, "dim") else times, dtype=np.float64)
        n_in = self.source.input.size
        if indices.shape != times.shape or indices.ndim != 1:
            raise ModelError(f"set_input_spikes: indices {indices.shape} and times {times.shape} must be two "
                             "vectors of one length")
        if indices.size and (not np.issubdtype(indices.dtype, np.integer) or indices.min() < 0
                             or indices.max() >= n_in):
            raise ModelError(f"set_input_spikes: indices must be integers in [0, {n_in}), got {indices[:5]}...")
        if not np.all(np.isfinite(times)) or (times.size and times.min() < self.time - self.dt / 2):
            raise ModelError(f"set_input_spikes: times must be finite and >= {self.time:g} s (simulated so far)")
        with self.target.active():
            self.groups[self.source.input.name].set_spikes(indices, times * b2.second)

    def _set_input(self, x: np.ndarray) -> None:
        import brian2 as b2
        G = self.groups[self.source.input.name]
        if self.spec.coding == "poisson":
            G.rates = x * self.input_rate * b2.Hz
        else:
            G.x_in = x
        self._x = x

    def _check_ceiling(self) -> None:
        """Warn when a unit's rate (R times its activity under the current weights) exceeds 1/dt."""
        if (self._x is None or self.source.recurrent or self.spec.nir_mode or self.spec.coding == "spikes"
                or (self.target.standalone and self.time > 0)):
            return
        net = self.source if self.target.standalone else self.network
        acts = net.forward(self._x[None, :], return_all=True)
        limit = 1.0 / self.dt
        for name, pop in self.source.populations.items():
            if pop.role == "output" and self.spec.readout == "potential":
                continue
            top = float(np.max(acts[name])) * self.input_rate
            if top > limit:
                warnings.warn(f"population {name!r}: a unit's rate would be {top:.4g} Hz > 1/dt = {limit:.4g} Hz; "
                              "integrate-and-fire units saturate at one spike per step (lower input_rate or dt)",
                              RuntimeWarning, stacklevel=3)

    def measure(self, duration, balance: bool = False, progress: Callable | None = None) -> SpikeMeasurement:
        """Run a measurement window; its spike rates and output readout (every target).

        Parameters
        ----------
        duration : float or quantity
        balance : bool
            Keep balancing during the window (default: off, the agents pause).
        progress : callable, optional
            Brian2 ``report`` callable, as in `run`.

        Returns
        -------
        SpikeMeasurement
            Read from the spike and potential monitors when first accessed (cpp_standalone: after
            the binary ran, which the first access triggers).
        """
        if not self.spiking or not self.spec.record_spikes:
            raise ModelError("measure: needs spiking=True and record_spikes=True")
        length = seconds(duration, "duration")
        start = self.time
        saved = dict(self.rates)
        if not balance:
            self.set_balance_rate(0.0)
        self._run(length, progress)
        if not balance:
            self.set_balance_rate(saved)
        return SpikeMeasurement(self, start, self.time)

    # ------------------------------------------------------------------ results
    def results(self) -> Results:
        """Every recorded array (cpp_standalone: builds and runs the binary on first call)."""
        if self._results is None:
            if self.target.standalone and not self.target.built and not self._started:
                raise RuntimeError("cpp_standalone: call run() before reading results")
            with self.target.active():
                if self.target.standalone:
                    self.target.build()
                self._results = read_results(self.objects, self.agents)
        return self._results

    @property
    def standalone_run_time(self) -> float | None:
        """Seconds the cpp_standalone binary took to run (wall time incl. loading and writing results)."""
        return self.target.run_time

    @property
    def network(self) -> Network:
        """The current weights and biases as a new `Network` (the function of the source network)."""
        potentials = tuple(n for n in self.agents if self.spec.potentials_scale(n))
        return to_network(self.source, self.results(), potentials)

    @property
    def log_scales(self) -> dict[str, np.ndarray]:
        """Cumulative log-scale ``u = log(prod lam)`` of every agent unit."""
        return {n: np.log(v) for n, v in self.results().lam_cum.items()}

    @property
    def events(self) -> BalanceEvents:
        """Every balance event so far (time, population, unit index), from the EventMonitors."""
        return to_events(self.results(), self.agents, self.dt)

    @property
    def spikes(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Spike times (s) and unit indices per spiking population, in network order."""
        return self.results().spikes

    @property
    def weight_history(self) -> dict:
        """``t`` (s) and per projection its weights at every ``weight_dt`` sample, ``(n_samples, *shape)``."""
        return to_weight_history(self.source, self.results())

    @property
    def history(self) -> dict:
        """Monitors sampled every ``monitor_dt``.

        Returns
        -------
        dict
            ``t`` (sample times, s); ``lam`` per population ``(n_samples, size)`` cumulative factors;
            ``imbalance`` per population ``(n_samples,)``: the largest relative imbalance any unit
            measured at its latest event (its own view; the initial state before its first event);
            ``max_imbalance`` ``(n_samples,)`` over all populations; spiking: ``v`` per population
            ``(n_samples, size)`` membrane potentials. Samples are taken at the end of each period.
        """
        return to_history(self.results())

    def __repr__(self) -> str:
        return (f"BalancingNetwork({self.source.name!r}, {self.cost}, target={self.target.name!r}, "
                f"schedule={self.schedule!r}, spiking={self.spiking}, agents={self.agents}, dt={self.dt:g} s)")
