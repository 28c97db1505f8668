"""The vendor drivers' file exchange: read the cases of ``in.npz``, run each, write ``out.npz`` (numpy and stdlib only).

Drivers run in the tools' own environments, where the project is not installed; they import this
module after the tool itself (``scripts/vendor/<tool>.py`` files share the tools' names).
"""
from __future__ import annotations

import importlib.metadata
import os
import traceback
from typing import Callable

import numpy as np


def run_cases(src: str, dst: str, distribution: str, run_case: Callable[[dict], dict]) -> None:
    """Run ``run_case`` on every case ``c{i}.*`` of ``src`` and write ``c{i}.{key}`` (or ``c{i}.error``) to ``dst``.

    ``tool_version`` is the installed version of ``distribution``. One failing case does not hide the
    others; ``dst`` is written through a temporary file and a rename.
    """
    with np.load(src, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    cases: dict[int, dict[str, np.ndarray]] = {}
    for name, value in arrays.items():
        head, _, key = name.partition(".")
        if head.startswith("c") and head[1:].isdigit():
            cases.setdefault(int(head[1:]), {})[key] = value
    result = {"tool_version": np.array(importlib.metadata.version(distribution))}
    for i, case in sorted(cases.items()):
        try:
            for key, value in run_case(case).items():
                result[f"c{i}.{key}"] = np.asarray(value)
        except Exception as exc:
            where = traceback.format_exc().strip().splitlines()[-2].strip()
            result[f"c{i}.error"] = np.array(f"{type(exc).__name__}: {exc} ({where})")
    tmp = dst + ".tmp.npz"
    np.savez_compressed(tmp, **result)
    os.replace(tmp, dst)
