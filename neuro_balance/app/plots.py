"""Figures of the main job (matplotlib, imported inside each function; written atomically as PNG)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..model.files import atomic_output

__all__ = ["plot_agent_convergence", "plot_balance_histogram", "plot_spiking_raster", "plot_accuracy_vs_bits",
           "rate_pairs"]


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
    fig, ax = plt.subplots(figsize=(9, 5))
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

    Units whose imbalance is exactly 0 have no logarithm: they are counted in the legend, not drawn.

    Parameters
    ----------
    before, after : ndarray
        Relative imbalance of every balanced unit.
    lam : ndarray
        Cumulative factor of every balanced unit.
    path : path-like
    """
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    drawn = [np.log10(v[v > 0]) for v in (before, after)]
    values = np.concatenate(drawn)
    low, high = (values.min(), values.max()) if values.size else (-1.0, 0.0)
    bins = np.linspace(np.floor(low) - 0.5, max(np.ceil(high), 0) + 0.5, 40)
    for data, raw, label, colour in zip(drawn, (before, after), ("before", "after balancing"), ("C0", "C1")):
        zeros = int(np.sum(raw == 0))
        note = f" ({zeros} of {raw.size} exactly 0: not drawn)" if zeros else ""
        ax1.hist(data, bins=bins, alpha=0.7, color=colour, label=f"{label}{note}")
    ax1.set_xlabel("log10 relative imbalance |in - out| / max(in, out)")
    ax1.set_ylabel("units")
    ax1.set_title("each unit's relative imbalance", fontsize=11)
    ax1.legend(fontsize=9)
    ax2.hist(np.log2(lam), bins=30, color="C2")
    ax2.set_xlabel("log2 λ (the factor balancing applied to the unit)")
    ax2.set_ylabel("units")
    ax2.set_title("each unit's factor λ", fontsize=11)
    fig.suptitle(f"Balance before and after: {before.size} units", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)


