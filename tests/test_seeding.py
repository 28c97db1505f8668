"""One seed helper: every random choice in the package goes through `check_random_state`."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.seeding import check_random_state

PACKAGE = Path(nb.__file__).resolve().parent


def test_same_int_same_draws_and_a_generator_is_passed_through():
    assert np.array_equal(check_random_state(7).random(5), check_random_state(7).random(5))
    rng = np.random.default_rng(3)
    assert check_random_state(rng) is rng
    assert isinstance(check_random_state(None), np.random.Generator)
    assert isinstance(check_random_state(np.int64(4)), np.random.Generator)


@pytest.mark.parametrize("bad", [1.5, "0", True, -1, np.random.RandomState(0), [1, 2]])
def test_a_bad_seed_is_a_value_error_naming_the_value(bad):
    with pytest.raises(ValueError, match="seed must be") as info:
        check_random_state(bad)
    assert repr(bad)[:20] in str(info.value)


def _calls(attr_chain: str):
    """(module, line) of every call whose dotted name ends with ``attr_chain`` in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(attr_chain):
                found.append((str(path.relative_to(PACKAGE)), node.lineno))
    return found


def test_only_the_seeding_module_makes_generators():
    assert {m for m, _ in _calls("default_rng")} <= {"seeding.py"}, _calls("default_rng")


def test_only_the_application_layer_chooses_a_matplotlib_backend():
    assert all(m.startswith("app/") for m, _ in _calls("matplotlib.use")), _calls("matplotlib.use")


def test_a_seed_sequence_gives_the_stream_numpy_gives_it():
    spawned = check_random_state(np.random.SeedSequence([5, 1])).random(4)
    assert np.array_equal(spawned, np.random.default_rng([5, 1]).random(4))
