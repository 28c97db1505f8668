"""Balancing agents attached to a plain Brian2 model (LIF + refractoriness + Poisson input + STDP synapses).

The model is the one of demos/stdp_agents.py (``build_copy``): ordinary Brian2 code that adds only the
toolkit's declarations when it carries agents.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import neuro_balance as nb
from brian_flags import COMPILE_ARGS

b2 = pytest.importorskip("brian2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demos"))
from stdp_agents import build_copy  # noqa: E402

from neuro_balance.sim import (agent_equations, attach_balancing, max_relative_difference, replay,  # noqa: E402
                               trajectory_difference)
from neuro_balance.sim.device import Target  # noqa: E402

COST = nb.Lp(2)


def build(agents, suffix="", **kwargs):
    """The demo's model behind a silent 20-unit Poisson input (each copy its own), and its Network."""
    P = b2.PoissonGroup(20, rates=0 * b2.Hz, name="input" + suffix)
    objs = dict(build_copy(P, agents, suffix=suffix, **kwargs), P=P)
    return objs, b2.Network(*objs.values())


def run_pair(duration: float = 0.1):
    """The model with agents and its twin without, side by side, on the current Brian2 device and target:
    silent input, hidden LIFs firing on their drive (refractory), output threshold out of reach, so STDP's
    updates are exactly zero and only the agents move weights."""
    eq = agent_equations(COST, weight_unit=b2.mV)
    objs, net = build(eq, drive=20.0, out_threshold=1000.0)
    agents = attach_balancing(net, [objs["G"]], [objs["S_in"], objs["S_out"]], COST, rate=500 * b2.Hz,
                              weight_unit=b2.mV, seed=3)
    twin, twin_net = build(None, drive=20.0, out_threshold=1000.0, suffix="_twin")
    net.run(duration * b2.second)
    twin_net.run(duration * b2.second)
    return agents, objs, twin


def check_optimum_and_untouched(agents, objs, twin):
    events = agents.events
    assert np.all(events.counts()[objs["G"].name] >= 20)  # every unit balanced many times
    best = nb.balance(agents.source, COST, method="global", tol=1e-13)
    assert max_relative_difference(agents.network(), best.network) <= 1e-8
    assert nb.imbalance(agents.network(), COST).max_relative < 1e-9
    assert agents.network().projection("input_hidden").weight.min() > 0  # STDP's clip never engaged
    # the agents run the sequential algorithm: their trajectory equals the replay of their events
    rep = replay(agents.source, COST, events)
    assert trajectory_difference(events, rep) <= 1e-12
    # the user's own variables: bit-identical where the agents' code does not reach them ...
    G, Gt = objs["G"], twin["G"]
    for var in ("v_", "lastspike_", "not_refractory", "I_drive_"):
        np.testing.assert_array_equal(getattr(G, var)[:], getattr(Gt, var)[:])
    assert np.any(np.asarray(G.lastspike_[:]) > 0)  # the hidden LIFs fired (refractory periods included)
    # ... and STDP traces equal to rounding: Brian2 stores an event-driven variable as of its synapse's
    # ``lastupdate`` and brings it up to date whenever any pathway of the synapses runs, the agents' too, so
    # compare the traces decayed to the end of the run (exp(-a) exp(-b) against exp(-(a + b)))
    end = float(G.t_[:])
    for S, St, var in ((objs["S_in"], twin["S_in"], "apost"), (objs["S_out"], twin["S_out"], "apre")):
        now, now_twin = (np.asarray(X.__getattr__(var + "_")[:]) * np.exp(-(end - np.asarray(X.lastupdate_[:])) / 0.02)
                         for X in (S, St))
        np.testing.assert_allclose(now, now_twin, rtol=1e-9, atol=0)
        assert np.count_nonzero(now) > len(now) / 2
    # the balanced weights moved; the exchange is exact for the pathways (scale by lam, 1/lam)
    u = agents.log_scales[G.name]
    assert np.ptp(u) > 0.2
    w0_in, w0_out = (agents.source.projection(n).weight for n in ("input_hidden", "hidden_output"))
    w_in, w_out = (agents.network().projection(n).weight for n in ("input_hidden", "hidden_output"))
    np.testing.assert_allclose(w_in, w0_in * np.exp(u)[:, None], rtol=1e-12)
    np.testing.assert_allclose(w_out, w0_out * np.exp(-u)[None, :], rtol=1e-12)


def reach_the_optimum_on(target):
    """The attached agents balance the user's pathways to ``nb.balance``'s optimum (1e-8) on ``target``."""
    state, old = np.random.get_state(), b2.prefs.codegen.target
    b2.prefs.codegen.target = target
    b2.seed(11)
    try:
        check_optimum_and_untouched(*run_pair())
    finally:
        b2.prefs.codegen.target = old
        np.random.set_state(state)


def test_agents_on_a_plain_brian2_model_reach_the_global_optimum():
    reach_the_optimum_on("numpy")


@pytest.mark.slow
def test_agents_on_a_plain_brian2_model_reach_the_global_optimum_cython(cython_target):
    reach_the_optimum_on("cython")


STANDALONE = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {tests!r})
    import brian2 as b2
    from neuro_balance.sim.device import claim_build_directory
    import test_sim_attach as t
    b2.prefs.codegen.cpp.extra_compile_args_gcc = {flags!r}
    directory, lock = claim_build_directory("tests/test_sim_attach.py: the plain Brian2 model and its twin")
    b2.set_device("cpp_standalone", directory=directory, build_on_run=False)  # as a Brian2 user does
    b2.seed(11)
    pair = t.run_pair()
    start = time.perf_counter()
    b2.device.build(directory=directory)
    build = time.perf_counter() - start
    t.check_optimum_and_untouched(*pair)
    print(json.dumps({{"build": build, "make": b2.device.timers["compile"]["make"], "directory": directory}}))
