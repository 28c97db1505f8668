"""Homeostasis: synapses drift like plasticity while the agents keep rebalancing. How fast must they be?

Every synapse carries a multiplicative Ornstein-Uhlenbeck drift, ``w = w_base * exp(xi)`` with ``xi``
an OU process (correlation time ``tau``, stationary standard deviation ``sigma``), simulated in
Brian2's equations next to the agents; the agents rescale ``w_base`` on their own Poisson clocks at
rate ``r``. The network starts balanced with the drift in its stationary state. The figure shows the
steady-state imbalance ``rms log(A / B)`` over units and time, as a phase diagram over the drift rate
``1 / tau`` and the agents' event rate ``r``, and collapsed onto ``r tau``, with the prediction below.

Prediction (L2 cost without biases, small sigma; derivation in `neuro_balance.sim.drift`): right
after unit j balances, ``A_j = B_j``; ``m`` drift steps later ``log(A_j / B_j)`` has variance
``8 sigma^2 q_j (1 - a^m)`` with ``a = exp(-dt / tau)`` and ``q_j = sum w^4 / A^2 + sum w^4 / B^2``
(one over the effective number of synapses per side). Averaged over the age of the unit's last
event::

    rms log(A / B) = sigma sqrt(8 q (1 - E[a^M]))

with ``M`` the measured number of drift steps since each unit's last event, at each sample. In
continuous time with Poisson events at rate ``r`` this is ``sigma sqrt(8 q / (1 + r tau))`` (dashed
in the figure): only ``r tau`` matters, an agent must balance about once per correlation time of the
drift to halve the imbalance the drift alone causes. The simulation and the drift run at a step of dt = 2 ms, where the continuous
form lies 10-25 % above the data at high rates; the age form accounts for the step (and for the
delays of lost conflicts) and is the one printed and drawn. Writes homeostasis_drift.png.

    python demos/homeostasis_drift.py --out demo_output [--quick]
"""
import argparse
import time
from pathlib import Path

import numpy as np

import neuro_balance as nb
from neuro_balance.sim import BalancingNetwork, Drift
from neuro_balance.sim.drift import continuous_rms, event_ages, participation, predicted_rms

SIGMA = 0.1
DT = 2e-3  # s: simulation and drift step (stated in the figure; the prediction accounts for it)


def log_imbalance(net, weights: dict) -> np.ndarray:
    """``log(A_j / B_j)`` of every hidden unit at every sample (L2 without biases), ``(n_samples, n_units)``."""
    ws = [weights[p.name] for p in net.projections]
    logs = [np.log((ws[k] ** 2).sum(axis=2) / (ws[k + 1] ** 2).sum(axis=1)) for k in range(len(ws) - 1)]
    return np.concatenate(logs, axis=1)


def simulate(net, cost, tau: float, rate: float, duration: float, seed: int) -> tuple[float, float, float]:
    """Steady-state ``rms log(A / B)``, the agents' measured event rate per unit, and the prediction."""
    with BalancingNetwork(net, cost, rate=rate, dt=DT, monitor_dt=None, drift=Drift(SIGMA, tau, DT),
                          weight_dt=5 * DT, seed=seed) as bn:
        bn.run(duration)
        hist = bn.weight_history
        units = sum(net.populations[n].size for n in bn.agents)
        events = bn.events
    warm = hist["t"] >= min(3 * tau, 3 / rate if rate > 0 else np.inf, duration / 4)
    logs = log_imbalance(net, hist["weights"])[warm]
    sizes = {n: net.populations[n].size for n in events.order}
    ages = event_ages(events, sizes, np.rint(hist["t"][warm] / DT).astype(np.int64))
    predicted = predicted_rms(SIGMA, participation(net), ages, DT, tau)
    return float(np.sqrt(np.mean(logs ** 2))), len(events) / (units * duration), predicted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_output", help="output directory")
    parser.add_argument("--quick", action="store_true", help="a 2 x 3 grid of short runs")
    args = parser.parse_args()
    cost = nb.Lp(2).without_bias()
    net = nb.balance(nb.mlp([16, 24, 24, 8], seed=0), cost, method="global", tol=1e-12).network
    q = participation(net)
    drift_rates = [2.0, 20.0] if args.quick else [2.0, 6.0, 20.0, 60.0]    # 1 / tau (Hz)
    agent_rates = [3.0, 30.0, 200.0] if args.quick else [3.0, 10.0, 30.0, 100.0, 200.0]
    duration = 0.6 if args.quick else 2.0
    start = time.perf_counter()
    grid = np.zeros((len(drift_rates), len(agent_rates)))
    r_eff, pred = np.zeros_like(grid), np.zeros_like(grid)
    for a, drift_rate in enumerate(drift_rates):
        for b, rate in enumerate(agent_rates):
            grid[a, b], r_eff[a, b], pred[a, b] = simulate(net, cost, 1.0 / drift_rate, rate, duration, seed=10 * a + b)
            print(f"1/tau = {drift_rate:5.1f} Hz, r = {r_eff[a, b]:6.1f} Hz (asked {rate:g}): "
                  f"rms log(A/B) = {grid[a, b]:.4f}, predicted {pred[a, b]:.4f} (ratio {grid[a, b] / pred[a, b]:.3f}; "
                  f"continuous-time form {continuous_rms(SIGMA, q, r_eff[a, b] / drift_rate):.4f})")
    print(f"{grid.size} runs at dt = {DT * 1e3:g} ms in {time.perf_counter() - start:.0f} s; "
          f"no agents: predicted {continuous_rms(SIGMA, q, 0.0):.4f}")
    path = plot(grid, r_eff, pred, drift_rates, q, Path(args.out) / "homeostasis_drift.png")
    print("wrote", path)


