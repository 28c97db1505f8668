"""Timing shared by the benchmark scripts: every number is the best of several runs in one process."""
from __future__ import annotations

import time
from typing import Any, Callable

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def best_time(fn: Callable[[], Any], repeats: int, clock: str = "wall") -> tuple[float, Any]:
    """Best time (s) of ``repeats`` calls of ``fn``, and the value of the last call.

    ``clock="wall"`` measures elapsed time; ``"cpu"`` the process's CPU time (all its threads), which
    other processes on a loaded machine disturb less.
    """
    timer = CLOCKS[clock]
    best, out = float("inf"), None
    for _ in range(max(repeats, 1)):
        start = timer()
        out = fn()
        best = min(best, timer() - start)
    return best, out
