"""The ``elementwise`` projection kind: ``y = w * x`` feature by feature (NIR's ``Scale`` node).

Pre and post have the same number of features; ``weight`` has shape ``(n_features,)``. Parameter
``w[f]`` joins post unit ``f // (n_post / size_post)`` and pre unit ``f // (n_pre / size_pre)``
(C-major grouping), so scaling units keeps ``y`` exactly as for a dense projection.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from .kinds import feature_groups, register_kind

__all__ = ["Elementwise"]


@dataclass(frozen=True)
class Elementwise:
    """``y[:, f] = w[f] * x[:, f]``."""

    name: str = "elementwise"

    def expected_shape(self, proj, pre, post):
        if proj.options:
            raise ModelError(f"options: kind elementwise takes no options, got {sorted(proj.options)}")
        if pre.n_features != post.n_features:
            raise ModelError(f"post: elementwise needs as many features in {post.name!r} ({post.n_features}) "
                             f"as in {pre.name!r} ({pre.n_features})")
        return (post.n_features,)

    def propagate(self, proj, pre, post, x):
        return x * proj.weight

    def vjp(self, proj, pre, post, x, grad):
        return np.sum(grad * x, axis=0), grad * proj.weight

    def groups(self, proj, pre, post):
        return feature_groups(post), feature_groups(pre)


register_kind(Elementwise())
