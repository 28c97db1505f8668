"""The main job (``neuro-balance run``): the whole story on one model, with a report and figures.

1. load the bundled digits model (or train it if it is missing);
2. run neurons as balancing agents in Brian2 until every unit is balanced;
3. compare the agents' weights with the global solution and check the function is unchanged;
4. run the network as spiking integrate-and-fire neurons, balance while it spikes, and compare
   output and hidden rates before and after (rates must scale by each unit's factor);
5. quantise on every hardware profile with and without balancing;
6. write ``report.md``, ``report.json`` and figures into the output folder.
"""
from __future__ import annotations

import json
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..learn import datasets
from ..balancing.costs import Cost, Lp
from ..balancing.balance import balance
from ..model.files import atomic_write_text, load_model, save_model
from ..balancing.metrics import imbalance
from ..balancing.scaling import scale
from ..model.network import Network
from ..resources import resource_dir
from ..seeding import check_random_state

__all__ = ["JobSettings", "default_model_path", "run_main_job"]


@dataclass(frozen=True)
class JobSettings:
    """Sizes of the main job; `JobSettings.quick` is the reduced variant."""

    agent_rate: float = 1000.0         # balance events per unit per second (Hz)
    agent_duration: float = 0.06       # simulated seconds of balancing (~60 events per unit)
    agent_tol: float = 1e-10           # the agents have converged at this max relative imbalance
    spike_window: float = 2.0          # each spiking measurement window (s): quantisation error ~ 1 / window
    spike_balance_time: float = 0.06   # balancing while spiking (s)
    input_rate: float = 2000.0         # Hz coding an activity of 1 in the spiking network
    bits: tuple = (None, 2, 3, 4, 6, 8)
    seeds: tuple = (0, 1)
    rescale_sigma: float = 1.0         # log-normal spread of the function-preserving rescaling of the chip test

    @classmethod
    def quick(cls) -> "JobSettings":
        return cls(agent_duration=0.04, agent_tol=1e-8, spike_window=0.5, spike_balance_time=0.04,
                   bits=(None, 3, 4, 8), seeds=(0,))


def default_model_path() -> Path:
    """``models/digits_mlp.yaml``, bundled with the package (`neuro_balance.resources.resource_dir`)."""
    return resource_dir("models") / "digits_mlp.yaml"


def _stage(fn, show: bool, desc: str, *args, **kwargs):
    """Call ``fn(*args, progress=..., **kwargs)`` with a progress bar fed by Brian2's run reports."""
    from tqdm.auto import tqdm

    with tqdm(total=100, desc=desc, disable=not show, leave=False, dynamic_ncols=True,
              bar_format="{l_bar}{bar}| {elapsed}") as bar:
        def report(elapsed, completed, start, duration):
            bar.update(int(100 * float(completed)) - bar.n)

        return fn(*args, progress=report, **kwargs)


def _load_or_train(model: str | Path | None, out: Path, log) -> tuple[Network, str]:
    path = Path(model) if model is not None else default_model_path()
    if path.exists() or model is not None:
        return load_model(path), str(path)
    from ..learn.digits_models import train_digits_model

    log("bundled model not found: training it on digits (about 10 s)")
    net, accuracy = train_digits_model()
    trained = out / "digits_mlp.yaml"
    save_model(net, trained, comment=f"trained by neuro-balance run; test accuracy {accuracy:.4f}")
    return net, str(trained)


