"""The stages of the main job: each returns what it measured or raises `NotApplicable` with the reason.

Stages: the Brian2 agents (with the agreement with the global solver), balancing while the network spikes,
and quantised accuracy on hardware profiles. `JobSettings` holds their sizes.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..balancing.balance import balance
from ..balancing.costs import Cost
from ..balancing.graph import build_graph
from ..balancing.local import unit_colours
from ..balancing.metrics import imbalance
from ..balancing.spiking import rate_view, spiking_populations
from ..errors import GridError, ModelError, NotApplicable
from ..model.network import Network
from .progress import Progress

__all__ = ["JobSettings", "NotApplicable", "DT", "digits_for", "agents_stage", "spiking_stage", "hardware_stage",
           "compile_reporter"]

DT = 1e-4  # Brian2 time step of every simulation (s)


@dataclass(frozen=True)
class JobSettings:
    """Sizes of the main job; `JobSettings.quick` is the reduced variant."""

    agent_rate: float = 1000.0         # balance events per unit per second (Hz), lowered if colour gating needs
    agent_events: float = 150.0        # balance events per unit (an MLP reaches 1e-12 in ~40, a CNN in ~80-100)
    agent_tol: float = 1e-10           # the agents have converged at this max relative imbalance
    spike_window: float = 2.0          # each spiking measurement window (s): quantisation error ~ 1 / window
    spike_balance_time: float = 0.06   # balancing while spiking (s)
    input_rate: float = 2000.0         # Hz coding an activity of 1 in the spiking network
    bits: tuple = (None, 2, 3, 4, 6, 8)
    seeds: tuple = (0, 1)
    rescale_sigma: float = 1.0         # log-normal spread of the function-preserving rescaling of the chip test

    @classmethod
    def quick(cls) -> "JobSettings":
        return cls(agent_events=100.0, agent_tol=1e-8, spike_window=0.5, spike_balance_time=0.04,
                   bits=(None, 3, 4, 8), seeds=(0,))


def digits_for(net: Network, data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def brian2_view(net: Network, invariance: str) -> tuple[Network, str | None]:
    """The network the Brian2 stages run, and what its spiking neurons are, for a network with NIR neuron models.

    Without hidden spiking populations: ``net`` itself (None). Under ``invariance="exact"`` (the default): the
    graph itself, whose neuron models Brian2 steps as `run_steps` does and whose spiking units balance by their
    gauge (incoming weights and potentials x mu), which changes no spike. Under ``"rate"``: the rate model of its
    IF units (`rate_view`: thresholds gauged to 1, exact), run as non-leaky integrate-and-fire units with reset by
    subtraction; a LIF or CubaLIF unit has no rate exchange (`NotApplicable`).
    """
    hidden = [n for n in spiking_populations(net) if net.populations[n].role == "hidden"]
    if not hidden:
        return net, None
    models = ", ".join(f"{n} ({net.populations[n].neuron.model})" for n in hidden)
    if invariance != "rate":
        return net, (f"the model's own neuron models (hidden populations {models}), stepped as the NIR reference "
                     f"does, its spiking units balancing by their gauge (no spike may change),")
    try:
        view = rate_view(net)[0]
    except ModelError as err:
        raise NotApplicable(f"under --invariance rate: {err}") from None
    return view, (f"the model's IF units (populations {', '.join(hidden)}), run as non-leaky integrate-and-fire "
                  f"units with thresholds gauged to 1 and reset by subtraction,")


def agents_stage(net, cost, settings, target, seed, progress, invariance="exact") -> dict[str, Any]:
    from ..sim.agents import run_agents  # imports Brian2

    net, neuron = brian2_view(net, invariance)
    if not any(pop.balanced or (neuron and pop.role == "hidden" and pop.neuron is not None)
               for pop in net.populations.values()):
        raise NotApplicable("no hidden population has a homogeneous activation (ReLU, leaky ReLU, linear, ...), "
                            "so there is nothing to balance")
    rate = _agent_rate(net, cost, settings)
    duration = settings.agent_events / rate
    progress.log(f"agents: every hidden unit balances itself on its own Poisson clock in Brian2 ({target}), "
                 f"{rate:.0f} Hz for {duration * 1e3:.0f} ms simulated ...")
    with progress.stage("agents balancing", total=duration, unit="s") as stage:
        try:
            agents = run_agents(net, cost, target=target, rate=rate, duration=duration, dt=DT, seed=seed,
                                progress=stage.brian_report(duration),
                                compile_progress=compile_reporter(target, stage, progress), invariance=invariance)
        except ModelError as err:
            raise NotApplicable(str(err)) from None
    before, after = imbalance(net, cost), imbalance(agents.network, cost)
    reference = balance(net, cost, tol=1e-12, invariance=invariance)
    if neuron:
        reference.log_scales = {**reference.log_scales, **reference.extra.get("gauge", {})}
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


def compile_reporter(target: str, stage, progress: Progress):
    """With ``--target cython``: a `run_agents` ``compile_progress`` that says Brian2 is compiling (once per run,
    with how long it takes and where the cache is) and moves the stage's note with every code object compiled."""
    if target != "cython":
        return None
    from ..sim import cache_directory

    state = {"last_line": 0.0}

    def report(message: str, done: int, total: int) -> None:
        progress.once("cython", (
            f"cython: compiling this network's Brian2 code, first use only (measured for the digits MLP: about 1 "
            f"minute on an idle 2-core machine, over 10 minutes on a busy one); later runs reuse it. The compiled "
            f"code is cached in {cache_directory()}; delete that folder to clear it."))
        count = f"{done} of about {total}" if done < total else f"{done}"  # the total is the sim's estimate
        stage.set_note(f"compiling {count}")
        if progress.mode == "lines" and time.monotonic() - state["last_line"] >= 15:
            progress.log(f"  compiling: {count} code objects")
            state["last_line"] = time.monotonic()
    return report


