"""Cost functions (regularisers) of the weights: Lp for any p > 0, L-infinity, and weighted sums.

A cost is a tuple of terms ``alpha * sum |w|**p``; L-infinity is ``max |w|`` and stands alone. The
bias of a unit counts as an incoming parameter (an edge from an always-on unit) unless
``include_bias=False``; it is scaled with the incoming weights either way.

Examples
--------
>>> Lp(2)
Lp(2.0)
>>> Lp(1) + 0.1 * Lp(2)
Lp(1.0) + 0.1*Lp(2.0)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["Cost", "Lp", "Linf", "parse_cost"]


@dataclass(frozen=True)
class Cost:
    """A regulariser ``sum_t alpha_t * sum_w |w|**p_t`` (or ``max |w|`` for L-infinity).

    Attributes
    ----------
    terms : tuple of (alpha, p)
        ``p = inf`` marks L-infinity, which cannot be mixed with other terms.
    include_bias : bool
        Whether biases count in a unit's in-cost.
    """

    terms: tuple[tuple[float, float], ...]
    include_bias: bool = True

    def __post_init__(self) -> None:
        if not self.terms:
            raise ValueError("a cost needs at least one term")
        for alpha, p in self.terms:
            if not (isinstance(p, (int, float)) and (p > 0 and not math.isnan(p))):
                raise ValueError(f"cost exponent p must be > 0, got {p!r}")
            if not (math.isfinite(alpha) and alpha > 0):
                raise ValueError(f"cost coefficient must be finite and > 0, got {alpha!r}")
        if self.is_linf and len(self.terms) > 1:
            raise ValueError("Linf cannot be summed with other cost terms")

    @property
    def is_linf(self) -> bool:
        """True for the L-infinity (max) cost."""
        return any(math.isinf(p) for _, p in self.terms)

    @property
    def p(self) -> float:
        """The exponent of a single-term cost (``inf`` for L-infinity)."""
        if len(self.terms) != 1:
            raise ValueError(f"{self} has several exponents")
        return self.terms[0][1]

    def elementwise(self, w: np.ndarray, term: int, out: np.ndarray | None = None, shift: int = 0) -> np.ndarray:
        """``|w|**p`` of term ``term`` (``|w|`` for L-infinity), written once into ``out`` (or a new array).

        Products instead of ``pow`` for p = 1, 2, 3; no temporary the size of ``w``. ``shift``: the
        cost of ``w * 2**-shift`` instead (exact: a power of two), which keeps ``|w|**p`` inside float64
        for weights far from 1 (`graph.build_graph`).
        """
        p = self.terms[term][1]
        if shift:
            w = np.ldexp(w, -shift, out=out)
        if p == 2.0:
            return np.square(w, out=out)
        aliased = w is out
        out = np.abs(w, out=out)
        if p == 3.0 and not aliased:
            out *= w
            out *= w
        elif p == 0.5:
            np.sqrt(out, out=out)
        elif p != 1.0 and not math.isinf(p):
            np.power(out, p, out=out)
        return out

    def value(self, w: np.ndarray) -> float:
        """The cost of the parameters in ``w`` (all of them, any shape)."""
        if w.size == 0:
            return 0.0
        if self.is_linf:
            return float(np.max(np.abs(w)))
        return float(sum(alpha * np.sum(self.elementwise(w, t)) for t, (alpha, _) in enumerate(self.terms)))

    def without_bias(self) -> "Cost":
        """The same cost with biases excluded from in-costs."""
        return replace(self, include_bias=False)

    def __add__(self, other: "Cost") -> "Cost":
        if not isinstance(other, Cost):
            return NotImplemented
        if other.include_bias != self.include_bias:
            raise ValueError("cannot add costs that disagree on include_bias")
        return Cost(self.terms + other.terms, self.include_bias)

    def __mul__(self, factor: float) -> "Cost":
        if not isinstance(factor, (int, float)):
            return NotImplemented
        if self.is_linf:
            raise ValueError("Linf cannot be weighted")
        return Cost(tuple((alpha * factor, p) for alpha, p in self.terms), self.include_bias)

    __rmul__ = __mul__

    def __repr__(self) -> str:
        parts = []
        for alpha, p in self.terms:
            base = "Linf()" if math.isinf(p) else f"Lp({float(p)!r})"
            parts.append(base if alpha == 1 else f"{alpha!r}*{base}")
        text = " + ".join(parts)
        return text if self.include_bias else f"({text}).without_bias()"


def Lp(p: float, include_bias: bool = True) -> Cost:
    """The cost ``sum |w|**p`` for any ``p > 0`` (theory §1).

    Parameters
    ----------
    p : float
        Exponent, ``p > 0``.
    include_bias : bool
        Count biases as incoming parameters (default) or leave them out of the cost.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
        raise ValueError(f"cost exponent p must be a number > 0, got {p!r}")
    p = float(p)
    if not (p > 0) or math.isinf(p):
        raise ValueError(f"cost exponent p must be finite and > 0, got {p!r} (use Linf() for max)")
    return Cost(((1.0, p),), include_bias)


def Linf(include_bias: bool = True) -> Cost:
    """The cost ``max |w|`` (the limit p -> inf of Lp); see `neuro_balance.balancing.solver` for uniqueness."""
    return Cost(((1.0, math.inf),), include_bias)


def parse_cost(text: str) -> Cost:
    """Parse ``L1``, ``L2``, ``Lp:P`` (any ``P > 0``) or ``Linf`` (case-insensitive).

    Raises
    ------
    ValueError
        With the offending text quoted.
    """
    key = text.strip().lower()
    if key in ("linf", "lmax", "l-inf"):
        return Linf()
    try:
        if key.startswith("lp:"):
            return Lp(float(key[3:]))
        if key.startswith("l") and key[1:]:
            return Lp(float(key[1:]))
    except ValueError as err:
        raise ValueError(f"cost {text!r}: {err}") from None
    raise ValueError(f"unknown cost {text!r}; use L1, L2, Lp:P (P > 0) or Linf")
