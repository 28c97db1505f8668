"""Times and rates given as numbers or Brian2 quantities, checked and turned into float seconds and hertz."""
from __future__ import annotations

import math

__all__ = ["seconds", "hertz"]


def seconds(value, what: str) -> float:
    """A duration given in seconds or as a Brian2 quantity, as float seconds (> 0)."""
    if hasattr(value, "dim"):
        from brian2 import second
        from brian2.units.fundamentalunits import fail_for_dimension_mismatch
        fail_for_dimension_mismatch(value, second, f"{what} must be a time")
        value = float(value / second)
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a positive time, got {value!r}")
    return value


def hertz(value, what: str) -> float:
    """A rate given in Hz or as a Brian2 quantity, as float Hz (>= 0)."""
    if hasattr(value, "dim"):
        from brian2 import Hz
        from brian2.units.fundamentalunits import fail_for_dimension_mismatch
        fail_for_dimension_mismatch(value, Hz, f"{what} must be a rate")
        value = float(value / Hz)
    value = float(value)
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a rate >= 0 Hz, got {value!r}")
    return value
