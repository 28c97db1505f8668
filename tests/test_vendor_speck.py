"""Speck's stepped emulation replays sinabs 3.1.3 recordings bit for bit, and each changed operation shows.

``tests/data/vendor/speck.npz`` holds random networks quantised by the project for speck, their input
rasters and what sinabs's ``DynapcnnNetwork`` computed (per-step spike counts and membranes of every
layer), recorded by ``scripts/check_against_vendor.py --chip speck --seed 0 --nets 12 --record ...``
(the command, tool version and date are in the file's ``meta``). The replay needs only the project.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

from neuro_balance.errors import ProfileError
from neuro_balance.hardware import ChipSpec
from neuro_balance.hardware.neurons import IntegrateFire
from neuro_balance.hardware.profile_schema import validate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts" / "vendor"))
from common import load_chip_module, load_recording  # noqa: E402

RECORDING = ROOT / "tests" / "data" / "vendor" / "speck.npz"
MUTANT_CASES = 6        # recorded networks each changed neuron replays (the first ones: every depth and floor kind)
pytestmark = pytest.mark.filterwarnings("ignore::neuro_balance.hardware.UnverifiedProfileWarning")


@pytest.fixture(scope="module")
def recording():
    return load_recording(RECORDING)


@pytest.fixture(scope="module")
def chip():
    return load_chip_module("sinabs")


def mismatched(chip, cases) -> list[int]:
    """Indices of recorded networks on which the project differs from sinabs."""
    bad = []
    for i, (inputs, vendor) in enumerate(cases):
        ours = chip.project_outputs("speck", inputs)
        if any(not np.array_equal(np.asarray(ours[k], dtype=np.int64), vendor[k].astype(np.int64)) for k in vendor):
            bad.append(i)
    return bad


def test_recorded_from_sinabs_3_1_3_at_seed_0(recording):
    meta, cases = recording
    assert (meta["chip"], meta["tool"], meta["tool_version"], meta["seed"]) == ("speck", "sinabs", "3.1.3", 0)
    assert "check_against_vendor.py" in meta["command"] and "--record" in meta["command"]
    assert len(cases) == meta["nets"] and all("error" not in vendor for _, vendor in cases)


def test_recording_exercises_multi_spikes_the_floor_and_deep_nets(recording):
    """Measured on sinabs's outputs alone: several spikes in one step, membranes held at the floor."""
    _, cases = recording
    multi = floor = 0
    for inputs, vendor in cases:
        for i in range(1, int(inputs["n_hidden"]) + 1):
            multi += int(np.count_nonzero(vendor[f"s{i}"] > 1))
            floor += int(np.count_nonzero((vendor[f"v{i}"] == inputs["min_v_mem"]) & (inputs["min_v_mem"] < 0)))
    assert multi >= 50 and floor >= 100
    assert {int(inputs["n_hidden"]) for inputs, _ in cases} == {1, 2, 3}
    assert {int(inputs["min_v_mem"]) for inputs, _ in cases} >= {0, -32768}


def test_project_replays_sinabs_bit_for_bit(chip, recording):
    _, cases = recording
    assert mismatched(chip, cases) == []


def _single_spike(step):
    def mutant(self, a):
        self.max_spikes = 1
        return step(self, a)
    return mutant


def _strict_threshold(step):
    def mutant(self, a):
        self.compare = "gt"
        return step(self, a)
    return mutant


def _bias_after_spikes(step):
    def mutant(self, a):
        bias, self.bias = self.bias, 0
        spikes = step(self, a)
        self.bias = bias
        self.v = self.v + np.asarray(bias, dtype=np.int64)
        return spikes
    return mutant


@pytest.mark.parametrize("mutate", [_single_spike, _strict_threshold, _bias_after_spikes])
def test_a_changed_neuron_operation_fails_the_replay(chip, recording, monkeypatch, mutate):
    monkeypatch.setattr(IntegrateFire, "step", mutate(IntegrateFire.step))
    _, cases = recording
    assert len(mismatched(chip, cases[:MUTANT_CASES])) >= 2


def test_dropping_the_membrane_floor_fails_the_replay(chip, recording, monkeypatch):
    build = chip.project_qnet

    def no_floor(name, case):
        qnet = build(name, case)
        qnet.spec = qnet.spec.with_(v_floor=None)
        return qnet
    monkeypatch.setattr(chip, "project_qnet", no_floor)
    _, cases = recording
    assert len(mismatched(chip, cases[:MUTANT_CASES])) >= 2


def test_multi_spike_counts_by_hand():
    # theta 10: v = 35 gives floor(35 / 10) = 3 spikes and leaves 5; "gt" needs v > 10 * n: 30 -> 2, v = 10.
    ge = IntegrateFire(1, theta=10, max_spikes=None)
    assert ge.step(np.array([35])).tolist() == [3] and ge.v.tolist() == [5]
    assert ge.step(np.array([4])).tolist() == [0] and ge.v.tolist() == [9]
    gt = IntegrateFire(1, theta=10, compare="gt", max_spikes=None)
    assert gt.step(np.array([30])).tolist() == [2] and gt.v.tolist() == [10]
    capped = IntegrateFire(1, theta=10, max_spikes=2)
    assert capped.step(np.array([35])).tolist() == [2] and capped.v.tolist() == [15]
    zero = IntegrateFire(1, theta=10, reset="zero", max_spikes=None)
    assert zero.step(np.array([35])).tolist() == [3] and zero.v.tolist() == [0]
    with pytest.raises(ValueError, match="max_spikes"):
        IntegrateFire(1, theta=10, max_spikes=0)


def test_speck_profile_emits_unbounded_spikes_per_step_and_loihi_one():
    assert ChipSpec.from_profile("speck").max_spikes_per_step is None
    assert ChipSpec.from_profile("loihi1").max_spikes_per_step == 1


def test_schema_reads_unbounded_and_verified_values():
    base = {"schema_version": 1, "name": "t", "kind": "digital", "sources": ["s"],
            "weights": {"bits": 8, "rounding": "nearest"}, "state": {"v": {"bits": 16, "overflow": "saturate"}}}
    clean, unverified = validate({**base, "neuron": {"model": "if", "max_spikes_per_step": {
        "value": "unbounded", "verified": "sinabs 3.1.3"}}}, "t.yaml")
    assert clean["neuron"]["max_spikes_per_step"] == "unbounded" and unverified == []
    with pytest.raises(ProfileError, match=r"t.yaml: field 'neuron.max_spikes_per_step': .*'many'"):
        validate({**base, "neuron": {"max_spikes_per_step": "many"}}, "t.yaml")
    with pytest.raises(ProfileError, match=r"field 'neuron.compare.verified'"):
        validate({**base, "neuron": {"compare": {"value": "ge", "verified": ""}}}, "t.yaml")
