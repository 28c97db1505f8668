"""The static integer forward pass: a quantised network's steady-state rates in the chip's arithmetic.

Per population, the integer accumulator ``acc = sum_k (q_k << (offset + e_k)) @ a_pre`` (overflow
per the accumulator format; separate excitatory/inhibitory unsigned buffers when the sign comes from
the synapse type) plus the bias, fitted to the current state, becomes the next activity:

* spiking chips: the spike count over the rate-code window of ``T`` steps that `simulate`'s neuron
  produces for a constant per-step input ``I = acc / T`` (`spike_counts`): ``floor(acc / theta)``
  for reset by subtraction, ``floor(T / k)`` with ``k`` steps to cross the threshold for reset to
  zero. Register widths are checked on the mean per-step input.
* graded chips: a fixed-point multiply and right shift (profile rounding), or a lookup table for
  activations other than ReLU / identity.

The output population is dequantised to float. Analog chips add the seeded per-synapse mismatch
(DYNAP-SE2) or the hxtorch mock's gain, Gaussian noise, floor and 8-bit saturating readout per chunk
of rows (BrainScaleS-2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError
from ..seeding import check_random_state
from ..model.kinds import get_kind
from ..model.network import Population, Projection
from .calibration import with_weight
from .fixed_point import IntFormat, round_div, round_int

if TYPE_CHECKING:  # pragma: no cover
    from .quantized import LayerParams, QuantizedNetwork, SynapseParams

__all__ = ["IntegerRun", "run_integer", "accumulate", "spike_counts", "COUNTERS"]

_EXACT = float(2 ** 52)  # float64 matmuls of integers are exact below this magnitude

#: Saturation counters of one pass, each a dict by population name.
COUNTERS = ("input_saturated", "accumulator_overflow", "state_overflow", "readout_saturated", "activation_saturated")


@dataclass
class IntegerRun:
    """What `run_integer` returns: the dequantised output, every population's integer activity, counters.

    Attributes
    ----------
    output : ndarray (batch, n_out)
    values : dict of ndarray
        Integer activity (spike counts on spiking chips) of the input and hidden populations, as the
        pass carried it (int64, or integer-valued float64); ``activity`` gives them as int64.
    counters : dict of dict
        `COUNTERS`, each by population name: values that saturated or wrapped during the pass.
    """

    output: np.ndarray
    values: dict[str, np.ndarray]
    counters: dict[str, dict[str, int]]

    @property
    def activity(self) -> dict[str, np.ndarray]:
        """Integer activity per population as int64 (the pass may carry it in float64)."""
        return {k: v if v.dtype == np.int64 else v.astype(np.int64) for k, v in self.values.items()}

    @property
    def saturation(self) -> int:
        """All counters summed."""
        return int(sum(sum(v.values()) for v in self.counters.values()))


def new_counters() -> dict[str, dict[str, int]]:
    """Empty `COUNTERS`."""
    return {k: {} for k in COUNTERS}


def run_integer(qnet: "QuantizedNetwork", x: np.ndarray, seed: int | None = None,
                float_path: bool | None = None) -> IntegerRun:
    """Run the static integer emulation of ``qnet`` on ``x`` (module docstring).

    Parameters
    ----------
    qnet : QuantizedNetwork
    x : ndarray of shape (batch, n_in)
    seed : int, optional
        Seed of the analog noise (default: the seed given to `quantize`).
    float_path : bool, optional
        None (default): carry the integers in float64 whenever every value provably stays below
        2**52 and no register can overflow (`_float_exact`), which gives the same integers with
        fewer passes over the data; False: always int64.

    Returns
    -------
    IntegerRun
    """
    net = qnet.network
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != net.input.n_features:
        raise ModelError(f"forward: expected inputs of shape (batch, {net.input.n_features}), got {x.shape}")
    counters = new_counters()
    if qnet.spec.ideal:
        return IntegerRun(net.forward(x), {}, counters)
    spec = qnet.spec
    if float_path is not False and _float_exact(qnet):
        run = _run_float(qnet, x, counters)
        if run is not None:
            return run
        counters = new_counters()
    rng = check_random_state(qnet.seed if seed is None else seed)
    acts: dict[str, np.ndarray] = {}
    acts[net.input.name], counters["input_saturated"][net.input.name] = encode_input(qnet, x)
    out = None
    for name in net.order:
        pop = net.populations[name]
        if pop.role == "input":
            continue
        lay = qnet.layers[name]
        acc = accumulate(qnet, pop, acts, counters, rng, spec.window)
        if lay.bias is not None:
            acc = acc + _per_feature(lay.bias, pop) * spec.window
        if _digital(spec) and _fits(spec.current, worst_state(qnet, pop)):
            counters["state_overflow"][name] = 0
        else:
            acc, counters["state_overflow"][name] = fit_rate(acc, spec.current, spec.window)
        if pop.role == "output":
            out = pop.activation(acc * _per_feature(lay.s_acc, pop))
            continue
        acts[name], counters["activation_saturated"][name] = activity(qnet, pop, lay, acc)
    return IntegerRun(out, acts, counters)


def encode_input(qnet: "QuantizedNetwork", x: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer input activity (spike counts over the window on spiking chips) and how many saturated."""
    return qnet.input_format.fit(round_int(x / qnet.input_scale, "nearest"))


