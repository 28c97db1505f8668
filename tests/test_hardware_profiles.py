"""Every bundled profile loads; bad profiles are rejected with file, field and value in the message."""
import warnings
from pathlib import Path

import pytest
import yaml

from neuro_balance.errors import ProfileError
from neuro_balance.hardware import ChipSpec, UnverifiedProfileWarning, list_profiles, load_profile
from neuro_balance.hardware.profile import PROFILE_DIR

EXPECTED = {"loihi1", "loihi2", "truenorth", "spinnaker1", "spinnaker2", "brainscales2", "akida1", "akida2",
            "speck", "xylo_audio2", "dynapse2", "float64"}


def test_all_twelve_profiles_are_read_from_the_top_level_folder():
    assert EXPECTED <= set(list_profiles())
    assert PROFILE_DIR == Path(__file__).resolve().parents[1] / "hardware_profiles"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_profile_loads_with_sources_and_warns_only_when_unverified(name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prof = load_profile(name)
    flagged = [w for w in caught if issubclass(w.category, UnverifiedProfileWarning)]
    assert prof.name == name and prof.sources
    assert bool(flagged) == bool(prof.unverified)
    if flagged:
        assert all(field in str(flagged[0].message) for field in prof.unverified)
    assert prof.get("weights.rounding") is not None
    for state in (prof.get("state") or {}).values():
        assert state["overflow"] in ("wrap", "saturate", "error")
    ChipSpec.from_profile(prof)      # every profile normalises for the emulator


def test_loihi_profile_carries_the_documented_numbers():
    prof = load_profile("loihi1", warn=False)
    assert prof.get("state.u.overflow") == "wrap" and prof.get("state.v.overflow") == "saturate"
    assert prof.get("state.v.range") == [-8388607, 8388607]
    assert prof.get("accumulator.bits") == 22 and prof.get("threshold.mantissa_bits") == 17
    assert prof.get("weights.exponent.offset") == 6 and prof.get("neuron.compare") == "gt"
    # nengo-loihi 1.1.0: SynapseConfig.WEIGHT_BITS_MAP = [0..6, 8]; discretize_weights uses np.round
    # (ties to even); converted neurons clip v at vmin = 0; its emulator wraps u + bias.
    assert prof.get("weights.bits_allowed") == [1, 2, 3, 4, 5, 6, 8]
    assert prof.get("weights.rounding") == "nearest_even"
    assert prof.get("conversion_defaults.v_floor") == 0 and prof.get("neuron.variant") == "nengo_loihi"
    assert load_profile("loihi2", warn=False).get("neuron.variant") == "lava"
    with pytest.raises(ProfileError, match=r"loihi1.yaml: field 'weights.bits_allowed': weight_bits=7"):
        ChipSpec.from_profile(prof, weight_bits=7)


def test_unverified_leaf_is_unwrapped_and_listed():
    prof = load_profile("loihi2", warn=False)
    assert prof.get("limits.neurons_per_core") == 8000
    assert "limits.neurons_per_core" in prof.unverified and prof.is_unverified("limits.neurons_per_core")
    assert not prof.is_unverified("state.u.bits")


def write(tmp_path, data, name="chip.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def good():
    return yaml.safe_load((PROFILE_DIR / "speck.yaml").read_text())


def test_a_user_profile_loads_from_a_path(tmp_path):
    data = good()
    data["name"] = "mychip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prof = load_profile(write(tmp_path, data))
    assert prof.name == "mychip" and prof.path == tmp_path / "chip.yaml"


@pytest.mark.parametrize("mutate, field, value", [
    (lambda d: d.pop("sources"), "sources", "None"),
    (lambda d: d.__setitem__("sources", []), "sources", "[]"),
    (lambda d: d["weights"].__setitem__("rounding", "banker"), "weights.rounding", "'banker'"),
    (lambda d: d["weights"].pop("rounding"), "weights.rounding", "None"),
    (lambda d: d["weights"].__setitem__("bits", "eight"), "weights.bits", "'eight'"),
    (lambda d: d["weights"].__setitem__("bits", 0), "weights.bits", "0"),
    (lambda d: d["state"]["v"].__setitem__("overflow", "clamp"), "state.v.overflow", "'clamp'"),
    (lambda d: d["state"]["v"].pop("overflow"), "state.v.overflow", "None"),
    (lambda d: d.__setitem__("schema_version", 2), "schema_version", "2"),
    (lambda d: d.__setitem__("kind", "quantum"), "kind", "'quantum'"),
    (lambda d: d.__setitem__("colour", "red"), "colour", "'red'"),
    (lambda d: d["weights"].__setitem__("bitz", 8), "weights.bitz", "8"),
    (lambda d: d["neuron"].__setitem__("compare", "lt"), "neuron.compare", "'lt'"),
    (lambda d: d["state"]["v"].__setitem__("range", [5, 1]), "state.v.range", "[5, 1]"),
    (lambda d: d.__setitem__("limits", {"neurons_per_core": "UNVERIFIED"}), "limits.neurons_per_core",
     "'UNVERIFIED'"),
    (lambda d: d["weights"].__setitem__("bits", {"value": 8, "unverified": "yes"}), "weights.bits.unverified",
     "'yes'"),
    (lambda d: d["neuron"].__setitem__("variant", "brian"), "neuron.variant", "'brian'"),
    (lambda d: d["neuron"].__setitem__("variant", "lava"), "neuron.variant", "'lava'"),      # speck is not CUBA
    (lambda d: d["conversion_defaults"].__setitem__("max_rate", 1.5), "conversion_defaults.max_rate", "1.5"),
    (lambda d: d["conversion_defaults"].__setitem__("max_rate", 0), "conversion_defaults.max_rate", "0"),
    (lambda d: d["conversion_defaults"].__setitem__("reset", "half"), "conversion_defaults.reset", "'half'"),
    (lambda d: d["conversion_defaults"].__setitem__("v_floor", 5), "conversion_defaults.v_floor", "5"),
    (lambda d: d["conversion_defaults"].__setitem__("v_floor", -40000), "conversion_defaults.v_floor", "-40000"),
])
def test_bad_profiles_are_rejected_naming_file_field_and_value(tmp_path, mutate, field, value):
    data = good()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert str(path) in message and f"'{field}'" in message and value in message


def test_invalid_yaml_unknown_name_and_non_mapping_are_profile_errors(tmp_path):
    with pytest.raises(ProfileError, match=r"chip.yaml: field '\(yaml\)': invalid YAML at line"):
        load_profile(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(ProfileError, match=r"field 'name': no bundled profile called 'loihi9'"):
        load_profile("loihi9")
    with pytest.raises(ProfileError, match=r"field '\(top level\)'"):
        load_profile(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ProfileError, match=r"cannot be read"):
        load_profile(tmp_path / "missing.yaml")


def test_unverified_required_field_is_accepted_with_a_warning(tmp_path):
    data = good()
    data["weights"]["rounding"] = {"value": "nearest", "unverified": True}
    with pytest.warns(UnverifiedProfileWarning, match="weights.rounding"):
        prof = load_profile(write(tmp_path, data))
    assert prof.get("weights.rounding") == "nearest"


def test_weight_bits_outside_the_allowed_set_are_a_profile_error():
    with pytest.raises(ProfileError, match=r"akida1.yaml: field 'weights.bits_allowed': weight_bits=8"):
        ChipSpec.from_profile(load_profile("akida1", warn=False), weight_bits=8)
    with pytest.raises(ProfileError, match=r"truenorth.yaml: field 'weights.axon_types': 4 axon types"):
        ChipSpec.from_profile(load_profile("truenorth", warn=False), weight_bits=6)
    with pytest.raises(ValueError, match="unknown override"):
        ChipSpec.from_profile("loihi1", wieght_bits=4)


def test_a_bundled_name_is_the_bundled_profile_even_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    (tmp_path / "speck").mkdir()                      # e.g. a results folder named after the chip
    monkeypatch.chdir(tmp_path)
    assert load_profile("speck", warn=False).name == "speck"
