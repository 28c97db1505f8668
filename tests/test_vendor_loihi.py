"""Loihi's stepped network emulation replays whole networks recorded from nengo-loihi 1.1.0's emulator (and
lava-nc 0.10.0's bit-accurate models for Loihi 2) bit for bit, and each changed operation shows.

``tests/data/vendor/loihi1.npz``: random layered networks quantised by the project for loihi1, built
from nengo-loihi's ``LoihiBlock``, ``Synapse``, ``Axon`` and ``SpikeInput`` and stepped by its
``EmulatorInterface``, per-step spikes, ``u`` and ``v`` of every layer (every third network
recurrent); ``loihi2.npz`` likewise from lava's ``Dense`` and ``LIF`` processes
(``Loihi2SimCfg(select_tag="fixed_pt")``). Both were recorded by
``scripts/check_against_vendor.py --chip loihi1|loihi2 --seed 0 --nets N --record ...`` (command,
tool version and date in each file's ``meta``). ``lava_lif_traces.npz`` holds single LIF compartments
driven to lava's arithmetic limits (int32 input wraps, ``u`` beyond one period of ``2**24``, ``v`` at
its limits), recorded by ``scripts/record_lava_traces.py`` on Python 3.10. The replay needs only the
project.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from neuro_balance.errors import ModelError
from neuro_balance.hardware import ChipSpec, neurons

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts" / "vendor"))
from common import load_chip_module, load_recording  # noqa: E402

DATA = ROOT / "tests" / "data" / "vendor"
TOOLS = {"loihi1": ("nengo_loihi", "nengo-loihi", "1.1.0"), "loihi2": ("lava", "lava-nc", "0.10.0")}
CHIPS = [chip for chip in TOOLS if (DATA / f"{chip}.npz").exists()]
MUTANT_CASES = 4        # recorded networks each changed neuron replays (the first ones: every depth, a recurrent one)
pytestmark = pytest.mark.filterwarnings("ignore::neuro_balance.hardware.UnverifiedProfileWarning")


@pytest.fixture(scope="module", params=CHIPS)
def recorded(request):
    chip = request.param
    meta, cases = load_recording(DATA / f"{chip}.npz")
    return chip, load_chip_module(TOOLS[chip][0]), meta, cases


def mismatched(chip, module, cases) -> list[int]:
    """Indices of recorded networks on which the project differs from the tool."""
    bad = []
    for i, (inputs, vendor) in enumerate(cases):
        ours = module.project_outputs(chip, inputs)
        if any(not np.array_equal(np.asarray(ours[k], dtype=np.int64), vendor[k].astype(np.int64)) for k in vendor):
            bad.append(i)
    return bad


def test_both_recordings_are_in_the_repository():
    assert CHIPS == ["loihi1", "loihi2"]


def test_recorded_from_the_tool_at_seed_0(recorded):
    chip, _, meta, cases = recorded
    _, tool, version = TOOLS[chip]
    assert (meta["chip"], meta["tool"], meta["tool_version"], meta["seed"]) == (chip, tool, version, 0)
    assert "check_against_vendor.py" in meta["command"] and "--record" in meta["command"]
    assert len(cases) == meta["nets"] and all("error" not in vendor for _, vendor in cases)


def test_recording_has_deep_and_recurrent_nets_that_spike(recorded):
    """Measured on the tool's outputs alone."""
    _, _, _, cases = recorded
    depths = {int(inputs["n_hidden"]) for inputs, _ in cases}
    assert depths == {1, 2, 3}
    for inputs, vendor in cases:
        assert sum(int(vendor[f"s{i}"].sum()) for i in range(1, int(inputs["n_hidden"]) + 1)) > 0
    deep = [vendor for inputs, vendor in cases if int(inputs["n_hidden"]) >= 2]
    assert sum(int(v["s2"].sum()) for v in deep) >= 20       # spikes routed through a hidden layer
    recurrent = [inputs for inputs, _ in cases[:MUTANT_CASES] if "r1" in inputs]
    assert recurrent and any(int(inputs["ew1"].min()) < 0 for inputs in recurrent)   # a negative exponent


def test_project_replays_the_tool_bit_for_bit(recorded):
    chip, module, _, cases = recorded
    assert mismatched(chip, module, cases) == []


def _changed_spec(monkeypatch, **changes):
    """Make the replay rebuild every network with ChipSpec fields changed."""
    layered = sys.modules["layered"]
    quantized = layered.quantized

    def changed(*args, **overrides):
        qnet = quantized(*args, **overrides)
        qnet.spec = qnet.spec.with_(**changes)
        return qnet
    monkeypatch.setattr(layered, "quantized", changed)


def test_same_step_routing_fails_the_replay(recorded, monkeypatch):
    """The tools deliver a spike one step after it is emitted (delays.connection_steps: 1)."""
    chip, module, _, cases = recorded
    _changed_spec(monkeypatch, spike_delay=0)
    feedforward = [case for case in cases[:MUTANT_CASES] if "r1" not in case[0]]
    assert len(mismatched(chip, module, feedforward)) == len(feedforward)
    recurrent = next(inputs for inputs, _ in cases if "r1" in inputs)
    with pytest.raises(ModelError, match="delay-1 projections"):
        module.project_outputs(chip, recurrent)


def test_changing_the_voltage_floor_fails_the_replay(recorded, monkeypatch):
    """loihi1 clips v at vmin = 0 (nengo-loihi's converted LIF neurons); lava's LIF has no floor."""
    chip, module, _, cases = recorded
    _changed_spec(monkeypatch, v_floor=None if chip == "loihi1" else 0)
    assert len(mismatched(chip, module, cases[:MUTANT_CASES])) >= MUTANT_CASES // 2


