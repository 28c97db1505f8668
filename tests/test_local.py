"""The stochastic algorithm's one-unit fast paths take exactly the steps of the general update."""
import numpy as np
from hypothesis import assume, given, strategies as st

from neuro_balance.balancing.graph import build_graph
from neuro_balance.balancing.local import BalanceState
from neuro_balance.balancing.stochastic import UnitLoop

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


@given(networks(max_width=16), costs(mixed=False), st.data())
def test_the_unit_loop_takes_the_steps_of_balance_one_in_order(net, cost, data):
    """UnitLoop (one call per update, constant parts summed once) against balance_one, unit by unit (Lp, L-inf)."""
    graph = build_graph(net, cost)
    units = [(n, int(i)) for n in graph.sizes for i in np.flatnonzero(graph.free[n])]
    assume(units)
    order = data.draw(st.lists(st.integers(0, len(units) - 1), min_size=1, max_size=3 * len(units)), label="order")
    fraction = data.draw(st.sampled_from([1.0, 0.5]), label="fraction")
    fast, reference = BalanceState(graph), BalanceState(graph)
    loop = UnitLoop(fast, units)
    loop.run(order, fraction)
    loop.sync()
    for k in order:
        reference.balance_one(*units[k], fraction)
    for name in graph.sizes:
        np.testing.assert_allclose(fast.u[name], reference.u[name], rtol=1e-9, atol=1e-12)


@given(networks(max_width=16), costs(), st.data())
def test_cached_products_give_the_costs_of_a_fresh_evaluation(net, cost, data):
    """After any steps, the state's imbalance and cost (cached block products) equal `FlatGraph.evaluate`'s."""
    graph = build_graph(net, cost)
    units = [(n, int(i)) for n in graph.sizes for i in np.flatnonzero(graph.free[n])]
    state = BalanceState(graph)
    steps = data.draw(st.lists(st.tuples(st.sampled_from(units), st.booleans()), max_size=6), label="steps") \
        if units else []
    for (name, i), whole in steps:  # a whole population (cached products) or one unit (rows only)
        state.balance(name, np.flatnonzero(graph.free[name]) if whole else np.array([i]))
        imbalance, cost_now = state.check()
        fresh = graph.flat.evaluate(graph.flat.pack(state.u))
        assert np.isclose(cost_now, graph.flat.cost(fresh), rtol=1e-12, atol=0)
        assert np.isclose(imbalance, graph.flat.max_imbalance(fresh), rtol=1e-9, atol=1e-12)
