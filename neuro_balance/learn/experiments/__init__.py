"""The papers' experiments on learning and balance: the registry, and the front door that runs and saves them.

=====================  ===========================================================================
``gd_regularizer``     S1 Fig 3: one init trained with and without an L2 regulariser; the deficit
                       decays (like ``exp(-8 alpha t)``, i.e. ``exp(-4 alpha t)`` per unit) only with it.
``balance_disrupted``  S1 Fig 4: a balanced init trained without regulariser; the conserved quantity
                       ``sum_in w**2 - sum_out w**2`` drifts by O(lr**2) per step.
``order_independence`` S1 Fig 5: many stochastic balancing runs from one init reach the same weights.
``balance_and_learning`` S2: plain vs L1/L2 regularised vs full balance before training vs partial
                       balancing every epoch, several seeds, full data and 1 % of it.
=====================  ===========================================================================

Each experiment is one module of this package with the experiment's function (returning a dict
``{"name", "config", "curves", "summary"}`` of plain Python values, JSON-ready), its ``plot`` and
optionally a ``text`` table. `save` writes ``NAME.json`` plus the figure ``NAME.png``; matplotlib is
imported only when a figure is drawn. A new experiment: a module here, one line in `EXPERIMENTS`, one
in `QUICK`, a script in ``demos/``.

Example
-------
>>> from neuro_balance.learn import experiments
>>> res = experiments.run("order_independence", runs=10)          # doctest: +SKIP
>>> experiments.save(res, "out")                                   # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from . import balance_and_learning as _bal, balance_disrupted as _bd, balance_vs_learning_rate as _blr, \
    gd_regularizer as _gd, order_independence as _oi
from .balance_and_learning import balance_and_learning
from .balance_vs_learning_rate import balance_vs_learning_rate
from .balance_disrupted import balance_disrupted
from .common import unit_l2_difference
from .gd_regularizer import gd_regularizer
from .order_independence import order_independence

__all__ = ["EXPERIMENTS", "QUICK", "Experiment", "run", "save", "summary_text", "gd_regularizer",
           "balance_disrupted", "order_independence", "balance_and_learning", "balance_vs_learning_rate",
           "unit_l2_difference"]


class Experiment(NamedTuple):
    """One registered experiment: the function that runs it, its figure, and optionally its own summary text."""

    function: Callable[..., dict]
    plot: Callable[[dict, Path], None]
    text: Callable[[dict], str] | None = None


EXPERIMENTS: dict[str, Experiment] = {
    "gd_regularizer": Experiment(gd_regularizer, _gd.plot),
    "balance_disrupted": Experiment(balance_disrupted, _bd.plot),
    "order_independence": Experiment(order_independence, _oi.plot),
    "balance_and_learning": Experiment(balance_and_learning, _bal.plot, _bal.text),
    "balance_vs_learning_rate": Experiment(balance_vs_learning_rate, _blr.plot, _blr.text),
}


# Small settings for smoke runs (``neuro-balance demo NAME --quick`` and the tests): same code, less work.
QUICK: dict[str, dict[str, Any]] = {
    "gd_regularizer": {"epochs": 4, "seeds": (0,), "sizes": (64, 12, 10)},
    "balance_disrupted": {"lrs": (0.01, 0.2), "epochs": 2, "scaling_lrs": (0.004, 0.002), "sizes": (64, 12, 10)},
    "order_independence": {"runs": 12},
    "balance_and_learning": {"seeds": (0, 1), "epochs": 3, "sizes": (64, 12, 10), "conditions": ("plain", "L1 NB")},
    "balance_vs_learning_rate": {
        "nets": [{"name": "tiny n=100", "sizes": (64, 16, 10), "n_train": 100, "epochs": 20}], "seeds": (0, 1),
        "optimizers": {"sgd": (1e-3, 1e-1), "adam": (1e-2,)}, "tuned_epochs": 5, "eval_every": 2},
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
        return EXPERIMENTS[name].function(**kwargs)


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
    from ...model.files import atomic_output, atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = result["name"]
    paths = {"json": out / f"{name}.json"}
    atomic_write_text(paths["json"], json.dumps(_jsonable(result), indent=1, allow_nan=False) + "\n")
    if figure:
        paths["png"] = out / f"{name}.png"
        with atomic_output(paths["png"]) as tmp:
            EXPERIMENTS[name].plot(result, tmp)
    return paths


def summary_text(result: dict[str, Any]) -> str:
    """A few human-readable lines: the experiment's own table if it has one, else its summary numbers."""
    name, s = result["name"], result["summary"]
    own = EXPERIMENTS[name].text if name in EXPERIMENTS else None
    if own is not None:
        return own(result)
    lines = [f"{name}:"]
    for key, value in s.items():
        if isinstance(value, float):
            lines.append(f"  {key}: {value:.6g}")
        elif isinstance(value, list):
            lines.append(f"  {key}: " + ", ".join(f"{v:.4g}" for v in value))
        else:
            lines.append(f"  {key}: {value}")
    return "\n".join(lines)
