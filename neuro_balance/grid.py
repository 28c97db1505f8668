"""Run a grid of independent cells in this process or on Dask, and return their records in the grid's order.

A *cell* is one independent run (a model, a chip profile, a bit width, a seed, ...) described by plain,
picklable values; ``fn(shared, cell)`` computes its record from data every cell shares (a network,
a data set), which travels once per worker. Records come back in the order of ``cells`` whatever the
order they finish in, so a grid gives the same report serially and on any cluster. A cell that fails
(an exception, or a worker lost more often than Dask retries) is listed with its reason; every other
cell's record is kept.

``scheduler``:

* ``None``: a plain loop in this process (no Dask needed);
* ``"processes"`` / ``"threads"``: a local ``dask.distributed`` cluster of ``workers`` worker processes
  (one thread each) or of ``workers`` threads in this process, started and closed by the call;
* ``"tcp://host:8786"`` (any scheduler address): an existing cluster;
* a ``dask.distributed.Client``: used as it is (not closed).

Dask is the optional extra ``pip install "neuro-balance[dask]"``, imported only when asked for.

Examples
--------
>>> from neuro_balance.grid import run_grid
>>> run_grid(lambda shared, cell: shared * cell, [1, 2, 3], shared=10).records
[10, 20, 30]
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from .errors import GridError

__all__ = ["GridResult", "run_grid", "connect", "SCHEDULERS"]

SCHEDULERS = ("processes", "threads")
_BAD_SCHEDULER = ("scheduler: expected None, 'processes' or 'threads', a scheduler address such as "
                  "'tcp://host:8786' or a dask.distributed.Client, got {!r}")


@dataclass
class GridResult:
    """Records of a grid, in the order of its cells.

    Attributes
    ----------
    records : list
        One record per cell; None where the cell failed.
    failed : list of (cell, str)
        Each failed cell and why.
    """

    records: list[Any]
    failed: list[tuple[Any, str]] = field(default_factory=list)

    def raise_for_failures(self, what: str = "grid") -> None:
        """Raise `GridError` naming every failed cell (the result stays on the error as ``.result``)."""
        if self.failed:
            lines = "; ".join(f"{cell!r}: {why}" for cell, why in self.failed[:10])
            more = f" (and {len(self.failed) - 10} more)" if len(self.failed) > 10 else ""
            raise GridError(f"{what}: {len(self.failed)} of {len(self.records)} cells failed: {lines}{more}",
                            result=self)


def _describe(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@contextlib.contextmanager
def connect(scheduler: Any, workers: int | None = None) -> Iterator[Any]:
    """A context in which ``scheduler`` is one Dask client, for several grids in a row (None stays None).

    A local cluster (``"processes"`` / ``"threads"``) or a connection to an address is opened once and
    closed on exit; a ``Client`` passed in is yielded as it is and left open.

    Examples
    --------
    >>> with connect(None) as scheduler:
    ...     run_grid(lambda shared, cell: cell + 1, [1, 2], scheduler=scheduler).records
    [2, 3]
    """
    if scheduler is None:
        yield None
        return
    if isinstance(scheduler, str) and scheduler not in SCHEDULERS and "://" not in scheduler:
        raise ValueError(_BAD_SCHEDULER.format(scheduler))  # a wrong word is refused before Dask is needed
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(f"scheduler={scheduler!r} needs Dask: pip install \"neuro-balance[dask]\"") from None
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler in SCHEDULERS:
        n = workers or 2
        cluster = LocalCluster(n_workers=n if scheduler == "processes" else 1,
                               threads_per_worker=1 if scheduler == "processes" else n,
                               processes=scheduler == "processes", dashboard_address=None)
        with cluster, Client(cluster) as client:
            yield client
    elif isinstance(scheduler, str) and "://" in scheduler:
        with Client(scheduler) as client:
            yield client
    else:
        raise ValueError(_BAD_SCHEDULER.format(scheduler))


def _attempt(fn: Callable[[Any, Any], Any], shared: Any, cell: Any) -> tuple[bool, Any]:
    """(True, record) or (False, why) for one cell: a failing cell never takes its neighbours with it."""
    try:
        return True, fn(shared, cell)
    except Exception as err:  # reported with the cell, the grid goes on
        return False, _describe(err)


def _run_chunk(fn: Callable[[Any, Any], Any], shared: Any, chunk: list[Any]) -> list[tuple[bool, Any]]:
    return [_attempt(fn, shared, cell) for cell in chunk]


def run_grid(fn: Callable[[Any, Any], Any], cells: Sequence[Any], shared: Any = None, *, scheduler: Any = None,
             workers: int | None = None, progress: Callable[[int, int, Any], None] | None = None,
             chunksize: int | None = None) -> GridResult:
    """``[fn(shared, cell) for cell in cells]``, serially or on Dask, with failed cells listed, not lost.

    Parameters
    ----------
    fn : callable
        ``fn(shared, cell) -> record``; a module-level function (picklable) for process workers. Every
        random choice inside must come from the cell (its seed), so any scheduler gives the same records.
    cells : sequence
        Plain, picklable descriptions of the runs.
    shared : object
        Data every cell reads; sent once to each worker.
    scheduler : None, "processes", "threads", str address or dask.distributed.Client
        See the module docstring.
    workers : int, optional
        Size of a local cluster (default 2).
    progress : callable, optional
        ``progress(done, total, cell)`` after every finished (or failed) cell.
    chunksize : int, optional
        Cells per Dask task (default: about eight tasks per worker, so that millisecond cells do not drown
        in the scheduler's per-task cost). A lost worker's tasks are rerun on the others.

    Returns
    -------
    GridResult
    """
    cells = list(cells)
    records: list[Any] = [None] * len(cells)
    failed: list[tuple[int, str]] = []
    done = 0

    def collect(i: int, outcome: tuple[bool, Any]) -> None:
        nonlocal done
        ok, value = outcome
        if ok:
            records[i] = value
        else:
            failed.append((i, value))
        done += 1
        if progress is not None:
            progress(done, len(cells), cells[i])

    if scheduler is None:
        for i, cell in enumerate(cells):
            collect(i, _attempt(fn, shared, cell))
    else:
        with connect(scheduler, workers) as client:  # refuses a wrong word before Dask is imported
            from dask.distributed import as_completed

            n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
            size = chunksize or max(1, -(-len(cells) // (8 * n_workers)))
            starts = range(0, len(cells), size)
            shared_future = client.scatter(shared, broadcast=True, hash=False)
            futures = [client.submit(_run_chunk, fn, shared_future, cells[s:s + size], key=f"cells-{s}-{id(cells)}",
                                     pure=False) for s in starts]
            first = {f.key: s for f, s in zip(futures, starts)}
            for future in as_completed(futures):
                s = first[future.key]
                if future.status == "finished":
                    outcomes = future.result()
                else:  # the task itself was lost (a worker died more often than Dask retries)
                    why = _describe(future.exception())
                    outcomes = [(False, why)] * len(cells[s:s + size])
                for k, outcome in enumerate(outcomes):
                    collect(s + k, outcome)
    return GridResult(records, [(cells[i], why) for i, why in sorted(failed)])
