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
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError, UntrustedFileError
from ..model.regular_file import open_regular
from ..model.safe_npz import NpzArchive
from ..seeding import check_random_state

__all__ = ["Dataset", "digits", "idx", "mnist", "circles", "labelled_npz", "stratified_subset"]

# IDX type codes (http://yann.lecun.com/exdb/mnist/): code -> big-endian numpy dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_IDX_BYTES = 4 * 2**30  # one IDX file's data at most (MNIST's training images: 47 MB)


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
    try:
        handle = open_regular(path)
    except OSError:
        raise ModelError(f"{path}: no such IDX file (or not a regular file)") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        gz = handle.read(2) == b"\x1f\x8b"
        handle.seek(0)
        stream = gzip.GzipFile(fileobj=handle) if gz else handle
        try:
            return _idx_data(stream, path, size, gz)
        except (OSError, EOFError, zlib.error) as err:  # a damaged gzip stream, read as the header asks
            raise ModelError(f"{path}: gzip data is corrupt ({err})") from None


def _idx_data(stream, path: Path, size: int, gz: bool) -> np.ndarray:
    """The array of an IDX stream: its header checked, then exactly the bytes the header declares read."""
    head = stream.read(4)
    if len(head) < 4:
        raise ModelError(f"{path}: magic: file is {len(head)} bytes long, an IDX header needs at least 4")
    if head[0] != 0 or head[1] != 0:
        raise ModelError(f"{path}: magic: must start with two zero bytes, got {head.hex()} (not an IDX file)")
    code, ndim = head[2], head[3]
    if code not in _IDX_TYPES:
        raise ModelError(f"{path}: type: unknown IDX type code 0x{code:02X}; known: "
                         + ", ".join(f"0x{c:02X}" for c in _IDX_TYPES))
    if ndim < 1:
        raise ModelError(f"{path}: dimensions: the header declares {ndim} dimensions, need at least 1")
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ModelError(f"{path}: dimensions: header declares {ndim} dimensions but the file ends after "
                         f"{4 + len(dims)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))
    dtype = np.dtype(_IDX_TYPES[code])
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    # the data must be in the file: as many bytes raw, at most deflate's ~1032:1 compressed
    room = size - 4 - 4 * ndim if not gz else 1032 * size
    if expected > min(room, MAX_IDX_BYTES):
        raise ModelError(f"{path}: data: shape {list(shape)} of {dtype.name} needs {expected} bytes, the file "
                         + (f"holds {room}" if expected <= MAX_IDX_BYTES else f"may hold at most {MAX_IDX_BYTES}"))
    data = stream.read(expected + 1)
    if len(data) != expected:
        held = str(len(data)) if len(data) < expected else "more"
        raise ModelError(f"{path}: data: shape {list(shape)} of {dtype.name} needs {expected} bytes, "
                         f"the file holds {held}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def labelled_npz(path: str | os.PathLike, n_features: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs ``X`` and optional labels ``y`` from an npz archive (e.g. ``quantize --data``), checked.

    The archive is untrusted (`neuro_balance.model.safe_npz.NpzArchive`): only a regular file is
    opened, members are checked before they are decompressed, and members other than ``X`` and
    ``y`` are never read.

    Parameters
    ----------
    path : path-like
    n_features : int, optional
        When given, ``X`` must have this many columns.

    Returns
    -------
    X : ndarray of shape (n, n_features), float64, finite
    y : ndarray of shape (n,), int64, or None

    Raises
    ------
    ModelError
        Naming the file and the field (``X``, ``y``) or archive member that is wrong.
    FileNotFoundError
        No such file.
    """
    try:
        with NpzArchive(path) as archive:
            if "X" not in archive:
                raise ModelError(f"{path}: field 'X': the npz needs an array named X (and optionally y), "
                                 f"it holds {sorted(archive.names)[:10]}")
            X = archive.read("X")
            y = archive.read("y") if "y" in archive else None
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such data file") from None
    except OSError as err:
        raise ModelError(f"{path}: cannot be read ({err.strerror or type(err).__name__})") from None
    except UntrustedFileError as err:
        raise ModelError(f"{path}: {err}") from None
    if X.ndim != 2 or X.shape[0] < 1 or (n_features is not None and X.shape[1] != n_features):
        want = f"(n, {n_features})" if n_features is not None else "(n, n_features)"
        raise ModelError(f"{path}: field 'X': expected shape {want} with n >= 1, got {X.shape}")
    X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        raise ModelError(f"{path}: field 'X': contains NaN or Inf ({int(np.sum(~np.isfinite(X)))} values)")
    if y is not None:
        if y.shape != (len(X),):
            raise ModelError(f"{path}: field 'y': expected shape ({len(X)},), one label per row of X, got {y.shape}")
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)) or np.any(y < 0):
            raise ModelError(f"{path}: field 'y': labels must be whole numbers >= 0")
        y = y.astype(np.int64)
    return X, y


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
