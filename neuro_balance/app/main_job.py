"""The main job (``neuro-balance run``): the whole story on one model, with a report and figures.

1. load the model (the bundled digits MLP by default; trained if it is missing);
2. run neurons as balancing agents in Brian2 until every unit is balanced, and compare with the global solution;
3. run the network as spiking integrate-and-fire neurons, balance while it spikes, and compare rates;
4. quantise on every hardware profile with and without balancing, also from a badly scaled copy;
5. write ``report.md``, ``report.json`` and figures into the output folder.

A stage that cannot apply to the model (no homogeneous unit to balance, units that do not spike, a
recurrent network on a feedforward emulator, inputs that are not 8x8 digits, ...) is recorded in the
report with its reason and the others run. The output folder is checked and locked before the first stage and
appears, whole, only once every stage has run (`neuro_balance.app.results_folder`).
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..balancing.costs import Cost, Lp
from ..balancing.metrics import imbalance
from ..balancing.scaling import scale
from ..grid import connect
from ..learn import datasets
from ..model.files import atomic_write_text, load_model, save_model
from ..model.network import Network
from ..resources import resource_dir
from ..seeding import check_random_state
from .progress import Progress
from .report import markdown_report
from .results_folder import results_folder
from .stages import JobSettings, NotApplicable, agents_stage, digits_for, hardware_stage, spiking_stage

__all__ = ["default_model_path", "run_main_job"]

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


def run_main_job(out: str | Path, *, model: str | Path | None = None, quick: bool = False,
                 profiles: Sequence[str] | None = None, seed: int = 0, target: str = "numpy",
                 cost: Cost | None = None, progress: Progress | None = None, scheduler: Any = None,
                 workers: int | None = None, replace: bool = False, invariance: str = "exact") -> dict[str, Any]:
    """Run the main job and write its report and figures into ``out``.

    Parameters
    ----------
    out : path-like
        Output folder: new or empty (or anything, with ``replace``). Files are drawn in a hidden folder beside
        it that is renamed to ``out`` once everything has run: a failure or a signal leaves ``out`` as it was.
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
    scheduler, workers
        Where the chip stages' grid cells run: this process (None), a local Dask cluster
        (``"processes"`` / ``"threads"`` with ``workers``) or a scheduler address (`neuro_balance.grid`).
    replace : bool
        Replace an existing, non-empty ``out`` whole (refused otherwise, before any work).
    invariance : {"exact", "rate"}
        How a NIR model's spiking units are balanced (`neuro_balance.balancing.spiking`): ``exact`` by their gauge,
        which Brian2 has nothing to simulate for (the agents and spiking stages say so); ``rate`` by the rate
        exchange of IF units, which the agents apply to their rate model.

    Returns
    -------
    dict
        The report (also written as ``report.json``); ``report["stages"]`` says which stages ran and,
        for those that did not apply, why.

    Raises
    ------
    NotADirectoryError, FileExistsError
        Before any work: ``out`` is a file, holds files (without ``replace``), or another run writes it.
    """
    with results_folder(out, replace) as staging:
        return _run(staging, model=model, quick=quick, profiles=profiles, seed=seed, target=target, cost=cost,
                    progress=progress or Progress(), scheduler=scheduler, workers=workers, invariance=invariance)


def _run(staging: Path, *, model, quick, profiles, seed, target, cost, progress, scheduler,
         workers, invariance) -> dict[str, Any]:
    """The stages of `run_main_job`, writing into the (empty) folder ``staging``."""
    from .. import hardware

    settings = JobSettings.quick() if quick else JobSettings()
    cost = cost or Lp(2)
    started = time.perf_counter()
    net, model_path, trained = _load_or_train(model, progress)
    data = datasets.digits(seed=seed)
    report: dict[str, Any] = {"format": "neuro_balance.report/2", "model": model_path, "network": repr(net),
                              "cost": repr(cost), "quick": quick, "seed": seed, "target": target, "invariance": invariance,
                              "python": platform.python_version(), "stages": {}}
    progress.log(f"model {model_path}: {net!r}; max relative imbalance "
                 f"{imbalance(net, cost, invariance=invariance).max_relative:.3g}")
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

    agents = attempt("agents", agents_stage, net, cost, settings, target, seed, progress, invariance)
    if agents is not None:
        report["agents"] = agents["report"]
    try:
        digits: tuple | None = digits_for(net, data)
        x, input_text = digits[1][0], f"the test digit 0 (label {data.y_test[0]})"
    except NotApplicable as why:
        digits, data_reason = None, str(why)
        x = check_random_state(seed).uniform(0.0, 1.0, net.input.n_features)
        input_text = f"a random input, uniform in [0, 1) (seed {seed}; the digits do not fit: {data_reason})"
    if not net.recurrent:
        report["spiking_input"] = input_text
    spiking = attempt("spiking", spiking_stage, net, cost, x, settings, target, seed, progress, invariance)
    if spiking is not None:
        report["spiking"] = spiking["report"]

    def chips(*args):
        if digits is None:
            raise NotApplicable(data_reason)
        return hardware_stage(net, digits, *args, scheduler=client)

    def rescaled_chips(names):
        if "hardware" not in results:
            raise NotApplicable(report["stages"]["hardware"]["reason"])
        if not any(pop.balanced for pop in net.populations.values()):
            raise NotApplicable("no population can be rescaled without changing the function")
        # The same function, represented by a badly scaled member of its orbit (as conversions and training runs
        # can leave a network): quantisation depends on the representative, the balanced state does not.
        rng = check_random_state(seed)
        copy = scale(net, {n: rng.normal(0.0, settings.rescale_sigma, p.size)
                           for n, p in net.populations.items() if p.balanced})
        return hardware_stage(copy, digits, names, settings, cost, progress, "hardware, rescaled",
                              ("quantized", "balanced"), scheduler=client)

    names = list(profiles) if profiles is not None else hardware.list_profiles()
    progress.log("hardware: quantised accuracy on every profile, unbalanced vs balanced ...")
    with connect(scheduler, workers) as client:  # one cluster for both chip stages
        if attempt("hardware", chips, names, settings, cost, progress, "hardware profiles") is not None:
            evaluation, skipped = results["hardware"]
            report["hardware"] = evaluation.to_dict()
            report["hardware_table"] = evaluation.table()
            report["hardware_skipped"] = skipped
            report["test_images"] = int(len(digits[2]))
            names = evaluation.profiles
        rescaled_ran = attempt("hardware_rescaled", rescaled_chips, names) is not None
    if rescaled_ran:
        rescaled, _ = results["hardware_rescaled"]
        report["hardware_rescaled"] = {"sigma": settings.rescale_sigma, **rescaled.to_dict()}
        report["hardware_rescaled_table"] = rescaled.table()

    if trained is not None:
        save_model(net, staging / "digits_mlp.yaml", comment=trained)
    report["figures"] = _figures(staging, results, settings)
    report["wall_s"] = time.perf_counter() - started
    atomic_write_text(staging / "report.json", json.dumps(report, indent=1, default=_json_default))
    atomic_write_text(staging / "report.md", markdown_report(report))
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
            out / "spiking_raster.png", window=(balancing[0] - 0.01, balancing[0] + 0.015),
            phases={"measure before": before, "balance while spiking": balancing, "measure after": after},
            outputs={"before": run.before.output, "after": run.after.output}, output_name=run.network.output.name,
            rates=plots.rate_pairs(run), sizes={n: p.size for n, p in run.network.populations.items()},
            gauge=bool(run.gauged) and set(run.gauged) == set(run.log_scales))
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
