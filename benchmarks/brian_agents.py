"""Marginal costs of the Brian2 balancing agents, per target, size and schedule.

Network: a [N]*5 ReLU MLP (3 hidden populations, 4 weight matrices, 4 N^2 synapses: N = 16, 50, 158,
500 give 1e3, 1e4, 1e5, 1e6), L2 cost, dt = 0.1 ms. Every cost is marginal: each configuration runs
two lengths T1 < T2 and the difference of their CPU times is divided by T2 - T1, so per-run setup
(~0.1-0.2 s per ``run()`` on the runtime targets; process start and file I/O on cpp_standalone)
cancels. CPU time, not wall time: on a shared machine other processes' load changes wall times by
several times, CPU time much less (all targets here run single-threaded). Runtime targets: a
warm-up run first, then the two lengths (50 and 300 ms: a run() call's own setup, ~0.1-0.7 s and noisy, must
stay well below the difference), best of 3 rounds that interleave all configurations, CPU time of this process.
cpp_standalone: one binary per length (the CPU time of the binary, best of 3 runs of it), each configuration in
its own build directory so the second length and the next size recompile only what changed.

Columns:

* idle overhead: marginal CPU time of a spiking network (integrate-and-fire, constant-current
  input at 100 Hz per unit of activity) whose agents are idle (rate 0), over the same spiking network
  built without agents; with the agents' clock every step and every 10 steps (``balance_every``);
* us per event: (marginal CPU per simulated second balancing at 1 kHz per unit - the same idle)
  / events per simulated second, for the local schedule and the colour schedule;
* events and wall to 1e-10: the simulated time until the exact max relative imbalance (the numpy
  replay of the recorded events, checked every 0.5 ms) first falls below 1e-10, at 1 kHz per unit;
  events up to then (target-independent: the same seed draws the same events on every target),
  and that time times the target's marginal CPU time per simulated second.

Run: ``python benchmarks/brian_agents.py [--sizes 16 50 158 500] [--targets numpy cython cpp_standalone]``.
Every (target, size) runs in its own process. A cold Cython cache compiles for several minutes.
``--idle-only`` times only the three spiking configurations (the idle overhead columns; the others print
as ``-``), and runs the numpy rows only when ``--targets`` names numpy: on cpp_standalone that is three
builds instead of seven.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

RATE = 1000.0  # balance events per unit per second (Hz) when balancing
TOL = 1e-10
SCHEDULES = ("local", "colour")


def configurations(net, cost, target: str, x: np.ndarray, directory, idle_only: bool = False) -> dict:
    """Factories of every BalancingNetwork the worker times, by key (``idle_only``: the spiking ones)."""
    from neuro_balance.sim import BalancingNetwork

    def agents(schedule, rate):
        return lambda: BalancingNetwork(net, cost, rate=rate, target=target, schedule=schedule, monitor_dt=None,
                                        directory=directory(f"{schedule}_{rate:g}"))

    def spiking(balancing, every=1):
        def make():
            bn = BalancingNetwork(net, cost, rate=0.0, spiking=True, target=target, monitor_dt=None,
                                  input_rate=100.0, balancing=balancing, balance_every=every, record_spikes=False,
                                  directory=directory(f"spiking_{balancing}_{every}"))
            bn.set_input(x)
            return bn
        return make

    makers = {"spiking": spiking(False), "spiking_idle": spiking(True), "spiking_idle10": spiking(True, 10)}
    if idle_only:
        return makers
    for schedule in SCHEDULES:
        makers[f"idle_{schedule}"] = agents(schedule, 0.0)
        makers[f"dense_{schedule}"] = agents(schedule, RATE)
    return makers


def children_cpu() -> float:
    """CPU seconds used so far by this process's finished child processes (the binaries)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_standalone(make, lengths, rounds: int = 3) -> list[tuple[float, int]]:
    """(CPU seconds of the binary, best of ``rounds`` runs of it, events) of one binary per length."""
    out = []
    for length in lengths:
        bn = make()
        bn.run(length)
        bn.results()  # builds and runs the binary
        best = bn.target.run_cpu_time
        with bn.target.active():
            for _ in range(rounds - 1):  # the same binary again: the same events, another sample of its CPU time
                cpu = children_cpu()
                bn.target.device.run(directory=bn.target.directory, with_output=False, run_args=[])
                best = min(best, children_cpu() - cpu)
        out.append((best, len(bn.events) if bn.agents else 0))
        bn.close()
    return out


def timed_runtime(makers: dict, lengths, rounds: int = 3) -> dict:
    """(CPU seconds, events) per configuration and length, best of ``rounds``.

    Every configuration is built and warmed up first, then the rounds interleave them (each round runs
    every configuration at every length), so a change of load on a shared machine hits all alike.
    """
    nets = {}
    for key, make in makers.items():
        nets[key] = make()
        nets[key].run(0.002)  # code generation and first-run costs stay out of the timing
    best = {}
    for _ in range(rounds):
        for key, bn in nets.items():
            for length in lengths:
                n0 = len(bn.events) if bn.agents else 0
                t0 = time.process_time()
                bn.run(length)
                cpu = time.process_time() - t0
                n = (len(bn.events) - n0) if bn.agents else 0
                best[key, length] = min(best.get((key, length), (np.inf, 0)), (cpu, n))
    for bn in nets.values():
        bn.close()
    return {key: [best[key, length] for length in lengths] for key in makers}


