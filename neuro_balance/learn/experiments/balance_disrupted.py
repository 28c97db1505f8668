"""S1 Fig 4: a balanced network trained without a regulariser loses its balance, by O(lr**2) per step."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import datasets
from ...balancing.balance import balance
from ...balancing.costs import Lp
from ...balancing.metrics import imbalance
from ...model.builders import mlp
from ..training import train
from .common import unit_l2_difference

__all__ = ["balance_disrupted", "plot"]


def balance_disrupted(lrs: Sequence[float] = (0.01, 0.05, 0.2), epochs: int = 30, batch_size: int = 32,
                      scaling_lrs: Sequence[float] = (0.016, 0.008, 0.004, 0.002, 0.001), scaling_steps: int = 5,
                      sizes: Sequence[int] = (64, 32, 32, 10), seed: int = 0) -> dict[str, Any]:
    """A fully balanced init trained by SGD without regulariser at several learning rates (S1 Fig 4).

    Each step changes unit i's ``D_i = sum_in w**2 - sum_out w**2`` by exactly
    ``lr**2 (|g_in|**2 - |g_out|**2)`` (theory §4), so balance survives small steps and is lost with
    large ones. Part two measures the drift of ``D`` after ``scaling_steps`` full-batch steps for each
    of ``scaling_lrs`` and fits its log-log slope (2 for O(lr**2)).

    Returns
    -------
    dict
        ``curves``: per learning rate the deficit, max relative imbalance and training loss per epoch;
        the drift for each scaling learning rate. ``summary``: final deficits and the fitted slope.
    """
    data = datasets.digits()
    net = balance(mlp(list(sizes), seed=seed), Lp(2), tol=1e-12).network
    start = unit_l2_difference(net)
    curves: dict[str, Any] = {"epoch": list(range(epochs + 1)), "lrs": list(lrs)}
    summary: dict[str, Any] = {"initial_max_relative_imbalance": imbalance(net, Lp(2)).max_relative}
    for lr in lrs:
        res = train(net, data.X_train, data.y_train, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed,
                    validation=(data.X_test, data.y_test))
        for key in ("deficit", "max_relative_imbalance", "loss", "val_accuracy"):
            curves[f"{key}_lr{lr:g}"] = res.history[key]
        summary[f"final_deficit_lr{lr:g}"] = res.history["deficit"][-1]
        summary[f"final_max_relative_imbalance_lr{lr:g}"] = res.history["max_relative_imbalance"][-1]
        summary[f"test_accuracy_lr{lr:g}"] = res.history["val_accuracy"][-1]
    X, y = data.X_train[:256], data.y_train[:256]
    drift = []
    for lr in scaling_lrs:
        res = train(net, X, y, lr=lr, epochs=scaling_steps, batch_size=len(y), seed=seed)
        drift.append(float(np.linalg.norm(unit_l2_difference(res.network) - start)))
    curves["scaling_lrs"], curves["drift"] = list(scaling_lrs), drift
    slope = float(np.polyfit(np.log(scaling_lrs), np.log(drift), 1)[0]) if len(scaling_lrs) > 1 else math.nan
    summary["drift_loglog_slope"] = slope
    summary["drift_ratios_per_halving"] = [a / b for a, b in zip(drift[:-1], drift[1:])]
    config = {"lrs": list(lrs), "epochs": epochs, "batch_size": batch_size, "sizes": list(sizes), "seed": seed,
              "scaling_lrs": list(scaling_lrs), "scaling_steps": scaling_steps, "scaling_samples": len(y),
              "data": "digits"}
    return {"name": "balance_disrupted", "config": config, "curves": curves, "summary": summary}


def plot(res: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    c = res["curves"]
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3)
    for lr in c["lrs"]:
        axes[0].plot(c["epoch"], np.maximum(c[f"deficit_lr{lr:g}"], 1e-30), label=f"lr {lr:g}")
        axes[1].plot(c["epoch"], c[f"loss_lr{lr:g}"], label=f"lr {lr:g}")
    axes[0].set_yscale("log")
    axes[0].set_title("deficit (exactly balanced at epoch 0)", fontsize=10)
    axes[0].set_ylabel(r"deficit $\sum_i D_i^2$, $D_i = \sum_\mathrm{in} w^2 - \sum_\mathrm{out} w^2$")
    axes[1].set_title("training loss", fontsize=10)
    axes[1].set_ylabel("training loss E")
    for ax in axes[:2]:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    lrs, drift = np.array(c["scaling_lrs"]), np.array(c["drift"])
    axes[2].loglog(lrs, drift, "o-", label=f"measured (slope {res['summary']['drift_loglog_slope']:.2f})")
    axes[2].loglog(lrs, drift[-1] * (lrs / lrs[-1]) ** 2, "k--", lw=1, label=r"$\propto \eta^2$")
    axes[2].set_xlabel(r"learning rate $\eta$")
    axes[2].set_ylabel(r"$\|D - D_0\|$ (all units)")
    axes[2].set_title(f"drift of D after {res['config']['scaling_steps']} full-batch steps", fontsize=10)
    axes[2].legend(fontsize=8)
    fig.suptitle("Training without a regulariser disrupts balance (S1 Fig 4; digits)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
