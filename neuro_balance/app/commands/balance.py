"""``neuro-balance balance``: balance a model file and write the balanced model."""
from __future__ import annotations

import argparse

from ...balancing.balance import METHODS, balance
from ...balancing.local import SCHEDULES
from ...balancing.graph import TIES
from ...balancing.metrics import INVARIANCES
from ...model.files import load_model, save_model
from ...model.nir_write import READERS, check_readable_by
from .common import (COST_HELP, INVARIANCE_HELP, MODEL_HELP, check_output_spares_inputs, cost_argument, model_argument,
                     output_path, positive_float)

FOR_HELP = ("the framework that will read the written NIR file, which decides how many thresholds a spiking layer "
            "may have after balancing: nir (default) gives each spiking neuron its own gauge, so that every neuron's "
            "in- and out-cost are equal, hence its own v_threshold, as the NIR standard allows (sinabs and the "
            "toolkit read it; snnTorch's importer refuses it: 'v_threshold must be same for all neurons', for IF, "
            "LIF and CubaLIF alike); "
            "snntorch implies --tie layer, one gauge and one threshold per layer, which snnTorch imports (an input "
            "whose layer already has several thresholds is refused); sinabs, whose importer takes one threshold per "
            "neuron, is the same as nir")


def register(sub) -> None:
    parser = sub.add_parser(
        "balance", help="balance a model (global, stochastic or sweep)",
        description="Balance every hidden homogeneous unit of MODEL for a cost and write the balanced model. "
                    "The network function is unchanged; the total cost drops to its unique minimum. A NIR file's "
                    "spiking units (IF, LIF, CubaLIF) are balanced as --invariance says (by default their gauge, "
                    "which sets each unit's in-cost equal to its out-cost and may raise the total cost), with as "
                    "many thresholds per layer as --for allows.")
    parser.add_argument("model", type=model_argument, help=MODEL_HELP)
    parser.add_argument("--cost", type=cost_argument, default="L2", help=COST_HELP)
    parser.add_argument("--method", choices=METHODS, default="global", help="engine (default global)")
    parser.add_argument("--schedule", choices=SCHEDULES, help="visiting order for --method stochastic")
    parser.add_argument("--tie", choices=[t for t in TIES if t], help="units sharing one scale")
    parser.add_argument("--invariance", choices=INVARIANCES, default="exact", help=INVARIANCE_HELP)
    parser.add_argument("--for", dest="reader", choices=READERS, default="nir", help=FOR_HELP)
    parser.add_argument("--seed", type=int, default=0, help="random order seed (default 0)")
    parser.add_argument("--tol", type=positive_float, default=1e-10, help="target max relative imbalance (default 1e-10)")
    parser.add_argument("--scale-grid", choices=("pow2",),
                        help="pow2: every factor a power of two (weights change by bit shifts only); with --method "
                             "sweep or stochastic")
    parser.add_argument("--write-unconverged", action="store_true",
                        help="write -o even when balancing did not converge (by default a run that exits 1 writes "
                             "nothing)")
    parser.add_argument("-o", "--output", help="write the balanced model here (YAML; an npz goes beside it); "
                                               "without it, only the summary is printed")
    parser.set_defaults(func=run, parser=parser)


def _change(before: float, after: float) -> str:
    """The relative change of the cost in words: ``54.08% higher``, ``12.5% lower`` or ``unchanged``."""
    if before == after:
        return "unchanged"
    if before == 0:
        return "higher, from 0"
    return f"{100 * abs(after - before) / before:.2f}% {'lower' if after < before else 'higher'}"


def run(args: argparse.Namespace) -> int:
    out = output_path(args.parser, args.output, args.model)
    if args.scale_grid is not None and args.method == "global":
        args.parser.error("--scale-grid: the global method's factors are continuous; use --method sweep or stochastic")
    if args.reader == "snntorch" and args.tie not in (None, "layer"):
        args.parser.error(f"--for snntorch: snnTorch imports one threshold per layer, which needs --tie layer, not "
                          f"--tie {args.tie}")
    tie = "layer" if args.reader == "snntorch" else args.tie
    net = load_model(args.model)
    check_output_spares_inputs(args.parser, out, args.model)
    check_readable_by(net, args.reader, args.model)
    result = balance(net, args.cost, args.method, tol=args.tol, seed=args.seed, schedule=args.schedule, tie=tie,
                     scale_grid=args.scale_grid, invariance=args.invariance)
    dead = sum(len(v) for v in result.dead_units.values())
    print(f"{args.model}: {result.method} balancing for {args.cost}: "
          f"{'converged' if result.converged else 'NOT converged'} in {result.iterations} iterations")
    print(f"  cost {result.cost_before:.6g} -> {result.cost_after:.6g} ({_change(result.cost_before, result.cost_after)})")
    print(f"  max relative imbalance {result.history['imbalance'][0]:.3g} -> {result.imbalance:.3g}; dead units: {dead}")
    if "invariance" in result.extra:
        spiking = ", ".join(f"{name} ({net.populations[name].neuron.model})" for name in result.extra["symmetry"]
                            if net.populations[name].neuron is not None and net.populations[name].neuron.spiking)
        how = (f"the gauge (incoming weights and potentials x mu, every spike unchanged), one threshold per "
               f"{'layer' if tie == 'layer' else 'neuron'} (--for {args.reader})" if args.invariance == "exact"
               else "the rate exchange (thresholds kept, rates x lam: rate-level only)")
        print(f"  spiking units {spiking}: {how}")
    if out is not None and not result.converged and not args.write_unconverged:
        print(f"  nothing written to {out}: not converged (pass --write-unconverged to write it anyway)")
    elif out is not None:
        save_model(result.network, out, comment=f"balanced by neuro-balance ({result.method}, {args.cost}) from {args.model}")
        print(f"  wrote {out}")
    else:
        print("  nothing written (pass -o FILE.yaml to save the balanced model)")
    return 0 if result.converged else 1
