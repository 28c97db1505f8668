"""Agents on a NIR graph with LIF, LI and CubaLIF units: the numpy replay of their events (gauge and exchange
steps of `nb.balance`'s own code) reproduces the whole trajectory, and a wrong schedule is caught."""
from __future__ import annotations

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.model.activations import parse_activation
from neuro_balance.model.neurons import Neuron

pytest.importorskip("brian2")
import neuro_balance.sim.build as build_module  # noqa: E402
from neuro_balance.sim import BalancingNetwork, max_relative_difference, replay  # noqa: E402
from neuro_balance.sim.replay import trajectory_difference  # noqa: E402

EXACT = 1e-14
ROUNDED = 1e-10
"""After ~100 events per unit the replay and the agents round differently (their factors come from different
code); measured 1.4e-12 to 2.3e-12 (parameters) and 7e-12 to 1.7e-11 (trajectory) for the costs below."""


def mixed_graph() -> nb.Network:
    """in -> LIF(7) -> LI(5) -> CubaLIF(4) -> out, far from balance: two gauge populations around an exchange one."""
    rng = np.random.default_rng(11)
    net = nb.mlp([4, 7, 5, 4, 2], seed=6)
    for proj, gain in zip(net.projections, (4.0, 0.3, 2.0, 0.5)):
        proj.weight *= gain
    h1, h2, h3 = (net.populations[n] for n in ("h1", "h2", "h3"))
    h1.neuron = Neuron("LIF", {"tau": rng.uniform(5, 20, 7), "r": rng.uniform(0.5, 2, 7), "v_leak": rng.normal(size=7),
                               "v_threshold": rng.uniform(0.5, 1.5, 7), "v_reset": rng.normal(size=7) * 0.1})
    h2.neuron, h2.activation = Neuron("LI", {"tau": rng.uniform(5, 20, 5), "r": np.ones(5),
                                             "v_leak": rng.normal(size=5)}), parse_activation("linear")
    h3.neuron = Neuron("CubaLIF", {"tau_syn": np.full(4, 2.0), "tau_mem": np.full(4, 10.0), "r": np.ones(4),
                                   "v_leak": np.zeros(4), "v_threshold": np.full(4, 1.5), "v_reset": np.zeros(4),
                                   "w_in": rng.uniform(0.5, 2, 4)})
    return net


def simulate(net, cost, rate, duration):
    with BalancingNetwork(net, cost, rate=rate, monitor_dt=None, seed=3) as bn:
        bn.run(duration)
        return bn.network, bn.events, bn.log_scales


@pytest.mark.parametrize("cost", [nb.Lp(2), pytest.param(nb.Lp(0.7), marks=pytest.mark.slow),
                                  pytest.param(nb.Linf(), marks=pytest.mark.slow)], ids=str)
def test_the_replay_of_gauge_and_exchange_events_is_the_agents_trajectory(cost):
    net = mixed_graph()
    got, events, _ = simulate(net, cost, rate=2000.0, duration=0.005)  # ~10 events per unit, far from balance
    assert {"h1", "h2", "h3"} <= set(events.population)
    rep = replay(net, cost, events)
    assert max_relative_difference(got, rep.network) <= EXACT  # weights, biases and potentials
    assert trajectory_difference(events, rep) <= EXACT
    got, events, scales = simulate(net, cost, rate=2000.0, duration=0.05)  # ~100 events per unit
    rep = replay(net, cost, events)
    assert max_relative_difference(got, rep.network) <= ROUNDED
    assert trajectory_difference(events, rep) <= ROUNDED
    for name in ("h1", "h2", "h3"):
        np.testing.assert_allclose(scales[name], rep.log_scales[name], rtol=0, atol=ROUNDED)
    best = nb.balance(net, cost, tol=1e-13)
    assert max_relative_difference(got, best.network) <= 1e-8  # converged to nb.balance's state


@pytest.mark.slow
def test_a_gauge_step_taken_as_an_exchange_is_caught_even_where_weights_converge(monkeypatch):
    """If the gauge units also divided their outgoing weights (the exchange's half), the agents would still
    settle (every unit balanced), but in another state and along another path."""
    net, cost = mixed_graph(), nb.Lp(2)
    original = build_module.agent_pathways

    def exchange_everywhere(*args, **kwargs):
        kwargs["scales"] = True
        return original(*args, **kwargs)

    monkeypatch.setattr(build_module, "agent_pathways", exchange_everywhere)
    got, events, _ = simulate(net, cost, rate=2000.0, duration=0.05)
    rep = replay(net, cost, events)
    assert trajectory_difference(events, rep) > 1e-3
    assert max_relative_difference(got, rep.network) > 1e-3


def test_a_wrong_schedule_on_a_converged_gauge_run_is_caught_by_the_trajectory(monkeypatch):
    """Neighbour detection switched off: neighbours that request together act on stale sums. Converged, the
    final parameters agree with the replay to rounding; the factors recorded at the events do not."""
    net, cost = mixed_graph(), nb.Lp(2)
    monkeypatch.setattr(build_module, "detect_code", lambda side, flag="req": f"lost_{side} += 0")
    with BalancingNetwork(net, cost, rate=5000.0, monitor_dt=None, seed=3) as bn:
        bn.run(0.1)
        got, events = bn.network, bn.events
    rep = replay(net, cost, events)
    assert nb.imbalance(got, cost).max_relative < 1e-12  # converged
    assert max_relative_difference(got, rep.network) <= 1e-10  # final parameters: blind
    assert trajectory_difference(events, rep) > 1e-4  # trajectory: caught


def test_the_rate_invariance_on_a_graph_with_spiking_units_points_to_its_rate_model():
    from neuro_balance.errors import ModelError

    with pytest.raises(ModelError, match="node 'h1': LIF leaks"):
        BalancingNetwork(mixed_graph(), nb.Lp(2), invariance="rate")
