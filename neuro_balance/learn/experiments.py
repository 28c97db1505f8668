"""The papers' experiments on learning and balance, as functions returning their curves (theory §6).

=====================  ===========================================================================
``gd-regularizer``     S1 Fig 3: one init trained with and without an L2 regulariser; the deficit
                       decays (like ``exp(-8 alpha t)``, i.e. ``exp(-4 alpha t)`` per unit) only with it.
``balance-disrupted``  S1 Fig 4: a balanced init trained without regulariser; the conserved quantity
                       ``sum_in w**2 - sum_out w**2`` drifts by O(lr**2) per step.
``order-independence`` S1 Fig 5: many stochastic balancing runs from one init reach the same weights.
``balance-and-learning`` S2: plain vs L1/L2 regularised vs full balance before training vs partial
                       balancing every epoch, several seeds, full data and 1 % of it.
=====================  ===========================================================================

Every experiment returns a dict ``{"name", "config", "curves", "summary"}`` of plain Python values
(JSON-ready); `save` writes it as ``NAME.json`` plus a figure ``NAME.png``. matplotlib is imported
only when a figure is drawn.

Example
-------
>>> from neuro_balance.learn import experiments
>>> res = experiments.run("order-independence", runs=10)          # doctest: +SKIP
>>> experiments.save(res, "out")                                   # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import datasets
from ..model.builders import mlp
from ..balancing.costs import Lp
from ..balancing.balance import balance
from ..balancing.metrics import imbalance
from ..model.network import Network
from ..balancing.scaling import scale
from .training import evaluate, parameters, train

__all__ = ["EXPERIMENTS", "QUICK", "run", "save", "summary_text", "gd_regularizer", "balance_disrupted",
           "order_independence", "balance_and_learning", "unit_l2_difference"]


def unit_l2_difference(net: Network) -> np.ndarray:
    """Per balanced unit, in network order: ``sum_in w**2 - sum_out w**2`` (bias on the in side)."""
    rep = imbalance(net, Lp(2))
    return np.concatenate([(rep.in_cost[n] - rep.out_cost[n])[rep.balanced[n]] for n in rep.in_cost])


def _steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def _mean_std(rows: Sequence[Sequence[float]]) -> tuple[list[float], list[float]]:
    arr = np.asarray(rows, dtype=np.float64)
    return arr.mean(axis=0).tolist(), arr.std(axis=0).tolist()


# ---------------------------------------------------------------------------------------------- S1 Fig 3
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
    steps = _steps_per_epoch(len(data.y_train), batch_size)
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
            curves[f"{label}_{key}"], curves[f"{label}_{key}_std"] = _mean_std(rows)
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
    return {"name": "gd-regularizer", "config": config, "curves": curves, "summary": summary}


def _plot_gd_regularizer(res: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    c = res["curves"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for label, name, colour in (("plain", "E only", "C0"), ("l2", f"E + {res['config']['alpha']:g} L2", "C1")):
        for ax, key in zip(axes, ("deficit", "loss", "weight_norm")):
            mean, std = np.array(c[f"{label}_{key}"]), np.array(c[f"{label}_{key}_std"])
            ax.plot(c["epoch"], mean, color=colour, label=name)
            ax.fill_between(c["epoch"], mean - std, mean + std, color=colour, alpha=0.2)
    axes[0].plot(c["epoch"], c["predicted_l2_deficit"], "k--", lw=1, label=r"$D_0\,e^{-8\alpha t}$")
    axes[0].set_yscale("log")
    for ax, title in zip(axes, ("deficit $\\sum_i(\\mathrm{in}_i-\\mathrm{out}_i)^2$", "training loss", "$\\|W\\|_F$")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=8)
    fig.suptitle("Gradient descent balances only with a regulariser (S1 Fig 3; digits, mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- S1 Fig 4
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
    return {"name": "balance-disrupted", "config": config, "curves": curves, "summary": summary}


def _plot_balance_disrupted(res: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    c = res["curves"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for lr in c["lrs"]:
        axes[0].plot(c["epoch"], np.maximum(c[f"deficit_lr{lr:g}"], 1e-30), label=f"lr {lr:g}")
        axes[1].plot(c["epoch"], c[f"loss_lr{lr:g}"], label=f"lr {lr:g}")
    axes[0].set_yscale("log")
    axes[0].set_title("deficit (balanced at epoch 0)")
    axes[1].set_title("training loss")
    for ax in axes[:2]:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    lrs, drift = np.array(c["scaling_lrs"]), np.array(c["drift"])
    axes[2].loglog(lrs, drift, "o-", label=f"measured (slope {res['summary']['drift_loglog_slope']:.2f})")
    axes[2].loglog(lrs, drift[-1] * (lrs / lrs[-1]) ** 2, "k--", lw=1, label=r"$\propto \eta^2$")
    axes[2].set_xlabel(r"learning rate $\eta$")
    axes[2].set_title(f"drift of D after {res['config']['scaling_steps']} steps")
    axes[2].legend(fontsize=8)
    fig.suptitle("Training without a regulariser disrupts balance (S1 Fig 4; digits)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- S1 Fig 5
def order_independence(runs: int = 1000, sizes: Sequence[int] = (6, 10, 10, 4), seed: int = 0,
                       tol: float = 1e-10, spread: float = 1.0) -> dict[str, Any]:
    """Stochastic balancing from one init, ``runs`` times with different random orders (S1 Fig 5).

    The balanced state is the unique minimiser of a strictly convex function (Thm 5.1), so every run
    must reach the same weights as the global (Newton) solver. The init is an MLP whose hidden units
    are rescaled by ``exp(N(0, spread))`` so that it starts far from balance.

    Returns
    -------
    dict
        ``summary``: the largest deviation of any weight of any run from the mean over runs and from
        the global solution (relative to the largest weight), the spread of the final cost and norm.
    """
    rng = np.random.default_rng(seed)
    base = mlp(list(sizes), seed=seed)
    init = scale(base, {n: rng.normal(0.0, spread, p.size) for n, p in base.populations.items() if p.balanced})
    reference = balance(init, Lp(2), "global", tol=1e-13)
    ref = np.concatenate([w.ravel() for w in parameters(reference.network).values()])
    finals, costs, sweeps, trajectories = [], [], [], []
    for k in range(runs):
        res = balance(init, Lp(2), "stochastic", seed=k, tol=tol)
        finals.append(np.concatenate([w.ravel() for w in parameters(res.network).values()]))
        costs.append(res.cost_after)
        sweeps.append(res.iterations)
        if k < 20:
            trajectories.append(res.history["cost"])
    finals = np.asarray(finals)
    scale_w = float(np.abs(ref).max())
    dev_ref = np.abs(finals - ref).max(axis=1) / scale_w
    dev_mean = np.abs(finals - finals.mean(axis=0)).max(axis=1) / scale_w
    norms = np.linalg.norm(finals, axis=1)
    w0 = np.concatenate([w.ravel() for w in parameters(init).values()])
    summary = {
        "runs": runs, "n_parameters": int(ref.size),
        "max_relative_deviation_from_mean": float(dev_mean.max()),
        "max_relative_deviation_from_global": float(dev_ref.max()),
        "max_weight_std_over_runs": float(finals.std(axis=0).max()),
        "cost_initial": reference.cost_before, "cost_global": reference.cost_after,
        "cost_min": float(min(costs)), "cost_max": float(max(costs)),
        "norm_initial": float(np.linalg.norm(w0)), "norm_mean": float(norms.mean()), "norm_std": float(norms.std()),
        "sweeps_mean": float(np.mean(sweeps)), "sweeps_max": int(max(sweeps)),
    }
    curves = {"deviation_from_global": dev_ref.tolist(), "deviation_from_mean": dev_mean.tolist(),
              "cost_trajectories": trajectories, "final_costs": costs, "sweeps": sweeps}
    config = {"runs": runs, "sizes": list(sizes), "seed": seed, "tol": tol, "spread": spread, "cost": "L2",
              "schedule": "random"}
    return {"name": "order-independence", "config": config, "curves": curves, "summary": summary}


def _plot_order_independence(res: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    c, s = res["curves"], res["summary"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for traj in c["cost_trajectories"]:
        axes[0].plot(np.maximum(np.array(traj) - s["cost_global"], 1e-16), lw=0.8)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("sweep")
    axes[0].set_title("cost above the global minimum (20 runs)")
    dev = np.maximum(np.array(c["deviation_from_global"]), 1e-17)
    axes[1].hist(np.log10(dev), bins=30)
    axes[1].set_xlabel(r"$\log_{10}$ max |w - w*| / max |w*|")
    axes[1].set_title(f"{s['runs']} runs vs the global solution")
    fig.suptitle("Stochastic balancing reaches the same weights in any order (S1 Fig 5)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- S2
CONDITIONS = {
    "plain": {},
    "L1": {"reg": "l1"},
    "L2": {"reg": "l2"},
    "FB": {"balance": "before"},
    "L1 NB": {"balance": "partial@L1"},
    "L2 NB": {"balance": "partial@L2"},
}


def _epochs_to(curve: Sequence[float], target: float) -> float:
    hits = [k for k, acc in enumerate(curve) if acc >= target]
    return float(hits[0]) if hits else math.nan


def _subset(data: datasets.Dataset, fraction: float, seed: int) -> datasets.Dataset:
    keep = datasets.stratified_subset(data.y_train, fraction, seed)
    return datasets.Dataset(data.X_train[keep], data.y_train[keep], data.X_test, data.y_test,
                            f"{data.name} ({fraction:g} of training)")


def balance_and_learning(mnist: str | os.PathLike | None = None, seeds: Sequence[int] = (0, 1, 2, 3, 4),
                         fractions: Sequence[float] = (1.0, 0.01), epochs: int | None = None,
                         lr: float = 0.01, batch_size: int = 32, l1: float = 1e-4, l2: float = 1e-3,
                         sizes: Sequence[int] | None = None, target: float = 0.9,
                         conditions: Sequence[str] = tuple(CONDITIONS)) -> dict[str, Any]:
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
    used_epochs = {}
    base = datasets.mnist(mnist) if mnist is not None else datasets.digits()
    layer_sizes = list(sizes) if sizes is not None else (
        [base.n_features, 32, 32, base.n_classes] if mnist is None else [base.n_features, 256, 128, base.n_classes])
    for fraction in fractions:
        # one stratified training subset per seed (the test set is always the full one)
        subsets = {seed: base if fraction == 1.0 else _subset(base, fraction, seed) for seed in seeds}
        n_train = len(subsets[seeds[0]].y_train)
        n_epochs = epochs if epochs is not None else (
            40 if fraction == 1.0 else max(40, -(-200 // _steps_per_epoch(n_train, batch_size))))
        key = f"{fraction:g}"
        used_epochs[key] = n_epochs
        curves[key], summary[key] = {}, {}
        for cond in conditions:
            spec = CONDITIONS[cond]
            reg = {"l1": l1 * Lp(1), "l2": l2 * Lp(2), None: None}[spec.get("reg")]
            accs = []
            for seed in seeds:
                data = subsets[seed]
                res = train(mlp(layer_sizes, seed=seed), data.X_train, data.y_train, reg=reg, lr=lr,
                            epochs=n_epochs, batch_size=batch_size, balance=spec.get("balance"), seed=seed,
                            validation=(data.X_test, data.y_test), diagnostics=False)
                accs.append(res.history["val_accuracy"])
            acc = np.asarray(accs)
            reached = [r for r in (_epochs_to(a, target) for a in accs) if not math.isnan(r)]
            curves[key][cond] = {"mean": acc.mean(axis=0).tolist(), "std": acc.std(axis=0).tolist()}
            summary[key][cond] = {
                "final_mean": float(acc[:, -1].mean()), "final_std": float(acc[:, -1].std()),
                "best_mean": float(acc.max(axis=1).mean()), "best_std": float(acc.max(axis=1).std()),
                "epochs_to_target_mean": float(np.mean(reached)) if reached else math.nan,
                "epochs_to_target_std": float(np.std(reached)) if reached else math.nan,
                "reached": len(reached), "n_train": int(n_train),
            }
    config = {"data": str(mnist) if mnist is not None else "digits", "seeds": list(seeds),
              "fractions": list(fractions), "epochs": used_epochs, "lr": lr, "batch_size": batch_size, "l1": l1,
              "l2": l2, "sizes": layer_sizes, "target": target, "conditions": list(conditions), "optimizer": "sgd",
              "full_balance": "L2, global solver, before training",
              "partial_balance": "one colour sweep (a layer at a time) after every epoch"}
    return {"name": "balance-and-learning", "config": config, "curves": curves, "summary": summary}


def _plot_balance_and_learning(res: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    fractions = list(res["curves"])
    fig, axes = plt.subplots(1, len(fractions), figsize=(6 * len(fractions), 4), squeeze=False)
    for ax, key in zip(axes[0], fractions):
        for cond, c in res["curves"][key].items():
            mean, std = np.array(c["mean"]), np.array(c["std"])
            ax.plot(mean, label=cond)
            ax.fill_between(np.arange(len(mean)), mean - std, mean + std, alpha=0.15)
        n = next(iter(res["summary"][key].values()))["n_train"]
        ax.set_title(f"training fraction {key} ({n} samples)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(max(0.0, ax.get_ylim()[0]), 1.0)
        ax.legend(fontsize=8)
    fig.suptitle(f"Balance and learning (S2 protocol; {res['config']['data']}, "
                 f"{len(res['config']['seeds'])} seeds, mean ± std)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- front door
EXPERIMENTS: dict[str, tuple[Callable[..., dict], Callable[[dict, Path], None]]] = {
    "gd-regularizer": (gd_regularizer, _plot_gd_regularizer),
    "balance-disrupted": (balance_disrupted, _plot_balance_disrupted),
    "order-independence": (order_independence, _plot_order_independence),
    "balance-and-learning": (balance_and_learning, _plot_balance_and_learning),
}


# Small settings for smoke runs (``neuro-balance demo NAME --quick`` and the tests): same code, less work.
QUICK: dict[str, dict[str, Any]] = {
    "gd-regularizer": {"epochs": 4, "seeds": (0,), "sizes": (64, 12, 10)},
    "balance-disrupted": {"lrs": (0.01, 0.2), "epochs": 2, "scaling_lrs": (0.004, 0.002), "sizes": (64, 12, 10)},
    "order-independence": {"runs": 12},
    "balance-and-learning": {"seeds": (0, 1), "epochs": 3, "sizes": (64, 12, 10), "conditions": ("plain", "L1 NB")},
}


def run(name: str, blas_threads: int | None = 1, **kwargs: Any) -> dict[str, Any]:
    """Run the experiment called ``name`` (see `EXPERIMENTS`) with keyword arguments for its function.

    ``blas_threads`` caps the BLAS thread pool while it runs (None: leave it alone). Minibatches of
    32 make every product small, and thread start-up costs more than it saves (measured here: 4x to
    15x slower per step with threads on a busy 2-core machine, for digits and for a 784-256-128-10 net).
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    limit = contextlib.nullcontext()
    if blas_threads is not None:
        try:
            from threadpoolctl import threadpool_limits
            limit = threadpool_limits(limits=blas_threads, user_api="blas")
        except ImportError:  # threadpoolctl ships with scikit-learn; without it run unlimited
            pass
    with limit:
        return EXPERIMENTS[name][0](**kwargs)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(value) else float(value)
    return value


