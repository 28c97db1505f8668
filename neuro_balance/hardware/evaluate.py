"""Sweeps: float vs quantised vs balanced-then-quantised networks across chips, bit widths and seeds.

Balancing rescales units without changing the float function (theory §1), so any accuracy difference
after quantisation comes from how well each chip's shared scales fit the rescaled weights. The
variants are the choices of `chip_balance`: ``quantized`` (no balancing), ``balanced`` (the Lp
balanced state of ``cost``), ``balanced_linf`` (L-infinity range equalisation), ``balanced_pow2``
(L-infinity with power-of-two factors: exact shifts on chip) and ``balanced_auto`` (per cell, the one
closest to the float network on the calibration data). Every record carries the L-infinity range
imbalance of the network it quantised, so a reader sees why balancing helps or not; with
``stepped=True`` it also carries the stepped simulation's accuracy and output error beside the
static emulation's.

Examples
--------
>>> ev = evaluate(net, X_test, y_test, calibration=X_train, profiles=["loihi1", "akida2"],
...               bits=[None, 4], stepped=True)                     # doctest: +SKIP
>>> print(ev.table()); print(ev.rows_table())                       # doctest: +SKIP
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..balancing.costs import Cost
from ..errors import ModelError, NumericalError, ProfileError
from ..grid import run_grid
from ..model.network import Network
from .calibration import activation_ranges
from .chip_balance import balanced_candidates, choose_on_calibration, range_imbalance
from .emulate import quantize
from .profile import list_profiles, load_profile
from .spiking import simulate
from .static_check import forward_simulate_bound, stepped_check

__all__ = ["Evaluation", "evaluate", "VARIANTS", "plot_evaluation"]

VARIANTS = ("quantized", "balanced", "balanced_linf", "balanced_pow2", "balanced_auto")
#: The `chip_balance` choice behind each variant (``balanced_auto`` picks among the others per cell).
CHOICES = {"quantized": "none", "balanced": "lp", "balanced_linf": "linf", "balanced_pow2": "pow2"}


@dataclass
class Evaluation:
    """Results of `evaluate`: one record per profile x bit width x variant x seed.

    Attributes
    ----------
    records : list of dict
        ``profile``, ``bits`` (None = the profile's own), ``weight_bits`` (effective), ``variant``,
        ``seed``, ``accuracy``, ``output_error`` (relative RMS error of the outputs against the
        float network), ``saturation`` (activity, accumulator, state and readout saturation events
        summed over populations), ``clipped_weights``, ``imbalance`` (L-infinity range imbalance
        of the quantised network, `range_imbalance`), ``choice`` (the balancing applied; for
        ``balanced_auto`` the one picked on the calibration data), ``stepped_accuracy`` and
        ``stepped_output_error`` (`simulate`; None unless ``stepped``), ``static_gap`` and
        ``static_trusted`` (spiking chips: rms(forward - simulate) / rms(float output) on the data, or
        on a sample of it when not ``stepped``, and whether it is within the stated bound,
        `neuro_balance.hardware.static_check`), ``seconds``; ``accuracy`` is None when the chip does
        not allow that width.
    float_accuracy : float
        Accuracy of the float network (identical for the balanced ones).
    balance : dict
        Per variant: ``imbalance`` of its network (``float`` for the network as given).
    """

    records: list[dict[str, Any]]
    float_accuracy: float
    balance: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0

    def mean(self, profile: str, bits: int | None, variant: str, key: str = "accuracy") -> float | None:
        """Mean of ``key`` over seeds (None when not applicable)."""
        values = [r[key] for r in self.records if r["profile"] == profile and r["bits"] == bits
                  and r["variant"] == variant and r[key] is not None]
        return float(np.mean(values)) if values else None

    @property
    def profiles(self) -> list[str]:
        """Profile names in the order evaluated."""
        return list(dict.fromkeys(r["profile"] for r in self.records))

    @property
    def bits(self) -> list[int | None]:
        """Weight widths in the order evaluated (None = each profile's own)."""
        return list(dict.fromkeys(r["bits"] for r in self.records))

    @property
    def variants(self) -> list[str]:
        """Variants in the order evaluated."""
        return list(dict.fromkeys(r["variant"] for r in self.records))

    @property
    def untrusted_static(self) -> list[dict[str, Any]]:
        """Records whose static estimate is beyond the stated bound of the stepped run: read their stepped numbers."""
        return [r for r in self.records if r.get("static_trusted") is False]

    def table(self, key: str = "accuracy") -> str:
        """A Markdown table: one row per profile and weight width, one column per variant (means over seeds).

        The best value of each row is bold (``key="accuracy"``); ``native (k-bit)`` is the chip's own width;
        ``n/a`` a width the chip does not offer; ``†`` a spiking cell whose static estimate is beyond its stated
        bound (`untrusted_static`). A line above gives the float accuracy and the L-infinity range imbalance of
        each variant's network.
        """
        variants = self.variants
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"   # noqa: E731
        imb = "; ".join(f"{v} {self.balance[v]['imbalance']:.3f}" for v in variants if v in self.balance)
        lines = [f"{key}, mean over seeds (float network: {self.float_accuracy:.4f}). L-infinity range imbalance of "
                 f"the network quantised: float {self.balance.get('float', {}).get('imbalance', float('nan')):.3f}"
                 + (f"; {imb}" if imb else "") + ("; balanced_auto: per cell" if "balanced_auto" in variants else ""),
                 "", "| profile | weight bits | " + " | ".join(variants) + " |", "|" + "---|" * (len(variants) + 2)]
        for prof in self.profiles:
            for b in self.bits:
                means = [self.mean(prof, b, v, key) for v in variants]
                if b is None:
                    native = [r["weight_bits"] for r in self.records if r["profile"] == prof and r["bits"] is None
                              and r["weight_bits"] is not None]
                    width = f"native ({native[0]}-bit)" if native else "native"
                else:
                    width = str(b)
                best = max((m for m in means if m is not None), default=None) if key == "accuracy" else None
                cells = []
                for v, m in zip(variants, means):
                    text = fmt(m)
                    if m is not None and m == best:
                        text = f"**{text}**"
                    if any(r.get("static_trusted") is False for r in self.records if r["profile"] == prof
                           and r["bits"] == b and r["variant"] == v):
                        text += " †"
                    cells.append(text)
                lines.append(f"| {prof} | {width} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def rows_table(self) -> str:
        """A Markdown table with one row per profile, width and variant (means over seeds), float first.

        Columns: imbalance of the quantised network, static accuracy and output error, stepped
        accuracy and output error (``-`` when not run), the static estimate's gap to the stepped run
        (``!`` beyond the stated bound), and the balancing applied.
        """
        fmt = lambda v: "-" if v is None else f"{v:.3f}"   # noqa: E731
        head = ["profile", "bits", "variant", "imbalance", "accuracy", "output error", "stepped accuracy",
                "stepped error", "static gap", "choice"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                 f"| float | - | float | {fmt(self.balance.get('float', {}).get('imbalance'))} | "
                 f"{self.float_accuracy:.3f} | 0 | - | - | - | - |"]
        for prof in self.profiles:
            for b in self.bits:
                for v in self.variants:
                    if self.mean(prof, b, v) is None:
                        continue
                    cell = [r for r in self.records if r["profile"] == prof and r["bits"] == b and r["variant"] == v]
                    choices = sorted({r["choice"] for r in cell if r.get("choice")})
                    gap = fmt(self.mean(prof, b, v, "static_gap"))
                    if any(r.get("static_trusted") is False for r in cell):
                        gap += " !"
                    lines.append("| " + " | ".join([
                        prof, "native" if b is None else str(b), v, fmt(self.mean(prof, b, v, "imbalance")),
                        fmt(self.mean(prof, b, v)), fmt(self.mean(prof, b, v, "output_error")),
                        fmt(self.mean(prof, b, v, "stepped_accuracy")),
                        fmt(self.mean(prof, b, v, "stepped_output_error")), gap, ", ".join(choices)]) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"format": "neuro_balance.hardware_evaluation/1", "float_accuracy": self.float_accuracy,
                "balance": self.balance, "seconds": self.seconds, "records": self.records}

    def save(self, directory: str | Path, stem: str = "hardware_evaluation", figure: bool = True) -> list[Path]:
        """Write ``stem.json`` (and ``stem.png``) into ``directory`` atomically; returns the paths."""
        from ..model.files import atomic_output, atomic_write_text

        directory = Path(directory)
        paths = [directory / f"{stem}.json"]
        atomic_write_text(paths[0], json.dumps(self.to_dict(), indent=1))
        if figure:
            paths.append(directory / f"{stem}.png")
            with atomic_output(paths[1]) as tmp:
                plot_evaluation(self, tmp)
        return paths

    def __repr__(self) -> str:
        return (f"Evaluation({len(self.profiles)} profiles x {len(self.bits)} widths x {len(self.variants)} variants, "
                f"{len(self.records)} records, float accuracy {self.float_accuracy:.4f}, {self.seconds:.1f} s)")


def _accuracy(out: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(out, axis=1) == y))


def _relative_error(out: np.ndarray, shared: dict[str, Any]) -> float:
    """RMS of ``out`` minus the float output, over the float output's RMS; `NumericalError` if that overflows."""
    with np.errstate(over="ignore"):
        error = float(np.sqrt(np.mean((out - shared["reference"]) ** 2)) / shared["norm"])
    if not np.isfinite(error):
        raise NumericalError(f"overflow: the output error is not finite (outputs up to {np.max(np.abs(out)):.3g}): "
                             "the chip's arithmetic is degenerate for this network")
    return error


def _evaluate_cell(shared: dict[str, Any], cell: tuple[str, int | None, int, str]) -> dict[str, Any]:
    """One grid cell of `evaluate`: a profile, a weight width, a seed and a variant, as a plain record."""
    name, b, seed, variant = cell
    t0 = time.perf_counter()
    rec: dict[str, Any] = {"profile": name, "bits": b, "variant": variant, "seed": seed, "weight_bits": None,
                           "accuracy": None, "output_error": None, "saturation": None, "clipped_weights": None,
                           "imbalance": None, "choice": None, "stepped_accuracy": None, "stepped_output_error": None,
                           "static_gap": None, "static_trusted": None}
    extra = dict(shared["overrides"], weight_bits=b) if b is not None else dict(shared["overrides"])
    prof = shared["profiles"][name]
    try:
        choice = CHOICES.get(variant)
        if choice is None:   # balanced_auto: decided on the calibration data alone
            choice, _ = choose_on_calibration(shared["candidates"], prof, shared["calibration"], seed=seed,
                                              ranges=shared["ranges"], **extra)
        qnet = quantize(shared["candidates"][choice], prof, shared["ranges"][choice], seed=seed, **extra)
        out = (run := qnet.run(shared["X"])).output
        error = _relative_error(out, shared)
    except (ProfileError, NumericalError) as err:  # a width the chip lacks, or arithmetic that leaves float64
        rec["skipped"] = str(err)
    else:
        rec.update(weight_bits=None if qnet.spec.ideal else qnet.spec.weight_bits, choice=choice,
                   imbalance=shared["imbalance"][choice], accuracy=_accuracy(out, shared["y"]),
                   output_error=error, saturation=run.saturation,
                   clipped_weights=int(sum(qnet.stats.get("weights_clipped", {}).values())))
        if shared["stepped"]:
            stepped = simulate(qnet, shared["X"]).output
            rec.update(stepped_accuracy=_accuracy(stepped, shared["y"]),
                       stepped_output_error=_relative_error(stepped, shared))
            if qnet.spec.spiking:
                gap = float(np.sqrt(np.mean((out - stepped) ** 2)) / shared["norm"])
                rec.update(static_gap=gap, static_trusted=gap <= forward_simulate_bound(qnet))
        elif qnet.spec.spiking and shared["check"]:   # the static estimate checked on a sample of the data
            check = stepped_check(qnet, shared["X"])
            rec.update(static_gap=check.difference, static_trusted=check.trusted)
    rec["seconds"] = time.perf_counter() - t0
    return rec


def evaluate(net: Network, X: np.ndarray, y: np.ndarray, *, profiles: Sequence[str] | None = None,
             bits: Iterable[int | None] = (None, 2, 4, 8), seeds: Iterable[int] = (0,),
             calibration: np.ndarray | None = None, cost: Cost | None = None,
             variants: Sequence[str] = VARIANTS, stepped: bool = False, check: bool = True,
             progress: Callable[[str], None] | None = None,
             scheduler: Any = None, workers: int | None = None, **overrides: Any) -> Evaluation:
    """Accuracy and output error of quantised networks on every profile, bit width and seed.

    Parameters
    ----------
    net : Network
        A trained feedforward classifier (argmax of the output is the class).
    X : ndarray (n, n_in)
    y : ndarray (n,) of int
    profiles : sequence of str, optional
        Profile names or paths (default: every bundled profile).
    bits : iterable of int or None
        Weight widths to try; None = the profile's own. Widths a chip does not allow are recorded
        with ``accuracy=None``.
    seeds : iterable of int
        Seeds of stochastic rounding and analog noise/mismatch.
    calibration : ndarray, optional
        Data for the activation scales (default: ``X``).
    cost : Cost
        Cost of the ``balanced`` variant (default ``Lp(2)``).
    variants : sequence of {"quantized", "balanced", "balanced_linf", "balanced_pow2", "balanced_auto"}
    stepped : bool
        Also run every cell step by step (`simulate`, one rate-code window on spiking chips, one
        step on graded ones) and record its accuracy and output error.
    check : bool
        Without ``stepped``, still step a sample of ``X`` through every spiking cell to check its
        static estimate (`neuro_balance.hardware.static_check`); False skips it (one stepped run of
        64 rows per cell).
    progress : callable, optional
        Called with a short message once each profile's cells are all done.
    scheduler : None, "processes", "threads", scheduler address or dask.distributed.Client
        Where the grid's cells (profile x width x seed x variant) run: in this process (None), or on
        Dask (`neuro_balance.grid`); the records are the same, in the same order, either way.
    workers : int, optional
        Workers of a local Dask cluster (``"processes"`` / ``"threads"``).
    **overrides
        Passed to `quantize` for every profile (e.g. ``granularity="layer"``).

    Returns
    -------
    Evaluation

    Raises
    ------
    NumericalError
        For NaN or infinite values in ``X`` or ``calibration``, or a float output on ``X`` that is not finite.
    """
    start = time.perf_counter()
    bits, seeds = list(bits), list(seeds)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    bad = set(variants) - set(VARIANTS)
    if bad:
        raise ValueError(f"variants must be among {VARIANTS}, got {sorted(bad)}")
    calibration = np.asarray(X if calibration is None else calibration, dtype=np.float64)
    for what, data in (("X", X), ("calibration", calibration)):
        if data.ndim != 2 or data.shape[1] != net.input.n_features:
            raise ModelError(f"evaluate: {what} must have shape (batch, {net.input.n_features}): the chip emulation "
                             f"holds each input for a whole window; got {data.shape}"
                             + (" (a sequence: the emulation does not step sequence inputs)" if data.ndim == 3 else ""))
    for label, values in (("X", X), ("calibration", calibration)):
        if not np.isfinite(values).all():
            raise NumericalError(f"NaN: {label} has {int((~np.isfinite(values)).sum())} NaN or infinite value(s); "
                                 "accuracy and output error on them are not numbers")
    reference = net.forward(X)
    if not np.isfinite(reference).all():
        raise NumericalError("overflow: the float network's own output on X is not finite, so no output error "
                             "can be measured against it")
    needed = tuple(CHOICES.values()) if "balanced_auto" in variants else tuple(CHOICES[v] for v in variants)
    candidates = balanced_candidates(net, needed, cost)
    ranges = {choice: activation_ranges(candidate, calibration) for choice, candidate in candidates.items()}
    imbalance = {choice: range_imbalance(candidate) for choice, candidate in candidates.items()}
    info = {"float": {"imbalance": range_imbalance(net)}}
    info.update({v: {"imbalance": imbalance[CHOICES[v]]} for v in variants if v in CHOICES})
    loaded = {}
    for name in (list(profiles) if profiles is not None else list_profiles()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prof = load_profile(name)
        loaded[prof.name] = prof
    cells = [(name, b, int(seed), variant) for name in loaded for b in bits for seed in seeds for variant in variants]
    shared = {"candidates": candidates, "ranges": ranges, "imbalance": imbalance, "profiles": loaded, "X": X, "y": y,
              "calibration": calibration, "reference": reference, "stepped": bool(stepped), "check": bool(check),
              "norm": float(np.sqrt(np.mean(reference ** 2))) or 1.0, "overrides": overrides}
    remaining = {name: sum(c[0] == name for c in cells) for name in loaded}

    def cell_done(done: int, total: int, cell: tuple) -> None:  # a profile is reported once all its cells are in
        remaining[cell[0]] -= 1
        if remaining[cell[0]] == 0 and progress is not None:
            progress(f"{cell[0]} done")

    grid = run_grid(_evaluate_cell, cells, shared, scheduler=scheduler, workers=workers, progress=cell_done)
    grid.raise_for_failures("evaluate")
    records = grid.records
    return Evaluation(records, _accuracy(reference, y), info, time.perf_counter() - start)


#: How `plot_evaluation` draws each variant: label, then line style. Lines that often coincide differ in marker
#: size (large hollow under small filled), line style and width, so each stays visible where they overlap.
PLOT_STYLE = {
    "quantized": ("quantised as trained", dict(color="C0", lw=3.5, alpha=0.4, marker="o", ms=11)),
    "balanced": ("balanced for the cost, then quantised",
                 dict(color="C1", lw=1.6, ls="--", marker="s", ms=8, mfc="none", mew=1.5)),
    "balanced_linf": ("balanced for L-infinity, then quantised",
                      dict(color="C2", lw=1.4, ls=(0, (1, 1.5)), marker="^", ms=6)),
    "balanced_pow2": ("L-infinity, power-of-two factors, then quantised",
                      dict(color="C4", lw=1.0, ls="-.", marker="D", ms=4)),
    "balanced_auto": ("the balancing the calibration data picks, then quantised",
                      dict(color="0.25", lw=0.8, ls="-", marker="+", ms=9, mew=1.3)),
}
RESCALED_STYLE = ("a badly scaled copy of the same function, quantised (balanced first: the orange line)",
                  dict(color="C3", lw=1.4, marker="x", ms=7, mew=1.5))


def plot_evaluation(ev: Evaluation, path: str | Path, rescaled: Evaluation | None = None) -> None:
    """Accuracy against weight bits, one panel per chip, one line per variant, one legend (PNG).

    Chips that keep float64 weights are left out (they lie on the float line, named in the title); each panel
    marks the chip's native width with a star. Lines that coincide stay visible (`PLOT_STYLE`).

    Parameters
    ----------
    ev : Evaluation
    path : path-like or file object
    rescaled : Evaluation, optional
        The same function from a badly scaled copy: its unbalanced accuracy is drawn as one more line.
    """
    from matplotlib.figure import Figure

    ideal = [p for p in ev.profiles
             if all(r["weight_bits"] is None for r in ev.records if r["profile"] == p and r["accuracy"] is not None)]
    profiles = [p for p in ev.profiles if p not in ideal] or ev.profiles
    widths = sorted(b for b in ev.bits if b is not None)
    cols = min(4, len(profiles))
    rows = -(-len(profiles) // cols)
    ncol = 2 if cols >= 3 else 1
    legend_rows = -(-(len(ev.variants) + (rescaled is not None) + 2) // ncol)   # + float line and native star
    fig = Figure(figsize=(max(4.0 * cols, 8.0), 3.8 * rows + 0.26 * legend_rows + 0.9))
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
    lines = [(ev, v, *PLOT_STYLE.get(v, (v, {}))) for v in ev.variants]
    if rescaled is not None:
        lines.append((rescaled, "quantized", *RESCALED_STYLE))
    for ax, prof in zip(axes.ravel(), profiles):
        ticks = set(widths)
        ax.axhline(ev.float_accuracy, color="k", lw=0.9, ls="--", label="float network", zorder=1)
        for source, variant, label, style in lines:
            points = [(b, source.mean(prof, b, variant)) for b in widths]
            points = [(b, a) for b, a in points if a is not None]
            if points:
                ax.plot(*zip(*points), label=label, **style)
        native = [r["weight_bits"] for r in ev.records if r["profile"] == prof and r["bits"] is None
                  and r["variant"] == ev.variants[0] and r["weight_bits"] is not None]
        value = ev.mean(prof, None, ev.variants[0])
        if native and value is not None:
            ax.plot(native[0], value, marker="*", ms=14, color="gold", mec="k", ls="none", zorder=5,
                    label=f"the chip's native width, {ev.variants[0]}")
            ticks.add(native[0])
        ax.set_title(prof, fontsize=11)
        ax.set_xticks(sorted(ticks))
        ax.set_ylim(0, 1.03)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("weight bits")
    for ax in axes[:, 0]:
        ax.set_ylabel("test accuracy")
    for ax in axes.ravel()[len(profiles):]:
        ax.axis("off")
    handles: dict[str, Any] = {}
    for ax in axes.ravel():
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=ncol, fontsize=10, frameon=False)
    left_out = f"\n({', '.join(ideal)}: float weights, the float line itself, not drawn)" if ideal and \
        len(profiles) < len(ev.profiles) else ""
    seeds = len({r["seed"] for r in ev.records})
    fig.suptitle(f"Quantised test accuracy on each chip's number format, "
                 f"{f'mean of {seeds} seeds' if seeds > 1 else 'one seed'}{left_out}", fontsize=12)
    fig.tight_layout(rect=(0, (0.24 * legend_rows + 0.1) / fig.get_figheight(), 1, 1))
    fig.savefig(path, format="png", dpi=120)