def convergence(net, cost, schedule: str) -> tuple[float, int]:
    """Simulated time and events until the exact imbalance first falls below TOL (numpy target)."""
    from neuro_balance.sim import BalancingNetwork, replay
    bn = BalancingNetwork(net, cost, rate=RATE, schedule=schedule, monitor_dt=None)
    bn.run(0.12)
    ev = bn.events
    rep = replay(net, cost, ev, record_every=5)
    below = np.flatnonzero(rep.imbalance <= TOL)
    if not len(below):
        return float("nan"), -1
    step = rep.steps[below[0]]
    return step * bn.dt, int(np.sum(ev.step < step))


def worker(target: str, n: int, idle_only: bool = False, lengths=None) -> dict:
    import neuro_balance as nb
    net, cost = nb.mlp([n] * 5, seed=0), nb.Lp(2)
    x = np.random.default_rng(0).uniform(0.0, 1.0, n)
    root = tempfile.mkdtemp(prefix="nb_bench_")
    makers = configurations(net, cost, target, x, lambda key: f"{root}/{key}" if target == "cpp_standalone" else None,
                            idle_only)
    lengths = lengths or ((0.2, 1.2) if target == "cpp_standalone" else (0.05, 0.3))
    if target == "cpp_standalone":
        timings = {key: timed_standalone(make, lengths) for key, make in makers.items()}
    else:
        timings = timed_runtime(makers, lengths)
    marginal, events = {}, {}
    for key, ((w1, e1), (w2, e2)) in timings.items():
        marginal[key] = (w2 - w1) / (lengths[1] - lengths[0])
        events[key] = (e2 - e1) / (lengths[1] - lengths[0])
    row = {"target": target, "n": n, "synapses": sum(p.weight.size for p in net.projections),
           "idle_ratio": marginal["spiking_idle"] / marginal["spiking"],
           "idle_ratio10": marginal["spiking_idle10"] / marginal["spiking"], "spiking": marginal["spiking"]}
    for s in SCHEDULES if not idle_only else ():
        row[f"per_event_{s}"] = (marginal[f"dense_{s}"] - marginal[f"idle_{s}"]) / max(events[f"dense_{s}"], 1)
        row[f"wall_per_sim_s_{s}"] = marginal[f"dense_{s}"]
        if target == "numpy":
            row[f"t_conv_{s}"], row[f"events_conv_{s}"] = convergence(net, cost, s)
    return row


def table(rows: list[dict], targets) -> str:
    """The markdown table of ``targets``' rows; convergence comes from the numpy rows (target-independent)."""
    conv = {(r["n"], s): (r[f"t_conv_{s}"], r[f"events_conv_{s}"]) for r in rows for s in SCHEDULES
            if f"t_conv_{s}" in r}
    rows = [r for r in rows if r["target"] in targets]

    def num(r, key, scale=1.0, fmt=".2f"):
        return format(r[key] * scale, fmt) if key in r else "-"

    head = ("| target | synapses | spiking, no agents (wall per sim s) | idle overhead: every step | every 10 steps "
            "| us per event: local | colour | events to 1e-10: local | colour | wall to 1e-10: local | colour |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        cells = []
        for s in SCHEDULES:
            t_conv, ev = conv.get((r["n"], s), (float("nan"), -1))
            wall = t_conv * r[f"wall_per_sim_s_{s}"] if f"wall_per_sim_s_{s}" in r else float("nan")
            cells.append((ev, wall, t_conv))
        lines.append(
            f"| {r['target']} | {r['synapses']:,} | {r['spiking']:.3f} s | {r['idle_ratio']:.2f} "
            f"| {r['idle_ratio10']:.2f} | {num(r, 'per_event_local', 1e6)} | {num(r, 'per_event_colour', 1e6)} "
            f"| {cells[0][0]:,} ({cells[0][2] * 1e3:.1f} ms) | {cells[1][0]:,} ({cells[1][2] * 1e3:.1f} ms) "
            f"| {cells[0][1]:.3f} s | {cells[1][1]:.3f} s |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 50, 158, 500])
    parser.add_argument("--targets", nargs="+", default=["numpy", "cython", "cpp_standalone"])
    parser.add_argument("--idle-only", action="store_true", help="only the idle overhead columns")
    parser.add_argument("--lengths", type=float, nargs=2, metavar=("T1", "T2"),
                        help="the two simulated lengths (s) of the marginal costs (default 0.2 1.2 on cpp_standalone, "
                             "0.05 0.3 on the runtime targets); longer ones resolve small networks' costs")
    parser.add_argument("--out", help="also write the rows as JSON here")
    parser.add_argument("--worker", nargs=2, metavar=("TARGET", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.idle_only, args.lengths)))
        return
    rows = []
    first = [] if args.idle_only and "numpy" not in args.targets else ["numpy"]  # numpy measures convergence
    for target in first + [t for t in args.targets if t != "numpy"]:
        for n in args.sizes:
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--worker", target, str(n)]
                                 + (["--idle-only"] if args.idle_only else [])
                                 + (["--lengths", *map(str, args.lengths)] if args.lengths else []),
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{target} N={n}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{target} N={n}: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    print(table(rows, args.targets))
    if args.out:
        from neuro_balance.model.files import atomic_write_text
        atomic_write_text(args.out, json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
