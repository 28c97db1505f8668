"""Networks on Xylo: Rockpool's quantisation of a rate network, its static model with the leak, and its stepped run.

Profiles with ``neuron.variant: xylosim`` (``xylo_audio2``) take this route in `quantize`,
`QuantizedNetwork.forward` and `simulate`.

**Conversion** (Rockpool 3.1 ``transform/quantize_methods.py``, ``global_quantize``). A ReLU unit of
activity scale ``s`` (one spike is worth ``s``) becomes a neuron with float threshold ``s``; a spike
of a pre-synaptic population of scale ``s_pre`` carries the float weight ``W * s_pre`` and the bias
is ``b / T`` per step. One scale ``S = qmax / max(|w_in|, |w_rec|, |bias|)`` covers every
hidden neuron's input weights (input and recurrent, which on Xylo also holds the weights between
hidden layers) and biases, another ``S_out`` the readout weights and biases (``granularity``
``network``; ``layer``: one per population; ``neuron``/``channel``: one per unit, Rockpool's
``channel_quantize``); ``method: percentile`` takes that percentile of the magnitudes instead of
the max. Weights, thresholds and biases round with the profile's rounding (``np.round``, half to
even, in Rockpool). Where a threshold would exceed the 16-bit register, the group's scale shrinks
until it fits (Rockpool's ``limited_scaling``, rounded once here rather than twice). Two
departures: Rockpool scales ``bias_out`` with the hidden scale (``quantize_methods.py:142``), here
with ``S_out``; and the weight shifts (0..7, which Rockpool leaves to the user) are chosen here: the
largest shift ``k`` of each group that keeps its thresholds within `THRESHOLD_TARGET`, the integer
weights entering as ``w << k``. The dashes are the profile's ``conversion_defaults.dash_syn`` and
``dash_mem``. A unit of synaptic input reaches the membrane ``g = 2**dash_syn - 1`` times over as the
current decays (``isyn -= isyn >> dash_syn`` after each step's input), so thresholds and biases (added
to the membrane directly) are ``round(s * S * 2**k * g)`` and ``round(b / T * S * 2**k * g)``; at the
default ``dash_syn = 1``, ``g = 1``.

**Readout.** The output population is Xylo's readout layer; its value is the readout neurons'
synaptic current summed over the window (Xylo's ``Isyn`` readout mode, Rockpool
``XyloSamna(output_mode="Isyn")``) plus the readout bias, which Xylo adds to the membrane and the host
adds to the read current. The readout neurons still spike (at most once per step) and their
counts are reported.

**Static model** (`run_static`, what `QuantizedNetwork.forward` computes): per hidden unit the
window's membrane input ``acc`` (spike counts times ``g (w << k)``, less the latency, plus ``T``
biases) gives ``floor((acc - (T - 1) * leak) / theta)`` spikes, where
``leak = max(1, (theta // 2) >> dash_mem)`` is the membrane's decay per step at half the threshold
(at least one LSB per step, as on Xylo). The latency: while the current settles the window misses
``g (1 - a**T)`` steps of mean input (``a = 1 - 2**-dash_syn``; one step at ``dash_syn = 1``), and
spikes of hidden neurons arrive one step late.
Recurrent networks are iterated to their fixed point (the delayed spikes of a steady state).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelError
from ..model.kinds import get_kind
from ..model.network import Population
from .calibration import with_weight
from .fixed_point import IntFormat, round_int
from .integer_pass import encode_input
from .pass_common import IntegerRun, new_counters, per_feature
from .quantized import LayerParams, SynapseParams
from . import xylo

if TYPE_CHECKING:  # pragma: no cover
    from .quantized import QuantizedNetwork
    from .spiking import SpikingRun

__all__ = ["VARIANT", "THRESHOLD_TARGET", "is_xylo", "map_population", "xylo_params", "window_leak", "run_static",
           "simulate"]

VARIANT = "xylosim"
#: Largest threshold the weight shift aims for: the calibrated maximum (one spike per step at
#: max_rate 1) then adds about one threshold per step, and ``isyn`` (twice that before its decay at
#: dash_syn 1) keeps 8x headroom below int16. A toolkit choice, not a chip value.
THRESHOLD_TARGET = 1 << 12
_FIXED_POINT_ITERATIONS = 200


def is_xylo(qnet: "QuantizedNetwork") -> bool:
    """The profile follows xylosim's arithmetic (``neuron.variant: xylosim``)."""
    return qnet.profile.get("neuron.variant") == VARIANT


