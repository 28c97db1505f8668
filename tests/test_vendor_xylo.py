"""Xylo against xylosim 0.1.3: the recorded vendor outputs replayed by the project alone, and mutants that must fail.

``tests/data/vendor/xylo_audio2.npz`` was written by
``python scripts/check_against_vendor.py --chip xylo_audio2 --seed 0 --nets 6 --record ...``: six random
recurrent networks quantised by the project, their input rasters (rate-coded, multi-spike and saturating
steps) and what xylosim computed per step, with rockpool 3.1.0 installed beside it: for the networks
with one scale per network, the integer weights of rockpool's ``global_quantize`` (``rockpool_w_*``).
Neither tool is needed here.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.hardware import xylo
from neuro_balance.hardware.xylo_mapping import xylo_params

REPO = Path(__file__).resolve().parent.parent
RECORDING = REPO / "tests" / "data" / "vendor" / "xylo_audio2.npz"


def _load_common():
    spec = importlib.util.spec_from_file_location("vendor_common", REPO / "scripts" / "vendor" / "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _load_common()
chip = common.load_chip_module("xylo")


@pytest.fixture(scope="module")
def recording():
    return common.load_recording(RECORDING)


def _mismatches(cases) -> list[str]:
    out = []
    for i, (inputs, vendor) in enumerate(cases):
        problem = common.first_difference(vendor, chip.project_outputs("xylo_audio2", inputs))
        if problem:
            out.append(f"net {i}: {problem}")
    return out


def test_the_recording_is_xylosim_0_1_3_on_saturating_multi_spike_rasters(recording):
    meta, cases = recording
    assert (meta["chip"], meta["tool"], meta["tool_version"], meta["seed"]) == ("xylo_audio2", "xylosim", "0.1.3", 0)
    assert len(cases) == meta["nets"] == 6
    vendor = {key: np.concatenate([out[key].ravel() for _, out in cases]) for key in chip.OUTPUTS}
    rasters = np.concatenate([inp["raster"].ravel() for inp, _ in cases])
    # What the replay covers: inputs above the cap of 15, several spikes in a step, membranes at both
    # int16 limits, readouts driven past their one spike per step, recurrent weights, slow currents and
    # the dash_mem = 0 networks. (Saturation of isyn itself happens before its decay, which xylosim does
    # not record; the mutant "one saturation per step" shows the replay sees it.)
    assert rasters.max() > xylo.INPUT_CAP
    assert vendor["spikes"].max() > 5 and np.mean(vendor["spikes"] > 1) > 0.01
    assert vendor["v"].min() == xylo.STATE_MIN and vendor["out_spikes"].max() == 1
    assert any(np.any(out["v_out"] >= inp["threshold_out"]) for inp, out in cases)   # capped at one spike
    assert {int(inp["dash_mem"][0]) for inp, _ in cases} >= {0, 15}
    assert {int(inp["dash_syn"][0]) for inp, _ in cases} > {1}
    assert all(np.any(inp["w_rec"]) for inp, _ in cases)


def test_the_project_replays_xylosim_bit_for_bit(recording):
    _, cases = recording
    assert _mismatches(cases) == []


def test_the_project_still_quantises_the_recorded_networks_to_the_recorded_integers(recording):
    # The replay compares the recorded integers; regenerating the cases ties them to today's quantize, so the
    # project's weights still equal rockpool's global_quantize (recorded as rockpool_w_* for 4 networks).
    _, cases = recording
    assert sum("rockpool_w_in" in out for _, out in cases) == 4
    for i, (fresh, (recorded, _)) in enumerate(zip(chip.make_cases("xylo_audio2", 0, len(cases)), cases)):
        assert sorted(fresh) == sorted(recorded), i
        for key in recorded:
            assert np.array_equal(fresh[key], recorded[key]), (i, key)


def _one_neuron(**changes) -> xylo.XyloParams:
    params = dict(w_in=[[127]], w_rec=[[0]], w_out=[[0]], threshold=[100], threshold_out=[1], bias=[0], bias_out=[0],
                  dash_mem=[15], dash_mem_out=[15], dash_syn=[1], dash_syn_out=[1], shift_in=7)
    return xylo.XyloParams(**{**params, **changes})


def _hand_derived() -> list[str]:
    """Traces worked out by hand from xylosim's source (XyloIAFNeuron.cpp, XyloLayer.cpp); returns what differs."""
    failed = []
    # Cap of 31 spikes: 2 input spikes of 127 << 7 = 16256 give isyn 32512, halved by its decay (dash_syn 1) to
    # 16256 = v; v >= 100 allows 162 spikes, the cap keeps 31 and v = 16256 - 3100 = 13156. Next step: isyn
    # 16256 - 8128 = 8128, v = 13156 - 1 (leak: 13156 >> 15 = 0 -> 1) + 8128 = 21283: 31 spikes, v = 18183.
    trace = xylo.run(_one_neuron(), np.array([[2], [0]]))
    if trace.spikes[:, 0].tolist() != [31, 31] or trace.v[:, 0].tolist() != [13156, 18183]:
        failed.append("hidden cap")
    # dash_mem = 0, dash_syn = 15, bias -1, weights -128 << 7 = -16384 and 127 << 7 = 16256. Step 0: 4 spikes
    # of -16384 saturate isyn at -32768, its decay (-32768 >> 15 = -1) leaves -32767; dv = 0 - 32767 - 1, so
    # v = -32768. Step 1: 4 spikes of 16256 give isyn 32257, decayed by 1 to 32256; -dec(v, 0) = -(-32768)
    # wraps to -32768 in int16, dv = -32768 + 32256 - 1 = -513 and v = sat(-32768 - 513) stays at -32768
    # (without the wrap it would be -32768 + sat(32768 + 32256) - 1 = -2).
    params = _one_neuron(w_in=[[-128], [127]], bias=[-1], dash_mem=[0], dash_syn=[15], threshold=[30000])
    trace = xylo.run(params, np.array([[4, 0], [0, 4]]))
    if trace.isyn[:, 0].tolist() != [-32767, 32256] or trace.v[:, 0].tolist() != [-32768, -32768]:
        failed.append("dash_mem 0 wrap")
    # Readout (127 << 7 per hidden spike, threshold 1000): the 31 spikes of step 0 arrive at step 1 (nothing at
    # step 0), isyn_out = sat(31 * 16256) = 32767, decays to 32767 - 16383 = 16384 = v_out: 16 thresholds, but
    # one spike, v_out = 15384. Step 2: 31 more spikes, isyn_out 16384 again, v_out = 15384 - 1 + 16384 = 31767,
    # one spike, 30767.
    trace = xylo.run(_one_neuron(w_out=[[127]], shift_out=7, threshold_out=[1000]), np.array([[2], [0], [0]]))
    if (trace.out_spikes[:, 0].tolist(), trace.isyn_out[:, 0].tolist(), trace.v_out[:, 0].tolist()) != \
            ([0, 1, 1], [0, 16384, 16384], [0, 15384, 30767]):
        failed.append("readout")
    return failed


