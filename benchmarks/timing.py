"""Timing shared by the benchmark scripts: every number is the best of several runs in one process."""
from __future__ import annotations

import time
from typing import Any, Callable


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time (s) of ``repeats`` calls of ``fn``, and the value of the last call."""
    best, out = float("inf"), None
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out
