"""The one place that touches Brian2's global state: device, preferences, code cache and clocks.

Every Brian2 call of a `BalancingNetwork` runs inside `Target.active()`, which switches Brian2 to
the network's own device (a private ``CPPStandaloneDevice`` instance with its own build directory
for ``cpp_standalone``, the runtime device otherwise) and its code-generation target, and restores
whatever was set before on exit, even on error. Nothing leaks between networks: a numpy network
built while a standalone one is pending, or two standalone networks in one process, do not see
each other.

The Cython code cache lives in one project directory (`cache_directory`), and its key is made
independent of the interpreter's path: Brian2 hashes ``sys.executable`` into every module name, so
``python`` and ``python3`` (or a console-script entry point) would otherwise compile everything
twice. `compile_progress` reports code objects as they compile (the "compiling..." message).

Brian2 2.9 offers no public way to run an event's pathways on another clock than their group's;
`run_on_clock` writes the private ``_clock`` attribute, here only, and
``tests/test_sim_device.py`` pins that behaviour to the Brian2 version. `gated_network` makes a
set of objects cost nothing on ticks where nothing can happen to them (runtime targets): a
`Network` subclass takes them out of its per-tick loop (their public ``active`` flag, cleared after
their code is prepared) and one `NetworkOperation` runs them, in their schedule order, only on the
ticks its ``ready`` test passes.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Callable, Iterator, Protocol

__all__ = ["TARGETS", "Target", "cache_directory", "compile_progress", "run_on_clock", "gated_network", "Gate",
           "CompileProgress"]

TARGETS = ("numpy", "cython", "cpp_standalone")
CACHE_ENV = "NEURO_BALANCE_CACHE"

CompileProgress = Callable[[str, int, int], None]
"""``progress(message, done, total)``: ``done`` of ``total`` code objects handled so far."""


def cache_directory() -> Path:
    """The project's Brian2 code cache: ``$NEURO_BALANCE_CACHE/brian2``, else ``~/.cache/neuro_balance/brian2``.

    ``XDG_CACHE_HOME`` replaces ``~/.cache`` when set. The directory is created on first use.
    """
    root = os.environ.get(CACHE_ENV)
    if root:
        base = Path(root).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "neuro_balance"
    path = base / "brian2"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _canonical_executable() -> Iterator[None]:
    """``sys.executable`` as its resolved path while Brian2 hashes it into Cython module names."""
    old = sys.executable
    sys.executable = os.path.realpath(old) if old else old
    try:
        yield
    finally:
        sys.executable = old


class _CompileWatch(logging.Handler):
    """Counts the Cython modules Brian2 loads, and calls back for those not yet in the cache."""

    PATTERN = re.compile(r'"(?P<owner>[^"]+)" using Cython module "(?P<module>[^"]+)"')

    def __init__(self, progress: CompileProgress, total: int, lib_dir: str, suffix: str) -> None:
        super().__init__(level=1)
        self.progress, self.total, self.lib_dir, self.suffix = progress, max(total, 1), lib_dir, suffix
        self.done = 0
        self.compiled = 0

    def emit(self, record: logging.LogRecord) -> None:
        match = self.PATTERN.search(record.getMessage())
        if not match:
            return
        self.done += 1
        if not os.path.exists(os.path.join(self.lib_dir, match["module"] + self.suffix)):
            self.compiled += 1
            self.progress(f"compiling {match['owner']} (first use; cached afterwards)", self.done,
                          max(self.total, self.done))


@contextlib.contextmanager
def compile_progress(progress: CompileProgress | None, total: int) -> Iterator[None]:
    """Report Cython compilation of up to ``total`` code objects to ``progress`` while inside.

    Nothing is reported when every module is already in the cache.
    """
    if progress is None:
        yield
        return
    import importlib.machinery
    from brian2 import prefs
    lib_dir = prefs.codegen.runtime.cython.cache_dir or str(cache_directory())
    watch = _CompileWatch(progress, total, lib_dir, importlib.machinery.EXTENSION_SUFFIXES[0])
    logger = logging.getLogger("brian2.codegen.runtime.cython_rt.extension_manager")
    old_level = logger.level
    logger.addHandler(watch)
    logger.setLevel(1)
    try:
        yield
    finally:
        logger.removeHandler(watch)
        logger.setLevel(old_level)


def run_on_clock(objects, clock) -> None:
    """Run Brian2 code objects (thresholders, resetters, pathways, monitors) on ``clock``.

    Brian2 gives them their group's clock with no argument to choose another; assigning the clock
    before the first run makes the Network run them only on ``clock``'s ticks, in the same slots
    and orders (pinned for the installed Brian2 version by ``tests/test_sim_device.py``).
    """
    for obj in objects:
        obj._clock = clock


class Gate(Protocol):
    """When gated objects must run: `prepare` before every run, `ready` every tick, `update` after they ran."""

    def prepare(self, clock) -> None: ...

    def ready(self) -> bool: ...

    def update(self) -> None: ...


def gated_network(parts, gated, gate: Gate, clock, *, when: str, order: float, name: str):
    """A Brian2 `Network` of ``parts`` in which the objects ``gated`` run only on ticks ``gate.ready()``.

    On every tick of ``clock`` one `NetworkOperation` (at ``when``/``order``) asks ``gate.ready()``;
    only then does it run the gated objects, in the order the Network would have run them, and call
    ``gate.update()``. On any other tick they cost one Python call in all. Skipping a tick is exact
    when the gated objects would have done nothing on it: the gate must guarantee that. Runtime
    targets only (cpp_standalone has no `NetworkOperation`).
    """
    import brian2 as b2
    gated = list(gated)
    ordered: list = []

    def tick() -> None:
        if gate.ready():
            for obj in ordered:
                obj.run()
            gate.update()

    class GatedNetwork(b2.Network):
        def before_run(self, run_namespace):
            for obj in gated:
                obj.active = True  # a run that raised never reached after_run
            super().before_run(run_namespace)  # prepares every object's code, the gated ones included
            members = {id(obj) for obj in gated}
            ordered[:] = [obj for obj in self.sorted_objects if id(obj) in members]
            for obj in gated:
                obj.active = False  # out of the per-tick loop, which Network.run lists after this call
            gate.prepare(clock)

        def after_run(self):
            for obj in gated:
                obj.active = True  # back in for their after_run and the next before_run
            super().after_run()

    operation = b2.NetworkOperation(tick, when=when, order=order, clock=clock, name=name + "_gate")
    return GatedNetwork(*parts, operation, name=name)


def _children_cpu() -> float:
    """CPU seconds used so far by this process's finished child processes."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _remove(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)


