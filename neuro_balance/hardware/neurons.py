"""Integer spiking neuron models stepped in time: bit-accurate Loihi CUBA LIF and integrate-and-fire.

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
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .fixed_point import IntFormat

__all__ = ["loihi_decay", "LoihiCUBA", "IntegrateFire", "DECAY_BITS", "ACT_SHIFT"]

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