def _dashes(qnet: "QuantizedNetwork") -> tuple[int, int]:
    """``(dash_syn, dash_mem)`` of the profile's conversion defaults."""
    return int(qnet.profile.get("conversion_defaults.dash_syn", 1)), \
        int(qnet.profile.get("conversion_defaults.dash_mem", xylo.DASH_MAX))


def _synapse_gain(qnet: "QuantizedNetwork") -> int:
    """``2**dash_syn - 1``: the membrane input of one unit of synaptic input, summed over the current's decay."""
    return (1 << _dashes(qnet)[0]) - 1


def _lag(qnet: "QuantizedNetwork", from_hidden: bool) -> float:
    """Steps of mean input a window's membrane misses: the current's settling ``g (1 - a**T)``
    (``a = 1 - 2**-dash_syn``) plus one step when the spikes come from hidden neurons."""
    dash_syn = _dashes(qnet)[0]
    a = 1.0 - 2.0 ** -dash_syn
    return _synapse_gain(qnet) * (1.0 - a ** qnet.spec.window) + from_hidden


def _float_weights(qnet: "QuantizedNetwork", pop: Population, scales: dict[str, float]) -> list[tuple[Any, Any]]:
    """Per incoming projection: the float weight of one pre-synaptic spike and its post-unit index."""
    net = qnet.network
    out = []
    for proj in net.incoming(pop.name):
        pre = net.populations[proj.pre]
        post_idx, _ = get_kind(proj.kind).groups(proj, pre, pop)
        out.append((proj.weight * scales[proj.pre], np.broadcast_to(post_idx, proj.weight.shape)))
    return out


def _unit_magnitudes(qnet: "QuantizedNetwork", pop: Population, scales: dict[str, float]) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
    """All float weights and per-step biases of ``pop`` as (post unit index, magnitude) pairs."""
    idx, mag = [], []
    for w, post in _float_weights(qnet, pop, scales):
        idx.append(post.ravel())
        mag.append(np.abs(w).ravel())
    if pop.bias is not None:
        idx.append(np.arange(pop.size))
        mag.append(np.abs(pop.bias) / qnet.spec.window)
    return np.concatenate(idx), np.concatenate(mag)


def _group_scale(qnet: "QuantizedNetwork", pops: list[Population], scales: dict[str, float]) -> dict[str, np.ndarray]:
    """Rockpool's ``scaling = qmax / max|values|`` per group of ``pops`` (granularity), per unit of each."""
    spec = qnet.spec
    per_unit = spec.granularity in ("channel", "neuron")
    per_pop = spec.granularity == "layer"

    def reduce(values: np.ndarray) -> float:
        if not values.size:
            return 0.0
        return float(np.percentile(values, spec.percentile)) if spec.method == "percentile" else float(values.max())

    pairs = {p.name: _unit_magnitudes(qnet, p, scales) for p in pops}
    out = {}
    if not per_unit and not per_pop:
        top = reduce(np.concatenate([m for _, m in pairs.values()]))
    for p in pops:
        idx, mag = pairs[p.name]
        if per_unit:
            tops = np.array([reduce(mag[idx == u]) for u in range(p.size)])
        else:
            tops = np.full(p.size, reduce(mag) if per_pop else top)
        out[p.name] = np.where(tops > 0, spec.weight_qmax / np.where(tops > 0, tops, 1.0), 1.0)
    return out


def _plan(qnet: "QuantizedNetwork", pops: list[Population], scales: dict[str, float]) -> tuple[dict, int, float]:
    """Per population its scale per unit, the group's weight shift and how much the threshold limit shrank it."""
    spec = qnet.spec
    scale = _group_scale(qnet, pops, scales)
    theta_limit = min(float(1 << (spec.threshold_bits - spec.threshold_signed)) - 1, float(xylo.STATE_MAX)) \
        if spec.threshold_bits else float(xylo.STATE_MAX)
    top = max((float(np.max(scales[p.name] * scale[p.name])) for p in pops), default=0.0) * _synapse_gain(qnet)
    shrink = 1.0
    if top > theta_limit:                       # Rockpool's limited_scaling
        shrink = theta_limit / top
        scale = {k: s * shrink for k, s in scale.items()}
        top = theta_limit
    shift = 0
    while shift < xylo.WEIGHT_SHIFT_MAX and top * 2.0 ** (shift + 1) <= THRESHOLD_TARGET:
        shift += 1
    return scale, shift, shrink


