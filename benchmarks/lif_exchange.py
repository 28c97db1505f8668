"""The rate exchange on leaky integrate-and-fire neurons with refractoriness: measured against the theory.

Balancing multiplies a unit's incoming weights by lam and divides its outgoing ones by lam. That keeps
a non-leaky integrate-and-fire network's function exactly (its rate is homogeneous: r(lam mu) = lam r(mu)).
For a LIF with refractoriness it does not. This script measures the output-rate change
``r(lam w) / (lam r(w))`` of LIF neurons driven by 100 Poisson inputs (weight 0.5 mV each) in Brian2,
against lam, the input rate nu and the membrane time constant tau (threshold 16 mV and reset 5 mV above
rest, 2 ms dead time), next to

* the high-rate linear-regime prediction ``r_lin(mu) = 1 / (t_ref + tau D / (mu - m))`` with
  ``D = theta - rho``, ``m = (theta + rho) / 2`` and the mean drive ``mu = tau K w nu``
  (derivation in neuro_balance/sim/lif.py), and
* the exact rate of a LIF under the constant drive mu (no fluctuations).

1.000 would mean the exchange is exact. Rows where ``min(mu, lam mu) < 2.5 theta`` are outside the
high-rate regime (marked ``*``); there the fluctuations of the Poisson input dominate and no mean-drive
formula applies; a dash marks a ratio undefined because a rate is 0. Prints a Markdown table.

    python benchmarks/lif_exchange.py [--neurons 16] [--duration 4] [--seed 0]
"""
import argparse
import time

import numpy as np

from neuro_balance.sim.lif import exchange_ratio, lif_rate, measure_exchange

THETA, RHO, T_REF = 16e-3, 5e-3, 2e-3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=16, help="independent neurons per condition")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds simulated")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import brian2
    start = time.perf_counter()
    m = measure_exchange([5e-3, 10e-3, 20e-3], [20, 40, 80, 160], [0.5, 0.8, 1.25, 2.0], neurons=args.neurons,
                         duration=args.duration, seed=args.seed, theta=THETA, rho=RHO, t_ref=T_REF)
    print(f"Brian2 {brian2.__version__}, numpy target, dt = 0.1 ms, {args.neurons} neurons x {args.duration:g} s "
          f"per condition, seed {args.seed}; {time.perf_counter() - start:.0f} s\n")
    print("| tau (ms) | nu (Hz) | mu / theta | lam | r before (Hz) | r after (Hz) | measured r(lam w) / (lam r(w)) "
          "| linear regime | exact, constant drive |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in range(len(m.lam)):
        lam, mu, tau = m.lam[k], m.mu[k], m.tau[k]
        pred = float(exchange_ratio(lam, mu, tau, THETA, RHO, T_REF))
        with np.errstate(divide="ignore", invalid="ignore"):
            exact = float(lif_rate(lam * mu, tau, THETA, RHO, T_REF) / (lam * lif_rate(mu, tau, THETA, RHO, T_REF)))
        mark = "" if min(mu, lam * mu) >= 2.5 * THETA else " *"
        measured = (f"{m.ratio[k]:.3f} ± {m.error[k]:.3f}" if m.before[k] > 0 and m.after[k] > 0 else "–")
        print(f"| {tau * 1e3:g} | {m.input_rate[k]:g} | {mu / THETA:.2f}{mark} | {lam:g} | {m.before[k]:.1f} | "
              f"{m.after[k]:.1f} | {measured} | {_fmt(pred)} | {_fmt(exact)} |")


def _fmt(x: float) -> str:
    return f"{x:.3f}" if np.isfinite(x) and x > 0 else "–"


if __name__ == "__main__":
    main()
