"""S1 Fig 5: stochastic balancing in many random orders reaches one balanced state, the global solver's."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...balancing.balance import balance
from ...balancing.costs import Lp
from ...balancing.scaling import scale
from ...grid import run_grid
from ...model.builders import mlp
from ...seeding import check_random_state
from ..parameters import parameters

__all__ = ["order_independence", "plot"]


def _stochastic_run(shared: dict[str, Any], k: int) -> tuple[np.ndarray, float, int, list[float]]:
    """One grid cell: stochastic balancing of the shared init in the random order of seed ``k``."""
    res = balance(shared["init"], Lp(2), "stochastic", seed=k, tol=shared["tol"])
    final = np.concatenate([w.ravel() for w in parameters(res.network).values()])
    return final, res.cost_after, res.iterations, res.history["cost"] if k < 20 else []


def order_independence(runs: int = 1000, sizes: Sequence[int] = (6, 10, 10, 4), seed: int = 0,
                       tol: float = 1e-10, spread: float = 1.0, scheduler: Any = None,
                       workers: int | None = None) -> dict[str, Any]:
    """Stochastic balancing from one init, ``runs`` times with different random orders (S1 Fig 5).

    The balanced state is the unique minimiser of a strictly convex function (Thm 5.1), so every run
    must reach the same weights as the global (Newton) solver. The init is an MLP whose hidden units
    are rescaled by ``exp(N(0, spread))`` so that it starts far from balance.

    The runs are independent cells of a grid (`neuro_balance.grid.run_grid`): ``scheduler`` and
    ``workers`` put them on Dask, with the same numbers as a serial run.

    Returns
    -------
    dict
        ``summary``: the largest deviation of any weight of any run from the mean over runs and from
        the global solution (relative to the largest weight), the spread of the final cost and norm.
    """
    rng = check_random_state(seed)
    base = mlp(list(sizes), seed=seed)
    init = scale(base, {n: rng.normal(0.0, spread, p.size) for n, p in base.populations.items() if p.balanced})
    reference = balance(init, Lp(2), "global", tol=1e-13)
    ref = np.concatenate([w.ravel() for w in parameters(reference.network).values()])
    grid = run_grid(_stochastic_run, range(runs), {"init": init, "tol": tol}, scheduler=scheduler, workers=workers)
    grid.raise_for_failures("order_independence")
    finals = np.asarray([r[0] for r in grid.records])
    costs, sweeps = [r[1] for r in grid.records], [r[2] for r in grid.records]
    trajectories = [r[3] for r in grid.records[:20]]
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
    return {"name": "order_independence", "config": config, "curves": curves, "summary": summary}


def plot(res: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    c, s = res["curves"], res["summary"]
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    for traj in c["cost_trajectories"]:
        axes[0].plot(np.maximum(np.array(traj) - s["cost_global"], 1e-16), lw=0.8)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("sweep (every unit balanced once)")
    axes[0].set_ylabel(r"cost $-$ global minimum")
    axes[0].set_title(f"{len(c['cost_trajectories'])} runs, each in its own random order", fontsize=10)
    dev = np.maximum(np.array(c["deviation_from_global"]), 1e-17)
    axes[1].hist(np.log10(dev), bins=30)
    axes[1].set_xlabel(r"$\log_{10}$ (max |w - w*| / max |w*|), w* the global solver's weights")
    axes[1].set_ylabel("number of runs")
    axes[1].set_title(f"final weights of all {s['runs']} runs vs the global solution", fontsize=10)
    fig.suptitle("Stochastic balancing reaches the same weights in any order (S1 Fig 5)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