def map_population(qnet: "QuantizedNetwork", pop: Population, scales: dict[str, float],
                   formats: dict[str, IntFormat], rng: np.random.Generator, stats: dict) -> None:
    """Store the Xylo integers of ``pop`` (its incoming weights, bias and threshold) in ``qnet`` (module docstring)."""
    spec = qnet.spec
    net = qnet.network
    for proj in net.incoming(pop.name):
        pre = net.populations[proj.pre].role
        if (pop.role == "output" and pre == "input") or pre == "output":
            raise ModelError(f"quantize: projection {proj.name!r} joins the {pre} to the {pop.role}; Xylo's "
                             "readout neurons receive hidden spikes only and send none")
        if pre == "input" and proj.delay:
            raise ModelError(f"quantize: projection {proj.name!r} delays the input by a step; Xylo delivers "
                             "input spikes in the step they arrive")
    group = [p for p in net.populations.values() if p.role == pop.role]
    scale, shift, shrink = _plan(qnet, group, scales)
    s_unit = scale[pop.name]
    gain = s_unit * 2.0 ** shift * _synapse_gain(qnet)    # membrane LSBs per unit of the float pre-activation
    for proj, (w, post) in zip(net.incoming(pop.name), _float_weights(qnet, pop, scales)):
        fmt = IntFormat(62, True, lo=spec.weight_qmin, hi=spec.weight_qmax, name=f"weights of {proj.name}")
        q, clipped = fmt.fit(round_int(w * s_unit[post], spec.weight_rounding, rng))
        exponent = np.full(pop.size, shift, dtype=np.int64)
        qnet.synapses[proj.name] = SynapseParams(proj.name, q, exponent, q << shift,
                                                 1.0 / (s_unit * scales[proj.pre]))
        stats["weights_clipped"][proj.name] = clipped
    lay = LayerParams(pop.name, 1.0 / gain, None, coarsened=1.0 / shrink)
    if pop.bias is not None:
        fmt = IntFormat(spec.bias_bits or 16, True, name=f"bias of {pop.name}")
        lay.bias, stats["biases_clipped"][pop.name] = fmt.fit(
            round_int(pop.bias / spec.window * gain, spec.weight_rounding, rng))
    stats["coarsened"][pop.name] = 1.0 / shrink
    theta = round_int(scales[pop.name] * gain, spec.weight_rounding)
    lay.theta = np.clip(theta, 1, xylo.STATE_MAX)
    lay.s_act = scales[pop.name]
    lay.act_format = formats[pop.name]
    if pop.role == "hidden":     # up to 31 spikes per step
        lay.act_format = IntFormat(62, False, lo=0, hi=spec.window * xylo.HIDDEN_CAP, name=f"spike count {pop.name}")
    qnet.layers[pop.name] = lay


def _layout(qnet: "QuantizedNetwork") -> dict[str, slice]:
    """Each hidden population's neurons in Xylo's hidden layer, in network order."""
    out, start = {}, 0
    for name in qnet.network.order:
        pop = qnet.network.populations[name]
        if pop.role == "hidden":
            out[name] = slice(start, start + pop.n_features)
            start += pop.n_features
    return out


