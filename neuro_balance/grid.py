"""Run a grid of independent cells in this process or on Dask, and return their records in the grid's order.

A *cell* is one independent run (a model, a chip profile, a bit width, a seed, ...) described by plain,
picklable values; ``fn(shared, cell)`` computes its record from data every cell shares (a network,
a data set), which travels once per worker. Records come back in the order of ``cells`` whatever the
order they finish in, so a grid gives the same report serially and on any cluster. A cell that fails
(an exception, or a worker lost more often than Dask retries) is listed with its reason, the cell's own
exception as ``"Type: message"``; every other cell's record is kept. The shared data is sent to every
worker; if every worker holding it is lost (two workers killed in a row), it is sent again and the cells
that needed it run again.

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


_ATTEMPTS = 4  # runs of one task whose shared data was lost before its cells are listed as failed


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


def _held(client: Any, future: Any) -> bool:
    """Whether some worker still holds a scattered future's data."""
    from concurrent.futures import CancelledError

    try:
        return future.status == "finished" and bool(client.who_has(future).get(future.key))
    except CancelledError:  # forgotten by the scheduler since the status was read
        return False


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
            _run_on_dask(client, fn, shared, cells, chunksize, collect)
    return GridResult(records, [(cells[i], why) for i, why in sorted(failed)])


def _run_on_dask(client: Any, fn: Callable[[Any, Any], Any], shared: Any, cells: list[Any],
                 chunksize: int | None, collect: Callable[[int, tuple[bool, Any]], None]) -> None:
    """Run the cells in chunks on ``client``, sending ``shared`` again whenever every copy of it was lost.

    Scattered data has no task that could recompute it: when the workers holding it die, Dask cancels
    every task that reads it. Such a chunk is resubmitted (up to ``_ATTEMPTS`` runs) after the data is
    scattered again; a chunk that fails otherwise (``KilledWorker``: its workers died while running it)
    lists its cells with that error.
    """
    from concurrent.futures import CancelledError

    from dask.distributed import as_completed

    n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
    size = chunksize or max(1, -(-len(cells) // (8 * n_workers)))
    shared_future = client.scatter([shared], broadcast=True, hash=False)[0]
    chunk_of: dict[str, tuple[int, int]] = {}  # task key -> (first cell, attempt)

    def submit(start: int, attempt: int) -> Any:
        future = client.submit(_run_chunk, fn, shared_future, cells[start:start + size], pure=False,
                               key=f"cells-{start}-{id(cells)}-{attempt}")
        chunk_of[future.key] = start, attempt
        return future

    queue = as_completed([submit(start, 0) for start in range(0, len(cells), size)])
    for future in queue:
        start, attempt = chunk_of.pop(future.key)
        n = len(cells[start:start + size])
        try:
            outcomes = future.result()
        except CancelledError as err:  # the shared data it reads was lost with every worker that held it
            if attempt + 1 < _ATTEMPTS:
                if not _held(client, shared_future):
                    shared_future = client.scatter([shared], broadcast=True, hash=False)[0]
                queue.add(submit(start, attempt + 1))
                continue
            outcomes = [(False, f"lost {_ATTEMPTS} times with the workers holding the shared data "
                                f"({_describe(err)})")] * n
        except Exception as err:  # the task itself failed, e.g. KilledWorker (a worker died running it too often)
            outcomes = [(False, _describe(err))] * n
        for k, outcome in enumerate(outcomes):
            collect(start + k, outcome)
