"""Serial vs Dask: the hardware evaluation grid of one shipped model, and the ratio of wall times.

The grid is `nb.hardware.evaluate` of ``models/digits_mlp.yaml`` on the digits test set over every
bundled profile x 4 weight widths x 3 seeds x the default variants, run once in this process
(``scheduler=None``) and once on a local Dask cluster of ``--workers`` worker processes (one thread
each; the cluster's start-up is timed too, and reported apart). Both runs must give the same records
(checked). On a 2-core machine expect at most 2x: the cells are CPU-bound numpy, and the network,
data and profiles are sent to each worker once.

Run: ``python benchmarks/grid_speed.py`` (needs the ``[dask]`` extra; ``--workers``, ``--model``).
"""
from __future__ import annotations

import argparse
import time
import warnings

import neuro_balance as nb
from neuro_balance.resources import resource_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default=str(resource_dir("models") / "digits_mlp.yaml"))
    parser.add_argument("--stepped", action="store_true",
                        help="also run every cell's stepped simulation (heavier cells, where workers pay off)")
    args = parser.parse_args()
    from dask.distributed import Client, LocalCluster

    net = nb.load_model(args.model)
    data = nb.datasets.digits()
    kwargs = dict(bits=(None, 2, 4, 8), seeds=(0, 1, 2), calibration=data.X_train, stepped=args.stepped)
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    serial = nb.hardware.evaluate(net, data.X_test, data.y_test, **kwargs)
    t_serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        t_start = time.perf_counter() - t0
        t1 = time.perf_counter()
        parallel = nb.hardware.evaluate(net, data.X_test, data.y_test, scheduler=client, **kwargs)
        t_grid = time.perf_counter() - t1
    strip = lambda recs: [{k: v for k, v in r.items() if k != "seconds"} for r in recs]  # noqa: E731
    same = strip(serial.records) == strip(parallel.records)
    cells = len(serial.records)
    busy = sum(r["seconds"] for r in serial.records)
    print(f"{args.model}: {len(serial.profiles)} profiles x {len(serial.bits)} widths x 3 seeds x "
          f"{len(serial.variants)} variants = {cells} cells{' (stepped too)' if args.stepped else ''}; "
          f"records identical: {same}")
    print(f"{'run':44s} {'s':>8s} {'x serial':>9s}")
    print(f"{'serial (scheduler=None)':44s} {t_serial:8.2f} {1.0:9.2f}")
    print(f"{'of which inside cells':44s} {busy:8.2f} {busy / t_serial:9.2f}")
    print(f"{f'{args.workers} local worker processes: cluster start':44s} {t_start:8.2f} {t_start / t_serial:9.2f}")
    print(f"{f'{args.workers} local worker processes: the grid':44s} {t_grid:8.2f} {t_grid / t_serial:9.2f}")
    print(f"speed-up of the grid: {t_serial / t_grid:.2f}x (with cluster start: {t_serial / (t_grid + t_start):.2f}x)")


if __name__ == "__main__":
    main()
