"""``neuro-balance simulate``: balance a model with Brian2 agents (optionally spiking) and write it."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ...errors import ModelError
from ...model.files import load_model, save_model
from ...model.regular_file import open_regular
from ...model.safe_npz import read_npy
from ...balancing.metrics import INVARIANCES, imbalance
from ...balancing.spiking import rate_view, with_neurons
from ...seeding import check_random_state
from ..clean_exit import tame_brian2
from ..progress import Progress
from .common import (COST_HELP, INVARIANCE_HELP, MODEL_HELP, check_output_spares_inputs, cost_argument, model_argument,
                     output_path, positive_float)

TARGETS = ("numpy", "cython", "cpp_standalone")  # neuro_balance.sim.TARGETS, without importing Brian2 here


def register(sub) -> None:
    parser = sub.add_parser(
        "simulate", help="balance a model with Brian2 agents (neurons as autonomous balancers)",
        description="Every hidden homogeneous unit of MODEL becomes a Brian2 agent that balances itself on a "
                    "Poisson clock, reading only its own synapses. With --spiking the units are integrate-and-"
                    "fire neurons that keep spiking while they balance; rates before and after are reported. "
                    "The network function is unchanged. A NIR file's units run their own neuron models (IF, LIF, "
                    "CubaLIF, LI, CubaLI, I), stepped as the NIR reference does, and its spiking units balance as "
                    "--invariance says: exact (default) by their gauge (incoming weights and potentials x mu), which "
                    "changes no spike; rate makes hidden IF units agents of their rate model (thresholds gauged to "
                    "1 first).")
    parser.add_argument("model", type=model_argument, help=MODEL_HELP)
    parser.add_argument("--cost", type=cost_argument, default="L2", help=COST_HELP)
    parser.add_argument("--invariance", choices=INVARIANCES, default="exact", help=INVARIANCE_HELP)
    parser.add_argument("--rate", type=positive_float, default=100.0, help="balance events per unit per second (Hz, default 100)")
    parser.add_argument("--duration", type=positive_float, default=0.5, help="simulated seconds of balancing (default 0.5)")
    parser.add_argument("--dt", type=positive_float, default=1e-4, help="time step in seconds (default 1e-4)")
    parser.add_argument("--target", choices=TARGETS, default="numpy", help="Brian2 code generation target (default numpy)")
    parser.add_argument("--spiking", action="store_true", help="spiking dynamics while balancing (integrate-and-fire "
                                                              "units; a NIR file's own neuron models)")
    parser.add_argument("--input", help="spiking input: a .npy file or a text file with one value >= 0 per input unit "
                                        "(default: uniform in [0, 1) from --seed)")
    parser.add_argument("--input-rate", type=positive_float, default=500.0, help="rate coding an activity of 1 (Hz, default 500)")
    parser.add_argument("--window", type=positive_float, default=1.0, help="spiking measurement window in seconds (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the balance clocks (default 0)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar: plain lines (the default when stdout is not a terminal)")
    parser.add_argument("-o", "--output", help="write the balanced model here (YAML; an npz goes beside it); "
                                               "without it, only the summary is printed")
    parser.set_defaults(func=run, parser=parser)


def _input(path: str | None, n_in: int, seed: int) -> np.ndarray:
    if path is None:
        return check_random_state(seed).uniform(0.0, 1.0, n_in)
    try:  # untrusted: a regular file only, an npy header checked before anything is allocated
        if Path(path).suffix == ".npy":
            x = read_npy(path)
        else:
            with open_regular(path) as handle:
                x = np.loadtxt(handle, ndmin=1)
    except OSError as err:
        raise ModelError(f"{path}: input: cannot be read ({err.strerror or type(err).__name__})") from None
    except ValueError as err:  # UntrustedFileError, or text that is not numbers
        raise ModelError(f"{path}: input: {' '.join(str(err).split())[:200]}") from None
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.shape != (n_in,):
        raise ModelError(f"{path}: input: expected {n_in} values, got {x.size}")
    if np.any(x < 0) or not np.all(np.isfinite(x)):
        raise ModelError(f"{path}: input: spiking inputs are rates and must be finite and >= 0")
    return x


def run(args: argparse.Namespace) -> int:
    out = output_path(args.parser, args.output, args.model)
    net, neurons = load_model(args.model), {}
    check_output_spares_inputs(args.parser, out, args.model)
    start = imbalance(net, args.cost, invariance=args.invariance).max_relative  # of the file, as inspect says
    if args.invariance == "rate":  # a NIR graph of IF units: the agents balance its rate model (rate-level)
        net, neurons = rate_view(net)
    if args.spiking and args.target == "cpp_standalone":
        raise ModelError("--spiking: rate measurements need a runtime target (numpy or cython)")
    progress = Progress("lines" if args.no_progress else None)
    progress.log(f"{args.model}: building the Brian2 network ({args.target}) ...")
    tame_brian2()  # imports Brian2 (only when the command runs) and keeps its files, hook and handler out
    from ...sim import BalancingNetwork

    bn = BalancingNetwork(net, args.cost, rate=args.rate, spiking=args.spiking, target=args.target, dt=args.dt,
                          seed=args.seed, input_rate=args.input_rate, invariance=args.invariance)
    print(f"{args.model}: {len(bn.agents)} agent populations {bn.agents}, {bn.n_colours} colours, "
          f"{args.rate:g} Hz per unit, {args.duration:g} s on {args.target}")
    before = after = None
    phases = [0.1, args.window, args.duration, 0.1, args.window] if args.spiking else [args.duration]
    with progress.stage("simulating", total=sum(phases), unit="s") as stage:
        report = [stage.brian_report(length, sum(phases[:k])) for k, length in enumerate(phases)]
        if args.spiking:
            bn.set_input(_input(args.input, net.input.size, args.seed))
            bn.measure(0.1, progress=report[0])
            before = bn.measure(args.window, progress=report[1])
        bn.run(args.duration, progress=report[2 if args.spiking else 0])
        if args.spiking:
            bn.measure(0.1, progress=report[3])
            after = bn.measure(args.window, progress=report[4])
    result = with_neurons(bn.network, neurons)
    end = imbalance(result, args.cost, invariance=args.invariance).max_relative
    gauged = f" (by their gauge: {', '.join(sorted(bn.spec.gauged))})" if bn.spec.gauged else ""
    print(f"  {len(bn.events)} balance events{gauged}; max relative imbalance {start:.3g} -> {end:.3g}")
    if before is not None:
        print(f"  spiking output before {np.array2string(before.output, precision=4)}")
        print(f"  spiking output after  {np.array2string(after.output, precision=4)}")
        for name in bn.agents:
            print(f"  {name}: mean rate {before.rates[name].mean():.1f} Hz -> {after.rates[name].mean():.1f} Hz")
    return _write(args, out, result)


def _write(args: argparse.Namespace, out, result) -> int:
    """Save the balanced model to ``out`` (if given) and say so."""
    if out is None:
        print("  nothing written (pass -o FILE.yaml to save the balanced model)")
        return 0
    save_model(result, out, comment=f"balanced by neuro-balance simulate ({args.cost}, {args.invariance} invariance, "
                                    f"{args.rate:g} Hz, {args.duration:g} s, {args.target}) from {args.model}")
    print(f"  wrote {out}")
    return 0
