"""Grids of independent runs: records in the grid's order, failed cells listed and the rest kept, on any scheduler.

The serial tests run everywhere; the Dask ones (marker ``dask``) need the ``[dask]`` extra and skip without it.
"""
from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from neuro_balance.errors import GridError
from neuro_balance.grid import run_grid


def _scaled(shared, cell):
    if cell == "bad":
        raise ValueError("cell refuses")
    return shared * cell


def _slow_scaled(shared, cell):
    time.sleep(0.15)
    return shared * cell


def test_serial_grid_keeps_the_order_and_lists_failed_cells():
    seen = []
    res = run_grid(_scaled, [3, "bad", 1, 2], shared=10, progress=lambda done, total, cell: seen.append((done, total, cell)))
    assert res.records == [30, None, 10, 20]
    assert res.failed == [("bad", "ValueError: cell refuses")]
    assert seen == [(1, 4, 3), (2, 4, "bad"), (3, 4, 1), (4, 4, 2)]
    with pytest.raises(GridError, match=r"1 of 4 cells failed: 'bad': ValueError: cell refuses") as info:
        res.raise_for_failures()
    assert info.value.result.records[0] == 30


def test_unknown_scheduler_is_refused_with_the_value():
    with pytest.raises(ValueError, match="scheduler: expected None.*got 'gpu'"):
        run_grid(_scaled, [1], shared=1, scheduler="gpu")


@pytest.fixture(scope="module")
def dask_distributed():
    distributed = pytest.importorskip("dask.distributed")
    cloudpickle = pytest.importorskip("cloudpickle")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the tests folder
    return distributed


@pytest.mark.dask
@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_dask_grid_gives_the_serial_records_in_order(dask_distributed, scheduler):
    cells = [5, "bad", 1, 4, 2, 3]
    serial = run_grid(_scaled, cells, shared=7)
    res = run_grid(_scaled, cells, shared=7, scheduler=scheduler, workers=2)
    assert res.records == serial.records and res.failed == serial.failed


@pytest.mark.dask
def test_a_worker_killed_mid_grid_loses_no_cell(dask_distributed):
    cluster = dask_distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                            dashboard_address=None)
    with cluster, dask_distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        killed = []

        def kill_one(done, total, cell):
            if done == 4 and not killed:
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        res = run_grid(_slow_scaled, list(range(24)), shared=3, scheduler=client, progress=kill_one)
    assert killed
    assert res.failed == [] and res.records == [3 * c for c in range(24)]


@pytest.mark.dask
def test_hardware_evaluation_on_two_worker_processes_equals_the_serial_run(dask_distributed):
    import numpy as np

    import neuro_balance as nb

    rng = np.random.default_rng(0)
    net = nb.mlp([12, 10, 4], seed=1)
    X = rng.normal(size=(60, 12))
    y = rng.integers(0, 4, 60)
    kwargs = dict(profiles=["loihi1", "akida2", "brainscales2", "float64"], bits=(None, 4), seeds=(0, 1))
    messages = []
    serial = nb.hardware.evaluate(net, X, y, **kwargs)
    parallel = nb.hardware.evaluate(net, X, y, scheduler="processes", workers=2, progress=messages.append, **kwargs)
    strip = lambda recs: [{k: v for k, v in r.items() if k != "seconds"} for r in recs]  # noqa: E731
    assert strip(parallel.records) == strip(serial.records)
    assert sorted(messages) == sorted(f"{p} done" for p in kwargs["profiles"])


@pytest.mark.dask
def test_experiments_on_two_worker_processes_equal_the_serial_run(dask_distributed):
    from neuro_balance.learn import experiments

    small = dict(sizes=(4, 5, 3), runs=6)
    assert experiments.run("order_independence", scheduler="processes", workers=2, **small) == \
        experiments.run("order_independence", **small)
    tiny = dict(seeds=(0, 1), fractions=(0.2,), epochs=2, sizes=(64, 6, 10), conditions=("plain", "L1 NB"))
    assert experiments.run("balance_and_learning", scheduler="processes", workers=2, **tiny) == \
        experiments.run("balance_and_learning", **tiny)
