"""Speed of balancing and of the forward pass on a convolutional network with > 1M kernel weights.

Two tables, every time a ratio against a baseline measured in the same run (best of ``--repeats``):

1. Global balancing (L2 and L1) as a multiple of one pass over the weights (``sum |W|**p`` over all
   projections): cost graph aggregation, the Newton solver and the final rescaling, end to end.
2. The forward pass of every map projection (`neuro_balance.model.conv` kinds) against a plain numpy
   reference: ``sliding_window_view`` windows contracted with ``numpy.einsum`` (``optimize=True``,
   i.e. tensordot/BLAS where einsum finds it); both are checked to agree first.

BLAS runs single-threaded by default (``--threads``): on a loaded 2-core machine OpenBLAS's thread
pool makes small batched products erratic by two orders of magnitude, which would swamp the ratios.

Run: ``python benchmarks/conv_speed.py`` (``--batch``, ``--repeats``, ``--threads``).
"""
from __future__ import annotations

import argparse

import numpy as np
from threadpoolctl import threadpool_limits
from numpy.lib.stride_tricks import sliding_window_view

import neuro_balance as nb
from timing import best_time
from neuro_balance.model.conv import conv_net, geometry
from neuro_balance.balancing.graph import build_graph
from neuro_balance.model.kinds import get_kind

LAYERS = [
    {"channels": 64, "kernel": 3, "padding": 1},
    {"channels": 128, "kernel": 3, "padding": 1, "pool": {"kind": "max", "size": 2}},
    {"channels": 256, "kernel": 3, "padding": 1, "stride": 2},
    {"channels": 256, "kernel": 3, "padding": 1},
    {"channels": 256, "kernel": 3, "padding": 1, "groups": 256},  # depthwise
    {"channels": 256, "kernel": 3, "padding": 1, "pool": {"kind": "avg", "size": 2}},
    {"channels": 32, "kernel": 3, "kind": "locally_connected"},
]


def weight_pass(net: nb.Network, p: float) -> float:
    """One pass over all weights: the baseline of table 1."""
    return float(sum(np.sum(np.abs(proj.weight) ** p) for proj in net.projections))


def reference_propagate(proj: nb.Projection, pre: nb.Population, x: np.ndarray) -> np.ndarray:
    """Plain numpy: pool with window views, pad, window view, one einsum."""
    geo = geometry(proj.options, pre.shape, allow_groups=proj.kind == "conv2d")
    maps = x.reshape((x.shape[0],) + pre.shape)
    if geo.pool is not None:
        win = sliding_window_view(maps, geo.pool.size, axis=(2, 3))[:, :, ::geo.pool.stride[0], ::geo.pool.stride[1]]
        maps = win.max(axis=(4, 5)) if geo.pool.kind == "max" else win.mean(axis=(4, 5))
    ph, pw = geo.padding
    maps = np.pad(maps, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(maps, geo.kernel, axis=(2, 3))[:, :, ::geo.stride[0], ::geo.stride[1]]
    if proj.kind == "locally_connected":
        return np.einsum("bcyxij,oyxcij->boyx", win, proj.weight, optimize=True).reshape(x.shape[0], -1)
    G = geo.groups
    if G == 1:
        return np.einsum("bcyxij,ocij->boyx", win, proj.weight, optimize=True).reshape(x.shape[0], -1)
    B, C = win.shape[:2]
    w = proj.weight.reshape((G, -1) + proj.weight.shape[1:])
    y = np.einsum("bgcyxij,gocij->bgoyx", win.reshape((B, G, C // G) + win.shape[2:]), w, optimize=True)
    return y.reshape(B, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    args = parser.parse_args()
    with threadpool_limits(limits=args.threads, user_api="blas"):
        run(args)


def run(args: argparse.Namespace) -> None:

    net = conv_net((3, 32, 32), LAYERS, dense=[64], n_out=10, seed=0)
    kernel_weights = sum(p.weight.size for p in net.projections if p.kind != "dense")
    print(f"network: {net}")
    print(f"kernel weights: {kernel_weights:,}; all parameters: {net.n_parameters:,}; batch {args.batch}\n")

    print("Table 1: global balancing vs one pass over the weights (sum |W|^p)")
    print(f"{'cost':<6}{'pass [ms]':>11}{'graph [ms]':>12}{'balance [ms]':>14}{'balance / pass':>16}"
          f"{'iterations':>12}{'imbalance':>11}")
    for p in (2.0, 1.0):
        cost = nb.Lp(p)
        t_pass = best_time(lambda: weight_pass(net, p), args.repeats)[0]
        t_graph = best_time(lambda: build_graph(net, cost), args.repeats)[0]
        results = []
        t_bal = best_time(lambda: results.append(nb.balance(net, cost, method="global", tol=1e-10)), args.repeats)[0]
        res = results[-1]
        print(f"L{p:<5g}{1e3 * t_pass:>11.2f}{1e3 * t_graph:>12.2f}{1e3 * t_bal:>14.2f}{t_bal / t_pass:>16.1f}"
              f"{res.iterations:>12d}{res.imbalance:>11.1e}")

    print("\nTable 2: forward pass per map projection vs numpy reference (sliding_window_view + einsum)")
    print(f"{'projection':<12}{'kind':<19}{'options':<44}{'ours [ms]':>10}{'ref [ms]':>10}{'ref / ours':>11}")
    acts = net.forward(np.random.default_rng(1).normal(size=(args.batch, net.input.n_features)), return_all=True)
    total_ours = total_ref = 0.0
    for proj in net.projections:
        if proj.kind == "dense":
            continue
        pre, post = net.populations[proj.pre], net.populations[proj.post]
        x = acts[proj.pre]
        kind = get_kind(proj.kind)
        ours = kind.propagate(proj, pre, post, x)
        ref = reference_propagate(proj, pre, x)
        assert np.allclose(ours, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max()), proj.name
        t_ours = best_time(lambda: kind.propagate(proj, pre, post, x), args.repeats)[0]
        t_ref = best_time(lambda: reference_propagate(proj, pre, x), args.repeats)[0]
        total_ours += t_ours
        total_ref += t_ref
        opts = {k: v for k, v in proj.options.items() if k not in ("stride", "padding") or v != [1, 1]}
        text = ", ".join(f"{k}={v['kind'] if isinstance(v, dict) else v}" for k, v in opts.items())
        print(f"{proj.name:<12}{proj.kind:<19}{text[:43]:<44}{1e3 * t_ours:>10.2f}{1e3 * t_ref:>10.2f}"
              f"{t_ref / t_ours:>11.2f}")
    print(f"{'all':<75}{1e3 * total_ours:>10.2f}{1e3 * total_ref:>10.2f}{total_ref / total_ours:>11.2f}")
    t_net = best_time(lambda: net.forward(acts["in"]), args.repeats)[0]
    print(f"\nwhole Network.forward (batch {args.batch}): {1e3 * t_net:.1f} ms")


if __name__ == "__main__":
    main()
