"""Akida 1 and Akida 2 replay akida 2.19.3 recordings bit for bit, and each changed operation shows.

``tests/data/vendor/akida1.npz`` and ``akida2.npz`` hold random dense and convolutional networks
quantised by the project, their integer inputs and every layer's integer output as akida's engine
(software backend) computed it, recorded by ``scripts/check_against_vendor.py --chip akidaN --seed 0
--nets 16 --record ...`` (command, tool version and date in the file's ``meta``). The replay needs only
the project. Hand-derived cases pin what the random networks rarely reach (ties of the output shift,
the potential's wrap); their values were also read from the engine when the arithmetic was probed.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.hardware import ChipSpec, akida, quantize
from neuro_balance.hardware.fixed_point import IntFormat
from neuro_balance.model.conv import conv_net
from neuro_balance.model.network import Population

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts" / "vendor"))
from common import load_chip_module, load_recording  # noqa: E402

DATA = ROOT / "tests" / "data" / "vendor"
pytestmark = pytest.mark.filterwarnings("ignore::neuro_balance.hardware.UnverifiedProfileWarning")


@pytest.fixture(scope="module")
def chip_module():
    return load_chip_module("akida")


@pytest.fixture(scope="module", params=["akida1", "akida2"])
def recording(request):
    return (request.param, *load_recording(DATA / f"{request.param}.npz"))


def layer_values(chip_module, chip, inputs, mutate=None):
    """Every layer's integers from the project on a recorded case, optionally with one operation changed."""
    q = chip_module.qnet_from_case(chip, inputs)
    if mutate is not None:
        mutate(q)
    values = akida.layer_outputs(q, np.asarray(inputs["x"], dtype=np.int64))
    return {f"y{i}": values[p.post] for i, p in enumerate(q.network.projections)}


def mismatched(chip_module, chip, cases, mutate=None) -> list[int]:
    """Indices of recorded networks on which the project differs from the engine."""
    bad = []
    for i, (inputs, vendor) in enumerate(cases):
        ours = layer_values(chip_module, chip, inputs, mutate)
        if any(not np.array_equal(ours[k].astype(np.int64), vendor[k].astype(np.int64)) for k in vendor):
            bad.append(i)
    return bad


def test_recorded_from_akida_2_19_3_at_seed_0(recording):
    chip, meta, cases = recording
    assert (meta["chip"], meta["tool"], meta["tool_version"], meta["seed"]) == (chip, "akida", "2.19.3", 0)
    assert "check_against_vendor.py" in meta["command"] and "--record" in meta["command"]
    assert len(cases) == meta["nets"] and all("error" not in vendor for _, vendor in cases)


def test_recordings_hold_dense_and_conv_nets_with_live_units(recording):
    """Measured on the engine's outputs: convolutions present and hidden units that are not all 0."""
    chip, _, cases = recording
    conv = sum("input_shape" in str(inputs["arch"]) for inputs, _ in cases)
    assert 2 <= conv < len(cases)
    live = [np.mean(vendor[f"y{i}"] != 0) for inputs, vendor in cases for i in range(int(inputs["n_layers"]) - 1)]
    assert np.mean(live) > 0.25


def test_project_replays_every_layer_of_the_engine(recording, chip_module):
    chip, _, cases = recording
    for inputs, vendor in cases:
        ours = chip_module.project_outputs(chip, inputs)
        assert sorted(ours) == sorted(vendor)
        for key in vendor:
            assert np.array_equal(ours[key].astype(np.int64), vendor[key].astype(np.int64)), key


def _spec(**changes):
    def mutate(q):
        q.spec = q.spec.with_(**changes)
    return mutate


def _no_bias_shift(q):
    for lay in q.layers.values():
        lay.akida.bias_shift = np.zeros_like(lay.akida.bias_shift)


AKIDA2_MUTANTS = {
    "round half up -> floor": _spec(activation_rounding="floor"),
    "28-bit saturation -> none": _spec(accumulator=None),
    "28-bit saturation -> wrap": _spec(accumulator=IntFormat(28, overflow="wrap")),
    "bias shift ignored": _no_bias_shift,
    "32-bit post-op saturation -> none": _spec(current=IntFormat(62)),
}


@pytest.mark.parametrize("name", sorted(AKIDA2_MUTANTS))
def test_changing_one_akida2_operation_fails_the_replay(chip_module, name):
    _, cases = load_recording(DATA / "akida2.npz")
    assert mismatched(chip_module, "akida2", cases, AKIDA2_MUTANTS[name])


def test_the_127_cap_is_needed_for_the_akida2_replay(chip_module, monkeypatch):
    _, cases = load_recording(DATA / "akida2.npz")
    assert not mismatched(chip_module, "akida2", cases)
    monkeypatch.setattr(akida, "activity_format",
                        lambda bits, name: IntFormat(bits, bits > 8, name=name))      # int8 -> 0..255
    assert mismatched(chip_module, "akida2", cases)


@pytest.mark.parametrize("rounding", ["nearest", "nearest_even", "floor"])
def test_akida1_ceil_rounding_is_needed_for_the_replay(chip_module, rounding):
    _, cases = load_recording(DATA / "akida1.npz")
    assert mismatched(chip_module, "akida1", cases, _spec(activation_rounding=rounding))


# ------------------------------------------------------------------------------- hand-derived cases
def _pop(n=1):
    return Population("h", n)


TIES = np.array([[-3], [5], [-5], [300]])
TIES_ENGINE = [-1, 3, -2, 127]     # z / 2 rounded half up: -1.5 -> -1, 2.5 -> 3, -2.5 -> -2; 150 -> 127


