"""Figures of the main job (matplotlib, imported inside each function; written atomically as PNG)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..model.files import atomic_output

__all__ = ["plot_agent_convergence", "plot_balance_histogram", "plot_spiking_raster"]


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
                           path: str | Path, global_cost: float | None = None) -> Path:
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
        ax.semilogy(1e3 * t, np.maximum(values, 1e-17), label=name)
    ax.set_xlabel("simulated time (ms)")
    ax.set_ylabel("max relative imbalance")
    ax.set_title("Brian2 agents: local balancing converges")
    ax.grid(True, which="both", alpha=0.3)
    twin = ax.twinx()
    events = np.sort(event_times)
    twin.plot(1e3 * events, np.arange(1, len(events) + 1), color="0.5", lw=1, ls="--", label="events")
    twin.set_ylabel("balance events (cumulative)")
    ax.legend(loc="upper right", fontsize=8)
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
                        window: tuple[float, float] | None = None, phases: Mapping[str, tuple[float, float]] | None = None
                        ) -> Path:
    """Spike raster of the populations, with every balancing event marked.

    Parameters
    ----------
    spikes : dict of (times, indices)
        Spike times (s) and unit indices per population, stacked in the order given.
    events : dict of (times, indices)
        Balance events per population.
    path : path-like
    window : (start, stop), optional
        Time range to draw (s).
    phases : dict of (start, stop), optional
        Named time ranges shaded in the background (e.g. measurement and balancing).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    offset = 0
    ticks = []
    for k, (name, (t, i)) in enumerate(spikes.items()):
        keep = slice(None) if window is None else (t >= window[0]) & (t <= window[1])
        ax.scatter(t[keep], i[keep] + offset, s=0.5, color=f"C{k}", marker="|", rasterized=True)
        if name in events:
            te, ie = events[name]
            keep_e = slice(None) if window is None else (te >= window[0]) & (te <= window[1])
            ax.scatter(te[keep_e], ie[keep_e] + offset, s=5, color="k", marker="x", lw=0.4,
                       label="balance event" if not ticks else None)
        size = int(max(i.max(initial=-1), events.get(name, (None, np.zeros(0, int)))[1].max(initial=-1)) + 1)
        ticks.append((offset + size / 2, name))
        offset += size + 2
    for k, (label, (start, stop)) in enumerate((phases or {}).items()):
        ax.axvspan(start, stop, color=f"C{k + 5}", alpha=0.08, label=label)
    ax.set_yticks([y for y, _ in ticks], [n for _, n in ticks])
    ax.set_xlabel("time (s)")
    ax.set_title("Spiking network: balancing events while the network keeps spiking")
    if window is not None:
        ax.set_xlim(*window)
    ax.legend(loc="upper right", fontsize=8, markerscale=1.5)
    return _save(fig, path)