class Target:
    """A Brian2 target with its own device, entered around every Brian2 call of one network.

    Parameters
    ----------
    name : {"numpy", "cython", "cpp_standalone"}
    directory : str, optional
        cpp_standalone build directory (default: a new temporary directory, removed when the
        `Target` is closed or garbage collected). Two standalone targets may not share one.
    progress : callable, optional
        ``progress(message, done, total)`` for first-use compilation (see `compile_progress`).
    """

    _directories: "weakref.WeakValueDictionary[str, Target]" = weakref.WeakValueDictionary()

    def __init__(self, name: str, directory: str | None = None, progress: CompileProgress | None = None) -> None:
        if name not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {name!r}")
        self.name = name
        self.progress = progress
        self.device = None
        self.directory: str | None = None
        self.built = False
        self.run_time: float | None = None  # seconds the standalone binary ran (incl. reading results)
        self.run_cpu_time: float | None = None  # CPU seconds the binary used (insensitive to other load)
        if name == "cpp_standalone":
            from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
            if directory is None:
                directory = tempfile.mkdtemp(prefix="nb_standalone_")
                self._finalizer = weakref.finalize(self, _remove, directory)
            directory = os.path.realpath(directory)
            other = Target._directories.get(directory)
            if other is not None and not other.closed:
                raise ValueError(f"directory: {directory!r} is already the build directory of another "
                                 "cpp_standalone network in this process; give each its own")
            Target._directories[directory] = self
            self.directory = directory
            self.device = CPPStandaloneDevice()
        self.closed = False

    @property
    def standalone(self) -> bool:
        return self.name == "cpp_standalone"

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Brian2's device and code-generation preferences set for this target, restored on exit."""
        if self.closed:
            raise RuntimeError("this Brian2 network has been closed")
        import brian2 as b2
        from brian2.devices.device import reset_device, set_device
        old_target = b2.prefs.codegen.target
        old_cache = b2.prefs.codegen.runtime.cython.cache_dir
        set_device(self.device if self.standalone else "runtime", build_on_run=False)
        b2.prefs.codegen.target = "numpy" if self.standalone else self.name
        if old_cache is None:
            b2.prefs.codegen.runtime.cython.cache_dir = str(cache_directory())
        try:
            with _canonical_executable():
                yield
        finally:
            b2.prefs.codegen.target = old_target
            b2.prefs.codegen.runtime.cython.cache_dir = old_cache
            reset_device()  # pops exactly the device pushed above

    def build(self) -> None:
        """cpp_standalone: generate, compile and run the binary once (inside `active`)."""
        if self.built:
            return
        import brian2 as b2
        make = b2.prefs.devices.cpp_standalone
        old_args = list(make.extra_make_args_unix)
        make.extra_make_args_unix = [f"-j{os.cpu_count() or 2}"]  # Brian2's bare -j forks one compiler per file
        try:
            if self.progress is not None:
                self.progress("compiling the cpp_standalone binary", 0, 1)
            self.device.build(directory=self.directory, compile=True, run=False)
            start, cpu = time.perf_counter(), _children_cpu()
            self.device.run(directory=self.directory, with_output=False, run_args=[])
            self.run_time = time.perf_counter() - start
            self.run_cpu_time = _children_cpu() - cpu
            if self.progress is not None:
                self.progress("compiled the cpp_standalone binary", 1, 1)
        finally:
            make.extra_make_args_unix = old_args
        self.built = True

    def close(self) -> None:
        """Forget the device and remove a temporary build directory; further use raises."""
        self.closed = True
        self.device = None
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