def _per_feature(values: np.ndarray, pop: Population) -> np.ndarray:
    """A per-unit array repeated over each unit's features (a channel's positions)."""
    rep = pop.n_features // pop.size
    return values if rep == 1 else np.repeat(values, rep)


@dataclass
class _Prepared:
    """Per population: float64 copies of the incoming integer weights and worst-case register bounds."""

    key: tuple
    weights: dict[str, np.ndarray]
    worst_input: float       # largest |per-step synaptic input| any activity in the formats can give
    exact: bool              # float64 matmuls of the integers over a whole window are exact


def _prepare(qnet: "QuantizedNetwork", pop: Population) -> _Prepared:
    """The cached `_Prepared` of ``pop``, rebuilt when a weight or bias array was replaced."""
    net = qnet.network
    incoming = net.incoming(pop.name)
    lay = qnet.layers[pop.name]
    key = tuple(id(qnet.synapses[p.name].effective) for p in incoming) + (id(lay.bias),)
    hit = qnet.cache.get(pop.name)
    if hit is not None and hit.key == key:
        return hit
    weights, worst = {}, np.zeros(pop.n_features)
    for proj in incoming:
        pre = net.populations[proj.pre]
        w = qnet.synapses[proj.name].effective.astype(np.float64)
        weights[proj.name] = w
        fmt = qnet.input_format if pre.role == "input" else qnet.layers[proj.pre].act_format
        per_step = np.ceil(max(fmt.max, -fmt.min) / qnet.spec.window)   # activity per step, at most
        ones = np.full((1, pre.n_features), per_step)
        worst = worst + get_kind(proj.kind).propagate(with_weight(proj, np.abs(w)), pre, pop, ones)[0]
    worst_input = float(worst.max(initial=0.0))
    prepared = _Prepared(key, weights, worst_input, worst_input * qnet.spec.window < _EXACT)
    qnet.cache[pop.name] = prepared
    return prepared


def _digital(spec) -> bool:
    """Integer synapses only (no analog mismatch or readout), so the worst-case bounds hold."""
    return spec.readout is None and not spec.mismatch_sigma


def _fits(fmt: IntFormat | None, bound: float) -> bool:
    """No value of magnitude at most ``bound`` can leave ``fmt`` (so its check can be skipped)."""
    return fmt is None or bound <= min(fmt.max, -fmt.min if fmt.signed else 0)


def accumulate(qnet: "QuantizedNetwork", pop: Population, acts: dict[str, np.ndarray], counters: dict,
               rng: np.random.Generator, window: int) -> np.ndarray:
    """Integer input of ``pop`` from the activity ``acts``; register widths apply to ``acc / window``."""
    spec = qnet.spec
    net = qnet.network
    prep = _prepare(qnet, pop)
    total = None
    overflow = readout_sat = 0
    for proj in net.incoming(pop.name):
        syn = qnet.synapses[proj.name]
        pre = net.populations[proj.pre]
        a = acts[proj.pre]
        if syn.mismatch is not None:
            # Analog synapses: the currents sum continuously; read at one-LSB resolution (nearest,
            # so that per-step reads in `simulate` do not drift).
            value = get_kind(proj.kind).propagate(with_weight(proj, syn.effective * syn.mismatch), pre, pop, a)
            part = np.rint(value).astype(np.int64)
        elif spec.readout is not None:
            part, n = _analog_readout(qnet, proj, pre, pop, syn, a, rng)
            readout_sat += n
        elif spec.split_sign:
            exc, n1 = fit_rate(_int_propagate(proj, pre, pop, np.maximum(syn.effective, 0), a),
                               spec.accumulator, window)
            inh, n2 = fit_rate(_int_propagate(proj, pre, pop, np.maximum(-syn.effective, 0), a),
                               spec.accumulator, window)
            part, overflow = exc - inh, overflow + n1 + n2
        elif prep.exact:
            value = get_kind(proj.kind).propagate(with_weight(proj, prep.weights[proj.name]), pre, pop,
                                                  a.astype(np.float64))
            part = value.astype(np.int64)      # sums of integer products below 2**52: already integers
        else:
            part = _int_propagate(proj, pre, pop, syn.effective, a)
        total = part if total is None else total + part
    if total is None:
        total = np.zeros((next(iter(acts.values())).shape[0], pop.n_features), dtype=np.int64)
    if not spec.split_sign and not (_digital(spec) and _fits(spec.accumulator, prep.worst_input)):
        total, n = fit_rate(total, spec.accumulator, window)
        overflow += n
    counters["accumulator_overflow"][pop.name] = counters["accumulator_overflow"].get(pop.name, 0) + overflow
    if spec.readout is not None:
        counters["readout_saturated"][pop.name] = counters["readout_saturated"].get(pop.name, 0) + readout_sat
    return total


