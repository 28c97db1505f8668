"""Batch normalisation for training, folded into the weights and biases for deployment.

During training a hidden population's preactivation ``z`` (per unit: over the batch and, for a
feature map, over its positions) becomes ``gamma * (z - mean) / sqrt(var + eps) + beta`` with the
batch's statistics (Ioffe & Szegedy 2015). For deployment the statistics of the whole training set
replace the batch's (computed layer by layer with the final weights), and `BatchNorm.fold` writes the
affine map into the incoming weights and the bias: with ``a = gamma / sqrt(var + eps)``,
``W_in <- a * W_in`` (per post unit) and ``b <- a * (b - mean) + beta``. The folded network is an
ordinary `Network`; its per-unit ranges are as far apart as the ``a`` are, which is what
cross-layer equalisation corrects before quantisation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError
from ..model.kinds import get_kind
from ..model.network import Network

__all__ = ["BatchNorm"]


@dataclass
class BatchNorm:
    """Trainable ``gamma`` and ``beta`` per unit of every hidden population of a network.

    Build it with `BatchNorm.for_network`. Parameters are named ``"{population}.bn_gamma"`` and
    ``"{population}.bn_beta"`` alongside the network's own (`parameters`).
    """

    gamma: dict[str, np.ndarray]
    beta: dict[str, np.ndarray]
    eps: float = 1e-5
    _cache: dict[str, tuple] = field(default_factory=dict, repr=False)

    @classmethod
    def for_network(cls, net: Network, eps: float = 1e-5) -> "BatchNorm":
        """``gamma = 1``, ``beta = 0`` for every hidden population of a feedforward ``net``."""
        if net.recurrent:
            raise ModelError(f"batch normalisation: network {net.name!r} is recurrent; only feedforward "
                             "networks are supported")
        hidden = [n for n in net.order if net.populations[n].role == "hidden"]
        return cls({n: np.ones(net.populations[n].size) for n in hidden},
                   {n: np.zeros(net.populations[n].size) for n in hidden}, eps)

    def parameters(self) -> dict[str, np.ndarray]:
        """The trainable arrays (not copies), keyed ``"{pop}.bn_gamma"`` and ``"{pop}.bn_beta"``."""
        out = {f"{n}.bn_gamma": g for n, g in self.gamma.items()}
        out.update({f"{n}.bn_beta": b for n, b in self.beta.items()})
        return out

    def forward(self, name: str, z: np.ndarray, stats: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Normalise ``z`` (batch, n_features) of population ``name`` with the batch's statistics (or ``stats``).

        The batch statistics and the normalised values are kept for `backward`.
        """
        if name not in self.gamma:
            return z
        size = self.gamma[name].size
        zr = z.reshape(z.shape[0], size, -1)
        mean, var = stats if stats is not None else (zr.mean(axis=(0, 2)), zr.var(axis=(0, 2)))
        inv = 1.0 / np.sqrt(var + self.eps)
        xhat = (zr - mean[None, :, None]) * inv[None, :, None]
        self._cache[name] = (xhat, inv)
        out = self.gamma[name][None, :, None] * xhat + self.beta[name][None, :, None]
        return out.reshape(z.shape)

    def backward(self, name: str, g_out: np.ndarray, add) -> np.ndarray:
        """Gradient at ``z`` from the gradient at the normalised output; adds gamma's and beta's via ``add``."""
        if name not in self.gamma:
            return g_out
        xhat, inv = self._cache[name]
        g = g_out.reshape(xhat.shape)
        add(f"{name}.bn_gamma", np.sum(g * xhat, axis=(0, 2)))
        add(f"{name}.bn_beta", np.sum(g, axis=(0, 2)))
        m = xhat.shape[0] * xhat.shape[2]
        gx = g * self.gamma[name][None, :, None]
        g_z = (inv[None, :, None] / m) * (m * gx - gx.sum(axis=(0, 2), keepdims=True)
                                          - xhat * np.sum(gx * xhat, axis=(0, 2), keepdims=True))
        return g_z.reshape(g_out.shape)

    def fold(self, net: Network, X: np.ndarray) -> Network:
        """A copy of ``net`` with the normalisation folded in, using the statistics of ``X`` (module docstring)."""
        out = net.copy()
        acts: dict[str, np.ndarray] = {}
        for name in out.order:
            pop = out.populations[name]
            if pop.role == "input":
                acts[name] = np.asarray(X, dtype=np.float64)
                continue
            z = out.preactivation(name, acts, None)
            if name in self.gamma:
                zr = z.reshape(z.shape[0], pop.size, -1)
                mean, var = zr.mean(axis=(0, 2)), zr.var(axis=(0, 2))
                a = self.gamma[name] / np.sqrt(var + self.eps)
                for proj in out.incoming(name):
                    post_idx, _ = get_kind(proj.kind).groups(proj, out.populations[proj.pre], pop)
                    proj.weight = proj.weight * np.broadcast_to(a[post_idx], proj.weight.shape)
                bias = pop.bias if pop.bias is not None else np.zeros(pop.size)
                pop.bias = a * (bias - mean) + self.beta[name]
                z = out.preactivation(name, acts, None)
            acts[name] = pop.activation(z)
        return out