def test_hand_derived_traces_of_the_caps_the_wrap_and_the_readout_delay():
    assert _hand_derived() == []


def _decay_toward_zero(x, dash):
    d = np.sign(x) * (np.abs(x) >> dash)
    return np.where(d == 0, np.sign(x), d)


def _decay_first(isyn, counts, weights, dash_syn):
    # the current decays before the step's spikes arrive (xylosim: after)
    return xylo._deliver(isyn - xylo.decay(isyn, dash_syn), counts, weights)


def _saturate_once(isyn, counts, weights):
    # one saturation of the step's whole sum instead of one per spike
    return xylo._sat(isyn + (counts @ weights).astype(np.int64)), 0


#: mutant -> (what it replaces in hardware.xylo, the replacement, what must catch it)
MUTANTS = {
    "the shift rounds toward zero": ("decay", _decay_toward_zero, "replay"),
    "no minimum leak of one LSB": ("decay", lambda x, dash: x >> dash, "replay"),
    "the current decays before the input arrives": ("_synapse", _decay_first, "replay"),
    "one saturation per step": ("_deliver", _saturate_once, "replay"),
    "input cap 16": ("INPUT_CAP", 16, "replay"),
    "readout cap 2": ("READOUT_CAP", 2, "replay"),
    "two-step delay": ("SPIKE_DELAY", 2, "replay"),
    "hidden cap 30": ("HIDDEN_CAP", 30, "hidden cap"),
    "-dec(v) does not wrap at -32768": ("_wrap16", lambda x: x, "dash_mem 0 wrap"),
    "readout cap 2 (hand)": ("READOUT_CAP", 2, "readout"),
    "two-step delay (hand)": ("SPIKE_DELAY", 2, "readout"),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_changing_one_operation_of_the_neuron_breaks_the_replay(recording, monkeypatch, mutant):
    name, value, where = MUTANTS[mutant]
    monkeypatch.setattr(xylo, name, value)
    _, cases = recording
    if where == "replay":
        assert _mismatches(cases), f"{mutant}: the recording cannot tell it from xylosim"
    else:    # behaviour the project's conversions never reach: the hand-derived traces catch it
        assert where in _hand_derived(), f"{mutant}: the hand-derived traces cannot tell it from xylosim"


def test_decay_is_a_floor_shift_with_a_one_lsb_minimum():
    # xylosim decay(): v >> dash (arithmetic, rounds down), or sign(v) where that is 0. Hand values:
    # 100 >> 4 = 6; -100 >> 4 = -7 (floor); 3 >> 4 = 0 -> 1; -3 >> 4 = -1; 0 -> 0.
    x = np.array([100, -100, 3, -3, 0, -32768])
    assert xylo.decay(x, np.array(4)).tolist() == [6, -7, 1, -1, 0, -2048]
    assert xylo.decay(x, np.array(0)).tolist() == x.tolist()


def test_one_spike_through_a_slow_membrane_leaks_one_lsb_per_step():
    # vendors.md: one input spike of weight 100, dash_syn 1, dash_mem 15 gives v = 50, 74, 86, ... then 95.
    # By hand: isyn = 100 - 50 = 50, then 25, 13, 7, 4, 2, 1, 0; v adds isyn and loses 1 (v >> 15 = 0 -> 1)
    # from the second step on: 50, 74, 86, 92, 95, 96, 96, 95, 94.
    params = xylo.XyloParams(w_in=[[100]], w_rec=[[0]], w_out=[[0]], threshold=[30000], threshold_out=[1],
                             bias=[0], bias_out=[0], dash_mem=[15], dash_mem_out=[15], dash_syn=[1], dash_syn_out=[1])
    raster = np.zeros((9, 1), dtype=int)
    raster[0] = 1
    trace = xylo.run(params, raster)
    assert trace.isyn[:, 0].tolist() == [50, 25, 13, 7, 4, 2, 1, 0, 0]
    assert trace.v[:, 0].tolist() == [50, 74, 86, 92, 95, 96, 96, 95, 94]


def test_parameters_outside_the_chip_registers_are_refused():
    good = dict(w_in=[[1]], w_rec=[[0]], w_out=[[0]], threshold=[10], threshold_out=[10], bias=[0], bias_out=[0],
                dash_mem=[4], dash_mem_out=[4], dash_syn=[1], dash_syn_out=[1])
    for key, bad in (("w_in", [[128]]), ("threshold", [0]), ("dash_syn", [0]), ("dash_mem", [16])):
        with pytest.raises(ValueError, match=key):
            xylo.XyloParams(**{**good, key: bad})
    with pytest.raises(ValueError, match="shift_in"):
        xylo.XyloParams(**good, shift_in=8)
    with pytest.raises(ValueError, match="0..255"):
        xylo.run(xylo.XyloParams(**good), np.array([[256]]))


def test_rockpool_global_quantize_rules_on_a_small_network():
    # rockpool 3.1 global_quantize by hand: one scale 127 / max(|w_in|, |w_rec|, |bias|) for the hidden
    # layer, with float weights per spike W * s_pre, thresholds s and biases b / T per step; np.round
    # (half to even); here the thresholds then get the weight shift k (largest keeping them <= 4096).
    net = nb.rnn(3, [4], 2, seed=3, spectral_radius=0.5)
    x = np.random.default_rng(0).random((32, 3))
    q = nb.hardware.quantize(net, "xylo_audio2", x, check=False)
    scales = q.activation_scales
    T = q.spec.window
    w_in, w_rec = net.projection("in->h1").weight, net.projection("h1->h1").weight
    top = max(np.abs(w_in).max() * scales["in"], np.abs(w_rec).max() * scales["h1"],
              np.abs(net.populations["h1"].bias).max() / T)
    S = 127 / top
    k = max(j for j in range(8) if scales["h1"] * S * 2 ** j <= 4096)
    assert q.synapses["in->h1"].exponent[0] == q.synapses["h1->h1"].exponent[0] == k
    assert np.array_equal(q.integer_weights["in->h1"], np.round(w_in * scales["in"] * S))
    assert np.array_equal(q.integer_weights["h1->h1"], np.round(w_rec * scales["h1"] * S))
    assert np.array_equal(q.layers["h1"].theta, np.round(np.full(4, scales["h1"] * S * 2 ** k)))
    assert np.array_equal(q.layers["h1"].bias, np.round(net.populations["h1"].bias / T * S * 2 ** k))
    w_out = net.projection("h1->out").weight
    S_out = 127 / max(np.abs(w_out).max() * scales["h1"], np.abs(net.populations["out"].bias).max() / T)
    assert np.array_equal(q.integer_weights["h1->out"], np.round(w_out * scales["h1"] * S_out))
    params = xylo_params(q)
    assert np.array_equal(params.w_in, q.integer_weights["in->h1"].T) and params.shift_in == params.shift_rec == k
    assert params.dash_syn.tolist() == [1] * 4 and params.dash_mem.tolist() == [15] * 4


def test_static_model_stays_within_the_bound_of_the_stepped_run_on_a_recurrent_net():
    net = nb.rnn(8, [10], 3, seed=4, spectral_radius=0.5)
    rng = np.random.default_rng(4)
    cal, x = rng.random((200, 8)), rng.random((40, 8))
    q = nb.hardware.quantize(net, "xylo_audio2", cal, check=False)
    run = nb.hardware.simulate(q, x)
    ref = np.sqrt(np.mean(q.forward(x) ** 2))
    assert np.sqrt(np.mean((q.forward(x) - run.output) ** 2)) / ref <= 0.02
    assert run.counts["h1"].max() > 0 and set(run.overflow) == {"hidden", "readout"}


def test_convolutions_run_as_their_dense_integer_matrices_and_pooling_by_max_is_refused():
    from neuro_balance.model.conv import conv_net

    net = conv_net((1, 6, 6), [{"channels": 3, "kernel": 3}], dense=[6], n_out=3, seed=2)
    x = np.random.default_rng(2).random((30, 36))
    q = nb.hardware.quantize(net, "xylo_audio2", x, check=False)
    params = xylo_params(q)
    # conv h1[c, r, s] <- in[0, r + i, s + j] * k[c, 0, i, j]: the dense matrix holds each kernel integer at
    # its (input pixel, output position) pairs, and zeros elsewhere.
    kernel = q.integer_weights["in->h1"].reshape(3, 3, 3)
    assert params.w_in.shape == (36, 3 * 4 * 4 + 6)
    for c, r, s, i, j in ((0, 0, 0, 0, 0), (2, 3, 1, 2, 1), (1, 2, 2, 1, 2)):
        assert params.w_in[(r + i) * 6 + (s + j), c * 16 + r * 4 + s] == kernel[c, i, j]
    assert np.count_nonzero(params.w_in[:, :48]) <= 3 * 16 * 9
    run = nb.hardware.simulate(q, x)
    ref = np.sqrt(np.mean(q.forward(x) ** 2))
    assert np.sqrt(np.mean((q.forward(x) - run.output) ** 2)) / ref <= 0.02
    pooled = conv_net((1, 6, 6), [{"channels": 2, "kernel": 3, "pool": {"kind": "max", "size": 2}}], n_out=2, seed=0)
    q = nb.hardware.quantize(pooled, "xylo_audio2", x, check=False)
    with pytest.raises(nb.ModelError, match="max-pools"):
        nb.hardware.simulate(q, x)


def test_the_static_model_carries_the_membrane_leak(monkeypatch):
    # A faster membrane (dash_mem 5: v loses v >> 5 per step) loses several percent of the output: the static
    # model stays within the bound of the stepped run with its leak term and leaves it without.
    import copy
    import dataclasses

    from neuro_balance.hardware import load_profile, xylo_mapping

    base = load_profile("xylo_audio2", warn=False)
    data = copy.deepcopy(base.data)
    data["conversion_defaults"]["dash_mem"] = 5
    net = nb.mlp([12, 10, 3], seed=1)
    rng = np.random.default_rng(1)
    cal, x = rng.random((200, 12)), rng.random((40, 12))
    q = nb.hardware.quantize(net, dataclasses.replace(base, data=data), cal, check=False)
    stepped = nb.hardware.simulate(q, x).output
    ref = np.sqrt(np.mean(net.forward(x) ** 2))
    assert np.sqrt(np.mean((q.forward(x) - stepped) ** 2)) / ref <= 0.02
    monkeypatch.setattr(xylo_mapping, "window_leak", lambda theta, dash_mem, window: 0)
    assert np.sqrt(np.mean((q.forward(x) - stepped) ** 2)) / ref > 0.03


def test_connections_xylo_does_not_have_are_refused_naming_the_projection():
    x = np.random.default_rng(0).random((10, 4))
    pops = [nb.Population("in", 4, role="input", activation="linear"), nb.Population("h", 3),
            nb.Population("out", 2, role="output", activation="linear")]
    w = np.ones
    skip = nb.Network(pops, [nb.Projection("in", "h", w((3, 4))), nb.Projection("h", "out", w((2, 3))),
                             nb.Projection("in", "out", w((2, 4)))])
    with pytest.raises(nb.ModelError, match="'in->out'.*readout"):
        nb.hardware.quantize(skip, "xylo_audio2", x, check=False)
    late = nb.Network(pops, [nb.Projection("in", "h", w((3, 4)), delay=1), nb.Projection("h", "out", w((2, 3)))])
    with pytest.raises(nb.ModelError, match="'in->h'.*input spikes"):
        nb.hardware.quantize(late, "xylo_audio2", x, check=False)
