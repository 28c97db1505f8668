"""Geometry of map projections: their options (kernel, stride, padding, groups, pool) and window arithmetic.

The options are plain YAML values (``Projection.options``); `geometry` validates them against the pre
map's shape and returns a `Geometry` that the conv2d and locally connected kinds (`model.conv`) share.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ModelError
from .network import Population

__all__ = ["Geometry", "Pool", "geometry", "POOL_KINDS"]

POOL_KINDS = ("max", "avg", "sum")
_COMMON_KEYS = ("kernel", "stride", "padding", "pool")
_POOL_KEYS = ("kind", "size", "stride")


# ---------------------------------------------------------------------------------------- options
def _ints(value: Any, field: str, minimum: int, count: int = 2) -> tuple[int, ...]:
    """An int or a list of ``count`` ints, each ``>= minimum``, as a tuple of ``count`` ints."""
    items = list(value) if isinstance(value, (list, tuple)) else [value] * count
    if len(items) != count or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                       for v in items):
        raise ModelError(f"{field}: must be an int or a list of {count} ints, got {value!r}")
    if min(items) < minimum:
        raise ModelError(f"{field}: must be >= {minimum}, got {value!r}")
    return tuple(int(v) for v in items)


@dataclass(frozen=True)
class Pool:
    """Pooling applied to the pre map: ``kind`` in ``POOL_KINDS``, window ``size``, ``stride``."""

    kind: str
    size: tuple[int, int]
    stride: tuple[int, int]


@dataclass(frozen=True)
class Geometry:
    """Parsed options of a convolution-like projection and the map sizes they imply.

    ``in_shape`` is the pre map after pooling (before padding); ``out_hw`` the post map's (H, W).
    """

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    groups: int
    pool: Pool | None
    pre_shape: tuple[int, int, int]
    in_shape: tuple[int, int, int]
    out_hw: tuple[int, int]


def _parse_pool(value: Any) -> Pool | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ModelError(f"options.pool: must be a mapping {{kind, size, stride}}, got {value!r}")
    unknown = sorted(set(value) - set(_POOL_KEYS))
    if unknown:
        raise ModelError(f"options.pool: unknown key(s) {unknown}; known: {list(_POOL_KEYS)}")
    kind = value.get("kind")
    if kind not in POOL_KINDS:
        raise ModelError(f"options.pool.kind: must be one of {', '.join(POOL_KINDS)}, got {kind!r}")
    if "size" not in value:
        raise ModelError("options.pool.size: required")
    size = _ints(value["size"], "options.pool.size", 1)
    stride = _ints(value.get("stride", list(size)), "options.pool.stride", 1)
    return Pool(kind, size, stride)


def geometry(options: Mapping[str, Any], pre_shape: Sequence[int], allow_groups: bool = True) -> Geometry:
    """Parse and check the options of a convolution-like projection reading a map of ``pre_shape``.

    Parameters
    ----------
    options : mapping
        ``kernel`` (required), ``stride``, ``padding``, ``groups``, ``pool`` (see the module docstring).
    pre_shape : (C, H, W)
    allow_groups : bool
        False for kinds without channel groups.

    Returns
    -------
    Geometry

    Raises
    ------
    ModelError
        Naming the offending option (``options.kernel``, ``options.pool.size``, ...) and its value.
    """
    known = _COMMON_KEYS + (("groups",) if allow_groups else ())
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ModelError(f"options: unknown key(s) {unknown}; known: {list(known)}")
    if "kernel" not in options:
        raise ModelError("options.kernel: required (an int or [kh, kw])")
    kernel = _ints(options["kernel"], "options.kernel", 1)
    stride = _ints(options.get("stride", 1), "options.stride", 1)
    padding = _ints(options.get("padding", 0), "options.padding", 0)
    groups = _ints(options.get("groups", 1), "options.groups", 1, count=1)[0]
    pool = _parse_pool(options.get("pool"))
    C, H, W = (int(s) for s in pre_shape)
    if pool is not None:
        if H < pool.size[0] or W < pool.size[1]:
            raise ModelError(f"options.pool.size: window {list(pool.size)} is larger than the pre map {H}x{W}")
        H = (H - pool.size[0]) // pool.stride[0] + 1
        W = (W - pool.size[1]) // pool.stride[1] + 1
    Hp, Wp = H + 2 * padding[0], W + 2 * padding[1]
    if Hp < kernel[0] or Wp < kernel[1]:
        raise ModelError(f"options.kernel: {list(kernel)} is larger than the padded input map {Hp}x{Wp}")
    out_hw = ((Hp - kernel[0]) // stride[0] + 1, (Wp - kernel[1]) // stride[1] + 1)
    return Geometry(kernel, stride, padding, groups, pool, (C, int(pre_shape[1]), int(pre_shape[2])),
                    (C, H, W), out_hw)


def _check_maps(kind: str, pre: Population, post: Population) -> None:
    for end, pop in (("pre", pre), ("post", post)):
        if pop.shape is None:
            raise ModelError(f"{end}: population {pop.name!r} is not a feature map; {kind} needs shape [C, H, W]")


def _per_position(pop: Population) -> bool:
    """True when the map's positions are separate units (and that differs from one unit per channel)."""
    return pop.size != pop.shape[0]


