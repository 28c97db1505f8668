"""The main job's report as Markdown (``report.md``), from the plain data written to ``report.json``."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..hardware.evaluate import Evaluation
from ..hardware.static_check import CALIBRATION_MARGIN, CHECK_SAMPLES, FORWARD_SIMULATE_BOUND

__all__ = ["markdown_report", "findings", "accuracy_noise", "balanced_agreement", "table_key"]

STAGE_TITLES = {"agents": "neurons as balancing agents (Brian2)", "spiking": "spiking rate equivalence",
                "hardware": "quantised accuracy on chips", "hardware_rescaled": "chips, from a rescaled copy"}

VARIANT_TEXT = {"quantized": "the model quantised as it is",
                "balanced": "balanced first for the run's cost (global solver)",
                "balanced_linf": "balanced first for L-infinity (every unit's largest input equals its largest output)",
                "balanced_pow2": "balanced first for L-infinity with power-of-two factors (exact shifts on chip)",
                "balanced_auto": "the balancing the calibration data picks for this chip, per cell"}

#: Short names of the variants for sentences.
VARIANT_SHORT = {"balanced": "balancing for {cost}", "balanced_linf": "L-infinity balancing",
                 "balanced_pow2": "power-of-two L-infinity balancing", "balanced_auto": "the calibration's pick"}


def table_key(variants: list[str]) -> str:
    """What each column of `Evaluation.table` holds, and what "native", "n/a", bold and the dagger mean."""
    parts = "; ".join(f"**{v}**: {VARIANT_TEXT.get(v, v)}" for v in variants)
    return (f"Columns: {parts}. Each value is the mean test accuracy over the seeds; **bold**: the best of its row. "
            f"**native (k)**: the chip at its own weight width, k bits (from its profile; the other rows force a "
            f"width); **n/a**: the chip does not offer that width (its profile's `weights.bits_allowed`); "
            f"**†**: the static estimate is beyond its bound there (see *Static estimate* below). A profile that "
            f"cannot run the model at all is listed below the table with the reason.")


def accuracy_noise(accuracy: float, images: int) -> float:
    """The ± of an accuracy measured on ``images`` test images: the binomial standard error sqrt(p (1 - p) / n)."""
    p = min(max(accuracy, 1.0 / images), 1.0 - 1.0 / images)  # never 0: a perfect score still has an error
    return math.sqrt(p * (1.0 - p) / images)


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


def _evaluation(data: dict[str, Any]) -> Evaluation:
    return Evaluation(data["records"], data["float_accuracy"], data.get("balance", {}), data.get("seconds", 0.0))


def _ideal(ev: Evaluation) -> set[str]:
    """Profiles that keep float64 weights (no width, no rounding): they show nothing about quantisation."""
    return {p for p in ev.profiles
            if all(r["weight_bits"] is None for r in ev.records if r["profile"] == p and r["accuracy"] is not None)}


def _width(ev: Evaluation, profile: str, bits: int | None) -> str:
    if bits is not None:
        return f"{bits}-bit"
    native = [r["weight_bits"] for r in ev.records if r["profile"] == profile and r["bits"] is None
              and r["weight_bits"] is not None]
    return f"native {native[0]}-bit" if native else "native"


def _images(difference: float, n: int | None, what: str = "") -> str:
    return f" ({round(abs(difference) * n)} of {n} test images{what})" if n else ""


def _untrusted(ev: Evaluation, prof: str, bits: int | None, variant: str) -> bool:
    return any(r.get("static_trusted") is False for r in ev.records
               if r["profile"] == prof and r["bits"] == bits and r["variant"] == variant)


def _cells(ev: Evaluation, variant: str, other: Evaluation | None = None, other_variant: str = "quantized"):
    """(difference, profile, bits, value, reference) for every cell where both means exist, on chips that quantise,
    where both static estimates are within their bound (elsewhere the static numbers are not the chip's)."""
    other = other or ev
    skip = _ideal(ev)
    out = []
    for prof in ev.profiles:
        for b in ev.bits:
            value, reference = ev.mean(prof, b, variant), other.mean(prof, b, other_variant)
            if prof not in skip and value is not None and reference is not None and not \
                    (_untrusted(ev, prof, b, variant) or _untrusted(other, prof, b, other_variant)):
                out.append((value - reference, prof, b, value, reference))
    return out


#: What shares one weight scale on a chip, by its profile's ``conversion_defaults.scale_granularity``.
SCALE_SHARING = {
    "network": "the chip shares one weight scale across the network's hidden layers, set by the largest weight of "
               "all, and balancing moves magnitude between layers, so a layer can end far below that weight and keep "
               "few levels or none",
    "layer": "each layer's scale is set by its largest weight, and where a layer's weights fall on that grid decides; "
             "here the trained network's fell better",
    "channel": "each channel's scale is set by its largest weight, and where its weights fall on that grid decides; "
               "here the trained network's fell better",
    "neuron": "each unit's scale is set by its largest incoming weight, and where the others fall on that grid "
              "decides; here the trained network's fell better",
}


def _granularity(profile: str) -> str | None:
    """The profile's scale sharing, or None when it cannot be read (a profile file that has moved)."""
    import warnings

    from ..hardware.profile import load_profile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_profile(profile).get("conversion_defaults.scale_granularity")
    except Exception:  # noqa: BLE001 -- the report is written from plain data; the reason is optional
        return None


def _loss_reason(ev: Evaluation, variant: str, prof: str, bits: int | None) -> str:
    """Why balancing lost in this cell, from the numbers the evaluation recorded and the chip's scale sharing."""
    before = ev.balance.get("float", {}).get("imbalance")
    after = ev.balance.get(variant, {}).get("imbalance")
    levels = f"at {bits} bits a weight takes one of at most {2 ** bits} values, " if bits else ""
    sharing = _granularity(prof)
    sharing = sharing.get("value") if isinstance(sharing, dict) else sharing
    text = (f"The balanced state minimises the cost, which knows nothing of the chip's grid: {levels}"
            f"{SCALE_SHARING.get(sharing, SCALE_SHARING['layer'])}")
    if before is not None and after is not None and after > 1.1 * before + 0.02:
        text += (f"; {variant} also leaves the units' largest incoming and outgoing weights further apart (L-infinity "
                 f"range imbalance {before:.2f} -> {after:.2f}), so more of each layer sits on the lowest levels")
    linf = ev.mean(prof, bits, "balanced_linf") if variant != "balanced_linf" else None
    if linf is not None:
        text += f". L-infinity balancing, which evens each unit's ranges instead, scores {linf:.3f} there"
    return text + "."


def findings(r: dict[str, Any]) -> list[str]:
    """The report's opening: two or three sentences generated from the numbers of ``r`` (the report's data).

    The clearest gain from balancing (from the badly scaled copy when it ran), where balancing loses (with the
    reason the recorded imbalances give, or that the loss is within the ± of an accuracy), and what the agents
    and the spiking run showed.
    """
    out: list[str] = []
    n = r.get("test_images")
    cost = r.get("cost", "the run's cost")
    if "hardware" in r:
        ev = _evaluation(r["hardware"])
        noise = 2 * accuracy_noise(ev.float_accuracy, n) if n else 0.0
        if "hardware_rescaled" in r:
            rescaled = _evaluation(r["hardware_rescaled"])
            gains = _cells(rescaled, "balanced")
            if gains:
                gain, prof, b, value, reference = max(gains, key=lambda c: c[0])
                if gain > noise:
                    out.append(
                        f"The clearest result: a badly scaled copy of the same function (its hidden units randomly "
                        f"rescaled, which leaves the float network unchanged) scores {reference:.3f} on {prof} at "
                        f"{_width(rescaled, prof, b)} weights; balanced first it scores {value:.3f}, against "
                        f"{ev.float_accuracy:.3f} in float{_images(gain, n, ' recovered')}.")
                else:
                    out.append(f"Balancing recovers no more than {gain:.3f} of accuracy from a badly scaled copy of the "
                               f"same function on any chip, within the ± of an accuracy.")
        if not out:
            best = [c + (v,) for v in ev.variants if v != "quantized" for c in _cells(ev, v)]
            if best:
                gain, prof, b, value, reference, variant = max(best, key=lambda c: c[0])
                if gain > noise:
                    out.append(f"The clearest result: {VARIANT_SHORT.get(variant, variant).format(cost=cost)} raises "
                               f"{prof}'s accuracy at {_width(ev, prof, b)} weights from {reference:.3f} to "
                               f"{value:.3f}{_images(gain, n)}; float {ev.float_accuracy:.3f}.")
                else:
                    out.append(f"Balancing changes no chip's accuracy by more than the ± of an accuracy (largest "
                               f"gain {gain:.3f}, on {prof} at {_width(ev, prof, b)}).")
        losses = [c + (v,) for v in ev.variants if v not in ("quantized", "balanced_auto") for c in _cells(ev, v)]
        if losses:
            loss, prof, b, value, reference, variant = min(losses, key=lambda c: (c[0], c[5] != "balanced"))
            name = VARIANT_SHORT.get(variant, variant).format(cost=cost)
            if -loss > noise:
                out.append(f"Balancing can also lose: {name} lowers "
                           f"{prof}'s accuracy at {_width(ev, prof, b)} from {reference:.3f} to {value:.3f}"
                           f"{_images(loss, n)}. {_loss_reason(ev, variant, prof, b)}")
            elif loss < 0:
                out.append(f"Where balancing loses, it loses within the ± of an accuracy (at most {-loss:.3f}, "
                           f"{name} on {prof} at {_width(ev, prof, b)}).")
            else:
                out.append("No balancing variant lowers any chip's accuracy.")
    if "agents" in r:
        a = r["agents"]
        text = (f"Neurons balancing themselves as Brian2 agents {'reached' if a['converged'] else 'did NOT reach'} "
                f"the balanced state (max relative imbalance {a['imbalance_before']:.3g} -> "
                f"{a['imbalance_after']:.2g}, weights within {a['max_relative_weight_difference']:.1e} of the global "
                f"solver's)")
        if "spiking" in r and "spike_changes" in r["spiking"]:
            text += (f", and balancing while the network spiked changed {r['spiking']['spike_changes']} spikes "
                     f"against the same run without agents")
        elif "spiking" in r:
            s = r["spiking"]
            within = "within" if s["output_change"] <= s["output_bound"] else "BEYOND"
            text += (f", and balancing while the network spiked moved its output by {s['output_change']:.2g} of the "
                     f"largest output, {within} the spike-count bound {s['output_bound']:.2g}")
        out.append(text + ".")
    return out


def _reading(r: dict[str, Any]) -> list[str]:
    """How to read the numbers: test-set size, seeds, the ± of an accuracy; every term the report uses."""
    lines = ["## How to read the numbers", ""]
    n = r.get("test_images")
    if "hardware" in r:
        ev = _evaluation(r["hardware"])
        seeds = sorted({rec["seed"] for rec in ev.records})
        spread = _seed_spread(ev)
        if n:
            lines.append(
                f"- **Test set**: {n} images of scikit-learn's digits (the quarter held out from training), the same "
                f"for every cell: one image is {1 / n:.4f} of accuracy. **± of an accuracy**: near the float accuracy "
                f"{ev.float_accuracy:.3f}, the binomial standard error sqrt(p (1 - p) / n) is "
                f"{accuracy_noise(ev.float_accuracy, n):.4f} (at 0.8 it is {accuracy_noise(0.8, n):.4f}); a difference "
                f"under about twice that, {2 * accuracy_noise(ev.float_accuracy, n):.3f}, is not evidence.")
            spread_text = (f"Every accuracy is the mean over the seeds; the largest difference between two seeds of one "
                       f"cell is {spread:.4f}." if len(seeds) > 1 else "With one seed no spread over seeds is measured.")
        lines.append(
            f"- **Seeds**: {len(seeds)} ({', '.join(map(str, seeds))}): the seeds of stochastic rounding and of "
            f"analog noise and mismatch; the trained weights and the test images are the same for every seed. "
            f"{spread_text}")
    lines += [
        "- **Relative imbalance** of a unit: |in-cost - out-cost| / max(in-cost, out-cost), its incoming and "
        "outgoing parameters' cost for the run's cost; **max relative imbalance**: the largest over the units "
        "balancing scales (0: balanced).",
        "- **L-infinity range imbalance**: the same with each unit's largest incoming and largest outgoing |weight| "
        "(biases left out) in place of the costs: 0 when every unit's two ranges are equal, near 1 when some unit's "
        "are far apart. It matters on chips because a layer (or channel) shares one weight scale, set by its "
        "largest weight: where ranges differ widely, the small weights get few levels or none.",
        "- **λ (lambda)**: the factor by which balancing multiplies a unit's incoming parameters (and divides its "
        "outgoing ones); the float function is unchanged."]
    if "spiking" in r:
        lines.append(
            "- **Rate ratio**: a hidden unit's spike rate after balancing / (λ x its rate before), 1 when the spiking "
            "network computes what balancing predicts; taken over the hidden units with at least 100 spikes in the "
            "window before (**units**), with its mean, standard deviation and **worst** (the largest |ratio - 1|).")
    if "hardware" in r:
        bounds = ", ".join(f"{v:g} ({'reset ' + k if k != 'analog' else k})" for k, v in FORWARD_SIMULATE_BOUND.items())
        lines.append(
            f"- **Static estimate**: a spiking chip's accuracy here is its steady-state rate model (each unit sees "
            f"its mean input). Its **gap** to the step-by-step simulation of the chip is rms(static - stepped) / "
            f"rms(float output), measured on the first {CHECK_SAMPLES} test images; the stated **bound** is {bounds}, "
            f"and a sample's gap counts as beyond it above {CALIBRATION_MARGIN:g} of it (the whole set's gap can be "
            f"larger than a sample's). Where the gap is beyond the bound the static number is not the chip's: the "
            f"stepped simulation's numbers hold there.")
    return lines + [""]


def _seed_spread(ev: Evaluation) -> float:
    cells: dict[tuple, list[float]] = {}
    for rec in ev.records:
        if rec["accuracy"] is not None:
            cells.setdefault((rec["profile"], rec["bits"], rec["variant"]), []).append(rec["accuracy"])
    return max((max(v) - min(v) for v in cells.values()), default=0.0)


def _stages(r: dict[str, Any]) -> list[str]:
    lines = ["| stage | ran | why not |", "|---|---|---|"]
    for name, st in r["stages"].items():
        lines.append(f"| {STAGE_TITLES.get(name, name)} | {'yes' if st['applied'] else 'no'} | "
                     f"{'' if st['applied'] else st['reason'].replace('|', '/')} |")
    return lines


def _agents(a: dict[str, Any]) -> list[str]:
    state = "converged" if a["converged"] else "NOT converged"
    return [
        "## Neurons as balancing agents (Brian2)", "",
        f"Every hidden unit balanced itself on its own Poisson clock ({a['rate_hz']:.0f} Hz), reading only its own "
        f"synapses; neighbours that asked in the same step settled it between themselves by random priority (the "
        f"loser retries), so no two units sharing a parameter balanced at once.", "",
        "| quantity | before | after | global solver |", "|---|---|---|---|",
        f"| max relative imbalance ({state} to {a['tol']:g}) | {a['imbalance_before']:.3g} | "
        f"{a['imbalance_after']:.3g} | {a.get('global_imbalance', float('nan')):.3g} |",
        f"| total cost | {a['cost_before']:.6g} | {a['cost_after']:.6g} | {a['global_cost']:.6g} |", "",
        "| quantity | value |", "|---|---|",
        f"| balance events | {a['events']} |",
        f"| balance events per unit | {a['events_per_unit']:.1f} |",
        f"| simulated time (ms) | {1e3 * a['simulated_s']:.0f} |",
        f"| wall time (s) | {a['wall_s']:.1f} |",
        f"| agents vs global solver: max relative weight difference | {a['max_relative_weight_difference']:.2e} |",
        f"| agents vs global solver: max log-scale difference | {a['max_log_scale_difference']:.2e} |",
        f"| network function change (relative, random inputs) | {a['function_relative_change']:.2e} |", "",
        "![agents](agents_convergence.png)", "", "![histogram](balance_histogram.png)", ""]


def _spiking(s: dict[str, Any], source: str) -> list[str]:
    neuron = s.get("neuron", "Non-leaky integrate-and-fire units (reset by subtraction)")
    return [
        "## Spiking network: rate equivalence", "",
        f"{neuron[0].upper() + neuron[1:]} driven by {source}, "
        + ("given as the input population's output at every step; " if "spike_changes" in s else
           f"at {s['input_rate_hz']:.0f} Hz of input spikes per unit of activity; ")
        + f"{s['window_s']:g} s measurement windows before and after {1e3 * s['balance_s']:.0f} ms "
        f"of balancing, which ran while the network kept spiking.", "",
        "| quantity | value |", "|---|---|",
        f"| output change after balancing (relative to the largest output) | {s['output_change']:.3g} |",
        *([f"| spikes that differ from the same run without agents | {s['spike_changes']} |"]
          if "spike_changes" in s else
          [f"| its spike-count quantisation bound | {s['output_bound']:.3g} |",
           f"| spiking vs float output, before balancing | {s['snn_vs_ann_before']:.3g} |",
           f"| spiking vs float output, after balancing | {s['snn_vs_ann_after']:.3g} |"]),
        *([f"| rate ratio: mean | {s['rate_ratio_mean']:.4f} |",
           f"| rate ratio: standard deviation | {s['rate_ratio_std']:.4f} |",
           f"| rate ratio: worst (largest \\|ratio - 1\\|) | {s['rate_ratio_worst']:.3g} |"] if s['active_units'] else
          ["| rate ratio | not measured: no hidden unit fired 100 spikes in a window |"]),
        f"| rate ratio: units (hidden, >= 100 spikes before) | {s['active_units']} |",
        f"| max relative imbalance after balancing while spiking | {s['imbalance_after']:.3g} |", "",
        "![raster](spiking_raster.png)", ""]


def _static(ev: Evaluation, title: str) -> list[str]:
    """Where the static estimate is beyond its bound (`Evaluation.untrusted_static`), cell by cell."""
    checked = [rec for rec in ev.records if rec.get("static_trusted") is not None]
    if not checked:
        return []
    bad = ev.untrusted_static
    lines = [f"**Static estimate, {title}**: {len(checked) - len(bad)} of {len(checked)} spiking cells are within "
             f"the bound."]
    if not bad:
        return lines + [""]
    lines[0] += (f" In {len(bad)} the gap is beyond it (marked † above): the static accuracy there is not the chip's, "
                 f"and the stepped simulation's numbers hold there (`hardware.evaluate(..., stepped=True)` measures "
                 f"them; the main job does not: a stepped cell costs 20 to 40 times a static one). The opening "
                 f"sentences use none of these cells.")
    stepped = any(rec.get("stepped_accuracy") is not None for rec in bad)
    lines += ["", "| profile | width | variant | seed | gap |" + (" stepped accuracy |" if stepped else ""),
              "|---|---|---|---|---|" + ("---|" if stepped else "")]
    for rec in bad:
        row = (f"| {rec['profile']} | {_width(ev, rec['profile'], rec['bits'])} | {rec['variant']} | {rec['seed']} | "
               f"{rec['static_gap']:.3g} |")
        if stepped:
            row += " - |" if rec.get("stepped_accuracy") is None else f" {rec['stepped_accuracy']:.3f} |"
        lines.append(row)
    return lines + [""]


def _rescaled_table(plain: Evaluation, rescaled: Evaluation) -> list[str]:
    lines = ["| profile | width | trained net, quantised | badly scaled copy, quantised | badly scaled copy, "
             "balanced first |", "|---|---|---|---|---|"]
    for prof in rescaled.profiles:
        for b in rescaled.bits:
            cells = [(plain, "quantized"), (rescaled, "quantized"), (rescaled, "balanced")]
            if any(ev.mean(prof, b, v) is not None for ev, v in cells):
                lines.append(f"| {prof} | {_width(rescaled, prof, b)} | "
                             + " | ".join(_value(ev, prof, b, v) for ev, v in cells) + " |")
    return lines + [""]


def _value(ev: Evaluation, prof: str, bits: int | None, variant: str) -> str:
    """A mean accuracy as the tables print it: ``n/a`` where the chip lacks the width, † where the static
    estimate is beyond its bound."""
    mean = ev.mean(prof, bits, variant)
    if mean is None:
        return "n/a"
    return f"{mean:.3f}" + (" †" if _untrusted(ev, prof, bits, variant) else "")


def _copy_imbalance(plain: Evaluation, rescaled: Evaluation) -> str:
    copy, trained = (e.balance.get("float", {}).get("imbalance") for e in (rescaled, plain))
    if copy is None or trained is None:
        return ""
    return (f" The copy's L-infinity range imbalance is {copy:.3f} (the trained network's {trained:.3f}): a chip's "
            f"shared scale, set by the largest weight of a layer, leaves the copy's small weights few levels or none.")


def _hardware(r: dict[str, Any]) -> list[str]:
    ev = _evaluation(r["hardware"])
    lines = ["## Quantised accuracy on neuromorphic chips", "", ev.table(), "", table_key(ev.variants), ""]
    for name, why in r.get("hardware_skipped", {}).items():
        lines.append(f"- {name}: not run: {why}")
    lines += ["", *_static(ev, "the trained network"), "![accuracy](accuracy_vs_bits.png)", ""]
    if "hardware_rescaled" not in r:
        return lines
    rescaled = _evaluation(r["hardware_rescaled"])
    agree = balanced_agreement(r["hardware"], r["hardware_rescaled"])
    lines += [
        "### The same function from a badly scaled copy", "",
        f"The network after a function-preserving random rescaling of its hidden units (each unit's λ log-normal, "
        f"sigma {r['hardware_rescaled']['sigma']:g}): the float function is identical, its quantisation is not. "
        f"Balancing maps every rescaled copy back to the one balanced state, so the last column does not depend on "
        f"the copy.{_copy_imbalance(ev, rescaled)}", "", *_rescaled_table(ev, rescaled),
        *_static(rescaled, "the badly scaled copy")]
    text = (f"The balanced accuracies of the two evaluations agree in {agree['equal']} of {agree['cells']} cells "
            f"(profile x width x seed).")
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
    """The report as Markdown: what was found, how to read it, what ran (and why a stage did not), then one
    section per stage that ran."""
    found = findings(r)
    lines = [f"# neuro-balance run: {Path(r['model']).name}", ""]
    if found:
        lines += ["## What was found", "", " ".join(found), ""]
    lines += [f"{r['network']}; cost {r['cost']}; seed {r['seed']}; Brian2 target {r['target']}"
              f"{'; quick' if r['quick'] else ''}; wall time {r['wall_s']:.1f} s.", ""] + _stages(r) + [""]
    lines += _reading(r)
    if "agents" in r:
        lines += _agents(r["agents"])
    if "spiking" in r:
        lines += _spiking(r["spiking"], r["spiking_input"])
    if "hardware" in r:
        lines += _hardware(r)
    return "\n".join(lines)
