"""S2's learning claims under a learning-rate sweep: balancing's gains at lr 1e-3, and how they shrink once lr is tuned.

S2 (Table 4) trains FCNs by plain SGD at lr 1e-3 on scarce data and finds that full balance before
training (FB) and a balancing sweep after every epoch (L1 NB, L2 NB) raise the test accuracy. One
gradient step does not commute with rescaling (theory §4): at a rescaled point the gradient of a
parameter on j->i is ``g / s`` with ``s = exp(u_i - c_j u_j)``, so a step of size ``lr`` there is, back
in the original coordinates, a step of size ``lr / s**2``: balancing changes each parameter's effective
learning rate by ``1 / s**2``. At a learning rate where
plain SGD has barely started, that acts like a larger, per-layer learning rate; with a tuned learning
rate (or Adam, momentum) the gap closes. Every (network, optimiser, learning rate) trains all seeds and
arms at once (`train_stacked`, identical to `train` per copy).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import datasets
from ...balancing.costs import Lp
from ...model.builders import mlp
from ...model.network import Network
from ...seeding import check_random_state
from ..stacked import train_stacked
from .common import ARM_NOTE, ARM_STYLE, epochs_to, subset

__all__ = ["ARMS", "NETS", "PAPER", "EXPLANATION", "balance_vs_learning_rate", "plot", "text"]

# arm -> (regulariser name, balancing schedule); "L1"/"L2" take their coefficients from the call
ARMS: dict[str, tuple[str | None, str | None]] = {
    "plain": (None, None),
    "FB": (None, "before"),
    "L1 NB": (None, "partial@L1"),
    "L2 NB": (None, "partial@L2"),
    "FB + L1 NB": (None, "before+partial@L1"),
    "L1": ("l1", None),
    "L2": ("l2", None),
}

# S2's FCNs on digits' 64 inputs: (layer sizes, training samples, epochs)
NETS: dict[str, dict[str, Any]] = {
    "small": {"sizes": (64, 256, 10), "n_train": 100, "epochs": 500},
    "medium": {"sizes": (64, 256, 128, 10), "n_train": 100, "epochs": 500},
    "large": {"sizes": (64, 512, 256, 128, 64, 10), "n_train": 300, "epochs": 1000},
}

# S2's protocol with its code's initialisation: the three FCNs; plain, FB and L1 NB at 1e-3 and 1e-2 (and 1e-1
# for the small net). Long: the small and medium nets take ~1 min of one core, the large net ~20 min.
PAPER: dict[str, Any] = {
    "nets": [dict(NETS["small"], name="small n=100", lrs=(1e-3, 1e-2, 1e-1)),
             dict(NETS["medium"], name="medium n=100", lrs=(1e-3, 1e-2)),
             dict(NETS["large"], name="large n=300", lrs=(1e-3, 1e-2))],
    "arms": ("plain", "FB", "L1 NB"), "optimizers": {"sgd": (1e-3, 1e-2, 1e-1)}, "eval_every": 10,
    "init": "torch",
}

EXPLANATION = """\
Why balancing helps at lr 1e-3 and hardly at a tuned learning rate. Rescaling unit i by lam leaves the
network's function and loss unchanged, but not the gradient step: a parameter on j->i multiplied by
s = lam_i / lam_j**c has gradient g / s at the rescaled point, so one step of size lr there is, seen in
the original coordinates, a step of size lr / s**2. A gradient step does not commute with rescaling:
balancing changes each parameter's effective learning rate by 1 / s**2 (a per-layer learning rate), and the
L2 imbalance sum_in w**2 - sum_out w**2 it sets is conserved by gradient flow (changed by lr**2 per step,
theory §4). At lr 1e-3 plain SGD has barely started learning in 500 epochs, and balancing acts like a
larger, per-layer learning rate; once the learning rate is tuned (or with momentum or Adam) the
balancing arms end within about a point of plain SGD (measured on digits; the L1 regulariser at S2's
coefficient 0.015 costs a few points instead)."""


def _default_nets() -> list[dict[str, Any]]:
    return [dict(NETS["small"], name="small n=100"), dict(NETS["small"], name="small n=300", n_train=300)]


def _network(sizes: Sequence[int], seed: int, init: str) -> Network:
    """``mlp(sizes, seed)``, with PyTorch's default ``nn.Linear`` initialisation for ``init="torch"``."""
    net = mlp(list(sizes), seed=seed)
    if init == "torch":
        rng = check_random_state(seed)
        for proj in net.projections:
            bound = 1.0 / np.sqrt(proj.weight.shape[1])
            proj.weight[...] = rng.uniform(-bound, bound, proj.weight.shape)
            bias = net.populations[proj.post].bias
            bias[...] = rng.uniform(-bound, bound, bias.shape)
    return net


