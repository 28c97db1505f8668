"""Which tool confirmed which profile value, as `neuro-balance profiles` shows it."""
from __future__ import annotations

import subprocess
import sys

import pytest

from neuro_balance.hardware import list_profiles, load_profile

#: the chips with a vendor check in scripts/check_against_vendor.py, and the tool each is checked against
CHECKED = {"akida1": "akida", "akida2": "akida", "xylo_audio2": "xylosim", "speck": "sinabs",
           "loihi1": "nengo-loihi", "loihi2": "lava-nc"}


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_a_chip_with_a_vendor_check_names_its_tool_and_version(name):
    prof = load_profile(name, warn=False)
    tools = [t for t in prof.verified_against if t.split()[0] == CHECKED[name]]
    assert tools, prof.verified_against
    assert all(len(t.split()) == 2 and t.split()[1][0].isdigit() for t in tools)   # "<tool> <version>"
    assert not set(prof.verified) & set(prof.unverified)                            # never both


def test_verified_fields_are_collected_with_their_dotted_names(tmp_path):
    src = load_profile("float64", warn=False).path.read_text()
    path = tmp_path / "mine.yaml"
    path.write_text(src.replace("name: float64", "name: mine") + "\nspike_payload_bits: {value: 1, verified: tool 1.0}\n")
    prof = load_profile(path, warn=False)
    assert prof.verified == {"spike_payload_bits": "tool 1.0"} and prof.verified_against == ["tool 1.0"]


def test_profiles_lists_the_tool_each_chip_is_verified_against():
    out = subprocess.run([sys.executable, "-m", "neuro_balance.app.cli", "profiles"], capture_output=True,
                         text=True, check=True).stdout
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert set(rows) == set(list_profiles())
    for name, tool in CHECKED.items():
        assert tool in rows[name].split("  ")[-1], rows[name]
