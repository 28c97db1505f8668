"""Grids from the command line: ``quantize --sweep`` and ``--scheduler`` / ``--workers`` on run and quantize."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parents[1] / "models" / "digits_mlp.yaml"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "neuro_balance.app.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def test_quantize_sweep_prints_one_row_per_width_with_every_variant():
    proc = _cli("quantize", MODEL, "--profile", "speck", "--data", "digits", "--sweep", "native,4", "--seeds", "1")
    assert proc.returncode == 0, proc.stderr
    assert "| profile | weight bits | quantized | balanced |" in proc.stdout
    assert "| speck | native (8-bit) | " in proc.stdout and "| speck | 4 | " in proc.stdout


@pytest.mark.parametrize("args, message", [
    (("--sweep", "4,x"), "expected widths such as native,2,4,8"),
    (("--sweep", "4", "--scheduler", "gpu"), "--scheduler: expected processes or threads"),
])
def test_bad_sweep_arguments_are_usage_errors(args, message):
    proc = _cli("quantize", MODEL, "--profile", "speck", "--data", "digits", *args)
    assert proc.returncode == 2 and message in proc.stderr


def test_sweep_without_labels_says_what_it_needs(tmp_path):
    proc = _cli("quantize", MODEL, "--profile", "speck", "--sweep", "4")
    assert proc.returncode == 1 and "--sweep scores accuracy; give --data" in proc.stderr


@pytest.mark.dask
def test_sweep_on_two_local_workers_prints_the_serial_table():
    if importlib.util.find_spec("distributed") is None:
        pytest.skip("needs the [dask] extra")
    args = ("quantize", MODEL, "--profile", "loihi1", "--data", "digits", "--sweep", "native,4", "--seeds", "2")
    serial, parallel = _cli(*args), _cli(*args, "--workers", "2")
    assert parallel.returncode == 0, parallel.stderr
    assert parallel.stdout == serial.stdout