def rate_pairs(run, min_count: int = 100) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per hidden population of an `AgentRun` measured while spiking: (expected rate, rate after) in Hz of
    the units with at least ``min_count`` spikes before (the units of `AgentRun.rate_ratios`); the expected
    rate is λ x rate before (the exchange), or the rate before for a unit balanced by its gauge."""
    out = {}
    for name, u in run.log_scales.items():
        on = run.before.counts[name] >= max(min_count, 1)
        lam = 1.0 if name in run.gauged else np.exp(u[on])
        out[name] = (lam * run.before.rates[name][on], run.after.rates[name][on])
    return out


def _shown_units(t: np.ndarray, i: np.ndarray, size: int, count: int) -> np.ndarray:
    """Up to ``count`` unit indices spread evenly over the units that spiked (by index), all when fewer."""
    active = np.unique(i)
    if active.size <= count:
        return active if active.size else np.arange(min(size, count))
    return active[np.round(np.linspace(0, active.size - 1, count)).astype(int)]


def plot_spiking_raster(spikes: Mapping[str, tuple[np.ndarray, np.ndarray]],
                        events: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path,
                        window: tuple[float, float] | None = None, phases: Mapping[str, tuple[float, float]] | None = None,
                        outputs: Mapping[str, np.ndarray] | None = None, output_name: str = "out",
                        units: int = 8, rates: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                        sizes: Mapping[str, int] | None = None, gauge: bool = False) -> Path:
    """The spiking run: population rates over the whole run with its phases shaded, a raster of a few units per
    population over ``window`` with the balance events, and optionally the readout and the rate ratios.

    Parameters
    ----------
    spikes : dict of (times, indices)
        Spike times (s) and unit indices per population, stacked bottom-up in the order given.
    events : dict of (times, indices)
        Balance events per population (empty when nothing balanced: the figure then says so).
    path : path-like
    window : (start, stop), optional
        Time range of the raster (s); the whole run by default. It is marked on the timeline.
    phases : dict of (start, stop), optional
        Named time ranges shaded on the timeline and the raster (e.g. the measuring windows and the balancing).
    outputs : dict of ndarray, optional
        The output population's readout per measurement (e.g. ``{"before": y0, "after": y1}``), drawn beside
        the raster; its title says whether the output units spike (``output_name`` in ``spikes``) or integrate.
    output_name : str
        Name of the output population.
    units : int
        Units drawn per population in the raster (spread evenly over those that spiked): a row of a unit
        firing at hundreds of Hz stays readable.
    rates : dict of (expected, measured), optional
        Per hidden population, λ x rate before and rate after (`rate_pairs`): drawn against each other.
    sizes : dict of int, optional
        Units per population (default: one more than the largest index that spiked).
    gauge : bool
        The hidden units balanced by their gauge: their expected rate is the rate before.
    """
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    plt = _pyplot()
    side = [k for k, on in (("outputs", bool(outputs)), ("rates", bool(rates))) if on]
    fig = plt.figure(figsize=(13, 7.5))
    grid = fig.add_gridspec(2, 1 + len(side), height_ratios=[1, 2.3], width_ratios=[3.2] + [1.3] * len(side),
                            hspace=0.42, wspace=0.3)
    timeline = fig.add_subplot(grid[0, :])
    ax = fig.add_subplot(grid[1, 0])
    colours = {label: f"C{k + 1}" for k, label in enumerate(phases or {})}
    stop = max((float(t.max(initial=0.0)) for t, _ in spikes.values()), default=1.0)
    stop = max([stop] + [b for _, b in (phases or {}).values()])
    bin_s = max(stop / 400, 1e-3)
    edges = np.arange(0.0, stop + bin_s, bin_s)
    size_of = {name: int((sizes or {}).get(name, max(int(i.max(initial=-1)) + 1, 1))) for name, (_, i) in spikes.items()}
    for name, (t, i) in spikes.items():
        counts, _ = np.histogram(t, edges)
        timeline.plot(edges[:-1] + bin_s / 2, counts / (bin_s * size_of[name]), lw=1,
                      label=f"{name} (mean over its {size_of[name]} units)")
    for label, (a, b) in (phases or {}).items():
        for axis in (timeline, ax):
            axis.axvspan(a, b, color=colours[label], alpha=0.18, lw=0, zorder=0,
                         label=label if axis is timeline else None)
    if window is not None:
        timeline.axvspan(*window, facecolor="none", edgecolor="k", lw=1.2, ls="--", label="the raster below")
    timeline.set_xlim(0, stop)
    timeline.set_ylabel("spike rate per unit (Hz)")
    timeline.set_xlabel("simulated time (s)")
    timeline.set_title("Population spike rates over the whole run", fontsize=11)
    timeline.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    timeline.grid(alpha=0.3)

    offset, ticks, labels, bands, shown_events = 0, [], [], [], 0
    for name, (t, i) in spikes.items():
        size = size_of[name]
        keep = np.ones(t.shape, bool) if window is None else (t >= window[0]) & (t <= window[1])
        shown = _shown_units(t[keep], i[keep], size, units)
        row = {int(u): k for k, u in enumerate(shown)}
        sel = keep & np.isin(i, shown)
        ax.scatter(t[sel], [offset + row[int(u)] for u in i[sel]], s=50, color="0.1", marker="|", lw=0.9,
                   rasterized=True, zorder=3, label=None if bands else "spike")
        te, ie = events.get(name, (np.zeros(0), np.zeros(0, int)))
        keep_e = (np.ones(te.shape, bool) if window is None else (te >= window[0]) & (te <= window[1])) \
            & np.isin(ie, shown)
        if keep_e.any():
            ax.scatter(te[keep_e], [offset + row[int(u)] + 0.38 for u in ie[keep_e]], s=16, color="C3", lw=0,
                       marker="v", zorder=4, label=None if shown_events else "balance event (the unit rescales itself)")
            shown_events += int(keep_e.sum())
        ticks += [offset + k for k in range(len(shown))]
        labels += [str(int(u)) for u in shown]
        bands.append((name, offset, len(shown), size))
        offset += len(shown) + 1
    for name, start, count, size in bands:
        ax.axhline(start - 1, color="0.6", lw=0.5)
        ax.annotate(f"{name}\n{count} of {size}", xy=(0, start + (count - 1) / 2), xycoords=("axes fraction", "data"),
                    xytext=(-30, 0), textcoords="offset points", ha="right", va="center", fontsize=9,
                    fontweight="bold")
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set_ylim(-1, offset - 1)
    ax.set_ylabel("unit (index in its population)", labelpad=62)
    ax.set_xlabel("simulated time (s)")
    if window is not None:
        ax.set_xlim(*window)
    total_events = sum(len(te) for te, _ in events.values())
    ax.set_title("A few units per population: spikes and balance events" if total_events else
                 "A few units per population: spikes (nothing balanced in this run)", fontsize=11)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=9, frameon=False, markerscale=1.2)

    for k, kind in enumerate(side):
        panel = fig.add_subplot(grid[1, 1 + k])
        if kind == "outputs":
            height = 0.8 / len(outputs)
            for j, (label, y) in enumerate(outputs.items()):
                panel.barh(np.arange(len(y)) + (j - (len(outputs) - 1) / 2) * height, y, height=height,
                           color=f"C{j}", label=f"readout {label}")
            panel.set_yticks(np.arange(len(y)))
            panel.set_ylabel("output unit")
            panel.set_xlabel("readout (activity)")
            how = "spike rate" if output_name in spikes else "integrating, no spikes"
            panel.set_title(f"{output_name}: readout ({how})", fontsize=10)
            panel.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
        else:
            for j, (name, (expected, measured)) in enumerate(rates.items()):
                panel.loglog(expected, measured, ls="none", marker="o", ms=4, alpha=0.7, color=f"C{j}",
                             label=f"{name} ({len(expected)} units)")
            values = np.concatenate([np.concatenate(p) for p in rates.values()]) if rates else np.ones(1)
            values = values[values > 0]
            lo, hi = (values.min() / 1.3, values.max() * 1.3) if values.size else (1.0, 10.0)
            expected = "before" if gauge else "λ x before"
            panel.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, label=f"after = {expected}")
            panel.set_xlim(lo, hi)
            panel.set_ylim(lo, hi)
            for axis in (panel.xaxis, panel.yaxis):
                axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(FormatStrFormatter("%g"))
                axis.set_minor_formatter(NullFormatter())
            panel.set_xlabel(f"{'rate before' if gauge else 'λ x rate before'} (Hz)")
            panel.set_ylabel("rate after (Hz)")
            panel.set_title(f"Hidden rates: after = {expected}?" + (" (gauge)" if gauge else ""), fontsize=10)
            panel.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    return _save(fig, path)


def plot_accuracy_vs_bits(evaluation, rescaled, path: str | Path) -> Path:
    """Quantised accuracy against weight bits, one panel per chip (`neuro_balance.hardware.plot_evaluation`).

    Parameters
    ----------
    evaluation : neuro_balance.hardware.Evaluation
        The model quantised as it is and balanced first.
    rescaled : neuro_balance.hardware.Evaluation or None
        The same function from a badly scaled copy (drawn where given: this is where balancing helps).
    path : path-like
    """
    from ..hardware.evaluate import plot_evaluation

    path = Path(path)
    with atomic_output(path) as tmp:
        plot_evaluation(evaluation, tmp, rescaled)
    return path
