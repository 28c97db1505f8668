"""S1 Fig 3: gradient descent balances a network only when the loss carries a regulariser."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import datasets
from ...balancing.costs import Lp
from ...model.builders import mlp
from ..training import train
from .common import mean_std, steps_per_epoch

__all__ = ["gd_regularizer", "plot"]


def gd_regularizer(alpha: float = 1e-2, lr: float = 0.05, epochs: int = 60, batch_size: int = 32,
                   sizes: Sequence[int] = (64, 32, 32, 10), seeds: Sequence[int] = (0, 1, 2)) -> dict[str, Any]:
    """SGD on E alone vs on E + alpha * L2 from the same inits, on digits (S1 Fig 3).

    Per unit, gradient flow gives ``d/dt D_i = -4 alpha D_i`` (theory §4), so the deficit
    ``sum_i D_i**2`` follows ``exp(-8 alpha t)`` with ``t = lr * steps``; without the regulariser
    the deficit stays near its start (it only drifts by O(lr**2) per step).

    Returns
    -------
    dict
        ``curves``: epochs, ``t``, mean/std over seeds of deficit, training loss, test accuracy and
        weight norm for both runs, and the predicted ``exp(-8 alpha t)`` curve.
    """
    data = datasets.digits()
    steps = steps_per_epoch(len(data.y_train), batch_size)
    runs: dict[str, dict[str, list]] = {"plain": {}, "l2": {}}
    for seed in seeds:
        net = mlp(list(sizes), seed=seed)
        for label, reg in (("plain", None), ("l2", alpha * Lp(2))):
            res = train(net, data.X_train, data.y_train, reg=reg, lr=lr, epochs=epochs, batch_size=batch_size,
                        seed=seed, validation=(data.X_test, data.y_test))
            for key in ("deficit", "loss", "val_accuracy", "weight_norm"):
                runs[label].setdefault(key, []).append(res.history[key])
    t = [lr * steps * k for k in range(epochs + 1)]
    curves: dict[str, Any] = {"epoch": list(range(epochs + 1)), "t": t}
    for label, hist in runs.items():
        for key, rows in hist.items():
            curves[f"{label}_{key}"], curves[f"{label}_{key}_std"] = mean_std(rows)
    deficit0 = curves["l2_deficit"][0]
    curves["predicted_l2_deficit"] = [deficit0 * math.exp(-8 * alpha * tk) for tk in t]
    # fitted decay rate of the deficit over the first half of training; later the O(lr**2) noise of
    # SGD sets a floor under the deficit and slows the apparent decay
    half = max(epochs // 2, 1)
    logs = np.log(np.asarray([np.asarray(r) for r in runs["l2"]["deficit"]]))
    rate = -float(np.mean((logs[:, half] - logs[:, 0]) / t[half])) if epochs >= 1 else math.nan
    summary = {
        "deficit_ratio_plain": curves["plain_deficit"][-1] / curves["plain_deficit"][0],
        "deficit_ratio_l2": curves["l2_deficit"][-1] / deficit0,
        "predicted_ratio_l2": math.exp(-8 * alpha * t[-1]),
        "fitted_deficit_decay_rate": rate, "predicted_deficit_decay_rate": 8 * alpha,
        "test_accuracy_plain": curves["plain_val_accuracy"][-1], "test_accuracy_l2": curves["l2_val_accuracy"][-1],
        "weight_norm_plain": curves["plain_weight_norm"][-1], "weight_norm_l2": curves["l2_weight_norm"][-1],
    }
    config = {"alpha": alpha, "lr": lr, "epochs": epochs, "batch_size": batch_size, "sizes": list(sizes),
              "seeds": list(seeds), "data": "digits", "steps_per_epoch": steps}
    return {"name": "gd_regularizer", "config": config, "curves": curves, "summary": summary}


def plot(res: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    c = res["curves"]
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3)
    for label, name, colour in (("plain", "E only", "C0"), ("l2", f"E + {res['config']['alpha']:g} L2", "C1")):
        for ax, key in zip(axes, ("deficit", "loss", "weight_norm")):
            mean, std = np.array(c[f"{label}_{key}"]), np.array(c[f"{label}_{key}_std"])
            ax.plot(c["epoch"], mean, color=colour, label=name)
            ax.fill_between(c["epoch"], mean - std, mean + std, color=colour, alpha=0.2)
    cfg = res["config"]
    rate = 8 * cfg["alpha"] * cfg["lr"] * cfg["steps_per_epoch"]  # exp(-8 alpha t), t = lr * steps * epoch
    axes[0].plot(c["epoch"], c["predicted_l2_deficit"], "k--", lw=1,
                 label=rf"theory $D_0\,e^{{-8\alpha\eta S k}} = D_0\,e^{{-{rate:.3g}\,k}}$")
    axes[0].set_yscale("log")
    ylabels = (r"deficit $\sum_i(\mathrm{in}_i-\mathrm{out}_i)^2$", "training loss E",
               r"weight norm $\|W\|_F$")
    for ax, ylabel in zip(axes, ylabels):
        ax.set_ylabel(ylabel)
        ax.set_xlabel("epoch k")
    axes[0].set_title(f"deficit (S = {cfg['steps_per_epoch']} steps per epoch, η = {cfg['lr']:g})", fontsize=10)
    axes[1].set_title("training loss", fontsize=10)
    axes[2].set_title("weight norm", fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle("Gradient descent balances only with a regulariser (S1 Fig 3; digits, mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
