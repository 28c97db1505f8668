"""Backpropagation through any `Network`: the forward pass with its cache, the gradient, and evaluation.

Each projection kind supplies its own ``vjp``, so every registered kind (dense, and the convolution
kinds) trains, in feedforward DAGs and in recurrent networks (backpropagation through time over
``(T, batch, n)`` sequences).

A population turns its preactivation ``z`` into its activity in `_unit_forward` and sends the gradient
back through the same step in `_unit_backward`; a new layer type acting between the two (a
normalisation, say) goes in that pair, with its trainable arrays listed in ``parameters.py``.
"""
from __future__ import annotations

import math

import numpy as np

from ..balancing.costs import Cost
from ..model.kinds import get_kind
from ..model.network import Network, Population
from .batchnorm import BatchNorm
from .losses import batch_targets, data_loss, output_steps, per_step, regularizer_gradient
from .parameters import parameters

__all__ = ["gradients", "evaluate"]

Step = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


def _as_sequence(net: Network, X: np.ndarray) -> np.ndarray:
    """``(T, batch, n)`` view of the inputs (T = 1 for a feedforward network)."""
    return X if net.recurrent else X[None]


def _unit_forward(name: str, pop: Population, z: np.ndarray, bn: BatchNorm | None) -> tuple[np.ndarray, np.ndarray]:
    """The (normalised) preactivation of ``pop`` and its activity, from the preactivation ``z``."""
    if bn is not None:
        z = bn.forward(name, z)
    return z, pop.activation(z)


def _unit_backward(name: str, pop: Population, z: np.ndarray, g_act: np.ndarray,
                   add, bn: BatchNorm | None) -> np.ndarray:
    """Gradient at the preactivation from the gradient at the activity; adds the bias gradient via ``add``."""
    g_pre = g_act * pop.activation.derivative(z)
    if bn is not None:
        g_pre = bn.backward(name, g_pre, add)
    if pop.bias is not None:
        add(f"{name}.bias", g_pre.sum(axis=0).reshape(pop.size, -1).sum(axis=1))
    return g_pre


def _forward_cache(net: Network, X: np.ndarray, bn: BatchNorm | None = None) -> list[Step]:
    """Per time step: activities and (normalised) preactivations of every population."""
    steps, previous = [], None
    for t in range(X.shape[0]):
        acts, pres = {}, {}
        for name in net.order:
            pop = net.populations[name]
            if pop.role == "input":
                acts[name] = X[t]
                continue
            pres[name], acts[name] = _unit_forward(name, pop, net.preactivation(name, acts, previous), bn)
        steps.append((acts, pres))
        previous = acts
    return steps


def _outputs(net: Network, steps: list[Step]) -> list[np.ndarray]:
    return [acts[net.output.name] for acts, _ in steps]


def gradients(net: Network, X: np.ndarray, y: np.ndarray, *, loss: str = "cross_entropy",
              reg: Cost | None = None, batch_norm: BatchNorm | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """Loss ``E + R`` on a batch and its gradient with respect to every parameter (backpropagation).

    Parameters
    ----------
    net : Network
    X : ndarray
        ``(batch, n_in)``, or ``(T, batch, n_in)`` for a recurrent network (backpropagation through time).
    y : ndarray
        Integer labels ``(batch,)`` or targets ``(batch, n_out)`` (``mse``). For a recurrent network a
        leading time axis ``(T, batch[, n_out])`` puts a loss on every step (averaged), otherwise the
        loss reads the last step.
    loss : {"cross_entropy", "mse"}
        Softmax cross-entropy on the output activity, or ``0.5 * sum (out - target)**2``; both averaged
        over the batch.
    reg : Cost, optional
        Added to the loss (see `regularizer_gradient`).
    batch_norm : BatchNorm, optional
        Normalise hidden preactivations with the batch's statistics; its gradients are returned too.

    Returns
    -------
    loss : float
    grads : dict of ndarray
        Keyed like `parameters` (and `BatchNorm.parameters`).
    """
    X = _as_sequence(net, np.asarray(X, dtype=np.float64))
    y = np.asarray(y)
    steps = _forward_cache(net, X, batch_norm)
    value, out_grads = data_loss(net, _outputs(net, steps), y, loss)
    grads: dict[str, np.ndarray] = {}

    def add(key: str, g: np.ndarray) -> None:  # never in place: a kind may hand back a view
        grads[key] = grads[key] + g if key in grads else g

    out_name = net.output.name
    carry: dict[str, np.ndarray] = {}  # gradients reaching step t - 1 through delay-1 projections
    for t in range(len(steps) - 1, -1, -1):
        acts, pres = steps[t]
        previous = steps[t - 1][0] if t > 0 else None
        g_act = dict(carry)
        if t in out_grads:
            g_act[out_name] = g_act.get(out_name, 0.0) + out_grads[t]
        carry = {}
        for name in reversed(net.order):
            pop = net.populations[name]
            if pop.role == "input" or name not in g_act:
                continue
            g_pre = _unit_backward(name, pop, pres[name], g_act[name], add, batch_norm)
            for proj in net.incoming(name):
                if proj.delay == 1 and previous is None:
                    continue
                source = previous[proj.pre] if proj.delay == 1 else acts[proj.pre]
                pre_pop = net.populations[proj.pre]
                g_w, g_x = get_kind(proj.kind).vjp(proj, pre_pop, pop, source, g_pre)
                add(proj.name, g_w)
                if pre_pop.role == "input":
                    continue
                target = carry if proj.delay == 1 else g_act
                target[proj.pre] = target[proj.pre] + g_x if proj.pre in target else g_x
    params = parameters(net)
    if reg is not None:
        r_value, r_grads = regularizer_gradient(reg, params)
        value += r_value
        for key, g in r_grads.items():
            add(key, g)
    if batch_norm is not None:   # gamma and beta are not regularised
        params.update(batch_norm.parameters())
    return value, {key: grads[key] if key in grads else np.zeros_like(w) for key, w in params.items()}


def evaluate(net: Network, X: np.ndarray, y: np.ndarray, loss: str = "cross_entropy",
             batch_size: int = 4096) -> tuple[float, float]:
    """Mean data loss and accuracy (argmax of the output against integer labels; NaN for real targets)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    axis = 1 if net.recurrent else 0
    n = X.shape[axis]
    total, correct = 0.0, 0
    labels = np.issubdtype(y.dtype, np.integer)
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        xb = X[:, sl] if net.recurrent else X[sl]
        yb = batch_targets(y, sl, net, X.shape[0])
        outputs = _outputs(net, _forward_cache(net, _as_sequence(net, xb)))
        value, _ = data_loss(net, outputs, yb, loss)
        total += value * (xb.shape[axis])
        if labels:
            stepwise = per_step(net, yb, len(outputs))
            times = output_steps(net, yb, len(outputs))
            for t in times:
                pred = outputs[t].argmax(axis=1)
                correct += np.sum(pred == (yb[t] if stepwise else yb)) / len(times)
    return total / n, (float(correct) / n if labels else math.nan)
