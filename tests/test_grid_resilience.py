"""Dask grids survive the loss of every worker holding the shared data, and name each failure by its real cause.

Scattered data has no task that could recompute it: when both workers of a cluster die, Dask cancels
every task reading it (``future.exception()`` is then None, once reported as ``NoneType: None``). The
grid sends the data again and reruns those cells. Needs the ``[dask]`` extra (marker ``dask``).
"""
from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from neuro_balance.grid import run_grid

pytestmark = pytest.mark.dask


def _scaled(shared, cell):
    time.sleep(0.05)
    if cell == "bad":
        raise ValueError("cell refuses")
    return shared["factor"] * cell


def _dies(shared, cell):
    if cell == "crash":
        os._exit(3)  # takes its worker process with it
    return shared * cell


@pytest.fixture(scope="module")
def distributed():
    distributed = pytest.importorskip("dask.distributed")
    cloudpickle = pytest.importorskip("cloudpickle")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the tests folder
    return distributed


def _cluster(distributed):
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)


def test_both_workers_killed_mid_grid_the_data_is_sent_again_and_no_cell_is_lost(distributed):
    cells = list(range(40)) + ["bad"]
    with _cluster(distributed) as cluster, distributed.Client(cluster) as client:
        pids = sorted(client.run(os.getpid).values())
        killed = []

        def kill_both(done, total, cell):  # every copy of the scattered data dies at once
            if done == 3 and not killed:
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                killed.extend(pids)

        res = run_grid(_scaled, cells, shared={"factor": 3}, scheduler=client, chunksize=2, progress=kill_both)
        assert sorted(client.run(os.getpid).values()) != pids  # the nannies started new workers
    assert len(killed) == 2
    assert res.records == [3 * c for c in range(40)] + [None]
    assert res.failed == [("bad", "ValueError: cell refuses")]  # the cell's own error, not Dask's


def test_a_task_whose_worker_dies_is_reported_as_killed_not_as_none(distributed):
    import dask

    # One cell: any other task on the dying worker would count as suspicious too (allowed-failures = 0).
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with _cluster(distributed) as cluster, distributed.Client(cluster) as client:
            res = run_grid(_dies, ["crash"], shared=5, scheduler=client)
            assert run_grid(_dies, [1, 2], shared=5, scheduler=client).records == [5, 10]  # the cluster recovered
    assert res.records == [None]
    [(cell, why)] = res.failed
    assert cell == "crash" and why.startswith("KilledWorker: ") and "None" not in why
