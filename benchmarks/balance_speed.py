"""Balancing speed on large MLPs, as multiples of one read pass over all weights.

For each size (1M and 10M weights: MLPs [N]*5 with spread row gains) and p in {0.5, 1, 2}:

* ``pass``: one read pass over every weight, ``sum(|W|**p)``: the baseline, timed in the same run;
* ``global``: ``nb.balance(method="global", tol=1e-10)`` end to end (cost graph, Newton-CG, rescaled copy);
* ``stochastic``: ``nb.balance(method="stochastic", tol=1e-6)``: one unit at a time in random order;
* ``per-neuron loop``: the algorithm as the paper states it, in plain numpy on the weights
  (one neuron at a time: in-cost from its row, out-cost from its column, rescale both), random order,
  until the max relative imbalance is <= 1e-6.

Memory: peak extra bytes allocated by ``nb.balance(method="global")`` (tracemalloc), in copies of
the weights. Run: ``python benchmarks/balance_speed.py [--sizes 1M 10M] [--repeats 3]``.
"""
from __future__ import annotations

import argparse
import tracemalloc

import numpy as np

import neuro_balance as nb
from timing import best_time

SIZES = {"100k": 158, "1M": 500, "10M": 1581}


def make_net(width: int, seed: int = 0) -> nb.Network:
    net = nb.mlp([width] * 5, seed=seed)
    rng = np.random.default_rng(seed)
    for proj in net.projections:  # spread row gains: units start far from balance
        proj.weight *= np.exp(rng.normal(size=(proj.weight.shape[0], 1)))
    return net


def read_pass(net: nb.Network, p: float) -> float:
    return sum(float(np.sum(np.abs(proj.weight) ** p)) for proj in net.projections)


def per_neuron_loop(net: nb.Network, p: float, tol: float, seed: int, max_sweeps: int = 200) -> int:
    """The paper's algorithm on the weights, one neuron at a time; returns the sweeps it took."""
    Ws = [proj.weight.copy() for proj in net.projections]
    bs = [net.populations[f"h{k}"].bias.copy() for k in range(1, len(Ws))]
    units = [(layer, i) for layer in range(1, len(Ws)) for i in range(Ws[layer].shape[1])]
    rng = np.random.default_rng(seed)
    for sweep in range(1, max_sweeps + 1):
        for k in rng.permutation(len(units)):
            layer, i = units[k]
            A = np.sum(np.abs(Ws[layer - 1][i]) ** p) + abs(bs[layer - 1][i]) ** p
            B = np.sum(np.abs(Ws[layer][:, i]) ** p)
            lam = (B / A) ** (1 / (2 * p))
            Ws[layer - 1][i] *= lam
            bs[layer - 1][i] *= lam
            Ws[layer][:, i] /= lam
        A = [np.sum(np.abs(Ws[l - 1]) ** p, axis=1) + np.abs(bs[l - 1]) ** p for l in range(1, len(Ws))]
        B = [np.sum(np.abs(Ws[l]) ** p, axis=0) for l in range(1, len(Ws))]
        worst = max(float(np.max(np.abs(a - b) / np.maximum(a, b))) for a, b in zip(A, B))
        if worst <= tol:
            return sweep
    return max_sweeps


def extra_copies(net: nb.Network, p: float) -> float:
    weight_bytes = sum(proj.weight.nbytes for proj in net.projections)
    tracemalloc.start()
    nb.balance(net, nb.Lp(p), tol=1e-10)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / weight_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1M", "10M"], choices=list(SIZES))
    parser.add_argument("--ps", nargs="+", type=float, default=[0.5, 1.0, 2.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-sizes", nargs="*", default=["1M", "10M"], help="sizes on which to run the per-neuron loop")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        net = make_net(SIZES[size])
        n_weights = sum(proj.weight.size for proj in net.projections)
        for p in args.ps:
            t_pass, _ = best_time(lambda: read_pass(net, p), args.repeats + 2)
            t_global, res = best_time(lambda: nb.balance(net, nb.Lp(p), tol=1e-10), args.repeats)
            assert res.converged and res.imbalance <= 1e-10
            t_stoch, sto = best_time(lambda: nb.balance(net, nb.Lp(p), method="stochastic", tol=1e-6), 1)
            row = dict(size=size, weights=n_weights, p=p, pass_ms=1e3 * t_pass, global_s=t_global,
                       global_passes=t_global / t_pass, newton=res.iterations, cg=res.extra["cg_iterations"],
                       stoch_s=t_stoch, stoch_passes=t_stoch / t_pass, stoch_sweeps=sto.iterations,
                       copies=extra_copies(net, p))
            if size in args.loop_sizes:
                t_loop, sweeps = best_time(lambda: per_neuron_loop(net, p, 1e-6, seed=0), 1)
                row.update(loop_s=t_loop, loop_passes=t_loop / t_pass, loop_sweeps=sweeps)
            rows.append(row)
            print_row(row, header=len(rows) == 1)


def print_row(r: dict, header: bool) -> None:
    if header:
        print(f"{'size':>5} {'p':>4} {'pass':>9} | {'global 1e-10':>13} {'passes':>7} {'newton/cg':>9} {'extra copies':>12} | "
              f"{'stochastic 1e-6':>15} {'passes':>7} {'sweeps':>6} | {'per-neuron loop 1e-6':>20} {'passes':>8} {'sweeps':>6}")
    loop = (f"{r['loop_s']:>19.3f}s {r['loop_passes']:>8.0f} {r['loop_sweeps']:>6}" if "loop_s" in r else f"{'-':>20} {'-':>8} {'-':>6}")
    print(f"{r['size']:>5} {r['p']:>4} {r['pass_ms']:>7.2f}ms | {r['global_s']:>12.3f}s {r['global_passes']:>7.1f} "
          f"{r['newton']:>4}/{r['cg']:<4} {r['copies']:>12.2f} | {r['stoch_s']:>14.3f}s {r['stoch_passes']:>7.0f} "
          f"{r['stoch_sweeps']:>6} | {loop}", flush=True)


if __name__ == "__main__":
    main()
