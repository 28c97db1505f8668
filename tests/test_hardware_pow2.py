"""Quantisation-aware balancing: powers of two applied as exact shifts."""
import numpy as np
from hypothesis import given, settings, strategies as st

import neuro_balance as nb
from neuro_balance.hardware import apply_pow2, balance_pow2

from strategies import costs, inputs_for, networks, relative_error


@settings(max_examples=25)
@given(networks(max_width=24, max_depth=4), costs(linf=False, mixed=False))
def test_every_factor_is_an_exact_power_of_two_and_the_function_is_kept(net, cost):
    res = balance_pow2(net, cost, max_iter=200)
    assert all(np.issubdtype(k.dtype, np.integer) for k in res.exponents.values())
    for name, u in res.result.log_scales.items():
        np.testing.assert_allclose(u / np.log(2.0), res.exponents[name], atol=1e-9)
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
    pow2 = balance_pow2(net, cost, max_iter=200)
    best = nb.balance(net, cost, method="global")
    start = nb.imbalance(net, cost).total_cost
    reached = nb.imbalance(pow2.network, cost).total_cost
    assert reached <= start * (1 + 1e-12)
    assert reached >= best.cost_after * (1 - 1e-9)
    assert np.isclose(reached, pow2.result.cost_after, rtol=1e-9)


def test_pow2_balancing_moves_units_that_are_far_from_balance():
    net = nb.mlp([5, 6, 4], seed=0)
    net.projections[0].weight *= 16.0          # h1's in-cost 256x its out-cost
    res = balance_pow2(net, nb.Lp(2))
    assert np.all(res.exponents["h1"] < 0)
    assert res.result.cost_after < res.result.cost_before


def test_apply_pow2_scales_bias_and_weights_by_the_stated_shifts():
    net = nb.mlp([2, 2, 1], seed=0)
    out = apply_pow2(net, {"h1": np.array([1, -2])})
    np.testing.assert_array_equal(out.populations["h1"].bias, net.populations["h1"].bias * [2.0, 0.25])
    np.testing.assert_array_equal(out.projections[0].weight, net.projections[0].weight * np.array([[2.0], [0.25]]))
    np.testing.assert_array_equal(out.projections[1].weight, net.projections[1].weight * np.array([[0.5, 4.0]]))
