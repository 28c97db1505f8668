"""``neuro-balance inspect``: a per-population table of costs and imbalance."""
from __future__ import annotations

import argparse

import numpy as np

from ...model.files import load_model
from ...balancing.metrics import imbalance
from .common import COST_HELP, MODEL_HELP, cost_argument, model_argument


def register(sub) -> None:
    parser = sub.add_parser(
        "inspect", help="per-population costs and imbalance of a model",
        description="Print, for every population of MODEL: units, dead units, in- and out-cost, and max relative "
                    "imbalance, then the total cost.")
    parser.add_argument("model", type=model_argument, help=MODEL_HELP)
    parser.add_argument("--cost", type=cost_argument, default="L2", help=COST_HELP)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    net = load_model(args.model)
    rep = imbalance(net, args.cost)
    print(f"{args.model}: {net!r}")
    print(f"cost {args.cost}")
    header = f"{'population':<14}{'role':<8}{'activation':<16}{'units':>7}{'dead':>6}{'in-cost':>13}{'out-cost':>13}{'max imbalance':>15}"
    print(header)
    print("-" * len(header))
    for name, pop in net.populations.items():
        mask = rep.balanced[name]
        worst = f"{np.max(rep.relative[name][mask]):.3g}" if mask.any() else "-"
        print(f"{name:<14}{pop.role:<8}{pop.activation.spec:<16}{pop.size:>7}{int(rep.dead[name].sum()):>6}"
              f"{rep.in_cost[name].sum():>13.6g}{rep.out_cost[name].sum():>13.6g}{worst:>15}")
    if args.cost.is_linf:
        print(f"in-cost / out-cost: the sum over a population's units of each unit's largest incoming / outgoing "
              f"|w|\ntotal cost {rep.total_cost:.6g}: the largest |w| in the network (the Linf cost is a maximum, "
              f"not a sum of the rows above); max relative imbalance {rep.max_relative:.3g}")
    else:
        print(f"in-cost / out-cost: the sum of |w|^{args.cost.p:g} over a population's incoming / outgoing "
              f"parameters (biases count as incoming)\ntotal cost {rep.total_cost_text}: the sum over "
              f"every parameter once; max relative imbalance {rep.max_relative:.3g}")
    return 0
