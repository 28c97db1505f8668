"""Balancing before quantisation, with the cost that suits a chip's scale sharing, or chosen on calibration data.

A balanced network computes the same float function (theory §1); only the quantiser sees the
difference. Which cost helps depends on what shares a scale on the chip:

* ``linf``: L-infinity range equalisation of the weights (biases excluded): each unit's largest
  incoming weight equals its largest outgoing one (with ``c``), which is what cross-layer
  equalisation does for per-layer (per-tensor) scales (Nagel et al. 2019): the units of a layer end
  up with comparable ranges, so one scale per layer fits all of them;
* ``lp``: the Lp balanced state (default ``Lp(2)``, the global solver);
* ``pow2``: L-infinity balancing restricted to powers of two, for shift-only chips: the mantissas
  do not change, only the exponents move (exact on chip);
* ``auto``: every candidate above and ``none`` is mapped onto the chip and run on the calibration
  data (the static integer pass); the one whose outputs agree best with the float network's is kept
  if it beats ``none`` significantly (`choose_on_calibration`). No labels and no test data are used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..balancing.balance import balance
from ..balancing.costs import Cost, Linf, Lp
from ..balancing.metrics import imbalance
from ..model.network import Network
from .calibration import activation_ranges
from .emulate import quantize
from .profile import Profile, load_profile

__all__ = ["BALANCE_CHOICES", "ChipBalance", "balanced_candidates", "balance_for_chip", "range_imbalance"]

BALANCE_CHOICES = ("none", "linf", "lp", "pow2", "auto")
#: ``auto`` keeps a balancing only when it beats none by this many standard deviations of a sign test.
SIGNIFICANCE = 2.5
#: ``auto`` on a one-output network keeps a balancing only when its RMS error is this fraction lower.
RMS_MARGIN = 0.1


def range_imbalance(net: Network) -> float:
    """The network's L-infinity imbalance of weights: max over balanced units of ``|A - B| / max(A, B)``.

    ``A`` and ``B`` are a unit's largest incoming and outgoing ``|w|`` (biases excluded); 0 when
    every unit's ranges are equalised, near 1 when some unit's ranges are far apart.
    """
    return float(imbalance(net, Linf(include_bias=False)).max_relative)


def balanced_candidates(net: Network, choices: tuple[str, ...] = ("none", "linf", "lp", "pow2"),
                        cost: Cost | None = None) -> dict[str, Network]:
    """The network balanced by each of ``choices`` (module docstring); ``none`` is ``net`` itself."""
    out: dict[str, Network] = {}
    for choice in choices:
        if choice == "none":
            out[choice] = net
        elif choice == "linf":
            out[choice] = balance(net, Linf(include_bias=False)).network
        elif choice == "lp":
            out[choice] = balance(net, cost if cost is not None else Lp(2)).network
        elif choice == "pow2":
            out[choice] = balance(net, Linf(include_bias=False), method="sweep", scale_grid="pow2").network
        else:
            raise ValueError(f"balance choice must be one of {BALANCE_CHOICES[:-1]} here, got {choice!r}")
    return out


@dataclass
class ChipBalance:
    """What `balance_for_chip` returns.

    Attributes
    ----------
    network : Network
        The network to quantise (balanced by ``choice``).
    choice : str
        The balancing applied (``auto`` resolves to one of the others).
    calibration_error : dict of float
        With ``auto``: every candidate's score on the calibration data (`choose_on_calibration`).
    imbalance : dict of float
        `range_imbalance` of the network before (``none``) and after (``choice``).
    """

    network: Network
    choice: str
    calibration_error: dict[str, float] = field(default_factory=dict)
    imbalance: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        errs = ", ".join(f"{k} {v:.4f}" for k, v in self.calibration_error.items())
        return (f"ChipBalance(choice={self.choice!r}, imbalance {self.imbalance.get('none', float('nan')):.3f} -> "
                f"{self.imbalance.get(self.choice, float('nan')):.3f}{'; calibration error: ' + errs if errs else ''})")


def choose_on_calibration(candidates: dict[str, Network], profile: Profile | str, calibration: np.ndarray, *,
                          seed: int = 0, ranges: dict[str, dict] | None = None,
                          **overrides: Any) -> tuple[str, dict[str, float]]:
    """The balancing whose quantised outputs on ``calibration`` best match the float network's, and every score.

    A classifier's candidates are scored by the fraction of calibration samples whose quantised
    argmax differs from the float argmax (ties: the relative RMS output error). The best one
    replaces ``none`` only when the paired difference is significant: with ``b`` samples that it
    alone gets right and ``c`` that only ``none`` gets right, ``b - c > Z * sqrt(b + c)``
    (`SIGNIFICANCE`; a sign test), so that a difference a few calibration samples wide does not
    decide. Networks with one output compare the relative RMS error and need it
    ``1 - RMS_MARGIN`` times lower. ``ranges`` (by candidate) reuses `activation_ranges` of ``calibration``.

    Returns
    -------
    (str, dict of float)
        The choice and, per candidate, its score (disagreement, or RMS error for one output).
    """
    profile = profile if isinstance(profile, Profile) else load_profile(profile, warn=False)  # warned by quantize
    agree: dict[str, np.ndarray] = {}
    rms: dict[str, float] = {}
    for name, candidate in candidates.items():
        reference = candidate.forward(calibration)
        q = quantize(candidate, profile, ranges[name] if ranges else calibration, seed=seed, **overrides)
        out = q.forward(calibration)
        rms[name] = float(np.sqrt(np.mean((out - reference) ** 2)) / (np.sqrt(np.mean(reference ** 2)) or 1.0))
        agree[name] = out.argmax(axis=1) == reference.argmax(axis=1)
    if next(iter(candidates.values())).output.n_features == 1:
        best = min(rms, key=rms.get)
        keep = "none" in rms and rms[best] >= (1 - RMS_MARGIN) * rms["none"]
        return ("none" if keep else best), rms
    scores = {name: float(1.0 - agree[name].mean()) for name in candidates}
    best = min(candidates, key=lambda name: (scores[name], rms[name]))
    if "none" in candidates and best != "none":
        b = int(np.sum(agree[best] & ~agree["none"]))
        c = int(np.sum(agree["none"] & ~agree[best]))
        if not b - c > SIGNIFICANCE * np.sqrt(b + c):
            best = "none"
    return best, scores


def balance_for_chip(net: Network, profile: Profile | str, calibration: np.ndarray | None, choice: str = "auto", *,
                     cost: Cost | None = None, seed: int = 0, **overrides: Any) -> ChipBalance:
    """Balance ``net`` for quantisation on ``profile`` (module docstring).

    Parameters
    ----------
    net : Network
    profile : Profile or str
    calibration : ndarray (batch, n_in)
        The calibration data `quantize` will use; ``auto`` chooses on it alone (the other choices
        do not read it and accept None).
    choice : {"none", "linf", "lp", "pow2", "auto"}
    cost : Cost, optional
        The cost of ``lp`` (default ``Lp(2)``).
    seed : int
        Passed to `quantize` (analog noise) when ``auto`` compares candidates.
    **overrides
        Passed to `quantize` (e.g. ``weight_bits=4``).

    Returns
    -------
    ChipBalance

    Examples
    --------
    >>> import neuro_balance as nb, numpy as np
    >>> net = nb.mlp([8, 6, 3], seed=0)
    >>> net.projections[0].weight[0] *= 50.0        # one unit's incoming range far above the others
    >>> x = np.random.default_rng(0).random((64, 8))
    >>> nb.hardware.balance_for_chip(net, "speck", x, "auto", weight_bits=4).choice != "none"
    True
    """
    if choice not in BALANCE_CHOICES:
        raise ValueError(f"balance must be one of {BALANCE_CHOICES}, got {choice!r}")
    names = ("none", "linf", "lp", "pow2") if choice == "auto" else tuple(dict.fromkeys(("none", choice)))
    candidates = balanced_candidates(net, names, cost)
    errors: dict[str, float] = {}
    if choice == "auto":
        if calibration is None:
            raise ValueError("balance_for_chip: 'auto' chooses on calibration data; got None")
        calibration = np.asarray(calibration, dtype=np.float64)
        ranges = {k: activation_ranges(c, calibration) for k, c in candidates.items()}
        choice, errors = choose_on_calibration(candidates, profile, calibration, seed=seed, ranges=ranges,
                                               **overrides)
    return ChipBalance(candidates[choice], choice, errors,
                       {k: range_imbalance(candidates[k]) for k in dict.fromkeys(("none", choice))})
