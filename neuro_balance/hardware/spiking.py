"""The stepped network simulation: a quantised network run step by step in the chip's integers, on every profile.

`simulate` runs a `QuantizedNetwork` step by step. On spiking chips, inputs become regular spike
trains with their integer counts over the rate-code window, hidden units are the neurons of
`neurons` (`LoihiCUBA`, `IntegrateFire`) with the membrane clipped at the profile's ``v_floor`` and,
where the chip's users filter spikes, an exponential current synapse of ``2**synapse_shift`` steps
(Loihi's ``u``; a current synapse on other chips), and
the output population integrates its input (a non-spiking readout). On graded chips every step
passes integer activity through the whole network (`integer_pass`), drawing the analog noise anew
each step, and the output is the mean over the steps. `QuantizedNetwork.forward` is the steady-state
rate model of the same run: on graded chips without noise the two are equal; on spiking chips they
differ by how far spike trains are from constant inputs (the bound is tested in
``tests/test_hardware_emulate.py`` and stated in the README).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError
from ..seeding import check_random_state
from .fixed_point import IntFormat
from .integer_pass import accumulate, encode_input, new_counters, run_integer
from .neurons import ACT_SHIFT, IntegrateFire, LoihiCUBA
from .quantized import QuantizedNetwork
from . import xylo_mapping

__all__ = ["SpikingRun", "simulate", "neuron_populations"]


@dataclass
class SpikingRun:
    """What `simulate` returns.

    Attributes
    ----------
    output : ndarray (batch, n_out)
        Dequantised output.
    counts : dict of ndarray
        Spike counts (spiking chips) or summed integer activity (graded chips) per population.
    overflow : dict of dict
        Accumulator overflow per population and each neuron population's state overflow counts.
    membranes : dict of ndarray
        Final membrane of every spiking hidden population (empty on graded chips).
    steps : int
    trace : dict of ndarray
        With ``record=True`` on spiking chips, per step (axis 0): ``spikes.<pop>`` and ``v.<pop>``
        (``u.<pop>`` on Loihi) of every hidden population after the step, and ``acc.<out>``, the
        output population's integrated input including its bias so far.
    """

    output: np.ndarray
    counts: dict[str, np.ndarray]
    overflow: dict[str, dict[str, int]]
    membranes: dict[str, np.ndarray]
    steps: int = 1
    trace: dict[str, np.ndarray] = field(default_factory=dict)


def _regular_spikes(counts: np.ndarray, window: int, t: int) -> np.ndarray:
    """Spike at step ``t`` of a train with exactly ``counts`` evenly spread spikes in ``window`` steps."""
    return (counts * (t + 1)) // window - (counts * t) // window


def simulate(qnet: QuantizedNetwork, x: np.ndarray, steps: int | None = None, record: bool = False) -> SpikingRun:
    """Run a quantised network step by step in integer arithmetic.

    Spiking chips: spikes reach the next population in the same step, or ``spike_delay`` steps
    later (one on Loihi, as nengo-loihi's emulator and lava route them, input spikes included).
    Loihi profiles (``neuron.model: cuba_lif``, reset to zero) use `LoihiCUBA` with
    the spec's synaptic filter (``du = (4096 >> synapse_shift) - 1``; ``du = 4095`` makes the current
    the step's input), ``dv = 0``, refractory 1 and ``vmin = v_floor``; other chips, and
    Loihi with ``reset="subtract"``, use `IntegrateFire` with the spec's reset, comparison and
    spikes per step (``max_spikes_per_step``: several on Speck, as sinabs computes them). Xylo
    profiles (``neuron.variant: xylosim``) run `xylo_mapping.simulate`: xylosim's network, its
    readout's synaptic current as the output.
    Graded chips: ``steps`` passes of integer activity (module docstring).

    Parameters
    ----------
    qnet : QuantizedNetwork
        From `quantize`.
    x : ndarray (batch, n_in)
    steps : int, optional
        Time steps (default: the rate-code window on spiking chips, 1 on graded ones).
    record : bool
        Spiking chips: keep every step's spikes and states in `SpikingRun.trace`.

    Returns
    -------
    SpikingRun

    Examples
    --------
    >>> import neuro_balance as nb, numpy as np
    >>> net = nb.mlp([4, 8, 3], seed=0)
    >>> x = np.random.default_rng(0).random((16, 4))
    >>> run = nb.hardware.simulate(nb.hardware.quantize(net, "loihi1", x), x)
    >>> run.output.shape, run.steps
    ((16, 3), 255)
    """
    spec = qnet.spec
    steps = spec.window if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"simulate: steps must be >= 1, got {steps}")
    if not spec.spiking:
        return _simulate_graded(qnet, x, steps)
    if xylo_mapping.is_xylo(qnet):
        return xylo_mapping.simulate(qnet, x, steps, record)
    net = qnet.network
    if net.recurrent and not spec.spike_delay:
        raise ModelError(f"simulate: network {net.name!r} has delay-1 projections; {spec.name} delivers spikes "
                         "in the same step (delays.connection_steps: 0), so it has no recurrent path")
    x = np.asarray(x, dtype=np.float64)
    counts_in, _ = encode_input(qnet, x)
    neurons = neuron_populations(qnet)
    loihi = any(isinstance(nrn, LoihiCUBA) for nrn in neurons.values())
    current: dict[str, np.ndarray] = {}
    batch = x.shape[0]
    counts = {name: np.zeros((batch, net.populations[name].n_features), dtype=np.int64) for name in net.populations}
    out_name = net.output.name
    out_acc = np.zeros((batch, net.output.n_features), dtype=np.int64)
    counters = new_counters()
    rng = check_random_state(qnet.seed)
    lay = qnet.layers[out_name]
    rep = net.output.n_features // net.output.size
    out_bias = np.repeat(lay.bias, rep) if lay.bias is not None else 0
    trace: dict[str, list[np.ndarray]] = {}
    # With a one-step spike delay (Loihi) every population reads the spikes of the step before.
    previous = {name: np.zeros_like(c) for name, c in counts.items()}
    for t in range(steps):
        spikes = {net.input.name: _regular_spikes(counts_in, spec.window, t % spec.window)}
        arriving = previous if spec.spike_delay else spikes
        for name in net.order:
            pop = net.populations[name]
            if pop.role == "input":
                continue
            # One step's synaptic input: the emulator's accumulation with a window of one step.
            a = accumulate(qnet, pop, arriving, counters, rng, 1)
            if name == out_name:
                out_acc += a
                if record:
                    trace.setdefault(f"acc.{name}", []).append(out_acc + out_bias * (t + 1))
                continue
            nrn = neurons[name]
            if spec.synapse_shift and not loihi:
                # Exponential current synapse, tau = 2**k steps, DC gain 2**k: i += a - (i >> k).
                current[name] = current.get(name, 0) - (current.get(name, 0) >> spec.synapse_shift) + a
                a = current[name]
            spikes[name] = nrn.step(a).astype(np.int64)
            if spec.v_floor is not None and not loihi:
                nrn.v = np.maximum(nrn.v, spec.v_floor)
            counts[name] += spikes[name]
            if record:
                trace.setdefault(f"spikes.{name}", []).append(spikes[name])
                trace.setdefault(f"v.{name}", []).append(nrn.v.copy())
                if loihi:
                    trace.setdefault(f"u.{name}", []).append(nrn.u.copy())
        counts[net.input.name] += spikes[net.input.name]
        previous = spikes
    out_acc = out_acc + out_bias * steps
    output = net.output.activation(out_acc * np.repeat(lay.s_acc, rep) * (spec.window / steps))
    stats = {"accumulator": counters["accumulator_overflow"],
             **{name: dict(nrn.overflow) for name, nrn in neurons.items()}}
    return SpikingRun(output, counts, stats, {name: nrn.v.copy() for name, nrn in neurons.items()}, steps,
                      {key: np.stack(values) for key, values in trace.items()})


def neuron_populations(qnet: QuantizedNetwork) -> dict:
    """The neurons `simulate` steps: one per hidden population, with the quantised thresholds and biases.

    Returns
    -------
    dict
        Population name -> `LoihiCUBA` or `IntegrateFire` at rest.
    """
    spec = qnet.spec
    net = qnet.network
    loihi = qnet.profile.get("neuron.model") == "cuba_lif" and spec.reset == "zero"
    neurons = {}
    for name, lay in qnet.layers.items():
        pop = net.populations[name]
        if pop.role != "hidden":
            continue
        rep = pop.n_features // pop.size       # a channel's parameters apply to all its positions
        bias = np.repeat(lay.bias if lay.bias is not None else np.zeros(pop.size, dtype=np.int64), rep)
        theta = np.repeat(lay.theta, rep)
        if loihi:
            # Effective weights already carry the act_shift (and each connection's exponent). The
            # current filters the spikes with gain 2**k; the threshold and bias shift left by k.
            k = spec.synapse_shift
            neurons[name] = LoihiCUBA(pop.n_features, du=(4096 >> k) - 1, vth_mant=(theta >> ACT_SHIFT) << k,
                                      bias_mant=bias << k, act_shift=0,
                                      accumulator=IntFormat(62, True, name="accumulator"), u_format=spec.current,
                                      v_format=spec.membrane, vmin=spec.v_floor,
                                      variant=qnet.profile.get("neuron.variant", "nengo_loihi"))
        else:
            k = spec.synapse_shift
            neurons[name] = IntegrateFire(pop.n_features, theta=theta << k, bias=bias << k, v_format=spec.membrane,
                                          compare=spec.compare, reset=spec.reset, max_spikes=spec.max_spikes_per_step)
    return neurons


def _simulate_graded(qnet: QuantizedNetwork, x: np.ndarray, steps: int) -> SpikingRun:
    """``steps`` integer passes with fresh analog noise each; the output is their mean."""
    total = None
    counts: dict[str, np.ndarray] = {}
    overflow: dict[str, dict[str, int]] = {}
    for t in range(steps):
        run = run_integer(qnet, x, seed=qnet.seed + t)
        total = run.output if total is None else total + run.output
        for name, a in run.activity.items():
            counts[name] = counts.get(name, 0) + a
        for key, per_pop in run.counters.items():
            for name, n in per_pop.items():
                overflow.setdefault(key, {})[name] = overflow.get(key, {}).get(name, 0) + n
    return SpikingRun(total / steps, counts, overflow, {}, steps)
