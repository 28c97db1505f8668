"""After enough events the agents reach the unique balanced state (theory Thm 5.1), function intact."""
from __future__ import annotations

import numpy as np
import pytest

import neuro_balance as nb

pytest.importorskip("brian2")
from neuro_balance.sim import BalancingNetwork, max_relative_difference  # noqa: E402

NETS = {
    "mlp": lambda: nb.mlp([8, 6, 6, 3], seed=11),
    "dag": lambda: nb.dag([8, 6, 6, 3], skips=((0, 2), (1, 3)), seed=12),
    "rnn": lambda: nb.rnn(5, [6, 4], 3, seed=13),
}


def inputs(net, rng):
    n = net.input.size
    return rng.normal(size=(4, 7, n)) if net.recurrent else rng.normal(size=(30, n))


@pytest.mark.parametrize("kind, p", [pytest.param(kind, p, marks=() if i == j else pytest.mark.slow)
                                     for i, kind in enumerate(sorted(NETS)) for j, p in enumerate([1.0, 2.0, 3.0])])
def test_agents_reach_the_global_balance(kind, p):
    net, cost = NETS[kind](), nb.Lp(p)
    bn = BalancingNetwork(net, cost, rate=1000.0, monitor_dt=None)
    bn.run(0.12)
    assert bn.events.counts()["h1"].min() >= 40  # "enough events": ~40 per unit reach 1e-12 (measured with the numpy replay)
    agents = bn.network
    best = nb.balance(net, cost, method="global", tol=1e-13)
    # the balanced state is unique, so the agents' weights equal the solver's
    assert max_relative_difference(agents, best.network) <= 1e-8
    assert nb.imbalance(agents, cost).max_relative <= 1e-9
    x = inputs(net, np.random.default_rng(0))
    y0, y1 = net.forward(x), agents.forward(x)
    assert np.max(np.abs(y1 - y0)) <= 1e-10 * np.max(np.abs(y0))


def test_run_agents_reports_agreement_and_spiking_rates():
    from neuro_balance.sim import run_agents
    net = nb.mlp([8, 6, 6, 3], seed=11)
    x = np.random.default_rng(1).uniform(0.0, 1.0, 8)
    run = run_agents(net, nb.Lp(2), x, duration=0.08, window=0.3, input_rate=1000.0, record_spikes=True)
    assert run.global_difference <= 1e-8 and run.function_change <= 1e-10
    assert run.imbalance_before > 0.1 and run.imbalance_after <= 1e-9
    assert run.history["imbalance"][0] > run.history["imbalance"][-1]
    assert np.all(np.abs(run.before.output - run.after.output) <= run.bound.output)
    assert all(len(r) for r in run.rate_ratios().values())
    t, i = run.spikes["h1"]
    total = 0.1 + 0.3 + 0.08 + 0.1 + 0.3
    assert len(t) == len(i) > 0 and t.max() < total and i.max() < 6
    before = (t >= 0.1) & (t < 0.4)
    np.testing.assert_array_equal(np.bincount(i[before], minlength=6), run.before.counts["h1"])