""")


@pytest.mark.slow
def test_agents_on_a_plain_brian2_model_reach_the_global_optimum_cpp_standalone(tmp_path):
    """The same model and checks on cpp_standalone, the device chosen as a Brian2 user does (``set_device``),
    in a subprocess; the build directory is the per-shape cache of `claim_build_directory`, so a second run
    compiles nothing new. The weights the agents start from are sampled by the binary (`Attachment.source`)."""
    code = STANDALONE.format(tests=str(Path(__file__).resolve().parent), flags=COMPILE_ARGS)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert os.path.isdir(result["directory"])


@pytest.fixture
def standalone_device():
    """Brian2's cpp_standalone device while inside (nothing is built), the previous one restored after."""
    target = Target("cpp_standalone")
    with target.active():
        yield
    target.close()


def test_standalone_attachment_needs_counted_synapses_and_t_zero(standalone_device):
    """On cpp_standalone a pathway connected by a rule (``connect(p=...)``) has no known size before the binary
    runs, so neither its initial weights nor its self-synapses can be read: refused, named; so is a network
    that has already run (the agents would start from weights nobody can read)."""
    eq = agent_equations(COST, weight_unit=b2.mV)
    objs, net = build(eq)
    agents = attach_balancing(net, [objs["G"]], [objs["S_in"], objs["S_out"]], COST, rate=100.0, equations=eq,
                              weight_unit=b2.mV)
    assert sorted(agents._start_monitors) == ["hidden_output", "input_hidden"]  # the binary samples the start
    P = b2.PoissonGroup(4, rates=0 * b2.Hz, name="rule_input")
    G = b2.NeuronGroup(3, "v : 1\n" + eq.neuron, threshold="v > 1", events=eq.events, name="rule_hidden")
    S = b2.Synapses(P, G, "w : 1", **eq.synapses(post=True, on_pre="v_post += w"), name="rule_in")
    S.connect(p=1.0)
    with pytest.raises(nb.ModelError, match=r"pathways\['rule_in'\]: on cpp_standalone connect it with explicit"):
        attach_balancing(b2.Network(P, G, S), [G], [S], COST, rate=100.0, equations=eq)
    objs, net = build(eq, suffix="_ran")
    net.run(1 * b2.ms)
    with pytest.raises(nb.ModelError, match="before the first run"):
        attach_balancing(net, [objs["G"]], [objs["S_in"], objs["S_out"]], COST, rate=100.0, equations=eq)


def test_first_requests_start_at_the_networks_time(numpy_codegen):
    """Repro: the agents' clocks started at the time their group's clock showed, which on Brian2's shared
    defaultclock is where an earlier network left it; the user's new network starts at 0, so its agents
    waited that long before any request (the Cython test, run after the numpy one, saw no event)."""
    b2.Network(b2.NeuronGroup(1, "x : 1", name="earlier")).run(0.2 * b2.second)
    eq = agent_equations(COST, weight_unit=b2.mV)
    objs, net = build(eq, suffix="_later")
    attach_balancing(net, [objs["G"]], [objs["S_in"], objs["S_out"]], COST, rate=500 * b2.Hz, equations=eq,
                     weight_unit=b2.mV)
    assert float(net.t_) == 0.0
    assert np.max(objs["G"].t_next_[:]) < 0.1  # 12 exponential waits at 500 Hz from t = 0 (old: all after 0.2 s)


def test_missing_declarations_are_named(numpy_codegen):
    eq = agent_equations(COST, weight_unit=b2.mV)
    objs, net = build(None)
    with pytest.raises(nb.ModelError, match=r"groups\['hidden'\].*agent_equations"):
        attach_balancing(net, [objs["G"]], [objs["S_in"], objs["S_out"]], COST, rate=100.0, equations=eq)
    objs, net = build(eq, suffix="_b")
    with pytest.raises(nb.ModelError, match=r"pathways\['input_hidden_b'\].*not in groups|escape"):
        attach_balancing(net, [], [objs["S_in"]], COST, rate=100.0, equations=eq)
    objs, net = build(eq, suffix="_c")
    with pytest.raises(nb.ModelError, match=r"'hidden_output_c' touch an agent group"):
        attach_balancing(net, [objs["G"]], [objs["S_in"]], COST, rate=100.0, equations=eq)
    with pytest.raises(nb.ModelError, match="pathway names"):
        eq.synapses(post=True, on_post={"acc_in": "w = w"})


def test_self_synapses_are_refused(numpy_codegen):
    eq = agent_equations(COST)
    G = b2.NeuronGroup(3, "v : 1\n" + eq.neuron, threshold="v > 1", events=eq.events, name="rec")
    S = b2.Synapses(G, G, "w : 1", **eq.synapses(pre=True, post=True, on_pre="v_post += w"), name="rec_rec")
    S.connect()
    S.w = 1.0
    with pytest.raises(nb.ModelError, match="self-synapses"):
        attach_balancing(b2.Network(G, S), [G], [S], COST, rate=100.0, equations=eq)


@pytest.mark.slow
def test_stdp_demo_runs_alone_and_writes_its_figure(tmp_path):
    demo = Path(__file__).resolve().parents[1] / "demos" / "stdp_agents.py"
    proc = subprocess.run([sys.executable, str(demo), "--out", str(tmp_path), "--duration", "0.4"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "stdp_agents.png").stat().st_size > 10_000
    assert "with agents: final max |log(in/out)|" in proc.stdout
