"""Brian2's global device and preferences never leak out of a network (neuro_balance.sim.device)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neuro_balance as nb
from brian_flags import COMPILE_ARGS

brian2 = pytest.importorskip("brian2")
from brian2.devices.device import get_device, runtime_device  # noqa: E402

from neuro_balance.sim import BalancingNetwork, max_relative_difference, replay  # noqa: E402
from neuro_balance.sim.device import Target, _CacheWatch, cache_directory, gated_network  # noqa: E402

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
    weights, seed and rate rewrites only ``main.cpp`` (Brian2 leaves unchanged files alone, so ``make``
    recompiles that one file). Repro: a closed network whose objects were not yet collected kept its
    names, the next one's were suffixed (``..._codeobject_1``): other files, a full build."""
    import hashlib
    from pathlib import Path
    monkeypatch.setenv("NEURO_BALANCE_CACHE", str(tmp_path))

    def sources(directory):
        return {str(p.relative_to(directory)): hashlib.sha1(p.read_bytes()).hexdigest()
                for p in Path(directory).rglob("*") if p.suffix in (".cpp", ".h") or p.name == "makefile"}

    seen = []
    for seed, rate in ((0, 500.0), (1, 500.0), (2, 800.0)):
        bn = BalancingNetwork(nb.mlp([6, 5, 4, 3], seed=seed), nb.Lp(2), rate=rate, target="cpp_standalone",
                              monitor_dt=None, seed=seed)
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


def test_gated_objects_run_only_when_the_gate_is_open_and_in_schedule_order():
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
