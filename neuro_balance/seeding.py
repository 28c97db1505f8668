"""Turn a ``seed`` argument (an int, None or a numpy Generator) into a `numpy.random.Generator`, in one place."""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_random_state"]


def check_random_state(seed: int | np.random.Generator | np.random.SeedSequence | None) -> np.random.Generator:
    """The generator a ``seed`` argument stands for (scikit-learn's ``check_random_state`` for Generators).

    Parameters
    ----------
    seed : int, None, numpy.random.Generator or numpy.random.SeedSequence
        A non-negative int seeds a fresh generator (same int, same draws); None seeds one from the
        operating system; a Generator is returned as it is, so that callers share its stream; a
        SeedSequence (e.g. ``SeedSequence([seed, k])``: stream ``k`` of one seed) seeds a fresh one.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    ValueError
        For anything else (a float, a string, a bool, a negative int, a legacy ``RandomState``),
        naming the value.

    Examples
    --------
    >>> from neuro_balance.seeding import check_random_state
    >>> check_random_state(0).random() == check_random_state(0).random()
    True
    >>> rng = check_random_state(1)
    >>> check_random_state(rng) is rng
    True
    >>> check_random_state(1.5)
    Traceback (most recent call last):
    ...
    ValueError: seed must be a non-negative int, None or a numpy.random.Generator, not 1.5 (float)
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_)) and int(seed) >= 0:
        return np.random.default_rng(int(seed))
    raise ValueError(f"seed must be a non-negative int, None or a numpy.random.Generator, "
                     f"not {seed!r} ({type(seed).__name__})")
