"""Xylo's arithmetic at its limits against xylosim 0.1.3: random integers over the chip's whole ranges, not quantize's.

The project's conversions keep thresholds in the thousands and one decay shift per network, so some of
xylosim's behaviour never shows in ``check_against_vendor.py --chip xylo_audio2``: 31 spikes in a step,
thresholds down to 1, a membrane held at -32768 by ``dash_mem = 0``, every weight shift and dash per
neuron. This script draws ``--nets`` networks of random integers over the registers' full ranges
(``xylo.XyloParams``: int8 weights; every fourth network with ``dash_mem`` 0, ``dash_syn`` 15 and
small negative biases, whose membranes a saturated negative current pins at -32768) and
random rasters of 0..19 spikes per channel and step, runs them through ``xylo_driver.py`` in the
xylosim venv and through ``neuro_balance.hardware.xylo.run``, and prints
``MISMATCHED k of n (xylo stress, tool xylosim VERSION)``::

    python scripts/vendor/xylo_stress.py --seed 1 --nets 40
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

from neuro_balance.hardware import xylo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, first_difference  # noqa: E402

STEPS = 60
OUTPUTS = ("spikes", "v", "isyn", "out_spikes", "v_out", "isyn_out")


def random_case(rng: np.random.Generator, index: int) -> dict[str, np.ndarray]:
    """One network of random integers over the registers' ranges; every fourth with dash_mem 0 (module docstring)."""
    n_in, n_hid, n_out = int(rng.integers(8, 17)), int(rng.integers(4, 13)), int(rng.integers(2, 7))
    top = (300, 3000, 32767)[index % 3]                   # thresholds up to 300, 3000 or the register's top
    case = {"w_in": rng.integers(-128, 128, (n_in, n_hid)) * (rng.random((n_in, n_hid)) < 0.7),
            "w_rec": rng.integers(-128, 128, (n_hid, n_hid)) * (rng.random((n_hid, n_hid)) < 0.5),
            "w_out": rng.integers(-128, 128, (n_hid, n_out)),
            "threshold": rng.integers(1, top, n_hid), "threshold_out": rng.integers(1, 5000, n_out),
            "bias": rng.integers(-2000, 2000, n_hid), "bias_out": rng.integers(-3000, 3000, n_out),
            "dash_mem": rng.integers(0, 16, n_hid), "dash_mem_out": rng.integers(0, 16, n_out),
            "dash_syn": rng.integers(1, 16, n_hid), "dash_syn_out": rng.integers(1, 16, n_out),
            "shift_in": np.array(rng.integers(0, 8)), "shift_rec": np.array(rng.integers(0, 8)),
            "shift_out": np.array(rng.integers(0, 8)),
            "raster": rng.integers(0, 20, (STEPS, n_in)) * (rng.random((STEPS, n_in)) < 0.4)}
    if index % 4 == 0:   # v = isyn + bias each step: a saturated negative current pins v at -32768
        case["bias"] = rng.integers(-100, 0, n_hid)
        case["dash_mem"][:] = 0
        case["dash_syn"][:] = 15
    return case


def project_outputs(case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`xylo.run` on the case's integers."""
    trace = xylo.run(xylo.XyloParams(**{k: v for k, v in case.items() if k != "raster"}), case["raster"])
    return {key: getattr(trace, key) for key in OUTPUTS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--nets", type=int, default=40)
    parser.add_argument("--vendor-python", type=Path, default=REPO / ".vendor-venvs" / "xylosim" / "bin" / "python")
    args = parser.parse_args(argv)
    spec = importlib.util.spec_from_file_location("check_against_vendor", REPO / "scripts" / "check_against_vendor.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    rng = np.random.default_rng(args.seed)
    cases = [random_case(rng, i) for i in range(args.nets)]
    outputs, version = check.run_driver(args.vendor_python, "xylo", "xylo_audio2", cases)
    mismatched = 0
    for i, (case, vendor) in enumerate(zip(cases, outputs)):
        difference = first_difference(vendor, project_outputs(case))
        if difference is not None:
            mismatched += 1
            print(f"net {i}: {difference}")
    print(f"MISMATCHED {mismatched} of {args.nets} (xylo stress, tool xylosim {version})")
    return 0 if mismatched == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
