"""Brian2 agents (numpy target) against the numpy replay of their own recorded events."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import neuro_balance as nb

pytest.importorskip("brian2")
from neuro_balance.balancing.graph import build_graph  # noqa: E402
import neuro_balance.sim.build as build_module  # noqa: E402
from neuro_balance.sim import BalancingNetwork, max_relative_difference, replay, trajectory_difference  # noqa: E402

# Rounding only: each event multiplies weights in Brian2 and adds log-scales in the replay, so the
# two differ by a few ulps per event (measured ~1e-15 after ~100 events); 1e-12 leaves headroom.
# Final weights alone do not catch every wrong schedule: the balanced state is unique, so a wrong
# schedule that still converges ends at the same weights (with neighbour detection switched off, a
# short run differs by ~3e-5 but a converged one by ~5e-16). Hence `matches_replay` also compares
# the trajectory: every factor an agent recorded at its events (test_a_wrong_schedule_that_converges...).
EXACT = 1e-12

NETS = {
    "mlp": lambda: nb.mlp([6, 5, 4, 3], seed=1),
    "dag": lambda: nb.dag([6, 5, 4, 3], skips=((0, 2), (1, 3)), seed=2),
    "rnn": lambda: nb.rnn(6, [5, 4], 3, seed=3),
}
PS = (0.5, 1.0, 2.0, 3.0)


def spread(*axes):
    """Every combination of ``axes``; the default suite runs a subset in which each value of each axis
    appears (a Latin-square walk), the others are marked slow."""
    combos = [(i, j, k) for i in range(len(axes[0])) for j in range(len(axes[1]))
              for k in range(len(axes[2]) if len(axes) > 2 else 1)]
    params = []
    for i, j, k in combos:
        values = (axes[0][i], axes[1][j]) + ((axes[2][k],) if len(axes) > 2 else ())
        default = (i - j) % len(axes[1]) == 0 if len(axes) > 2 else (i + j) % 2 == 0
        params.append(pytest.param(*values, marks=() if default else pytest.mark.slow))
    return params


def simulate(net, cost, duration=0.02, rate=500.0, monitor_dt=None, **kwargs):
    bn = BalancingNetwork(net, cost, rate=rate, monitor_dt=monitor_dt, **kwargs)
    bn.run(duration)
    return bn


def matches_replay(bn, net, cost) -> bool:
    """The agents' final weights and their whole trajectory equal the replay of their events."""
    rep = replay(net, cost, bn.events)
    return max_relative_difference(bn.network, rep.network) <= EXACT and trajectory_difference(bn.events, rep) <= EXACT


def share_a_parameter(graph, a, b) -> bool:
    """Whether units ``a`` and ``b`` (each ``(population, index)``) are joined by a nonzero cost."""
    for blk in graph.blocks:
        for (post, i), (pre, j) in ((a, b), (b, a)):
            if blk.post == post and blk.pre == pre and blk.K[0][i, j] > 0:
                return True
    return False


@pytest.mark.parametrize("p, kind, schedule", spread(PS, sorted(NETS), ["local", "colour"]))
def test_agents_equal_replay_of_their_events(kind, p, schedule):
    net, cost = NETS[kind](), nb.Lp(p)
    bn = simulate(net, cost, schedule=schedule)
    events = bn.events
    assert len(events) > 50
    rep = replay(net, cost, events)
    assert max_relative_difference(bn.network, rep.network) <= EXACT
    assert trajectory_difference(events, rep) <= EXACT  # every factor along the way, not only the end
    # the agents' cumulative factors are the replay's log-scales
    for name, u in bn.log_scales.items():
        np.testing.assert_allclose(u, rep.log_scales[name], atol=1e-12)


