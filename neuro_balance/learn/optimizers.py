"""Optimisers (plain SGD, heavy-ball momentum, Adam) whose state follows a rescaling of the weights.

Rescaling unit i by ``lam`` multiplies a parameter on j->i by ``s = exp(u_i - c_j u_j)``; the loss is
unchanged, so its gradient at the rescaled point is ``g / s``. Momentum buffers (sums of past
gradients) are therefore divided by ``s`` and Adam's second moments by ``s**2``: the optimiser state is
what it would have been had every past gradient been taken at the rescaled weights.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

__all__ = ["OPTIMIZERS", "Optimizer"]

OPTIMIZERS = ("sgd", "momentum", "adam")


class Optimizer:
    """Plain SGD, heavy-ball momentum or Adam, updating parameter arrays in place.

    ``sgd``: ``w -= lr g``. ``momentum``: ``m = mu m + g; w -= lr m``. ``adam``: Kingma & Ba with bias
    correction. `rescale` keeps the state consistent with a rescaling of the weights (module docstring).
    """

    def __init__(self, name: str = "sgd", lr: float = 0.05, momentum: float = 0.9, betas: tuple[float, float] =
                 (0.9, 0.999), eps: float = 1e-8) -> None:
        if name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
        if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        self.name, self.lr, self.mu, self.betas, self.eps = name, float(lr), momentum, betas, eps
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.steps = 0

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Apply one update to every array of ``params`` in place."""
        self.steps += 1
        for key, w in params.items():
            g = grads[key]
            if self.name == "sgd":
                w -= self.lr * g
            elif self.name == "momentum":
                m = self.m.setdefault(key, np.zeros_like(w))
                m *= self.mu
                m += g
                w -= self.lr * m
            else:
                b1, b2 = self.betas
                m = self.m.setdefault(key, np.zeros_like(w))
                v = self.v.setdefault(key, np.zeros_like(w))
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * g * g
                m_hat = m / (1 - b1 ** self.steps)
                v_hat = v / (1 - b2 ** self.steps)
                w -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def rescale(self, log_factors: Mapping[str, np.ndarray]) -> None:
        """Follow a rescaling ``w -> w * exp(L)``: first moments ``* exp(-L)``, second moments ``* exp(-2L)``."""
        for key, m in self.m.items():
            m *= np.exp(-log_factors[key])
        for key, v in self.v.items():
            v *= np.exp(-2.0 * log_factors[key])
