"""Convolutional, locally connected and pooled projections (neuro_balance.model.conv).

The forward pass is checked against explicit-loop oracles written here; balancing is checked with
per-channel costs recomputed here from the weights with explicit loops, not through the cost graph.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import neuro_balance as nb
import neuro_balance.model.conv  # noqa: F401  (registers the kinds)
from neuro_balance.model.conv import conv_net
from neuro_balance.errors import ModelError
from neuro_balance.model.kinds import get_kind
from neuro_balance.model.network import Network, Population, Projection

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BALANCE = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------ oracles (loops)
def ref_pool(maps, kind, size, stride):
    B, C, H, W = maps.shape
    Ho, Wo = (H - size[0]) // stride[0] + 1, (W - size[1]) // stride[1] + 1
    out = np.zeros((B, C, Ho, Wo))
    for b in range(B):
        for c in range(C):
            for r in range(Ho):
                for s in range(Wo):
                    win = maps[b, c, r * stride[0]:r * stride[0] + size[0], s * stride[1]:s * stride[1] + size[1]]
                    out[b, c, r, s] = win.max() if kind == "max" else win.mean()
    return out


def ref_pad(maps, padding):
    B, C, H, W = maps.shape
    out = np.zeros((B, C, H + 2 * padding[0], W + 2 * padding[1]))
    out[:, :, padding[0]:padding[0] + H, padding[1]:padding[1] + W] = maps
    return out


def ref_conv(maps, weight, stride, groups):
    B, C, H, W = maps.shape
    O, Cg, kh, kw = weight.shape
    Og = O // groups
    Ho, Wo = (H - kh) // stride[0] + 1, (W - kw) // stride[1] + 1
    out = np.zeros((B, O, Ho, Wo))
    for b in range(B):
        for o in range(O):
            g = o // Og
            for r in range(Ho):
                for s in range(Wo):
                    total = 0.0
                    for c in range(Cg):
                        for i in range(kh):
                            for j in range(kw):
                                total += weight[o, c, i, j] * maps[b, g * Cg + c, r * stride[0] + i, s * stride[1] + j]
                    out[b, o, r, s] = total
    return out


def ref_lc(maps, weight, stride):
    B = maps.shape[0]
    O, Ho, Wo, C, kh, kw = weight.shape
    out = np.zeros((B, O, Ho, Wo))
    for b in range(B):
        for o in range(O):
            for r in range(Ho):
                for s in range(Wo):
                    for c in range(C):
                        for i in range(kh):
                            for j in range(kw):
                                out[b, o, r, s] += weight[o, r, s, c, i, j] * maps[b, c, r * stride[0] + i,
                                                                                     s * stride[1] + j]
    return out


def pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def ref_propagate(proj, pre, x):
    maps = x.reshape((x.shape[0],) + pre.shape)
    opt = proj.options
    if opt.get("pool"):
        pool = opt["pool"]
        maps = ref_pool(maps, pool["kind"], pair(pool["size"]), pair(pool.get("stride", pool["size"])))
    maps = ref_pad(maps, pair(opt.get("padding", 0)))
    stride = pair(opt.get("stride", 1))
    if proj.kind == "conv2d":
        return ref_conv(maps, proj.weight, stride, opt.get("groups", 1)).reshape(x.shape[0], -1)
    return ref_lc(maps, proj.weight, stride).reshape(x.shape[0], -1)


def ref_unit_costs(net, p):
    """Per population: (in-cost, out-cost) per unit, summed with explicit loops over parameters' units."""
    ins = {n: np.zeros(pop.size) for n, pop in net.populations.items()}
    outs = {n: np.zeros(pop.size) for n, pop in net.populations.items()}
    for name, pop in net.populations.items():
        if pop.bias is not None:
            ins[name] += np.abs(pop.bias) ** p
    for proj in net.projections:
        pre, post = net.populations[proj.pre], net.populations[proj.post]
        w = np.abs(proj.weight) ** p
        if proj.kind == "dense":
            per_post = post.n_features // post.size
            per_pre = pre.n_features // pre.size
            for f in range(post.n_features):
                for e in range(pre.n_features):
                    ins[post.name][f // per_post] += w[f, e]
                    outs[pre.name][e // per_pre] += w[f, e]
        elif proj.kind == "conv2d":
            O, Cg = w.shape[:2]
            Og = O // proj.options.get("groups", 1)
            for o in range(O):
                for c in range(Cg):
                    ins[post.name][o] += w[o, c].sum()
                    outs[pre.name][(o // Og) * Cg + c] += w[o, c].sum()
        else:
            O, Ho, Wo, C, kh, kw = w.shape
            stride = pair(proj.options.get("stride", 1))
            for o in range(O):
                for r in range(Ho):
                    for s in range(Wo):
                        unit = (o * Ho + r) * Wo + s if post.size != post.shape[0] else o
                        ins[post.name][unit] += w[o, r, s].sum()
                        for c in range(C):
                            if pre.size == pre.shape[0]:
                                outs[pre.name][c] += w[o, r, s, c].sum()
                                continue
                            for i in range(kh):
                                for j in range(kw):
                                    y, x = r * stride[0] + i, s * stride[1] + j
                                    outs[pre.name][(c * pre.shape[1] + y) * pre.shape[2] + x] += w[o, r, s, c, i, j]
    return ins, outs


# ------------------------------------------------------------------------------ strategies
@st.composite
def conv_layer_specs(draw, shape, previous_per_position, last):
    """One map layer that fits a pre map of ``shape``; None when nothing fits."""
    C, H, W = shape
    kinds = ["locally_connected"] if previous_per_position else ["conv2d", "conv2d", "locally_connected"]
    kind = draw(st.sampled_from(kinds))
    spec = {"kind": kind, "channels": draw(st.integers(1, 4))}
    if not previous_per_position and min(H, W) >= 4 and draw(st.booleans()):
        size = 2
        spec["pool"] = {"kind": draw(st.sampled_from(["max", "avg"])), "size": size,
                        "stride": draw(st.integers(1, 2))}
        s = spec["pool"]["stride"]
        H, W = (H - size) // s + 1, (W - size) // s + 1
    padding = 0 if previous_per_position else draw(st.integers(0, 1))
    kernel = draw(st.integers(1, min(3, min(H, W) + 2 * padding)))
    spec.update(kernel=kernel, stride=draw(st.integers(1, 2)), padding=padding)
    if kind == "conv2d":
        common = math.gcd(C, spec["channels"])
        spec["groups"] = draw(st.sampled_from([g for g in range(1, common + 1) if common % g == 0]))
    else:
        # A per-position map can only feed another locally connected layer or the dense head.
        spec["per_position"] = draw(st.booleans()) if last or kind == "locally_connected" else False
    return spec


@st.composite
def conv_networks(draw, max_layers=3, activations=("relu", "leaky_relu:0.2")):
    shape = (draw(st.integers(1, 3)), draw(st.integers(5, 9)), draw(st.integers(5, 9)))
    n_layers = draw(st.integers(1, max_layers))
    layers = []
    current, per_position = shape, False
    for k in range(n_layers):
        spec = draw(conv_layer_specs(current, per_position, k == n_layers - 1))
        if spec["kind"] == "conv2d" or not spec["per_position"]:
            spec["per_position"] = False if spec["kind"] == "locally_connected" else spec.pop("per_position", False)
        geo = neuro_balance.model.conv.geometry({k_: v for k_, v in spec.items()
                                           if k_ in ("kernel", "stride", "padding", "pool")}, current)
        layers.append(spec)
        current = (spec["channels"],) + geo.out_hw
        per_position = spec.get("per_position", False)
    dense = draw(st.lists(st.integers(2, 6), max_size=1))
    out_index = n_layers + len(dense) + 1
    sources = [i for i in range(n_layers + 1) if i < out_index - 1]
    skips = [(draw(st.sampled_from(sources)), out_index)] if sources else []
    return conv_net(shape, layers, dense=dense, n_out=draw(st.integers(1, 3)),
                    activation=draw(st.sampled_from(activations)), skips=skips, seed=draw(st.integers(0, 2**16)))


def random_log_scales(net, rng, spread=1.0):
    return {n: rng.normal(0.0, spread, pop.size) for n, pop in net.populations.items() if pop.balanced}


def inputs(net, rng, batch=3):
    return rng.normal(size=(batch, net.input.n_features))


def assert_same_function(a, b, x, rtol=1e-10):
    ya, yb = a.forward(x), b.forward(x)
    assert np.max(np.abs(ya - yb)) <= rtol * max(1.0, np.max(np.abs(ya)))


def assert_same_weights(a, b, rtol):
    for pa, pb in zip(a.projections, b.projections):
        assert np.max(np.abs(pa.weight - pb.weight)) <= rtol * np.max(np.abs(pa.weight)), pa.name
    for name, pop in a.populations.items():
        if pop.bias is not None:
            other = b.populations[name].bias
            assert np.max(np.abs(pop.bias - other)) <= rtol * max(np.max(np.abs(pop.bias)), 1e-300), name


def balanced(net, cost, method="global", **kwargs):
    """Balance to 1e-12 and require the max relative imbalance (from the cost graph) to be <= 1e-10."""
    res = nb.balance(net, cost, method=method, tol=1e-12, **kwargs)
    assert res.imbalance <= 1e-10, res
    return res


# ------------------------------------------------------------------------------ forward pass
@st.composite
def single_projections(draw):
    """(kind, pre shape, post channels, options) for one map projection with random geometry."""
    kind = draw(st.sampled_from(["conv2d", "locally_connected"]))
    C, H, W = draw(st.integers(1, 4)), draw(st.integers(3, 8)), draw(st.integers(3, 8))
    pre_shape = (C, H, W)
    options = {}
    if draw(st.booleans()):
        size = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
        options["pool"] = {"kind": draw(st.sampled_from(["max", "avg"])), "size": size,
                           "stride": [draw(st.integers(1, 3)), draw(st.integers(1, 3))]}
        H, W = (H - size[0]) // options["pool"]["stride"][0] + 1, (W - size[1]) // options["pool"]["stride"][1] + 1
    options["padding"] = [draw(st.integers(0, 2)), draw(st.integers(0, 2))]
    options["kernel"] = [draw(st.integers(1, H + 2 * options["padding"][0])),
                         draw(st.integers(1, W + 2 * options["padding"][1]))]
    options["stride"] = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    O = draw(st.integers(1, 4))
    if kind == "conv2d":
        common = math.gcd(C, O)
        options["groups"] = draw(st.sampled_from([g for g in range(1, common + 1) if common % g == 0]))
    return kind, pre_shape, O, options


@SETTINGS
@given(single_projections(), st.data())
def test_forward_matches_loop_oracle(spec, data):
    kind, (C, H, W), O, options = spec
    geo = neuro_balance.model.conv.geometry(options, (C, H, W), allow_groups=kind == "conv2d")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    per_position = kind == "locally_connected" and data.draw(st.booleans())
    out_shape = (O,) + geo.out_hw
    pre = Population("a", C, "input", "linear", shape=(C, H, W))
    post = Population("b", O * geo.out_hw[0] * geo.out_hw[1] if per_position else O, "output", "linear",
                      shape=out_shape)
    k = get_kind(kind)
    proj = Projection("a", "b", np.zeros(1), kind=kind, options=options)
    proj.weight = rng.normal(size=k.expected_shape(proj, pre, post))
    Network([pre, post], [proj])  # validates
    x = rng.normal(size=(2, pre.n_features))
    got = k.propagate(proj, pre, post, x)
    assert got.shape == (2, post.n_features)
    np.testing.assert_allclose(got, ref_propagate(proj, pre, x), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(single_projections(), st.data())
def test_vjp_is_the_adjoint_of_propagate(spec, data):
    kind, (C, H, W), O, options = spec
    geo = neuro_balance.model.conv.geometry(options, (C, H, W), allow_groups=kind == "conv2d")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    pre = Population("a", C, "input", "linear", shape=(C, H, W))
    post = Population("b", O, "output", "linear", shape=(O,) + geo.out_hw)
    k = get_kind(kind)
    proj = Projection("a", "b", np.zeros(1), kind=kind, options=options)
    proj.weight = rng.normal(size=k.expected_shape(proj, pre, post))
    x = rng.normal(size=(2, pre.n_features))
    grad = rng.normal(size=(2, post.n_features))
    grad_w, grad_x = k.vjp(proj, pre, post, x, grad)
    assert grad_w.shape == proj.weight.shape and grad_x.shape == x.shape
    # Linear in the weight: <grad, f(dW)> = <grad_w, dW> exactly.
    dw = rng.normal(size=proj.weight.shape)
    moved = Projection("a", "b", dw, kind=kind, options=options)
    lhs = np.sum(grad * k.propagate(moved, pre, post, x))
    assert abs(lhs - np.sum(grad_w * dw)) <= 1e-10 * max(1.0, abs(lhs))
    # Piecewise linear in x (max pooling): a small step stays on one piece.
    dx = rng.normal(size=x.shape)
    eps = 1e-7
    fd = np.sum(grad * (k.propagate(proj, pre, post, x + eps * dx) - k.propagate(proj, pre, post, x - eps * dx))) / (2 * eps)
    assert abs(fd - np.sum(grad_x * dx)) <= 1e-5 * max(1.0, abs(fd))


def test_max_pool_gradient_goes_to_the_window_maximum():
    pre = Population("a", 1, "input", "linear", shape=(1, 2, 2))
    post = Population("b", 1, "output", "linear", shape=(1, 1, 1))
    proj = Projection("a", "b", np.ones((1, 1, 1, 1)), kind="conv2d",
                      options={"kernel": 1, "pool": {"kind": "max", "size": 2}})
    Network([pre, post], [proj])
    x = np.array([[0.5, 3.0, -1.0, 2.0]])
    assert get_kind("conv2d").propagate(proj, pre, post, x).tolist() == [[3.0]]
    _, grad_x = get_kind("conv2d").vjp(proj, pre, post, x, np.array([[2.0]]))
    assert grad_x.tolist() == [[0.0, 2.0, 0.0, 0.0]]


def test_backpropagation_through_conv_nets_matches_finite_differences():
    """The training module's backpropagation, which asks each kind for its vjp, on every map kind."""
    from neuro_balance.learn.training import gradients, parameters
    layers = [{"channels": 4, "kernel": 3, "padding": 1, "pool": {"kind": "max", "size": 2}},
              {"channels": 4, "kernel": 3, "padding": 1, "groups": 2, "stride": 2},
              {"channels": 4, "kernel": 2, "groups": 4, "pool": {"kind": "avg", "size": 2, "stride": 1}},
              {"channels": 2, "kernel": 1, "kind": "locally_connected"}]
    net = conv_net((2, 10, 10), layers, dense=[5], n_out=3, activation="leaky_relu:0.1", skips=[(2, 6)], seed=4)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(4, net.input.n_features)), rng.integers(0, 3, size=4)
    _, grads = gradients(net, X, y, loss="cross_entropy")
    params = parameters(net)
    for key, array in params.items():
        flat = array.reshape(-1)
        for k in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            keep = flat[k]
            flat[k] = keep + 1e-6
            up, _ = gradients(net, X, y, loss="cross_entropy")
            flat[k] = keep - 1e-6
            down, _ = gradients(net, X, y, loss="cross_entropy")
            flat[k] = keep
            fd = (up - down) / 2e-6
            assert abs(fd - grads[key].reshape(-1)[k]) <= 1e-6 * max(1.0, abs(fd)), (key, k)


# ------------------------------------------------------------------------------ invariance
@SETTINGS
@given(conv_networks(), st.integers(0, 2**16))
def test_function_invariant_under_random_channel_scales(net, seed):
    rng = np.random.default_rng(seed)
    scaled = nb.scale(net, random_log_scales(net, rng))
    assert_same_function(net, scaled, inputs(net, rng), rtol=1e-10)
    # The scales really moved the weights (the test is not vacuous).
    assert any(not np.allclose(a.weight, b.weight) for a, b in zip(net.projections, scaled.projections))


def test_unscaled_bias_breaks_invariance():
    """Negative control: leaving one channel's bias unscaled changes the function."""
    net = conv_net((2, 6, 6), [{"channels": 3, "kernel": 3, "padding": 1}], dense=[4], n_out=2, seed=3)
    rng = np.random.default_rng(0)
    u = {"h1": np.log([2.0, 3.0, 0.5]), "h2": np.zeros(4)}
    scaled = nb.scale(net, u)
    scaled.populations["h1"].bias = net.populations["h1"].bias.copy()
    x = inputs(net, rng, batch=8)
    assert np.max(np.abs(scaled.forward(x) - net.forward(x))) > 1e-6


# ------------------------------------------------------------------------------ balancing
def assert_channels_balanced(net, p, dead, rtol):
    ins, outs = ref_unit_costs(net, p)
    for name, pop in net.populations.items():
        if not pop.balanced:
            continue
        keep = np.ones(pop.size, dtype=bool)
        keep[dead.get(name, [])] = False
        a, b = ins[name][keep], outs[name][keep]
        assert np.all(np.abs(a - b) <= rtol * np.maximum(a, b)), (name, np.max(np.abs(a - b) / np.maximum(a, b)))


@settings(max_examples=25, **BALANCE)
@given(conv_networks(), st.sampled_from([1.0, 2.0, 0.5]), st.integers(0, 2**16))
def test_global_balance_equalises_every_channel_and_keeps_the_function(net, p, seed):
    res = balanced(net, nb.Lp(p))
    assert_channels_balanced(res.network, p, res.dead_units, rtol=1e-10)
    assert_same_function(net, res.network, inputs(net, np.random.default_rng(seed)))
    assert res.cost_after <= res.cost_before * (1 + 1e-12)


@settings(max_examples=15, **BALANCE)
@given(conv_networks(max_layers=2), st.integers(0, 2**16))
def test_stochastic_and_global_reach_the_same_weights(net, seed):
    glob = balanced(net, nb.Lp(2))
    stoch = balanced(net, nb.Lp(2), method="stochastic", seed=seed)
    sweep = balanced(net, nb.Lp(2), method="sweep")
    assert_same_weights(glob.network, stoch.network, rtol=1e-8)
    assert_same_weights(glob.network, sweep.network, rtol=1e-8)


@settings(max_examples=20, **BALANCE)
@given(conv_networks(), st.integers(0, 2**16))
def test_balancing_a_rescaled_copy_gives_the_same_weights(net, seed):
    rng = np.random.default_rng(seed)
    first = balanced(net, nb.Lp(2))
    # Dead units (e.g. positions of a per-position map that nothing reads) are never scaled, so
    # their orbit is not collapsed: move only the others.
    u = random_log_scales(net, rng, spread=1.5)
    for name, idx in first.dead_units.items():
        u[name][idx] = 0.0
    second = balanced(nb.scale(net, u), nb.Lp(2))
    assert_same_weights(first.network, second.network, rtol=1e-8)


@settings(max_examples=15, **BALANCE)
@given(conv_networks(max_layers=2), st.sampled_from(["L1+0.1L2", "Lp:0.5", "Linf"]), st.integers(0, 2**16))
def test_mixed_and_linf_costs_balance_conv_nets(net, spec, seed):
    cost = nb.Lp(1) + 0.1 * nb.Lp(2) if spec == "L1+0.1L2" else nb.parse_cost(spec)
    glob = balanced(net, cost)
    sweep = balanced(net, cost, method="sweep")
    assert nb.imbalance(glob.network, cost).max_relative <= 1e-10
    assert_same_function(net, glob.network, inputs(net, np.random.default_rng(seed)))
    if not cost.is_linf:  # the L-infinity optimum is not unique; its max-balanced state is
        assert_same_weights(glob.network, sweep.network, rtol=1e-8)


def _layer_totals_balanced(net, p, rtol):
    ins, outs = ref_unit_costs(net, p)
    for name, pop in net.populations.items():
        if pop.balanced:
            a, b = ins[name].sum(), outs[name].sum()
            assert abs(a - b) <= rtol * max(a, b), name


@settings(max_examples=20, **BALANCE)
@given(st.one_of(conv_networks(),
                 st.builds(lambda sizes, seed: nb.dag(sizes, skips=((0, 2),), seed=seed),
                           st.lists(st.integers(1, 6), min_size=3, max_size=5), st.integers(0, 2**16))),
       st.sampled_from([1.0, 2.0]), st.integers(0, 2**16))
def test_layer_tied_balancing(net, p, seed):
    cost = nb.Lp(p)
    tied = balanced(net, cost, tie="layer")
    free = balanced(net, cost)
    _layer_totals_balanced(tied.network, p, rtol=1e-10)
    # One scale per layer shares each layer's log-scale.
    for name, u in tied.log_scales.items():
        assert np.ptp(u) == 0.0
    # The tied optimum is a restricted optimum: never below the untied one. (Dead units, e.g.
    # positions of a per-position map that nothing reads, are frozen when untied but move with
    # their layer when tied, so the comparison needs a net without them.)
    if not free.dead_units:
        assert tied.cost_after >= free.cost_after * (1 - 1e-12)
    x = inputs(net, np.random.default_rng(seed))
    assert_same_function(net, tied.network, x)
    assert_same_function(net, free.network, x)


def test_channel_tie_on_a_per_position_map():
    """tie="channel" gives a per-position locally connected map one scale per channel."""
    net = conv_net((2, 7, 7), [{"channels": 3, "kernel": 3, "kind": "locally_connected", "stride": 2}],
                   dense=[5], n_out=2, seed=5)
    assert net.populations["h1"].size == 3 * 3 * 3
    res = balanced(net, nb.Lp(2), tie="channel")
    u = res.log_scales["h1"].reshape(3, 9)
    assert np.all(np.ptp(u, axis=1) == 0.0) and np.ptp(u[:, 0]) > 0
    ins, outs = ref_unit_costs(res.network, 2.0)
    a, b = ins["h1"].reshape(3, 9).sum(axis=1), outs["h1"].reshape(3, 9).sum(axis=1)
    np.testing.assert_allclose(a, b, rtol=1e-10)
    assert_same_function(net, res.network, inputs(net, np.random.default_rng(1)))


# ------------------------------------------------------------------------------ groups
GROUPED = [{"channels": 8, "kernel": 3, "padding": 1, "groups": 4},    # grouped
           {"channels": 8, "kernel": 3, "groups": 8, "stride": 2}]      # depthwise


def test_group_mapping_names_the_true_pre_channel():
    net = conv_net((4, 8, 8), GROUPED, dense=[6], n_out=3, seed=2)
    for proj in net.projections[:2]:
        pre, post = net.populations[proj.pre], net.populations[proj.post]
        post_idx, pre_idx = get_kind("conv2d").groups(proj, pre, post)
        post_idx, pre_idx = np.broadcast_arrays(post_idx, pre_idx, proj.weight)[:2]
        # The oracle reads, for kernel slice [o, c], channel g*Cg + c: check that it is the only
        # pre channel whose activity changes the output of post channel o.
        O, Cg = proj.weight.shape[:2]
        G = proj.options["groups"]
        for o in range(O):
            for c in range(Cg):
                assert pre_idx[o, c, 0, 0] == (o // (O // G)) * Cg + c
                assert post_idx[o, c, 0, 0] == o
        rng = np.random.default_rng(0)
        x = rng.normal(size=(1, pre.n_features))
        base = ref_propagate(proj, pre, x).reshape(post.shape)
        for channel in range(pre.shape[0]):
            bumped = x.reshape(pre.shape).copy()
            bumped[channel] += 1.0
            changed = np.abs(ref_propagate(proj, pre, bumped.reshape(1, -1)).reshape(post.shape) - base).max(axis=(1, 2))
            readers = {int(o) for o in np.flatnonzero(changed > 0)}
            assert readers == {int(o) for o in np.unique(post_idx[pre_idx == channel])}


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_grouped_and_depthwise_conv_balance_exactly(p):
    net = conv_net((4, 8, 8), GROUPED, dense=[6], n_out=3, seed=2)
    res = balanced(net, nb.Lp(p))
    assert res.cost_after < res.cost_before
    assert_channels_balanced(res.network, p, res.dead_units, rtol=1e-10)
    assert_same_function(net, res.network, inputs(net, np.random.default_rng(4)))
    stoch = balanced(net, nb.Lp(p), method="stochastic", seed=1)
    assert_same_weights(res.network, stoch.network, rtol=1e-8)


def test_ignoring_groups_in_the_mapping_would_break_invariance():
    """Negative control: dividing kernel slice [o, c] by the scale of channel c (ignoring groups)
    changes the function; the grouped mapping keeps it."""
    net = conv_net((3, 8, 8), [{"channels": 8, "kernel": 3, "padding": 1},
                               {"channels": 8, "kernel": 3, "groups": 4}], dense=[6], n_out=3, seed=2)
    lam = np.exp(np.random.default_rng(0).normal(size=8))
    right = nb.scale(net, {"h1": np.log(lam)})
    wrong = net.copy()
    wrong.projections[0].weight *= lam[:, None, None, None]
    wrong.populations["h1"].bias *= lam
    cg = wrong.projections[1].weight.shape[1]
    wrong.projections[1].weight /= lam[:cg][None, :, None, None]
    x = inputs(net, np.random.default_rng(1))
    assert_same_function(net, right, x)
    assert np.max(np.abs(wrong.forward(x) - net.forward(x))) > 1e-6


# ------------------------------------------------------------------------------ validation
def _pops(pre_shape=(4, 6, 6), pre_size=None, post_shape=(6, 6, 6), post_size=None):
    return [Population("in", pre_size or pre_shape[0], "input", "linear", shape=pre_shape),
            Population("h", post_size or post_shape[0], "hidden", "relu", shape=post_shape),
            Population("out", 2, "output", "linear")]


def _build(kind, weight_shape, options, **pops):
    populations = _pops(**pops)
    post = populations[1]
    return Network(populations, [Projection("in", "h", np.ones(weight_shape), kind=kind, options=options),
                                 Projection("h", "out", np.ones((2, post.n_features)))])


@pytest.mark.parametrize("kind, weight_shape, options, pops, field", [
    ("conv2d", (6, 4, 5, 5), {"kernel": 3, "padding": 1}, {}, ".weight"),
    ("conv2d", (6, 4, 2, 2), {"kernel": 3, "padding": 1}, {}, ".weight"),
    ("conv2d", (6, 4, 3, 3), {"padding": 1}, {}, "options.kernel"),
    ("conv2d", (6, 1, 3, 3), {"kernel": 3, "padding": 1, "groups": 3}, {}, "options.groups"),
    ("conv2d", (6, 2, 3, 3), {"kernel": 3, "padding": 1, "groups": 2}, {"post_shape": (5, 6, 6)}, "options.groups"),
    ("conv2d", (6, 4, 3, 3), {"kernel": 3, "padding": 1}, {"post_size": 6 * 36}, "post.size"),
    ("conv2d", (6, 4, 3, 3), {"kernel": 3, "padding": 1}, {"pre_size": 4 * 36}, "pre.size"),
    ("conv2d", (6, 4, 3, 3), {"kernel": 3}, {}, "post.shape"),
    ("conv2d", (6, 4, 3, 3), {"kernel": 3, "padding": 1, "stride": 0}, {}, "options.stride"),
    ("conv2d", (6, 4, 3, 3), {"kernel": 3, "padding": -1}, {}, "options.padding"),
    ("conv2d", (6, 4, 3, 3), {"kernel": 3, "padding": 1, "dilation": 2}, {}, "options"),
    ("conv2d", (6, 4, 3, 3), {"kernel": 3, "padding": 1, "pool": {"kind": "min", "size": 2}}, {}, "options.pool.kind"),
    ("conv2d", (6, 4, 3, 3), {"kernel": 3, "pool": {"kind": "max", "size": 9}}, {}, "options.pool.size"),
    ("conv2d", (6, 4, 9, 9), {"kernel": 9}, {}, "options.kernel"),
    ("conv2d", (6, 4, 3, 3), {"kernel": [3, 3, 3], "padding": 1}, {}, "options.kernel"),
    ("locally_connected", (6, 6, 6, 4, 3, 3), {"kernel": 3, "padding": 1, "groups": 2}, {}, "options"),
    ("locally_connected", (6, 6, 6, 4, 3, 3), {"kernel": 3, "padding": 1}, {"pre_size": 4 * 36}, "options.padding"),
    ("locally_connected", (6, 3, 3, 4, 1, 1), {"kernel": 1, "pool": {"kind": "avg", "size": 2}},
     {"pre_size": 4 * 36, "post_shape": (6, 3, 3)}, "options.pool"),
])
def test_invalid_conv_projections_are_refused(kind, weight_shape, options, pops, field):
    with pytest.raises(ModelError) as info:
        _build(kind, weight_shape, options, **pops)
    message = str(info.value)
    assert "in->h" in message and field in message, message


def test_conv_from_a_vector_population_is_refused():
    pops = [Population("in", 4, "input", "linear"), Population("out", 4, "output", "linear", shape=(4, 1, 1))]
    with pytest.raises(ModelError, match=r"in->out.*pre.*not a feature map"):
        Network(pops, [Projection("in", "out", np.ones((4, 4, 1, 1)), kind="conv2d", options={"kernel": 1})])


def test_per_position_locally_connected_maps_are_exact():
    """A stack of per-position locally connected maps: every position balanced on its own."""
    layers = [{"kind": "locally_connected", "channels": 2, "kernel": 3, "padding": 1},
              {"kind": "locally_connected", "channels": 2, "kernel": 2, "stride": 2}]
    net = conv_net((1, 6, 6), layers, dense=[4], n_out=2, seed=8)
    assert net.populations["h1"].size == 72 and net.populations["h2"].size == 18
    rng = np.random.default_rng(2)
    x = inputs(net, rng)
    assert_same_function(net, nb.scale(net, random_log_scales(net, rng)), x)
    res = balanced(net, nb.Lp(2))
    assert_channels_balanced(res.network, 2.0, res.dead_units, rtol=1e-10)
    assert_same_function(net, res.network, x)


def test_recurrent_conv_map_scales_and_balances_exactly():
    """A delay-1 convolution of a map onto itself: kernel slices [o, o] are loops (scale-free)."""
    base = conv_net((2, 6, 6), [{"channels": 3, "kernel": 3, "padding": 1}], dense=[4], n_out=2, seed=1)
    rng = np.random.default_rng(0)
    loop = Projection("h1", "h1", 0.2 * rng.normal(size=(3, 3, 3, 3)), kind="conv2d", delay=1,
                      options={"kernel": 3, "padding": 1})
    net = Network(list(base.populations.values()), base.projections + [loop])
    x = rng.normal(size=(5, 2, net.input.n_features))
    assert_same_function(net, nb.scale(net, random_log_scales(net, rng)), x)
    glob = balanced(net, nb.Lp(2))
    stoch = balanced(net, nb.Lp(2), method="stochastic", seed=3)
    assert_same_function(net, glob.network, x)
    assert_same_weights(glob.network, stoch.network, rtol=1e-8)
    assert_channels_balanced(glob.network, 2.0, glob.dead_units, rtol=1e-10)


def test_options_are_plain_yaml_values():
    net = conv_net((3, 8, 8), [{"channels": 4, "kernel": 3, "padding": 1, "pool": {"kind": "avg", "size": 2}},
                               {"channels": 4, "kind": "locally_connected", "kernel": [2, 3]}], n_out=2)

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return type(value) in (int, float, str, bool)

    for proj in net.projections:
        assert plain(proj.options), proj.options
    for pop in net.populations.values():
        assert pop.shape is None or all(type(s) is int for s in pop.shape)


def test_conv_model_files_round_trip_exactly(tmp_path):
    from neuro_balance.model.files import load_model, save_model
    layers = [{"channels": 4, "kernel": 3, "padding": 1, "pool": {"kind": "max", "size": 2}},
              {"channels": 4, "kernel": 3, "padding": 1, "groups": 4, "stride": 2},
              {"channels": 2, "kind": "locally_connected", "kernel": [2, 1]}]
    net = conv_net((3, 8, 8), layers, dense=[5], n_out=2, skips=[(1, 5)], seed=6)
    back = load_model(save_model(net, tmp_path / "conv.yaml"))
    for a, b in zip(net.projections, back.projections):
        assert (a.name, a.kind, a.options) == (b.name, b.kind, b.options)
        assert np.array_equal(a.weight, b.weight)
    for name, pop in net.populations.items():
        other = back.populations[name]
        assert (pop.size, pop.shape) == (other.size, other.shape)
        assert (pop.bias is None and other.bias is None) or np.array_equal(pop.bias, other.bias)
    x = inputs(net, np.random.default_rng(0))
    assert np.array_equal(net.forward(x), back.forward(x))