def test_replay_detects_a_missing_event():
    """The oracle is sharp: dropping the first recorded event changes the weights far beyond EXACT.

    (A later event may be a no-op: a unit balanced again before any neighbour moved.)"""
    net, cost = NETS["dag"](), nb.Lp(2)
    bn = simulate(net, cost, duration=0.005)
    ev = bn.events
    keep = np.ones(len(ev), dtype=bool)
    keep[0] = False
    fewer = ev.select(keep)
    assert max_relative_difference(bn.network, replay(net, cost, fewer).network) > 1e-6


def test_a_wrong_schedule_that_converges_is_caught_by_the_trajectory(monkeypatch):
    """Neighbour detection switched off: neighbours that request together both balance on stale
    sums (Jacobi), which is not the sequential algorithm the replay runs. On a converged run the
    final weights still agree to rounding (the balanced state is unique), so a final-weights oracle
    passes; the factors recorded at the events do not agree."""
    net, cost = NETS["rnn"](), nb.Lp(2)
    correct = simulate(net, cost, rate=3000.0, duration=0.1)
    assert matches_replay(correct, net, cost)
    monkeypatch.setattr(build_module, "detect_code", lambda side, flag="req": f"lost_{side} += 0")
    wrong = simulate(net, cost, rate=3000.0, duration=0.1)
    rep = replay(net, cost, wrong.events)
    assert nb.imbalance(wrong.network, cost).max_relative < 1e-12  # converged
    assert max_relative_difference(wrong.network, rep.network) <= EXACT  # final weights: blind
    assert trajectory_difference(wrong.events, rep) > 1e-4  # trajectory: caught
    assert not matches_replay(wrong, net, cost)


def winners_by_step(ev):
    """The units that balanced in each step with more than one event, as ``(population, index)`` lists."""
    steps, counts = np.unique(ev.step, return_counts=True)
    for step in steps[counts > 1]:
        here = ev.step == step
        yield step, list(zip(ev.population[here], ev.index[here]))


@pytest.mark.parametrize("kind, schedule", spread(sorted(NETS), ["local", "colour"]))
def test_neighbours_never_balance_in_the_same_step(kind, schedule):
    """No two units sharing a parameter balance in one step (so the semantics are sequential).

    The local schedule is driven hard (rate * dt = 0.5: neighbours request together all the time)
    and must still resolve every conflict; the colour schedule never lets them request together.
    """
    net = NETS[kind]()
    graph = build_graph(net, nb.Lp(2))
    rate = 5000.0 if schedule == "local" else 1000.0
    bn = simulate(net, nb.Lp(2), rate=rate, schedule=schedule)
    ev = bn.events
    busy = 0
    for step, units in winners_by_step(ev):
        busy += 1
        for k, a in enumerate(units):
            for b in units[k + 1:]:
                assert not share_a_parameter(graph, a, b), f"step {step}: neighbours {a} and {b} balanced together"
    # several units really balance in one step, except in the recurrent net whose agents all share
    # parameters with each other (dense recurrent and feedforward weights: one winner per step)
    assert (busy == 0) if kind == "rnn" else (busy > 0)
    assert matches_replay(bn, net, nb.Lp(2))


def test_local_conflicts_are_resolved_and_losers_retry():
    """At rate * dt = 0.5 most requests collide; losers retry, so units still balance often and fairly.

    Without retries (or with a rule that lets both neighbours lose forever) a unit with many
    neighbours would starve; every unit must keep balancing, within a factor 3 of the busiest.
    """
    net = NETS["rnn"]()
    bn = simulate(net, nb.Lp(2), rate=5000.0, duration=0.01)
    counts = bn.events.counts()
    total_units = sum(net.populations[n].size for n in bn.agents)
    assert len(bn.events) < 0.9 * 5000.0 * 0.01 * total_units  # conflicts really cost requests
    per_unit = np.concatenate(list(counts.values()))
    assert per_unit.min() >= 5 and per_unit.max() <= 3 * per_unit.min()
    assert matches_replay(bn, net, nb.Lp(2))


