"""Gradient training of any `Network` with Lp regularisers and balancing hooks (theory §4, §6).

Backpropagation asks each projection kind for its ``vjp``, so every registered kind (dense, and the
convolution kinds) trains, in feedforward DAGs and in recurrent networks (backpropagation through
time over ``(T, batch, n)`` sequences). Parameters are named as in model files: a projection's name
for its weight, ``"{population}.bias"`` for a bias.

Balancing and the optimiser. Rescaling unit i by ``lam`` multiplies a parameter on j->i by
``s = exp(u_i - c_j u_j)``; the loss is unchanged, so its gradient at the rescaled point is ``g / s``.
Momentum buffers (sums of past gradients) are therefore divided by ``s`` and Adam's second moments by
``s**2``: the optimiser state is what it would have been had every past gradient been taken at the
rescaled weights.

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

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..balancing.costs import Cost, Lp, parse_cost
from ..balancing.balance import balance as _balance
from ..model.kinds import get_kind
from ..balancing.metrics import imbalance
from ..model.network import Network
from ..balancing.scaling import scale

__all__ = ["LOSSES", "OPTIMIZERS", "BalanceSchedule", "parse_schedule", "TrainResult", "Optimizer", "train",
           "gradients", "evaluate", "parameters", "parameter_log_factors", "regularizer_gradient"]

LOSSES = ("cross_entropy", "mse")
OPTIMIZERS = ("sgd", "momentum", "adam")


# ---------------------------------------------------------------------------------------------- parameters
def parameters(net: Network) -> dict[str, np.ndarray]:
    """The trainable arrays of ``net`` (not copies): weights by projection name, ``"{pop}.bias"`` biases."""
    params = {proj.name: proj.weight for proj in net.projections}
    for name, pop in net.populations.items():
        if pop.bias is not None:
            params[f"{name}.bias"] = pop.bias
    return params


def parameter_log_factors(net: Network, log_scales: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Log of the factor `scale` applies to every parameter: ``u_i - c_j u_j`` on j->i, ``u_i`` on a bias.

    Returns arrays broadcastable to each parameter's shape, keyed like `parameters`.
    """
    out = {}
    for proj in net.projections:
        pre, post = net.populations[proj.pre], net.populations[proj.post]
        post_idx, pre_idx = get_kind(proj.kind).groups(proj, pre, post)
        log = np.zeros(proj.weight.shape)
        if proj.post in log_scales:
            log = log + np.asarray(log_scales[proj.post])[post_idx]
        if proj.pre in log_scales:
            log = log - pre.degree * np.asarray(log_scales[proj.pre])[pre_idx]
        out[proj.name] = log
    for name, pop in net.populations.items():
        if pop.bias is not None:
            out[f"{name}.bias"] = np.asarray(log_scales.get(name, np.zeros(pop.size)), dtype=np.float64)
    return out


# ---------------------------------------------------------------------------------------------- losses
def _as_sequence(net: Network, X: np.ndarray) -> np.ndarray:
    """``(T, batch, n)`` view of the inputs (T = 1 for a feedforward network)."""
    return X if net.recurrent else X[None]


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


def _forward_cache(net: Network, X: np.ndarray) -> list[tuple[dict, dict]]:
    """Per time step: activities and preactivations of every population."""
    steps, previous = [], None
    for t in range(X.shape[0]):
        acts, pres = {}, {}
        for name in net.order:
            pop = net.populations[name]
            if pop.role == "input":
                acts[name] = X[t]
                continue
            z = net.preactivation(name, acts, previous)
            pres[name] = z
            acts[name] = pop.activation(z)
        steps.append((acts, pres))
        previous = acts
    return steps


def _per_step(net: Network, y: np.ndarray, T: int) -> bool:
    """True when a recurrent network's targets carry a time axis: ``(T, batch)`` labels or ``(T, batch, n)``."""
    return net.recurrent and y.ndim >= 2 and y.shape[0] == T and (
        y.ndim == 3 or np.issubdtype(y.dtype, np.integer))


def _output_steps(net: Network, y: np.ndarray, T: int) -> list[int]:
    """Time steps the loss reads: every step if ``y`` has a time axis, else the last one."""
    return list(range(T)) if _per_step(net, y, T) else [T - 1]


def _data_loss(net: Network, steps, y: np.ndarray, loss: str) -> tuple[float, dict[int, np.ndarray]]:
    """Loss averaged over the output steps, and the gradient at each output step."""
    out_name, n_out = net.output.name, net.output.n_features
    per_step = _per_step(net, y, len(steps))
    times = _output_steps(net, y, len(steps))
    total, grads = 0.0, {}
    for t in times:
        target = _targets(y[t] if per_step else y, loss, n_out)
        value, g = _loss_and_grad(steps[t][0][out_name], target, loss)
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


