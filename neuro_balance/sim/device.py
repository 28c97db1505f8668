"""The one place that touches Brian2's global state: device, preferences, code cache and clocks.

Every Brian2 call of a `BalancingNetwork` runs inside `Target.active()`, which switches Brian2 to
the network's own device (a private ``CPPStandaloneDevice`` instance with its own build directory
for ``cpp_standalone``, the runtime device otherwise) and its code-generation target, and restores
whatever was set before on exit, even on error. Nothing leaks between networks: a numpy network
built while a standalone one is pending, or two standalone networks in one process, do not see
each other.

Each network draws its random numbers from its own stream: on the runtime targets `Target.active`
swaps Brian2's random state (numpy's global generator and Brian2's buffers, through the runtime
device's ``get_random_state``/``set_random_state``) for the network's own and back, so a user's
``np.random`` stream is untouched by a run and a network's events do not depend on what other
networks ran in between; cpp_standalone seeds its own device.

The Cython code cache lives in one project directory (`cache_directory`). Brian2 hashes
``sys.executable`` into module names, so two interpreter paths (``python`` and ``python3``) compile
the same code twice; the toolkit leaves that to Brian2. `compile_progress` reports compiled
modules as they appear in the cache (the "compiling..." message).

`gated_network` makes a set of objects cost nothing on ticks where nothing can happen to them
(runtime targets): a `Network` subclass takes them out of its per-tick loop (their public
``active`` flag, cleared after their code is prepared) and one `NetworkOperation` per scheduling
slot runs them, in their schedule order, only on the ticks its ``ready`` test passes. Brian2 has no
public way to do this; the behaviours it relies on are listed in its docstring and pinned by
``tests/test_sim_device.py``.

`run_on_clock` is the cpp_standalone counterpart (no `NetworkOperation` there): it puts objects on a
slower clock, so the binary runs them only on that clock's ticks. It writes their private ``_clock``
attribute, the only private write of the toolkit; its docstring says why no public way exists and
``tests/test_sim_device.py`` pins what it relies on.
"""
from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import os
import shutil
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Callable, Iterator, Protocol