@pytest.mark.parametrize("cost", [nb.Linf(), pytest.param(nb.Lp(2).without_bias(), marks=pytest.mark.slow), nb.Lp(1.5)],
                         ids=repr)
def test_other_costs_equal_replay(cost):
    net = NETS["dag"]()
    bn = simulate(net, cost)
    assert matches_replay(bn, net, cost)


def test_biases_left_out_of_the_cost_are_still_scaled():
    net = NETS["mlp"]()
    bn = simulate(net, nb.Lp(2).without_bias())
    x = np.random.default_rng(0).normal(size=(20, 6))
    np.testing.assert_allclose(bn.network.forward(x), net.forward(x), rtol=0, atol=1e-12)
    assert not np.allclose(bn.network.populations["h1"].bias, net.populations["h1"].bias)


def test_dead_unit_keeps_lambda_one():
    """A unit with no outgoing weight fires events but its guard keeps lam = 1 (no NaN)."""
    net = NETS["mlp"]()
    net.projection("h1->h2").weight[:, 2] = 0.0
    bn = simulate(net, nb.Lp(2))
    assert bn.events.counts()["h1"][2] > 0
    assert bn.log_scales["h1"][2] == 0.0
    out = bn.network
    assert all(np.all(np.isfinite(p.weight)) for p in out.projections)
    assert matches_replay(bn, net, nb.Lp(2))


def test_non_homogeneous_populations_are_never_agents():
    net = nb.mlp([6, 5, 4, 4, 3], activation=["relu", "tanh", "leaky_relu:0.1"], seed=1)
    bn = simulate(net, nb.Lp(2))
    assert bn.agents == ["h1", "h3"]
    assert set(bn.events.population) == {"h1", "h3"}
    x = np.random.default_rng(1).normal(size=(10, 6))
    np.testing.assert_allclose(bn.network.forward(x), net.forward(x), rtol=0, atol=1e-12)
    assert matches_replay(bn, net, nb.Lp(2))


def test_power_units_scale_by_lambda_to_the_degree():
    net = nb.mlp([6, 5, 4, 3], activation=["bipu:2", "relu"], seed=1)
    bn = simulate(net, nb.Lp(2))
    assert matches_replay(bn, net, nb.Lp(2))
    x = np.random.default_rng(2).normal(size=(10, 6))
    np.testing.assert_allclose(bn.network.forward(x), net.forward(x), rtol=1e-12, atol=1e-12)


def test_self_loops_are_invariant_and_ignored():
    net = NETS["rnn"]()
    bn = simulate(net, nb.Lp(2))
    for name in ("h1", "h2"):
        w0 = np.diagonal(net.projection(f"{name}->{name}").weight)
        np.testing.assert_array_equal(np.diagonal(bn.network.projection(f"{name}->{name}").weight), w0)


def test_history_monitors_lambda_and_imbalance():
    net, cost = NETS["mlp"](), nb.Lp(2)
    bn = simulate(net, cost, monitor_dt=1e-3, rate=1000.0, duration=0.06)
    hist = bn.history
    assert hist["t"].shape == hist["max_imbalance"].shape and len(hist["t"]) == 60
    assert hist["max_imbalance"][0] > 0.3 and hist["max_imbalance"][-1] < 1e-3
    np.testing.assert_allclose(hist["lam"]["h1"][-1], np.exp(bn.log_scales["h1"]))


def test_bad_arguments_are_rejected():
    net = NETS["mlp"]()
    with pytest.raises(nb.ModelError, match="single Lp"):
        BalancingNetwork(net, nb.Lp(1) + nb.Lp(2))
    with pytest.raises(ValueError, match="target"):
        BalancingNetwork(net, nb.Lp(2), target="gpu")
    with pytest.raises(ValueError, match="n_colours"):
        BalancingNetwork(net, nb.Lp(2), rate=20000.0, schedule="colour")
    with pytest.raises(ValueError, match="schedule"):
        BalancingNetwork(net, nb.Lp(2), schedule="timetable")
    with pytest.raises(nb.ModelError, match="not balanced populations"):
        BalancingNetwork(net, nb.Lp(2), rate={"out": 10.0})


