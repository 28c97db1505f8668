"""The static integer pass with its integers carried in float64: the same integers, fewer passes over the data.

Below 2**52 every integer is exact in float64, BLAS sums of integer products are exact, and
``floor(p / q)`` of such integers is exact in float division (an error would need ``p / q`` within
``p * 2**-53`` of an integer, but it is at least ``1 / q`` away). When `float_exact` shows that no
value of the pass can exceed 2**51 and no register can overflow, `run_float` computes
`integer_pass.run_integer`'s result in place on float64 arrays; tests compare the two on every chip.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..model.kinds import get_kind
from ..model.network import Population
from .calibration import with_weight
from .fixed_point import IntFormat
from .pass_common import IntegerRun, digital, fits, per_feature, prepare, worst_state

if TYPE_CHECKING:  # pragma: no cover
    from .quantized import LayerParams, QuantizedNetwork

__all__ = ["float_exact", "run_float"]

_FLOAT_ROUNDING = ("nearest", "nearest_even", "floor", "truncate", "toward_zero")


def float_exact(qnet: "QuantizedNetwork") -> bool:
    """Every integer of the pass stays below 2**51 in magnitude and no register check can trigger."""
    spec = qnet.spec
    if not digital(spec):
        return False
    net = qnet.network
    for name in net.order:
        pop = net.populations[name]
        if pop.role == "input":
            continue
        prep = prepare(qnet, pop)
        worst = worst_state(qnet, pop)
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


def run_float(qnet: "QuantizedNetwork", x: np.ndarray, counters: dict) -> IntegerRun | None:
    """`integer_pass.run_integer` with its integers carried in float64 (exact under `_float_exact`); None if a split
    excitatory or inhibitory buffer would saturate on this data (the int64 pass then counts it)."""
    spec = qnet.spec
    net = qnet.network
    a = x / qnet.input_scale                       # round half away from zero, as round_int "nearest"
    if a.size and a.min() < 0:
        sign = np.sign(a)
        np.abs(a, out=a)
        a += 0.5
        np.floor(a, out=a)
        a *= sign
    else:
        a += 0.5
        np.floor(a, out=a)
    counters["input_saturated"][net.input.name] = _fit_float(a, qnet.input_format)
    acts = {net.input.name: a}
    out = None
    window = float(spec.window)
    for name in net.order:
        pop = net.populations[name]
        if pop.role == "input":
            continue
        lay = qnet.layers[name]
        prep = prepare(qnet, pop)
        acc = None
        for proj in net.incoming(name):
            pre, kind = net.populations[proj.pre], get_kind(proj.kind)
            w = prep.weights[proj.name]
            if spec.split_sign:
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
        if pop.role == "output":
            acc *= per_feature(lay.s_acc, pop)
            out = pop.activation(acc)
            continue
        counters["activation_saturated"][name] = _activity_float(qnet, pop, lay, acc)
        acts[name] = acc
    return IntegerRun(out, acts, counters)


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
    mode = spec.activation_rounding
    if mode == "nearest":
        sign = np.sign(acc)
        np.abs(acc, out=acc)
        acc += 0.5
        np.floor(acc, out=acc)
        acc *= sign
    elif mode == "nearest_even":
        np.rint(acc, out=acc)
    elif mode == "toward_zero":
        np.trunc(acc, out=acc)
    else:
        np.floor(acc, out=acc)
    return _fit_float(acc, lay.act_format)
