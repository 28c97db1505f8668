"""Check a chip's emulation against its vendor's own simulator, bit for bit.

Builds ``--nets`` random networks from ``--seed`` the way a user would (a random float network, then the
project's ``quantize`` for the chip, so the integer parameters are the project's), runs them through the
vendor's tool in the tool's own virtual environment and through the project, and compares per-step spikes
and states (graded chips: every layer's integer output) exactly. The last line is::

    MISMATCHED k of n (chip NAME, tool TOOL VERSION)

and the exit status is 0 only when k is 0. The tools' environments are made by
``scripts/vendor_venvs.sh``; ``--vendor-python`` points at another interpreter. ``--record FILE`` also
keeps the inputs and the tool's outputs, with the command, seed and versions, for the test suite to replay
with the project alone (``tests/data/vendor/``)::

    python scripts/check_against_vendor.py --chip xylo_audio2 --seed 101 --nets 20
    python scripts/check_against_vendor.py --chip akida2 --seed 0 --nets 5 --record tests/data/vendor/akida2.npz
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "vendor"))
from common import (CHIPS, REPO, VENDOR_DIR, first_difference, load_chip_module,  # noqa: E402
                    pack_cases, save_npz_atomic, unpack_cases)

DRIVER_TIMEOUT_S = 3600


def run_driver(python: Path, module_name: str, chip: str, cases: list[dict]) -> tuple[list[dict], str]:
    """Run the vendor driver on ``cases`` in its own process; return its outputs and the tool's version."""
    driver = VENDOR_DIR / f"{module_name}_driver.py"
    with tempfile.TemporaryDirectory(prefix="vendor-check-") as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        save_npz_atomic(src, {"chip": np.array(chip), **pack_cases(cases)})
        proc = subprocess.run([str(python), str(driver), str(src), str(dst)], capture_output=True,
                              text=True, timeout=DRIVER_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if proc.returncode != 0 or not dst.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise SystemExit(f"error: the {module_name} driver exited {proc.returncode}:\n  "
                             + "\n  ".join(tail))
        with np.load(dst, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    return unpack_cases(arrays, len(cases)), str(arrays.get("tool_version", "unknown"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--chip", required=True, choices=sorted(CHIPS))
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--nets", type=int, default=20)
    parser.add_argument("--vendor-python", type=Path, default=None,
                        help="the interpreter that has the tool (default .vendor-venvs/<tool>/bin/python)")
    parser.add_argument("--record", type=Path, default=None,
                        help="also write the inputs and the tool's outputs to this .npz")
    args = parser.parse_args(argv)
    if args.nets < 1:
        parser.error(f"--nets must be at least 1, got {args.nets}")

    module_name = CHIPS[args.chip]
    chip_module = load_chip_module(module_name)
    python = args.vendor_python or REPO / ".vendor-venvs" / chip_module.VENV / "bin" / "python"
    if not Path(python).exists():
        print(f"error: no interpreter at {python}: run scripts/vendor_venvs.sh or pass --vendor-python",
              file=sys.stderr)
        return 2

    cases = chip_module.make_cases(args.chip, args.seed, args.nets)
    vendor_outputs, version = run_driver(Path(python), module_name, args.chip, cases)
    mismatched = 0
    for i, (case, vendor) in enumerate(zip(cases, vendor_outputs)):
        if "error" in vendor:
            difference = f"the tool failed: {vendor['error']}"
        else:
            difference = first_difference(vendor, chip_module.project_outputs(args.chip, case))
        if difference is not None:
            mismatched += 1
            print(f"net {i}: {difference}")

    if args.record is not None:
        meta = {"command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
                "chip": args.chip, "seed": args.seed, "nets": args.nets, "tool": chip_module.TOOL,
                "tool_version": version, "python": platform.python_version(),
                "numpy": np.__version__, "date": datetime.date.today().isoformat()}
        args.record.parent.mkdir(parents=True, exist_ok=True)
        save_npz_atomic(args.record, {"meta": np.array(json.dumps(meta)), **pack_cases(cases, "in."),
                                      **pack_cases(vendor_outputs, "out.")})
        print(f"recorded {args.nets} networks to {args.record}")

    print(f"MISMATCHED {mismatched} of {args.nets} (chip {args.chip}, tool {chip_module.TOOL} {version})")
    return 0 if mismatched == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
