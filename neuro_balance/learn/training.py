"""The training loop: minibatch gradient descent on ``E + R`` with balancing events and per-epoch records.

`train` checks its inputs, runs the epochs (backpropagation in ``backprop.py``, the update in
``optimizers.py``, balancing events from ``schedule.py``) and records the loss, accuracy and balance
diagnostics after each epoch (theory §4, §6). The names of the modules it builds on are re-exported
here, so ``neuro_balance.learn.training`` stays the one import for training.

Example
-------
>>> import neuro_balance as nb
>>> from neuro_balance.learn.datasets import digits
>>> from neuro_balance.learn.training import train          # also nb.train
>>> data = digits()
>>> res = train(nb.mlp([64, 32, 10]), data.X_train, data.y_train, epochs=2)
>>> len(res.history["loss"])  # the initial state, then one entry per epoch
3
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..balancing.costs import Cost, Lp
from ..balancing.metrics import imbalance
from ..model.network import Network
from .backprop import evaluate, gradients
from .batchnorm import BatchNorm
from .losses import LOSSES, batch_targets, per_step, regularizer_gradient
from .optimizers import OPTIMIZERS, Optimizer
from .parameters import parameter_log_factors, parameters
from .schedule import BalanceSchedule, apply_balance, parse_schedule
from ..seeding import check_random_state

__all__ = ["LOSSES", "OPTIMIZERS", "BalanceSchedule", "parse_schedule", "TrainResult", "Optimizer", "train",
           "gradients", "evaluate", "parameters", "parameter_log_factors", "regularizer_gradient"]


@dataclass
class TrainResult:
    """Outcome of `train`.

    Attributes
    ----------
    network : Network
        The trained network (a copy; the input network is untouched).
    history : dict of list
        Entry 0 is the initial state, entry k the state after epoch k: ``loss`` and ``accuracy`` on the
        training set (data loss, without the regulariser), ``deficit`` (S1: sum over balanced units of
        ``(in - out)**2`` for the L2 cost, biases included), ``max_relative_imbalance`` and ``cost``
        for the monitored cost (``reg`` if given, else the balancing cost, else L2), ``weight_norm``
        (Frobenius norm of all parameters, S1's ||W||), and with
        ``validation`` data ``val_loss`` and ``val_accuracy``.
    balance_events : list of dict
        Epoch, kind and cost before/after of every balancing operation.
    optimizer : Optimizer
    """

    network: Network
    history: dict[str, list[float]]
    balance_events: list[dict]
    optimizer: Optimizer

    def __repr__(self) -> str:
        h = self.history
        acc = f", val_accuracy={h['val_accuracy'][-1]:.4f}" if "val_accuracy" in h else ""
        deficit = f", deficit={h['deficit'][-1]:.3g}" if "deficit" in h else ""
        return (f"TrainResult(epochs={len(h['loss']) - 1}, loss={h['loss'][-1]:.4g}, accuracy={h['accuracy'][-1]:.4f}"
                f"{acc}{deficit}, balancing operations={len(self.balance_events)})")


def _check_data(net: Network, X, y, where: str) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    n_in = net.input.n_features
    if net.recurrent:
        if X.ndim != 3 or X.shape[2] != n_in:
            raise ValueError(f"{where} X: a recurrent network takes (T, batch, {n_in}) sequences, got {X.shape}")
        n = X.shape[1]
        n_y = y.shape[1] if per_step(net, y, X.shape[0]) else (y.shape[0] if y.ndim else -1)
    else:
        if X.ndim != 2 or X.shape[1] != n_in:
            raise ValueError(f"{where} X: expected shape (n_samples, {n_in}), got {X.shape}")
        n, n_y = X.shape[0], y.shape[0] if y.ndim else -1
    if n_y != n:
        raise ValueError(f"{where} y: {n_y} targets for {n} samples")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{where} X: contains NaN or Inf")
    return X, y


def _check_targets(net: Network, X: np.ndarray, y: np.ndarray, loss: str, where: str) -> None:
    n_out = net.output.n_features
    if np.issubdtype(y.dtype, np.integer):
        if y.size and (y.min() < 0 or y.max() >= n_out):
            raise ValueError(f"{where} y: labels must lie in [0, {n_out}) for {n_out} outputs, got "
                             f"{y.min()}..{y.max()}")
    elif loss == "cross_entropy":
        raise ValueError(f"{where} y: must hold integer class labels for the cross_entropy loss, got {y.dtype}")
    elif y.shape[-1] != n_out or y.ndim != (3 if per_step(net, y, X.shape[0]) else 2):
        raise ValueError(f"{where} y: real-valued mse targets need shape (n_samples, {n_out})"
                         f"{' or (T, n_samples, ' + str(n_out) + ')' if net.recurrent else ''}, got {y.shape}")


def _record(history: dict, net: Network, X, y, loss: str, monitor: Cost | None, validation) -> None:
    value, acc = evaluate(net, X, y, loss)
    history["loss"].append(value)
    history["accuracy"].append(acc)
    if monitor is not None:
        rep2 = imbalance(net, Lp(2))
        history["deficit"].append(float(sum(d[rep2.balanced[n]].sum() for n, d in rep2.deficit.items())))
        rep = rep2 if monitor == Lp(2) else imbalance(net, monitor)
        history["max_relative_imbalance"].append(rep.max_relative)
        history["cost"].append(rep.total_cost)
        history["weight_norm"].append(float(np.sqrt(sum(np.sum(w * w) for w in parameters(net).values()))))
    if validation is not None:
        v_loss, v_acc = evaluate(net, validation[0], validation[1], loss)
        history["val_loss"].append(v_loss)
        history["val_accuracy"].append(v_acc)


def train(net: Network, X: np.ndarray, y: np.ndarray, *, loss: str = "cross_entropy", reg: Cost | None = None,
          lr: float = 0.05, epochs: int = 10, batch_size: int = 32, optimizer: str = "sgd",
          balance: str | BalanceSchedule | None = None, seed: int | np.random.Generator = 0,
          validation: tuple[np.ndarray, np.ndarray] | None = None, momentum: float = 0.9,
          diagnostics: bool = True, batch_norm: bool = False) -> TrainResult:
    """Train ``net`` by minibatch gradient descent on ``E + R``, optionally balancing along the way.

    Under gradient flow on ``E`` alone each unit's ``sum_in w**2 - sum_out w**2`` is conserved; a step
    of size ``lr`` changes it by ``lr**2 (|g_in|**2 - |g_out|**2)``; with ``R = alpha * Lp(2)`` it
    decays like ``exp(-4 alpha t)``, ``t = lr * steps`` (theory §4).

    Parameters
    ----------
    net : Network
        Not modified; the result holds a trained copy.
    X, y : ndarray
        Samples ``(n, n_in)`` (recurrent: ``(T, n, n_in)``) and integer labels or targets (see `gradients`).
    loss : {"cross_entropy", "mse"}
    reg : Cost, optional
        Regulariser added to the loss, e.g. ``1e-3 * nb.Lp(2)``; biases included unless the cost
        excludes them.
    lr : float
    epochs : int
    batch_size : int
    optimizer : {"sgd", "momentum", "adam"}
    balance : str or BalanceSchedule, optional
        ``"before"`` (full balance first), ``"partial[:k]"`` (one sweep every k epochs, S2's NB),
        ``"full[:k]"``, joined with ``+`` and optionally ``@L1``; see `parse_schedule`.
    seed : int or numpy.random.Generator
        Drives the minibatch order (and the balancing engines): equal seeds give equal results.
    validation : (X, y), optional
        Held-out data evaluated after every epoch.
    momentum : float
        Coefficient of the ``momentum`` optimiser.
    diagnostics : bool
        Record the balance diagnostics (``deficit``, ``max_relative_imbalance``, ``cost``,
        ``weight_norm``) every epoch; False keeps only losses and accuracies (faster on small data).
    batch_norm : bool
        Batch-normalise every hidden population while training (`BatchNorm`); every record and the
        result are the network with the normalisation folded in (statistics of ``X``). Not with
        ``balance``.

    Returns
    -------
    TrainResult
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if reg is not None and not isinstance(reg, Cost):
        raise ValueError(f"reg must be a Cost such as 1e-3 * nb.Lp(2), got {reg!r}")
    X, y = _check_data(net, X, y, "train:")
    _check_targets(net, X, y, loss, "train:")
    if validation is not None:
        validation = _check_data(net, *validation, "train: validation")
        _check_targets(net, *validation, loss, "train: validation")
    schedule = parse_schedule(balance)
    if batch_norm and schedule is not None:
        raise ValueError("train: batch_norm and balance cannot be combined (balancing does not see gamma)")
    bn = BatchNorm.for_network(net) if batch_norm else None
    opt = Optimizer(optimizer, lr, momentum)
    rng = check_random_state(seed)
    net = net.copy()
    monitor = reg if reg is not None else (schedule.cost if schedule is not None else Lp(2))
    if not diagnostics:
        monitor = None
    keys = ["loss", "accuracy"]
    keys += ["deficit", "max_relative_imbalance", "cost", "weight_norm"] if diagnostics else []
    keys += ["val_loss", "val_accuracy"] if validation is not None else []
    history: dict[str, list[float]] = {k: [] for k in keys}
    events: list[dict] = []
    if schedule is not None and schedule.before:
        events.append({"epoch": 0, "mode": "full", **apply_balance(net, schedule, True, opt, rng)})
    _record(history, bn.fold(net, X) if bn else net, X, y, loss, monitor, validation)
    n = X.shape[1] if net.recurrent else X.shape[0]
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            xb = X[:, idx] if net.recurrent else X[idx]
            _, grads = gradients(net, xb, batch_targets(y, idx, net, X.shape[0]), loss=loss, reg=reg, batch_norm=bn)
            opt.step({**parameters(net), **(bn.parameters() if bn else {})}, grads)
        if not all(np.all(np.isfinite(w)) for w in parameters(net).values()):
            raise FloatingPointError(f"train: parameters became NaN or Inf in epoch {epoch}; lower lr ({lr})")
        if schedule is not None and schedule.every and epoch % schedule.every == 0:
            full = schedule.mode == "full"
            events.append({"epoch": epoch, "mode": schedule.mode, **apply_balance(net, schedule, full, opt, rng)})
        _record(history, bn.fold(net, X) if bn else net, X, y, loss, monitor, validation)
    return TrainResult(bn.fold(net, X) if bn else net, history, events, opt)
