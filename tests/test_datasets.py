"""Data sets: digits, IDX files (written here), circles, stratified subsets."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from neuro_balance import datasets
from neuro_balance.errors import ModelError


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def test_digits_are_scaled_and_split_stratified():
    d = datasets.digits(test_size=0.25, seed=0)
    assert d.X_train.shape == (1347, 64) and d.X_test.shape == (450, 64)
    assert d.X_train.min() == 0.0 and d.X_train.max() == 1.0
    assert d.n_classes == 10 and d.y_train.dtype == np.int64
    train_share = np.bincount(d.y_train) / len(d.y_train)
    test_share = np.bincount(d.y_test) / len(d.y_test)
    assert np.abs(train_share - test_share).max() < 0.01
    again = datasets.digits(test_size=0.25, seed=0)
    np.testing.assert_array_equal(d.X_train, again.X_train)
    assert not np.array_equal(d.y_train, datasets.digits(seed=1).y_train)


def test_stratified_subset_keeps_every_class_in_proportion():
    y = np.repeat(np.arange(10), np.arange(100, 200, 10))  # 100, 110, ..., 190 per class
    keep = datasets.stratified_subset(y, 0.1, seed=3)
    np.testing.assert_array_equal(np.bincount(y[keep]), np.round(0.1 * np.bincount(y)).astype(int))
    assert len(np.unique(keep)) == len(keep)
    tiny = datasets.stratified_subset(y, 0.001, seed=3)
    np.testing.assert_array_equal(np.bincount(y[tiny]), np.ones(10, dtype=int))  # at least one per class
    with pytest.raises(ValueError, match="train_fraction"):
        datasets.stratified_subset(y, 0.0)


def test_digits_train_fraction_is_a_stratified_one_percent():
    d = datasets.digits(train_fraction=0.01)
    assert len(d.y_train) == 10 and sorted(d.y_train) == list(range(10))
    assert len(d.y_test) == 450


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trips_every_type_raw_and_gzip(tmp_path, code, compress):
    rng = np.random.default_rng(code)
    array = rng.integers(0, 100, size=(3, 4, 5))
    data = _idx_bytes(array, code)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(data) if compress else data)
    loaded = datasets.idx(path)
    assert loaded.shape == (3, 4, 5)
    np.testing.assert_array_equal(loaded, array)
    assert loaded.dtype.isnative


@pytest.mark.parametrize("content, field", [
    (b"\x00", "magic"),
    (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "magic"),
    (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "type"),
    (b"\x00\x00\x08\x00", "dimensions"),
    (b"\x00\x00\x08\x02" + struct.pack(">I", 3), "dimensions"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x00\x00", "data"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x00\x00", "data"),
])
def test_idx_errors_name_the_file_and_field(tmp_path, content, field):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=field) as err:
        datasets.idx(path)
    assert str(path) in str(err.value)


def test_idx_missing_and_corrupt_gzip(tmp_path):
    with pytest.raises(ModelError, match="no such IDX file"):
        datasets.idx(tmp_path / "absent")
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(_idx_bytes(np.arange(10), 0x08))[:-6])
    with pytest.raises(ModelError, match="gzip"):
        datasets.idx(path)


def _write_mnist(directory, n_train=40, n_test=20, compress=True):
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 4, 4))
        labels = np.arange(n) % 10
        files[f"{prefix}-images-idx3-ubyte"] = _idx_bytes(images, 0x08)
        files[f"{prefix}-labels-idx1-ubyte"] = _idx_bytes(labels, 0x08)
    for name, data in files.items():
        if compress:
            (directory / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_directory_loader(tmp_path, compress):
    _write_mnist(tmp_path, compress=compress)
    d = datasets.mnist(tmp_path)
    assert d.X_train.shape == (40, 16) and d.X_test.shape == (20, 16)
    assert 0.0 <= d.X_train.min() and d.X_train.max() <= 1.0
    np.testing.assert_array_equal(d.y_train, np.arange(40) % 10)
    small = datasets.mnist(tmp_path, train_fraction=0.25)
    assert len(small.y_train) == 10 and sorted(small.y_train) == list(range(10))


def test_mnist_reports_missing_files_and_mismatched_labels(tmp_path):
    with pytest.raises(ModelError, match="train-images-idx3-ubyte"):
        datasets.mnist(tmp_path)
    _write_mnist(tmp_path, compress=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.arange(7), 0x08))
    with pytest.raises(ModelError, match="t10k-labels-idx1-ubyte.*dimensions"):
        datasets.mnist(tmp_path)


def test_circles_are_two_rings_in_the_unit_square():
    d = datasets.circles(n_samples=400, noise=0.02, seed=1)
    assert d.X_train.shape == (300, 2) and d.n_classes == 2
    X = np.vstack([d.X_train, d.X_test])
    y = np.concatenate([d.y_train, d.y_test])
    assert X.min() == 0.0 and X.max() == 1.0
    radius = np.linalg.norm(X - X.mean(axis=0), axis=1)
    assert radius[y == 1].max() < radius[y == 0].min()  # low noise: the inner ring lies inside
    with pytest.raises(ValueError, match="factor"):
        datasets.circles(factor=1.5)
