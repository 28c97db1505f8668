"""The main job (``neuro-balance run``): the whole story on one model, with a report and figures.

1. load the model (the bundled digits MLP by default; trained if it is missing);
2. run neurons as balancing agents in Brian2 until every unit is balanced, and compare with the global solution;
3. run the network as spiking integrate-and-fire neurons, balance while it spikes, and compare rates;
4. quantise on every hardware profile with and without balancing, also from a badly scaled copy;
5. write ``report.md``, ``report.json`` and figures into the output folder.

A stage that cannot apply to the model (no homogeneous unit to balance, units that do not spike, a
recurrent network on a feedforward emulator, inputs that are not 8x8 digits, ...) is recorded in the
report with its reason and the others run. The output folder is created only once every stage has run.
"""
from __future__ import annotations

import json
import platform
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..balancing.balance import balance
from ..balancing.costs import Cost, Lp
from ..balancing.graph import build_graph
from ..balancing.local import unit_colours
from ..balancing.metrics import imbalance
from ..balancing.scaling import scale
from ..errors import ModelError
from ..learn import datasets
from ..model.files import atomic_write_text, load_model, save_model
from ..model.network import Network
from ..resources import resource_dir
from .progress import Progress
from .report import markdown_report

__all__ = ["JobSettings", "default_model_path", "run_main_job"]

DT = 1e-4  # Brian2 time step of every simulation (s)


@dataclass(frozen=True)
class JobSettings:
    """Sizes of the main job; `JobSettings.quick` is the reduced variant."""

    agent_rate: float = 1000.0         # balance events per unit per second (Hz), lowered if colour gating needs
    agent_events: float = 100.0        # balance events per unit (an MLP reaches 1e-12 in ~40, a CNN in ~80)
    agent_tol: float = 1e-10           # the agents have converged at this max relative imbalance
    spike_window: float = 2.0          # each spiking measurement window (s): quantisation error ~ 1 / window
    spike_balance_time: float = 0.06   # balancing while spiking (s)
    input_rate: float = 2000.0         # Hz coding an activity of 1 in the spiking network
    bits: tuple = (None, 2, 3, 4, 6, 8)
    seeds: tuple = (0, 1)
    rescale_sigma: float = 1.0         # log-normal spread of the function-preserving rescaling of the chip test

    @classmethod
    def quick(cls) -> "JobSettings":
        return cls(agent_events=60.0, agent_tol=1e-8, spike_window=0.5, spike_balance_time=0.04,
                   bits=(None, 3, 4, 8), seeds=(0,))


class NotApplicable(Exception):
    """A stage does not apply to this model (the message says why)."""


def default_model_path() -> Path:
    """``models/digits_mlp.yaml``, bundled with the package (`neuro_balance.resources.resource_dir`)."""
    return resource_dir("models") / "digits_mlp.yaml"


def _load_or_train(model: str | Path | None, progress: Progress) -> tuple[Network, str, str | None]:
    """The network, its path, and (when it had to be trained) the comment to save it with into the output."""
    path = Path(model) if model is not None else default_model_path()
    if path.exists() or model is not None:
        return load_model(path), str(path), None
    from ..learn.digits_models import train_digits_model

    progress.log(f"bundled model not found at {path}: training it on digits (about 10 s)")
    net, accuracy = train_digits_model()
    return net, "digits_mlp.yaml (trained by this run)", f"trained by neuro-balance run; test accuracy {accuracy:.4f}"


def _digits_for(net: Network, data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calibration, test inputs, test labels) of the digits in the layout ``net`` reads, or NotApplicable."""
    n_in, n_out = net.input.n_features, net.output.n_features
    if n_out != data.n_classes:
        raise NotApplicable(f"the model has {n_out} outputs; the digits data set has {data.n_classes} classes")
    if not net.recurrent and n_in == 64:
        return data.X_train, data.X_test, data.y_test
    if net.recurrent and n_in == 8:  # one 8-pixel row per time step
        rows = lambda X: X.reshape(-1, 8, 8).transpose(1, 0, 2)  # noqa: E731
        return rows(data.X_train), rows(data.X_test), data.y_test
    raise NotApplicable(f"the model reads {n_in} input features; the digits data set has 64 (8x8 images), or 8 "
                        f"per time step for a recurrent model")


def _agent_rate(net: Network, cost: Cost, settings: JobSettings) -> float:
    """The balance rate: the settings' rate, lowered so that every colour fits in one step (colour gating)."""
    colours = unit_colours(build_graph(net, cost))
    used = {int(c) for name, pop in net.populations.items() if pop.balanced for c in colours[name]}
    return min(settings.agent_rate, 1.0 / (max(len(used), 1) * DT))


