import numpy as np
import pytest
from hypothesis import given, strategies as st

import neuro_balance as nb
from neuro_balance import ModelError

from strategies import inputs_for, networks, random_log_scales, relative_error, weight_distance


@given(networks(), st.integers(0, 1000), st.floats(0.1, 3.0))
def test_random_log_scales_leave_the_function_unchanged(net, seed, spread):
    x = inputs_for(net, seed)
    scaled = nb.scale(net, random_log_scales(net, seed, spread))
    assert relative_error(net.forward(x), scaled.forward(x)) <= 1e-10


def test_bipu_units_scale_outgoing_weights_by_lam_to_the_degree():
    net = nb.mlp([3, 4, 2], activation="bipu:2.0", seed=3)
    x = np.abs(np.random.default_rng(0).normal(size=(5, 3)))
    scaled = nb.scale(net, {"h1": np.log([0.5, 2.0, 3.0, 0.1])})
    assert relative_error(net.forward(x), scaled.forward(x)) <= 1e-12
    np.testing.assert_allclose(scaled.projections[1].weight, net.projections[1].weight / np.array([0.5, 2, 3, 0.1]) ** 2)


def test_scaling_a_tanh_unit_changes_the_function():
    net = nb.mlp([3, 5, 5, 2], activation=["relu", "tanh"], seed=0)
    x = inputs_for(net)
    scaled = nb.scale(net, {"h2": np.full(5, 1.0)}, strict=False)
    assert relative_error(net.forward(x), scaled.forward(x)) > 1e-3


def test_scaling_refuses_ground_populations_when_strict():
    net = nb.mlp([3, 5, 5, 2], activation=["relu", "tanh"], seed=0)
    with pytest.raises(ModelError, match="h2"):
        nb.scale(net, {"h2": np.ones(5)})
    with pytest.raises(ModelError, match="out"):
        nb.scale(net, {"out": np.ones(2)})


def test_leaving_a_bias_unscaled_changes_the_function():
    net = nb.mlp([3, 5, 2], seed=1)
    x = inputs_for(net)
    u = {"h1": np.full(5, 0.7)}
    scaled = nb.scale(net, u)
    scaled.populations["h1"].bias = net.populations["h1"].bias.copy()
    assert relative_error(net.forward(x), scaled.forward(x)) > 1e-3


@given(networks(recurrent=False), st.integers(0, 100))
def test_scalings_commute_and_compose(net, seed):
    u1, u2 = random_log_scales(net, seed), random_log_scales(net, seed + 1)
    a = nb.scale(nb.scale(net, u1), u2)
    b = nb.scale(nb.scale(net, u2), u1)
    c = nb.scale(net, {k: u1[k] + u2[k] for k in u1})
    assert weight_distance(a, b) <= 1e-13
    assert weight_distance(a, c) <= 1e-13


def test_scale_validates_log_scales():
    net = nb.mlp([3, 4, 2])
    with pytest.raises(ModelError, match="shape"):
        nb.scale(net, {"h1": np.ones(3)})
    with pytest.raises(ModelError, match="NaN"):
        nb.scale(net, {"h1": np.array([np.nan, 0, 0, 0])})
    with pytest.raises(ModelError, match="no population named 'h9'"):
        nb.scale(net, {"h9": np.ones(3)})


def test_scale_copies_unless_inplace():
    net = nb.mlp([3, 4, 2])
    before = net.projections[0].weight.copy()
    nb.scale(net, {"h1": np.ones(4)})
    np.testing.assert_array_equal(net.projections[0].weight, before)
    nb.scale(net, {"h1": np.ones(4)}, inplace=True)
    np.testing.assert_allclose(net.projections[0].weight, before * np.e)


def test_inplace_scaling_writes_into_the_given_arrays_and_a_copy_shares_none():
    net = nb.mlp([3, 4, 5, 2], seed=0)
    arrays = [proj.weight for proj in net.projections] + [pop.bias for pop in net.populations.values()
                                                          if pop.bias is not None]
    before = [a.copy() for a in arrays]
    u = {"h1": np.log([0.5, 2.0, 3.0, 0.1])}  # touches in->h1 and h1->h2, not h2->out
    copy = nb.scale(net, u)
    copied = [proj.weight for proj in copy.projections] + [pop.bias for pop in copy.populations.values()
                                                           if pop.bias is not None]
    assert not any(np.shares_memory(a, b) for a in arrays for b in copied)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)
    out = nb.scale(net, u, inplace=True)
    assert out is net
    assert all(x is y for x, y in zip(arrays, [proj.weight for proj in net.projections]))
    np.testing.assert_allclose(net.projections[0].weight, before[0] * np.array([0.5, 2.0, 3.0, 0.1])[:, None])
    np.testing.assert_allclose(net.projections[1].weight, before[1] / np.array([0.5, 2.0, 3.0, 0.1]))
    for proj, scaled in zip(net.projections, copy.projections):
        np.testing.assert_array_equal(scaled.weight, proj.weight)  # one multiplication order in both paths
