"""``neuro-balance inspect``: a per-population table of costs and imbalance."""
from __future__ import annotations

import argparse

import numpy as np

from ...model.files import load_model
from ...balancing.graph import TIES
from ...balancing.metrics import INVARIANCES, imbalance
from .common import COST_HELP, INVARIANCE_HELP, MODEL_HELP, cost_argument, model_argument

# What each kind of balancing does, printed under the table for the kinds that appear in it.
_SYMMETRY_TEXT = {
    "exchange": "exchange: incoming weights and bias x lam, outgoing x lam**-c (c = 1 for ReLU; exact); imbalance "
                "|in - c out| / max(in, c out), the balance equation's",
    "gauge": "gauge: a spiking unit's incoming weights, bias and v_threshold, v_reset, v_leak x mu, outgoing "
             "unchanged (every spike unchanged); imbalance |in - out| / max(in, out), what balance drives to 0",
    "rate exchange": "rate exchange: an IF unit's incoming weights and bias x lam, outgoing x 1/lam, threshold kept "
                     "(its rate x lam: rate-level only); imbalance as for the exchange of its rate model (ReLU)",
}


def register(sub) -> None:
    parser = sub.add_parser(
        "inspect", help="per-population costs and imbalance of a model",
        description="Print, for every population of MODEL: its unit (activation, or NIR neuron model: IF, LIF, "
                    "CubaLIF, LI, CubaLI, I), the invariance balancing applies to it (exchange, gauge, rate "
                    "exchange, or none), units, dead units, in- and out-cost, and max relative imbalance, then the "
                    "total cost. The max relative imbalance is the one balance reports and drives below its --tol.")
    parser.add_argument("model", type=model_argument, help=MODEL_HELP)
    parser.add_argument("--cost", type=cost_argument, default="L2", help=COST_HELP)
    parser.add_argument("--invariance", choices=INVARIANCES, default="exact", help=INVARIANCE_HELP)
    parser.add_argument("--tie", choices=[t for t in TIES if t],
                        help="units sharing one scale, as balance --tie (layer: a spiking layer's imbalance is that "
                             "of its summed costs)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    net = load_model(args.model)
    rep = imbalance(net, args.cost, args.tie, args.invariance)
    print(f"{args.model}: {net!r}")
    print(f"cost {args.cost}" + (f"; spiking units under the {args.invariance} invariance"
                                 if any(p.neuron is not None and p.neuron.spiking for p in net.populations.values())
                                 else ""))
    header = (f"{'population':<14}{'role':<8}{'unit':<12}{'invariance':<15}{'units':>7}{'dead':>6}{'in-cost':>13}"
              f"{'out-cost':>13}{'max imbalance':>15}")
    print(header)
    print("-" * len(header))
    for name, pop in net.populations.items():
        mask = rep.balanced[name]
        worst = f"{np.max(rep.relative[name][mask]):.3g}" if mask.any() else "-"
        unit = pop.neuron.model if pop.neuron is not None else pop.activation.spec
        print(f"{name:<14}{pop.role:<8}{unit:<12}{rep.symmetry[name]:<15}{pop.size:>7}{int(rep.dead[name].sum()):>6}"
              f"{rep.in_cost[name].sum():>13.6g}{rep.out_cost[name].sum():>13.6g}{worst:>15}")
    for kind, text in _SYMMETRY_TEXT.items():
        if kind in rep.symmetry.values():
            print(text)
    if args.cost.is_linf:
        print(f"in-cost / out-cost: the sum over a population's units of each unit's largest incoming / outgoing "
              f"|w|\ntotal cost {rep.total_cost:.6g}: the largest |w| in the network (the Linf cost is a maximum, "
              f"not a sum of the rows above); max relative imbalance {rep.max_relative:.3g}")
    else:
        print(f"in-cost / out-cost: the sum of |w|^{args.cost.p:g} over a population's incoming / outgoing "
              f"parameters (biases count as incoming)\ntotal cost {rep.total_cost_text}: the sum over "
              f"every parameter once; max relative imbalance {rep.max_relative:.3g}")
    return 0
