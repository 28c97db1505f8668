"""Vectorised integer formats: rounding, overflow and shared exponents, as neuromorphic chips use them.

Everything works on whole numpy arrays of int64 (values fit comfortably: chip states are at most 32
bits wide). Three families of operation:

* **rounding** of reals or of integer quotients to integers, in the modes chips and their tool chains
  use (each profile cites the source of its modes):

  ==============  ===================================================  ==========================
  mode            rule                                                 used by
  ==============  ===================================================  ==========================
  nearest         half away from zero: ``sign(x) * floor(|x| + 1/2)``  hardware round-half-up
  nearest_even    half to even (banker's): ``numpy.rint``              nengo-loihi, sPyNNaker rint
  half_up         half towards plus infinity: ``floor(x + 1/2)``       Akida 2 output shift
  ceil            towards plus infinity: ``ceil(x)``                   Akida 1 activation step
  truncate/floor  towards minus infinity: ``floor(x)``                 lava ``(w >> n) << n``
  toward_zero     ``trunc(x)``                                         Loihi decay, B2L weights
  stochastic      ``floor(x + U)`` with ``U ~ Uniform[0, 1)``, seeded  Loihi traces / learning
  ==============  ===================================================  ==========================

* **overflow** of an integer result into a ``bits``-wide register: ``wrap`` (two's complement, what
  Loihi's ``u`` does), ``saturate`` (clip, Loihi's ``v``), ``error`` (raise, nengo-loihi's strict
  mode). Every call reports how many values were out of range, so callers keep counters.
* **shared exponents**: a group of reals stored as integer mantissas times one power of two, the
  exponent chosen as lava's ``optimize_weight_bits`` does (the smallest that fits the group's
  largest positive and negative values).

Examples
--------
>>> import numpy as np
>>> round_int(np.array([2.5, -2.5, 3.5]), "nearest_even")
array([ 2, -2,  4])
>>> IntFormat(4, signed=True, overflow="wrap").fit(np.array([7, 8, -9]))[0]
array([ 7, -8,  7])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FixedPointOverflowError
from ..seeding import check_random_state

__all__ = ["ROUNDING_MODES", "OVERFLOW_MODES", "FixedPointOverflowError", "round_int", "round_div",
           "shift_round", "wrap", "saturate", "IntFormat", "shared_exponent", "quantize_shared_exponent"]

ROUNDING_MODES = ("nearest", "nearest_even", "half_up", "ceil", "truncate", "floor", "toward_zero", "stochastic")
OVERFLOW_MODES = ("wrap", "saturate", "error")


def _check_mode(mode: str) -> None:
    if mode not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, got {mode!r}")


def round_int(x: np.ndarray, mode: str = "nearest", seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Round reals to int64 with one of `ROUNDING_MODES`.

    Parameters
    ----------
    x : array_like of float
    mode : str
        See the module table. ``truncate`` and ``floor`` are the same (two's complement truncation).
    seed : int or numpy.random.Generator, optional
        Seed or generator for ``stochastic`` rounding.

    Returns
    -------
    ndarray of int64, same shape as ``x``

    Examples
    --------
    >>> round_int(np.array([-1.5, -0.5, 0.5, 1.5]), "nearest")
    array([-2, -1,  1,  2])
    >>> round_int(np.array([-1.5, 1.5]), "toward_zero")
    array([-1,  1])
    """
    _check_mode(mode)
    x = np.asarray(x, dtype=np.float64)
    if mode == "nearest":
        out = np.sign(x) * np.floor(np.abs(x) + 0.5)
    elif mode == "nearest_even":
        out = np.rint(x)
    elif mode == "half_up":
        out = np.floor(x + 0.5)
    elif mode == "ceil":
        out = np.ceil(x)
    elif mode in ("truncate", "floor"):
        out = np.floor(x)
    elif mode == "toward_zero":
        out = np.trunc(x)
    else:
        out = np.floor(x + check_random_state(seed).random(x.shape))
    return out.astype(np.int64)