def gradients(net: Network, X: np.ndarray, y: np.ndarray, *, loss: str = "cross_entropy",
              reg: Cost | None = None) -> tuple[float, dict[str, np.ndarray]]:
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

    Returns
    -------
    loss : float
    grads : dict of ndarray
        Keyed like `parameters`.
    """
    X = _as_sequence(net, np.asarray(X, dtype=np.float64))
    y = np.asarray(y)
    steps = _forward_cache(net, X)
    value, out_grads = _data_loss(net, steps, y, loss)
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
            g_pre = g_act[name] * pop.activation.derivative(pres[name])
            if pop.bias is not None:
                add(f"{name}.bias", g_pre.sum(axis=0).reshape(pop.size, -1).sum(axis=1))
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
        yb = _batch(y, sl, net, X.shape[0])
        steps = _forward_cache(net, _as_sequence(net, xb))
        value, _ = _data_loss(net, steps, yb, loss)
        total += value * (xb.shape[axis])
        if labels:
            per_step = _per_step(net, yb, len(steps))
            times = _output_steps(net, yb, len(steps))
            for t in times:
                pred = steps[t][0][net.output.name].argmax(axis=1)
                correct += np.sum(pred == (yb[t] if per_step else yb)) / len(times)
    return total / n, (float(correct) / n if labels else math.nan)


def _batch(y: np.ndarray, sl, net: Network, T: int) -> np.ndarray:
    return y[:, sl] if _per_step(net, y, T) else y[sl]


# ---------------------------------------------------------------------------------------------- optimisers
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


# ---------------------------------------------------------------------------------------------- balancing
@dataclass(frozen=True)
class BalanceSchedule:
    """When and how to balance during training.

    Attributes
    ----------
    cost : Cost
        The cost balanced (S2's "L1 NB" uses ``Lp(1)``, "L2 NB" ``Lp(2)``).
    before : bool
        Fully balance the initial network.
    every : int
        Balance after every ``every``-th epoch (0: never).
    mode : {"partial", "full"}
        ``partial``: one sweep balancing every unit once, a colour class (a layer of a layered
        network) at a time (S2's "NB", which sweeps layer by layer); ``full``:
        balance to convergence (global solver, tolerance ``tol``).
    tol : float
    """

    cost: Cost = field(default_factory=lambda: Lp(2))
    before: bool = False
    every: int = 0
    mode: str = "partial"
    tol: float = 1e-10

    def __post_init__(self) -> None:
        if self.mode not in ("partial", "full"):
            raise ValueError(f"balance mode must be 'partial' or 'full', got {self.mode!r}")
        if not isinstance(self.every, (int, np.integer)) or self.every < 0:
            raise ValueError(f"balance every: must be an integer >= 0, got {self.every!r}")
        if not isinstance(self.cost, Cost):
            raise ValueError(f"balance cost: must be a Cost, got {self.cost!r}")


def parse_schedule(spec: str | BalanceSchedule | None) -> BalanceSchedule | None:
    """Parse ``"before"``, ``"partial[:k]"``, ``"full[:k]"``, joined with ``+``, optionally ``@COST``.

    Examples
    --------
    >>> parse_schedule("before+partial@L1")
    BalanceSchedule(cost=Lp(1.0), before=True, every=1, mode='partial', tol=1e-10)
    """
    if spec is None or isinstance(spec, BalanceSchedule):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"balance: expected a string or BalanceSchedule, got {spec!r}")
    text, _, cost_text = spec.partition("@")
    cost = parse_cost(cost_text) if cost_text else Lp(2)
    before, every, mode = False, 0, "partial"
    for part in text.split("+"):
        name, _, k = part.strip().partition(":")
        if name == "before" and not k:
            before = True
        elif name in ("partial", "full"):
            try:
                every = int(k) if k else 1
            except ValueError:
                raise ValueError(f"balance {spec!r}: {k!r} is not an integer number of epochs") from None
            mode = name
        else:
            raise ValueError(f"balance {spec!r}: unknown part {part!r}; use before, partial[:k], full[:k], "
                             "joined with '+', optionally '@L1' / '@L2'")
    return BalanceSchedule(cost, before, every, mode)


def _apply_balance(net: Network, schedule: BalanceSchedule, full: bool, optimizer: Optimizer,
                   rng: np.random.Generator) -> dict[str, float]:
    """Balance ``net`` in place and carry the optimiser state along; returns the cost before and after."""
    if full:
        res = _balance(net, schedule.cost, "global", tol=schedule.tol, seed=rng)
    else:
        # one sweep of the colour schedule: every unit balanced once, a whole layer at a time
        res = _balance(net, schedule.cost, "sweep", schedule="colour", tol=1e-300, max_iter=1, seed=rng)
    log_factors = parameter_log_factors(net, res.log_scales)
    scale(net, res.log_scales, inplace=True)
    optimizer.rescale(log_factors)
    return {"cost_before": res.cost_before, "cost_after": res.cost_after}


# ---------------------------------------------------------------------------------------------- training
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
        n_y = y.shape[1] if _per_step(net, y, X.shape[0]) else (y.shape[0] if y.ndim else -1)
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
    elif y.shape[-1] != n_out or y.ndim != (3 if _per_step(net, y, X.shape[0]) else 2):
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
          diagnostics: bool = True) -> TrainResult:
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
    opt = Optimizer(optimizer, lr, momentum)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
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
        events.append({"epoch": 0, "mode": "full", **_apply_balance(net, schedule, True, opt, rng)})
    _record(history, net, X, y, loss, monitor, validation)
    n = X.shape[1] if net.recurrent else X.shape[0]
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            xb = X[:, idx] if net.recurrent else X[idx]
            _, grads = gradients(net, xb, _batch(y, idx, net, X.shape[0]), loss=loss, reg=reg)
            opt.step(parameters(net), grads)
        if not all(np.all(np.isfinite(w)) for w in parameters(net).values()):
            raise FloatingPointError(f"train: parameters became NaN or Inf in epoch {epoch}; lower lr ({lr})")
        if schedule is not None and schedule.every and epoch % schedule.every == 0:
            full = schedule.mode == "full"
            events.append({"epoch": epoch, "mode": schedule.mode, **_apply_balance(net, schedule, full, opt, rng)})
        _record(history, net, X, y, loss, monitor, validation)
    return TrainResult(net, history, events, opt)