__all__ = ["TARGETS", "Target", "cache_directory", "compile_progress", "gated_network", "run_on_clock", "Gate",
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


class _CacheWatch(threading.Thread):
    """Polls the Cython cache directory and calls back for every compiled module that appears in it."""

    def __init__(self, progress: CompileProgress, total: int, lib_dir: str, suffix: str, period: float = 0.2) -> None:
        super().__init__(daemon=True, name="nb_compile_watch")
        self.progress, self.total, self.lib_dir, self.suffix = progress, max(total, 1), lib_dir, suffix
        self.period = period
        self.seen = self._modules()
        self.compiled = 0
        self.stopped = threading.Event()

    def _modules(self) -> set[str]:
        try:
            return {n for n in os.listdir(self.lib_dir) if n.endswith(self.suffix)}
        except OSError:
            return set()

    def poll(self) -> None:
        """Report the modules that appeared since the last poll."""
        for name in sorted(self._modules() - self.seen):
            self.seen.add(name)
            self.compiled += 1
            self.progress(f"compiling Brian2 code: module {self.compiled} (first use; cached afterwards)",
                          self.compiled, max(self.total, self.compiled))

    def run(self) -> None:
        while not self.stopped.wait(self.period):
            self.poll()
        self.poll()


@contextlib.contextmanager
def compile_progress(progress: CompileProgress | None, total: int) -> Iterator[None]:
    """Report Cython compilation of up to ``total`` code objects to ``progress`` while inside.

    Watches the code cache directory for new compiled modules (from another thread, every 0.2 s);
    nothing is reported when every module is already in the cache.
    """
    if progress is None:
        yield
        return
    import importlib.machinery
    from brian2 import prefs
    lib_dir = prefs.codegen.runtime.cython.cache_dir or str(cache_directory())
    watch = _CacheWatch(progress, total, lib_dir, importlib.machinery.EXTENSION_SUFFIXES[0])
    watch.start()
    try:
        yield
    finally:
        watch.stopped.set()
        watch.join()


class Gate(Protocol):
    """When gated objects must run: `prepare` before every run, `ready` every tick, `update` after they ran."""

    def prepare(self) -> None: ...

    def ready(self, t: float, step: int) -> bool: ...

    def update(self) -> None: ...


def gated_network(parts, gated, gate: Gate, clock, *, name: str):
    """A Brian2 `Network` of ``parts`` in which the objects ``gated`` run only on ticks ``gate.ready()``.

    The gated objects may sit in several scheduling slots. For each slot one `NetworkOperation`
    runs at the order of the slot's first gated object (no other object may share that order); the first of them asks
    ``gate.ready(t, step)`` once per tick, and on an open tick each operation runs its slot's gated
    objects in the order the Network would have run them (the last one then calls
    ``gate.update()``). On any other tick they cost one Python call per slot. Skipping a tick is
    exact when the gated objects would have done nothing on it: the gate must guarantee that.
    Runtime targets only (cpp_standalone has no `NetworkOperation`).

    Brian2 has no public way to skip objects tick by tick; this relies on three behaviours of
    Brian2 2.9's `Network.run`, pinned by ``tests/test_sim_device.py``: it lists the objects it runs
    (those whose public ``active`` flag is set) after ``before_run`` has prepared every object's
    code, so an object switched off at the end of ``before_run`` is prepared but not run; an
    object's ``run()`` executes its code objects; ``sorted_objects`` is the order the Network runs
    objects in. The operations count the ticks from the clock's ``timestep`` at the start of the run
    (one call per tick), and ``t = timestep * dt`` is the very float the Network computes.
    """
    import brian2 as b2
    gated = list(gated)
    slots = list(dict.fromkeys(obj.when for obj in gated))
    ordered: dict[str, list] = {slot: [] for slot in slots}
    state = {"open": False, "step": 0, "dt": 0.0}

    def make_tick(slot: str):
        first, last = slot == slots[0], slot == slots[-1]

        def tick() -> None:
            if first:
                step = state["step"]
                state["step"] = step + 1
                state["open"] = gate.ready(step * state["dt"], step)
            if state["open"]:
                for obj in ordered[slot]:
                    obj.run()
                if last:
                    gate.update()
        return tick

    class GatedNetwork(b2.Network):
        def before_run(self, run_namespace):
            for obj in gated:
                obj.active = True  # a run that raised never reached after_run
            super().before_run(run_namespace)  # prepares every object's code, the gated ones included
            members = {id(obj) for obj in gated}
            for slot in slots:
                ordered[slot][:] = [obj for obj in self.sorted_objects if id(obj) in members and obj.when == slot]
            for obj in gated:
                obj.active = False  # out of the per-tick loop, which Network.run lists after this call
            state["step"], state["dt"] = int(clock.timestep[:]), float(clock.dt_)  # counted from here on
            gate.prepare()

        def after_run(self):
            for obj in gated:
                obj.active = True  # back in for their after_run and the next before_run
            super().after_run()

    operations = [b2.NetworkOperation(make_tick(slot), when=slot,
                                      order=min(obj.order for obj in gated if obj.when == slot),
                                      clock=clock, name=f"{name}_gate_{slot}") for slot in slots]
    return GatedNetwork(*parts, *operations, name=name)


def run_on_clock(objects, clock) -> None:
    """Run Brian2 ``objects`` (event thresholders and resetters, synaptic pathways, monitors) only on ``clock``'s ticks.

    Call before the objects' first run. ``clock``'s ticks must fall on ticks of the objects' own
    clocks (a period that is a whole multiple of theirs); the objects keep their scheduling slots and
    orders, so on a shared tick they run exactly where they ran before, and on other ticks not at all.

    Brian2 has no public way to do this: a `NeuronGroup`'s event thresholders and resetters take the
    group's clock, a `Synapses` pathway takes the clock of the group whose event triggers it, and
    none of them has a ``clock`` or ``dt`` argument (``run_regularly`` has, but is not triggered by
    events). The public alternative, the agents' state and events in a second `NeuronGroup` on the
    slower clock with a second `Synapses` per balanced projection whose weight is ``(linked)`` to the
    first's, doubles every balanced projection's connectivity in memory and changes what a user of
    `neuro_balance.sim.attach` declares. So this writes the objects' private ``_clock``, relying on
    three behaviours of Brian2 2.9, pinned by ``tests/test_sim_device.py``: both the runtime
    `Network` and cpp_standalone's ``network_run`` schedule an object by its ``_clock`` (the
    ``clock`` property returns it), read when the run starts; the clock variables an object's code
    reads (``t``, ``t_in_timesteps``, a monitor's recorded ``t``) are the ones of its owner's clock,
    bound when the object was made, so the code sees the very floats and step counts it saw before;
    and on a tick shared by two clocks, objects of both run interleaved in the one schedule order.
    """
    objects = list(objects)
    for obj in objects:
        ratio = float(clock.dt_) / float(obj.clock.dt_)
        if round(ratio) < 1 or abs(ratio - round(ratio)) > 1e-9 * ratio:
            raise ValueError(f"clock: its dt {clock.dt} is not a whole multiple of the dt {obj.clock.dt} of "
                             f"{obj.name!r}")
    for obj in objects:
        obj._clock = clock


def standalone_flags() -> str:
    """What besides the code decides a cpp_standalone build: Brian2's version, compiler and make flags."""
    import brian2
    make = brian2.prefs.devices.cpp_standalone
    return repr((brian2.__version__, list(brian2.prefs.codegen.cpp.extra_compile_args_gcc),
                 list(brian2.prefs.codegen.cpp.extra_link_args), list(make.extra_make_args_unix)))


def claim_build_directory(key: str) -> tuple[str, int]:
    """A cached cpp_standalone build directory for networks of one shape, held by this caller until released.

    The directory is ``cache_directory()/standalone/<hash of key and standalone_flags()>/<slot>``; the
    first slot not locked (``flock``, by this or another process) is taken, so concurrent networks of
    one shape never share a directory. Returns the directory and the open lock file descriptor
    (closing it releases the slot). Brian2 rewrites only the generated files whose text changed and
    ``make`` recompiles only those, so a network of a shape built before compiles little or nothing.
    """
    digest = hashlib.sha256((key + "\n" + standalone_flags()).encode()).hexdigest()[:16]
    base = cache_directory().parent / "standalone" / digest
    slot = 0
    while True:
        path = base / str(slot)
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            slot += 1
            continue
        return str(path), fd


def _release(fd: int) -> None:
    try:
        os.close(fd)  # releases the flock
    except OSError:
        pass


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
        cpp_standalone build directory. Default: with ``key``, a cached directory for networks of
        that shape (`claim_build_directory`, kept after `close` so the next network of the shape
        compiles only what changed); without, a new temporary directory removed when the `Target`
        is closed or garbage collected. Two standalone targets may not share one.
    progress : callable, optional
        ``progress(message, done, total)`` for first-use compilation (see `compile_progress`).
    seed : int
        Seed of the target's own random stream (Brian2's ``rand()``, ``randn()``, Poisson inputs).
    key : str, optional
        The network's shape (cpp_standalone: selects the cached build directory).

    Attributes
    ----------
    timings : dict
        cpp_standalone, after `build`: ``generate`` (s of Brian2 code generation and file writing),
        ``make`` (s of compilation, wall) and ``make_cpu`` (CPU s of the compiler processes),
        ``run`` and ``run_cpu`` (the binary).
    """

    _directories: "weakref.WeakValueDictionary[str, Target]" = weakref.WeakValueDictionary()

    def __init__(self, name: str, directory: str | None = None, progress: CompileProgress | None = None,
                 seed: int = 0, key: str | None = None) -> None:
        if name not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {name!r}")
        self.name = name
        self.progress = progress
        self.device = None
        self.directory: str | None = None
        self.built = False
        self.run_time: float | None = None  # seconds the standalone binary ran (incl. reading results)
        self.run_cpu_time: float | None = None  # CPU seconds the binary used (insensitive to other load)
        self.timings: dict[str, float] = {}
        if name == "cpp_standalone":
            from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
            if directory is None and key is not None:
                # Brian2 names generated files after its objects, suffixing a name taken by a live object:
                # networks closed but not yet collected would give this one other names, other files, a full build
                gc.collect()
                directory, lock = claim_build_directory(key)
                self._finalizer = weakref.finalize(self, _release, lock)
            elif directory is None:
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
            self._seeded = False
            self._seed = int(seed)
        else:
            from brian2.devices.device import runtime_device
            outer = runtime_device.get_random_state()
            runtime_device.seed(int(seed))
            self._random_state = runtime_device.get_random_state()
            runtime_device.set_random_state(outer)
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
        from brian2.devices.device import get_device, reset_device, set_device
        old_target = b2.prefs.codegen.target
        old_cache = b2.prefs.codegen.runtime.cython.cache_dir
        set_device(self.device if self.standalone else "runtime", build_on_run=False)
        b2.prefs.codegen.target = "numpy" if self.standalone else self.name
        if old_cache is None:
            b2.prefs.codegen.runtime.cython.cache_dir = str(cache_directory())
        device = get_device()
        if self.standalone:
            if not self._seeded:  # the binary seeds its generator where this call sits in its main()
                device.seed(self._seed)
                self._seeded = True
        else:
            outer = device.get_random_state()
            device.set_random_state(self._random_state)
        try:
            yield
        finally:
            if not self.standalone:
                self._random_state = device.get_random_state()
                device.set_random_state(outer)
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
            start, cpu = time.perf_counter(), _children_cpu()
            self.device.build(directory=self.directory, compile=True, run=False)
            total, make_cpu = time.perf_counter() - start, _children_cpu() - cpu
            make_wall = float(self.device.timers["compile"]["make"] or 0.0)
            start, cpu = time.perf_counter(), _children_cpu()
            self.device.run(directory=self.directory, with_output=False, run_args=[])
            self.run_time = time.perf_counter() - start
            self.run_cpu_time = _children_cpu() - cpu
            self.timings = {"generate": total - make_wall, "make": make_wall, "make_cpu": make_cpu,
                            "run": self.run_time, "run_cpu": self.run_cpu_time}
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