def save(result: dict[str, Any], out: str | os.PathLike, figure: bool = True) -> dict[str, Path]:
    """Write ``NAME.json`` (strict JSON, NaN as null) and ``NAME.png`` into directory ``out``.

    Returns
    -------
    dict
        ``{"json": path, "png": path}`` (no ``png`` when ``figure`` is False).
    """
    from ..model.files import atomic_output, atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = result["name"]
    paths = {"json": out / f"{name}.json"}
    atomic_write_text(paths["json"], json.dumps(_jsonable(result), indent=1, allow_nan=False) + "\n")
    if figure:
        import matplotlib

        matplotlib.use("Agg", force=False)
        paths["png"] = out / f"{name}.png"
        with atomic_output(paths["png"]) as tmp:
            EXPERIMENTS[name][1](result, tmp)
    return paths


def summary_text(result: dict[str, Any]) -> str:
    """A few human-readable lines: the summary numbers, and a table for ``balance-and-learning``."""
    name, s = result["name"], result["summary"]
    if name != "balance-and-learning":
        lines = [f"{name}:"]
        for key, value in s.items():
            if isinstance(value, float):
                lines.append(f"  {key}: {value:.6g}")
            elif isinstance(value, list):
                lines.append(f"  {key}: " + ", ".join(f"{v:.4g}" for v in value))
            else:
                lines.append(f"  {key}: {value}")
        return "\n".join(lines)
    target = result["config"]["target"]
    lines = [f"{name} ({result['config']['data']}, {len(result['config']['seeds'])} seeds; "
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
