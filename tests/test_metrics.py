import numpy as np
import pytest
from hypothesis import given, strategies as st

import neuro_balance as nb

from strategies import exponents, networks, random_log_scales


@given(networks(recurrent=False, tanh=False, bipu=False), st.floats(0.5, 3.0), exponents())
def test_path_norm_is_unchanged_by_balancing(net, q, p):
    before = nb.path_norm(net, q)
    after = nb.path_norm(nb.balance(net, nb.Lp(p)).network, q)
    assert after == pytest.approx(before, rel=1e-10)


@given(networks(recurrent=False, tanh=False, bipu=False), st.integers(0, 100))
def test_path_norm_is_unchanged_by_scaling(net, seed):
    scaled = nb.scale(net, random_log_scales(net, seed))
    assert nb.path_norm(scaled, 1.0) == pytest.approx(nb.path_norm(net, 1.0), rel=1e-10)


def test_path_norm_of_a_tiny_network_by_hand():
    net = nb.mlp([1, 2, 1], bias=False, seed=0)
    w1, w2 = net.projections[0].weight[:, 0], net.projections[1].weight[0]
    assert nb.path_norm(net, 2.0) == pytest.approx(np.sqrt(np.sum(w1 ** 2 * w2 ** 2)))


def test_imbalance_report_by_hand():
    net = nb.mlp([2, 2, 1], seed=0)
    rep = nb.imbalance(net, nb.Lp(2))
    W1, W2, b = net.projections[0].weight, net.projections[1].weight, net.populations["h1"].bias
    A = (W1 ** 2).sum(axis=1) + b ** 2
    B = (W2 ** 2).sum(axis=0)
    np.testing.assert_allclose(rep.in_cost["h1"], A)
    np.testing.assert_allclose(rep.out_cost["h1"], B)
    np.testing.assert_allclose(rep.lam_star["h1"], (B / A) ** 0.25)
    np.testing.assert_allclose(rep.deficit["h1"], (A - B) ** 2)
    np.testing.assert_allclose(rep.relative["h1"], np.abs(A - B) / np.maximum(A, B))
    assert rep.max_relative == pytest.approx(np.max(np.abs(A - B) / np.maximum(A, B)))
    total = (W1 ** 2).sum() + (W2 ** 2).sum() + (b ** 2).sum() + (net.populations["out"].bias ** 2).sum()
    assert rep.total_cost == pytest.approx(total)


def test_biases_can_be_left_out_of_the_cost_but_are_still_scaled():
    net = nb.mlp([3, 4, 2], seed=1)
    cost = nb.Lp(2, include_bias=False)
    rep = nb.imbalance(net, cost)
    np.testing.assert_allclose(rep.in_cost["h1"], (net.projections[0].weight ** 2).sum(axis=1))
    res = nb.balance(net, cost)
    lam = np.exp(res.log_scales["h1"])
    np.testing.assert_allclose(res.network.populations["h1"].bias, net.populations["h1"].bias * lam)
    out = nb.imbalance(res.network, cost)
    np.testing.assert_allclose(out.in_cost["h1"], out.out_cost["h1"], rtol=1e-10)


def test_mixed_costs_balance_the_stationarity_equation():
    """For alpha L1 + beta L2 balance means sum_in w g'(w) = sum_out w g'(w) (theory eq 3.2)."""
    net = nb.mlp([4, 5, 3], seed=3)
    cost = nb.Lp(1) + 0.5 * nb.Lp(2)
    res = nb.balance(net, cost, tol=1e-12)
    W1, W2 = res.network.projections[0].weight, res.network.projections[1].weight
    b = res.network.populations["h1"].bias
    lhs = np.abs(W1).sum(1) + np.abs(b) + 2 * 0.5 * ((W1 ** 2).sum(1) + b ** 2)
    rhs = np.abs(W2).sum(0) + 2 * 0.5 * (W2 ** 2).sum(0)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)
