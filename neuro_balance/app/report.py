"""The main job's report as Markdown (``report.md``), from the plain data written to ``report.json``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["markdown_report", "balanced_agreement", "table_key"]

STAGE_TITLES = {"agents": "neurons as balancing agents (Brian2)", "spiking": "spiking rate equivalence",
                "hardware": "quantised accuracy on chips", "hardware_rescaled": "chips, from a rescaled copy"}

VARIANT_TEXT = {"quantized": "the model quantised as it is",
                "balanced": "balanced first for the run's cost (global solver)",
                "balanced_linf": "balanced first for L-infinity (every unit's largest input equals its largest output)",
                "balanced_pow2": "balanced first with power-of-two factors (exact shifts on chip)",
                "balanced_auto": "the balancing the calibration data picks for this chip"}


def table_key(variants: list[str]) -> str:
    """What a cell of `Evaluation.table` holds, and what "native" and "n/a" mean."""
    parts = " / ".join(VARIANT_TEXT.get(v, v) for v in variants)
    return (f"Each cell: the mean test accuracy over seeds of {parts}. **native**: the chip at its own weight width "
            f"(from its profile; the other columns force a width); **n/a**: the chip does not offer that width (its "
            f"profile's `weights.bits_allowed`). A profile that cannot run the model at all is listed below the table "
            f"with the reason.")


def balanced_agreement(plain: dict[str, Any], rescaled: dict[str, Any]) -> dict[str, Any]:
    """Compare the balanced accuracies of two evaluations cell by cell (profile x bits x seed).

    Returns
    -------
    dict
        ``cells`` compared, ``equal`` cells, ``largest_difference`` of accuracy, and the ``differing`` cells.
    """
    def balanced(records):
        return {(r["profile"], r["bits"], r["seed"]): r["accuracy"] for r in records
                if r["variant"] == "balanced" and r["accuracy"] is not None}

    a, b = balanced(plain["records"]), balanced(rescaled["records"])
    common = sorted(set(a) & set(b), key=str)
    differing = [{"profile": p, "bits": bits, "seed": s, "accuracy": a[(p, bits, s)], "rescaled": b[(p, bits, s)]}
                 for p, bits, s in common if a[(p, bits, s)] != b[(p, bits, s)]]
    largest = max((abs(d["accuracy"] - d["rescaled"]) for d in differing), default=0.0)
    return {"cells": len(common), "equal": len(common) - len(differing), "largest_difference": largest,
            "differing": differing}


def _stages(r: dict[str, Any]) -> list[str]:
    lines = ["| stage | ran | why not |", "|---|---|---|"]
    for name, st in r["stages"].items():
        lines.append(f"| {STAGE_TITLES.get(name, name)} | {'yes' if st['applied'] else 'no'} | "
                     f"{'' if st['applied'] else st['reason'].replace('|', '/')} |")
    return lines


def _agents(a: dict[str, Any]) -> list[str]:
    return [
        "## Neurons as balancing agents (Brian2)", "",
        f"Every hidden unit balanced itself on its own Poisson clock ({a['rate_hz']:.0f} Hz), reading only its own "
        f"synapses; neighbours that asked in the same step settled it between themselves by random priority (the "
        f"loser retries), so no two units sharing a parameter balanced at once.", "",
        "| | value |", "|---|---|",
        f"| balance events | {a['events']} ({a['events_per_unit']:.1f} per unit) |",
        f"| simulated time | {1e3 * a['simulated_s']:.0f} ms ({a['wall_s']:.1f} s wall) |",
        f"| max relative imbalance | {a['imbalance_before']:.3g} -> {a['imbalance_after']:.3g} "
        f"({'converged' if a['converged'] else 'NOT converged'} to {a['tol']:g}) |",
        f"| total cost | {a['cost_before']:.6g} -> {a['cost_after']:.6g} (global optimum {a['global_cost']:.6g}) |",
        f"| agents vs global solver: max relative weight difference | {a['max_relative_weight_difference']:.2e} |",
        f"| agents vs global solver: max log-scale difference | {a['max_log_scale_difference']:.2e} |",
        f"| network function change (relative, random inputs) | {a['function_relative_change']:.2e} |", "",
        "![agents](agents_convergence.png)", "", "![histogram](balance_histogram.png)", ""]


def _spiking(s: dict[str, Any], source: str) -> list[str]:
    return [
        "## Spiking network: rate equivalence", "",
        f"Non-leaky integrate-and-fire units (reset by subtraction) driven by {source} at {s['input_rate_hz']:.0f} Hz "
        f"per unit of activity; {s['window_s']:g} s measurement windows before and after {1e3 * s['balance_s']:.0f} ms "
        f"of balancing, which ran while the network kept spiking.", "",
        "| | value |", "|---|---|",
        f"| output change after balancing (relative to max output) | {s['output_change']:.3g} "
        f"(spike-count quantisation bound {s['output_bound']:.3g}) |",
        f"| spiking vs float output before / after | {s['snn_vs_ann_before']:.3g} / {s['snn_vs_ann_after']:.3g} |",
        f"| hidden rate after / (lambda x rate before), units with >= 100 spikes | {s['rate_ratio_mean']:.4f} +- "
        f"{s['rate_ratio_std']:.4f} (worst {s['rate_ratio_worst']:.3g}, {s['active_units']} units) |",
        f"| max relative imbalance after balancing while spiking | {s['imbalance_after']:.3g} |", "",
        "![raster](spiking_raster.png)", ""]


def _hardware(r: dict[str, Any]) -> list[str]:
    variants = list(dict.fromkeys(rec["variant"] for rec in r["hardware"]["records"]))
    lines = ["## Quantised accuracy on neuromorphic chips", "", r["hardware_table"], "", table_key(variants), ""]
    for name, why in r.get("hardware_skipped", {}).items():
        lines.append(f"- {name}: not run: {why}")
    lines += ["", "![accuracy](accuracy_vs_bits.png)", ""]
    if "hardware_rescaled" not in r:
        return lines
    agree = balanced_agreement(r["hardware"], r["hardware_rescaled"])
    lines += [
        "### The same function from a badly scaled copy", "",
        f"The network after a function-preserving random rescaling of its hidden units (log-normal, sigma "
        f"{r['hardware_rescaled']['sigma']:g}): the float function is identical, its quantisation is not. Each cell: "
        f"quantised as it is / balanced first. Balancing maps every rescaled copy back to the one balanced state, so "
        f"the balanced column does not depend on the copy.", "", r["hardware_rescaled_table"], ""]
    text = (f"The balanced accuracies of the two tables agree in {agree['equal']} of {agree['cells']} cells (profile "
            f"x width x seed).")
    if agree["differing"]:
        cells = ", ".join(f"{d['profile']} {d['bits'] or 'native'}-bit seed {d['seed']}: {d['accuracy']:.3f} vs "
                          f"{d['rescaled']:.3f}" for d in agree["differing"])
        text += (f" They differ in {cells}: the two balanced networks are the same state reached along two paths, "
                 "equal up to floating-point rounding (about 1e-16), and a value that lands exactly on a rounding "
                 "boundary of the chip can go either way. The largest weight of a scale group is such a value "
                 "under truncating rounding: exactly the top level in exact arithmetic, one level lower when it "
                 "falls one unit in the last place short.")
    return lines + [text, ""]


def markdown_report(r: dict[str, Any]) -> str:
    """The report as Markdown: what ran (and why a stage did not), then one section per stage that ran."""
    lines = [f"# neuro-balance run: {Path(r['model']).name}", "",
             f"{r['network']}; cost {r['cost']}; seed {r['seed']}; Brian2 target {r['target']}"
             f"{'; quick' if r['quick'] else ''}; wall time {r['wall_s']:.1f} s.", ""] + _stages(r) + [""]
    if "agents" in r:
        lines += _agents(r["agents"])
    if "spiking" in r:
        lines += _spiking(r["spiking"], r["spiking_input"])
    if "hardware" in r:
        lines += _hardware(r)
    return "\n".join(lines)
