"""Data sets for training: scikit-learn's bundled digits, MNIST-style IDX files, concentric circles.

Every loader returns a `Dataset` (train/test arrays, float64 inputs in [0, 1], integer labels) and
takes ``train_fraction`` to keep a stratified subset of the training set (S2's 1 % experiments). No
loader downloads anything: digits ship with scikit-learn, IDX files are supplied by the user.

Example
-------
>>> from neuro_balance import datasets
>>> d = datasets.digits()
>>> d.X_train.shape, d.X_test.shape
((1347, 64), (450, 64))
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..seeding import check_random_state

__all__ = ["Dataset", "digits", "idx", "mnist", "circles", "stratified_subset"]

# IDX type codes (http://yann.lecun.com/exdb/mnist/): code -> big-endian numpy dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class Dataset:
    """A classification data set split into training and test parts.

    Attributes
    ----------
    X_train, X_test : ndarray of shape (n, n_features), float64
    y_train, y_test : ndarray of shape (n,), int64
    name : str
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str = "dataset"

    @property
    def n_features(self) -> int:
        """Number of input features."""
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        """Number of classes (largest label + 1)."""
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}: {len(self.y_train)} training / {len(self.y_test)} test samples, "
                f"{self.n_features} features, {self.n_classes} classes)")


def stratified_subset(y: np.ndarray, fraction: float, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Sorted indices of a stratified random subset: ``round(fraction * n_c)`` (at least 1) per class ``c``.

    Parameters
    ----------
    y : ndarray of int
    fraction : float in (0, 1]
    seed : int or numpy.random.Generator
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"train_fraction must be in (0, 1], got {fraction!r}")
    rng = check_random_state(seed)
    keep = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        k = max(1, int(round(fraction * len(members))))
        keep.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(keep))


def _finish(name: str, X_train, y_train, X_test, y_test, train_fraction: float, seed) -> Dataset:
    if train_fraction != 1.0:
        keep = stratified_subset(y_train, train_fraction, seed)
        X_train, y_train = X_train[keep], y_train[keep]
        name = f"{name} ({train_fraction:g} of training)"
    return Dataset(np.ascontiguousarray(X_train, dtype=np.float64), np.asarray(y_train, dtype=np.int64),
                   np.ascontiguousarray(X_test, dtype=np.float64), np.asarray(y_test, dtype=np.int64), name)


def digits(test_size: float = 0.25, seed: int = 0, train_fraction: float = 1.0) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), pixels scaled to [0, 1].

    Parameters
    ----------
    test_size : float in (0, 1)
        Fraction held out for testing (stratified split).
    seed : int
        Drives the split and the training subset.
    train_fraction : float in (0, 1]
        Keep this stratified fraction of the training set (e.g. 0.01).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    data = load_digits()
    X = data.data / 16.0
    X_tr, X_te, y_tr, y_te = train_test_split(X, data.target, test_size=test_size, random_state=seed,
                                              stratify=data.target)
    return _finish("digits", X_tr, y_tr, X_te, y_te, train_fraction, seed)


def idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzip-compressed or raw.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64), the number of dimensions, one big-endian uint32 per dimension, then the data.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    ndarray
        With the file's shape and type (native byte order).

    Raises
    ------
    ModelError
        Naming the file and the field (``magic``, ``type``, ``dimensions``, ``data``) that is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such IDX file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ModelError(f"{path}: gzip data is corrupt ({err})") from None
    if len(raw) < 4:
        raise ModelError(f"{path}: magic: file is {len(raw)} bytes long, an IDX header needs at least 4")
    if raw[0] != 0 or raw[1] != 0:
        raise ModelError(f"{path}: magic: must start with two zero bytes, got {raw[:4].hex()} (not an IDX file)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ModelError(f"{path}: type: unknown IDX type code 0x{code:02X}; known: "
                         + ", ".join(f"0x{c:02X}" for c in _IDX_TYPES))
    if ndim < 1:
        raise ModelError(f"{path}: dimensions: the header declares {ndim} dimensions, need at least 1")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ModelError(f"{path}: dimensions: header declares {ndim} dimensions but the file ends after "
                         f"{len(raw)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ModelError(f"{path}: data: shape {list(shape)} of {dtype.name} needs {expected} bytes, "
                         f"the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise ModelError(f"{directory}: no file {stem} or {stem}.gz (the standard MNIST / Fashion-MNIST names)")


def mnist(directory: str | os.PathLike, train_fraction: float = 1.0, seed: int = 0) -> Dataset:
    """MNIST or Fashion-MNIST from the four standard IDX files in ``directory`` (gzip or raw).

    Files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
    ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``). Images are flattened and scaled to [0, 1].
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelError(f"{directory}: not a directory holding MNIST IDX files")
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        img_path, lab_path = _find(directory, f"{prefix}-images-idx3-ubyte"), _find(directory, f"{prefix}-labels-idx1-ubyte")
        images, labels = idx(img_path), idx(lab_path)
        if images.ndim != 3:
            raise ModelError(f"{img_path}: dimensions: images need 3 dimensions (n, rows, cols), got {images.ndim}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ModelError(f"{lab_path}: dimensions: {labels.shape} labels for {len(images)} images")
        scale = 255.0 if images.dtype == np.uint8 else max(float(images.max()), 1.0)
        parts[split] = (images.reshape(len(images), -1) / scale, labels.astype(np.int64))
    return _finish(directory.name or "mnist", *parts["train"], *parts["test"], train_fraction, seed)


def circles(n_samples: int = 1000, noise: float = 0.1, factor: float = 0.5, test_size: float = 0.25,
            seed: int = 0, train_fraction: float = 1.0) -> Dataset:
    """Two concentric noisy circles (radius 1 and ``factor``), label 1 for the inner one (S2's toy task).

    Inputs are mapped to [0, 1] per coordinate.
    """
    if not 0 < factor < 1:
        raise ValueError(f"factor must be in (0, 1), got {factor!r}")
    if n_samples < 4:
        raise ValueError(f"n_samples must be at least 4, got {n_samples!r}")
    rng = check_random_state(seed)
    y = np.arange(n_samples) % 2
    angle = rng.uniform(0.0, 2 * np.pi, n_samples)
    radius = np.where(y == 1, factor, 1.0)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]) + rng.normal(0.0, noise, (n_samples, 2))
    X = (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))
    perm = rng.permutation(n_samples)
    n_test = int(round(test_size * n_samples))
    test, train = perm[:n_test], perm[n_test:]
    return _finish("circles", X[train], y[train], X[test], y[test], train_fraction, seed)