def test_import_neuro_balance_does_not_import_brian2():
    code = "import sys, neuro_balance; assert 'brian2' not in sys.modules and 'neuro_balance.sim' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_slower_agent_clock_keeps_the_semantics():
    """balance_every=10: events only on the agents' ticks, about the same mean rate, still exact.

    At rate * dt_bal = 0.1 few requests collide (a collision delays the loser by one tick), so the
    local schedule keeps ~90 % of the nominal rate (measured 164 of 180 over 0.2 s).
    """
    net, cost = NETS["dag"](), nb.Lp(2)
    bn = simulate(net, cost, rate=100.0, balance_every=10, duration=0.2)
    ev = bn.events
    assert np.all(ev.step % 10 == 0)
    expected = 100.0 * 0.2 * sum(net.populations[n].size for n in bn.agents)
    assert 0.7 * expected < len(ev) < 1.2 * expected
    assert matches_replay(bn, net, cost)


@pytest.mark.parametrize("kind, schedule", [("rnn", "local")] + [pytest.param(kind, schedule, marks=pytest.mark.slow)
                                           for kind, schedule in (("mlp", "local"), ("dag", "local"), ("mlp", "colour"))])
def test_the_gate_skips_only_ticks_where_nothing_happens(kind, schedule, monkeypatch):
    """Runtime targets run the agents' stages only on ticks where an agent requests: the same run
    without the gate (every stage on every tick) gives the very same events, weights and spikes.

    A pause (rate 0) is included for the local schedule. The colour schedule's coin flips draw
    random numbers on every tick even at rate 0, which the gate skips while paused: after a pause
    its events are another draw of the same process, so it runs without one here."""
    import neuro_balance.sim.network as network_module
    net, cost = NETS[kind](), nb.Lp(2)
    x = np.linspace(0.2, 1.0, net.input.size)

    def run(gated):
        build = network_module.build_objects
        monkeypatch.setattr(network_module, "build_objects", lambda spec, seed, **_: build(spec, seed, gated))
        bn = BalancingNetwork(net, cost, rate=800.0, spiking=True, input_rate=300.0, monitor_dt=None,
                              schedule=schedule)
        bn.set_input(x)
        bn.run(0.005)
        if schedule == "local":
            bn.set_balance_rate(0.0)  # a pause: the gate must notice the new clocks
            bn.run(0.001)
            bn.set_balance_rate(500.0)
        bn.run(0.005)
        monkeypatch.undo()
        return bn

    gated, plain = run(True), run(False)
    assert gated.objects.gate is not None and plain.objects.gate is None
    assert len(gated.events) > 20
    for field in ("step", "population", "index"):
        np.testing.assert_array_equal(getattr(gated.events, field), getattr(plain.events, field))
    assert max_relative_difference(gated.network, plain.network) == 0.0
    for name, (t, i) in plain.spikes.items():
        np.testing.assert_array_equal(gated.spikes[name][1], i)
    steps = int(round(gated.time / gated.dt))
    if schedule == "local":  # fewer ticks than the run's (9 agents at 800 Hz: about half), one per balancing tick
        assert len(np.unique(gated.events.step)) <= gated.objects.gate.opened < 0.8 * steps


def test_idle_agents_never_run_their_stages():
    bn = BalancingNetwork(NETS["mlp"](), nb.Lp(2), rate=0.0, spiking=True, monitor_dt=None)
    bn.set_input(np.ones(6))
    bn.run(0.01)
    assert bn.objects.gate.opened == 0 and len(bn.events) == 0
    assert sum(len(t) for t, _ in bn.spikes.values()) > 0
