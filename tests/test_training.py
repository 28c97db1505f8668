"""Training: gradients, conservation laws of gradient descent (theory §4), optimiser state under balancing."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.learn.datasets import digits
from neuro_balance.model import conv
from neuro_balance.learn.schedule import apply_balance
from neuro_balance.learn.training import (BalanceSchedule, Optimizer, gradients, parameter_log_factors, parameters,
                                          parse_schedule, train)


# matrices of a few thousand entries: BLAS threads only add overhead (fixture in conftest.py)
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _unit_l2_difference(net):
    """Per balanced unit: sum_in w**2 - sum_out w**2 (biases on the in side), concatenated."""
    rep = nb.imbalance(net, nb.Lp(2))
    return np.concatenate([(rep.in_cost[n] - rep.out_cost[n])[rep.balanced[n]] for n in rep.in_cost])


def _conv_net(kind):
    layers = [{"channels": 3, "kernel": 3, "padding": 1, "pool": {"kind": "max", "size": 2}},
              {"channels": 2, "kernel": 2}]
    if kind == "locally_connected":
        layers = [{"channels": 2, "kernel": 3, "kind": "locally_connected"},
                  {"channels": 2, "kernel": 2, "kind": "locally_connected"}]
    return conv.conv_net((1, 6, 6), layers, dense=[5], n_out=3, seed=3)


def _case(arch, rng):
    """A network, inputs and integer labels for each architecture under test."""
    if arch == "mlp":
        return nb.mlp([5, 6, 4, 3], seed=1), rng.normal(size=(7, 5)), rng.integers(0, 3, 7)
    if arch == "dag_skip":
        return nb.dag([5, 6, 4, 3], skips=((0, 2), (1, 3)), seed=1), rng.normal(size=(7, 5)), rng.integers(0, 3, 7)
    if arch == "mixed_activations":
        return nb.mlp([5, 6, 4, 3], activation=["leaky_relu:0.1", "tanh"], seed=1), rng.normal(size=(7, 5)), \
            rng.integers(0, 3, 7)
    if arch == "rnn_last_step":
        return nb.rnn(4, [5], 3, seed=2), rng.normal(size=(4, 6, 4)), rng.integers(0, 3, 6)
    if arch == "rnn_every_step":
        return nb.rnn(4, [5, 3], 3, seed=2), rng.normal(size=(4, 6, 4)), rng.integers(0, 3, (4, 6))
    net = _conv_net(arch)
    return net, rng.uniform(size=(4, 36)), rng.integers(0, 3, 4)


REGS = {"none": None, "L2": 1e-2 * nb.Lp(2), "L1+L2": 1e-2 * nb.Lp(1) + 0.1 * nb.Lp(2), "L0.5": 0.1 * nb.Lp(0.5),
        "L2_no_bias": 0.1 * nb.Lp(2).without_bias()}
ARCHS = ["mlp", "dag_skip", "mixed_activations", "rnn_last_step", "rnn_every_step", "conv2d", "locally_connected"]


@pytest.mark.parametrize("reg", list(REGS))
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_match_central_finite_differences(arch, loss, reg):
    rng = np.random.default_rng(0)
    net, X, y = _case(arch, rng)
    value, grads = gradients(net, X, y, loss=loss, reg=REGS[reg])
    assert set(grads) == set(parameters(net))
    h = 1e-6
    for key, w in parameters(net).items():
        for flat in rng.choice(w.size, size=min(w.size, 4), replace=False):
            idx = np.unravel_index(flat, w.shape)
            old = w[idx]
            w[idx] = old + h
            plus, _ = gradients(net, X, y, loss=loss, reg=REGS[reg])
            w[idx] = old - h
            minus, _ = gradients(net, X, y, loss=loss, reg=REGS[reg])
            w[idx] = old
            numeric = (plus - minus) / (2 * h)
            # central differences: error O(h**2 * f''') + rounding O(eps / h) ~ 1e-9 here
            assert grads[key][idx] == pytest.approx(numeric, rel=1e-5, abs=1e-7), (key, idx)


def test_loss_value_is_data_loss_plus_regulariser():
    rng = np.random.default_rng(1)
    net, X, y = _case("mlp", rng)
    plain, _ = gradients(net, X, y)
    reg = 1e-2 * nb.Lp(2)
    with_reg, _ = gradients(net, X, y, reg=reg)
    all_params = np.concatenate([w.ravel() for w in parameters(net).values()])
    assert with_reg - plain == pytest.approx(reg.value(all_params), rel=1e-12)


def test_one_gradient_step_changes_each_units_l2_difference_by_lr_squared_gradient_difference():
    # Euler identity: sum_in w dE/dw = sum_out w dE/dw, so D(w - lr g) - D(w) = lr**2 (|g_in|**2 - |g_out|**2).
    d = digits()
    X, y = d.X_train[:100], d.y_train[:100]
    net = nb.dag([64, 12, 10, 10], skips=((0, 2), (1, 3)), activation="leaky_relu:0.2", seed=4)
    _, grads = gradients(net, X, y)
    grad_net = net.copy()
    for key, w in parameters(grad_net).items():
        w[...] = grads[key]
    lr = 0.05
    res = train(net, X, y, lr=lr, epochs=1, batch_size=len(y))
    change = _unit_l2_difference(res.network) - _unit_l2_difference(net)
    np.testing.assert_allclose(change, lr ** 2 * _unit_l2_difference(grad_net), rtol=1e-8, atol=1e-12)


def test_plain_gradient_descent_drifts_the_conserved_quantity_like_lr_squared():
    d = digits()
    X, y = d.X_train[:200], d.y_train[:200]
    net = nb.balance(nb.mlp([64, 16, 16, 10], seed=0), nb.Lp(2)).network
    start = _unit_l2_difference(net)
    drift = []
    for lr in (0.004, 0.002, 0.001):
        res = train(net, X, y, lr=lr, epochs=5, batch_size=len(y))
        drift.append(np.linalg.norm(_unit_l2_difference(res.network) - start))
    ratios = np.array(drift[:-1]) / np.array(drift[1:])
    # halving lr over a fixed number of steps divides the drift by 4 (O(lr**2)), up to O(lr) corrections
    assert np.all((ratios > 3.6) & (ratios < 4.4)), ratios
    assert drift[0] < 1e-3 * np.linalg.norm(_unit_l2_difference(nb.mlp([64, 16, 16, 10], seed=0)))


def test_l2_regulariser_makes_each_units_difference_decay_like_exp_minus_4_alpha_t():
    d = digits()
    X, y = d.X_train[:200], d.y_train[:200]
    rng = np.random.default_rng(1)
    net = nb.scale(nb.mlp([64, 16, 16, 10], seed=0), {"h1": rng.normal(0, 0.5, 16), "h2": rng.normal(0, 0.5, 16)})
    start = _unit_l2_difference(net)
    alpha, lr, steps = 0.05, 0.01, 500
    res = train(net, X, y, reg=alpha * nb.Lp(2), lr=lr, epochs=steps, batch_size=len(y))
    ratio = _unit_l2_difference(res.network) / start
    big = np.abs(start) > 0.1 * np.abs(start).max()  # small |D(0)| is dominated by the lr**2 term
    # discrete steps give (1 - 2 alpha lr)**(2 steps) = exp(-4 alpha t)(1 + O(alpha**2 lr t)) plus lr**2 terms
    np.testing.assert_allclose(ratio[big], np.exp(-4 * alpha * lr * steps), rtol=0.01)


def test_l2_regulariser_balances_a_digits_mlp_within_100_epochs():
    d = digits()
    net = nb.mlp([64, 32, 32, 10], seed=0)
    start = np.abs(_unit_l2_difference(net)).max()
    # t = lr * steps = 0.025 * 85 per epoch (the same as lr 0.05 with batch 32): exp(-4 alpha t) reaches 2e-4
    # by epoch 100, but SGD noise adds O(lr / batch) per unit and holds max |D| / start near 6e-3 (at lr
    # 0.05, batch 32 near 9e-3)
    res = train(net, d.X_train, d.y_train, reg=1e-2 * nb.Lp(2), lr=0.025, batch_size=16, epochs=100, seed=0)
    assert np.abs(_unit_l2_difference(res.network)).max() <= 1e-2 * start
    deficit = np.array(res.history["deficit"])
    assert deficit[-1] <= 1e-4 * deficit[0]  # the deficit is a sum of squares


def test_mlp_reaches_93_percent_on_digits():
    d = digits()
    res = train(nb.mlp([64, 32, 32, 10], seed=0), d.X_train, d.y_train, lr=0.02, epochs=40, seed=0,
                validation=(d.X_test, d.y_test))
    assert res.history["val_accuracy"][-1] >= 0.93
    assert res.history["loss"][-1] < res.history["loss"][0]


@pytest.mark.parametrize("arch", ["dag_skip", "rnn_every_step", "conv2d", "locally_connected"])
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_rescaled_optimizer_state_equals_state_built_from_gradients_at_rescaled_weights(optimizer, arch):
    # E is invariant under rescaling, so grad E(S w) = grad E(w) / s: the buffers after rescaling must be
    # exactly the buffers an optimiser would hold had every past gradient been taken at S(w_k).
    rng = np.random.default_rng(2)
    net, X, y = _case(arch, rng)
    log_scales = {n: rng.normal(0, 0.7, p.size) for n, p in net.populations.items() if p.balanced}
    opt = Optimizer(optimizer, lr=0.01)
    replay = Optimizer(optimizer, lr=0.01)
    work = net.copy()
    for _ in range(4):
        scaled = nb.scale(work, log_scales)
        _, g_scaled = gradients(scaled, X, y)
        replay.step({k: w.copy() for k, w in parameters(scaled).items()}, g_scaled)
        _, g = gradients(work, X, y)
        opt.step(parameters(work), g)
    opt.rescale(parameter_log_factors(work, log_scales))
    for key in opt.m:
        np.testing.assert_allclose(opt.m[key], replay.m[key], rtol=1e-10, atol=1e-14)
    for key in opt.v:
        np.testing.assert_allclose(opt.v[key], replay.v[key], rtol=1e-10, atol=1e-20)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_next_update_after_balancing_is_the_unbalanced_update_mapped_through_the_scaling(optimizer):
    # grad E(S w) = grad E(w) / s and buffers / s (second moments / s**2), so the next step is
    # delta / s for SGD and momentum, and delta itself for Adam (scale-free, up to its eps)
    rng = np.random.default_rng(4)
    net, X, y = _case("dag_skip", rng)
    net = nb.scale(net, {"h1": rng.normal(0, 1, 6), "h2": rng.normal(0, 1, 4)})
    opt = Optimizer(optimizer, lr=0.01, eps=1e-15)  # Adam's eps is the only scale it sees: make it negligible
    for _ in range(3):
        _, g = gradients(net, X, y)
        opt.step(parameters(net), g)
    twin, twin_opt = net.copy(), copy.deepcopy(opt)
    log_factors = parameter_log_factors(net, nb.balance(net, nb.Lp(2)).log_scales)
    apply_balance(twin, BalanceSchedule(nb.Lp(2)), True, twin_opt, np.random.default_rng(0))
    before = {k: w.copy() for k, w in parameters(net).items()}
    twin_before = {k: w.copy() for k, w in parameters(twin).items()}
    for n, o in ((net, opt), (twin, twin_opt)):
        _, g = gradients(n, X, y)
        o.step(parameters(n), g)
    for key, w in parameters(net).items():
        delta = w - before[key]
        delta_balanced = parameters(twin)[key] - twin_before[key]
        expected = delta if optimizer == "adam" else delta * np.exp(-log_factors[key])
        np.testing.assert_allclose(delta_balanced, expected, rtol=1e-8, atol=1e-13)


@pytest.mark.parametrize("full", [True, False])
def test_balancing_step_during_training_keeps_function_and_carries_buffers_to_the_new_gradient(full):
    rng = np.random.default_rng(3)
    net, X, y = _case("mlp", rng)
    net = nb.scale(net, {"h1": rng.normal(0, 1, 6), "h2": rng.normal(0, 1, 4)})
    _, g = gradients(net, X, y)
    opt = Optimizer("adam", lr=0.01)
    opt.m = {k: v.copy() for k, v in g.items()}  # buffers holding the current gradient (and its square)
    opt.v = {k: v * v for k, v in g.items()}
    before = net.forward(X)
    cost = nb.Lp(1) if full else nb.Lp(2)
    event = apply_balance(net, BalanceSchedule(cost), full, opt, np.random.default_rng(0))
    assert event["cost_after"] < event["cost_before"]
    np.testing.assert_allclose(net.forward(X), before, rtol=1e-10, atol=1e-12)
    if full:
        assert nb.imbalance(net, cost).max_relative < 1e-8
    _, g_new = gradients(net, X, y)
    assert any(not np.allclose(g_new[k], g[k]) for k in g)  # the weights really moved
    for key in g:
        np.testing.assert_allclose(opt.m[key], g_new[key], rtol=1e-9, atol=1e-13)
        np.testing.assert_allclose(opt.v[key], g_new[key] ** 2, rtol=1e-9, atol=1e-20)


def test_train_is_reproducible_from_the_seed():
    d = digits()
    X, y = d.X_train[:300], d.y_train[:300]
    net = nb.mlp([64, 16, 10], seed=5)
    a = train(net, X, y, epochs=3, seed=7, optimizer="adam", lr=0.01, balance="partial")
    b = train(net, X, y, epochs=3, seed=7, optimizer="adam", lr=0.01, balance="partial")
    c = train(net, X, y, epochs=3, seed=8, optimizer="adam", lr=0.01, balance="partial")
    for key, w in parameters(a.network).items():
        np.testing.assert_array_equal(w, parameters(b.network)[key])
    assert any(not np.array_equal(w, parameters(c.network)[key]) for key, w in parameters(a.network).items())
    assert a.history == b.history
    assert np.array_equal(parameters(net)["in->h1"], parameters(nb.mlp([64, 16, 10], seed=5))["in->h1"])  # untouched


def test_balance_schedules_balance_when_asked():
    d = digits()
    X, y = d.X_train[:300], d.y_train[:300]
    net = nb.scale(nb.mlp([64, 16, 16, 10], seed=0), {"h1": np.linspace(-1, 1, 16)})
    before = train(net, X, y, epochs=2, balance="before")
    assert before.history["max_relative_imbalance"][0] < 1e-8
    assert [e["epoch"] for e in before.balance_events] == [0]
    full = train(net, X, y, epochs=4, balance="full:2@L1")
    assert [e["epoch"] for e in full.balance_events] == [2, 4]
    assert full.history["max_relative_imbalance"][2] < 1e-8 and full.history["max_relative_imbalance"][4] < 1e-8
    plain = train(net, X, y, epochs=3)
    partial = train(net, X, y, epochs=3, balance="partial")
    assert len(partial.balance_events) == 3
    assert all(e["cost_after"] <= e["cost_before"] for e in partial.balance_events)
    assert partial.history["max_relative_imbalance"][-1] < plain.history["max_relative_imbalance"][-1]


def test_parse_schedule():
    s = parse_schedule("before+partial:3@L1")
    assert (s.before, s.every, s.mode, s.cost) == (True, 3, "partial", nb.Lp(1))
    assert parse_schedule("full").mode == "full" and parse_schedule(None) is None
    for bad in ("sometimes", "partial:x", "before:2", "partial@L7x"):
        with pytest.raises(ValueError, match="balance|cost"):
            parse_schedule(bad)


def test_conv_network_trains_with_partial_balancing_on_digits():
    d = digits()
    net = conv.conv_net((1, 8, 8), [{"channels": 4, "kernel": 3, "padding": 1, "pool": {"kind": "max", "size": 2}}],
                        dense=[16], n_out=10, seed=0)
    res = train(net, d.X_train, d.y_train, lr=0.02, epochs=4, optimizer="momentum", balance="partial",
                validation=(d.X_test, d.y_test))
    assert res.history["val_accuracy"][-1] > 0.6 > res.history["val_accuracy"][0]
    assert res.history["max_relative_imbalance"][-1] < 0.1 * res.history["max_relative_imbalance"][0]
    assert all(e["cost_after"] <= e["cost_before"] for e in res.balance_events)


def test_five_unit_model_on_circles_stays_balanced_with_balancing_every_epoch():
    # S2's toy experiment (Figs 1-2): with balancing every epoch lam_star -> 1 for every unit
    from neuro_balance.learn.datasets import circles

    d = circles(seed=0)
    net = nb.mlp([2, 5, 2], seed=0)
    plain = train(net, d.X_train, d.y_train, lr=0.1, epochs=20)
    partial = train(net, d.X_train, d.y_train, lr=0.1, epochs=20, balance="partial")
    assert max(partial.history["max_relative_imbalance"][1:]) < 1e-10  # one layer: a sweep balances exactly
    assert min(plain.history["max_relative_imbalance"]) > 0.1
    lam = nb.imbalance(partial.network, nb.Lp(2)).lam_star["h1"]
    np.testing.assert_allclose(lam, 1.0, atol=1e-10)


def test_recurrent_network_trains_with_bptt():
    rng = np.random.default_rng(0)
    # label = sign of the sum of the first input over the sequence: needs memory across steps
    X = rng.normal(size=(5, 400, 2))
    y = (X[:, :, 0].sum(axis=0) > 0).astype(int)
    res = train(nb.rnn(2, [8], 2, seed=1), X, y, epochs=15, lr=0.05, seed=0)
    assert res.history["accuracy"][-1] > 0.85 > res.history["accuracy"][0]


@pytest.mark.parametrize("kwargs, match", [
    ({"loss": "hinge"}, "loss"), ({"optimizer": "lbfgs"}, "optimizer"), ({"lr": -1.0}, "lr"),
    ({"epochs": -1}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"reg": "L2"}, "reg"),
    ({"reg": nb.Linf()}, "Linf"), ({"balance": "never"}, "balance")])
def test_train_rejects_bad_arguments(kwargs, match):
    net = nb.mlp([4, 3, 2])
    with pytest.raises(ValueError, match=match):
        train(net, np.ones((5, 4)), np.zeros(5, dtype=int), **{"epochs": 1, **kwargs})


def test_train_rejects_mismatched_data():
    net = nb.mlp([4, 3, 2])
    with pytest.raises(ValueError, match=r"\(n_samples, 4\)"):
        train(net, np.ones((5, 3)), np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="4 targets for 5 samples"):
        train(net, np.ones((5, 4)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="integer class labels"):
        train(net, np.ones((5, 4)), np.zeros(5))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        train(net, np.ones((5, 4)), np.array([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match=r"mse targets need shape \(n_samples, 2\)"):
        train(net, np.ones((5, 4)), np.zeros(5), loss="mse")
    with pytest.raises(ValueError, match="validation y"):
        train(net, np.ones((5, 4)), np.zeros(5, dtype=int), validation=(np.ones((3, 4)), np.full(3, 7)))
    with pytest.raises(ValueError, match="recurrent"):
        train(nb.rnn(4, [3], 2), np.ones((5, 4)), np.zeros(5, dtype=int))


# ---------------------------------------------------------------------------------------------- stacked copies
@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.05), ("momentum", 0.02), ("adam", 0.01)])
def test_stacked_training_equals_training_each_copy_alone(optimizer, lr):
    """The oracle is `train` (with the toolkit's own balancing sweep) on every copy separately."""
    from neuro_balance.learn.stacked import train_stacked

    data = digits()
    nets = [nb.mlp([64, 12, 8, 10], seed=s) for s in range(4)]
    X = np.stack([data.X_train[40 * s:40 * s + 40] for s in range(4)])
    y = np.stack([data.y_train[40 * s:40 * s + 40] for s in range(4)])
    regs = [None, 0.01 * nb.Lp(1), None, 0.005 * nb.Lp(2)]
    balances = [None, None, "before+partial@L1", "partial@L2"]
    seeds = [3, 4, 5, 6]
    res = train_stacked(nets, X, y, data.X_test, data.y_test, lr=lr, epochs=4, batch_size=16, optimizer=optimizer,
                        regs=regs, balances=balances, seeds=seeds)
    for m in range(4):
        alone = train(nets[m], X[m], y[m], lr=lr, epochs=4, batch_size=16, optimizer=optimizer, reg=regs[m],
                      balance=balances[m], seed=seeds[m], validation=(data.X_test, data.y_test), diagnostics=False)
        for key, w in parameters(alone.network).items():
            np.testing.assert_allclose(parameters(res.networks[m])[key], w, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(res.accuracy[m], alone.history["val_accuracy"])
    assert res.epochs == [0, 1, 2, 3, 4] and np.all(res.diverged == -1)


def test_stacked_training_isolates_a_diverging_copy():
    from neuro_balance.learn.stacked import train_stacked

    data = digits()
    nets = [nb.mlp([64, 8, 10], seed=0)] * 2
    X, y = np.stack([data.X_train[:50], 1e200 * data.X_train[:50]]), np.stack([data.y_train[:50]] * 2)
    with np.errstate(over="ignore", invalid="ignore"):
        res = train_stacked(nets, X, y, data.X_test, data.y_test, lr=0.5, epochs=3, batch_size=50, eval_every=2)
    assert res.diverged[0] == -1 and res.diverged[1] >= 1  # inputs of 1e200: the second step overflows
    assert res.epochs == [0, 2, 3]
    assert all(np.all(w == 0.0) for w in parameters(res.networks[1]).values())  # stopped, set to 0
    assert res.accuracy[0, -1] > res.accuracy[0, 0]  # the healthy copy kept learning


def test_stacked_training_rejects_what_it_cannot_train():
    from neuro_balance.learn.stacked import train_stacked

    data = digits()
    X, y = data.X_train[None, :20], data.y_train[None, :20]
    with pytest.raises(ValueError, match="not a layered dense network"):
        train_stacked([nb.dag([64, 8, 8, 10], seed=0)], X, y, data.X_test, data.y_test, lr=0.1, epochs=1)
    with pytest.raises(ValueError, match="must be 'partial'"):
        train_stacked([nb.mlp([64, 8, 10])], X, y, data.X_test, data.y_test, lr=0.1, epochs=1, balances=["full"])
    with pytest.raises(ValueError, match="2 networks need 2 training sets"):
        train_stacked([nb.mlp([64, 8, 10])] * 2, X, y, data.X_test, data.y_test, lr=0.1, epochs=1)
