"""Vendor mapping rules: per-group weight scales, exponents, biases and thresholds of one population.

Each rule is the one a chip's users apply (the profile's ``sources`` name the tool chain):

* **weight scales** per shared-scale group (network, layer/connection, channel or neuron): the
  group's max (or percentile) maps to the largest integer (``w_scale = 255 / w_max`` in nengo-loihi,
  ``(2**(b-1) - 1) / max|w|`` in rockpool and QuantizeML) or, for sPyNNaker, the worst-case input
  fits the ring buffer. On ``pow2`` chips groups feeding one population differ by powers of two
  (nengo-loihi ``dw_exp = floor(log2(w_max / w_max_i))``; the float factor left is absorbed by the
  population's thresholds and biases, as nengo-loihi does);
* **biases and thresholds** in accumulator units: Loihi's 13-bit mantissa with a 0..7 exponent,
  Speck's 8-bit bias, 16- or 17-bit thresholds. When they overflow, the population's scale is made
  coarser until they fit (nengo-loihi lowers ``w_exp``, rockpool rescales on threshold overflow,
  sinabs takes the minimum of the per-quantity scales);
* **thresholds** of spiking units: ``theta = I_max / max_rate`` in accumulator units, where
  ``I_max`` is the per-step input at the calibrated maximum activity (nengo-loihi's users keep
  rates near 0.1-0.25 spikes per step; snntoolbox's threshold/input ratio 8).
"""
from __future__ import annotations

import numpy as np

from ..model.kinds import feature_groups, get_kind
from ..model.network import Population, Projection
from .calibration import magnitude, with_weight
from .fixed_point import IntFormat, quantize_shared_exponent, round_int
from . import akida, xylo_mapping
from .quantized import LayerParams, QuantizedNetwork, SynapseParams
from .spec import ChipSpec

__all__ = ["group_scale", "map_population", "threshold_max", "effective_weights"]


def group_scale(spec: ChipSpec, proj: Projection, pre: Population, post: Population,
                 network_max: float | None) -> np.ndarray:
    """Real value of one weight LSB per post unit, before alignment (``max / qmax`` per group)."""
    w = proj.weight
    post_idx, _ = get_kind(proj.kind).groups(proj, pre, post)
    post_idx = np.broadcast_to(post_idx, w.shape)
    if network_max is not None:
        return np.full(post.size, network_max / spec.weight_qmax if network_max > 0 else 1.0)
    per_unit = spec.granularity in ("channel", "neuron")
    n = post.size if per_unit else 1
    group = post_idx if per_unit else np.zeros(w.shape, dtype=np.intp)
    if spec.method == "input":
        # sPyNNaker: the worst-case per-step input (every pre unit spiking) must fit the buffer.
        limit = spec.accumulator.max if spec.accumulator is not None else spec.weight_qmax
        kind = get_kind(proj.kind)
        ones = np.ones((1, pre.n_features))
        pos = kind.propagate(with_weight(proj, np.maximum(w, 0.0)), pre, post, ones)[0]
        neg = -kind.propagate(with_weight(proj, np.minimum(w, 0.0)), pre, post, ones)[0]
        need = np.zeros(n)
        np.maximum.at(need, feature_groups(post) if per_unit else np.zeros(post.n_features, dtype=np.intp),
                      np.maximum(pos, neg) / limit)
        top = np.zeros(n)
        np.maximum.at(top, group.ravel(), np.abs(w).ravel() / spec.weight_qmax)
        scale = np.maximum(need, top)
    elif spec.method == "percentile":
        mags = np.abs(w).ravel()
        flat = group.ravel()
        order = np.argsort(flat, kind="stable")
        sizes = np.bincount(flat, minlength=n)
        if np.all(sizes == sizes[0]):   # every unit has as many parameters (dense rows, conv kernels)
            scale = np.percentile(mags[order].reshape(n, -1), spec.percentile, axis=1) / spec.weight_qmax
        else:
            scale = np.array([np.percentile(mags[flat == g], spec.percentile) for g in range(n)]) / spec.weight_qmax
    else:
        hi = np.zeros(n)
        lo = np.zeros(n)
        np.maximum.at(hi, group.ravel(), w.ravel())
        np.minimum.at(lo, group.ravel(), w.ravel())
        # Unsigned weights (qmin = 0): negative weights clip to 0, only the largest sets the scale.
        scale = np.maximum(hi / spec.weight_qmax, lo / spec.weight_qmin if spec.weight_qmin < 0 else 0.0)
    scale = np.where(scale > 0, scale, 1.0)
    return scale if per_unit else np.full(post.size, scale[0])


