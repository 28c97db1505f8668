"""Integer spiking neurons stepped in time: bit-accurate Loihi CUBA LIF and IF with reset by subtraction.

Loihi (``reference/hardware.md`` §1; nengo-loihi ``emulator/interface.py``, lava ``proc/lif/models.py``),
one step of a compartment with synaptic input ``a`` (weight mantissas summed over the spikes
received)::

    q  = acc(a << 6)                                   # act_shift; 22-bit accumulator, wraps
    u  = wrap24(decay(u, du + 1) + q)                  # current: ds_offset = 1
    v  = sat(decay(v, dv) + u + bias)                  # voltage saturates at +-(2**23 - 1)
    v  = 0 where refractory                            # held at zero
    s  = v > vth_mant << 6                             # strict threshold
    v  = 0 where s; refractory counter = ref where s, then counter = max(counter - 1, 0)

with ``decay(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12)`` (round toward zero) and
``bias = bias_mant << bias_exp``. Wrapping is two's complement (nengo-loihi ``overflow_signed``;
lava's CPU model keeps ``+2**23`` unwrapped, a one-value difference at the boundary).

Other digital chips: non-leaky integrate-and-fire, ``v = fit(v + a + bias)``, spike when
``v >= theta`` (``> theta`` for ``compare: gt``), reset by subtracting ``theta`` (DESIGN §6) or, for
chips that reset to a value (sPyNNaker), to zero.

`simulate` runs a `QuantizedNetwork` of a spiking chip step by step: inputs become regular spike
trains with their integer counts over the rate-code window, hidden units are the neurons above, and
the output population integrates its input (a non-spiking readout).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError
from .fixed_point import IntFormat
from .emulate import QuantizedNetwork

__all__ = ["loihi_decay", "LoihiCUBA", "IntegrateFire", "SpikingRun", "simulate"]

DECAY_BITS = 12
ACT_SHIFT = 6


def loihi_decay(x: np.ndarray, d: int | np.ndarray, offset: int = 0) -> np.ndarray:
    """``sign(x) * ((|x| * (4096 - offset - d)) >> 12)``: Loihi's decay, rounding toward zero.

    Examples
    --------
    >>> loihi_decay(np.array([1000, -1000, 7]), 2048)
    array([ 500, -500,    3])
    """
    x = np.asarray(x, dtype=np.int64)
    factor = np.int64((1 << DECAY_BITS) - offset) - np.asarray(d, dtype=np.int64)
    return np.sign(x) * ((np.abs(x) * factor) >> DECAY_BITS)


@dataclass
class LoihiCUBA:
    """A population of Loihi CUBA LIF compartments in integer arithmetic (module docstring).

    Parameters
    ----------
    n : int
    du, dv : int
        12-bit decay constants (0..4095); ``du = 4095`` makes ``u`` the current step's input,
        ``dv = 0`` a non-leaky voltage.
    vth_mant : int or ndarray
        Threshold mantissa (17 bits); the threshold is ``vth_mant << 6``.
    bias_mant, bias_exp : int or ndarray
        Bias ``bias_mant << bias_exp`` (13-bit signed mantissa, exponent 0..7).
    refractory : int
        Refractory delay (1..63): after a spike, ``v`` is held at 0 for ``refractory - 1`` steps.
    act_shift : int
        Left shift of the synaptic input (6 on Loihi; 0 when the input already includes it).
    accumulator, u_format, v_format : IntFormat
        Defaults: 22-bit wrapping accumulator, 24-bit wrapping ``u``, ``v`` saturating at
        ``+-(2**23 - 1)``.
    """

    n: int
    du: int = 4095
    dv: int = 0
    vth_mant: int | np.ndarray = 1
    bias_mant: int | np.ndarray = 0
    bias_exp: int | np.ndarray = 0
    refractory: int = 1
    act_shift: int = ACT_SHIFT
    accumulator: IntFormat = field(default_factory=lambda: IntFormat(22, True, overflow="wrap", name="accumulator"))
    u_format: IntFormat = field(default_factory=lambda: IntFormat(24, True, overflow="wrap", name="state u"))
    v_format: IntFormat = field(default_factory=lambda: IntFormat(24, True, overflow="saturate", lo=-(2 ** 23 - 1),
                                                                  hi=2 ** 23 - 1, name="state v"))

    def __post_init__(self) -> None:
        if not (0 <= self.du <= 4095 and 0 <= self.dv <= 4095):
            raise ValueError(f"du, dv must be 12-bit (0..4095), got du={self.du}, dv={self.dv}")
        if not 1 <= self.refractory <= 63:
            raise ValueError(f"refractory must be in 1..63, got {self.refractory}")
        self.u = np.zeros(self.n, dtype=np.int64)
        self.v = np.zeros(self.n, dtype=np.int64)
        self.counter = np.zeros(self.n, dtype=np.int64)
        self.overflow = {"accumulator": 0, "u": 0, "v": 0}

    @property
    def threshold(self) -> np.ndarray:
        """``vth_mant << 6``."""
        return np.broadcast_to(np.asarray(self.vth_mant, dtype=np.int64) << ACT_SHIFT, (self.n,))

    @property
    def bias(self) -> np.ndarray:
        """``bias_mant << bias_exp``."""
        return np.broadcast_to(np.asarray(self.bias_mant, dtype=np.int64) << np.asarray(self.bias_exp, dtype=np.int64),
                               (self.n,))

    def step(self, a: np.ndarray) -> np.ndarray:
        """Advance one step with synaptic input ``a`` (shape ``(n,)`` or ``(batch, n)``); returns spikes."""
        a = np.asarray(a, dtype=np.int64)
        if a.shape != self.u.shape:
            self.u = np.broadcast_to(self.u, a.shape).copy()
            self.v = np.broadcast_to(self.v, a.shape).copy()
            self.counter = np.broadcast_to(self.counter, a.shape).copy()
        q, n = self.accumulator.fit(a << self.act_shift)
        self.overflow["accumulator"] += n
        self.u, n = self.u_format.fit(loihi_decay(self.u, self.du, offset=1) + q)
        self.overflow["u"] += n
        self.v, n = self.v_format.fit(loihi_decay(self.v, self.dv) + self.u + self.bias)
        self.overflow["v"] += n
        self.v = np.where(self.counter > 0, 0, self.v)
        spikes = self.v > self.threshold
        self.v = np.where(spikes, 0, self.v)
        self.counter = np.maximum(np.where(spikes, self.refractory, self.counter) - 1, 0)
        return spikes


@dataclass
class IntegrateFire:
    """Non-leaky integrate-and-fire in integer arithmetic, reset by subtraction (default) or to zero.

    Parameters
    ----------
    n : int
    theta : int or ndarray
        Threshold (> 0).
    bias : int or ndarray
        Added every step.
    v_format : IntFormat, optional
        Membrane register (None: unbounded).
    compare : {"ge", "gt"}
    reset : {"subtract", "zero"}
    """

    n: int
    theta: int | np.ndarray = 1
    bias: int | np.ndarray = 0
    v_format: IntFormat | None = None
    compare: str = "ge"
    reset: str = "subtract"

    def __post_init__(self) -> None:
        self.v = np.zeros(self.n, dtype=np.int64)
        self.overflow = {"v": 0}

    def step(self, a: np.ndarray) -> np.ndarray:
        """Advance one step with input ``a``; returns spikes."""
        a = np.asarray(a, dtype=np.int64)
        if a.shape != self.v.shape:
            self.v = np.broadcast_to(self.v, a.shape).copy()
        v = self.v + a + np.asarray(self.bias, dtype=np.int64)
        if self.v_format is not None:
            v, n = self.v_format.fit(v)
            self.overflow["v"] += n
        theta = np.asarray(self.theta, dtype=np.int64)
        spikes = v > theta if self.compare == "gt" else v >= theta
        self.v = np.where(spikes, v - theta if self.reset == "subtract" else 0, v)
        return spikes


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
    rng = np.random.default_rng(qnet.seed)
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
