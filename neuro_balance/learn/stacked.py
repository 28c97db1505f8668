"""Many copies of one layered dense network trained at once, their parameters stacked on a leading axis.

An experiment with seeds x arms runs the same small network dozens of times; on a few hundred samples
each run is dominated by Python overhead, not arithmetic. `train_stacked` trains ``M`` copies of a
layered network (one dense projection into each population from the one before it, e.g. `mlp`) as
``(M, ...)`` arrays, each copy with its own data, minibatch order, regulariser and balancing schedule,
and gives the same result as `train` on each copy alone (``tests/test_training.py`` checks this):
the same minibatch order from the same seed, the same optimiser (`Optimizer` acts elementwise), the
same loss and regulariser code, and the same balancing sweep (the colour classes and the closed-form
factor of ``balancing/``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..balancing.costs import Cost
from ..balancing.graph import build_graph
from ..balancing.local import colour_classes, optimal_log_step
from ..model.network import Network
from ..seeding import check_random_state
from .losses import data_loss, regularizer_gradient
from .optimizers import Optimizer
from .schedule import BalanceSchedule, apply_balance, parse_schedule

__all__ = ["StackedResult", "train_stacked"]


@dataclass
class StackedResult:
    """Outcome of `train_stacked`.

    Attributes
    ----------
    networks : list of Network
        The trained copies.
    epochs : list of int
        Epochs at which the test set was evaluated (0 is the initial state).
    accuracy : ndarray
        ``(M, len(epochs))`` test accuracy of every copy.
    diverged : ndarray of int
        ``(M,)`` the epoch at which a copy's parameters became NaN or Inf (its parameters are then
        set to 0 and it stops learning), or -1.
    """

    networks: list[Network]
    epochs: list[int]
    accuracy: np.ndarray
    diverged: np.ndarray

    def __repr__(self) -> str:
        return (f"StackedResult(copies={len(self.networks)}, epochs={self.epochs[-1]}, "
                f"final accuracy={np.round(self.accuracy[:, -1], 3).tolist()}, "
                f"diverged={int((self.diverged >= 0).sum())})")


def _layers(net: Network) -> list[str]:
    """Population names input to output; raises unless ``net`` is a layered dense network."""
    names = list(net.order)
    for k, name in enumerate(names[1:], 1):
        incoming = net.incoming(name)
        if len(incoming) != 1 or incoming[0].pre != names[k - 1] or incoming[0].kind != "dense" \
                or incoming[0].delay != 0 or net.populations[name].bias is None:
            raise ValueError(f"train_stacked: {net.name!r} is not a layered dense network with biases "
                             f"(population {name!r}); use train")
    return names


class _Stack:
    """The copies' parameters as ``(M, ...)`` arrays keyed like `parameters`, and their forward pass."""

    def __init__(self, nets: Sequence[Network], dtype: type = np.float64) -> None:
        self.template = nets[0]
        self.names = _layers(self.template)
        self.projections = [self.template.incoming(name)[0].name for name in self.names[1:]]
        self.params = {}
        for k, name in enumerate(self.names[1:]):
            proj = self.projections[k]
            self.params[proj] = np.stack([net.projection(proj).weight for net in nets]).astype(dtype)
            self.params[f"{name}.bias"] = np.stack([net.populations[name].bias for net in nets]).astype(dtype)

    def forward(self, X: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Activities (input first) and preactivations of every layer for ``X`` ``(M or 1, batch, n_in)``."""
        acts, pres = [X], []
        for name, proj in zip(self.names[1:], self.projections):
            z = np.matmul(acts[-1], self.params[proj].transpose(0, 2, 1)) + self.params[f"{name}.bias"][:, None]
            pres.append(z)
            acts.append(self.template.populations[name].activation(z))
        return acts, pres

    def networks(self) -> list[Network]:
        nets = []
        for m in range(len(next(iter(self.params.values())))):
            net = self.template.copy()
            for name, proj in zip(self.names[1:], self.projections):
                net.projection(proj).weight[...] = self.params[proj][m]
                net.populations[name].bias[...] = self.params[f"{name}.bias"][m]
            nets.append(net)
        return nets


def _gradients(stack: _Stack, X: np.ndarray, y: np.ndarray, loss: str) -> dict[str, np.ndarray]:
    """Per-copy gradient of the batch-mean data loss (backpropagation through the stacked layers)."""
    M, batch = y.shape
    acts, pres = stack.forward(X)
    out = acts[-1]
    # one loss over the M * batch rows averages over M too; times M it is each copy's batch mean
    _, g_out = data_loss(stack.template, [out.reshape(M * batch, -1)], y.reshape(-1), loss)
    g_act = (g_out[0].reshape(out.shape) * M).astype(out.dtype, copy=False)
    grads = {}
    for k in range(len(stack.projections) - 1, -1, -1):
        name, proj = stack.names[k + 1], stack.projections[k]
        g_pre = g_act * stack.template.populations[name].activation.derivative(pres[k])
        grads[f"{name}.bias"] = g_pre.sum(axis=1)
        grads[proj] = np.matmul(g_pre.transpose(0, 2, 1), acts[k])
        if k:
            g_act = np.matmul(g_pre, stack.params[proj])
    return grads


def _sweep(stack: _Stack, cost: Cost, copies: np.ndarray, optimizer: Optimizer) -> None:
    """One colour sweep of the copies ``copies`` for ``cost``, as `balance(..., "sweep", max_iter=1)`."""
    graph = build_graph(stack.template, cost)
    p = graph.exponents[0]
    proj_into = dict(zip(stack.names[1:], stack.projections))
    proj_from = dict(zip(stack.names[1:-1], stack.projections[1:]))
    for members in colour_classes(graph):
        log = {key: np.zeros_like(w) for key, w in stack.params.items()}
        for name, idx in members:
            w_in, bias = stack.params[proj_into[name]][copies], stack.params[f"{name}.bias"][copies]
            w_out = stack.params[proj_from[name]][copies]
            A = (np.abs(w_in[:, idx]) ** p).sum(axis=2)
            if cost.include_bias:
                A = A + np.abs(bias[:, idx]) ** p
            B = (np.abs(w_out[:, :, idx]) ** p).sum(axis=1)
            degree = stack.template.populations[name].degree
            with np.errstate(divide="ignore", invalid="ignore"):
                d = optimal_log_step(graph, degree, A.reshape(1, -1), B.reshape(1, -1),
                                     np.zeros((1, A.size))).reshape(A.shape)
            d = np.where((A > 0) & (B > 0) & np.isfinite(d), d, 0.0)
            log[proj_into[name]][np.ix_(copies, idx)] += d[:, :, None]
            log[f"{name}.bias"][np.ix_(copies, idx)] += d
            log[proj_from[name]][copies[:, None], :, idx[None, :]] -= degree * d[:, :, None]
        for key, w in stack.params.items():
            w *= np.exp(log[key])
        optimizer.rescale(log)


def _epoch(stack: _Stack, X: np.ndarray, y: np.ndarray, regs: list, opt: Optimizer, orders: list[np.ndarray],
           batch_size: int, loss: str) -> None:
    """One pass over every copy's training set, each in its own order."""
    order, rows = np.stack(orders), np.arange(len(orders))[:, None]
    for start in range(0, order.shape[1], batch_size):
        idx = order[:, start:start + batch_size]
        grads = _gradients(stack, X[rows, idx], y[rows, idx], loss)
        for reg in {r for r in regs if r is not None}:
            which = np.array([r == reg for r in regs])
            _, r_grads = regularizer_gradient(reg, {k: w[which] for k, w in stack.params.items()})
            for key, g in r_grads.items():
                grads[key][which] += g
        opt.step(stack.params, grads)


def train_stacked(nets: Sequence[Network], X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, *,
                  lr: float, epochs: int, batch_size: int = 32, optimizer: str = "sgd", momentum: float = 0.9,
                  regs: Sequence[Cost | None] | None = None,
                  balances: Sequence[str | BalanceSchedule | None] | None = None,
                  seeds: Sequence[int] | None = None, eval_every: int = 1,
                  loss: str = "cross_entropy", dtype: type = np.float64) -> StackedResult:
    """Train ``M`` copies of one layered dense network at once; each copy as `train` would train it.

    Parameters
    ----------
    nets : sequence of Network
        ``M`` networks of one layered dense architecture (different weights).
    X, y : ndarray
        ``(M, n, n_in)`` samples and ``(M, n)`` integer labels: each copy's own training set.
    X_test, y_test : ndarray
        ``(n_test, n_in)`` and ``(n_test,)``: the test set shared by all copies.
    lr, epochs, batch_size, optimizer, momentum, loss
        As in `train`, shared by all copies.
    regs : sequence of Cost or None, optional
        Each copy's regulariser (default none).
    balances : sequence of str, BalanceSchedule or None, optional
        Each copy's balancing schedule (see `parse_schedule`); during training only ``partial``
        sweeps are supported (S2's NB), ``before`` may be full.
    seeds : sequence of int, optional
        Each copy's minibatch order (default ``0, 1, ...``), as ``seed`` in `train`.
    eval_every : int
        Evaluate the test accuracy every ``eval_every`` epochs (and at the last epoch).
    dtype : numpy float type
        Of the parameters and data while training: ``np.float32`` halves the time of the matrix
        products (the returned networks are float64 again); ``np.float64`` is identical to `train`.

    Returns
    -------
    StackedResult
    """
    M = len(nets)
    regs = list(regs) if regs is not None else [None] * M
    schedules = [parse_schedule(b) for b in (balances if balances is not None else [None] * M)]
    seeds = list(seeds) if seeds is not None else list(range(M))
    X, y = np.asarray(X, dtype=dtype), np.asarray(y)
    if not (len(regs) == len(schedules) == len(seeds) == M == X.shape[0] == y.shape[0]):
        raise ValueError(f"train_stacked: {M} networks need {M} training sets, regs, balances and seeds; got "
                         f"{X.shape[0]}, {y.shape[0]}, {len(regs)}, {len(schedules)}, {len(seeds)}")
    if any(s is not None and s.every and s.mode != "partial" for s in schedules):
        raise ValueError("train_stacked: balancing during training must be 'partial'; use train for 'full:k'")
    rngs = [check_random_state(s) for s in seeds]
    opt = Optimizer(optimizer, lr, momentum)
    nets = [net.copy() for net in nets]
    for net, s, rng in zip(nets, schedules, rngs):
        if s is not None and s.before:
            apply_balance(net, s, True, Optimizer(), rng)
    stack = _Stack(nets, dtype)
    X_test, y_test = np.asarray(X_test, dtype=dtype)[None], np.asarray(y_test)
    n = X.shape[1]
    record_epochs, accuracy = [], []
    diverged = np.full(M, -1)

    def record(epoch: int) -> None:  # in chunks: M copies x 10000 MNIST images would not fit at once
        record_epochs.append(epoch)
        hits = sum((stack.forward(X_test[:, k:k + 2048])[0][-1].argmax(axis=2) == y_test[None, k:k + 2048]).sum(axis=1)
                   for k in range(0, X_test.shape[1], 2048))
        accuracy.append(hits / X_test.shape[1])

    record(0)
    for epoch in range(1, epochs + 1):
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging copy is caught below
            _epoch(stack, X, y, regs, opt, [rng.permutation(n) for rng in rngs], batch_size, loss)
        bad = ~np.all([np.isfinite(w).reshape(M, -1).all(axis=1) for w in stack.params.values()], axis=0)
        for m in np.flatnonzero(bad & (diverged < 0)):
            diverged[m] = epoch
        for w in [*stack.params.values(), *opt.m.values(), *opt.v.values()]:
            w[diverged >= 0] = 0.0
        for cost in {s.cost for s in schedules if s is not None and s.every}:
            copies = np.array([m for m, s in enumerate(schedules) if s is not None and s.every
                               and s.cost == cost and epoch % s.every == 0 and diverged[m] < 0], dtype=np.intp)
            if copies.size:
                _sweep(stack, cost, copies, opt)
        if epoch % eval_every == 0 or epoch == epochs:
            record(epoch)
    return StackedResult(stack.networks(), record_epochs, np.asarray(accuracy).T, diverged)
