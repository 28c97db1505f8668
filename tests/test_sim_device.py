"""Brian2's global device and preferences never leak out of a network (neuro_balance.sim.device)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neuro_balance as nb
from brian_flags import COMPILE_ARGS

brian2 = pytest.importorskip("brian2")
from brian2.devices.device import get_device, runtime_device  # noqa: E402

from neuro_balance.sim import (BalancingNetwork, max_relative_difference, replay,  # noqa: E402
                               trajectory_difference)
from neuro_balance.sim.device import Target, _CacheWatch, cache_directory, gated_network, run_on_clock  # noqa: E402

NET = "nb.mlp([6, 5, 4, 3], seed=1)"


def brian_state():
    """What a network must leave as it found it."""
    return get_device(), brian2.prefs.codegen.target, brian2.prefs.codegen.runtime.cython.cache_dir, sys.executable


def test_numpy_network_built_while_a_standalone_one_is_pending():
    """Repro: building cpp_standalone used to switch the global device until its results were read,
    so a numpy network built meanwhile failed with ``NotImplementedError: Cannot retrieve the values
    of state variables in standalone code before the simulation has been run``."""
    before = brian_state()
    net = eval(NET)
    pending = BalancingNetwork(net, nb.Lp(2), rate=500.0, target="cpp_standalone", monitor_dt=None)
    pending.run(0.01)  # recorded for the standalone binary, not built yet
    assert brian_state() == before and get_device() is runtime_device
    bn = BalancingNetwork(net, nb.Lp(2), rate=500.0, monitor_dt=None)
    bn.run(0.02)
    assert len(bn.events) > 20
    assert max_relative_difference(bn.network, replay(net, nb.Lp(2), bn.events).network) <= 1e-12
    assert brian_state() == before
    directory = pending.target.directory
    assert os.path.isdir(directory)
    pending.close()
    with pytest.raises(RuntimeError, match="closed"):
        pending.run(0.01)


def test_errors_inside_a_network_restore_the_device():
    before = brian_state()
    bn = BalancingNetwork(eval(NET), nb.Lp(2), target="cpp_standalone", monitor_dt=None)
    with pytest.raises(RuntimeError, match="call run"):
        bn.network  # nothing to build yet
    assert brian_state() == before
    with pytest.raises(ValueError, match="positive time"):
        bn.run(-1.0)
    assert brian_state() == before


def test_two_standalone_networks_may_not_share_a_directory(tmp_path):
    first = BalancingNetwork(eval(NET), nb.Lp(2), target="cpp_standalone", directory=str(tmp_path))
    with pytest.raises(ValueError, match="already the build directory"):
        BalancingNetwork(eval(NET), nb.Lp(2), target="cpp_standalone", directory=str(tmp_path))
    first.close()
    BalancingNetwork(eval(NET), nb.Lp(2), target="cpp_standalone", directory=str(tmp_path)).close()


def test_networks_of_one_shape_share_a_cached_build_directory_one_at_a_time(monkeypatch, tmp_path):
    """One cached build directory per shape: a closed (or collected) network hands it to the next network
    of its shape, two open ones get two, another shape gets another; the directories stay for later builds."""
    monkeypatch.setenv("NEURO_BALANCE_CACHE", str(tmp_path))
    with BalancingNetwork(eval(NET), nb.Lp(2), target="cpp_standalone") as bn:
        first = bn.target.directory
        assert first.startswith(str(tmp_path / "standalone"))
        other = BalancingNetwork(nb.mlp([6, 5, 4, 3], seed=7), nb.Lp(2), rate=50.0, target="cpp_standalone")
        assert other.target.directory != first  # same shape, both open
        assert os.path.dirname(other.target.directory) == os.path.dirname(first)
        wider = BalancingNetwork(nb.mlp([6, 7, 4, 3], seed=1), nb.Lp(2), target="cpp_standalone")
        assert os.path.dirname(wider.target.directory) != os.path.dirname(first)
        other.close()
        wider.close()
    assert os.path.isdir(first)  # kept for the next build of the shape
    again = BalancingNetwork(nb.mlp([6, 5, 4, 3], seed=9), nb.Lp(2), target="cpp_standalone")
    assert again.target.directory == first
    del again
    import gc
    gc.collect()
    assert BalancingNetwork(eval(NET), nb.Lp(2), target="cpp_standalone").target.directory == first


def test_a_second_network_of_one_shape_regenerates_only_main(monkeypatch, tmp_path):
    """The cache's premise, checked without compiling: in the shape's cached directory a network with other
    weights, seed, rate and agents' clock rewrites only ``main.cpp`` (Brian2 leaves unchanged files alone, so ``make``
    recompiles that one file). Repro: a closed network whose objects were not yet collected kept its
    names, the next one's were suffixed (``..._codeobject_1``): other files, a full build."""
    import hashlib
    from pathlib import Path
    monkeypatch.setenv("NEURO_BALANCE_CACHE", str(tmp_path))

    def sources(directory):
        return {str(p.relative_to(directory)): hashlib.sha1(p.read_bytes()).hexdigest()
                for p in Path(directory).rglob("*") if p.suffix in (".cpp", ".h") or p.name == "makefile"}

    seen = []
    for seed, rate, every in ((0, 500.0, 1), (1, 500.0, 1), (2, 800.0, 1), (3, 800.0, 10)):
        bn = BalancingNetwork(nb.mlp([6, 5, 4, 3], seed=seed), nb.Lp(2), rate=rate, target="cpp_standalone",
                              monitor_dt=None, seed=seed, balance_every=every)
        bn.run(0.01)
        with bn.target.active():
            bn.target.device.build(directory=bn.target.directory, compile=False, run=False)
        seen.append((bn.target.directory, sources(bn.target.directory)))
        bn.close()
    for (dir_a, a), (dir_b, b) in zip(seen, seen[1:]):
        assert dir_a == dir_b and len(b) > 50
        assert sorted(f for f in b if a.get(f) != b[f]) == ["main.cpp"]


