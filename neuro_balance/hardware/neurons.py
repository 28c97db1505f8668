"""Integer spiking neuron models stepped in time: bit-accurate Loihi CUBA LIF and integrate-and-fire.

Loihi, one step of a compartment with synaptic input ``a`` (weight
mantissas summed over the spikes received), as nengo-loihi 1.1.0's emulator computes it
(``emulator/interface.py``, ``CompartmentState.update``)::

    q  = wrap22(a << 6)                                # act_shift; 21-bit + sign input accumulator
    u  = wrap24(decay(u, du + 1) + q)                  # current: ds_offset = 1
    u2 = wrap24(u + bias)                              # the current plus bias wraps too ("u2")
    v  = clip(decay(v, dv) + u2, vmin, vmax)           # voltage saturates (vmin..vmax)
    v  = 0 where refractory                            # held at zero
    s  = v > vth_mant << 6                             # strict threshold
    v  = 0 where s; refractory counter = ref where s, then counter = max(counter - 1, 0)

with ``decay(x, d) = sign(x) * ((|x| * (4096 - d)) >> 12)`` (round toward zero),
``bias = bias_mant << bias_exp`` and two's complement wrapping (``u`` in ``[-2**23, 2**23 - 1]``).
``vmin``, ``vmax`` default to ``+-(2**23 - 1)``; nengo-loihi's discretisation encodes them as
``-(2**e) + 1`` (e 0..23) and ``2**(9 + 2e) - 1`` (e 0..7), and its converted neurons use ``vmin = 0``.
Golden traces recorded from nengo-loihi itself (``scripts/record_nengo_loihi_traces.py``) are replayed
bit for bit by ``tests/test_hardware_loihi_golden.py``.

``variant="lava"`` follows lava's bit-accurate LIF (``proc/lif/models.py``, ``PyLifModelBitAcc``)
where it differs (lava-nc 0.10.0, checked against it): lava computes in int32, so the shifted input
``a << 6`` and the sums into ``u`` and ``v`` wrap at 32 bits, not 22; ``u`` wraps by one period of
``2**24`` only (``u > 2**23`` loses ``2**24``, ``u <= -2**23`` gains it: ``-2**23`` becomes ``+2**23``,
and a sum beyond ``3 * 2**23`` stays outside 24 bits); ``u + bias`` enters ``v`` unwrapped. (lava's model has no refractory period:
use ``refractory=1``.)

Other digital chips: non-leaky integrate-and-fire, ``v = fit(v + a + bias)``, spike when
``v >= theta`` (``> theta`` for ``compare: gt``; as many spikes as ``v`` holds thresholds where the
chip's tool emits several per step, sinabs's ``MultiSpike``), reset by subtracting ``theta`` (rate proportional to ReLU of the input) or, for
chips that reset to a value (sPyNNaker), to zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .fixed_point import IntFormat

__all__ = ["loihi_decay", "lava_wrap", "wrap32", "LoihiCUBA", "IntegrateFire", "DECAY_BITS", "ACT_SHIFT", "LOIHI_VARIANTS"]

DECAY_BITS = 12
ACT_SHIFT = 6
STATE_BITS = 24
LOIHI_VARIANTS = ("nengo_loihi", "lava")


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


def wrap32(x: np.ndarray) -> np.ndarray:
    """Two's complement int32 arithmetic: ``x`` modulo ``2**32`` in ``[-2**31, 2**31 - 1]``."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & ((1 << 32) - 1)) - (1 << 31)


