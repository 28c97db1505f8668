"""Packaging hook: the top-level ``hardware_profiles/``, ``models/`` and ``demos/`` ship inside a regular install.

Everything else is in ``pyproject.toml``. A wheel gets a copy of each folder under
``neuro_balance/_resources/``, where `neuro_balance.resources.resource_dir` finds it; an editable install
reads the top-level folders themselves, so they stay the single source.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RESOURCES = ("hardware_profiles", "models", "demos")


class BuildPyWithResources(build_py):
    """``build_py`` that also copies the top-level resource folders into the built package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in RESOURCES:
            self.copy_tree(name, str(Path(self.build_lib, "neuro_balance", "_resources", name)))


setup(cmdclass={"build_py": BuildPyWithResources})
