"""The stepped network simulation: a quantised network of a spiking chip run step by step in integers.

`simulate` runs a `QuantizedNetwork` of a spiking chip step by step: inputs become regular spike
trains with their integer counts over the rate-code window, hidden units are the neurons of
`neurons` (`LoihiCUBA`, `IntegrateFire`), and the output population integrates its input (a
non-spiking readout).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..seeding import check_random_state
from .fixed_point import IntFormat
from .emulate import QuantizedNetwork
from .neurons import ACT_SHIFT, IntegrateFire, LoihiCUBA

__all__ = ["SpikingRun", "simulate"]


@dataclass
class SpikingRun:
    """What `simulate` returns: dequantised outputs, spike counts, final membranes, overflow counts."""

    output: np.ndarray
    counts: dict[str, np.ndarray]
    overflow: dict[str, dict[str, int]]
    membranes: dict[str, np.ndarray]


def _regular_spikes(counts: np.ndarray, window: int, t: int) -> np.ndarray:
    """Spike at step ``t`` of a train with exactly ``counts`` evenly spread spikes in ``window`` steps."""
    return (counts * (t + 1)) // window - (counts * t) // window


def simulate(qnet: QuantizedNetwork, x: np.ndarray, steps: int | None = None) -> SpikingRun:
    """Run a quantised network of a binary-spike chip step by step in integer arithmetic.

    Loihi profiles (``neuron.model: cuba_lif``) use `LoihiCUBA` with ``du = 4095`` (the current is
    the step's input), ``dv = 0`` and refractory 1, so a hidden unit behaves like the static
    emulation's reset-to-zero rate model; other chips use `IntegrateFire` with their reset.

    Parameters
    ----------
    qnet : QuantizedNetwork
        From `quantize` on a spiking profile.
    x : ndarray (batch, n_in)
    steps : int, optional
        Time steps (default: the rate-code window).

    Returns
    -------
    SpikingRun
    """
    spec = qnet.spec
    if not spec.spiking:
        raise ModelError(f"simulate: profile {spec.name!r} passes graded activity; use QuantizedNetwork.forward")
    net = qnet.network
    steps = spec.window if steps is None else int(steps)
    x = np.asarray(x, dtype=np.float64)
    counts_in, _ = qnet.input_format.fit(np.rint(x / qnet.input_scale).astype(np.int64))
    loihi = qnet.profile.get("neuron.model") == "cuba_lif"
    neurons = {}
    for name, lay in qnet.layers.items():
        pop = net.populations[name]
        if pop.role != "hidden":
            continue
        rep = pop.n_features // pop.size       # a channel's parameters apply to all its positions
        bias = np.repeat(lay.bias if lay.bias is not None else np.zeros(pop.size, dtype=np.int64), rep)
        theta = np.repeat(lay.theta, rep)
        if loihi:
            # Effective weights already carry the act_shift (and each connection's exponent).
            neurons[name] = LoihiCUBA(pop.n_features, vth_mant=theta >> ACT_SHIFT, bias_mant=bias, act_shift=0,
                                      accumulator=IntFormat(62, True, name="accumulator"), u_format=spec.current,
                                      v_format=spec.membrane)
        else:
            neurons[name] = IntegrateFire(pop.n_features, theta=theta, bias=bias, v_format=spec.membrane,
                                          compare=spec.compare, reset=spec.reset)
    batch = x.shape[0]
    counts = {name: np.zeros((batch, net.populations[name].n_features), dtype=np.int64) for name in net.populations}
    out_name = net.output.name
    out_acc = np.zeros((batch, net.output.n_features), dtype=np.int64)
    counters: dict[str, dict[str, int]] = {"accumulator_overflow": {}, "readout_saturated": {}}
    rng = check_random_state(qnet.seed)
    for t in range(steps):
        spikes = {net.input.name: _regular_spikes(counts_in, spec.window, t % spec.window)}
        for name in net.order:
            pop = net.populations[name]
            if pop.role == "input":
                continue
            # One step's synaptic input: the emulator's accumulation with a window of one step.
            a = qnet._accumulate(pop, spikes, counters, rng, window=1)
            if name == out_name:
                out_acc += a
                continue
            spikes[name] = neurons[name].step(a).astype(np.int64)
            counts[name] += spikes[name]
        counts[net.input.name] += spikes[net.input.name]
    lay = qnet.layers[out_name]
    rep = net.output.n_features // net.output.size
    if lay.bias is not None:
        out_acc = out_acc + np.repeat(lay.bias, rep) * steps
    output = net.output.activation(out_acc * np.repeat(lay.s_acc, rep) * (spec.window / steps))
    stats = {"accumulator": counters["accumulator_overflow"],
             **{name: dict(nrn.overflow) for name, nrn in neurons.items()}}
    return SpikingRun(output, counts, stats, {name: nrn.v.copy() for name, nrn in neurons.items()})
