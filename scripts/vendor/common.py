"""Shared plumbing of the vendor checks: chip modules, the case files exchanged with a driver, recordings.

A chip module ``scripts/vendor/<module>_project.py`` (named so that it never shadows the tool) builds random networks the way a user would (a float net,
then the project's ``quantize``) and runs the project's emulation on them; its driver
``scripts/vendor/<module>_driver.py`` runs the same integer parameters through the vendor's tool, in the
tool's own virtual environment. They exchange flat ``.npz`` files whose keys are ``c{i}.{key}``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np

VENDOR_DIR = Path(__file__).resolve().parent
REPO = VENDOR_DIR.parent.parent

#: chip name -> the module (and driver) that checks it
CHIPS = {
    "akida1": "akida",
    "akida2": "akida",
    "xylo_audio2": "xylo",
    "speck": "sinabs",
    "loihi1": "nengo_loihi",
    "loihi2": "lava",
}


def load_chip_module(module_name: str) -> ModuleType:
    """Import ``scripts/vendor/<module_name>_project.py`` by path (``scripts/`` is not a package)."""
    path = VENDOR_DIR / f"{module_name}_project.py"
    spec = importlib.util.spec_from_file_location(f"vendor_{module_name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pack_cases(cases: list[dict[str, np.ndarray]], prefix: str = "") -> dict[str, np.ndarray]:
    """Flatten a list of per-network dicts into ``{"c{i}.{prefix}{key}": array}``."""
    return {f"c{i}.{prefix}{key}": np.asarray(value)
            for i, case in enumerate(cases) for key, value in case.items()}


def unpack_cases(arrays: dict[str, np.ndarray], n: int, prefix: str = "") -> list[dict[str, np.ndarray]]:
    """Inverse of `pack_cases` for networks ``0..n-1``; a network with no key gives an empty dict."""
    cases: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
    for name, value in arrays.items():
        head, _, key = name.partition(".")
        if not head.startswith("c") or not head[1:].isdigit() or not key.startswith(prefix):
            continue
        i = int(head[1:])
        if i < n:
            cases[i][key[len(prefix):]] = value
    return cases


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_recording(path: str | Path) -> tuple[dict, list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]]:
    """Read a recording written by ``check_against_vendor.py --record``.

    Returns
    -------
    meta : dict
        The command, chip, seed, number of networks, tool, version, Python and date.
    cases : list of (inputs, vendor_outputs)
        Per network, the integer parameters and inputs given to the tool and what the tool returned.
    """
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    n = int(meta["nets"])
    inputs = unpack_cases(arrays, n, "in.")
    outputs = unpack_cases(arrays, n, "out.")
    return meta, list(zip(inputs, outputs))


def first_difference(vendor: dict[str, np.ndarray], project: dict[str, np.ndarray]) -> str | None:
    """Describe the first key on which the project differs from the vendor, or None when all agree."""
    for key in sorted(vendor):
        if key == "error":
            return f"the tool failed: {vendor[key]}"
        if key not in project:
            return f"{key}: the project returns no such output"
        a = np.asarray(vendor[key]).astype(np.int64)
        b = np.asarray(project[key]).astype(np.int64)
        if a.shape != b.shape:
            return f"{key}: shape {b.shape} (project) != {a.shape} (tool)"
        bad = np.argwhere(a != b)
        if len(bad):
            idx = tuple(int(i) for i in bad[0])
            return (f"{key}: {len(bad)} of {a.size} values differ, first at {idx}: "
                    f"project {b[idx]} != tool {a[idx]}")
    if not vendor:
        return "the tool returned nothing"
    return None
