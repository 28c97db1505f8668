"""Akida's graded layers in integers, as BrainChip's akida 2.19.3 engine computes them (Akida 1 and Akida 2).

Probed on the engine's software backend with random parameters (Dense1D, Conv2D, FullyConnected,
Convolutional; every value below was matched bit for bit, including saturation):

**Akida 2** (``Dense1D`` and ``Conv2D``: the convolution's sum is the dense one over its window)::

    acc = sat_28(sum x * W)                          # buffer_bits = 28, the whole sum saturates once
    z   = sat_32(acc + sat_32(bias_int8 << bias_shift))   # post_op_buffer_bits = 32
    ReLU:  z = min(max(z, 0), max_value << max_value_shift)       # before the scale
    z   = sat_32(z * output_scale_uint8)
    y   = z << s (s = output_shift >= 0), floor(z / 2**-s + 1/2) (s < 0: round half up)
    y   = saturate to output_bits: 8 -> int8 (a ReLU layer's largest value is 127), 4 -> 0..15

**Akida 1** (``FullyConnected`` and ``Convolutional``)::

    acc = sum x * W                                   # x: 1, 2 or 4-bit unsigned
    y   = clip(ceil((acc - threshold) / step), 0, 2**b - 1),  step = floor(16 act_step) / 16 * 2**(4 - b)

computed as ``ceil(P / S)`` with ``P = (acc - threshold) << b`` (0 when ``acc <= threshold``) and
``S = floor(16 act_step)`` both taken modulo ``2**28``: beyond that they wrap (a potential above
``2**(28 - b)`` comes out small). Without activation (the output layer) the layer gives the raw ``acc``. Activity of ``b`` bits is signed when
``b > 4`` (``InputData``'s ``input_signed``; an 8-bit output is int8), unsigned otherwise. Shifts lie
in ``[-31, 31]`` (``output_shift``) and ``[0, 31]`` (``bias_shift``, ``max_value_shift``): the
engine accepts ``-32`` and ``32`` but aborts the process in ``forward``.

The conversion (`layer_params`) stores what the engine stores: the mapping's bias as an int8
mantissa with a left shift, the requantisation ratio ``s_acc / s_act`` as a uint8 scale of 8
significant bits with an output shift, and on Akida 1 a threshold and ``act_step = k / 16``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError
from ..model.kinds import get_kind
from ..model.network import Population
from .calibration import with_weight
from .fixed_point import IntFormat, round_div, round_int, shift_round
from .pass_common import EXACT, IntegerRun, new_counters, per_feature

if TYPE_CHECKING:  # pragma: no cover
    from .quantized import LayerParams, QuantizedNetwork
    from .spec import ChipSpec

__all__ = ["AkidaParams", "activity_format", "layer_params", "requantize", "layer_outputs", "run_akida",
           "SHIFT_MIN", "SHIFT_MAX", "SCALE_MAX"]

SHIFT_MIN, SHIFT_MAX = -31, 31    # output_shift; bias_shift and max_value_shift lie in [0, SHIFT_MAX]
SCALE_MAX = 255                   # output_scales are uint8
BIAS = IntFormat(8, True, name="Akida bias")
STEP_MAX = 1 << 24                # act_step * 16 stays an exact float32


@dataclass
class AkidaParams:
    """The integers one Akida layer stores, per output unit (channel for a convolution).

    Attributes
    ----------
    version : {1, 2}
    relu : bool
        Akida 2 ``ActivationType.ReLU`` / Akida 1 ``activation=True``.
    out_bits : int or None
        Activity width; None for the output layer (Akida 2: its 32-bit sum, Akida 1: the raw ``acc``).
    bias, bias_shift, scale, shift, max_value, max_value_shift : ndarray or None
        Akida 2 ``bias`` (int8), ``bias_shift``, ``output_scales`` (uint8), ``output_shift`` (> 0: left
        shift) and, with ReLU, ``max_value`` (uint8) and ``max_value_shift``.
    threshold, step : ndarray or None
        Akida 1 ``threshold`` (int32) and ``16 * act_step`` (an integer).
    """

    version: int
    relu: bool
    out_bits: int | None
    bias: np.ndarray | None = None
    bias_shift: np.ndarray | None = None
    scale: np.ndarray | None = None
    shift: np.ndarray | None = None
    max_value: np.ndarray | None = None
    max_value_shift: np.ndarray | None = None
    threshold: np.ndarray | None = None
    step: np.ndarray | None = None


def activity_format(bits: int, name: str) -> IntFormat:
    """Activity (and input) register of ``bits``: signed above 4 bits, unsigned up to 4 (engine rule)."""
    return IntFormat(int(bits), bits > 4, overflow="saturate", name=name)


def _relu(pop: Population, spec: "ChipSpec") -> bool:
    """True for ReLU, False for identity; other activations have no Akida layer."""
    act = pop.activation
    if act.kind == "bilu" and act.b == 1.0 and act.a in (0.0, 1.0):
        if act.a == 1.0 and spec.requant == "akida1" and pop.role == "hidden":
            raise ModelError(f"populations[{pop.name!r}].activation: Akida 1 hidden layers are step-wise ReLU "
                             f"(activation=True), got {act.spec!r}")
        return act.a == 0.0
    if pop.role == "output":
        return False      # the output layer's raw sum is dequantised; its activation is applied in float
    raise ModelError(f"populations[{pop.name!r}].activation: Akida layers apply ReLU or nothing, got {act.spec!r}")


def split_bias(bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Write integers as ``mantissa << shift`` with an int8 mantissa and the smallest shift in 0..31.

    Examples
    --------
    >>> split_bias(np.array([5, 300, -1024]))
    (array([   5,   75, -128]), array([0, 2, 3]))
    """
    bias = np.asarray(bias, dtype=np.int64)
    mant = np.zeros_like(bias)
    shift = np.full(bias.shape, -1, dtype=np.int64)
    for s in range(SHIFT_MAX + 1):
        m = bias >> s
        ok = (shift < 0) & (m << s == bias) & (m >= BIAS.min) & (m <= BIAS.max)
        mant[ok], shift[ok] = m[ok], s
    if np.any(shift < 0):
        bad = bias[shift < 0].flat[0]
        raise ModelError(f"Akida bias {int(bad)} is not an int8 mantissa shifted left by at most {SHIFT_MAX}")
    return mant, shift