def worst_state(qnet: "QuantizedNetwork", pop: Population) -> float:
    """Largest |per-step input + bias| of ``pop`` that activity within the formats can give (digital synapses)."""
    lay = qnet.layers[pop.name]
    bias = float(np.abs(lay.bias).max(initial=0)) if lay.bias is not None else 0.0
    return _prepare(qnet, pop).worst_input + bias


def _analog_readout(qnet, proj, pre, pop, syn, a, rng) -> tuple[np.ndarray, int]:
    """hxtorch ``mac_mock_forward``: per chunk of rows, floor(gain * acc + noise), saturate; sum, saturate."""
    spec = qnet.spec
    rows = spec.chunk_rows or a.shape[1]
    total = np.zeros((a.shape[0], pop.n_features), dtype=np.int64)
    saturated = 0
    gain = qnet.layers[pop.name].gain
    for start in range(0, a.shape[1], rows):
        w = np.zeros_like(syn.effective)
        w[:, start:start + rows] = syn.effective[:, start:start + rows]
        acc = _int_propagate(proj, pre, pop, w, a)
        analog = acc * gain + rng.normal(0.0, spec.analog_noise_std, acc.shape) if spec.analog_noise_std \
            else acc * gain
        chunk, n = spec.readout.fit(round_int(analog, spec.readout_rounding))
        total += chunk
        saturated += n
    total, n = spec.readout.fit(total)
    return total, saturated + n


