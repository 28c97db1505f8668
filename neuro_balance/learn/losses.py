"""Training losses and regularisers: their values and their gradients, with the time axis of recurrent targets.

The data loss reads the output population's activity: softmax cross-entropy against integer labels, or
``0.5 * sum (out - target)**2`` (``mse``), both averaged over the batch. A recurrent network's targets
may carry a leading time axis (a loss on every step, averaged); otherwise the loss reads the last step.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..balancing.costs import Cost
from ..model.network import Network

__all__ = ["LOSSES", "data_loss", "regularizer_gradient", "per_step", "output_steps", "batch_targets"]

LOSSES = ("cross_entropy", "mse")


def _targets(y: np.ndarray, loss: str, n_out: int) -> np.ndarray:
    """Float targets ``(..., n_out)``: one-hot for integer labels."""
    if loss == "cross_entropy" or np.issubdtype(y.dtype, np.integer):
        return np.eye(n_out)[y]
    return y.astype(np.float64)


def _loss_and_grad(out: np.ndarray, targets: np.ndarray, loss: str) -> tuple[float, np.ndarray]:
    """Mean loss over the batch and its gradient with respect to the output activity ``out``."""
    batch = out.shape[0]
    if loss == "cross_entropy":
        shifted = out - out.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        value = -float(np.sum(targets * log_p)) / batch
        return value, (np.exp(log_p) - targets) / batch
    diff = out - targets
    return 0.5 * float(np.sum(diff * diff)) / batch, diff / batch


def per_step(net: Network, y: np.ndarray, T: int) -> bool:
    """True when a recurrent network's targets carry a time axis: ``(T, batch)`` labels or ``(T, batch, n)``."""
    return net.recurrent and y.ndim >= 2 and y.shape[0] == T and (
        y.ndim == 3 or np.issubdtype(y.dtype, np.integer))


def output_steps(net: Network, y: np.ndarray, T: int) -> list[int]:
    """Time steps the loss reads: every step if ``y`` has a time axis, else the last one."""
    return list(range(T)) if per_step(net, y, T) else [T - 1]


def batch_targets(y: np.ndarray, idx, net: Network, T: int) -> np.ndarray:
    """The targets of the samples ``idx`` (a slice or index array), along the sample axis."""
    return y[:, idx] if per_step(net, y, T) else y[idx]


def data_loss(net: Network, outputs: list[np.ndarray], y: np.ndarray,
              loss: str) -> tuple[float, dict[int, np.ndarray]]:
    """Loss averaged over the output steps, and its gradient at each output step.

    ``outputs[t]`` is the output population's activity at step ``t``.
    """
    n_out = net.output.n_features
    stepwise = per_step(net, y, len(outputs))
    times = output_steps(net, y, len(outputs))
    total, grads = 0.0, {}
    for t in times:
        target = _targets(y[t] if stepwise else y, loss, n_out)
        value, g = _loss_and_grad(outputs[t], target, loss)
        total += value / len(times)
        grads[t] = g / len(times)
    return total, grads


def regularizer_gradient(reg: Cost, params: Mapping[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
    """Value and gradient of ``reg`` over ``params`` (biases skipped when ``reg.include_bias`` is False).

    ``d/dw sum_t alpha_t |w|**p_t = sum_t alpha_t p_t |w|**(p_t - 1) sign(w)`` (0 at w = 0 for p < 1).
    """
    if reg.is_linf:
        raise ValueError("reg: Linf (max |w|) has no useful gradient; use Lp terms")
    value, grads = 0.0, {}
    for key, w in params.items():
        if key.endswith(".bias") and not reg.include_bias:
            continue
        value += reg.value(w)
        g = np.zeros_like(w)
        for alpha, p in reg.terms:
            if p == 2.0:
                g += 2.0 * alpha * w
            elif p == 1.0:
                g += alpha * np.sign(w)
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    g += np.where(w != 0, alpha * p * np.abs(w) ** (p - 1.0) * np.sign(w), 0.0)
        grads[key] = g
    return value, grads