def spiking_stage(net, cost, x, settings, target, seed, progress, invariance="exact") -> dict[str, Any]:
    from ..sim.agents import run_agents

    net, neuron = brian2_view(net, invariance)
    nir = any(pop.neuron is not None for pop in net.populations.values())
    if net.recurrent and not nir:
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
                                progress=stage.brian_report(total),
                                compile_progress=compile_reporter(target, stage, progress), invariance=invariance)
        except ModelError as err:
            raise NotApplicable(str(err)) from None
    ratios = np.concatenate([np.empty(0), *spikes.rate_ratios(min_count=100).values()])
    ratios = ratios[np.isfinite(ratios)]  # None below when no hidden unit fired 100 spikes: nothing to average
    largest = float(np.max(np.abs(spikes.before.output))) or 1.0
    report = {
        "window_s": settings.spike_window, "input_rate_hz": settings.input_rate,
        "balance_s": settings.spike_balance_time,
        "output_change": spikes.output_difference / largest,
        "output_bound": None if spikes.bound is None else float(np.max(spikes.bound.output)) / largest,
        **({"spike_changes": int(sum(spikes.spike_changes.values()))} if nir else {
            "snn_vs_ann_before": float(np.max(np.abs(spikes.before.output - net.forward(x[None])[0]))) / largest,
            "snn_vs_ann_after": float(np.max(np.abs(spikes.after.output - spikes.network.forward(x[None])[0])))
            / largest}),
        "rate_ratio_mean": float(np.mean(ratios)) if ratios.size else None,
        "rate_ratio_std": float(np.std(ratios)) if ratios.size else None,
        "rate_ratio_worst": float(np.max(np.abs(ratios - 1))) if ratios.size else None, "active_units": int(ratios.size),
        "imbalance_after": spikes.imbalance_after, "wall_s": spikes.wall_time, "warnings": spikes.warnings,
        **({"neuron": neuron} if neuron else {})}
    expected = "rate before" if nir else "lambda x rate before"  # the gauge keeps rates, the exchange scales them
    rates = (f"hidden rate / ({expected}) = {report['rate_ratio_mean']:.4f} +- {report['rate_ratio_std']:.4f} "
             f"over {ratios.size} units with >= 100 spikes" if ratios.size else
             "no hidden unit fired 100 spikes in a window, so no rate ratio is measured")
    change = (f"{report['spike_changes']} spikes differ from the same run without agents" if nir else
              f"output change {report['output_change']:.3g} of the largest output (quantisation bound "
              f"{report['output_bound']:.3g})")
    progress.log(f"  {change}; {rates}")
    return {"run": spikes, "report": report}


def hardware_stage(net, digits, names, settings, cost, progress, desc, variants=None, scheduler=None):
    """`hardware.evaluate` per profile; profiles the emulator cannot run this model on are listed with why.

    A profile whose cells fail (a `GridError`, or a `ModelError` before the grid starts) is left out and its
    reason kept; the stage does not apply when no profile can run the model. ``scheduler`` runs each profile's
    cells on Dask (`neuro_balance.grid.connect`), with the same records.
    """
    from .. import hardware

    X_train, X_test, y_test = digits
    parts, skipped = [], {}
    with warnings.catch_warnings(), progress.stage(desc, total=len(names), unit="profile") as stage:
        warnings.simplefilter("ignore", hardware.UnverifiedProfileWarning)
        for k, name in enumerate(names):
            try:
                parts.append(hardware.evaluate(net, X_test, y_test, calibration=X_train, profiles=[name],
                                               bits=settings.bits, seeds=settings.seeds, cost=cost,
                                               scheduler=scheduler,
                                               **({"variants": variants} if variants else {})))
            except ModelError as err:
                skipped[name] = str(err)
            except GridError as err:  # the emulator refused this model's cells on this chip
                skipped[name] = "; ".join(sorted({why.split(": ", 1)[-1] for _, why in err.result.failed}))
            stage.update(k + 1)
    if not parts:
        reasons = sorted(set(skipped.values()))
        raise NotApplicable("no profile can run this model: " + "; ".join(reasons))
    merged = hardware.Evaluation([r for p in parts for r in p.records], parts[0].float_accuracy, parts[0].balance,
                                 sum(p.seconds for p in parts))
    return merged, skipped
