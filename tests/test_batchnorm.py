"""Batch normalisation in the trainer: exact gradients, folding that keeps the function, training that uses it."""
import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.learn.backprop import gradients
from neuro_balance.learn.batchnorm import BatchNorm
from neuro_balance.learn.parameters import parameters
from neuro_balance.learn.training import train


def _conv_net():
    return nb.conv_net((1, 6, 6), [{"channels": 3, "kernel": 3, "padding": 1}], dense=[5], n_out=3, seed=0)


@pytest.mark.parametrize("make", [_conv_net, lambda: nb.mlp([6, 5, 4, 3], activation="tanh", seed=1)])
def test_batch_norm_gradients_match_central_differences(make):
    net = make()
    rng = np.random.default_rng(0)
    X, y = rng.random((9, net.input.n_features)), rng.integers(0, 3, 9)
    bn = BatchNorm.for_network(net)
    for key, v in bn.parameters().items():
        v[:] = rng.normal(1.0 if "gamma" in key else 0.0, 0.3, v.shape)
    _, grads = gradients(net, X, y, batch_norm=bn)
    params = {**parameters(net), **bn.parameters()}
    assert set(grads) == set(params)
    h = 1e-6
    for key, w in params.items():
        for idx in list(np.ndindex(w.shape))[:5]:
            old = w[idx]
            w[idx] = old + h
            up, _ = gradients(net, X, y, batch_norm=bn)
            w[idx] = old - h
            down, _ = gradients(net, X, y, batch_norm=bn)
            w[idx] = old
            # central differences: error O(h**2) plus rounding ~1e-16 / h
            assert grads[key][idx] == pytest.approx((up - down) / (2 * h), abs=1e-6), (key, idx)


def test_folding_keeps_the_normalised_function_with_the_data_statistics():
    net = _conv_net()
    rng = np.random.default_rng(1)
    X = rng.random((40, 36))
    bn = BatchNorm.for_network(net)
    for key, v in bn.parameters().items():
        v[:] = rng.normal(1.0 if "gamma" in key else 0.0, 0.5, v.shape)
    # The normalised network on the whole batch X, written out layer by layer with X's statistics.
    acts = {"in": X}
    for name in net.order[1:]:
        z = net.preactivation(name, acts, None)
        acts[name] = net.populations[name].activation(bn.forward(name, z))
    folded = bn.fold(net, X)
    np.testing.assert_allclose(folded.forward(X), acts[net.output.name], rtol=1e-10, atol=1e-12)
    # Folding multiplies each unit's incoming weights by gamma / sigma: per-unit ranges move apart.
    assert not np.allclose(folded.projections[0].weight, net.projections[0].weight)


def test_training_with_batch_norm_returns_a_folded_plain_network_that_learns():
    net = nb.mlp([8, 12, 3], seed=2)
    rng = np.random.default_rng(3)
    X = rng.random((120, 8))
    y = (X[:, 0] + X[:, 1] > X[:, 2] + 0.5).astype(int) + (X[:, 3] > 0.7)
    res = train(net, X, y, epochs=15, lr=0.01, optimizer="adam", batch_norm=True, diagnostics=False)
    assert isinstance(res.network, nb.Network) and res.history["accuracy"][-1] > res.history["accuracy"][0]
    with pytest.raises(ValueError, match="batch_norm"):
        train(net, X, y, epochs=1, batch_norm=True, balance="before")
    with pytest.raises(nb.ModelError, match="recurrent"):
        BatchNorm.for_network(nb.rnn(4, [5], 2))
