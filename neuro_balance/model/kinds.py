"""Projection kinds: how a weight array maps pre activity to post input, and which units it joins.

Every kind answers three questions, and every engine (forward pass, cost aggregation, scaling,
training, fixed-point emulation) asks only these:

* ``propagate(proj, pre, post, x)``: the contribution ``(batch, post.n_features)`` of pre activity
  ``x`` of shape ``(batch, pre.n_features)``;
* ``vjp(proj, pre, post, x, grad)``: gradients with respect to the weight and to ``x``;
* ``groups(proj, pre, post)``: two integer arrays, broadcastable to ``weight.shape``, giving the
  post unit and the pre unit (scale groups) that each parameter joins. A parameter on the edge j->i is
  scaled by ``exp(u_i - c_j u_j)``; the cost graph sums ``|w|**p`` per (i, j) pair.

New kinds (convolutions, pooling, ...) register themselves with `register_kind`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from .network import Population, Projection

__all__ = ["ProjectionKind", "register_kind", "get_kind", "KINDS", "feature_groups"]


class ProjectionKind(Protocol):
    """What a projection kind must provide (see the module docstring)."""

    name: str

    def expected_shape(self, proj: "Projection", pre: "Population", post: "Population") -> tuple[int, ...]: ...

    def propagate(self, proj: "Projection", pre: "Population", post: "Population",
                  x: np.ndarray) -> np.ndarray: ...

    def vjp(self, proj: "Projection", pre: "Population", post: "Population", x: np.ndarray,
            grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def groups(self, proj: "Projection", pre: "Population",
               post: "Population") -> tuple[np.ndarray, np.ndarray]: ...


KINDS: dict[str, ProjectionKind] = {}


def register_kind(kind: ProjectionKind, *, replace: bool = False) -> ProjectionKind:
    """Register a projection kind under ``kind.name``; returns it (usable as a decorator target).

    Parameters
    ----------
    kind : ProjectionKind
    replace : bool
        Allow replacing a different kind already registered under the same name. Registering an
        equal kind again (a module imported twice) is always allowed.

    Raises
    ------
    ValueError
        When ``kind.name`` is taken by a different kind and ``replace`` is False: every network that
        uses the name would silently change meaning.
    """
    old = KINDS.get(kind.name)
    if old is not None and old != kind and not replace:
        raise ValueError(f"projection kind {kind.name!r} is already registered ({old!r}); "
                         "pass replace=True to replace it")
    KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> ProjectionKind:
    """The registered kind called ``name``; raises `ModelError` listing the known kinds."""
    try:
        return KINDS[name]
    except KeyError:
        raise ModelError(f"unknown projection kind {name!r}; known: {', '.join(sorted(KINDS))}") from None


def feature_groups(pop: "Population") -> np.ndarray:
    """Unit (scale group) of every feature of ``pop``: ``f // (n_features // size)`` (C-major)."""
    return np.arange(pop.n_features) // (pop.n_features // pop.size)


@dataclass(frozen=True)
class Dense:
    """``y = x @ W.T`` with ``W`` of shape ``(post.n_features, pre.n_features)``.

    A dense projection fed by a feature map reads its C-major flattening, so feature ``f`` of the
    pre map belongs to unit ``f // (H*W)`` when the map is grouped by channel.
    """

    name: str = "dense"

    def expected_shape(self, proj, pre, post):
        return (post.n_features, pre.n_features)

    def propagate(self, proj, pre, post, x):
        return x @ proj.weight.T

    def vjp(self, proj, pre, post, x, grad):
        return grad.T @ x, grad @ proj.weight

    def groups(self, proj, pre, post):
        post_idx = feature_groups(post)[:, None]
        pre_idx = feature_groups(pre)[None, :]
        return post_idx, pre_idx


register_kind(Dense())
