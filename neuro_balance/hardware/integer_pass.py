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
of rows (BrainScaleS-2). Register checks that cannot trigger are skipped (`pass_common`), and when
nothing can exceed 2**51 the same integers are computed in float64 (`float_pass`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError
from ..seeding import check_random_state
from ..model.kinds import get_kind
from ..model.network import Population, Projection
from .akida import run_akida
from .calibration import SETTLE_STEPS, with_weight
from .fixed_point import IntFormat, round_div, round_int
from .float_pass import float_exact, run_float
from .pass_common import COUNTERS, EXACT, IntegerRun, digital, fits, new_counters, per_feature, prepare, worst_state

if TYPE_CHECKING:  # pragma: no cover
    from .quantized import LayerParams, QuantizedNetwork

__all__ = ["IntegerRun", "run_integer", "accumulate", "spike_counts", "COUNTERS", "new_counters"]


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
        2**52 and no register can overflow (`float_pass.float_exact`), which gives the same integers with
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
    if qnet.spec.requant is not None:
        return run_akida(qnet, x)
    if qnet.profile.get("neuron.variant") == "xylosim":
        from .xylo_mapping import run_static    # xylo_mapping imports this module

        return run_static(qnet, x)
    spec = qnet.spec
    if float_path is not False and not net.recurrent and float_exact(qnet):
        run = run_float(qnet, x, counters, seed)
        if run is not None:
            return run
        counters = new_counters()
    rng = check_random_state(qnet.seed if seed is None else seed)
    acts: dict[str, np.ndarray] = {}
    inputs, saturated = encode_input(qnet, x)
    acts[net.input.name] = inputs
    # A recurrent network (delay-1 projections) is held at each input for the whole window: its
    # delay-1 inputs start at zero and the pass repeats until the activities settle.
    for name in net.order if net.recurrent else ():
        acts.setdefault(name, np.zeros((x.shape[0], net.populations[name].n_features), dtype=np.int64))
    for _ in range(SETTLE_STEPS if net.recurrent else 1):
        previous = dict(acts)
        counters = new_counters()
        counters["input_saturated"][net.input.name] = saturated
        out = None
        for name in net.order:
            pop = net.populations[name]
            if pop.role == "input":
                continue
            lay = qnet.layers[name]
            acc = accumulate(qnet, pop, acts, counters, rng, spec.window)
            if lay.bias is not None:
                acc = acc + per_feature(lay.bias, pop) * spec.window
            if digital(spec) and fits(spec.current, worst_state(qnet, pop)):
                counters["state_overflow"][name] = 0
            else:
                acc, counters["state_overflow"][name] = fit_rate(acc, spec.current, spec.window)
            if pop.role == "output":
                out = pop.activation(acc * per_feature(lay.s_acc, pop))
                continue
            acts[name], counters["activation_saturated"][name] = activity(qnet, pop, lay, acc)
        if all(np.array_equal(acts[name], previous[name]) for name in previous):
            break
    return IntegerRun(out, acts, counters)


def encode_input(qnet: "QuantizedNetwork", x: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer input activity (spike counts over the window on spiking chips) and how many saturated."""
    return qnet.input_format.fit(round_int(x / qnet.input_scale, "nearest"))


def accumulate(qnet: "QuantizedNetwork", pop: Population, acts: dict[str, np.ndarray], counters: dict,
               rng: np.random.Generator, window: int) -> np.ndarray:
    """Integer input of ``pop`` from the activity ``acts``; register widths apply to ``acc / window``."""
    spec = qnet.spec
    net = qnet.network
    prep = prepare(qnet, pop)
    total = None
    overflow = readout_sat = 0
    for proj in net.incoming(pop.name):
        syn = qnet.synapses[proj.name]
        pre = net.populations[proj.pre]
        a = acts[proj.pre]
        if syn.mismatch is not None:
            # Analog synapses: the currents sum continuously; read at one-LSB resolution (nearest,
            # so that per-step reads in `simulate` do not drift).
            value = get_kind(proj.kind).propagate(with_weight(proj, prep.weights[proj.name]), pre, pop,
                                                  a.astype(np.float64))
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
        elif spec.exponent_applies_to == "sum":
            # lava's Dense shifts the connection's summed mantissas by its exponent (floor), then the
            # neuron shifts the input by the offset (act_shift).
            total_m = _int_propagate(proj, pre, pop, syn.mantissa, a)
            e = per_feature(syn.exponent, pop)
            part = np.where(e >= 0, total_m << np.maximum(e, 0), total_m >> np.maximum(-e, 0)) << spec.exp_offset
        elif prep.exact:
            value = get_kind(proj.kind).propagate(with_weight(proj, prep.weights[proj.name]), pre, pop,
                                                  a.astype(np.float64))
            part = value.astype(np.int64)      # sums of integer products below 2**52: already integers
        else:
            part = _int_propagate(proj, pre, pop, syn.effective, a)
        total = part if total is None else total + part
    if total is None:
        total = np.zeros((next(iter(acts.values())).shape[0], pop.n_features), dtype=np.int64)
    if not spec.split_sign and not (digital(spec) and fits(spec.accumulator, prep.worst_input)):
        total, n = fit_rate(total, spec.accumulator, window)
        overflow += n
    counters["accumulator_overflow"][pop.name] = counters["accumulator_overflow"].get(pop.name, 0) + overflow
    if spec.readout is not None:
        counters["readout_saturated"][pop.name] = counters["readout_saturated"].get(pop.name, 0) + readout_sat
    return total


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
    """Spikes in ``window`` steps of a non-leaky neuron from rest driven at the mean rate ``I = acc / window``.

    ``acc`` is the input summed over the window. Reset by subtraction: every ``theta`` of
    integrated input is one spike, ``floor((acc - [gt]) / theta)``. Reset to zero: the overshoot
    is lost, so a spike every ``k`` steps, ``k = floor(theta / I) + 1`` (``v > theta``) or
    ``ceil(theta / I)`` (``v >= theta``), and ``floor(window / k)`` spikes; ``theta / I`` is the
    exact rational ``theta * window / acc`` (a regular spike train's mean, not rounded to a whole
    input per step). Inputs ``I <= 0`` never fire. For a constant whole input per step this is
    exactly the neuron `simulate` steps (Loihi CUBA with ``du = 4095, dv = 0``, refractory 1;
    integrate-and-fire).

    Examples
    --------
    >>> spike_counts(np.array([0, 300, 2550]), np.array(20), 255, "zero", "gt")
    array([ 0, 14, 85])
    """
    strict = compare == "gt"
    if float(np.abs(acc).max(initial=0)) < EXACT and float(np.max(theta, initial=0)) * window < EXACT:
        # floor(p / q) of integers below 2**52 is exact in float64 (an error needs p / q within
        # p * 2**-53 of an integer, but it is at least 1 / q away), and much faster than int64 division.
        accf = acc.astype(np.float64)
        if reset == "zero":
            with np.errstate(divide="ignore"):
                ratio = (np.asarray(theta, dtype=np.float64) * window) / np.maximum(accf, 0.0)   # inf where acc <= 0
            k = np.floor(ratio) + 1.0 if strict else np.ceil(ratio)
            return np.floor(window / k).astype(np.int64)
        return np.where(accf > 0, np.floor((accf - strict) / theta), 0.0).astype(np.int64)
    if reset == "zero":
        safe = np.maximum(acc, 1)
        tt = np.asarray(theta, dtype=np.int64) * window
        k = tt // safe + 1 if strict else -(-tt // safe)
        return np.where(acc > 0, window // k, 0)
    return np.where(acc > 0, (acc - strict) // theta, 0)


def activity(qnet: "QuantizedNetwork", pop: Population, lay: "LayerParams",
             acc: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer activity of a hidden population from its accumulator, and how many values saturated."""
    spec = qnet.spec
    if spec.spiking:
        count = spike_counts(acc, per_feature(lay.theta, pop), spec.window, spec.reset, spec.compare)
        if spec.reset == "zero" and lay.act_format.max >= spec.window:   # floor(T / k) lies in [0, T]
            return count, 0
        return lay.act_format.fit(count)
    act = pop.activation
    if act.kind == "bilu" and act.a in (0.0, 1.0) and act.b == 1.0:
        z = acc if act.a == 1.0 else np.maximum(acc, 0)
        value = round_div(z * per_feature(lay.multiplier, pop), np.left_shift(1, per_feature(lay.shift, pop)),
                          spec.activation_rounding)
    else:
        # Any other activation: a lookup table from accumulator to activity.
        real = act(acc * per_feature(lay.s_acc, pop))
        value = round_int(real / lay.s_act, spec.activation_rounding)
    return lay.act_format.fit(value)


def _int_propagate(proj: Projection, pre: Population, post: Population, weight: np.ndarray,
                   a: np.ndarray) -> np.ndarray:
    """``propagate`` with integer weights and activity, exact (float64 BLAS below 2**52, else int64)."""
    bound = float(np.abs(weight).max(initial=0)) * float(np.abs(a).max(initial=0)) * max(a.shape[1], 1)
    if bound < EXACT:
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
