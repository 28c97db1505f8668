"""S2: plain vs L1/L2 regularised vs full balance first vs partial balancing every epoch, on full and scarce data."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import datasets
from ...balancing.costs import Lp
from ...grid import run_grid
from ...model.builders import mlp
from ..training import train
from .common import ARM_NOTE, ARM_STYLE, epochs_to, steps_per_epoch, subset

__all__ = ["CONDITIONS", "balance_and_learning", "plot", "text"]


CONDITIONS = {
    "plain": {},
    "L1": {"reg": "l1"},
    "L2": {"reg": "l2"},
    "FB": {"balance": "before"},
    "L1 NB": {"balance": "partial@L1"},
    "L2 NB": {"balance": "partial@L2"},
}


def _training_run(shared: dict[str, Any], cell: tuple[str, str, int]) -> list[float]:
    """One grid cell: train the MLP of ``seed`` under condition ``cond`` on the subset of ``key``."""
    key, cond, seed = cell
    spec, data = CONDITIONS[cond], shared["subsets"][key][seed]
    reg = {"l1": shared["l1"] * Lp(1), "l2": shared["l2"] * Lp(2), None: None}[spec.get("reg")]
    res = train(mlp(shared["sizes"], seed=seed), data.X_train, data.y_train, reg=reg, lr=shared["lr"],
                epochs=shared["epochs"][key], batch_size=shared["batch_size"], balance=spec.get("balance"),
                seed=seed, validation=(data.X_test, data.y_test), diagnostics=False)
    return list(res.history["val_accuracy"])


def balance_and_learning(mnist: str | os.PathLike | None = None, seeds: Sequence[int] = (0, 1, 2, 3, 4),
                         fractions: Sequence[float] = (1.0, 0.01), epochs: int | None = None,
                         lr: float = 0.01, batch_size: int = 32, l1: float = 1e-4, l2: float = 1e-3,
                         sizes: Sequence[int] | None = None, target: float = 0.9,
                         conditions: Sequence[str] = tuple(CONDITIONS), scheduler: Any = None,
                         workers: int | None = None) -> dict[str, Any]:
    """S2's protocol: plain vs L1/L2 regularised vs full balance first (FB) vs partial balancing every
    epoch (L1 NB, L2 NB), over ``seeds``, on the full training set and on stratified fractions of it.

    Each seed fixes the init (``mlp(sizes, seed)``), the minibatch order and the training subset, shared
    by all conditions; the train/test split is fixed (digits: seed 0; MNIST: its own). FB balances the
    init fully for L2 (global solver); NB balances every unit once after every epoch for the named cost
    (one colour sweep: a layer at a time), with no regulariser in the loss (S2's definitions).

    Parameters
    ----------
    mnist : path, optional
        A directory with the four MNIST / Fashion-MNIST IDX files; default: scikit-learn's digits.
    seeds : sequence of int
    fractions : sequence of float
        Training-set fractions (stratified); 0.01 is S2's "1 %".
    epochs : int, optional
        Per fraction: ``epochs`` if given, else 40 for the full set and enough epochs for ~200 steps on
        a fraction.
    lr, batch_size : plain SGD, as S2
    l1, l2 : coefficients of the L1 and L2 regularisers
    sizes : layer sizes, default ``[n_in, 32, 32, 10]`` (digits) or ``[784, 256, 128, 10]`` (MNIST)
    target : test accuracy for "epochs to target"
    conditions : subset of `CONDITIONS`
    scheduler, workers
        Where the training runs (fraction x condition x seed, independent cells) go: this process (None)
        or Dask (`neuro_balance.grid.run_grid`); the numbers are the same either way.

    Returns
    -------
    dict
        ``summary[fraction][condition]``: mean and std of the final and best test accuracy, of the
        epochs to ``target`` (over the seeds that reached it) and how many reached it.
        ``curves[fraction][condition]``: mean and std test accuracy per epoch.
    """
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ValueError(f"conditions: unknown {unknown}; known: {list(CONDITIONS)}")
    curves: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    base = datasets.mnist(mnist) if mnist is not None else datasets.digits()
    layer_sizes = list(sizes) if sizes is not None else (
        [base.n_features, 32, 32, base.n_classes] if mnist is None else [base.n_features, 256, 128, base.n_classes])
    subsets, n_train, n_epochs = {}, {}, {}
    for fraction in fractions:
        key = f"{fraction:g}"
        # one stratified training subset per seed (the test set is always the full one)
        subsets[key] = {seed: base if fraction == 1.0 else subset(base, fraction, seed) for seed in seeds}
        n_train[key] = len(subsets[key][seeds[0]].y_train)
        n_epochs[key] = epochs if epochs is not None else (
            40 if fraction == 1.0 else max(40, -(-200 // steps_per_epoch(n_train[key], batch_size))))
    cells = [(key, cond, seed) for key in subsets for cond in conditions for seed in seeds]
    shared = {"subsets": subsets, "epochs": n_epochs, "sizes": layer_sizes, "lr": lr, "batch_size": batch_size,
              "l1": l1, "l2": l2}
    grid = run_grid(_training_run, cells, shared, scheduler=scheduler, workers=workers)
    grid.raise_for_failures("balance_and_learning")
    runs = dict(zip(cells, grid.records))
    for key in subsets:
        curves[key], summary[key] = {}, {}
        for cond in conditions:
            accs = [runs[key, cond, seed] for seed in seeds]
            acc = np.asarray(accs)
            reached = [r for r in (epochs_to(a, target) for a in accs) if not math.isnan(r)]
            curves[key][cond] = {"mean": acc.mean(axis=0).tolist(), "std": acc.std(axis=0).tolist()}
            summary[key][cond] = {
                "final_mean": float(acc[:, -1].mean()), "final_std": float(acc[:, -1].std()),
                "best_mean": float(acc.max(axis=1).mean()), "best_std": float(acc.max(axis=1).std()),
                "epochs_to_target_mean": float(np.mean(reached)) if reached else math.nan,
                "epochs_to_target_std": float(np.std(reached)) if reached else math.nan,
                "reached": len(reached), "n_train": int(n_train[key]),
            }
    config = {"data": str(mnist) if mnist is not None else "digits", "seeds": list(seeds),
              "fractions": list(fractions), "epochs": n_epochs, "lr": lr, "batch_size": batch_size, "l1": l1,
              "l2": l2, "sizes": layer_sizes, "target": target, "conditions": list(conditions), "optimizer": "sgd",
              "full_balance": "L2, global solver, before training",
              "partial_balance": "one colour sweep (a layer at a time) after every epoch"}
    return {"name": "balance_and_learning", "config": config, "curves": curves, "summary": summary}


def plot(res: dict, path: Path) -> None:
    """Test accuracy per epoch for every condition (top) and its difference to plain SGD (bottom)."""
    from matplotlib.figure import Figure

    fractions = list(res["curves"])
    fig = Figure(figsize=(6.5 * len(fractions), 7.5))
    axes = fig.subplots(2, len(fractions), squeeze=False, sharex="col")
    for col, key in enumerate(fractions):
        curves = res["curves"][key]
        plain = np.array(curves["plain"]["mean"]) if "plain" in curves else None
        for cond, c in curves.items():
            colour, marker, style = ARM_STYLE[cond]
            mean, std = 100 * np.array(c["mean"]), 100 * np.array(c["std"])
            epochs = np.arange(len(mean))
            every = max(len(mean) // 8, 1)
            axes[0, col].plot(epochs, mean, color=colour, ls=style, marker=marker, markevery=every, ms=5, lw=1.3,
                              label=cond)
            axes[0, col].fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.08)
            if plain is not None and cond != "plain":
                axes[1, col].plot(epochs, mean - 100 * plain, color=colour, ls=style, marker=marker, markevery=every,
                                  ms=5, lw=1.3, label=cond)
        n = next(iter(res["summary"][key].values()))["n_train"]
        axes[0, col].set_title(f"training fraction {key} ({n} samples)", fontsize=10)
        axes[0, col].set_ylabel("test accuracy (%)")
        axes[1, col].axhline(0.0, color="k", lw=0.8)
        axes[1, col].set_ylabel("test accuracy − plain SGD (points)")
        axes[1, col].set_xlabel("epoch")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.6 / fig.get_figheight()))
    fig.suptitle(f"Balance and learning (S2 protocol; {res['config']['data']}, {len(res['config']['seeds'])} seeds, "
                 f"mean ± std)\n{ARM_NOTE}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.8 / fig.get_figheight()))
    fig.savefig(path, dpi=110)


def text(result: dict[str, Any]) -> str:
    """The summary as a table: final and best test accuracy, epochs to the target, per fraction and condition."""
    s = result["summary"]
    target = result["config"]["target"]
    lines = [f"{result['name']} ({result['config']['data']}, {len(result['config']['seeds'])} seeds; "
             f"test accuracy mean ± std; epochs to {target:.0%} test accuracy)"]
    header = f"  {'fraction':<9}{'condition':<9}{'final acc':>17}{'best acc':>17}{'epochs to target':>20}{'reached':>9}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    for key, rows in s.items():
        for cond, r in rows.items():
            ep = "-" if r["reached"] == 0 else f"{r['epochs_to_target_mean']:.1f} ± {r['epochs_to_target_std']:.1f}"
            lines.append(f"  {key:<9}{cond:<9}{r['final_mean']:>10.4f} ± {r['final_std']:.4f}"
                         f"{r['best_mean']:>10.4f} ± {r['best_std']:.4f}{ep:>20}"
                         f"{r['reached']:>5}/{len(result['config']['seeds'])}")
    return "\n".join(lines)
