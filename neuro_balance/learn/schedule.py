"""Balancing during training: the schedule (when, how, for which cost), its text form, and one balancing event.

S2's "FB" balances the initial network fully; its "NB" balances every unit once after every epoch, a
layer at a time. A balancing event rescales the network in place and carries the optimiser's state
along (see ``optimizers.py``), so training continues as if every past gradient had been taken at the
rescaled weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..balancing.balance import balance
from ..balancing.costs import Cost, Lp, parse_cost
from ..balancing.scaling import scale
from ..model.network import Network
from .optimizers import Optimizer
from .parameters import parameter_log_factors

__all__ = ["BalanceSchedule", "parse_schedule", "apply_balance"]


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


def apply_balance(net: Network, schedule: BalanceSchedule, full: bool, optimizer: Optimizer,
                  rng: np.random.Generator) -> dict[str, float]:
    """Balance ``net`` in place and carry the optimiser state along; returns the cost before and after."""
    if full:
        res = balance(net, schedule.cost, "global", tol=schedule.tol, seed=rng)
    else:
        # one sweep of the colour schedule: every unit balanced once, a whole layer at a time
        res = balance(net, schedule.cost, "sweep", schedule="colour", tol=1e-300, max_iter=1, seed=rng)
    log_factors = parameter_log_factors(net, res.log_scales)
    scale(net, res.log_scales, inplace=True)
    optimizer.rescale(log_factors)
    return {"cost_before": res.cost_before, "cost_after": res.cost_after}
