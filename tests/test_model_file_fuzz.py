"""Corrupted model files (YAML and npz) give a one-line `ModelError`, never another exception.

Each example saves a small valid model (dense, convolutional or recurrent), corrupts one thing in it
(truncation, a deleted key, a value of the wrong type or a huge one, an array of the wrong dtype or
shape, a missing or truncated archive) and loads it. The loader must either return a valid network
(some corruptions leave a valid file, e.g. a deleted optional key) or raise a `ModelError` whose
message is one line and names the file; the CLI must exit with code 1 and print no traceback.
"""
from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

import neuro_balance as nb
from neuro_balance.app.cli import main
from neuro_balance.model.conv import conv_net

# Loading a small model takes milliseconds: twice the profile's examples (80 per test in CI, 500 in dev).
FUZZ = settings(max_examples=2 * settings.default.max_examples, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

NETWORKS = {
    "dense": lambda: nb.mlp([4, 5, 3], seed=0),
    "conv": lambda: conv_net((1, 6, 6), [{"channels": 2, "kernel": 3, "padding": 1}], dense=[4], n_out=2, seed=0),
    "recurrent": lambda: nb.rnn(3, [4], 2, seed=0),
}

# values of the wrong type, or absurdly large, for any field
WRONG_VALUES = st.sampled_from([None, True, -1, 0, 2**40, 10**400, 1e308, float("nan"), "", "x" * 300, [], [[]],
                                {}, {"a": 1}, [1, "a"], [2**31, 2**31, 2**31], "in", "out", 0.5, -2.5])


def _paths(doc, prefix=()):
    """Every (path of keys/indices) into a YAML document."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _parent(doc, path):
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def yaml_corruptions(draw, text):
    """A corrupted YAML text: truncated, a byte changed, a key deleted, or a value replaced."""
    how = draw(st.sampled_from(["truncate", "byte", "delete", "replace", "add"]))
    if how == "truncate":
        return text[:draw(st.integers(0, len(text) - 1))]
    if how == "byte":
        i = draw(st.integers(0, len(text) - 1))
        return text[:i] + draw(st.sampled_from(["\0", ":", "-", "[", "{", "'", "\t", "\udc80", "\n  ", "&a", "*a"])) \
            + text[i + 1:]
    doc = yaml.safe_load(text)
    paths = [p for p in _paths(doc) if p]
    path = draw(st.sampled_from(paths))
    parent = _parent(doc, path)
    if how == "delete":
        del parent[path[-1]]
    elif how == "replace":
        parent[path[-1]] = draw(WRONG_VALUES)
    else:
        target = parent if isinstance(parent, dict) else doc
        target[draw(st.sampled_from(["extra", "size", "kernel", "stride", "shape", "delay", "kind", "ground"]))] = \
            draw(WRONG_VALUES)
    return yaml.safe_dump(doc, sort_keys=False)


WRONG_ARRAYS = st.sampled_from([
    np.array(["a", "b"]), np.array([1 + 2j]), np.array([True, False]), np.array(3.0), np.zeros((0,)),
    np.zeros((2, 2, 2, 2, 2)), np.full(3, np.nan), np.full((5, 4), np.inf), np.zeros((1, 10**6), np.float32),
    np.array([b"\x00\x01"]), np.zeros(3, dtype="datetime64[s]"),
])


@st.composite
def npz_corruptions(draw, data: bytes):
    """A corrupted npz archive: truncated, a byte changed, an array deleted, replaced or added."""
    how = draw(st.sampled_from(["truncate", "byte", "delete", "replace", "add", "transpose"]))
    if how == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    if how == "byte":
        i = draw(st.integers(0, len(data) - 1))
        return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]
    with np.load(io.BytesIO(data)) as archive:
        arrays = {k: archive[k] for k in archive.files}
    key = draw(st.sampled_from(sorted(arrays)))
    if how == "delete":
        del arrays[key]
    elif how == "replace":
        arrays[key] = draw(WRONG_ARRAYS)
    elif how == "add":
        arrays["stray"] = draw(WRONG_ARRAYS)
    else:
        arrays[key] = arrays[key].T.copy() if arrays[key].ndim > 1 else arrays[key][None]
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _check_one_line_model_error(path, capsys):
    """Loading ``path`` gives a valid network or a one-line error naming it; the CLI says the same."""
    try:
        net = nb.load_model(path)
    except (nb.ModelError, FileNotFoundError) as err:
        message = str(err)
        # FileNotFoundError only for a weights field that names a file that is not there
        assert isinstance(err, nb.ModelError) or "weights: file" in message, message
        assert "\n" not in message and str(path) in message, message
        assert main(["inspect", str(path)]) == 1
        err_text = capsys.readouterr().err
        assert err_text.count("\n") == 1 and "Traceback" not in err_text, err_text
        return
    x = np.zeros((2, 2, net.input.n_features)) if net.recurrent else np.zeros((2, net.input.n_features))
    assert np.all(np.isfinite(net.forward(x)))  # what loads is a working network


@pytest.mark.parametrize("kind", sorted(NETWORKS))
@FUZZ
@given(data=st.data())
def test_a_corrupted_yaml_file_gives_a_one_line_model_error(kind, data, tmp_path, capsys):
    path = nb.save_model(NETWORKS[kind](), tmp_path / "net.yaml")
    text = data.draw(yaml_corruptions(path.read_text()))
    path.write_text(text, errors="surrogateescape")
    _check_one_line_model_error(path, capsys)


@pytest.mark.parametrize("kind", sorted(NETWORKS))
@FUZZ
@given(data=st.data())
def test_a_corrupted_npz_archive_gives_a_one_line_model_error(kind, data, tmp_path, capsys):
    path = nb.save_model(NETWORKS[kind](), tmp_path / "net.yaml")
    weights = path.with_suffix(".npz")
    weights.write_bytes(data.draw(npz_corruptions(weights.read_bytes())))
    _check_one_line_model_error(path, capsys)


def test_a_missing_or_empty_archive_is_named(tmp_path):
    path = nb.save_model(nb.mlp([3, 2], seed=0), tmp_path / "net.yaml")
    path.with_suffix(".npz").write_bytes(b"")
    with pytest.raises(nb.ModelError, match="net.npz.*not a readable npz archive"):
        nb.load_model(path)
    with zipfile.ZipFile(path.with_suffix(".npz"), "w"):
        pass  # an empty zip: no arrays at all
    with pytest.raises(nb.ModelError, match="has no array"):
        nb.load_model(path)


def test_the_command_line_prints_one_line_and_exits_1_on_a_truncated_file(tmp_path):
    path = nb.save_model(nb.mlp([3, 4, 2], seed=0), tmp_path / "net.yaml")
    path.write_text(path.read_text()[:150])
    run = subprocess.run([sys.executable, "-m", "neuro_balance.app.cli", "inspect", str(path)],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr and str(path) in run.stderr
