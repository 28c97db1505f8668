"""The stochastic algorithm's one-unit fast path takes exactly the step of the general update."""
import numpy as np
from hypothesis import assume, given, strategies as st

from neuro_balance.balancing.graph import build_graph
from neuro_balance.balancing.local import BalanceState

from strategies import costs, networks


@given(networks(max_width=16), costs(), st.data())
def test_the_fast_one_unit_step_is_the_general_step(net, cost, data):
    """balance_one (scalars, views: the random schedule's inner loop) against balance (any unit kind)."""
    graph = build_graph(net, cost)
    units = [(n, int(i)) for n in graph.sizes for i in np.flatnonzero(graph.free[n])]
    assume(units)  # every unit is ground: no step to compare
    fast, general = BalanceState(graph), BalanceState(graph)
    # a few updates first, so that the step is taken from a state other than the start
    for name, i in data.draw(st.lists(st.sampled_from(units), min_size=1, max_size=6), label="order"):
        step = fast.balance_one(name, i)
        assert np.isclose(step, general.balance(name, np.array([i]))[0], rtol=1e-9, atol=1e-12)
    for name in graph.sizes:
        np.testing.assert_allclose(fast.u[name], general.u[name], rtol=1e-9, atol=1e-12)