def round_div(num: np.ndarray, den: np.ndarray | int, mode: str = "floor",
              seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Exact integer division ``num / den`` (``den > 0``) rounded with one of `ROUNDING_MODES`.

    No floating point is involved, so the result is exact for any int64 inputs whose products fit.

    Examples
    --------
    >>> round_div(np.array([7, -7, 5, -5, 6]), 2, "nearest")
    array([ 4, -4,  3, -3,  3])
    >>> round_div(np.array([7, -7, 5, -5]), 2, "nearest_even")
    array([ 4, -4,  2, -2])
    """
    _check_mode(mode)
    num = np.asarray(num, dtype=np.int64)
    den = np.asarray(den, dtype=np.int64)
    q, r = np.divmod(num, den)  # floor division, 0 <= r < den
    if mode in ("truncate", "floor"):
        return q
    if mode == "toward_zero":
        return q + ((r != 0) & (num < 0))
    if mode == "ceil":
        return q + (r != 0)
    if mode == "stochastic":
        # Round up with probability r / den: compare an integer draw in [0, den) with r.
        draw = check_random_state(seed).integers(0, np.broadcast_to(den, num.shape), endpoint=False)
        return q + (draw < r)
    twice = 2 * r
    up = twice > den
    tie = twice == den
    if mode == "nearest":
        up |= tie & (num >= 0)  # half away from zero: ties go up for positives, down for negatives
    elif mode == "half_up":
        up |= tie
    else:
        up |= tie & (q % 2 == 1)  # half to even
    return q + up


def shift_round(x: np.ndarray, shift: np.ndarray | int, mode: str = "floor",
                seed: int | np.random.Generator | None = None) -> np.ndarray:
    """``x * 2**shift`` for integers: a left shift for ``shift >= 0``, a rounded right shift otherwise.

    Examples
    --------
    >>> shift_round(np.array([5, -5]), -1, "floor"), shift_round(np.array([5]), 2)
    (array([ 2, -3]), array([20]))
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.left_shift(x, np.maximum(shift, 0))
    if not np.any(shift < 0):
        return left
    right = round_div(x, np.left_shift(np.int64(1), np.maximum(-shift, 0)), mode, seed)
    return np.where(shift >= 0, left, right)


def wrap(x: np.ndarray, bits: int, signed: bool = True) -> np.ndarray:
    """Two's complement wrap-around of integers into ``bits`` bits.

    Examples
    --------
    >>> wrap(np.array([127, 128, -129, 300]), 8)
    array([ 127, -128,  127,   44])
    """
    x = np.asarray(x, dtype=np.int64)
    modulus = np.int64(1) << bits
    if signed:
        half = np.int64(1) << (bits - 1)
        return np.mod(x + half, modulus) - half
    return np.mod(x, modulus)


def saturate(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Clip integers to ``[lo, hi]``."""
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


@dataclass(frozen=True)
class IntFormat:
    """An integer register: width, signedness, fractional bits and overflow policy.

    Parameters
    ----------
    bits : int
        Width including the sign bit for signed formats.
    signed : bool
    frac_bits : int
        The real value of integer ``k`` is ``k * 2**-frac_bits``.
    overflow : {"wrap", "saturate", "error"}
    lo, hi : int, optional
        A narrower range than the full width (Loihi's ``v`` saturates at +-(2**23 - 1)); saturation
        clips to it and ``error`` checks it. Wrapping always uses the full width.
    name : str
        Used in error messages.

    Examples
    --------
    >>> fmt = IntFormat(8, signed=True, overflow="saturate")
    >>> fmt.min, fmt.max, fmt.levels
    (-128, 127, 256)
    >>> fmt.fit(np.array([200, -5, -300]))
    (array([ 127,   -5, -128]), 2)
    """

    bits: int
    signed: bool = True
    frac_bits: int = 0
    overflow: str = "saturate"
    lo: int | None = None
    hi: int | None = None
    name: str = "value"

    def __post_init__(self) -> None:
        if not isinstance(self.bits, (int, np.integer)) or not 1 <= self.bits <= 62:
            raise ValueError(f"{self.name}: bits must be an integer in 1..62, got {self.bits!r}")
        if self.overflow not in OVERFLOW_MODES:
            raise ValueError(f"{self.name}: overflow must be one of {', '.join(OVERFLOW_MODES)}, "
                             f"got {self.overflow!r}")

    @property
    def min(self) -> int:
        """Smallest representable integer."""
        if self.lo is not None:
            return int(self.lo)
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        """Largest representable integer."""
        if self.hi is not None:
            return int(self.hi)
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def levels(self) -> int:
        """Number of representable integers."""
        return self.max - self.min + 1

    def fit(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Apply the overflow policy; returns the fitted integers and how many were out of range.

        Raises
        ------
        FixedPointOverflowError
            With ``overflow="error"`` when any value is out of range.
        """
        x = np.asarray(x, dtype=np.int64)
        outside = (x < self.min) | (x > self.max)
        count = int(np.count_nonzero(outside))
        if count == 0:
            return x, 0
        if self.overflow == "error":
            bad = x[outside].flat[0]
            raise FixedPointOverflowError(f"{self.name}: {count} value(s) outside [{self.min}, {self.max}] "
                                          f"({self.bits}-bit), e.g. {int(bad)}")
        if self.overflow == "saturate":
            return saturate(x, self.min, self.max), count
        return wrap(x, self.bits, self.signed), count

    def from_float(self, x: np.ndarray, rounding: str = "nearest",
                   seed: int | np.random.Generator | None = None) -> tuple[np.ndarray, int]:
        """Quantise reals: ``round(x * 2**frac_bits)`` then the overflow policy."""
        return self.fit(round_int(np.asarray(x, dtype=np.float64) * 2.0 ** self.frac_bits, rounding, seed))

    def to_float(self, k: np.ndarray) -> np.ndarray:
        """The real value of integers ``k``."""
        return np.asarray(k, dtype=np.float64) * 2.0 ** -self.frac_bits


def shared_exponent(max_pos: np.ndarray, min_neg: np.ndarray, qmin: int, qmax: int,
                    exp_min: int | None = None, exp_max: int | None = None) -> np.ndarray:
    """The exponent ``e`` a group of reals shares when stored as ``mantissa * 2**e``.

    lava's ``optimize_weight_bits`` rule: the smallest ``e`` with ``max_pos / 2**e <= qmax`` and
    ``min_neg / 2**e >= qmin`` (``weight_exp = -floor(log2(min(127 / max, -128 / min)))`` for 8-bit
    mixed-sign weights), clipped to ``[exp_min, exp_max]``. All-zero groups get ``exp_min`` (or 0).

    Parameters
    ----------
    max_pos : ndarray
        Largest value of each group (``<= 0`` when the group has no positive value).
    min_neg : ndarray
        Smallest value of each group (``>= 0`` when the group has no negative value).
    qmin, qmax : int
        Mantissa range.

    Examples
    --------
    >>> shared_exponent(np.array([1.0, 0.3]), np.array([-0.5, -2.0]), -128, 127)
    array([-6, -6])
    """
    max_pos = np.asarray(max_pos, dtype=np.float64)
    min_neg = np.asarray(min_neg, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        need_pos = np.where(max_pos > 0, np.log2(max_pos / qmax), -np.inf) if qmax > 0 else np.full(
            max_pos.shape, -np.inf)
        need_neg = np.where(min_neg < 0, np.log2(min_neg / qmin), -np.inf) if qmin < 0 else np.full(
            min_neg.shape, -np.inf)
    need = np.maximum(need_pos, need_neg)
    e = np.ceil(need)
    # ceil(log2) can land one below the true need through rounding of the logarithm: check exactly.
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(np.isfinite(e) & ((max_pos / 2.0 ** e > qmax) | (min_neg / 2.0 ** e < qmin)), e + 1, e)
    zero = ~np.isfinite(e)
    e = np.where(zero, exp_min if exp_min is not None else 0, e)
    if exp_min is not None or exp_max is not None:
        e = np.clip(e, exp_min if exp_min is not None else -np.inf, exp_max if exp_max is not None else np.inf)
    return e.astype(np.int64)


def quantize_shared_exponent(x: np.ndarray, group: np.ndarray, n_groups: int, mantissa: IntFormat,
                             rounding: str = "nearest", exp_min: int | None = None, exp_max: int | None = None,
                             seed: int | np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Store reals as integer mantissas with one power-of-two exponent per group.

    Parameters
    ----------
    x : ndarray
    group : ndarray of int, broadcastable to ``x.shape``
        Group (``0 .. n_groups - 1``) of every value.
    n_groups : int
    mantissa : IntFormat
        Mantissa register; values the exponent range cannot bring into range follow its overflow
        policy.
    rounding : str
    exp_min, exp_max : int, optional

    Returns
    -------
    mantissas : ndarray of int64, shape of ``x``
    exponents : ndarray of int64, shape ``(n_groups,)``
    clipped : int
        Mantissas that overflowed (only when the exponent range is too narrow).

    Examples
    --------
    >>> m, e, _ = quantize_shared_exponent(np.array([0.75, -0.25]), np.array([0, 0]), 1, IntFormat(3))
    >>> m, e, m * 2.0 ** e[0]
    (array([ 3, -1]), array([-2]), array([ 0.75, -0.25]))
    """
    x = np.asarray(x, dtype=np.float64)
    group = np.broadcast_to(np.asarray(group, dtype=np.intp), x.shape).ravel()
    flat = x.ravel()
    max_pos = np.zeros(n_groups)
    min_neg = np.zeros(n_groups)
    np.maximum.at(max_pos, group, flat)
    np.minimum.at(min_neg, group, flat)
    exps = shared_exponent(max_pos, min_neg, mantissa.min, mantissa.max, exp_min, exp_max)
    mant, clipped = mantissa.fit(round_int(flat * 2.0 ** -exps[group], rounding, seed))
    return mant.reshape(x.shape), exps, clipped
