"""Many arrays in one allocation: large outputs written once, without a page fault every few kilobytes."""
from __future__ import annotations

import numpy as np

__all__ = ["empty_like_all"]


def empty_like_all(arrays: list[np.ndarray], dtype=np.float64) -> list[np.ndarray]:
    """Empty arrays of ``dtype`` shaped like each of ``arrays``, views of one buffer.

    A fresh allocation per array is mapped by the system page by page on its first write, which costs
    more than writing it; one large allocation is mapped once (in huge pages where the system allows)
    and is reused by the allocator when it is freed.

    Parameters
    ----------
    arrays : list of ndarray
        Only their shapes are used.
    dtype : numpy dtype

    Returns
    -------
    list of ndarray
        One array per entry of ``arrays``; they share one base, so the memory is released with the last.
    """
    shapes = [a.shape for a in arrays]
    sizes = [int(np.prod(s)) for s in shapes]
    buffer = np.empty(sum(sizes), dtype=dtype)
    ends = np.cumsum([0] + sizes)
    return [buffer[start:end].reshape(shape) for shape, start, end in zip(shapes, ends[:-1], ends[1:])]
