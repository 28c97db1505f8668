"""Where the project's bundled folders (``hardware_profiles/``, ``models/``, ``demos/``) are, in a tree or an install.

The folders live once, at the top level of the source tree. A regular (wheel) install carries a copy inside
the package, under ``neuro_balance/_resources/`` (``setup.py`` puts it there); an editable install or a
checkout on ``PYTHONPATH`` reads the top-level folders directly.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["resource_dir"]

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The folder ``name`` (``"hardware_profiles"``, ``"models"`` or ``"demos"``) of this installation.

    Parameters
    ----------
    name : str
        A top-level folder of the project that installs with the package.

    Returns
    -------
    pathlib.Path
        The installed copy if there is one, else the folder of the source tree the package was imported
        from (the source tree's path is returned even when it does not exist, so messages can name it).
    """
    installed = _PACKAGE / "_resources" / name
    return installed if installed.is_dir() else _PACKAGE.parent / name
