"""Integer emulation throughput against the float64 forward pass of the same network.

For every bundled profile: the digits-sized MLP (64-32-32-10) is mapped onto the chip once, then the
static integer emulation (`QuantizedNetwork.forward`) and `Network.forward` (float64) run on the
same batch; the table gives samples per second and the ratio of the two times (target: at most 2).
The two are timed alternately, best of ``--repeat`` runs each, so both see the same machine load.
Spiking chips also get the step-by-step simulation (`simulate`, one rate-code window).

    python benchmarks/quantize_speed.py [--batch 1797] [--repeat 5] [--no-spiking]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import neuro_balance as nb
from timing import best_time
from neuro_balance.hardware import list_profiles, quantize, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1797)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--spiking-batch", type=int, default=100)
    parser.add_argument("--no-spiking", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    X = np.resize(X, (args.batch, 64))
    net = nb.mlp([64, 32, 32, 10], seed=0)
    print(f"network {net!r}, batch {args.batch}, best of {args.repeat} (float and integer timed alternately)")
    header = (f"{'profile':<14}{'map (ms)':>10}{'float samples/s':>17}{'int samples/s':>15}{'int / float time':>18}"
              f"{'spiking samples/s':>19}{'steps':>7}")
    print(header)
    print("-" * len(header))
    for name in list_profiles():
        t0 = time.perf_counter()
        q = quantize(net, name, X)
        t_map = time.perf_counter() - t0
        t_float = t_int = float("inf")
        for _ in range(args.repeat):
            t_float = min(t_float, best_time(lambda: net.forward(X), 1)[0])
            t_int = min(t_int, best_time(lambda: q.forward(X), 1)[0])
        spiking = "-"
        steps = "-"
        if q.spec.spiking and not args.no_spiking:
            xs = X[:args.spiking_batch]
            t_spk = best_time(lambda: simulate(q, xs), 1)[0]
            spiking, steps = f"{len(xs) / t_spk:,.0f}", str(q.spec.window)
        print(f"{name:<14}{1e3 * t_map:>10.1f}{args.batch / t_float:>17,.0f}{args.batch / t_int:>15,.0f}"
              f"{t_int / t_float:>18.2f}{spiking:>19}{steps:>7}")


if __name__ == "__main__":
    main()