def _agents_stage(net, cost, settings, target, seed, progress) -> dict[str, Any]:
    from ..sim.agents import run_agents  # imports Brian2

    if not any(pop.balanced for pop in net.populations.values()):
        raise NotApplicable("no hidden population has a homogeneous activation (ReLU, leaky ReLU, linear, ...), "
                            "so there is nothing to balance")
    rate = _agent_rate(net, cost, settings)
    duration = settings.agent_events / rate
    progress.log(f"agents: every hidden unit balances itself on its own Poisson clock in Brian2 ({target}), "
                 f"{rate:.0f} Hz for {duration * 1e3:.0f} ms simulated ...")
    with progress.stage("agents balancing", total=duration, unit="s") as stage, _compiling(target, stage, progress):
        try:
            agents = run_agents(net, cost, target=target, rate=rate, duration=duration, dt=DT, seed=seed,
                                progress=stage.brian_report(duration))
        except ModelError as err:
            raise NotApplicable(str(err)) from None
    before, after = imbalance(net, cost), imbalance(agents.network, cost)
    reference = balance(net, cost, tol=1e-12)
    n_agents = sum(net.populations[n].size for n in reference.log_scales)
    u_diff = max(float(np.max(np.abs(agents.log_scales[n] - reference.log_scales[n]))) for n in reference.log_scales)
    progress.log(f"  {len(agents.events)} events in {duration * 1e3:.0f} ms simulated ({agents.wall_time:.1f} s wall): "
                 f"imbalance {before.max_relative:.3g} -> {after.max_relative:.3g}; agents vs global solver: "
                 f"weights differ by {agents.global_difference:.2e}")
    return {"run": agents, "before": before, "after": after, "report": {
        "events": len(agents.events), "events_per_unit": len(agents.events) / max(n_agents, 1),
        "simulated_s": duration, "wall_s": agents.wall_time, "rate_hz": rate, "tol": settings.agent_tol,
        "converged": bool(after.max_relative <= settings.agent_tol),
        "imbalance_before": before.max_relative, "imbalance_after": after.max_relative,
        "cost_before": before.total_cost, "cost_after": after.total_cost, "global_cost": reference.cost_after,
        "global_imbalance": reference.imbalance, "max_relative_weight_difference": agents.global_difference,
        "max_log_scale_difference": u_diff, "function_relative_change": agents.function_change}}


def _compiling(target: str, stage, progress: Progress):
    """On a cold Cython cache: say that Brian2 compiles, how long it takes, where the cache is; count modules."""
    import contextlib

    if target != "cython":
        return contextlib.nullcontext()
    from brian2 import prefs
    from brian2.codegen.runtime.cython_rt.extension_manager import get_cython_cache_dir

    folder = Path(prefs.codegen.runtime.cython.cache_dir or get_cython_cache_dir())
    if folder.is_dir() and any(folder.glob("*.so")):
        return contextlib.nullcontext()
    progress.log(f"cython: first use compiles the Brian2 code, about 1 to 7 minutes depending on the machine's "
                 f"load (later runs reuse it). The compiled code is cached in {folder}; delete that folder to clear it.")
    return progress.watch_folder(stage, folder, "*.so", "compiling")


def _spiking_stage(net, cost, x, settings, target, seed, progress) -> dict[str, Any]:
    from ..sim.agents import run_agents

    if net.recurrent:
        raise NotApplicable("the network is recurrent; the spike-count quantisation bound the comparison is "
                            "checked against covers feedforward networks only")
    total = 0.2 + 2 * settings.spike_window + settings.spike_balance_time
    progress.log(f"spiking: the input for {settings.spike_window:g} s, balancing while spiking for "
                 f"{settings.spike_balance_time:g} s, the same input again ...")
    with progress.stage("balancing while spiking", total=total, unit="s") as stage:
        try:
            spikes = run_agents(net, cost, x, target=target, rate=_agent_rate(net, cost, settings),
                                duration=settings.spike_balance_time, window=settings.spike_window,
                                input_rate=settings.input_rate, dt=DT, seed=seed, record_spikes=True,
                                progress=stage.brian_report(total))
        except ModelError as err:
            raise NotApplicable(str(err)) from None
    ratios = np.concatenate(list(spikes.rate_ratios(min_count=100).values()) or [np.full(1, np.nan)])
    largest = float(np.max(np.abs(spikes.before.output))) or 1.0
    report = {
        "window_s": settings.spike_window, "input_rate_hz": settings.input_rate,
        "balance_s": settings.spike_balance_time,
        "output_change": spikes.output_difference / largest,
        "output_bound": float(np.max(spikes.bound.output)) / largest,
        "snn_vs_ann_before": float(np.max(np.abs(spikes.before.output - net.forward(x[None])[0]))) / largest,
        "snn_vs_ann_after": float(np.max(np.abs(spikes.after.output - spikes.network.forward(x[None])[0]))) / largest,
        "rate_ratio_mean": float(np.nanmean(ratios)), "rate_ratio_std": float(np.nanstd(ratios)),
        "rate_ratio_worst": float(np.nanmax(np.abs(ratios - 1))), "active_units": int(np.isfinite(ratios).sum()),
        "imbalance_after": spikes.imbalance_after, "wall_s": spikes.wall_time, "warnings": spikes.warnings}
    progress.log(f"  output change {report['output_change']:.3g} of the largest output (quantisation bound "
                 f"{report['output_bound']:.3g}); hidden rate / (lambda x rate before) = {report['rate_ratio_mean']:.4f}"
                 f" +- {report['rate_ratio_std']:.4f} over {report['active_units']} units with >= 100 spikes")
    return {"run": spikes, "report": report}


