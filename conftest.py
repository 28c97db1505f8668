"""Doctest collection: package modules whose optional dependency is not installed are not collected.

``pyproject.toml`` runs ``--doctest-modules`` over ``tests`` and ``neuro_balance``. A module that needs
an extra (``neuro_balance/torch/`` needs torch; dask, NIR and the interop frameworks likewise) is
skipped when importing it fails for the lack of that extra, and only then: a missing module of the
package itself, or of a core dependency, still fails the collection.

``import brian2`` imports ``brian2.tests``, which replaces pytest's ``DoctestModule`` with a subclass
that fails on ``__init__.py`` files; the original is put back before every collection.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from _pytest import doctest as _pytest_doctest

_DOCTEST_MODULE = _pytest_doctest.DoctestModule  # before anything imports brian2

PACKAGE = Path(__file__).resolve().parent / "neuro_balance"

# import names of the packages the optional extras bring (pyproject.toml [project.optional-dependencies])
OPTIONAL = {"torch", "torchvision", "dask", "distributed", "nir", "nirtorch", "nengo", "nengo_loihi", "snntorch",
            "norse", "sinabs", "lava", "rockpool", "spyx"}

collect_ignore = ["setup.py"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def pytest_collectstart(collector) -> None:
    _pytest_doctest.DoctestModule = _DOCTEST_MODULE


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """True for a package module that cannot be imported because an optional dependency is missing."""
    path = Path(collection_path)
    if path.suffix != ".py" or PACKAGE not in path.parents:
        return None
    try:
        importlib.import_module(_module_name(path))
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] in OPTIONAL:
            return True
    finally:
        _pytest_doctest.DoctestModule = _DOCTEST_MODULE
    return None