def balance_vs_learning_rate(nets: Sequence[Mapping[str, Any]] | None = None,
                             arms: Sequence[str] = tuple(ARMS),
                             optimizers: Mapping[str, Sequence[float]] | None = None,
                             seeds: Sequence[int] = (0, 1, 2, 3, 4), batch_size: int = 256,
                             tuned_epochs: int | None = 100, l1: float = 0.015, l2: float = 0.0075,
                             target: float = 0.8, eval_every: int = 10, momentum: float = 0.9,
                             mnist: str | os.PathLike | None = None, precision: str = "float32",
                             centre: bool = True, init: str = "he") -> dict[str, Any]:
    """S2's protocol on digits (or MNIST / Fashion-MNIST IDX files), swept over learning rates and optimisers.

    Each seed fixes the init (``mlp(sizes, seed)``), the stratified training subset and the minibatch
    order, shared by all arms. FB fully balances the init for L2 (global solver); NB balances every unit
    once after every epoch (a layer at a time) with no regulariser in the loss; "FB + L1 NB" fully
    balances for L1 first. The test set is digits' fixed quarter (450 images) or MNIST's own.

    Parameters
    ----------
    nets : sequence of dict, optional
        Each ``{"name", "sizes", "n_train", "epochs"}`` and optionally ``"lrs"`` (this net's SGD learning
        rates) and ``"arms"``. Default: the small FCN (64-256-10) on 100 and on 300 samples, 500 epochs.
    arms : sequence of str
        Subset of `ARMS`.
    optimizers : dict, optional
        Optimiser -> learning rates. Default: plain SGD at 1e-3, 1e-2, 1e-1 (S2's protocol: no momentum),
        momentum 0.9 at 1e-2, 1e-1, Adam at 1e-3, 1e-2.
    seeds : sequence of int
    batch_size : int
        S2: 256 (more than the 100 samples: one full-batch step per epoch).
    tuned_epochs : int, optional
        Epochs for momentum and Adam (they converge long before SGD at 1e-3); None: the net's epochs.
    l1, l2 : float
        Coefficients of the L1 arm (``l1 * sum |w|``, S2's code: 0.015) and of the L2 arm
        (``l2 * sum w**2``, i.e. weight decay ``2 * l2``); biases included.
    target : float
        Test accuracy for "epochs to target".
    eval_every : int
        Test accuracy every ``eval_every`` epochs (the resolution of "epochs to target").
    momentum : float
    mnist : path, optional
        A directory with the four MNIST / Fashion-MNIST IDX files (never downloaded); the nets then take
        784 inputs.
    precision : {"float32", "float64"}
        Arithmetic of the training (float32: half the time; float64: identical to `train`).
    centre : bool
        Map pixels from [0, 1] to [-1, 1] (``(x - 0.5) / 0.5``, S2's code's normalisation). The input
        scale multiplies the first layer's gradient, so at lr 1e-3 it moves every arm's accuracy by
        10 to 20 points (measured on digits; the gap between the arms stays).
    init : {"he", "torch"}
        ``he``: `mlp`'s weights ``N(0, 2 / fan_in)``, biases ``N(0, 0.1**2)``; ``torch``: PyTorch's
        default for ``nn.Linear`` (S2's code), weights and biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``,
        about 2.4 times smaller, which slows deeper nets at lr 1e-3 further.

    Returns
    -------
    dict
        ``summary[optimizer][net][lr][arm]``: mean and std over seeds of the final test accuracy and of
        the epochs to ``target`` (over the seeds that reached it), how many reached it and how many
        diverged. ``curves`` the same nesting: ``epochs`` and mean/std test accuracy per evaluation.
    """
    if init not in ("he", "torch"):
        raise ValueError(f"init must be 'he' or 'torch', got {init!r}")
    if precision not in ("float32", "float64"):
        raise ValueError(f"precision must be 'float32' or 'float64', got {precision!r}")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"arms: unknown {unknown}; known: {list(ARMS)}")
    nets = [dict(n) for n in (nets if nets is not None else _default_nets())]
    optimizers = dict(optimizers) if optimizers is not None else {
        "sgd": (1e-3, 1e-2, 1e-1), "momentum": (1e-2, 1e-1), "adam": (1e-3, 1e-2)}
    base = datasets.mnist(mnist) if mnist is not None else datasets.digits()
    if centre:
        base = datasets.Dataset((base.X_train - 0.5) / 0.5, base.y_train, (base.X_test - 0.5) / 0.5, base.y_test,
                                f"{base.name}, pixels in [-1, 1]")
    regs = {None: None, "l1": l1 * Lp(1), "l2": l2 * Lp(2)}
    summary: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for spec in nets:
        sizes = [base.n_features, *spec["sizes"][1:-1], base.n_classes]
        data = {s: subset(base, spec["n_train"] / len(base.y_train), s) for s in seeds}
        n_train = {len(d.y_train) for d in data.values()}
        if len(n_train) != 1:
            raise ValueError(f"nets: {spec['name']!r}: stratified subsets of different sizes {sorted(n_train)}")
        spec["n_train_used"] = n_train.pop()
        net_arms = [a for a in spec.get("arms", arms) if a in arms]
        copies = [(seed, arm) for seed in seeds for arm in net_arms]
        X = np.stack([data[seed].X_train for seed, _ in copies])
        y = np.stack([data[seed].y_train for seed, _ in copies])
        for opt, lrs in optimizers.items():
            epochs = spec["epochs"] if opt == "sgd" or tuned_epochs is None else tuned_epochs
            for lr in (spec.get("lrs", lrs) if opt == "sgd" else lrs):
                nets_m = [_network(sizes, seed, init) for seed, _ in copies]
                res = train_stacked(nets_m, X, y, base.X_test, base.y_test,
                                    lr=lr, epochs=epochs, batch_size=batch_size, optimizer=opt, momentum=momentum,
                                    regs=[regs[ARMS[arm][0]] for _, arm in copies],
                                    balances=[ARMS[arm][1] for _, arm in copies],
                                    seeds=[seed for seed, _ in copies], eval_every=eval_every,
                                    dtype=np.dtype(precision).type)
                for arm in net_arms:
                    rows = [k for k, (_, a) in enumerate(copies) if a == arm]
                    acc = res.accuracy[rows]
                    hits = [e for e in (epochs_to(a, target) for a in acc) if not math.isnan(e)]
                    hits = [res.epochs[int(e)] for e in hits]
                    cell = summary.setdefault(opt, {}).setdefault(spec["name"], {}).setdefault(f"{lr:g}", {})
                    cell[arm] = {
                        "final_mean": float(acc[:, -1].mean()), "final_std": float(acc[:, -1].std()),
                        "epochs_to_target_mean": float(np.mean(hits)) if hits else math.nan,
                        "epochs_to_target_std": float(np.std(hits)) if hits else math.nan,
                        "reached": len(hits), "diverged": int((res.diverged[rows] >= 0).sum()),
                    }
                    curves.setdefault(opt, {}).setdefault(spec["name"], {}).setdefault(f"{lr:g}", {})[arm] = {
                        "epochs": res.epochs, "mean": acc.mean(axis=0).tolist(), "std": acc.std(axis=0).tolist()}
    config = {"data": str(mnist) if mnist is not None else "digits", "centre": centre, "nets": nets, "arms": list(arms),
              "optimizers": {k: list(v) for k, v in optimizers.items()}, "seeds": list(seeds),
              "batch_size": batch_size, "tuned_epochs": tuned_epochs, "l1": l1, "l2": l2, "target": target,
              "eval_every": eval_every, "momentum": momentum, "n_test": int(len(base.y_test)),
              "precision": precision, "init": init,
              "full_balance": "L2 (FB) or L1 (FB + L1 NB), global solver, before training",
              "partial_balance": "one colour sweep (a layer at a time) after every epoch"}
    return {"name": "balance_vs_learning_rate", "config": config, "curves": curves, "summary": summary}