def _halving(spec):
    one = np.ones(1, dtype=np.int64)
    p = akida.AkidaParams(2, False, 8, bias=0 * one, bias_shift=0 * one, scale=one, shift=-one)
    return akida.requantize(spec, p, TIES, _pop()).ravel().tolist()


@pytest.mark.parametrize("rounding", ["nearest", "nearest_even", "floor", "toward_zero"])
def test_akida2_ties_need_round_half_up(rounding):
    """Ties are rare in the random networks (8-bit scales, shifts of 10 and more): pinned here."""
    spec = ChipSpec.from_profile("akida2")
    assert _halving(spec) == TIES_ENGINE
    assert _halving(spec.with_(activation_rounding=rounding)) != TIES_ENGINE


def test_akida2_clips_before_the_scale_and_saturates_the_post_op_buffer():
    spec = ChipSpec.from_profile("akida2")
    one = np.ones(1, dtype=np.int64)
    # ReLU with max_value 3 << 1: z = 100 clips to 6 before the scale 10 and the shift: 60 / 2 = 30.
    r = akida.AkidaParams(2, True, 8, bias=0 * one, bias_shift=0 * one, scale=10 * one, shift=-one,
                          max_value=3 * one, max_value_shift=one)
    assert akida.requantize(spec, r, np.array([[100], [-7], [1]]), _pop()).ravel().tolist() == [30, 0, 5]
    # int8 bias 100 << 30 (> 2**31) saturates the 32-bit post-op buffer at 2**31 - 1.
    out = akida.AkidaParams(2, False, None, bias=100 * one, bias_shift=30 * one, scale=one, shift=0 * one)
    assert akida.requantize(spec, out, np.array([[127]]), _pop()).ravel().tolist() == [2**31 - 1]
    # The shifted bias saturates on its own first: 127 << 31 -> 2**31 - 1, then acc -363 -> 2**31 - 364
    # (read from the engine; one sum saturated once would give 2**31 - 1).
    out = akida.AkidaParams(2, False, None, bias=127 * one, bias_shift=31 * one, scale=one, shift=0 * one)
    assert akida.requantize(spec, out, np.array([[-363]]), _pop()).ravel().tolist() == [2147483284]


def test_akida1_potential_wraps_at_28_bits():
    """Read from the engine: threshold -(2**24) - 3, act_step 1, 4 bits, acc 0 gives 3, not 15."""
    spec = ChipSpec.from_profile("akida1")
    p = akida.AkidaParams(1, True, 4, threshold=np.array([-(2**24) - 3, -40, 37]), step=np.array([16, 24, 16]))
    # P = (acc - th) << 4 mod 2**28, S = 16 act_step: 48 / 16 = 3; 640 / 24 -> 27 -> 15; -37 -> 0.
    assert akida.requantize(spec, p, np.zeros((1, 3), dtype=np.int64), _pop(3)).tolist() == [[3, 15, 0]]


# ------------------------------------------------------------------------- the conversion's integers
def _nets():
    x = np.random.default_rng(0).random((32, 64))
    dense = nb.mlp([64, 20, 10, 4], seed=1)
    conv = conv_net((1, 8, 8), [{"channels": 4, "kernel": 3, "padding": 1}], dense=[8], n_out=3, seed=2)
    return x, (dense, conv)


@pytest.mark.parametrize("weight_bits,activation_bits", [(4, 4), (8, 8), (4, 8)])
def test_akida2_conversion_stores_integers_the_engine_accepts(weight_bits, activation_bits):
    x, nets = _nets()
    for net in nets:
        q = quantize(net, "akida2", x, weight_bits=weight_bits, activation_bits=activation_bits)
        top = (1 << (weight_bits - 1)) - 1
        assert all(np.abs(w).max() <= top for w in q.integer_weights.values())
        for lay in q.layers.values():
            p = lay.akida
            assert p.bias.min() >= -128 and p.bias.max() <= 127 and 0 <= p.bias_shift.min() <= p.bias_shift.max() <= 31
            assert p.scale.min() >= 0 and p.scale.max() <= 255 and -31 <= p.shift.min() <= p.shift.max() <= 31
            if p.max_value is not None:
                assert p.max_value.max() <= 255 and p.max_value_shift.max() <= 31
        run = q.run(x)
        assert run.activity["in"].min() >= 0 and run.activity["in"].max() <= 127      # int8 inputs
        for name, a in run.activity.items():
            assert a.max() <= (127 if activation_bits == 8 or name == "in" else 15)


@pytest.mark.parametrize("weight_bits", [1, 2, 4])
def test_akida1_conversion_stores_integers_the_engine_accepts(weight_bits):
    x, nets = _nets()
    for net in nets:
        q = quantize(net, "akida1", x, weight_bits=weight_bits)
        lo, hi = {1: (0, 1), 2: (-1, 1), 4: (-7, 7)}[weight_bits]
        for w in q.integer_weights.values():
            assert w.min() >= lo and w.max() <= hi
        for lay in q.layers.values():
            p = lay.akida
            if p.out_bits is not None:
                assert p.step.min() >= 1 and p.step.max() <= 2**24
                assert np.iinfo(np.int32).min <= p.threshold.min() and p.threshold.max() <= np.iinfo(np.int32).max
        run = q.run(x)
        assert run.activity["in"].min() >= 0 and run.activity["in"].max() <= 15          # 4-bit unsigned inputs
        assert max(a.max() for a in run.activity.values()) <= 15


def test_akida_refuses_activations_it_has_no_layer_for():
    x = np.random.default_rng(0).random((16, 6))
    with pytest.raises(nb.ModelError, match="Akida 1 hidden layers are step-wise ReLU"):
        quantize(nb.mlp([6, 5, 2], activation="linear", seed=0), "akida1", x)
    quantize(nb.mlp([6, 5, 2], activation="linear", seed=0), "akida2", x)    # Akida 2: NoActivation