def lava_wrap(x: np.ndarray, bits: int = STATE_BITS) -> np.ndarray:
    """Wrap ``u`` as lava's bit-accurate LIF does: in int32, by one period ``2**bits`` toward zero.

    ``x > 2**(bits-1)`` loses ``2**bits``, ``x <= -2**(bits-1)`` gains it (lava-nc 0.10.0
    ``AbstractPyLifModelFixed.subthr_dynamics``); within ``3 * 2**(bits-1)`` this is the wrap into
    ``[-2**(bits-1) + 1, 2**(bits-1)]``.

    Examples
    --------
    >>> lava_wrap(np.array([2**23, -2**23, 2**23 + 5, 3 * 2**23 + 1]))
    array([ 8388608,  8388608, -8388603,  8388609])
    """
    x = wrap32(x)
    half = np.int64(1) << (bits - 1)
    return wrap32(np.where(x > half, x - 2 * half, np.where(x <= -half, x + 2 * half, x)))


def _per_compartment(name: str, value, lo: int, hi: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.int64)
    if arr.size == 0 or np.any(arr < lo) or np.any(arr > hi):
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value!r}")
    return arr


@dataclass
class LoihiCUBA:
    """A population of Loihi CUBA LIF compartments in integer arithmetic (module docstring).

    Every parameter is a scalar or one value per compartment (shape ``(n,)``).

    Parameters
    ----------
    n : int
    du, dv : int or ndarray
        12-bit decay constants (0..4095); ``du = 4095`` makes ``u`` the current step's input,
        ``dv = 0`` a non-leaky voltage.
    vth_mant : int or ndarray
        Threshold mantissa (17 bits); the threshold is ``vth_mant << 6``.
    bias_mant, bias_exp : int or ndarray
        Bias ``bias_mant << bias_exp`` (13-bit signed mantissa, exponent 0..7).
    refractory : int or ndarray
        Refractory delay (1..63): after a spike, ``v`` is held at 0 for ``refractory - 1`` steps.
    act_shift : int
        Left shift of the synaptic input (6 on Loihi; 0 when the input already includes it).
    accumulator, u_format, v_format : IntFormat
        Defaults: 22-bit wrapping accumulator, 24-bit wrapping ``u``, ``v`` saturating at
        ``+-(2**23 - 1)``. ``u_format`` also wraps ``u + bias`` (nengo-loihi variant).
    vmin, vmax : int or ndarray, optional
        Voltage limits inside ``v_format``'s range (default: that range); nengo-loihi's converted
        neurons use ``vmin = 0``.
    variant : {"nengo_loihi", "lava"}
        Whose emulator to follow where they differ (module docstring).
    """

    n: int
    du: int | np.ndarray = 4095
    dv: int | np.ndarray = 0
    vth_mant: int | np.ndarray = 1
    bias_mant: int | np.ndarray = 0
    bias_exp: int | np.ndarray = 0
    refractory: int | np.ndarray = 1
    act_shift: int = ACT_SHIFT
    accumulator: IntFormat = field(default_factory=lambda: IntFormat(22, True, overflow="wrap", name="accumulator"))
    u_format: IntFormat = field(default_factory=lambda: IntFormat(24, True, overflow="wrap", name="state u"))
    v_format: IntFormat = field(default_factory=lambda: IntFormat(24, True, overflow="saturate", lo=-(2 ** 23 - 1),
                                                                  hi=2 ** 23 - 1, name="state v"))
    vmin: int | np.ndarray | None = None
    vmax: int | np.ndarray | None = None
    variant: str = "nengo_loihi"

    def __post_init__(self) -> None:
        self._du = _per_compartment("du", self.du, 0, 4095)
        self._dv = _per_compartment("dv", self.dv, 0, 4095)
        self._ref = _per_compartment("refractory", self.refractory, 1, 63)
        lo, hi = self.v_format.min, self.v_format.max
        self._vmin = _per_compartment("vmin", lo if self.vmin is None else self.vmin, lo, hi)
        self._vmax = _per_compartment("vmax", hi if self.vmax is None else self.vmax, lo, hi)
        if self.variant not in LOIHI_VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(LOIHI_VARIANTS)}, got {self.variant!r}")
        self.u = np.zeros(self.n, dtype=np.int64)
        self.v = np.zeros(self.n, dtype=np.int64)
        self.counter = np.zeros(self.n, dtype=np.int64)
        self.overflow = {"accumulator": 0, "u": 0, "u_bias": 0, "v": 0}

    @property
    def threshold(self) -> np.ndarray:
        """``vth_mant << 6``."""
        return np.broadcast_to(np.asarray(self.vth_mant, dtype=np.int64) << ACT_SHIFT, (self.n,))

    @property
    def bias(self) -> np.ndarray:
        """``bias_mant << bias_exp``."""
        return np.broadcast_to(np.asarray(self.bias_mant, dtype=np.int64) << np.asarray(self.bias_exp, dtype=np.int64),
                               (self.n,))

    def _wrap_u(self, x: np.ndarray, key: str) -> np.ndarray:
        """Wrap a current-register value and count the wraps under ``key``."""
        if self.variant == "lava":
            out = lava_wrap(x, self.u_format.bits)
            self.overflow[key] += int(np.count_nonzero(out != x))
            return out
        out, n = self.u_format.fit(x)
        self.overflow[key] += n
        return out

    def step(self, a: np.ndarray) -> np.ndarray:
        """Advance one step with synaptic input ``a`` (shape ``(n,)`` or ``(batch, n)``); returns spikes."""
        a = np.asarray(a, dtype=np.int64)
        if a.shape != self.u.shape:
            self.u = np.broadcast_to(self.u, a.shape).copy()
            self.v = np.broadcast_to(self.v, a.shape).copy()
            self.counter = np.broadcast_to(self.counter, a.shape).copy()
        q = a << self.act_shift
        if self.variant == "nengo_loihi":
            q, n = self.accumulator.fit(q)
            self.overflow["accumulator"] += n
        else:
            q = wrap32(q)
        self.u = self._wrap_u(loihi_decay(self.u, self._du, offset=1) + q, "u")
        u2 = self.u + self.bias
        if self.variant == "nengo_loihi":
            u2 = self._wrap_u(u2, "u_bias")
        v = loihi_decay(self.v, self._dv) + u2
        if self.variant == "lava":
            v = wrap32(v)
        self.overflow["v"] += int(np.count_nonzero((v < self._vmin) | (v > self._vmax)))
        self.v = np.clip(v, self._vmin, self._vmax)
        self.v = np.where(self.counter > 0, 0, self.v)
        spikes = self.v > self.threshold
        self.v = np.where(spikes, 0, self.v)
        self.counter = np.maximum(np.where(spikes, self._ref, self.counter) - 1, 0)
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
    max_spikes : int or None
        Most spikes in one step. 1: binary spikes (`step` returns booleans). None: as many as the
        membrane holds, ``n = floor(v / theta)`` for ``v >= theta`` (``floor((v - 1) / theta)`` for
        ``v > theta``), as sinabs 3.1.3's ``MultiSpike`` (``(v > 0) * trunc(v / theta)``); an
        integer caps ``n`` there. Subtraction removes ``n * theta``; `step` returns the counts.
    """

    n: int
    theta: int | np.ndarray = 1
    bias: int | np.ndarray = 0
    v_format: IntFormat | None = None
    compare: str = "ge"
    reset: str = "subtract"
    max_spikes: int | None = 1

    def __post_init__(self) -> None:
        if self.max_spikes is not None and (isinstance(self.max_spikes, bool) or self.max_spikes < 1):
            raise ValueError(f"max_spikes must be None or an integer >= 1, got {self.max_spikes!r}")
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
        if self.max_spikes == 1:
            self.v = np.where(spikes, v - theta if self.reset == "subtract" else 0, v)
            return spikes
        count = np.where(spikes, (v - (self.compare == "gt")) // theta, 0)
        if self.max_spikes is not None:
            count = np.minimum(count, self.max_spikes)
        self.v = v - count * theta if self.reset == "subtract" else np.where(spikes, 0, v)
        return count
