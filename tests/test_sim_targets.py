"""The same agents on Brian2's compiled targets: one Cython case in the default suite, the rest slow."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neuro_balance as nb
from brian_flags import COMPILE_ARGS

brian2 = pytest.importorskip("brian2")
from neuro_balance.sim import BalancingNetwork, max_relative_difference, replay, trajectory_difference  # noqa: E402

EXACT = 1e-12  # see test_sim_replay.py
NETS = {
    "mlp": "nb.mlp([6, 5, 4, 3], seed=1)",
    "dag": "nb.dag([6, 5, 4, 3], skips=((0, 2), (1, 3)), seed=2)",
    "rnn": "nb.rnn(6, [5, 4], 3, seed=3)",
}
PS = (0.5, 1.0, 2.0, 3.0)


# Slow: a cold Cython cache (every CI run: a fresh venv is a new cache key) compiles for a minute. Every
# Cython test shares the session's one build (`cython_target` in conftest.py).
CYTHON_CASES = [pytest.param(kind, p, marks=pytest.mark.slow) for kind in sorted(NETS) for p in PS]


@pytest.mark.parametrize("kind, p", CYTHON_CASES)
def test_cython_agents_equal_replay(cython_target, kind, p):
    """The local schedule at rate * dt = 0.2: neighbours collide often and resolve it locally."""
    net, cost = eval(NETS[kind]), nb.Lp(p)
    bn = BalancingNetwork(net, cost, rate=2000.0, target="cython", monitor_dt=None)
    bn.run(0.02)
    assert len(bn.events) > 100
    rep = replay(net, cost, bn.events)
    assert max_relative_difference(bn.network, rep.network) <= EXACT and trajectory_difference(bn.events, rep) <= EXACT


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(NETS))
def test_cython_colour_schedule_equals_replay(cython_target, kind):
    net, cost = eval(NETS[kind]), nb.Lp(2)
    bn = BalancingNetwork(net, cost, rate=500.0, target="cython", monitor_dt=None, schedule="colour")
    bn.run(0.02)
    assert len(bn.events) > 50
    rep = replay(net, cost, bn.events)
    assert max_relative_difference(bn.network, rep.network) <= EXACT and trajectory_difference(bn.events, rep) <= EXACT


@pytest.mark.slow
def test_cython_and_numpy_draw_the_same_events(cython_target):
    """Same seed, same first requests and Brian2 random stream: the targets agree event for event."""
    net, cost = eval(NETS["dag"]), nb.Lp(2)
    runs = []
    for target in ("numpy", "cython"):
        bn = BalancingNetwork(net, cost, rate=2000.0, target=target, monitor_dt=None, seed=7)
        bn.run(0.01)
        runs.append(bn.events)
    np.testing.assert_array_equal(runs[0].step, runs[1].step)
    np.testing.assert_array_equal(runs[0].index, runs[1].index)


STANDALONE = textwrap.dedent("""
    import json, sys, brian2, numpy as np, neuro_balance as nb
    from neuro_balance.sim import BalancingNetwork, max_relative_difference, replay, trajectory_difference
    brian2.prefs.codegen.cpp.extra_compile_args_gcc = {flags!r}
    net, cost = {net}, nb.Lp({p})
    bn = BalancingNetwork(net, cost, rate=2000.0, target="cpp_standalone", monitor_dt=1e-3, directory={directory!r})
    bn.run(0.01)
    bn.run(0.01)  # several runs before the (lazy) build
    rep = replay(net, cost, bn.events)
    err = max(max_relative_difference(bn.network, rep.network), trajectory_difference(bn.events, rep))
    print(json.dumps({{"err": err, "events": len(bn.events), "samples": len(bn.history["t"])}}))
""")


@pytest.fixture(scope="session")
def standalone_directory(tmp_path_factory):
    """One cpp_standalone project directory for every case, one case after another: Brian2 rewrites only the
    files whose code changed and make recompiles only those (the runtime library, and for one kind the
    code objects that do not depend on ``p``, are compiled once)."""
    return tmp_path_factory.mktemp("standalone")


@pytest.mark.slow
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("kind", sorted(NETS))      # kind by kind: consecutive builds share the most code
def test_cpp_standalone_agents_equal_replay(kind, p, tmp_path, standalone_directory):
    """The local schedule; one standalone build per case, in a subprocess, in the session's build directory."""
    code = STANDALONE.format(net=NETS[kind], p=p, directory=str(standalone_directory), flags=COMPILE_ARGS)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["events"] > 50 and result["samples"] == 20
    assert result["err"] <= EXACT