def test_where_the_exponent_applies_shows(recorded, monkeypatch):
    """nengo-loihi's emulator adds each stored weight (mantissa << (6 + e)); lava shifts a connection's
    summed mantissas (rounding down). Recurrent layers have a second connection with a smaller exponent."""
    chip, module, _, cases = recorded
    own = ChipSpec.from_profile(chip).exponent_applies_to
    for rule in sorted({"weight", "sum"} - {own}):
        with monkeypatch.context() as m:
            _changed_spec(m, exponent_applies_to=rule)
            assert len(mismatched(chip, module, cases[:MUTANT_CASES])) >= 1, rule


def _floor_decay(x, d, offset=0):
    x = np.asarray(x, dtype=np.int64)
    return (x * (np.int64(4096 - offset) - np.asarray(d, dtype=np.int64))) >> 12


def _no_offset_decay(x, d, offset=0):
    x = np.asarray(x, dtype=np.int64)
    return np.sign(x) * ((np.abs(x) * (np.int64(4096) - np.asarray(d, dtype=np.int64))) >> 12)


@pytest.mark.parametrize("decay", [_floor_decay, _no_offset_decay], ids=["floor", "no_ds_offset"])
def test_a_changed_current_decay_fails_the_replay(recorded, monkeypatch, decay):
    chip, module, _, cases = recorded
    monkeypatch.setattr(neurons, "loihi_decay", decay)
    assert len(mismatched(chip, module, cases[:MUTANT_CASES])) >= 2


def test_recurrent_networks_quantize_where_spikes_arrive_a_step_later():
    """A delay-1 projection is an ordinary connection on Loihi; the static pass settles to its steady state."""
    import neuro_balance as nb
    from neuro_balance.hardware import quantize, simulate
    from neuro_balance.hardware.static_check import FORWARD_SIMULATE_BOUND

    net = nb.rnn(8, [10], 3, seed=0, spectral_radius=0.5)
    x = np.random.default_rng(0).random((32, 8))
    for chip in ("loihi1", "loihi2"):
        q = quantize(net, chip, x)
        stepped = simulate(q, x).output
        ref = nb.hardware.activation_ranges(net, x)[net.output.name]
        gap = np.sqrt(np.mean((q.forward(x) - stepped) ** 2)) / np.sqrt(np.mean(ref ** 2))
        assert gap <= FORWARD_SIMULATE_BOUND["zero"], (chip, gap)
    with pytest.raises(ModelError, match="delay-1 projections"):
        quantize(net, "speck", x)


# ---------------------------------------------------------------- lava's LIF at its arithmetic limits
LAVA_TRACES = DATA / "lava_lif_traces.npz"


@pytest.fixture(scope="module")
def lava_traces():
    with np.load(LAVA_TRACES) as data:
        d = {k: data[k] for k in data.files}
    d["meta"] = json.loads(str(d["meta"]))
    return d


def replay_lava(d, variant="lava"):
    """Step LoihiCUBA through lava's recorded Dense output; returns u, v and spikes per step."""
    nrn = neurons.LoihiCUBA(d["q"].shape[1], du=d["du"], dv=d["dv"], vth_mant=d["vth"], bias_mant=d["bias_mant"],
                            bias_exp=d["bias_exp"], act_shift=neurons.ACT_SHIFT, variant=variant)
    us, vs, ss = [], [], []
    for q in d["q"]:
        ss.append(nrn.step(q))
        us.append(nrn.u.copy())
        vs.append(nrn.v.copy())
    return np.array(us), np.array(vs), np.array(ss)


def lava_differs(d, variant="lava") -> int:
    u, v, s = replay_lava(d, variant)
    return int(np.count_nonzero((u != d["u"]) | (v != d["v"]) | (s != d["s"])))


def test_lava_traces_were_recorded_from_lava_nc_0_10_0(lava_traces):
    meta = lava_traces["meta"]
    assert meta["lava-nc"] == "0.10.0" and meta["python"].startswith("3.10")
    assert "PyLifModelBitAcc" in meta["reference"] and "record_lava_traces.py" in meta["command"]


def test_lava_traces_reach_the_int32_and_24_bit_limits(lava_traces):
    """Measured on lava's outputs alone."""
    d = lava_traces
    q = d["q"].astype(np.int64)
    assert np.count_nonzero(np.abs(q << neurons.ACT_SHIFT) >= 2**31) >= 10       # the shifted input wraps
    assert np.count_nonzero(np.abs(d["u"]) > 3 * 2**23) >= 10                    # u beyond one period
    assert np.count_nonzero(np.abs(d["v"]) == 2**23 - 1) >= 10                   # v at its limits
    assert d["s"].sum() >= 100


def test_lava_variant_replays_lava_bit_for_bit(lava_traces):
    assert lava_differs(lava_traces) == 0


def test_modular_or_unwrapped_arithmetic_diverges_from_lava(lava_traces, monkeypatch):
    """lava wraps u by one period only and computes in int32; nengo-loihi's emulator is another model."""
    d = lava_traces
    assert lava_differs(d, "nengo_loihi") > 0
    with monkeypatch.context() as m:
        m.setattr(neurons, "lava_wrap", lambda x, bits=24: np.mod(x + 2**23 - 1, 2**24) - 2**23 + 1)
        assert lava_differs(d) > 0
    with monkeypatch.context() as m:
        m.setattr(neurons, "wrap32", lambda x: np.asarray(x, dtype=np.int64))
        assert lava_differs(d) > 0
