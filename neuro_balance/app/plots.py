"""Figures of the main job (matplotlib, imported inside each function; written atomically as PNG)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..model.files import atomic_output

__all__ = ["plot_agent_convergence", "plot_balance_histogram", "plot_spiking_raster", "plot_accuracy_vs_bits"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    _pyplot().close(fig)
    return path


def plot_agent_convergence(t: np.ndarray, imbalance: Mapping[str, np.ndarray], event_times: np.ndarray,
                           path: str | Path) -> Path:
    """Max relative imbalance per population against simulated time, with the cumulative event count.

    Parameters
    ----------
    t : ndarray
        Sample times (s).
    imbalance : dict of ndarray
        Per population, the max relative imbalance at each sample.
    event_times : ndarray
        Times (s) of every balance event.
    path : path-like
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name, values in imbalance.items():
        ax.semilogy(1e3 * t, np.maximum(values, 1e-17), label=f"max relative imbalance ({name})")
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("max relative imbalance")
    ax.set_title("Brian2 agents: local balancing converges")
    ax.grid(True, which="both", alpha=0.3)
    twin = ax.twinx()
    events = np.sort(event_times)
    twin.plot(1e3 * events, np.arange(1, len(events) + 1), color="0.5", lw=1, ls="--",
              label="balance events so far (right axis)")
    twin.set_ylabel("balance events (cumulative)")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper right", fontsize=8)
    return _save(fig, path)


def plot_balance_histogram(before: np.ndarray, after: np.ndarray, lam: np.ndarray, path: str | Path) -> Path:
    """Histograms of the units' relative imbalance before and after balancing, and of their factors.

    Parameters
    ----------
    before, after : ndarray
        Relative imbalance of every balanced unit.
    lam : ndarray
        Cumulative factor of every balanced unit.
    path : path-like
    """
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    floor = 1e-17
    values = np.log10(np.maximum(np.concatenate([before, after]), floor))
    bins = np.linspace(values.min() - 0.5, max(values.max(), 0) + 0.5, 40)
    ax1.hist(np.log10(np.maximum(before, floor)), bins=bins, alpha=0.7, label="before")
    ax1.hist(np.log10(np.maximum(after, floor)), bins=bins, alpha=0.7, label="after")
    ax1.set_xlabel("log10 relative imbalance |in - out| / max(in, out)")
    ax1.set_ylabel("units")
    ax1.legend()
    ax2.hist(np.log2(lam), bins=30, color="C2")
    ax2.set_xlabel("log2 lambda (cumulative factor per unit)")
    ax2.set_ylabel("units")
    fig.suptitle("Balance before and after")
    return _save(fig, path)


def plot_spiking_raster(spikes: Mapping[str, tuple[np.ndarray, np.ndarray]],
                        events: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path,
                        window: tuple[float, float] | None = None, phases: Mapping[str, tuple[float, float]] | None = None,
                        outputs: Mapping[str, np.ndarray] | None = None, output_name: str = "out") -> Path:
    """Spike raster of the populations on a neuron axis, with every balance event marked.

    Parameters
    ----------
    spikes : dict of (times, indices)
        Spike times (s) and unit indices per population, stacked bottom-up in the order given.
    events : dict of (times, indices)
        Balance events per population.
    path : path-like
    window : (start, stop), optional
        Time range to draw (s).
    phases : dict of (start, stop), optional
        Named time ranges shaded in the background (e.g. measurement and balancing).
    outputs : dict of ndarray, optional
        The output population's readout per measurement (e.g. ``{"before": y0, "after": y1}``), drawn in a
        panel beside the raster: integrating output units do not spike, so they have no raster rows.
    output_name : str
        Name of the output population (the panel's title).
    """
    plt = _pyplot()
    fig = plt.figure(figsize=(10, 5.2))
    grid = fig.add_gridspec(1, 2 if outputs else 1, width_ratios=[4, 1] if outputs else [1], wspace=0.08)
    ax = fig.add_subplot(grid[0])
    for k, (label, (start, stop)) in enumerate((phases or {}).items()):
        if window is None or (start < window[1] and stop > window[0]):  # only phases the window shows
            ax.axvspan(start, stop, color=f"C{k + 1}", alpha=0.12, lw=0, label=label, zorder=0)
    offset, ticks, labels, bands = 0, [], [], []
    labelled = False
    for name, (t, i) in spikes.items():
        keep = np.ones(t.shape, bool) if window is None else (t >= window[0]) & (t <= window[1])
        ax.scatter(t[keep], i[keep] + offset, s=7, color="0.1", marker="|", lw=0.7, rasterized=True, zorder=3,
                   label=None if bands else "spike")
        te, ie = events.get(name, (np.zeros(0), np.zeros(0, int)))
        keep_e = np.ones(te.shape, bool) if window is None else (te >= window[0]) & (te <= window[1])
        if keep_e.any():
            ax.scatter(te[keep_e], ie[keep_e] + offset, s=4, color="C3", lw=0, alpha=0.55, zorder=2,
                       rasterized=True, label=None if labelled else "balance event (one unit rescales itself)")
            labelled = True
        size = int(max(i.max(initial=-1), ie.max(initial=-1)) + 1)
        step = 10 if size > 25 else 5
        ticks += [offset + j for j in range(0, size, step)]
        labels += [str(j) for j in range(0, size, step)]
        bands.append((name, offset, size))
        offset += size + 3
    for name, start, size in bands:
        ax.axhline(start - 1.5, color="0.6", lw=0.5)
        ax.annotate(name, xy=(0, start + size / 2), xycoords=("axes fraction", "data"), xytext=(-28, 0),
                    textcoords="offset points", ha="right", va="center", fontsize=9, fontweight="bold")
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set_ylim(-2, offset - 1)
    ax.set_ylabel("neuron (index in its population)", labelpad=42)
    ax.set_xlabel("simulated time (s)")
    if window is not None:
        ax.set_xlim(*window)
    ax.set_title("Spiking network: balance events while the network keeps spiking", fontsize=10)
    if outputs:
        side = fig.add_subplot(grid[1])
        height = 0.8 / len(outputs)
        for k, (label, y) in enumerate(outputs.items()):
            side.barh(np.arange(len(y)) + (k - (len(outputs) - 1) / 2) * height, y, height=height,
                      color=f"C{k}", label=f"readout {label}")
        side.set_yticks(np.arange(len(y)))
        side.set_ylabel("neuron")
        side.yaxis.set_label_position("right")
        side.yaxis.tick_right()
        side.set_xlabel("activity")
        side.set_title(f"{output_name} (integrating, no spikes)", fontsize=9)
        side.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=5, fontsize=8, frameon=False, markerscale=1.5)
    return _save(fig, path)


