"""``neuro-balance demo``: run one of the papers' experiments, write its curves (JSON) and figure (PNG)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ...learn.experiments import EXPERIMENTS, QUICK, run as run_experiment, save, summary_text


def register(sub) -> None:
    parser = sub.add_parser(
        "demo", help="run an experiment on learning and balance (JSON + PNG)",
        description="Run one of the experiments of the balance papers and write NAME.json (its curves and "
                    "summary) and NAME.png (its figure) into --out. gd-regularizer: only a regulariser makes "
                    "gradient descent balance (S1 Fig 3). balance-disrupted: without one, balance drifts by "
                    "O(lr^2) per step (S1 Fig 4). order-independence: stochastic balancing in 1000 random "
                    "orders reaches one state (S1 Fig 5). balance-and-learning: plain vs L1/L2 vs full balance "
                    "first vs partial balancing every epoch, on full data and 1% of it (S2).")
    parser.add_argument("name", choices=list(EXPERIMENTS), metavar="NAME",
                        help="one of: " + ", ".join(EXPERIMENTS))
    parser.add_argument("--out", default="demo_output", help="output directory (default demo_output)")
    parser.add_argument("--quick", action="store_true", help="tiny settings: checks the pipeline in seconds")
    parser.add_argument("--seeds", type=int, help="number of seeds (gd-regularizer, balance-and-learning)")
    parser.add_argument("--epochs", type=int, help="training epochs (all but order-independence)")
    parser.add_argument("--mnist", help="balance-and-learning on MNIST / Fashion-MNIST: a directory with the four "
                                        "IDX files (gzip or raw); long: a 784-256-128-10 net, 6 conditions x 5 "
                                        "seeds x 40 epochs at a few seconds per epoch (use --epochs, --seeds)")
    parser.add_argument("--no-figure", action="store_true", help="write the JSON only")
    parser.set_defaults(func=handler, parser=parser)


def handler(args: argparse.Namespace) -> int:
    kwargs = dict(QUICK[args.name]) if args.quick else {}
    if args.seeds is not None:
        if args.name not in ("gd-regularizer", "balance-and-learning"):
            args.parser.error(f"--seeds: {args.name} takes no seeds")
        if args.seeds < 1:
            args.parser.error(f"--seeds: must be >= 1, got {args.seeds}")
        kwargs["seeds"] = tuple(range(args.seeds))
    if args.epochs is not None:
        if args.name == "order-independence":
            args.parser.error("--epochs: order-independence does not train")
        if args.epochs < 1:
            args.parser.error(f"--epochs: must be >= 1, got {args.epochs}")
        kwargs["epochs"] = args.epochs
    if args.mnist is not None:
        if args.name != "balance-and-learning":
            args.parser.error("--mnist: only balance-and-learning reads MNIST")
        if not Path(args.mnist).is_dir():
            raise ValueError(f"--mnist: {args.mnist!r} is not a directory")
        kwargs["mnist"] = args.mnist
    result = run_experiment(args.name, **kwargs)
    paths = save(result, args.out, figure=not args.no_figure)
    print(summary_text(result))
    for kind, path in paths.items():
        print(f"wrote {path}")
    return 0
