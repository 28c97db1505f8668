"""Each Brian2 agent network draws from its own random stream; numpy's global generator is never reseeded."""
from __future__ import annotations

import numpy as np
import pytest

import neuro_balance as nb

pytest.importorskip("brian2")
from neuro_balance.sim import BalancingNetwork  # noqa: E402


def poisson_network(seed: int) -> BalancingNetwork:
    """Random numbers everywhere: Poisson input spikes, priorities and the agents' next request times."""
    bn = BalancingNetwork(nb.mlp([6, 5, 4, 3], seed=1), nb.Lp(2), rate=800.0, spiking=True, coding="poisson",
                          input_rate=300.0, monitor_dt=None, seed=seed)
    bn.set_input(np.linspace(0.2, 1.0, 6))
    return bn


def test_a_run_leaves_the_users_numpy_stream_alone():
    """Repro: ``b2.seed()`` at the first run reseeded numpy's global generator, so a user's
    ``np.random`` draws after a run depended on the network's seed."""
    np.random.seed(123)
    expected = np.random.rand(5)
    np.random.seed(123)
    bn = poisson_network(seed=7)
    bn.run(0.01)
    assert len(bn.events) > 0
    np.testing.assert_array_equal(np.random.rand(5), expected)


def test_a_networks_events_do_not_depend_on_another_network_running_in_between():
    """Repro: a second network's first run reseeded the shared generator, so the first network's
    later events (and spikes) changed when another network ran in between."""
    alone = poisson_network(seed=3)
    alone.run(0.01)
    alone.run(0.01)
    interrupted = poisson_network(seed=3)
    interrupted.run(0.01)
    other = poisson_network(seed=4)
    other.run(0.01)
    np.random.rand(1000)  # the user draws too
    interrupted.run(0.01)
    assert len(alone.events) > 50
    for field in ("step", "population", "index"):
        np.testing.assert_array_equal(getattr(interrupted.events, field), getattr(alone.events, field))
    for name, (t, i) in alone.spikes.items():
        np.testing.assert_array_equal(interrupted.spikes[name][0], t)
    # and the seed matters: another seed gives other events
    assert not np.array_equal(other.events.step[:50], alone.events.step[:50])