_OPTIMIZER_NAMES = {"sgd": "plain SGD (S2's protocol)", "momentum": "SGD + momentum", "adam": "Adam"}


def plot(res: dict, path: Path) -> None:
    """Accuracy against learning rate per arm (a row per optimiser), then learning curves at lr 1e-3."""
    from matplotlib.figure import Figure

    s, c, cfg = res["summary"], res["curves"], res["config"]
    nets = [n["name"] for n in cfg["nets"]]
    opts = list(s)
    fig = Figure(figsize=(max(5.2 * len(nets), 9.0), 3.6 * (len(opts) + 1)))
    axes = fig.subplots(len(opts) + 1, len(nets), squeeze=False)
    for row, opt in enumerate(opts):
        for col, net in enumerate(nets):
            ax = axes[row, col]
            cells = s[opt].get(net, {})
            lrs = sorted(cells, key=float)
            arms = [a for a in cfg["arms"] if all(a in cells[lr] for lr in lrs)]
            for k, arm in enumerate(arms):
                colour, marker, style = ARM_STYLE[arm]
                # every arm at its own learning rate (no sideways shift on a log axis); arms that coincide stay
                # visible as hollow markers of different shapes and sizes, the larger drawn first
                ax.errorbar([float(lr) for lr in lrs], [100 * cells[lr][arm]["final_mean"] for lr in lrs], ls=style,
                            yerr=[100 * cells[lr][arm]["final_std"] for lr in lrs], color=colour, marker=marker,
                            ms=11 - 1.2 * k, mfc="none", mew=1.4, lw=1.2, capsize=3, elinewidth=0.8, label=arm,
                            zorder=2 + k)
            ax.set_xscale("log")
            ax.set_xlabel("learning rate")
            ax.set_ylabel("final test accuracy (%)")
            ax.set_title(f"{_OPTIMIZER_NAMES.get(opt, opt)}: {net}", fontsize=10)
            ax.grid(alpha=0.3)
    paper_lr = "0.001"
    for col, net in enumerate(nets):
        ax = axes[-1, col]
        for arm, curve in c.get("sgd", {}).get(net, {}).get(paper_lr, {}).items():
            colour, _, style = ARM_STYLE[arm]
            mean, std = 100 * np.array(curve["mean"]), 100 * np.array(curve["std"])
            ax.plot(curve["epochs"], mean, color=colour, ls=style, lw=1.6, label=arm)
            # the spread over seeds once, at the last epoch (bands over the whole curve hide the others)
            ax.errorbar(curve["epochs"][-1], mean[-1], yerr=std[-1], color=colour, capsize=3, lw=1.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"learning curves, plain SGD at lr 1e-3: {net} (bar: ± std over seeds at the end)",
                     fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.75 / fig.get_figheight()))
    pixels = ", pixels in [-1, 1]" if cfg.get("centre") else ""
    fig.text(0.5, 1 - 0.08 / fig.get_figheight(), f"Balancing and the learning rate ({cfg['data']}{pixels}, "
             f"{len(cfg['seeds'])} seeds, mean ± std)\n{ARM_NOTE}", ha="center", va="top", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 1.0 / fig.get_figheight()))
    fig.savefig(path, dpi=130)