def xylo_params(qnet: "QuantizedNetwork") -> xylo.XyloParams:
    """The `xylo.XyloParams` of a quantised network: hidden populations side by side, dense weights ``[pre, post]``.

    Every projection becomes the dense matrix of its integer weights between features (a
    convolution's kernel repeated at every position), as Xylo's synapses are.

    Raises
    ------
    ModelError
        When synapses that share a pair of features add up beyond the int8 weight range, or a
        projection max-pools or averages its input (no integer weights do that).
    """
    net = qnet.network
    layout = _layout(qnet)
    n_in, n_hid, n_out = net.input.n_features, sum(s.stop - s.start for s in layout.values()), net.output.n_features
    w = {"in": np.zeros((n_in, n_hid), dtype=np.int64), "rec": np.zeros((n_hid, n_hid), dtype=np.int64),
         "out": np.zeros((n_hid, n_out), dtype=np.int64)}
    shifts = {"in": 0, "rec": 0, "out": 0}
    for proj in net.projections:
        pre, post = net.populations[proj.pre], net.populations[proj.post]
        part = "in" if pre.role == "input" else "out" if post.role == "output" else "rec"
        rows = slice(None) if part == "in" else layout[proj.pre]
        cols = slice(None) if part == "out" else layout[proj.post]
        syn = qnet.synapses[proj.name]
        if proj.kind == "dense":
            w[part][rows, cols] += syn.mantissa.T
        else:   # the response to each pre feature alone: the [pre, post] matrix of the kernel's integers
            if (proj.options.get("pool") or {}).get("kind") == "max":
                raise ModelError(f"simulate: projection {proj.name!r} max-pools its input; Xylo's synapses only "
                                 "add integer weights")
            eye = np.eye(pre.n_features)
            dense = get_kind(proj.kind).propagate(with_weight(proj, syn.mantissa.astype(np.float64)), pre, post, eye)
            if not np.array_equal(dense, np.rint(dense)):
                raise ModelError(f"simulate: projection {proj.name!r} averages its input; Xylo's synapses only "
                                 "add integer weights")
            w[part][rows, cols] += dense.astype(np.int64)
        shifts[part] = int(syn.exponent[0])
    for part, arr in w.items():
        if arr.size and (arr.min() < -128 or arr.max() > 127):
            raise ModelError(f"simulate: the {part} weights of {net.name!r} add up beyond int8 where two projections "
                             "share synapses")
    dash_syn, dash_mem = _dashes(qnet)

    def per_unit(values: list[np.ndarray], n: int, fill: int) -> np.ndarray:
        return np.concatenate(values) if values else np.full(n, fill, dtype=np.int64)

    hidden = [net.populations[name] for name in layout]
    lays = [qnet.layers[p.name] for p in hidden]
    out_lay = qnet.layers[net.output.name]
    zeros = lambda lay, pop: lay.bias if lay.bias is not None else np.zeros(pop.size, dtype=np.int64)   # noqa: E731
    return xylo.XyloParams(
        w_in=w["in"], w_rec=w["rec"], w_out=w["out"],
        threshold=per_unit([per_feature(lay.theta, p) for lay, p in zip(lays, hidden)], 0, 1),
        threshold_out=per_feature(out_lay.theta, net.output),
        bias=per_unit([per_feature(zeros(lay, p), p) for lay, p in zip(lays, hidden)], 0, 0),
        bias_out=per_feature(zeros(out_lay, net.output), net.output),
        dash_mem=np.full(n_hid, dash_mem), dash_mem_out=np.full(n_out, dash_mem),
        dash_syn=np.full(n_hid, dash_syn), dash_syn_out=np.full(n_out, dash_syn),
        shift_in=shifts["in"], shift_rec=shifts["rec"], shift_out=shifts["out"])


