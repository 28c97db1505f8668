"""The static integer pass with its integers carried in float64: the same integers, fewer passes over the data.

Below 2**52 every integer is exact in float64, BLAS sums of integer products are exact, and
``floor(p / q)`` of such integers is exact in float division (an error would need ``p / q`` within
``p * 2**-53`` of an integer, but it is at least ``1 / q`` away). When `float_exact` shows that no
value of the pass can exceed 2**51 and no register can overflow, `run_float` computes
`integer_pass.run_integer`'s result in place on float64 arrays; tests compare the two on every chip.
Analog synapses take the same route: the mismatched sum is the same float64 product rounded to an
integer, and the readout draws the same noise, in the same order, from the same generator.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..seeding import check_random_state
from ..model.kinds import get_kind
from ..model.network import Population, Projection
from .calibration import with_weight
from .fixed_point import IntFormat
from .pass_common import IntegerRun, fits, per_feature, prepare, worst_state

if TYPE_CHECKING:  # pragma: no cover
    from .quantized import LayerParams, QuantizedNetwork

__all__ = ["float_exact", "run_float"]

_FLOAT_ROUNDING = ("nearest", "nearest_even", "floor", "truncate", "toward_zero")


def float_exact(qnet: "QuantizedNetwork") -> bool:
    """Every integer of the pass stays below 2**51 in magnitude and no register check can trigger."""
    spec = qnet.spec
    if spec.readout is not None and (spec.readout.overflow != "saturate" or
                                     spec.readout_rounding not in _FLOAT_ROUNDING):
        return False
    net = qnet.network
    for name in net.order:
        pop = net.populations[name]
        if pop.role == "input":
            continue
        prep = prepare(qnet, pop)
        worst = worst_state(qnet, pop)
        if not prep.exact:
            return False
        acc_ok = spec.split_sign or fits(spec.accumulator, prep.worst_input)   # split: checked on the data
        if not (acc_ok and fits(spec.current, worst)):
            return False
        if worst * spec.window >= 2.0 ** 51:
            return False
        if pop.role == "hidden" and spec.spiking and float(np.max(qnet.layers[name].theta)) * spec.window >= 2.0 ** 51:
            return False
        if pop.role == "hidden" and not spec.spiking:
            act, lay = pop.activation, qnet.layers[name]
            if not (act.kind == "bilu" and act.a in (0.0, 1.0) and act.b == 1.0) or \
                    spec.activation_rounding not in _FLOAT_ROUNDING or \
                    worst * float(np.max(lay.multiplier)) >= 2.0 ** 51:
                return False
    return True


def _fit_float(v: np.ndarray, fmt: IntFormat) -> int:
    """Saturate integer-valued ``v`` into ``fmt`` in place; returns how many values were outside."""
    if not v.size or (v.max() <= fmt.max and v.min() >= fmt.min):
        return 0
    n = int(np.count_nonzero(v > fmt.max)) + int(np.count_nonzero(v < fmt.min))
    np.clip(v, fmt.min, fmt.max, out=v)
    return n


def run_float(qnet: "QuantizedNetwork", x: np.ndarray, counters: dict, seed: int | None = None) -> IntegerRun | None:
    """`integer_pass.run_integer` with its integers carried in float64 (exact under `float_exact`); None if a split
    excitatory or inhibitory buffer would saturate on this data (the int64 pass then counts it)."""
    spec = qnet.spec
    net = qnet.network
    a = x / qnet.input_scale                       # round half away from zero, as round_int "nearest"
    if a.size and a.min() < 0:
        _round_float(a, "nearest")
    else:
        a += 0.5
        np.floor(a, out=a)
    counters["input_saturated"][net.input.name] = _fit_float(a, qnet.input_format)
    acts = {net.input.name: a}
    out = None
    window = float(spec.window)
    rng = check_random_state(qnet.seed if seed is None else seed) if spec.readout is not None else None
    for name in net.order:
        pop = net.populations[name]
        if pop.role == "input":
            continue
        lay = qnet.layers[name]
        prep = prepare(qnet, pop)
        acc = None
        saturated = 0
        for proj in net.incoming(name):
            pre, kind = net.populations[proj.pre], get_kind(proj.kind)
            w = prep.weights[proj.name]
            if qnet.synapses[proj.name].mismatch is not None:
                part = kind.propagate(with_weight(proj, w), pre, pop, acts[proj.pre])
                np.rint(part, out=part)
            elif spec.readout is not None:
                part, n = _readout_float(qnet, proj, pre, pop, w, acts[proj.pre], rng)
                saturated += n
            elif spec.split_sign:
                # Excitatory and inhibitory buffers: if neither's mean per-step value exceeds the
                # buffer on this data, nothing saturated and their difference is the signed sum.
                exc = kind.propagate(with_weight(proj, np.maximum(w, 0.0)), pre, pop, acts[proj.pre])
                inh = kind.propagate(with_weight(proj, np.maximum(-w, 0.0)), pre, pop, acts[proj.pre])
                if max(exc.max(initial=0), inh.max(initial=0)) >= (spec.accumulator.max + 1) * window:
                    return None
                part = exc - inh
            else:
                part = kind.propagate(with_weight(proj, w), pre, pop, acts[proj.pre])
            acc = part if acc is None else acc + part
        if lay.bias is not None:
            acc += per_feature(lay.bias, pop) * window
        counters["accumulator_overflow"][name] = 0
        counters["state_overflow"][name] = 0
        if spec.readout is not None:
            counters["readout_saturated"][name] = saturated
        if pop.role == "output":
            acc += 0.0      # an integer zero is +0.0, as in the int64 pass
            acc *= per_feature(lay.s_acc, pop)
            out = pop.activation(acc)
            continue
        counters["activation_saturated"][name] = _activity_float(qnet, pop, lay, acc)
        acts[name] = acc
    return IntegerRun(out, acts, counters)


def _round_float(v: np.ndarray, mode: str) -> None:
    """`fixed_point.round_int` in place on float64 ``v`` (modes of `_FLOAT_ROUNDING`)."""
    if mode == "nearest":          # half away from zero
        sign = np.sign(v)
        np.abs(v, out=v)
        v += 0.5
        np.floor(v, out=v)
        v *= sign
    elif mode == "nearest_even":
        np.rint(v, out=v)
    elif mode == "toward_zero":
        np.trunc(v, out=v)
    else:
        np.floor(v, out=v)


def _readout_float(qnet: "QuantizedNetwork", proj: Projection, pre: Population, pop: Population, w: np.ndarray,
                   a: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """`integer_pass._analog_readout` on float64: per chunk of rows, floor(gain * acc + noise), saturate; sum,
    saturate. The noise is drawn chunk by chunk with the same calls, so the generator's stream is the same."""
    spec = qnet.spec
    rows = spec.chunk_rows or a.shape[1]
    gain = qnet.layers[pop.name].gain
    kind = get_kind(proj.kind)
    total, saturated = None, 0
    for start in range(0, a.shape[1], rows):
        if start == 0 and rows >= w.shape[1]:
            chunk_w = w
        else:
            chunk_w = np.zeros_like(w)
            chunk_w[:, start:start + rows] = w[:, start:start + rows]
        acc = kind.propagate(with_weight(proj, chunk_w), pre, pop, a)
        acc *= gain
        if spec.analog_noise_std:
            acc += rng.normal(0.0, spec.analog_noise_std, acc.shape)
        _round_float(acc, spec.readout_rounding)
        saturated += _fit_float(acc, spec.readout)
        total = acc if total is None else total + acc
    if total is None:
        total = np.zeros((a.shape[0], pop.n_features))
    return total, saturated + _fit_float(total, spec.readout)