def test_a_target_without_a_shape_builds_in_a_temporary_directory():
    target = Target("cpp_standalone")
    directory = target.directory
    assert os.path.isdir(directory)
    target.close()
    assert not os.path.exists(directory)
    target = Target("cpp_standalone")
    directory = target.directory
    del target
    import gc
    gc.collect()
    assert not os.path.exists(directory)


def test_the_interpreter_path_is_left_alone(monkeypatch, tmp_path):
    """Brian2 hashes ``sys.executable`` into Cython module names; the toolkit no longer rewrites it."""
    link = tmp_path / "python3"
    link.symlink_to(os.path.realpath(sys.executable))
    monkeypatch.setattr(sys, "executable", str(link))
    with Target("cython").active():
        assert sys.executable == str(link)
        assert brian2.prefs.codegen.target == "cython"


def test_cache_directory_is_one_documented_place(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURO_BALANCE_CACHE", str(tmp_path / "c"))
    assert cache_directory() == tmp_path / "c" / "brian2" and cache_directory().is_dir()
    monkeypatch.delenv("NEURO_BALANCE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_directory() == tmp_path / "x" / "neuro_balance" / "brian2"


def test_compile_progress_reports_modules_as_they_appear_in_the_cache(tmp_path):
    calls = []
    (tmp_path / "_cython_magic_cached.so").write_text("")
    watch = _CacheWatch(lambda *a: calls.append(a), 3, str(tmp_path), ".so")
    watch.poll()
    assert calls == []  # already cached: nothing to report
    (tmp_path / "_cython_magic_new.so").write_text("")
    (tmp_path / "_cython_magic_new.pyx").write_text("")  # sources are not modules
    watch.poll()
    watch.poll()
    assert watch.compiled == 1
    assert calls == [("compiling Brian2 code: module 1 (first use; cached afterwards)", 1, 3)]


class EveryThird:
    """A gate open on ticks 0, 3, 6, ... (from the step it is given)."""

    def __init__(self):
        self.calls = self.updates = self.prepared = 0
        self.seen = []

    def prepare(self):
        self.prepared += 1

    def ready(self, t, step):
        self.calls += 1
        self.seen.append((t, step))
        return step % 3 == 0

    def update(self):
        self.updates += 1


def test_gated_objects_run_only_when_the_gate_is_open_and_in_schedule_order(numpy_codegen):
    """Pins what `gated_network` relies on in Brian2's `Network.run` (no public way exists): objects
    whose ``active`` flag is cleared at the end of ``before_run`` are prepared but not run by the
    Network; ``obj.run()`` runs an object's code; ``sorted_objects`` is the Network's order. Gated
    objects in two slots: the later slot's objects run on the same open ticks, after the resets."""
    H = brian2.NeuronGroup(2, "x : 1", events={"tock": "True"}, name="nb_gate_counter")
    H.run_on_event("tock", "x += 1", when="synapses", order=1)
    G = brian2.NeuronGroup(2, "y : 1\nz : 1 (linked)\nw : 1", events={"tick": "True", "late": "True"},
                           name="nb_gate_reader")
    G.z = brian2.linked_var(H, "x")
    G.run_on_event("tick", "y = z", when="synapses", order=2)  # after the counter, in the same tick
    G.set_event_schedule("late", when="after_resets", order=0)
    G.run_on_event("late", "w = 10*z", when="after_resets", order=1)
    gate = EveryThird()
    gated = [G.thresholder["tick"], G.resetter["tick"], H.thresholder["tock"], H.resetter["tock"],
             G.thresholder["late"], G.resetter["late"]]
    net = gated_network([G, H], gated, gate, brian2.defaultclock, name="nb_gate_net")
    net.run(9 * brian2.defaultclock.dt)
    assert gate.calls == 9 and gate.updates == 3 and gate.prepared == 1
    assert [step for _, step in gate.seen] == list(range(9))
    assert [t for t, _ in gate.seen] == [k * float(brian2.defaultclock.dt_) for k in range(9)]  # Brian2's floats
    np.testing.assert_array_equal(H.x[:], 3)  # ran on 3 of 9 ticks
    np.testing.assert_array_equal(G.y[:], 3)  # and in schedule order: the reader saw this tick's count
    np.testing.assert_array_equal(G.w[:], 30)  # the later slot ran on the open ticks too
    assert all(obj.active for obj in gated)  # back on after the run
    net.run(3 * brian2.defaultclock.dt)
    np.testing.assert_array_equal(H.x[:], 4)
    assert [step for _, step in gate.seen[9:]] == [9, 10, 11]  # a second run counts on from the clock


STANDALONE_PAIR = textwrap.dedent("""
    import json, brian2, numpy as np, neuro_balance as nb
    from neuro_balance.sim import BalancingNetwork, max_relative_difference, replay
    brian2.prefs.codegen.cpp.extra_compile_args_gcc = COMPILE_ARGS
    nets = [nb.mlp([6, 5, 4, 3], seed=1), nb.dag([6, 5, 4, 3], skips=((0, 2), (1, 3)), seed=2)]
    bns = [BalancingNetwork(n, nb.Lp(2), rate=500.0, target="cpp_standalone", monitor_dt=None) for n in nets]
    for bn in bns:
        bn.run(0.01)
    for bn in bns:
        bn.run(0.01)
    errs = [max_relative_difference(bn.network, replay(n, nb.Lp(2), bn.events).network) for n, bn in zip(nets, bns)]
    print(json.dumps({"errs": errs, "events": [len(bn.events) for bn in bns],
                      "dirs": [bn.target.directory for bn in bns]}))
""")


@pytest.mark.slow
def test_two_standalone_networks_in_one_process(tmp_path):
    """Repro: two standalone networks in one process broke each other (``KeyError`` or
    ``RuntimeError: The network has already been built and run``). Each now has its own device and
    build directory; runs interleave and both match their replay. Two builds (~20-40 s each)."""
    code = STANDALONE_PAIR.replace("COMPILE_ARGS", repr(COMPILE_ARGS))     # the tests' flags (brian_flags.py)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    import json
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert min(result["events"]) > 20 and max(result["errs"]) <= 1e-12
    assert result["dirs"][0] != result["dirs"][1]


@pytest.fixture
def test_compile_flags():
    """The tests' compiler flags (`brian_flags.COMPILE_ARGS`) for in-process cpp_standalone builds."""
    prefs = brian2.prefs.codegen.cpp
    old = list(prefs.extra_compile_args_gcc)
    prefs.extra_compile_args_gcc = list(COMPILE_ARGS)
    yield
    prefs.extra_compile_args_gcc = old


def clock_pin_model(tag: str):
    """A group's event (thresholder and resetter), a pathway it triggers and its monitor moved to a clock of
    3 dt, between objects left on the group's clock of dt: they all share the ``synapses`` slot."""
    b2 = brian2
    fast = b2.Clock(0.1 * b2.ms, name=f"nb_pin_fast{tag}")
    slow = b2.Clock(0.3 * b2.ms, name=f"nb_pin_slow{tag}")
    G = b2.NeuronGroup(2, "n : 1\nseen_t : second\nseen_step : integer\nfast_n : 1", events={"tick": "True"},
                       clock=fast, name=f"nb_pin_g{tag}")
    G.set_event_schedule("tick", when="synapses", order=0)
    G.run_on_event("tick", "n += 1\nseen_t = t\nseen_step = t_in_timesteps", when="synapses", order=1)
    G.run_regularly("fast_n += 1", when="synapses", order=-1)  # the group's own clock: every tick
    H = b2.NeuronGroup(2, "x : 1\ny : 1", clock=fast, name=f"nb_pin_h{tag}")
    H.run_regularly("y = x", when="synapses", order=3)  # after the moved pathway, on every tick
    S = b2.Synapses(G, H, "", on_pre={"path": "x_post += 1"}, on_event={"path": "tick"}, clock=fast,
                    name=f"nb_pin_s{tag}")
    S.connect(j="i")
    S.path.order = 2
    M = b2.EventMonitor(G, "tick", record=True, when="synapses", order=4, name=f"nb_pin_m{tag}")
    moved = [G.thresholder["tick"], G.resetter["tick"], S.path, M]
    run_on_clock(moved, slow)
    return b2.Network(G, H, S, M), fast, slow, moved, (G, H, M)


def check_clock_pin(fast, groups):
    """10 ticks of dt: the moved objects ran on ticks 0, 3, 6, 9 only, in the one schedule order, and read the
    group's clock (its float ``t`` and its step count), as did the monitor."""
    G, H, M = groups
    dt = float(fast.dt_)
    np.testing.assert_array_equal(G.fast_n[:], 10)
    np.testing.assert_array_equal(G.n[:], 4)
    np.testing.assert_array_equal(G.seen_step[:], 9)  # the group's clock's step, not the slow clock's (3)
    assert list(np.asarray(G.seen_t_[:])) == [9 * dt] * 2  # the very float the group's clock computes
    np.testing.assert_array_equal(H.x[:], 4)
    np.testing.assert_array_equal(H.y[:], 4)  # the later fast object saw the pathway of the same tick
    assert sorted(np.asarray(M.t_[:]).tolist()) == sorted([k * dt for k in (0, 3, 6, 9)] * 2)


def test_objects_moved_to_a_slower_clock_run_only_on_its_ticks_runtime(numpy_codegen):
    """Pins what `run_on_clock` relies on in Brian2's runtime `Network` (it writes the private ``_clock``):
    an object runs on the ticks of its ``_clock``, its code reads its owner's clock, and on a shared tick the
    two clocks' objects run interleaved in schedule order. Fails if Brian2 stops scheduling by ``_clock``."""
    net, fast, slow, moved, groups = clock_pin_model("_rt")
    assert all(obj.clock is slow for obj in moved)
    with pytest.raises(ValueError, match="not a whole multiple"):
        run_on_clock(moved, brian2.Clock(0.45 * brian2.ms, name="nb_pin_odd"))  # 1.5 of slow's dt
    net.run(10 * fast.dt)
    check_clock_pin(fast, groups)


def test_cpp_standalone_schedules_moved_objects_on_their_clock(tmp_path):
    """Pins the same for cpp_standalone's code generation, without compiling: ``network_run`` adds each code
    object of a moved object to the binary's network with the slower clock, the others with the group's,
    in one schedule order."""
    target = Target("cpp_standalone", directory=str(tmp_path))
    with target.active():
        net, fast, slow, moved, _ = clock_pin_model("_gen")
        net.run(10 * fast.dt)
        target.device.build(directory=target.directory, compile=False, run=False)
    main = (tmp_path / "main.cpp").read_text()
    added = re.findall(r"\.add\(&(\w+), _run_(\w+)\);", main)
    clocks = {name: clock for clock, name in added}
    moved_codes = [c.name for obj in moved for c in obj._code_objects]
    assert len(moved_codes) >= 5  # the pathway has two: push the events, then the pathway's code
    assert all(clocks[name] == slow.name for name in moved_codes)
    others = [name for name in clocks if name not in moved_codes]
    assert others and all(clocks[name] == fast.name for name in others)
    order = [name for _, name in added]
    assert order.index(moved_codes[0]) < order.index("nb_pin_h_gen_run_regularly_codeobject")  # interleaved
    target.close()


@pytest.mark.slow
def test_objects_moved_to_a_slower_clock_run_only_on_its_ticks_cpp_standalone(test_compile_flags):
    """The runtime pin's model built and run on cpp_standalone: the binary runs the moved objects on the
    slower clock's ticks only, reading the group's clock, in schedule order (one small build, cached)."""
    target = Target("cpp_standalone", key="tests/test_sim_device.py clock pin")
    with target.active():
        net, fast, slow, moved, groups = clock_pin_model("_sa")
        net.run(10 * fast.dt)
        target.build()
        check_clock_pin(fast, groups)
    target.close()


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["local", "colour"])
def test_a_slower_agent_clock_on_cpp_standalone_is_exact(test_compile_flags, schedule):
    """balance_every=10 on cpp_standalone: the agents' stages run on their own clock of 10 dt (`run_on_clock`),
    units balance only on every 10th tick, and the run equals the numpy replay of its events, trajectory
    included. Spiking, so the membrane rescale (after the resets) moves to that clock too; two runs, the first
    ending between two of the agents' ticks; the colour schedule's coin flips and colour phases read the
    network's step. One build per schedule (cached per shape)."""
    net, cost = nb.dag([6, 5, 4, 3], skips=((0, 2), (1, 3)), seed=2), nb.Lp(2)
    bn = BalancingNetwork(net, cost, rate=300.0, spiking=True, input_rate=300.0, balance_every=10,
                          target="cpp_standalone", monitor_dt=None, schedule=schedule)
    bn.set_input(np.linspace(0.2, 1.0, net.input.size))
    bn.run(0.0503)
    bn.run(0.05)
    group = bn.groups[bn.agents[0]]
    assert float(group.thresholder["request"].clock.dt_) == pytest.approx(10 * bn.dt)
    ev = bn.events
    assert len(ev) > 100 and np.all(ev.step % 10 == 0)
    assert np.any(ev.step > 503)  # the second run balanced too
    rep = replay(net, cost, ev)
    assert max_relative_difference(bn.network, rep.network) <= 1e-12
    assert trajectory_difference(ev, rep) <= 1e-12
    assert all(len(t) > 0 for t, _ in bn.spikes.values())
    bn.close()