def text(result: dict[str, Any]) -> str:
    """Per optimiser and net, a table arm x learning rate: final test accuracy % (mean ± std) and epochs to
    the target (mean over the seeds that reached it, and how many did), then the explanation."""
    s, cfg = result["summary"], result["config"]
    n_seeds = len(cfg["seeds"])
    pixels = ", pixels in [-1, 1]" if cfg.get("centre") else ""
    lines = [f"{result['name']} ({cfg['data']}{pixels}, {n_seeds} seeds): final test accuracy % (mean ± std "
             "over seeds) "
             f"[epochs to {cfg['target']:.0%} test accuracy: mean ± std over the seeds that reached it / how many]"]
    for opt, nets in s.items():
        for net, lrs in nets.items():
            lines.append(f"\n  {_OPTIMIZER_NAMES.get(opt, opt)}, {net}")
            lines.append(f"  {'':<12}" + "".join(f"{'lr ' + lr:>28}" for lr in lrs))
            for arm in next(iter(lrs.values())):
                cells = []
                for lr in lrs:
                    r = lrs[lr][arm]
                    ep = "-" if r["reached"] == 0 else \
                        f"{r['epochs_to_target_mean']:.0f}±{r['epochs_to_target_std']:.0f}"
                    div = "!" if r["diverged"] else ""
                    cells.append(f"{100 * r['final_mean']:5.1f} ± {100 * r['final_std']:4.1f}{div} "
                                 f"[{ep} /{r['reached']}]")
                lines.append(f"  {arm:<12}" + "".join(f"{c:>28}" for c in cells))
    if any(r["diverged"] for nets in s.values() for lrs in nets.values() for arms in lrs.values()
           for r in arms.values()):
        lines.append("  (! some seeds diverged: their parameters became NaN or Inf and were set to 0)")
    return "\n".join(lines) + "\n\n" + EXPLANATION
