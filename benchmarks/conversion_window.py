"""Conversion error on loihi1 against the rate-code window, static (`forward`) and stepped (`simulate`).

A random 20-16-12-6 ReLU network (the issue's example; inputs uniform in [0, 1], 500 calibration
samples, 200 test samples) is mapped onto loihi1 with the profile's default conversion (max rate
1/8 spikes per step, reset to zero, v floor 0, weights rounded to nearest, a current synapse of 8
steps in the stepped run) and, for contrast, with the calibrated maximum at one spike per step and
no synapse (the conversion before ``max_rate``). Each row gives the relative RMS output error
against the float network, ``rms(out - float) / rms(float)``, and the difference between the two
emulations on the same scale.

    python benchmarks/conversion_window.py [--seed 0] [--bits 8 9 10 11 12]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import neuro_balance as nb
from neuro_balance.hardware import quantize, simulate


def relative(a: np.ndarray, b: np.ndarray, ref: np.ndarray) -> float:
    """``rms(a - b) / rms(ref)``."""
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(ref ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 9, 10, 11, 12],
                        help="rate-code window 2**bits - 1 steps")
    parser.add_argument("--profile", default="loihi1")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    net = nb.mlp([20, 16, 12, 6], seed=args.seed)
    rng = np.random.default_rng(args.seed + 1)
    cal, x = rng.random((500, 20)), rng.random((200, 20))
    ref = net.forward(x)
    conversions = {"default": {}, "max rate 1, no synapse": {"max_rate": 1.0, "synapse_shift": 0}}
    print(f"{args.profile}, {net!r}, seed {args.seed}; relative RMS output error")
    head = f"{'conversion':<24}{'window':>7}{'static':>9}{'stepped':>9}{'|static-stepped|':>18}{'seconds':>9}"
    print(head)
    print("-" * len(head))
    for label, extra in conversions.items():
        for bits in args.bits:
            q = quantize(net, args.profile, cal, activation_bits=bits, **extra)
            t0 = time.perf_counter()
            static, stepped = q.forward(x), simulate(q, x).output
            print(f"{label:<24}{q.spec.window:>7}{relative(static, ref, ref):>9.3f}{relative(stepped, ref, ref):>9.3f}"
                  f"{relative(static, stepped, ref):>18.3f}{time.perf_counter() - t0:>9.1f}")


if __name__ == "__main__":
    main()