def _hardware_stage(net, digits, names, settings, cost, progress, desc, variants=None):
    """`hardware.evaluate` per profile; profiles the emulator cannot run this model on are listed with why."""
    from .. import hardware

    X_train, X_test, y_test = digits
    parts, skipped = [], {}
    with warnings.catch_warnings(), progress.stage(desc, total=len(names), unit="profile") as stage:
        warnings.simplefilter("ignore", hardware.UnverifiedProfileWarning)
        for k, name in enumerate(names):
            try:
                parts.append(hardware.evaluate(net, X_test, y_test, calibration=X_train, profiles=[name],
                                               bits=settings.bits, seeds=settings.seeds, cost=cost,
                                               **({"variants": variants} if variants else {})))
            except ModelError as err:
                skipped[name] = str(err)
            stage.update(k + 1)
    if not parts:
        reasons = sorted(set(skipped.values()))
        raise NotApplicable("no profile can run this model: " + "; ".join(reasons))
    merged = hardware.Evaluation([r for p in parts for r in p.records], parts[0].float_accuracy, parts[0].balance,
                                 sum(p.seconds for p in parts))
    return merged, skipped


def run_main_job(out: str | Path, *, model: str | Path | None = None, quick: bool = False,
                 profiles: Sequence[str] | None = None, seed: int = 0, target: str = "numpy",
                 cost: Cost | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Run the main job and write its report and figures into ``out``.

    Parameters
    ----------
    out : path-like
        Output folder. Files are drawn in a temporary folder and moved here once everything has run:
        a failure leaves neither files nor an empty folder.
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
    progress : Progress, optional
        Lines and bars (default: bars on a terminal, lines otherwise).

    Returns
    -------
    dict
        The report (also written as ``report.json``); ``report["stages"]`` says which stages ran and,
        for those that did not apply, why.
    """
    from .. import hardware

    out, progress = Path(out), progress or Progress()
    settings = JobSettings.quick() if quick else JobSettings()
    cost = cost or Lp(2)
    started = time.perf_counter()
    net, model_path, trained = _load_or_train(model, progress)
    data = datasets.digits(seed=seed)
    report: dict[str, Any] = {"format": "neuro_balance.report/2", "model": model_path, "network": repr(net),
                              "cost": repr(cost), "quick": quick, "seed": seed, "target": target,
                              "python": platform.python_version(), "stages": {}}
    progress.log(f"model {model_path}: {net!r}; max relative imbalance {imbalance(net, cost).max_relative:.3g}")
    results: dict[str, Any] = {}

    def attempt(name: str, fn, *args):
        t0 = time.perf_counter()
        try:
            results[name] = fn(*args)
        except NotApplicable as why:
            report["stages"][name] = {"applied": False, "reason": str(why)}
            progress.log(f"{name}: does not apply to this model: {why}")
            return None
        report["stages"][name] = {"applied": True, "wall_s": time.perf_counter() - t0}
        return results[name]

    agents = attempt("agents", _agents_stage, net, cost, settings, target, seed, progress)
    if agents is not None:
        report["agents"] = agents["report"]
    try:
        digits: tuple | None = _digits_for(net, data)
        x, input_text = digits[1][0], f"the test digit 0 (label {data.y_test[0]})"
    except NotApplicable as why:
        digits, data_reason = None, str(why)
        x = np.random.default_rng(seed).uniform(0.0, 1.0, net.input.n_features)
        input_text = f"a random input, uniform in [0, 1) (seed {seed}), since {data_reason}"
    if not net.recurrent:
        report["spiking_input"] = input_text
    spiking = attempt("spiking", _spiking_stage, net, cost, x, settings, target, seed, progress)
    if spiking is not None:
        report["spiking"] = spiking["report"]

    def chips(*args):
        if digits is None:
            raise NotApplicable(data_reason)
        return _hardware_stage(net, digits, *args)

    def rescaled_chips(names):
        if "hardware" not in results:
            raise NotApplicable(report["stages"]["hardware"]["reason"])
        if not any(pop.balanced for pop in net.populations.values()):
            raise NotApplicable("no population can be rescaled without changing the function")
        # The same function, represented by a badly scaled member of its orbit (as conversions and training runs
        # can leave a network): quantisation depends on the representative, the balanced state does not.
        rng = np.random.default_rng(seed)
        copy = scale(net, {n: rng.normal(0.0, settings.rescale_sigma, p.size)
                           for n, p in net.populations.items() if p.balanced})
        return _hardware_stage(copy, digits, names, settings, cost, progress, "hardware, rescaled",
                               ("quantized", "balanced"))

    names = list(profiles) if profiles is not None else hardware.list_profiles()
    progress.log("hardware: quantised accuracy on every profile, unbalanced vs balanced ...")
    if attempt("hardware", chips, names, settings, cost, progress, "hardware profiles") is not None:
        evaluation, skipped = results["hardware"]
        report["hardware"] = evaluation.to_dict()
        report["hardware_table"] = evaluation.table()
        report["hardware_skipped"] = skipped
        names = evaluation.profiles
    if attempt("hardware_rescaled", rescaled_chips, names) is not None:
        rescaled, _ = results["hardware_rescaled"]
        report["hardware_rescaled"] = {"sigma": settings.rescale_sigma, **rescaled.to_dict()}
        report["hardware_rescaled_table"] = rescaled.table()

    with tempfile.TemporaryDirectory(prefix="neuro_balance_run_") as staging:  # out appears only complete
        staging = Path(staging)
        if trained is not None:
            save_model(net, staging / "digits_mlp.yaml", comment=trained)
        report["figures"] = _figures(staging, results, settings)
        report["wall_s"] = time.perf_counter() - started
        atomic_write_text(staging / "report.json", json.dumps(report, indent=1, default=_json_default))
        atomic_write_text(staging / "report.md", markdown_report(report))
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(staging.iterdir()):
            shutil.move(str(path), str(out / path.name))
    return report


def _figures(out: Path, results: dict[str, Any], settings: JobSettings) -> dict[str, str]:
    """Draw the figures of the stages that ran; returns their file names."""
    from . import plots

    figures = {}
    if "agents" in results:
        run, before, after = results["agents"]["run"], results["agents"]["before"], results["agents"]["after"]
        figures["agents_convergence"] = plots.plot_agent_convergence(
            run.history["t"], {"all populations": run.history["imbalance"]}, run.events.t, out / "agents_convergence.png")
        figures["balance_histogram"] = plots.plot_balance_histogram(
            np.concatenate([before.relative[n][before.balanced[n]] for n in before.relative]),
            np.concatenate([after.relative[n][after.balanced[n]] for n in after.relative]),
            np.exp(np.concatenate(list(run.log_scales.values()))), out / "balance_histogram.png")
    if "spiking" in results:
        run = results["spiking"]["run"]
        before = (0.1, 0.1 + settings.spike_window)
        balancing = (before[1], before[1] + settings.spike_balance_time)
        after = (balancing[1] + 0.1, balancing[1] + 0.1 + settings.spike_window)
        figures["spiking_raster"] = plots.plot_spiking_raster(
            run.spikes, {name: (run.events.t[run.events.population == name],
                                run.events.index[run.events.population == name]) for name in run.events.order},
            out / "spiking_raster.png", window=(balancing[0] - 0.05, balancing[1] + 0.05),
            phases={"measure before": before, "balance while spiking": balancing, "measure after": after},
            outputs={"before": run.before.output, "after": run.after.output}, output_name=run.network.output.name)
    if "hardware" in results:
        evaluation = results["hardware"][0]
        evaluation.save(out, stem="accuracy_vs_bits", figure=False)
        rescaled = results.get("hardware_rescaled", (None,))[0]
        figures["accuracy_vs_bits"] = plots.plot_accuracy_vs_bits(evaluation, rescaled, out / "accuracy_vs_bits.png")
    return {k: Path(v).name for k, v in figures.items()}


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
