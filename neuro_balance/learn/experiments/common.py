"""Helpers the experiments share: the conserved quantity per unit, epochs and steps, means over seeds, subsets."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import datasets
from ...balancing.costs import Lp
from ...balancing.metrics import imbalance
from ...model.network import Network

__all__ = ["ARM_STYLE", "ARM_NOTE", "unit_l2_difference", "steps_per_epoch", "mean_std", "epochs_to", "subset"]

# one colour, marker and line style per training arm, shared by the learning figures; arms that often
# coincide (FB and L2 NB, L1 NB and FB + L1 NB, plain and L2) differ in line style so both stay visible
ARM_STYLE = {"plain": ("k", "o", "-"), "FB": ("C0", "s", "-"), "L1 NB": ("C3", "^", "-"),
             "L2 NB": ("C1", "v", "--"), "FB + L1 NB": ("C4", "D", "--"), "L1": ("C2", "x", ":"),
             "L2": ("C7", "+", "--")}
ARM_NOTE = ("FB: full balance before training; L1 NB / L2 NB: one balancing sweep for L1 / L2 after every epoch,\n"
            "no regulariser; L1, L2: regulariser in the loss")


def unit_l2_difference(net: Network) -> np.ndarray:
    """Per balanced unit, in network order: ``sum_in w**2 - sum_out w**2`` (bias on the in side)."""
    rep = imbalance(net, Lp(2))
    return np.concatenate([(rep.in_cost[n] - rep.out_cost[n])[rep.balanced[n]] for n in rep.in_cost])


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Minibatches in one pass over ``n`` samples (the last one may be short)."""
    return -(-n // batch_size)


def mean_std(rows: Sequence[Sequence[float]]) -> tuple[list[float], list[float]]:
    """Mean and standard deviation over the rows (the seeds), per column."""
    arr = np.asarray(rows, dtype=np.float64)
    return arr.mean(axis=0).tolist(), arr.std(axis=0).tolist()


def epochs_to(curve: Sequence[float], target: float) -> float:
    """First epoch at which ``curve`` reaches ``target`` (NaN if it never does)."""
    hits = [k for k, acc in enumerate(curve) if acc >= target]
    return float(hits[0]) if hits else math.nan


def subset(data: datasets.Dataset, fraction: float, seed: int) -> datasets.Dataset:
    """``data`` with a stratified ``fraction`` of its training set (the test set whole)."""
    keep = datasets.stratified_subset(data.y_train, fraction, seed)
    return datasets.Dataset(data.X_train[keep], data.y_train[keep], data.X_test, data.y_test,
                            f"{data.name} ({fraction:g} of training)")
