"""The package's layers (ARCHITECTURE.md): imports point down only, and ``import neuro_balance`` stays light.

Layers, lowest first: errors ← the base modules (seeding, the grid executor, resources) ← ``model`` ← ``balancing`` ←
``learn`` | ``sim`` | ``hardware`` (siblings: none imports another) ← the optional adapters
(``torch``) ← ``app``. The test parses every module's imports with ``ast`` (no code is run), resolves
relative imports, and checks each edge against the ranks below.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neuro_balance"

# rank of each top-level part of the package; a module may import parts of lower rank, and its own part
RANKS = {"errors": 0, "seeding": 1, "grid": 1, "resources": 1,
         "model": 2, "balancing": 3, "learn": 4, "sim": 4, "hardware": 4, "torch": 5, "app": 6}


def _part(module: str) -> str | None:
    """The top-level part of a dotted module name inside the package (None outside it or for the root)."""
    parts = module.split(".")
    if parts[0] != "neuro_balance" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import of the package in one file, relative ones resolved."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    here = list(rel.parts[:-1])  # the package a relative import starts from (for __init__ too)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            found += [(node.lineno, t) for t in targets]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, m) for line, m in found if m.startswith("neuro_balance")]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_only(path):
    rel = path.relative_to(PACKAGE)
    own = rel.parts[0].removesuffix(".py")
    assert own in RANKS or own == "__main__", f"{rel}: part {own!r} has no layer; add it to RANKS and ARCHITECTURE.md"
    if own == "__main__":
        return
    for line, module in _imports(path):
        target = _part(module)
        if target is None or target == own:
            continue
        assert target in RANKS, f"{rel}:{line} imports {module}, which has no layer"
        assert RANKS[target] < RANKS[own], (
            f"{rel}:{line} imports {module}: {own} (layer {RANKS[own]}) may only import lower layers, "
            f"{target} is layer {RANKS[target]}")


def test_every_part_of_the_package_has_a_layer():
    parts = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists()) and p.name != "__init__.py"}
    assert parts - {"__main__", "data"} <= set(RANKS), sorted(parts - set(RANKS))


def test_importing_the_package_stays_light():
    code = ("import sys, neuro_balance; heavy = [m for m in ('brian2', 'torch', 'matplotlib', 'dask', 'nir')"
            " if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import neuro_balance pulled in: {out.stdout.strip()}"