def plot(grid, r_eff, pred, drift_rates, q: float, path: Path) -> Path:
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    from neuro_balance.model.files import atomic_output
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    r_mean = r_eff.mean(axis=0)
    norm = LogNorm(vmin=grid.min(), vmax=float(continuous_rms(SIGMA, q, 0.0)))
    mesh = ax.pcolormesh(np.arange(len(r_mean) + 1), np.arange(len(drift_rates) + 1), grid, norm=norm,
                         cmap="viridis", shading="flat")
    for a in range(grid.shape[0]):
        for b in range(grid.shape[1]):
            ax.text(b + 0.5, a + 0.5, f"{grid[a, b]:.3f}\n({pred[a, b]:.3f})",
                    ha="center", va="center", fontsize=7,
                    color="k" if grid[a, b] > np.sqrt(norm.vmin * norm.vmax) else "w")
    ax.set_xticks(np.arange(len(r_mean)) + 0.5, [f"{r:.0f}" for r in r_mean])
    ax.set_yticks(np.arange(len(drift_rates)) + 0.5, [f"{d:g}" for d in drift_rates])
    ax.set_xlabel("agents' event rate r per unit (Hz, measured)")
    ax.set_ylabel("drift rate 1/tau (Hz)")
    ax.set_title("steady-state rms log(A/B)  (prediction)")
    fig.colorbar(mesh, ax=ax, label="rms log(A/B)")
    x = r_eff / np.asarray(drift_rates)[:, None]
    for a, d in enumerate(drift_rates):
        line, = bx.loglog(x[a], grid[a], "o", label=f"1/tau = {d:g} Hz")
        bx.loglog(x[a], pred[a], "x", color=line.get_color(), ms=8)
    xs = np.logspace(np.log10(x.min()) - 0.3, np.log10(x.max()) + 0.3, 100)
    bx.loglog(xs, continuous_rms(SIGMA, q, xs), "k--", lw=1, label="continuous time: sigma sqrt(8 q / (1 + r tau))")
    bx.loglog([], [], "kx", label=f"prediction at dt = {DT * 1e3:g} ms (measured event ages)")
    bx.axhline(float(continuous_rms(SIGMA, q, 0.0)), color="k", ls=":", lw=1, label="no agents (drift alone)")
    bx.set_xlabel("r tau (agent events per drift correlation time)")
    bx.set_ylabel("rms log(A/B)")
    bx.set_title(f"collapse onto r tau (sigma = {SIGMA}, q = {q:.3f})")
    bx.legend(fontsize=8)
    fig.suptitle("Local balancing against multiplicative OU drift of every synapse "
                 f"(Brian2, dt = {DT * 1e3:g} ms, L2, 16-24-24-8 MLP)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return path


if __name__ == "__main__":
    main()
