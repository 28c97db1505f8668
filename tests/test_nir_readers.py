"""``balance --for FRAMEWORK`` writes a file that framework's own importer reads, with the same spikes as the file
the framework exported (0 differences in every spiking layer), and ``--for nir`` is refused by snnTorch as the
help says.

The frameworks run in their own environment, never in the toolkit's: set ``NB_INTEROP_PYTHON`` to its
Python (how to make it: ``scripts/nir_reader_driver.py``). Skipped otherwise, so the default suite runs none of
them::

    NB_INTEROP_PYTHON=.vendor-venvs/interop/bin/python pytest tests/test_nir_readers.py
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DATA = ROOT / "tests" / "data" / "nir"
PYTHON = os.environ.get("NB_INTEROP_PYTHON")

pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(not PYTHON, reason="NB_INTEROP_PYTHON (a Python with snntorch, sinabs and nir) not set")]


def balanced(src: Path, out: Path, *options: str) -> Path:
    proc = subprocess.run([sys.executable, "-m", "neuro_balance.app.cli", "balance", str(src), *options, "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def read_back(framework: str, reference: Path, candidate: Path) -> dict:
    proc = subprocess.run([PYTHON, str(ROOT / "scripts" / "nir_reader_driver.py"), framework, str(reference),
                           str(candidate)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("framework, src", [("snntorch", "snntorch_mlp.nir"), ("sinabs", "sinabs_cnn.nir")])
@pytest.mark.parametrize("method", [[], ["--method", "sweep", "--scale-grid", "pow2"]])
def test_the_framework_reads_its_balanced_file_with_the_same_spikes(framework, src, method, tmp_path):
    out = balanced(DATA / src, tmp_path / "balanced.nir", "--for", framework, *method)
    report = read_back(framework, DATA / src, out)
    assert "error" not in report, report
    layers = report["layers"]
    assert len(layers) >= 2 and all(layer["spikes"] > 50 for layer in layers.values()), report
    assert {name: layer["differences"] for name, layer in layers.items()} == dict.fromkeys(layers, 0), report


def test_snntorch_refuses_the_default_per_neuron_thresholds_as_the_help_says(tmp_path):
    out = balanced(DATA / "snntorch_mlp.nir", tmp_path / "balanced.nir")  # --for nir: one threshold per neuron
    report = read_back("snntorch", DATA / "snntorch_mlp.nir", out)
    assert report.get("error") == "AssertionError: v_threshold must be same for all neurons", report
