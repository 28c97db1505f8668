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
    buffer = np.empty(sum(a.size for a in arrays), dtype=dtype)
    out, start = [], 0
    for a in arrays:
        out.append(buffer[start:start + a.size].reshape(a.shape))
        start += a.size
    return out
