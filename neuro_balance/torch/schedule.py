"""A training loop for torch modules with the companion paper's balancing schedules (before, every k epochs, partial)."""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from ..learn.schedule import BalanceSchedule, parse_schedule
from ..seeding import check_random_state
from .rescale import balance_

__all__ = ["fit"]


def _balance(module, schedule: BalanceSchedule, full: bool, example_input, optimizer, rng) -> dict[str, float]:
    if full:
        res = balance_(module, schedule.cost, example_input, optimizer, method="global", tol=schedule.tol, seed=rng)
    else:  # one colour sweep: every unit balanced once, a whole layer at a time
        res = balance_(module, schedule.cost, example_input, optimizer, method="sweep", schedule="colour",
                       tol=1e-300, max_iter=1, seed=rng)
    return {"cost_before": res.cost_before, "cost_after": res.cost_after}


def fit(module: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable, batches: Iterable,
        epochs: int, example_input: torch.Tensor, balance: str | BalanceSchedule | None = "before+partial",
        seed: int | np.random.Generator | None = 0) -> list[dict]:
    """Train ``module`` on ``batches`` for ``epochs``, balancing it in place as ``balance`` says.

    Parameters
    ----------
    module, optimizer
        A torch module and its SGD, Adam or AdamW optimiser (state carried through every balancing). A
        module in eval mode is put in training mode; one in training mode trains as it is, each submodule
        in its own mode (a BatchNorm set to eval stays frozen).
    loss_fn : callable
        ``loss_fn(module(x), y)`` -> scalar tensor.
    batches : iterable of (x, y)
        Iterated once per epoch (a list or a ``DataLoader``).
    epochs : int
    example_input : torch.Tensor
        One batch of inputs, for the trace.
    balance : str or BalanceSchedule or None
        ``"before"`` (full balance before training, the paper's FB), ``"partial[:k]"`` (one sweep every k
        epochs, NB), ``"full[:k]"``, joined with ``+``, optionally ``@COST`` (``"before+partial@L1"``).
    seed : int, Generator or None
        For the balancing engines' random choices.

    Returns
    -------
    list of dict
        One entry per epoch: ``epoch``, ``loss`` (mean over batches) and, where balancing ran,
        ``cost_before`` and ``cost_after`` (plus an entry ``epoch = 0`` for balancing before training).
    """
    schedule, rng = parse_schedule(balance), check_random_state(seed)
    if not module.training:  # a module in training mode keeps each submodule's mode (a frozen BatchNorm)
        module.train()
    history = []
    if schedule is not None and schedule.before:
        history.append({"epoch": 0, **_balance(module, schedule, True, example_input, optimizer, rng)})
    for epoch in range(1, epochs + 1):
        total, count = 0.0, 0
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(module(x), y)
            loss.backward()
            optimizer.step()
            total, count = total + float(loss.detach()) * len(x), count + len(x)
        entry = {"epoch": epoch, "loss": total / max(count, 1)}
        if schedule is not None and schedule.every and epoch % schedule.every == 0:
            entry.update(_balance(module, schedule, schedule.mode == "full", example_input, optimizer, rng))
        history.append(entry)
    return history
