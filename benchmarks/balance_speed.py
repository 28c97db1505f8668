"""Balancing speed as multiples of one read pass over all weights, for the three engines and several costs.

Networks: MLPs ``[N] * 5`` (four N x N weight matrices, biases) whose hidden units are randomly
rescaled (log-scales ~ N(0, 1)), so they start far from balance. Sizes: 1e4, 1e5, 1e6 and 4e6 weights.

For every size the baseline is one read pass over all weights, ``sum(einsum('ij,ij->', W, W))``, best of
``--repeats + 4`` calls, timed in the same run. Each engine runs ``nb.balance(net, cost, method=...,
tol=1e-10)`` end to end (cost graph, balancing, the rescaled copy of the network), best of
``--repeats``; the table prints its time in read passes, its iterations (Newton steps or sweeps) and
the wall time. Costs: Lp for ``--ps`` and L-infinity (``inf``; its ``global`` runs the sweep).

Targets (issue 13): global <= 10 passes at 1e6 and 4e6 weights, <= 1 ms at 1e4; sweep <= 2x global;
stochastic <= 3x sweep; p = 0.5, 1, 3 within 2x of p = 2.

``--hessian-dtype float32`` runs the global solver's Newton directions on a float32 copy of K (same
result). ``--blas-threads 1`` limits BLAS to one thread: on a machine other processes load, BLAS threads
wait for each other and the CPU clock counts their waiting.

Run: ``python benchmarks/balance_speed.py [--sizes 1e4 1e5 1e6 4e6] [--ps 0.5 1 2 3 inf] [--repeats 3]
[--clock wall|cpu] [--hessian-dtype float64|float32] [--blas-threads N]``.
"""
from __future__ import annotations

import argparse
import math

import numpy as np

import neuro_balance as nb
from timing import best_time

WIDTHS = {"1e4": 50, "1e5": 158, "1e6": 500, "4e6": 1000}
METHODS = ("global", "sweep", "stochastic")


def make_net(width: int, seed: int = 0) -> nb.Network:
    """An MLP ``[width] * 5`` with randomly rescaled hidden units."""
    net = nb.mlp([width] * 5, seed=seed)
    rng = np.random.default_rng(seed)
    return nb.scale(net, {name: rng.normal(size=pop.size) for name, pop in net.populations.items() if pop.balanced})


def read_pass(net: nb.Network) -> float:
    """One read pass over all weights: the unit of every time in the table."""
    return sum(float(np.einsum("ij,ij->", proj.weight, proj.weight)) for proj in net.projections)


def cost_of(p: float) -> nb.Cost:
    return nb.Linf() if math.isinf(p) else nb.Lp(p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=list(WIDTHS), choices=list(WIDTHS))
    parser.add_argument("--ps", nargs="+", type=float, default=[0.5, 1.0, 2.0, 3.0, math.inf])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: process CPU time, steadier when other processes load the machine")
    parser.add_argument("--hessian-dtype", choices=("float64", "float32"), default="float64",
                        help="precision of the global solver's Hessian-vector products")
    parser.add_argument("--blas-threads", type=int, default=None, help="limit BLAS to this many threads")
    args = parser.parse_args()
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.blas_threads, user_api="blas")
    print(f"{'weights':>8} {'p':>4} {'pass':>9} | " + " | ".join(f"{m:>10} {'passes':>7} {'iter':>5}" for m in args.methods))
    for size in args.sizes:
        net = make_net(WIDTHS[size])
        t_pass, _ = best_time(lambda: read_pass(net), args.repeats + 4, args.clock)
        for p in args.ps:
            cells = []
            for method in args.methods:
                extra = {"hessian_dtype": args.hessian_dtype} if method == "global" and args.hessian_dtype != "float64" else {}
                t, res = best_time(lambda: nb.balance(net, cost_of(p), method=method, tol=1e-10, **extra),
                                   args.repeats, args.clock)
                if not res.converged:
                    raise RuntimeError(f"{method} p={p} at {size} weights did not converge: {res}")
                cells.append(f"{1e3 * t:>8.2f}ms {t / t_pass:>7.1f} {res.iterations:>5}")
            print(f"{size:>8} {p:>4} {1e3 * t_pass:>7.3f}ms | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
