"""Where a cpp_standalone build of the Brian2 agents spends its time, and what the per-shape build cache saves.

Each row builds and runs one `BalancingNetwork` on cpp_standalone (0.02 s simulated) and reports Brian2's
code generation (wall s), ``make`` (wall s, and CPU s of the compiler processes: on a shared machine the
CPU time is the load-independent number), the number of object files compiled, and the binary's run:

* ``fresh directory``: a new temporary build directory (what every network did before the cache);
* ``cached, first of its shape``: the per-shape cache directory, empty;
* ``cached, same shape, new weights``: another network of that shape (other weights and seed);
* ``cached, same shape, other rate``: other balance rate and input coding values (parameters only);
* ``cached, other shape``: a network with one more hidden population (a new cache entry).

The cache lives in a fresh temporary ``$NEURO_BALANCE_CACHE`` unless ``--cache`` names one. Compiler
flags: Brian2's defaults (``-O3 -march=native ...``), or the tests' ``-O0`` with ``--test-flags``.

    python benchmarks/standalone_build.py [--spiking] [--test-flags] [--cache DIR]
"""
import argparse
import os
import tempfile
import time
from pathlib import Path


def compiled_objects(directory: str, since: float) -> int:
    """Object files (re)written since ``since`` in a build directory."""
    return sum(1 for p in Path(directory).rglob("*.o") if p.stat().st_mtime >= since)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spiking", action="store_true", help="spiking networks (more objects)")
    parser.add_argument("--test-flags", action="store_true", help="compile at the tests' -O0 flags")
    parser.add_argument("--cache", help="cache directory (default: a fresh temporary one)")
    args = parser.parse_args()
    os.environ["NEURO_BALANCE_CACHE"] = args.cache or tempfile.mkdtemp(prefix="nb_cache_")
    import brian2
    import numpy as np

    import neuro_balance as nb
    from neuro_balance.sim import BalancingNetwork
    if args.test_flags:
        import sys
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from brian_flags import COMPILE_ARGS
        brian2.prefs.codegen.cpp.extra_compile_args_gcc = list(COMPILE_ARGS)
    rows = [("fresh directory", [6, 5, 4, 3], 1, 500.0, True),
            ("cached, first of its shape", [6, 5, 4, 3], 1, 500.0, False),
            ("cached, same shape, new weights", [6, 5, 4, 3], 2, 500.0, False),
            ("cached, same shape, other rate", [6, 5, 4, 3], 3, 800.0, False),
            ("cached, other shape", [6, 5, 5, 4, 3], 1, 500.0, False)]
    print(f"Brian2 {brian2.__version__}, flags {brian2.prefs.codegen.cpp.extra_compile_args_gcc}, "
          f"{'spiking' if args.spiking else 'balancing only'}, {os.cpu_count()} cores\n")
    print("| build | generate (s) | make (s) | make CPU (s) | objects compiled | run (s) | events |")
    print("|---|---|---|---|---|---|---|")
    for label, sizes, seed, rate, fresh in rows:
        net = nb.mlp(sizes, seed=seed)
        directory = tempfile.mkdtemp(prefix="nb_fresh_") if fresh else None
        bn = BalancingNetwork(net, nb.Lp(2), rate=rate, target="cpp_standalone", monitor_dt=None, seed=seed,
                              spiking=args.spiking, input_rate=300.0, directory=directory)
        if args.spiking:
            bn.set_input(np.linspace(0.2, 1.0, sizes[0]))
        bn.run(0.02)
        start = time.time()
        events = len(bn.events)  # builds and runs the binary
        t = bn.target.timings
        print(f"| {label} | {t['generate']:.1f} | {t['make']:.1f} | {t['make_cpu']:.1f} | "
              f"{compiled_objects(bn.target.directory, start)} | {t['run']:.2f} | {events} |", flush=True)
        bn.close()


if __name__ == "__main__":
    main()
