"""Quantisation-aware balancing (``scale_grid="pow2"``): powers of two applied as exact shifts."""
import numpy as np
from hypothesis import given, settings, strategies as st

import neuro_balance as nb

from strategies import costs, inputs_for, networks, relative_error


@settings(max_examples=25)
@given(networks(max_width=24, max_depth=4), costs(linf=False, mixed=False))
def test_every_factor_is_an_exact_power_of_two_and_the_function_is_kept(net, cost):
    res = nb.balance(net, cost, method="sweep", scale_grid="pow2", max_iter=200)
    for u in res.log_scales.values():
        np.testing.assert_array_equal(u / np.log(2.0), np.rint(u / np.log(2.0)))
    for old, new in zip(net.projections, res.network.projections):
        nz = old.weight != 0
        mant_old, exp_old = np.frexp(old.weight[nz])
        mant_new, exp_new = np.frexp(new.weight[nz])
        assert np.array_equal(mant_old, mant_new)          # only the binary exponent moved
    for name, pop in net.populations.items():
        if pop.bias is not None:
            assert np.array_equal(np.frexp(pop.bias)[0], np.frexp(res.network.populations[name].bias)[0])
    x = inputs_for(net)
    assert relative_error(res.network.forward(x), net.forward(x)) < 1e-12


@settings(max_examples=25)
@given(networks(max_width=24, max_depth=4, recurrent=False), st.sampled_from([1.0, 2.0, 0.5]))
def test_pow2_cost_lies_between_the_continuous_optimum_and_the_start(net, p):
    cost = nb.Lp(p)
    pow2 = nb.balance(net, cost, method="sweep", scale_grid="pow2", max_iter=200)
    best = nb.balance(net, cost, method="global")
    start = nb.imbalance(net, cost).total_cost
    reached = nb.imbalance(pow2.network, cost).total_cost
    assert reached <= start * (1 + 1e-12)
    assert reached >= best.cost_after * (1 - 1e-9)
    assert np.isclose(reached, pow2.cost_after, rtol=1e-9)


def test_pow2_balancing_moves_units_that_are_far_from_balance():
    net = nb.mlp([5, 6, 4], seed=0)
    net.projections[0].weight *= 16.0          # h1's in-cost 256x its out-cost
    res = nb.balance(net, nb.Lp(2), method="sweep", scale_grid="pow2")
    assert np.all(res.log_scales["h1"] < 0)
    assert res.cost_after < res.cost_before

