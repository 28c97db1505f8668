"""Activation functions and the one parser for their names.

Three kinds of unit exist for balancing purposes:

* **BiLU** ``f(x) = a*x`` for ``x < 0`` and ``b*x`` for ``x >= 0`` (theory Def 2.1): ``relu``,
  ``linear``, ``leaky_relu:alpha``, ``bilu:a,b``. Homogeneous of degree 1: ``f(lam*x) = lam*f(x)``.
* **BiPU** ``f(x) = b*x**c`` for ``x >= 0`` and ``a*|x|**c`` for ``x < 0`` (theory Prop 2.3):
  ``bipu:c`` (rectified power unit, ``a = 0, b = 1``) or ``bipu:c,a,b``. Homogeneous of degree ``c``.
* **non-homogeneous** units (``tanh``, ``sigmoid``, ``relu6``): never balanced, they are ground.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ActivationError

__all__ = ["Activation", "parse_activation", "ActivationError"]


@dataclass(frozen=True)
class Activation:
    """A unit's activation function.

    Attributes
    ----------
    kind : {"bilu", "bipu", "tanh", "sigmoid", "relu6"}
    a, b : float
        Slopes (BiLU) or coefficients (BiPU) for negative and non-negative inputs.
    degree : float or None
        Degree of homogeneity ``c`` (1 for BiLU, ``c`` for BiPU, None for non-homogeneous units).
    """

    kind: str
    a: float = 0.0
    b: float = 1.0
    degree: float | None = 1.0

    @property
    def homogeneous(self) -> bool:
        """True when ``f(lam*x) = lam**degree * f(x)`` for every ``lam > 0``."""
        return self.degree is not None

    @property
    def spec(self) -> str:
        """The canonical string that `parse_activation` turns back into this activation."""
        if self.kind == "bilu":
            if self.a == 0.0 and self.b == 1.0:
                return "relu"
            if self.a == 1.0 and self.b == 1.0:
                return "linear"
            if self.b == 1.0 and 0.0 < self.a < 1.0:
                return f"leaky_relu:{self.a!r}"
            return f"bilu:{self.a!r},{self.b!r}"
        if self.kind == "bipu":
            if self.a == 0.0 and self.b == 1.0:
                return f"bipu:{self.degree!r}"
            return f"bipu:{self.degree!r},{self.a!r},{self.b!r}"
        return self.kind

    def __str__(self) -> str:
        return self.spec

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply the activation elementwise (float64)."""
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "bilu":
            return np.where(x >= 0, self.b * x, self.a * x)
        if self.kind == "bipu":
            mag = np.abs(x) ** self.degree
            return np.where(x >= 0, self.b * mag, self.a * mag)
        if self.kind == "tanh":
            return np.tanh(x)
        if self.kind == "sigmoid":
            return 0.5 * (1.0 + np.tanh(0.5 * x))
        return np.clip(x, 0.0, 6.0)  # relu6

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """Elementwise derivative ``f'(x)`` (the right derivative at kinks)."""
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "bilu":
            return np.where(x >= 0, self.b, self.a)
        if self.kind == "bipu":
            c = self.degree
            mag = c * np.abs(x) ** (c - 1.0) if c != 1.0 else np.ones_like(x)
            return np.where(x >= 0, self.b * mag, -self.a * mag)
        if self.kind == "tanh":
            return 1.0 - np.tanh(x) ** 2
        if self.kind == "sigmoid":
            s = 0.5 * (1.0 + np.tanh(0.5 * x))
            return s * (1.0 - s)
        return ((x > 0) & (x < 6)).astype(np.float64)


def _numbers(text: str, spec: str, count: tuple[int, ...]) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")] if text else []
    except ValueError:
        raise ActivationError(f"activation {spec!r}: parameters must be numbers") from None
    if len(values) not in count or not all(np.isfinite(values)):
        raise ActivationError(
            f"activation {spec!r}: expected {' or '.join(map(str, count))} finite parameter(s)")
    return values


def parse_activation(spec: str | Activation) -> Activation:
    """Parse an activation name such as ``"relu"``, ``"leaky_relu:0.1"`` or ``"bipu:2"``.

    Parameters
    ----------
    spec : str or Activation
        ``relu``, ``linear``, ``leaky_relu:alpha`` (``0 <= alpha``), ``bilu:a,b``, ``bipu:c``,
        ``bipu:c,a,b`` (``c > 0``), ``tanh``, ``sigmoid`` or ``relu6``.

    Returns
    -------
    Activation

    Raises
    ------
    ActivationError
        For unknown names or bad parameters; the message quotes ``spec``.

    Examples
    --------
    >>> parse_activation("leaky_relu:0.1").a
    0.1
    """
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise ActivationError(f"activation must be a string, got {spec!r}")
    name, _, params = spec.strip().partition(":")
    name = name.strip().lower()
    if name in ("relu", "linear", "identity", "tanh", "sigmoid", "relu6"):
        if params:
            raise ActivationError(f"activation {spec!r}: {name} takes no parameters")
        if name == "relu":
            return Activation("bilu", 0.0, 1.0, 1.0)
        if name in ("linear", "identity"):
            return Activation("bilu", 1.0, 1.0, 1.0)
        return Activation(name, 0.0, 0.0, None)
    if name == "leaky_relu":
        (alpha,) = _numbers(params or "0.01", spec, (1,))
        return Activation("bilu", alpha, 1.0, 1.0)
    if name == "bilu":
        a, b = _numbers(params, spec, (2,))
        return Activation("bilu", a, b, 1.0)
    if name == "bipu":
        values = _numbers(params, spec, (1, 3))
        c = values[0]
        if c <= 0:
            raise ActivationError(f"activation {spec!r}: the degree c must be > 0")
        a, b = (values[1], values[2]) if len(values) == 3 else (0.0, 1.0)
        return Activation("bipu", a, b, c)
    raise ActivationError(
        f"unknown activation {spec!r}; known: relu, linear, leaky_relu:alpha, bilu:a,b, "
        "bipu:c[,a,b], tanh, sigmoid, relu6")
