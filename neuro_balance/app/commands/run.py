"""``neuro-balance run``: the main job on the bundled digits model (see `neuro_balance.app.main_job`)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..clean_exit import tame_brian2
from ..main_job import run_main_job
from ..progress import Progress
from ..results_folder import check_results_target
from ...balancing.metrics import INVARIANCES
from .common import (COST_HELP, INVARIANCE_HELP, MODEL_HELP, add_scheduler_arguments, cost_argument, model_argument,
                     profile_list, scheduler_of)


def register(sub) -> None:
    parser = sub.add_parser(
        "run", help="the main job: agents, global agreement, spiking equivalence, chips (report + figures)",
        description="Load the bundled digits model (train it if missing); balance it with neurons as Brian2 agents "
                    "until converged; compare with the global solution; check spiking rate equivalence before and "
                    "after balancing; quantise on every hardware profile with and without balancing. Writes "
                    "report.md, report.json and figures to --out, a new (or empty) folder that appears whole once "
                    "every stage has run; an interrupted or failed run leaves nothing behind.")
    parser.add_argument("--out", help="output folder, new or empty (default results/<timestamp>/)")
    parser.add_argument("--replace", action="store_true",
                        help="if --out exists and holds files, replace it whole when the run has finished "
                             "(without this an existing non-empty folder is refused before any work)")
    parser.add_argument("--quick", action="store_true", help="reduced sizes: well under a minute")
    parser.add_argument("--model", type=model_argument, help=f"{MODEL_HELP} (default digits_mlp)")
    parser.add_argument("--profiles", type=profile_list, help="comma-separated hardware profiles (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the agents' clocks and the data split (default 0)")
    parser.add_argument("--target", choices=("numpy", "cython", "cpp_standalone"), default="numpy",
                        help="Brian2 target of the agents (default numpy: no compilation)")
    parser.add_argument("--cost", type=cost_argument, default="L2", help=COST_HELP)
    parser.add_argument("--invariance", choices=INVARIANCES, default="exact",
                        help=f"{INVARIANCE_HELP}. The Brian2 stages simulate only the rate exchange: under exact a "
                             f"NIR model whose hidden units all spike gives them nothing to do, and they say so")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars: one plain line per stage (the default when stdout is not a terminal)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the report's path (and errors)")
    add_scheduler_arguments(parser)
    parser.set_defaults(func=run, parser=parser)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path("results") / time.strftime("%Y%m%d-%H%M%S")
    check_results_target(out, args.replace)  # before anything is loaded, imported or run
    scheduler = scheduler_of(args)
    progress = Progress("quiet" if args.quiet else "lines" if args.no_progress else None)
    tame_brian2()
    report = run_main_job(out, model=args.model, quick=args.quick, profiles=args.profiles, seed=args.seed,
                          target=args.target, cost=args.cost, progress=progress, scheduler=scheduler,
                          workers=args.workers, replace=args.replace, invariance=args.invariance)
    skipped = [name for name, stage in report["stages"].items() if not stage["applied"]]
    progress.log(f"done in {report['wall_s']:.0f} s" + (f"; did not apply: {', '.join(skipped)} (reasons in the report)"
                                                         if skipped else ""))
    print(out / "report.md" if args.quiet else f"report: {out / 'report.md'}")
    return 1 if "agents" in report and not report["agents"]["converged"] else 0
