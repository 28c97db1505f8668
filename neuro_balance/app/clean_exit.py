"""How a command ends: Ctrl-C and SIGTERM as exceptions, then death by the same signal (the shell's 130 / 143),
and Brian2 leaving no files or banner.

A program that catches SIGINT or SIGTERM to clean up should then end by that signal, so that the shell or
script that started it sees it was interrupted (``$?`` is 128 + the signal's number: 130 and 143) and stops
too; `end_by_signal` does that once the cleanup is done. (Python itself does so for an uncaught
`KeyboardInterrupt`, and sometimes even for one that was caught, when it passed through C code: ending by
the signal every time makes the outcome the same every time.)

Brian2, when imported, writes a debug log and a copy of the running script into the temporary folder,
installs a ``sys.excepthook`` that prints "Brian 2 encountered an unexpected error" and replaces the
SIGINT handler with one that only stops a running simulation (and fails with ``TypeError: 'Handlers' object
is not callable`` when the parent process ignored SIGINT). The command line reports its own errors, so
`tame_brian2` undoes all of that right after the import, and `finish_brian2` deletes whatever Brian2
wrote before the process ends (and silences its warnings about the objects an interrupted run left unused).
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Iterator

from ..errors import Terminated

__all__ = ["Terminated", "install_signal_handlers", "restore_signal_handlers", "deferred_signals", "end_by_signal",
           "tame_brian2", "finish_brian2", "EXIT_CODES"]

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal's number, as shells report it

_at_start: dict[int, object] = {}  # each signal's disposition when the command started


def _terminate(signum, frame) -> None:
    raise Terminated(signum)


def install_signal_handlers() -> None:
    """SIGINT raises `KeyboardInterrupt`, SIGTERM raises `Terminated`; a signal ignored by the parent stays ignored.

    Called once when the command starts (it records the dispositions the parent left) and again after
    Brian2's import has replaced them. Only the main thread can set handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in EXIT_CODES:
        _at_start.setdefault(signum, signal.getsignal(signum))
    for signum, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _terminate)):
        signal.signal(signum, signal.SIG_IGN if _at_start[signum] == signal.SIG_IGN else handler)


def restore_signal_handlers() -> None:
    """Put back the handlers the command found (for a caller that runs the command inside its own process)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in _at_start.items():
        if handler is not None:  # None: a handler set outside Python, which cannot be put back from here
            signal.signal(signum, handler)
    _at_start.clear()


def end_by_signal(signum: int) -> None:
    """End the process by ``signum`` with its default action, after the atexit handlers (as Python's own exit does).

    The handlers release what libraries hold (multiprocessing's semaphores of a local Dask cluster, ...).
    """
    atexit._run_exitfuncs()  # noqa: SLF001 - the interpreter's own exit path; killing ourselves skips it
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block has finished (a few renames that must happen all or not at all).

    The handlers are swapped for ones that only note the signal, and a noted signal is raised again, to the
    handler that was there before, when the block ends. (Blocking the signal with a mask would not do: the
    kernel hands a process's signal to any thread that does not block it, and Python then runs the handler in
    the main thread anyway.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: held.append(signum)) for signum in EXIT_CODES}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


def tame_brian2() -> None:
    """Import Brian2 and undo what its import did to the process: files, excepthook, SIGINT handler.

    Brian2's log prefs (``logging.file_log``, ``logging.save_script``, ``logging.std_redirection_to_file``
    keeps its compiler-output capture; ``logging.delete_log_on_exit``) are set so that nothing more is
    written, and the debug log and script copy the import made are deleted now.
    """
    import brian2
    from brian2.utils.logger import BrianLogger

    brian2.prefs["logging.file_log"] = False
    brian2.prefs["logging.save_script"] = False
    brian2.prefs["logging.delete_log_on_exit"] = True
    logger = logging.getLogger("brian2")
    if BrianLogger.file_handler is not None:
        logger.removeHandler(BrianLogger.file_handler)
        BrianLogger.file_handler.close()
        BrianLogger.file_handler = None
    _remove_brian2_files()
    if sys.excepthook is not sys.__excepthook__:
        sys.excepthook = sys.__excepthook__
    install_signal_handlers()


def finish_brian2() -> None:
    """After the command, if Brian2 was imported: no more log messages, and its files deleted.

    A run stopped half way leaves Brian2 objects that were never run; without this, Brian2 warns about
    each one (with the line that made it) as they are garbage-collected.
    """
    if "brian2" not in sys.modules:
        return
    logging.getLogger("brian2").setLevel(logging.CRITICAL + 1)
    _remove_brian2_files()


def _remove_brian2_files() -> None:
    """Delete Brian2's debug log, script copy and captured compiler output."""
    from brian2.utils.logger import BrianLogger, std_silent

    paths = [BrianLogger.tmp_log, BrianLogger.tmp_log and f"{BrianLogger.tmp_log}.1", BrianLogger.tmp_script]
    BrianLogger.tmp_log = BrianLogger.tmp_script = None
    for stream in ("stdout", "stderr"):
        handle = getattr(std_silent, f"dest_{stream}", None)
        if handle is not None:
            handle.close()
            paths.append(getattr(std_silent, f"dest_fname_{stream}", None))
            setattr(std_silent, f"dest_{stream}", None)
    for path in paths:
        if path:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
