"""Every exception class lives in errors.py; the projection-kind registry refuses silent overwrites."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import neuro_balance as nb
from neuro_balance import errors
from neuro_balance.model.kinds import KINDS, Dense, register_kind

PACKAGE = Path(nb.__file__).resolve().parent


def _exception_classes():
    """(module, class) of every class in the package whose base is an exception or warning."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and any(
                    ast.unparse(b).split(".")[-1].endswith(("Error", "Exception", "Warning")) for b in node.bases):
                found.append((str(path.relative_to(PACKAGE)), node.name))
    return found


def test_every_exception_class_lives_in_errors_py():
    classes = _exception_classes()
    assert {name for _, name in classes} >= {"ModelError", "ProfileError", "ActivationError"}
    assert [c for c in classes if c[0] != "errors.py"] == []
    assert {name for _, name in classes} == set(errors.__all__)


def test_bad_input_errors_are_value_errors():
    for cls in (errors.ModelError, errors.ActivationError, errors.ProfileError):
        assert issubclass(cls, ValueError)


@dataclasses.dataclass(frozen=True)
class _Other(Dense):
    """A different kind that claims the name "dense"."""

    name: str = "dense"
    note: str = "not the dense kind"


def test_register_kind_refuses_to_overwrite_a_different_kind():
    before = KINDS["dense"]
    with pytest.raises(ValueError, match="'dense' is already registered.*replace=True"):
        register_kind(_Other())
    assert KINDS["dense"] is before


def test_register_kind_accepts_the_same_kind_again_and_replaces_on_request():
    before = KINDS["dense"]
    assert register_kind(Dense()) == before  # a module imported twice registers an equal kind
    try:
        assert register_kind(_Other(), replace=True) is KINDS["dense"]
    finally:
        register_kind(before, replace=True)
    assert KINDS["dense"] is before
