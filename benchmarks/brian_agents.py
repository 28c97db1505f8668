"""Cost of the Brian2 balancing agents against the numpy sweep of the same network, per target.

For a [N]*5 ReLU MLP (3 hidden layers, 4 weight matrices; N = 158: 99,856 synapses, N = 500:
1,000,000 synapses), L2 cost, dt = 0.1 ms, each target in its own process:

* numpy sweep: one layer-synchronous sweep over every hidden unit (p = 2 fast path, in place),
  best of 5, measured inside the same process as the Brian2 numbers it divides;
* per event: (wall time balancing at 1 kHz per unit - wall time with the agents idle) / events;
* per simulated second: wall time of one simulated second balancing at 100 Hz per unit;
* agents' overhead: a spiking network (integrate-and-fire, constant-current input) with idle agents
  (rate 0: no balance event fires) over the same spiking network built without agents, with the
  agents' clock ticking every step (``balance_every=1``) or every 10 steps (``balance_every=10``).

Runtime targets: every configuration is warmed up, then timed in 5 interleaved rounds (best of 5);
cpp_standalone: the binary's run time for 1 s simulated, one build per configuration.

Ratios: "event x N_hidden / sweep" is the Brian2 work worth one sweep over the numpy sweep;
"sim s / sweep" is one simulated second at 100 Hz over the numpy sweep.

Run: ``python benchmarks/brian_agents.py [--sizes 158 500] [--targets numpy cython cpp_standalone]``.
Budget ~20-40 s per cpp_standalone build (6 builds per size) and ~1-3 min for a cold Cython cache.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from timing import best_time

RATE = 100.0  # balance events per unit per second


def sweep_time(net) -> float:
    """Best-of-5 wall time of one numpy layer-synchronous L2 sweep over all hidden units."""
    Ws = [p.weight.copy() for p in net.projections]
    bs = [pop.bias.copy() for pop in net.populations.values() if pop.role == "hidden"]

    def sweep():
        for layer in range(len(bs)):
            W_in, W_out, b = Ws[layer], Ws[layer + 1], bs[layer]
            A = np.einsum("ij,ij->i", W_in, W_in) + b * b
            B = np.einsum("ij,ij->j", W_out, W_out)
            lam = np.sqrt(np.sqrt(B / A))
            W_in *= lam[:, None]
            b *= lam
            W_out /= lam[None, :]

    sweep()  # warm-up
    return best_time(sweep, 5)[0]


def standalone_time(make, duration: float) -> tuple[float, int]:
    """cpp_standalone: the binary's run time for ``duration`` simulated (includes writing results)."""
    bn = make()
    bn.run(duration)
    bn.network  # builds, runs and reads the results
    return bn.standalone_run_time, (len(bn.events) if bn.agents else 0)


def runtime_times(makers: dict, durations: dict, rounds: int = 5) -> dict[str, tuple[float, int]]:
    """Runtime targets: each configuration warmed up, then timed in interleaved rounds (best of ``rounds``).

    Interleaving spreads the load of a shared machine evenly over the configurations.
    """
    nets = {key: make() for key, make in makers.items()}
    for bn in nets.values():
        bn.run(0.002)  # code generation / compilation and first-run costs stay out of the timing
    best = {key: (np.inf, 0) for key in nets}
    for _ in range(rounds):
        for key, bn in nets.items():
            n0 = len(bn.events) if bn.agents else 0
            t0 = time.perf_counter()
            bn.run(durations[key])
            wall = time.perf_counter() - t0
            n = (len(bn.events) - n0) if bn.agents else 0
            if wall < best[key][0]:
                best[key] = (wall, n)
    return best


def worker(target: str, n: int) -> dict:
    import neuro_balance as nb
    from neuro_balance.sim import BalancingNetwork

    net = nb.mlp([n] * 5, seed=0)
    cost = nb.Lp(2)
    hidden = sum(p.size for p in net.populations.values() if p.role == "hidden")
    synapses = sum(p.weight.size for p in net.projections)
    sweep = sweep_time(net)
    x = np.random.default_rng(0).uniform(0.0, 1.0, n)

    def balancing(rate):
        return lambda: BalancingNetwork(net, cost, rate=rate, target=target, monitor_dt=None)

    def spiking(agents, every=1):
        def make():
            bn = BalancingNetwork(net, cost, rate=0.0, spiking=True, target=target, monitor_dt=None,
                                  input_rate=100.0, balancing=agents, balance_every=every)
            bn.set_input(x, _check=False)
            return bn
        return make

    # per event: a dense run (1 kHz per unit) against the idle agents, so event work dominates
    makers = {"dense": balancing(1000.0), "rate": balancing(RATE), "idle": balancing(0.0),
              "spiking_agents": spiking(True), "spiking_agents10": spiking(True, 10), "spiking": spiking(False)}
    if target == "cpp_standalone":
        durations = dict.fromkeys(makers, 1.0)
        times = {key: standalone_time(make, durations[key]) for key, make in makers.items()}
    else:
        durations = {key: (0.02 if key == "dense" else 0.05) for key in makers}
        times = runtime_times(makers, durations)
    per_s = {key: times[key][0] / durations[key] for key in makers}
    events = times["dense"][1]
    per_event = max(per_s["dense"] - per_s["idle"], 0.0) * durations["dense"] / max(events, 1)
    return {"target": target, "n": n, "synapses": synapses, "hidden": hidden, "sweep": sweep, "events": events,
            "per_event": per_event, "per_sim_second": per_s["rate"], "idle_per_sim_second": per_s["idle"],
            "spiking_with_idle_agents": per_s["spiking_agents"], "spiking_with_idle_agents10": per_s["spiking_agents10"],
            "spiking_without_agents": per_s["spiking"]}


def table(rows: list[dict]) -> str:
    head = ("| target | synapses | numpy sweep | per event | event x N_hidden / sweep | wall per sim s (100 Hz) "
            "| sim s / sweep | idle per sim s | spiking, no agents, per sim s | idle agents / no agents: every step "
            "| every 10 steps |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        lines.append(
            f"| {r['target']} | {r['synapses']:,} | {r['sweep'] * 1e3:.3f} ms | {r['per_event'] * 1e6:.2f} us "
            f"| {r['per_event'] * r['hidden'] / r['sweep']:.1f} | {r['per_sim_second']:.3f} s "
            f"| {r['per_sim_second'] / r['sweep']:.0f} | {r['idle_per_sim_second']:.3f} s "
            f"| {r['spiking_without_agents']:.3f} s | {r['spiking_with_idle_agents'] / r['spiking_without_agents']:.2f} "
            f"| {r['spiking_with_idle_agents10'] / r['spiking_without_agents']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[158, 500])
    parser.add_argument("--targets", nargs="+", default=["numpy", "cython", "cpp_standalone"])
    parser.add_argument("--worker", nargs=2, metavar=("TARGET", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]))))
        return
    rows = []
    for target in args.targets:
        for n in args.sizes:
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--worker", target, str(n)], capture_output=True,
                                 text=True)
            if out.returncode != 0:
                print(f"{target} N={n}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{target} N={n}: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