def run_main_job(out: str | Path, *, model: str | Path | None = None, quick: bool = False,
                 profiles: Sequence[str] | None = None, seed: int = 0, target: str = "numpy",
                 cost: Cost | None = None, show_progress: bool = True, log=print) -> dict[str, Any]:
    """Run the main job and write its report and figures into ``out``.

    Parameters
    ----------
    out : path-like
        Output folder (created).
    model : path-like, optional
        A model YAML file (default: the bundled ``models/digits_mlp.yaml``).
    quick : bool
        Reduced sizes (`JobSettings.quick`).
    profiles : sequence of str, optional
        Hardware profiles to evaluate (default: all bundled ones).
    seed : int
    target : {"numpy", "cython", "cpp_standalone"}
        Brian2 target of the agents.
    cost : Cost, optional
        Default ``Lp(2)``.
    show_progress : bool
        Progress bars on stderr.
    log : callable
        Receives one line per stage.

    Returns
    -------
    dict
        The report (also written as ``report.json``).
    """
    from .. import hardware
    from . import plots
    from ..sim.agents import run_agents  # imports Brian2

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = JobSettings.quick() if quick else JobSettings()
    cost = cost or Lp(2)
    started = time.perf_counter()
    net, model_path = _load_or_train(model, out, log)
    if net.recurrent or net.input.n_features != 64:
        raise ValueError(f"{model_path}: the main job runs feedforward models of the 8x8 digits (64 inputs)")
    data = datasets.digits(seed=seed)
    report: dict[str, Any] = {"format": "neuro_balance.report/1", "model": model_path, "network": repr(net),
                              "cost": repr(cost), "quick": quick, "seed": seed, "target": target,
                              "python": platform.python_version()}
    before = imbalance(net, cost)
    log(f"model {model_path}: {net!r}; max relative imbalance {before.max_relative:.3g}")

    log("agents: every hidden unit balances itself on its own Poisson clock in Brian2 ...")
    agents = _stage(run_agents, show_progress, "agents balancing", net, cost, target=target,
                    rate=settings.agent_rate, duration=settings.agent_duration, seed=seed)
    after = imbalance(agents.network, cost)
    reference = balance(net, cost, tol=1e-12)
    n_agents = sum(net.populations[n].size for n in reference.log_scales)
    u_diff = max(float(np.max(np.abs(agents.log_scales[n] - reference.log_scales[n]))) for n in reference.log_scales)
    report["agents"] = {"events": len(agents.events), "events_per_unit": len(agents.events) / max(n_agents, 1),
                        "simulated_s": settings.agent_duration, "wall_s": agents.wall_time,
                        "rate_hz": settings.agent_rate, "tol": settings.agent_tol,
                        "converged": bool(after.max_relative <= settings.agent_tol),
                        "imbalance_before": before.max_relative, "imbalance_after": after.max_relative,
                        "cost_before": before.total_cost, "cost_after": after.total_cost}
    report["agreement"] = {"global_cost": reference.cost_after, "global_imbalance": reference.imbalance,
                           "max_relative_weight_difference": agents.global_difference,
                           "max_log_scale_difference": u_diff, "function_relative_change": agents.function_change}
    log(f"  {len(agents.events)} events in {settings.agent_duration * 1e3:.0f} ms simulated ({agents.wall_time:.1f} s "
        f"wall): imbalance {before.max_relative:.3g} -> {after.max_relative:.3g}; agents vs global solver: "
        f"weights differ by {agents.global_difference:.2e}")

    digit = data.X_test[0]
    log(f"spiking: a test digit (label {data.y_test[0]}) for {settings.spike_window:g} s, balancing while spiking "
        f"for {settings.spike_balance_time:g} s, the same digit again ...")
    spikes = _stage(run_agents, show_progress, "balancing while spiking", net, cost, digit,
                    target=target, rate=settings.agent_rate, duration=settings.spike_balance_time,
                    window=settings.spike_window, input_rate=settings.input_rate, seed=seed, record_spikes=True)
    ratios = np.concatenate(list(spikes.rate_ratios(min_count=100).values()))
    largest = float(np.max(np.abs(spikes.before.output)))
    report["spiking"] = {
        "label": int(data.y_test[0]), "window_s": settings.spike_window, "input_rate_hz": settings.input_rate,
        "output_change": spikes.output_difference / largest,
        "output_bound": float(np.max(spikes.bound.output)) / largest,
        "snn_vs_ann_before": float(np.max(np.abs(spikes.before.output - net.forward(digit[None])[0]))) / largest,
        "snn_vs_ann_after": float(np.max(np.abs(spikes.after.output - spikes.network.forward(digit[None])[0]))) / largest,
        "rate_ratio_mean": float(ratios.mean()), "rate_ratio_std": float(ratios.std()),
        "rate_ratio_worst": float(np.max(np.abs(ratios - 1))), "active_units": int(ratios.size),
        "imbalance_after": spikes.imbalance_after, "wall_s": spikes.wall_time, "warnings": spikes.warnings}
    log(f"  output change {report['spiking']['output_change']:.3g} of the largest output (quantisation bound "
        f"{report['spiking']['output_bound']:.3g}); hidden rate / (lambda x rate before) = "
        f"{ratios.mean():.4f} +- {ratios.std():.4f} over {ratios.size} units with >= 100 spikes")

    log("hardware: quantised accuracy on every profile, unbalanced vs balanced ...")
    from tqdm.auto import tqdm

    names = list(profiles) if profiles is not None else hardware.list_profiles()
    with warnings.catch_warnings(), tqdm(total=len(names), desc="hardware profiles", disable=not show_progress,
                                         leave=False, dynamic_ncols=True) as bar:
        warnings.simplefilter("ignore", hardware.UnverifiedProfileWarning)
        evaluation = hardware.evaluate(net, data.X_test, data.y_test, calibration=data.X_train, profiles=names,
                                       bits=settings.bits, seeds=settings.seeds, cost=cost,
                                       progress=lambda message: bar.update(1))
    report["hardware"] = evaluation.to_dict()
    report["hardware_table"] = evaluation.table()
    # The same function, represented by a badly scaled member of its orbit (as conversions and training runs
    # can leave a network): quantisation depends on the representative, the balanced state does not.
    rng = check_random_state(seed)
    rescaled = scale(net, {name: rng.normal(0.0, settings.rescale_sigma, pop.size)
                           for name, pop in net.populations.items() if pop.balanced})
    with warnings.catch_warnings(), tqdm(total=len(names), desc="hardware, rescaled", disable=not show_progress,
                                         leave=False, dynamic_ncols=True) as bar:
        warnings.simplefilter("ignore", hardware.UnverifiedProfileWarning)
        rescaled_evaluation = hardware.evaluate(rescaled, data.X_test, data.y_test, calibration=data.X_train,
                                                profiles=names, bits=settings.bits, seeds=settings.seeds, cost=cost,
                                                variants=("quantized", "balanced"),
                                                progress=lambda message: bar.update(1))
    report["hardware_rescaled"] = {"sigma": settings.rescale_sigma, **rescaled_evaluation.to_dict()}
    report["hardware_rescaled_table"] = rescaled_evaluation.table()

    before_phase = (0.1, 0.1 + settings.spike_window)
    balancing_phase = (before_phase[1], before_phase[1] + settings.spike_balance_time)
    after_phase = (balancing_phase[1] + 0.1, balancing_phase[1] + 0.1 + settings.spike_window)
    figures = {
        "agents_convergence": plots.plot_agent_convergence(
            agents.history["t"], {"all populations": agents.history["imbalance"]}, agents.events.t,
            out / "agents_convergence.png"),
        "balance_histogram": plots.plot_balance_histogram(
            np.concatenate([before.relative[n][before.balanced[n]] for n in before.relative]),
            np.concatenate([after.relative[n][after.balanced[n]] for n in after.relative]),
            np.exp(np.concatenate(list(agents.log_scales.values()))), out / "balance_histogram.png"),
        "spiking_raster": plots.plot_spiking_raster(
            spikes.spikes, {name: (spikes.events.t[spikes.events.population == name],
                                   spikes.events.index[spikes.events.population == name])
                            for name in spikes.events.order}, out / "spiking_raster.png",
            window=(balancing_phase[0] - 0.05, balancing_phase[1] + 0.05),
            phases={"measure before": before_phase, "balance while spiking": balancing_phase,
                    "measure after": after_phase}),
    }
    figures["accuracy_vs_bits"] = evaluation.save(out, stem="accuracy_vs_bits")[1]
    report["figures"] = {k: str(Path(v).name) for k, v in figures.items()}
    report["wall_s"] = time.perf_counter() - started
    atomic_write_text(out / "report.json", json.dumps(report, indent=1, default=_json_default))
    atomic_write_text(out / "report.md", markdown_report(report))
    log(f"done in {report['wall_s']:.0f} s: {out / 'report.md'}")
    return report


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def markdown_report(r: dict[str, Any]) -> str:
    """The report as Markdown."""
    a, g, s = r["agents"], r["agreement"], r["spiking"]
    lines = [
        f"# neuro-balance run: {Path(r['model']).name}", "",
        f"{r['network']}; cost {r['cost']}; seed {r['seed']}; Brian2 target {r['target']}"
        f"{'; quick' if r['quick'] else ''}; wall time {r['wall_s']:.1f} s.", "",
        "## Neurons as balancing agents (Brian2)", "",
        f"Every hidden unit balanced itself on its own Poisson clock ({a['rate_hz']:.0f} Hz, colour-gated so "
        f"neighbours never balance in the same step), reading only its own synapses.", "",
        "| | value |", "|---|---|",
        f"| balance events | {a['events']} ({a['events_per_unit']:.1f} per unit) |",
        f"| simulated time | {1e3 * a['simulated_s']:.0f} ms ({a['wall_s']:.1f} s wall) |",
        f"| max relative imbalance | {a['imbalance_before']:.3g} -> {a['imbalance_after']:.3g} "
        f"({'converged' if a['converged'] else 'NOT converged'} to {a['tol']:g}) |",
        f"| total cost | {a['cost_before']:.6g} -> {a['cost_after']:.6g} (global optimum {g['global_cost']:.6g}) |",
        f"| agents vs global solver: max relative weight difference | {g['max_relative_weight_difference']:.2e} |",
        f"| agents vs global solver: max log-scale difference | {g['max_log_scale_difference']:.2e} |",
        f"| network function change (relative, test set) | {g['function_relative_change']:.2e} |", "",
        "![agents](agents_convergence.png)", "", "![histogram](balance_histogram.png)", "",
        "## Spiking network: rate equivalence", "",
        f"Non-leaky integrate-and-fire units (reset by subtraction) driven by a test digit (label {s['label']}) at "
        f"{s['input_rate_hz']:.0f} Hz per unit of activity; {s['window_s']:g} s measurement windows before and after "
        f"balancing, which ran while the network kept spiking.", "",
        "| | value |", "|---|---|",
        f"| output change after balancing (relative to max output) | {s['output_change']:.3g} "
        f"(spike-count quantisation bound {s['output_bound']:.3g}) |",
        f"| spiking vs float output before / after | {s['snn_vs_ann_before']:.3g} / {s['snn_vs_ann_after']:.3g} |",
        f"| hidden rate after / (lambda x rate before), units with >= 100 spikes | {s['rate_ratio_mean']:.4f} +- "
        f"{s['rate_ratio_std']:.4f} (worst {s['rate_ratio_worst']:.3g}, {s['active_units']} units) |",
        f"| max relative imbalance after balancing while spiking | {s['imbalance_after']:.3g} |", "",
        "![raster](spiking_raster.png)", "",
        "## Quantised accuracy on neuromorphic chips", "",
        r["hardware_table"], "", "![accuracy](accuracy_vs_bits.png)", "",
        f"The same network after a function-preserving random rescaling of its hidden units (log-normal, sigma "
        f"{r['hardware_rescaled']['sigma']:g}): the float function is identical, quantisation is not; balancing "
        f"maps every rescaled copy back to the one balanced state.", "",
        r["hardware_rescaled_table"], ""]
    return "\n".join(lines)