def _scale_shift(ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ratio ~ scale * 2**output_shift`` with a uint8 scale of 8 significant bits (shift in [-31, 31])."""
    s = 7 - np.floor(np.log2(ratio)).astype(np.int64)        # right shift: scale in [128, 256)
    s = np.clip(s, -SHIFT_MAX, -SHIFT_MIN)
    scale = np.rint(ratio * 2.0 ** s).astype(np.int64)
    over = scale > SCALE_MAX                                   # rounded up to 256
    s = np.where(over & (s > -SHIFT_MAX), s - 1, s)
    scale = np.clip(np.rint(ratio * 2.0 ** s), 0, SCALE_MAX).astype(np.int64)
    return scale, -s


def _max_value(scale: np.ndarray, shift: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """ReLU clip ``max_value << max_value_shift`` at the first sum that already gives ``cap + 1``.

    A larger sum gives ``cap`` either way; clipping it keeps ``z * scale`` inside 32 bits.
    """
    mv = np.zeros(scale.shape, dtype=np.int64)
    mvs = np.zeros(scale.shape, dtype=np.int64)
    for i, (m, s) in enumerate(zip(scale.tolist(), shift.tolist())):
        if m == 0:
            top = 0
        else:
            num = (cap + 1) << max(-s, 0)
            den = m << max(s, 0)
            top = -(-num // den)
        e = max(0, top.bit_length() - 8)
        v = -(-top >> e)
        if v > SCALE_MAX:
            e, v = e + 1, -(-top >> (e + 1))
        mv[i], mvs[i] = v, min(e, SHIFT_MAX)
    return mv, mvs


def layer_params(spec: "ChipSpec", pop: Population, lay: "LayerParams") -> AkidaParams:
    """The Akida layer that computes ``pop`` from the mapping's scales and integer bias.

    Raises
    ------
    ModelError
        For an activation Akida has no layer for.
    """
    relu = _relu(pop, spec)
    bias = lay.bias if lay.bias is not None else np.zeros(pop.size, dtype=np.int64)
    hidden = pop.role == "hidden"
    if spec.requant == "akida2":
        mant, bshift = split_bias(bias)
        if not hidden:
            ones = np.ones(pop.size, dtype=np.int64)
            return AkidaParams(2, False, None, mant, bshift, ones, np.zeros(pop.size, dtype=np.int64))
        scale, shift = _scale_shift(lay.s_acc / lay.s_act)
        params = AkidaParams(2, relu, lay.act_format.bits, mant, bshift, scale, shift)
        if relu:
            params.max_value, params.max_value_shift = _max_value(scale, shift, lay.act_format.max)
        return params
    if not hidden:
        return AkidaParams(1, False, None)
    bits = lay.act_format.bits
    step_q = lay.s_act / lay.s_acc                              # accumulator LSBs per activity LSB
    k = np.clip(np.rint(step_q * (1 << bits)), 1, STEP_MAX).astype(np.int64)     # step = k / 2**bits
    half = round_div(k, 1 << (bits + 1), "nearest")            # half a step, as cnn2snn rounds it
    # Keep (acc - threshold) << bits inside the 28-bit potential: a threshold below -2**(27 - bits)
    # (a bias that far above the step) would wrap; the unit is at its top activity anyway.
    threshold = np.clip(half - bias, -(1 << (27 - bits)), np.iinfo(np.int32).max)
    return AkidaParams(1, True, bits, threshold=threshold, step=k)


def requantize(spec: "ChipSpec", p: AkidaParams, acc: np.ndarray, pop: Population,
               counters: dict | None = None) -> np.ndarray:
    """A layer's output from its accumulator ``acc`` (batch, features), the engine's order of operations."""
    f = lambda v: per_feature(np.asarray(v, dtype=np.int64), pop)     # noqa: E731
    counters = counters if counters is not None else new_counters()
    name = pop.name
    if p.version == 1:
        if p.out_bits is None:
            return acc
        potential = acc - f(p.threshold)
        num, counters["state_overflow"][name] = spec.current.fit(np.where(potential > 0, potential << p.out_bits, 0))
        den, _ = spec.current.fit(f(p.step))
        if np.any(den == 0):
            raise ModelError(f"{name}: act_step * 16 is a multiple of 2**{spec.current.bits} (0 in the engine)")
        value = round_div(num, den, spec.activation_rounding)   # ceil(P / S)
        top = (1 << p.out_bits) - 1
        counters["activation_saturated"][name] = int(np.count_nonzero(value > top))
        return np.clip(value, 0, top)
    post = spec.current
    bias, n0 = post.fit(f(p.bias) << f(p.bias_shift))
    z, n1 = post.fit(acc + bias)
    n1 += n0
    if p.out_bits is None:
        counters["state_overflow"][name] = n1
        return z
    if p.relu:
        z = np.clip(z, 0, f(p.max_value) << f(p.max_value_shift))
    z, n2 = post.fit(z * f(p.scale))
    counters["state_overflow"][name] = n1 + n2
    out, n = activity_format(p.out_bits, f"activity {name}").fit(
        shift_round(z, f(p.shift), spec.activation_rounding))
    counters["activation_saturated"][name] = n
    return out


def _propagate(proj, pre: Population, post: Population, weight: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Exact integer ``propagate`` (float64 BLAS: Akida's sums stay far below 2**52)."""
    bound = float(np.abs(weight).max(initial=0)) * float(np.abs(a).max(initial=0)) * max(a.shape[1], 1)
    if bound >= EXACT:
        raise OverflowError(f"{proj.name}: integer sums may exceed 2**52")
    value = get_kind(proj.kind).propagate(with_weight(proj, weight.astype(np.float64)), pre, post,
                                          a.astype(np.float64))
    return np.rint(value).astype(np.int64)


def layer_outputs(qnet: "QuantizedNetwork", x_int: np.ndarray,
                  counters: dict | None = None) -> dict[str, np.ndarray]:
    """Every population's integer output for integer inputs ``x_int``, in the engine's arithmetic.

    Hidden populations give their activity, the output population its raw sum (Akida 2: the 32-bit
    sum with the bias, Akida 1: the accumulator).
    """
    net, spec = qnet.network, qnet.spec
    counters = counters if counters is not None else new_counters()
    values = {net.input.name: np.asarray(x_int, dtype=np.int64)}
    for name in net.order:
        pop = net.populations[name]
        if pop.role == "input":
            continue
        total = np.zeros((values[net.input.name].shape[0], pop.n_features), dtype=np.int64)
        for proj in net.incoming(name):
            total += _propagate(proj, net.populations[proj.pre], pop, qnet.synapses[proj.name].effective,
                                values[proj.pre])
        if spec.accumulator is not None:
            total, counters["accumulator_overflow"][name] = spec.accumulator.fit(total)
        values[name] = requantize(spec, qnet.layers[name].akida, total, pop, counters)
    return values


def run_akida(qnet: "QuantizedNetwork", x: np.ndarray) -> IntegerRun:
    """`integer_pass.run_integer` for an Akida profile: encode ``x``, run the layers, dequantise the output."""
    net = qnet.network
    counters = new_counters()
    x_int, counters["input_saturated"][net.input.name] = qnet.input_format.fit(
        round_int(x / qnet.input_scale, "nearest"))
    values = layer_outputs(qnet, x_int, counters)
    out_pop = next(p for p in net.populations.values() if p.role == "output")
    lay = qnet.layers[out_pop.name]
    raw = values.pop(out_pop.name)
    if lay.akida.version == 1 and lay.bias is not None:
        raw = raw + per_feature(lay.bias, out_pop)
    out = out_pop.activation(raw * per_feature(lay.s_acc, out_pop))
    return IntegerRun(out, values, counters)