def _check_out_hw(geo: Geometry, post: Population) -> None:
    if tuple(post.shape[1:]) != geo.out_hw:
        raise ModelError(f"post.shape: population {post.name!r} has shape {list(post.shape)}, but the "
                         f"projection produces {geo.out_hw[0]}x{geo.out_hw[1]} positions per channel")


# ---------------------------------------------------------------------------------------- maps
def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """View ``(B, C, Ho, Wo, kh, kw)`` of the kernel windows of maps ``x`` of shape ``(B, C, H, W)``."""
    return sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::stride[0], ::stride[1]]


def _fold(windows: np.ndarray, hw: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Adjoint of `_windows`: add window values ``(B, C, Ho, Wo, kh, kw)`` back onto ``(B, C, H, W)``."""
    B, C, Ho, Wo, kh, kw = windows.shape
    out = np.zeros((B, C) + tuple(hw))
    sh, sw = stride
    # One slice per kernel offset (kh*kw of them), each covering every position and channel.
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += windows[:, :, :, :, i, j]
    return out


def _pool_forward(x: np.ndarray, pool: Pool) -> np.ndarray:
    win = _windows(x, pool.size, pool.stride)
    if pool.kind == "max":
        return win.max(axis=(4, 5))
    return win.sum(axis=(4, 5)) if pool.kind == "sum" else win.mean(axis=(4, 5))


def _pool_vjp(x: np.ndarray, pool: Pool, grad: np.ndarray) -> np.ndarray:
    """Gradient wrt the unpooled map ``x`` (max: to the first largest entry of each window)."""
    win = _windows(x, pool.size, pool.stride)
    k = pool.size[0] * pool.size[1]
    if pool.kind == "max":
        flat = win.reshape(win.shape[:4] + (k,))
        mask = np.arange(k) == flat.argmax(axis=4)[..., None]
        spread = (mask * grad[..., None]).reshape(win.shape)
    else:
        spread = np.broadcast_to((grad if pool.kind == "sum" else grad / k)[..., None, None], win.shape)
    return _fold(spread, x.shape[2:], pool.stride)


def _input_map(geo: Geometry, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pre activity as maps ``(B, C, H, W)`` and its pooled, zero-padded version."""
    maps = x.reshape((x.shape[0],) + geo.pre_shape)
    pooled = _pool_forward(maps, geo.pool) if geo.pool is not None else maps
    ph, pw = geo.padding
    padded = np.pad(pooled, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else pooled
    return maps, padded


def _input_vjp(geo: Geometry, maps: np.ndarray, grad_padded: np.ndarray) -> np.ndarray:
    """Gradient wrt the flat pre activity from the gradient wrt the padded, pooled map."""
    ph, pw = geo.padding
    H, W = geo.in_shape[1:]
    grad = grad_padded[:, :, ph:ph + H, pw:pw + W]
    if geo.pool is not None:
        grad = _pool_vjp(maps, geo.pool, grad)
    return grad.reshape(grad.shape[0], -1)


def _padded_hw(geo: Geometry) -> tuple[int, int]:
    return geo.in_shape[1] + 2 * geo.padding[0], geo.in_shape[2] + 2 * geo.padding[1]