def _activity_float(qnet: "QuantizedNetwork", pop: Population, lay: "LayerParams", acc: np.ndarray) -> int:
    """`activity` in place on an integer-valued float64 accumulator; returns the saturation count."""
    spec = qnet.spec
    if spec.spiking:
        theta = per_feature(lay.theta, pop).astype(np.float64)
        if spec.reset == "zero":
            # floor(T / k), k = floor(theta T / acc) + 1 (gt) or ceil(theta T / acc) (ge); acc <= 0 gives k = inf.
            np.maximum(acc, 0.0, out=acc)
            with np.errstate(divide="ignore"):
                np.divide(theta * float(spec.window), acc, out=acc)
            if spec.compare == "gt":
                np.floor(acc, out=acc)
                acc += 1.0
            else:
                np.ceil(acc, out=acc)
            np.divide(float(spec.window), acc, out=acc)
            np.floor(acc, out=acc)
            return 0
        acc -= spec.compare == "gt"
        np.maximum(acc, 0.0, out=acc)
        acc /= theta
        np.floor(acc, out=acc)
        return _fit_float(acc, lay.act_format)
    if pop.activation.a == 0.0:
        np.maximum(acc, 0.0, out=acc)
    acc *= per_feature(lay.multiplier, pop)
    acc /= 2.0 ** per_feature(lay.shift, pop)
    _round_float(acc, spec.activation_rounding)
    return _fit_float(acc, lay.act_format)
