"""The static estimate against the stepped run on badly scaled networks, with and without balancing first.

Random 20-16-12-6 ReLU networks whose hidden units are rescaled by ``exp(u)``, ``u ~ N(0, 0.5)`` (the same
function, badly scaled), inputs uniform in [0, 1] (300 calibration rows, 200 test rows), mapped onto a
spiking chip with the profile's default conversion at rate-code windows of 255 and 4,095 steps, as they are
and after ``nb.balance(net, Lp(2))``. Per row: the relative RMS output error against the float network of
the static estimate (``forward``) and of the stepped run (``simulate``), their gap on the test rows, the gap
``quantize`` measured on the calibration rows, and whether ``quantize`` flagged the static estimate
(`StaticEstimateWarning`). The static estimate is within the stated bound of the stepped run, or flagged,
on every row where the last column says "ok".

    python benchmarks/static_estimate.py [--nets 8] [--seed 100] [--profile loihi1]
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np

import neuro_balance as nb
from neuro_balance.errors import StaticEstimateWarning
from neuro_balance.hardware import quantize, simulate
from neuro_balance.hardware.static_check import forward_simulate_bound


def relative(a: np.ndarray, b: np.ndarray, ref: np.ndarray) -> float:
    """``rms(a - b) / rms(ref)``."""
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(ref ** 2)))


def rescaled_net(seed: int) -> tuple[nb.Network, nb.Network, np.ndarray, np.ndarray]:
    """A random net, its badly scaled copy, calibration rows and test rows."""
    rng = np.random.default_rng(seed)
    net = nb.mlp([20, 16, 12, 6], seed=seed)
    bad = nb.scale(net, {name: rng.normal(0.0, 0.5, net.populations[name].size) for name in ("h1", "h2")})
    return net, bad, rng.random((300, 20)), rng.random((200, 20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--nets", type=int, default=8)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--profile", default="loihi1")
    args = parser.parse_args()
    warnings.simplefilter("ignore", nb.hardware.UnverifiedProfileWarning)
    header = (f"{'net':>4} {'variant':<9} {'window':>6} {'static err':>10} {'stepped err':>11} {'gap (test)':>10} "
              f"{'gap (cal)':>9} {'bound':>6} {'flagged':>7}  verdict")
    print(header)
    print("-" * len(header))
    for i in range(args.nets):
        net, bad, cal, x = rescaled_net(args.seed + i)
        ref = net.forward(x)
        balanced = nb.balance(bad, nb.Lp(2)).network
        for variant, candidate in (("rescaled", bad), ("balanced", balanced)):
            for bits in (8, 12):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", StaticEstimateWarning)
                    q = quantize(candidate, args.profile, cal, activation_bits=bits)
                flagged = any(issubclass(w.category, StaticEstimateWarning) for w in caught)
                static, stepped = q.forward(x), simulate(q, x).output
                gap = relative(static, stepped, ref)
                bound = forward_simulate_bound(q)
                verdict = "ok" if gap <= bound or flagged else "MISSED"
                print(f"{args.seed + i:>4} {variant:<9} {q.spec.window:>6} {relative(static, ref, ref):>10.3f} "
                      f"{relative(stepped, ref, ref):>11.3f} {gap:>10.3f} {q.static_check.difference:>9.3f} "
                      f"{bound:>6.2f} {'yes' if flagged else 'no':>7}  {verdict}")


if __name__ == "__main__":
    main()