def plot_accuracy_vs_bits(evaluation, rescaled, path: str | Path) -> Path:
    """Quantised accuracy against weight bits, one panel per chip, one legend for the figure.

    Parameters
    ----------
    evaluation : neuro_balance.hardware.Evaluation
        The model quantised as it is and balanced first.
    rescaled : neuro_balance.hardware.Evaluation or None
        The same function from a badly scaled copy (drawn where given: this is where balancing helps).
    path : path-like
    """
    plt = _pyplot()
    profiles = evaluation.profiles
    widths = sorted(b for b in evaluation.bits if b is not None)
    cols = min(4, len(profiles))
    rows = -(-len(profiles) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.5 * rows + 0.9), sharey=True, squeeze=False)
    lines = [(evaluation, "quantized", "quantised as trained", dict(color="C0", lw=3.2, alpha=0.45, marker="o", ms=6)),
             (evaluation, "balanced", "balanced, then quantised",
              dict(color="C1", lw=1.2, ls="--", marker="o", ms=4, mfc="white")),
             (evaluation, "balanced_pow2", "balanced (powers of two), then quantised",
              dict(color="C2", lw=1.0, ls=":", marker="^", ms=4)),
             (evaluation, "balanced_auto", "balancing picked on calibration data, then quantised",
              dict(color="C4", lw=1.0, ls="-.", marker="d", ms=4))]
    if rescaled is not None:
        lines.append((rescaled, "quantized", "a badly scaled copy of the same function, quantised (balanced: as above)", dict(color="C3", lw=1.2, marker="x", ms=5)))
    for ax, prof in zip(axes.ravel(), profiles):
        ticks = set(widths)
        ax.axhline(evaluation.float_accuracy, color="k", lw=0.8, ls="--", label="float")
        for ev, variant, label, style in lines:
            points = [(b, ev.mean(prof, b, variant)) for b in widths]
            points = [(b, a) for b, a in points if a is not None]
            if points:
                ax.plot(*zip(*points), label=label, **style)
            native = [r["weight_bits"] for r in ev.records if r["profile"] == prof and r["bits"] is None
                      and r["variant"] == variant and r["weight_bits"] is not None]
            if native and ev is evaluation and variant == "quantized":
                ax.plot(native[0], ev.mean(prof, None, variant), marker="*", ms=11, color="C0", ls="none",
                        label="the chip's native width, quantised", zorder=4)
                ticks.add(native[0])
        ax.set_title(prof, fontsize=9)
        ax.set_xticks(sorted(ticks))
        ax.set_ylim(0, 1.03)
        ax.grid(True, alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("weight bits")
    for ax in axes[:, 0]:
        ax.set_ylabel("test accuracy")
    for ax in axes.ravel()[len(profiles):]:
        ax.axis("off")
    handles = {}
    for ax in axes.ravel():
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("Quantised accuracy on each chip's number format", fontsize=11)
    fig.tight_layout(rect=(0, 0.12 if rows == 1 else 0.07, 1, 1))
    return _save(fig, path)