def spike_counts(acc: np.ndarray, theta: np.ndarray, window: int, reset: str, compare: str) -> np.ndarray:
    """Spikes in ``window`` steps of a non-leaky neuron from rest with a constant per-step input.

    ``acc`` is the input summed over the window (``window * I``). Reset by subtraction: every
    ``theta`` of integrated input is one spike, ``floor((acc - [gt]) / theta)``. Reset to zero: the
    overshoot is lost, so a spike every ``k`` steps, ``k = floor(theta / I) + 1`` (``v > theta``) or
    ``ceil(theta / I)`` (``v >= theta``), and ``floor(window / k)`` spikes. Inputs ``I <= 0`` never
    fire. This is the neuron `simulate` steps (Loihi CUBA with ``du = 4095, dv = 0``, refractory
    1; integrate-and-fire) with its input held constant.

    Examples
    --------
    >>> spike_counts(np.array([0, 300, 2550]), np.array(20), 255, "zero", "gt")
    array([ 0, 12, 85])
    """
    strict = compare == "gt"
    if float(np.abs(acc).max(initial=0)) < _EXACT and float(np.max(theta, initial=0)) < _EXACT:
        # floor(p / q) of integers below 2**52 is exact in float64 (an error needs p / q within
        # p * 2**-53 of an integer, but it is at least 1 / q away), and much faster than int64 division.
        accf = acc.astype(np.float64)
        if reset == "zero":
            mean = np.floor(accf / window)
            k = np.floor(theta / np.maximum(mean, 1.0)) + 1.0 if strict else np.ceil(theta / np.maximum(mean, 1.0))
            return np.where(mean > 0, np.floor(window / k), 0.0).astype(np.int64)
        return np.where(accf > 0, np.floor((accf - strict) / theta), 0.0).astype(np.int64)
    if reset == "zero":
        mean = acc // window
        safe = np.maximum(mean, 1)
        k = theta // safe + 1 if strict else -(-theta // safe)
        return np.where(mean > 0, window // k, 0)
    return np.where(acc > 0, (acc - strict) // theta, 0)


def activity(qnet: "QuantizedNetwork", pop: Population, lay: "LayerParams",
             acc: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer activity of a hidden population from its accumulator, and how many values saturated."""
    spec = qnet.spec
    if spec.spiking:
        count = spike_counts(acc, _per_feature(lay.theta, pop), spec.window, spec.reset, spec.compare)
        if spec.reset == "zero" and lay.act_format.max >= spec.window:   # floor(T / k) lies in [0, T]
            return count, 0
        return lay.act_format.fit(count)
    act = pop.activation
    if act.kind == "bilu" and act.a in (0.0, 1.0) and act.b == 1.0:
        z = acc if act.a == 1.0 else np.maximum(acc, 0)
        value = round_div(z * _per_feature(lay.multiplier, pop), np.left_shift(1, _per_feature(lay.shift, pop)),
                          spec.activation_rounding)
    else:
        # Any other activation: a lookup table from accumulator to activity.
        real = act(acc * _per_feature(lay.s_acc, pop))
        value = round_int(real / lay.s_act, spec.activation_rounding)
    return lay.act_format.fit(value)


def _int_propagate(proj: Projection, pre: Population, post: Population, weight: np.ndarray,
                   a: np.ndarray) -> np.ndarray:
    """``propagate`` with integer weights and activity, exact (float64 BLAS below 2**52, else int64)."""
    bound = float(np.abs(weight).max(initial=0)) * float(np.abs(a).max(initial=0)) * max(a.shape[1], 1)
    if bound < _EXACT:
        value = get_kind(proj.kind).propagate(with_weight(proj, weight.astype(np.float64)), pre, post,
                                              a.astype(np.float64))
        return np.rint(value).astype(np.int64)
    if proj.kind != "dense":
        raise OverflowError(f"{proj.name}: integer products exceed 2**52; only dense projections have an int64 path")
    return a.astype(np.int64) @ weight.astype(np.int64).T


def fit_rate(acc: np.ndarray, fmt: IntFormat | None, window: int) -> tuple[np.ndarray, int]:
    """Apply a register format to the mean per-step value ``acc / window`` of a rate-coded sum."""
    if fmt is None:
        return acc, 0
    if window == 1:
        return fmt.fit(acc)
    mean = acc // window
    fitted, n = fmt.fit(mean)
    if n == 0:
        return acc, 0
    return np.where(fitted == mean, acc, fitted * window), n


_FLOAT_ROUNDING = ("nearest", "nearest_even", "floor", "truncate", "toward_zero")


def _float_exact(qnet: "QuantizedNetwork") -> bool:
    """Every integer of the pass stays below 2**51 in magnitude and no register check can trigger."""
    spec = qnet.spec
    if not _digital(spec):
        return False
    net = qnet.network
    for name in net.order:
        pop = net.populations[name]
        if pop.role == "input":
            continue
        prep = _prepare(qnet, pop)
        worst = worst_state(qnet, pop)
        acc_ok = spec.split_sign or _fits(spec.accumulator, prep.worst_input)   # split: checked on the data
        if not (acc_ok and _fits(spec.current, worst)):
            return False
        if worst * spec.window >= 2.0 ** 51:
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


def _run_float(qnet: "QuantizedNetwork", x: np.ndarray, counters: dict) -> IntegerRun | None:
    """`run_integer` with its integers carried in float64 (exact under `_float_exact`); None if a split
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
        prep = _prepare(qnet, pop)
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
            acc += _per_feature(lay.bias, pop) * window
        counters["accumulator_overflow"][name] = 0
        counters["state_overflow"][name] = 0
        if pop.role == "output":
            acc *= _per_feature(lay.s_acc, pop)
            out = pop.activation(acc)
            continue
        counters["activation_saturated"][name] = _activity_float(qnet, pop, lay, acc)
        acts[name] = acc
    return IntegerRun(out, acts, counters)


def _activity_float(qnet: "QuantizedNetwork", pop: Population, lay: "LayerParams", acc: np.ndarray) -> int:
    """`activity` in place on an integer-valued float64 accumulator; returns the saturation count."""
    spec = qnet.spec
    if spec.spiking:
        theta = _per_feature(lay.theta, pop).astype(np.float64)
        if spec.reset == "zero":
            # floor(T / k), k = floor(theta / I) + 1 (gt) or ceil(theta / I) (ge); I <= 0 gives k = inf.
            acc /= spec.window
            np.floor(acc, out=acc)
            np.maximum(acc, 0.0, out=acc)
            with np.errstate(divide="ignore"):
                np.divide(theta, acc, out=acc)
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
    acc *= _per_feature(lay.multiplier, pop)
    acc /= 2.0 ** _per_feature(lay.shift, pop)
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
