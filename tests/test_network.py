import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance import ModelError, Network, Population, Projection


def small(**changes):
    pops = [Population("in", 3, "input", "linear"), Population("h", 4, "hidden", "relu", np.zeros(4)),
            Population("out", 2, "output", "linear")]
    projs = [Projection("in", "h", np.ones((4, 3))), Projection("h", "out", np.ones((2, 4)))]
    for key, value in changes.items():
        if key == "pops":
            pops = value
        if key == "projs":
            projs = value
    return Network(pops, projs)


def test_forward_matches_a_hand_computed_mlp():
    net = nb.mlp([3, 4, 2], seed=0)
    x = np.random.default_rng(1).normal(size=(6, 3))
    h = np.maximum(x @ net.projections[0].weight.T + net.populations["h1"].bias, 0)
    y = h @ net.projections[1].weight.T + net.populations["out"].bias
    np.testing.assert_allclose(net.forward(x), y, rtol=1e-14)


def test_skip_projections_add_into_their_target():
    net = nb.dag([3, 5, 4, 2], skips=[(0, 2), (1, 3)], seed=2)
    x = np.random.default_rng(0).normal(size=(4, 3))
    W = {p.name: p.weight for p in net.projections}
    b = {n: p.bias for n, p in net.populations.items()}
    h1 = np.maximum(x @ W["in->h1"].T + b["h1"], 0)
    h2 = np.maximum(h1 @ W["h1->h2"].T + x @ W["in->h2"].T + b["h2"], 0)
    y = h2 @ W["h2->out"].T + h1 @ W["h1->out"].T + b["out"]
    np.testing.assert_allclose(net.forward(x), y, rtol=1e-13)


def test_recurrent_forward_uses_the_previous_step():
    net = nb.rnn(2, [3], 1, seed=0)
    x = np.random.default_rng(0).normal(size=(5, 2, 2))
    W = {p.name: p.weight for p in net.projections}
    b = {n: p.bias for n, p in net.populations.items()}
    h = np.zeros((2, 3))
    ys = []
    for t in range(5):
        h = np.maximum(x[t] @ W["in->h1"].T + h @ W["h1->h1"].T + b["h1"], 0)
        ys.append(h @ W["h1->out"].T + b["out"])
    np.testing.assert_allclose(net.forward(x), np.stack(ys), rtol=1e-13)


@pytest.mark.parametrize("change, message", [
    (dict(projs=[Projection("in", "h", np.ones((4, 2))), Projection("h", "out", np.ones((2, 4)))]), r"weight: shape \(4, 2\)"),
    (dict(projs=[Projection("in", "h", np.full((4, 3), np.nan)), Projection("h", "out", np.ones((2, 4)))]), "NaN or Inf"),
    (dict(projs=[Projection("in", "h", np.ones((4, 3))), Projection("h", "out", np.full((2, 4), np.inf))]), "NaN or Inf"),
    (dict(projs=[Projection("in", "nowhere", np.ones((4, 3)))]), "post: no population named 'nowhere'"),
    (dict(projs=[Projection("in", "h", np.ones((4, 3)), delay=2)]), "delay: must be 0 or 1"),
    (dict(projs=[Projection("in", "h", np.ones((4, 3)), kind="fft")]), "unknown projection kind 'fft'"),
    (dict(projs=[Projection("in", "h", np.ones((4, 3))), Projection("h", "h", np.ones((4, 4)))]), "cycle"),
    (dict(pops=[Population("in", 3, "input"), Population("h", 4, "hidden", "relu", np.zeros(5)),
                Population("out", 2, "output")]), r"bias: shape \(5,\)"),
    (dict(pops=[Population("in", 3, "input"), Population("h", 4, "middle"), Population("out", 2, "output")]), "role"),
    (dict(pops=[Population("in", 3, "input"), Population("h", 0, "hidden"), Population("out", 2, "output")]), "size"),
    (dict(pops=[Population("in", 3, "input"), Population("h", 4, "hidden")]), "one output population"),
])
def test_invalid_networks_are_refused_with_the_field_named(change, message):
    with pytest.raises(ModelError, match=message):
        small(**change)


def test_unknown_activation_is_refused():
    with pytest.raises(ModelError, match="unknown activation 'swish'"):
        Population("h", 3, "hidden", "swish")


def test_forward_refuses_inputs_of_the_wrong_shape():
    with pytest.raises(ModelError, match=r"\(batch, 3\)"):
        small().forward(np.ones((2, 4)))
    with pytest.raises(ModelError, match=r"\(T, batch, 2\)"):
        nb.rnn(2, [3], 1).forward(np.ones((2, 2)))