def window_leak(theta: np.ndarray, dash_mem: int, window: int) -> np.ndarray:
    """What a firing membrane loses to its decay in a window: ``(T - 1) * max(1, (theta // 2) >> dash_mem)``.

    Between spikes the membrane lies in ``[0, theta)``, half the threshold on average; the first step
    starts from rest (no decay).

    Examples
    --------
    >>> window_leak(np.array([4096, 100]), 4, 255).tolist()
    [32512, 762]
    """
    return np.maximum(1, (np.asarray(theta) // 2) >> dash_mem) * (window - 1)


def run_static(qnet: "QuantizedNetwork", x: np.ndarray) -> IntegerRun:
    """The steady-state rate model of `simulate` on Xylo (module docstring); recurrent nets iterate to a fixed point."""
    net, spec = qnet.network, qnet.spec
    counters = new_counters()
    acts: dict[str, np.ndarray] = {}
    acts[net.input.name], counters["input_saturated"][net.input.name] = encode_input(qnet, x)
    _, dash_mem = _dashes(qnet)
    previous: dict[str, np.ndarray] = {}
    out = None
    for _ in range(_FIXED_POINT_ITERATIONS if net.recurrent else 1):
        for name in net.order:
            pop = net.populations[name]
            if pop.role == "input":
                continue
            lay = qnet.layers[name]
            acc = np.zeros((x.shape[0], pop.n_features), dtype=np.int64)
            for proj in net.incoming(name):
                source = previous.get(proj.pre) if proj.delay else acts[proj.pre]
                if source is None:
                    continue
                pre = net.populations[proj.pre]
                eff = qnet.synapses[proj.name].effective.astype(np.float64)
                part = get_kind(proj.kind).propagate(with_weight(proj, eff), pre, pop, source.astype(np.float64))
                # The current's gain, less the input the window misses while the current settles (and the
                # step hidden spikes take to arrive).
                scale = _synapse_gain(qnet) * (spec.window - _lag(qnet, pre.role != "input")) / spec.window
                acc += np.floor(part * scale).astype(np.int64)
            if lay.bias is not None:
                acc += per_feature(lay.bias, pop) * spec.window
            counters["state_overflow"][name] = int(np.count_nonzero(np.abs(acc) > xylo.STATE_MAX * spec.window))
            counters["accumulator_overflow"][name] = 0
            if pop.role == "output":
                out = pop.activation(acc * per_feature(lay.s_acc, pop))
                continue
            theta = per_feature(lay.theta, pop)
            count = np.maximum(acc - window_leak(theta, dash_mem, spec.window), 0) // theta
            acts[name], counters["activation_saturated"][name] = lay.act_format.fit(count)
        hidden = {k: v for k, v in acts.items() if k != net.input.name}
        if net.recurrent and previous and all(np.array_equal(hidden[k], previous[k]) for k in hidden):
            break
        previous = hidden
    return IntegerRun(out, acts, counters)


def simulate(qnet: "QuantizedNetwork", x: np.ndarray, steps: int, record: bool = False) -> "SpikingRun":
    """Run ``qnet`` step by step on Xylo (`xylo.run`) with each input a regular spike train of its integer count.

    The output is the readout's synaptic current summed over the steps plus the readout bias, scaled
    to the rate-code window (module docstring). ``record`` keeps per step ``spikes.<pop>``,
    ``v.<pop>``, ``isyn.<pop>`` of every hidden population, and ``spikes.<out>``, ``v.<out>``,
    ``isyn.<out>`` and ``acc.<out>`` (the read current so far plus the readout bias) of the readout.
    """
    from .spiking import SpikingRun, _regular_spikes

    net, spec = qnet.network, qnet.spec
    x = np.asarray(x, dtype=np.float64)
    params = xylo_params(qnet)
    counts_in, _ = encode_input(qnet, x)
    trains = [_regular_spikes(counts_in, spec.window, t % spec.window) for t in range(steps)]
    layout = _layout(qnet)
    out_name = net.output.name
    trace: dict[str, np.ndarray] = {}
    if record:
        rec = xylo.run(params, np.stack(trains))
        totals = xylo.XyloTotals(rec.spikes.sum(0), rec.out_spikes.sum(0), rec.isyn_out.sum(0), rec.v[-1],
                                 rec.v_out[-1], rec.saturated)
        for name, cols in layout.items():
            trace.update({f"spikes.{name}": rec.spikes[..., cols], f"v.{name}": rec.v[..., cols],
                          f"isyn.{name}": rec.isyn[..., cols]})
        trace.update({f"spikes.{out_name}": rec.out_spikes, f"v.{out_name}": rec.v_out,
                      f"isyn.{out_name}": rec.isyn_out,
                      f"acc.{out_name}": np.cumsum(rec.isyn_out, axis=0)
                      + params.bias_out * np.arange(1, steps + 1)[:, None, None]})
    else:
        totals = xylo.run_totals(params, trains, x.shape[0])
    counts = {net.input.name: sum(trains)}
    counts.update({name: totals.spikes[:, cols] for name, cols in layout.items()})
    counts[out_name] = totals.out_spikes
    out_lay = qnet.layers[out_name]
    acc = totals.isyn_out + params.bias_out * steps
    output = net.output.activation(acc * per_feature(out_lay.s_acc, net.output) * (spec.window / steps))
    overflow = {"hidden": {"isyn": totals.saturated["isyn"], "v": totals.saturated["v"]},
                "readout": {"isyn": totals.saturated["isyn_out"], "v": totals.saturated["v_out"]}}
    return SpikingRun(output, counts, overflow, {name: totals.v[:, cols] for name, cols in layout.items()}, steps,
                      trace)
