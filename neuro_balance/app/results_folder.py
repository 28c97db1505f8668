"""A results folder written whole: checked and locked before any work, built beside its place, renamed in at the end.

`results_folder` is how the main job writes ``--out``: an existing folder that holds anything is refused
unless ``replace`` is given and it holds an earlier run's report (then it is replaced whole, never merged;
any other folder, such as the current one or a home folder, is never replaced); a file is refused; ``DIR.lock``
(created with ``O_EXCL``) keeps a second run out of the same folder; the files are written into a hidden
sibling ``.DIR.partial-*`` and renamed into place once everything has run, with SIGINT and SIGTERM held
during the renames. A failure or a signal leaves the previous state of ``DIR`` as it was.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

from .clean_exit import deferred_signals

__all__ = ["results_folder", "check_results_target", "lock_path", "REPORT_FORMAT"]

REPORT_FORMAT = "neuro_balance.report/"  # the start of report.json's "format": a folder --replace may replace


def lock_path(out: str | os.PathLike) -> Path:
    """The lock file of the results folder ``out``: ``out`` with ``.lock`` appended, beside it."""
    out = Path(os.path.abspath(out))  # "." has no name of its own
    return out.with_name(out.name + ".lock")


def _holds_a_report(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier run's ``report.json`` (the only kind of folder ``replace`` replaces)."""
    try:
        with open(folder / "report.json", encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and str(report.get("format", "")).startswith(REPORT_FORMAT)


def check_results_target(out: str | os.PathLike, replace: bool = False) -> Path:
    """Refuse ``out`` as a results folder if it is a file, or a folder holding anything (unless ``replace``).

    Returns
    -------
    Path
        ``out`` made absolute (symbolic links are kept).

    Raises
    ------
    NotADirectoryError
        ``out`` or one of its parents is a file.
    FileExistsError
        ``out`` is a folder that is not empty, and ``replace`` is false or the folder holds no earlier
        run's report.
    """
    given, out = out, Path(os.path.abspath(out))
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            what = "is a file" if parent == out else f"is inside {str(parent)!r}, which is a file"
            raise NotADirectoryError(f"{given}: {what}; the results need a folder (give a new folder name)")
    if out.is_dir() and any(out.iterdir()):
        if not replace:
            raise FileExistsError(f"{given}: the folder exists and is not empty; give a new folder, or --replace "
                                  f"(replace=True) to replace an earlier run's results whole")
        if not _holds_a_report(out):
            raise FileExistsError(f"{given}: the folder holds files but no earlier run's report.json, so --replace "
                                  f"will not replace it; give a new folder")
    return out


def _take_lock(out: Path) -> Path:
    lock = lock_path(out)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            pid = int(lock.read_text().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        alive = pid > 0 and _running(pid)
        state = (f"process {pid} is writing it" if alive else
                 f"the run that made it{f' (process {pid})' if pid else ''} is not running; delete the lock if so")
        raise FileExistsError(f"{out}: another run holds {lock} ({state}); give another folder") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{os.getpid()}\n")
    return lock


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _missing_parents(out: Path) -> list[Path]:
    """The ancestors of ``out`` that do not exist yet, deepest last."""
    return [p for p in reversed(out.parents) if not p.exists()]


@contextlib.contextmanager
def results_folder(out: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder beside ``out``; when the block ends without error it becomes ``out``.

    Parameters
    ----------
    out : path-like
        The results folder. It may not exist yet, or be empty; with ``replace`` it may be an earlier run's.
    replace : bool
        Replace an earlier run's ``out`` whole (the old folder is renamed aside, the new one in, the old
        deleted). A folder holding files but no earlier run's ``report.json`` is never replaced.

    Raises
    ------
    NotADirectoryError, FileExistsError
        At the start, before the block runs (`check_results_target`, or another run holds the lock).
    """
    out = check_results_target(out, replace)
    created = _missing_parents(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        lock = _take_lock(out)
    except BaseException:
        _remove_empty(created)
        raise
    staging = None
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes 0700; results get the usual permissions
        yield staging
        with deferred_signals():
            _commit(staging, out, replace)
    except BaseException:
        with deferred_signals():  # a second Ctrl-C does not leave the cleanup half done
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)  # nothing to do when it was kept or renamed in
            lock.unlink(missing_ok=True)
            _remove_empty(created)
        raise
    lock.unlink(missing_ok=True)


def _commit(staging: Path, out: Path, replace: bool) -> None:
    """Rename ``staging`` to ``out`` (old folder aside, new one in, old one deleted, when replacing)."""
    aside = None
    if replace and out.is_dir() and any(out.iterdir()):
        aside = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, aside)
    try:
        os.rename(staging, out)  # replaces an empty folder; fails on a non-empty one
    except OSError as err:
        if aside is not None:
            os.rename(aside, out)
        kept = out.with_name(f"{out.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        os.rename(staging, kept)
        raise FileExistsError(f"{out}: {err.strerror.lower()} when this run finished (something else wrote "
                              f"there meanwhile); the results are in {kept}") from None
    if aside is not None:
        shutil.rmtree(aside)


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this run created for ``out`` (deepest first), if they stayed empty."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()