def map_population(qnet: QuantizedNetwork, pop: Population, scales: dict[str, float],
                    formats: dict[str, IntFormat], network_max: float | None, rng: np.random.Generator,
                    stats: dict, ranges: np.ndarray) -> None:
    """Store the integer weights, bias and threshold (or requantisation) of ``pop`` in ``qnet``.

    ``scales`` and ``formats`` are every population's activity scale and format; ``ranges`` the
    calibrated activity of ``pop``; ``stats`` collects what was clipped or coarsened.
    """
    if xylo_mapping.is_xylo(qnet):    # Rockpool's rules for Xylo (xylo_mapping)
        xylo_mapping.map_population(qnet, pop, scales, formats, rng, stats)
        return
    spec = qnet.spec
    net = qnet.network
    incoming = net.incoming(pop.name)
    # Scale of one accumulator contribution per projection and post unit: weight LSB x activity LSB.
    t = {p.name: group_scale(spec, p, net.populations[p.pre], pop, network_max) * scales[p.pre]
         for p in incoming}
    stack = np.stack(list(t.values())) if t else np.ones((1, pop.size))
    base = stack.max(axis=0) if spec.weight_form == "pow2" else stack.min(axis=0)

    def exponents(base: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for name, tk in t.items():
            e = np.ceil(np.log2(tk / base) - 1e-12).astype(np.int64)
            if spec.weight_form == "pow2":
                e = np.clip(e, spec.exp_min if spec.exp_min is not None else -62, 0)
            out[name] = e
        return out

    window = spec.window
    # The stepped simulation shifts biases left by the synaptic filter's gain: keep them legal.
    bias_exp_range = spec.bias_exp_range and (spec.bias_exp_range[0], spec.bias_exp_range[1] - spec.synapse_shift)
    gain = 1.0
    if spec.readout is not None:
        # hxtorch's num_sends repeats the input to use the readout range: pick the largest repeat
        # that keeps the calibrated maximum inside the readout (a mapping choice, like a scale).
        peak = magnitude(ranges, "max", 100.0) / float(base.min()) * spec.analog_gain
        gain = spec.analog_gain * max(1.0, np.floor(spec.readout.max / peak) if peak > 0 else 1.0)
    bias_real = pop.bias
    s_act = scales[pop.name]
    coarsen: float | np.ndarray = 1.0
    for attempt in range(2):  # the second pass checks the coarser scale forced by biases or thresholds
        s_acc = base * coarsen * 2.0 ** -spec.exp_offset / gain
        need = np.ones(pop.size)
        beta = bias_real / (s_acc * window) if bias_real is not None else None
        if beta is not None and spec.bias_bits is not None:
            bias_max = ((1 << (spec.bias_bits - 1)) - 1) * 2.0 ** (bias_exp_range[1] if bias_exp_range else 0)
            need = np.maximum(need, np.abs(beta) / bias_max)
        if spec.spiking and pop.role == "hidden":
            need = np.maximum(need, s_act / s_acc / threshold_max(spec))
        if attempt == 1 or np.all(need <= 1.0 + 1e-12):
            break
        factor = need.max() if spec.granularity in ("network", "layer") else need
        if spec.weight_form == "pow2":
            factor = 2.0 ** np.ceil(np.log2(factor))
        coarsen = factor
    stats["coarsened"][pop.name] = float(np.max(coarsen))
    base = base * coarsen
    exps = exponents(base)

    for proj in incoming:
        pre = net.populations[proj.pre]
        post_idx, _ = get_kind(proj.kind).groups(proj, pre, pop)
        scale = base * 2.0 ** exps[proj.name] / scales[proj.pre]
        fmt = IntFormat(62, True, lo=spec.weight_qmin, hi=spec.weight_qmax,
                        overflow="error" if spec.weight_clip == "error" else "saturate",
                        name=f"weights of {proj.name}")
        q, clipped = fmt.fit(round_int(proj.weight / scale[post_idx], spec.weight_rounding, rng))
        effective = effective_weights(spec, q, np.broadcast_to(exps[proj.name][post_idx], q.shape))
        mismatch = None
        if spec.mismatch_sigma > 0:
            mismatch = 1.0 + spec.mismatch_sigma * rng.standard_normal(q.shape)
        qnet.synapses[proj.name] = SynapseParams(proj.name, q, exps[proj.name], effective, scale, mismatch)
        stats["weights_clipped"][proj.name] = clipped

    s_acc = base * 2.0 ** -spec.exp_offset / gain
    lay = LayerParams(pop.name, s_acc, None, coarsened=float(np.max(coarsen)), gain=gain)
    if bias_real is not None:
        beta = bias_real / (s_acc * window)
        if spec.bias_bits is not None and bias_exp_range is not None:
            mant, exp, clipped = quantize_shared_exponent(
                beta, np.arange(pop.size), pop.size, IntFormat(spec.bias_bits, True, name=f"bias of {pop.name}"),
                spec.weight_rounding, bias_exp_range[0], bias_exp_range[1], rng)
            lay.bias = mant << exp
        elif spec.bias_bits is not None:
            lay.bias, clipped = IntFormat(spec.bias_bits, True, name=f"bias of {pop.name}").fit(
                round_int(beta, spec.weight_rounding, rng))
        else:
            lay.bias, clipped = round_int(beta, spec.weight_rounding, rng), 0
        stats["biases_clipped"][pop.name] = clipped
    if pop.role == "hidden":
        lay.s_act = s_act
        lay.act_format = formats[pop.name]
        if spec.spiking:
            shift = spec.threshold_shift
            mant = np.maximum(np.rint(s_act / s_acc / 2.0 ** shift), 1).astype(np.int64)
            lay.theta = np.minimum(mant << shift, int(min(threshold_max(spec), 2.0 ** 62)))
            if spec.max_spikes_per_step != 1:
                # Several spikes per step (sinabs MultiSpike): at most the cap, or as many thresholds as
                # the membrane register holds, in every step of the window.
                per_step = spec.max_spikes_per_step or (
                    spec.membrane.max // int(lay.theta.min()) if spec.membrane is not None else 1 << 20)
                lay.act_format = IntFormat(62, False, lo=0, hi=spec.window * max(int(per_step), 1),
                                           overflow="saturate", name=f"spike count {pop.name}")
        else:
            # Requantisation multiplier as a mantissa of requant_frac_bits significant bits and a
            # right shift (the usual integer-only scheme): ratio = M * 2**-shift, M in [2**(b-1), 2**b).
            ratio = s_acc / s_act
            shift = spec.requant_frac_bits - 1 - np.floor(np.log2(ratio)).astype(np.int64)
            shift = np.clip(shift, 0, 61)
            lay.multiplier = np.rint(ratio * 2.0 ** shift).astype(np.int64)
            lay.shift = shift
    if spec.requant is not None:
        lay.akida = akida.layer_params(spec, pop, lay)
    qnet.layers[pop.name] = lay


def effective_weights(spec: ChipSpec, q: np.ndarray, e: np.ndarray) -> np.ndarray:
    """What enters the accumulator for integer weights ``q`` with per-weight exponents ``e``: each weight
    shifted by ``offset + e`` (rounding down below zero).

    A chip whose exponent applies to a connection's summed mantissas (``weights.exponent.applies_to:
    sum``, lava) shifts the sums in `integer_pass.accumulate`; these weights serve its register bounds
    and the float path.

    Examples
    --------
    >>> from neuro_balance.hardware import ChipSpec
    >>> effective_weights(ChipSpec.from_profile("loihi1"), np.array([5, -6, 7]), np.array([0, -1, -7]))
    array([ 320, -192,    3])
    """
    shift = spec.exp_offset + e
    return np.where(shift >= 0, q << np.maximum(shift, 0), q >> np.maximum(-shift, 0))


def threshold_max(spec: ChipSpec) -> float:
    """Largest threshold the chip stores (mantissa and shift), bounded by the membrane range.

    With a Loihi synaptic filter the stepped threshold is ``theta << synapse_shift``, so the
    largest mappable ``theta`` is that much smaller.
    """
    limit = np.inf
    if spec.threshold_bits is not None:
        bits = spec.threshold_bits - spec.threshold_signed
        limit = float(((1 << bits) - 1) << spec.threshold_shift)
    if spec.membrane is not None:
        limit = min(limit, float(spec.membrane.max))
    return limit / 2.0 ** spec.synapse_shift
