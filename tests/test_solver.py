import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy.optimize import minimize

import neuro_balance as nb
from neuro_balance.balancing.graph import build_graph

from strategies import costs, exponents, inputs_for, networks, random_log_scales, relative_error, weight_distance


def free_log_scales(res):
    return np.concatenate([res.log_scales[k] for k in sorted(res.log_scales)]) if res.log_scales else np.zeros(0)


@settings(max_examples=8)
@given(networks(max_width=24), costs())
def test_all_engines_and_schedules_reach_the_global_solution(net, cost):
    reference = nb.balance(net, cost, tol=1e-12)
    assert reference.converged
    x = inputs_for(net)
    assert relative_error(net.forward(x), reference.network.forward(x)) <= 1e-10
    runs = [nb.balance(net, cost, method="stochastic", seed=seed, tol=1e-12) for seed in range(20)]
    runs += [nb.balance(net, cost, method="stochastic", schedule=s, tol=1e-12) for s in ("cyclic", "reverse", "colour")]
    runs.append(nb.balance(net, cost, method="sweep", tol=1e-12))
    for run in runs:
        assert run.converged
        if cost.is_linf:  # max-balanced states are not unique: a parameter that is no unit's largest has slack
            assert relative_error(net.forward(x), run.network.forward(x)) <= 1e-10
            assert run.cost_after == pytest.approx(reference.cost_after, rel=1e-9)
            continue
        assert weight_distance(run.network, reference.network) <= 1e-8
        np.testing.assert_allclose(free_log_scales(run), free_log_scales(reference), atol=1e-8)


@given(networks(), costs(), st.integers(0, 100))
def test_balanced_state_is_independent_of_the_starting_point_in_the_orbit(net, cost, seed):
    rescaled = nb.scale(net, random_log_scales(net, seed, spread=1.5))
    a = nb.balance(net, cost, tol=1e-12)
    b = nb.balance(rescaled, cost, tol=1e-12)
    assert weight_distance(a.network, b.network) <= 1e-8


@given(networks(), costs(linf=False), st.integers(0, 100))
def test_no_rescaling_of_the_balanced_state_costs_less(net, cost, seed):
    res = nb.balance(net, cost, tol=1e-12)
    rescaled = nb.scale(res.network, random_log_scales(net, seed, spread=0.05))
    assert nb.imbalance(rescaled, cost).total_cost >= res.cost_after * (1 - 1e-12)


def hessian(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central second differences of ``f`` at ``x`` (error O(h^2))."""
    n = x.size
    H = np.zeros((n, n))
    step = np.eye(n) * h
    for i in range(n):
        for j in range(i, n):
            H[i, j] = H[j, i] = (f(x + step[i] + step[j]) - f(x + step[i] - step[j]) - f(x - step[i] + step[j])
                                 + f(x - step[i] - step[j])) / (4 * h * h)
    return H


@settings(max_examples=8)
@given(networks(max_width=6, max_depth=4), exponents())
def test_global_solution_matches_scipy_minimize_on_F(net, p):
    """F(u) = sum_ij K_ij exp(p (u_i - c_j u_j)) minimised by BFGS directly from the weights.

    BFGS minimises log F (a log-sum-exp of linear forms: convex, with the same minimiser and a far
    smaller range, so its line search cannot overflow exp at large p)."""
    cost = nb.Lp(p)
    graph = build_graph(net, cost)
    names = [n for n, pop in net.populations.items() if pop.balanced]
    sizes = [net.populations[n].size for n in names]
    free = np.concatenate([graph.free[n] for n in names]) if names else np.zeros(0, bool)

    def unpack(v):
        full = np.zeros(sum(sizes))
        full[free] = v
        return dict(zip(names, np.split(full, np.cumsum(sizes)[:-1])))

    def log_F(v):
        return np.log(nb.imbalance(nb.scale(net, unpack(v)), cost).total_cost)

    assume(free.any())  # nothing to minimise over: not an example of this property
    res = nb.balance(net, cost, tol=1e-12)
    opt = minimize(log_F, np.zeros(int(free.sum())), method="BFGS", jac="3-point",  # central differences: BFGS
                   options={"gtol": 1e-12, "maxiter": 5000})                        # then converges to 1e-8
    assert res.cost_after <= np.exp(opt.fun) * (1 + 1e-10)
    assert res.cost_after == pytest.approx(np.exp(opt.fun), rel=1e-8)
    # BFGS stops in flat valleys long before Newton, so its x is compared where log F resolves it: near the
    # minimum log F(x) - log F* = d H d / 2 (d = x - x*, H the Hessian at x*), so d H d must be twice BFGS's excess
    # cost, up to the rounding of log F (1e-15) that bounds how well any minimiser can pin a direction.
    mine = np.concatenate([res.log_scales[n] for n in names])[free]
    d = opt.x - mine
    if np.max(np.abs(d), initial=0.0) > 1e-6:  # closer needs no curvature to be within BFGS's accuracy
        excess = max(opt.fun - log_F(mine), 0.0)
        assert d @ hessian(log_F, mine) @ d <= 3 * excess + 1e-12


@given(networks(), exponents())
def test_tolerance_1e_12_is_reached(net, p):
    res = nb.balance(net, nb.Lp(p), tol=1e-12)
    assert res.converged and res.imbalance <= 1e-12
    assert nb.imbalance(res.network, nb.Lp(p)).max_relative <= 1e-11


def test_dead_units_are_skipped_and_reported():
    net = nb.mlp([4, 6, 5, 3], seed=0)
    net.projections[0].weight[2] = 0.0   # h1[2]: no incoming weights ...
    net.populations["h1"].bias[2] = 0.0  # ... and no bias: dead
    net.projections[2].weight[:, 4] = 0.0  # h2[4]: no outgoing weights: dead
    for method in ("global", "stochastic", "sweep"):
        res = nb.balance(net, nb.Lp(2), method)
        assert res.converged
        assert {k: v.tolist() for k, v in res.dead_units.items()} == {"h1": [2], "h2": [4]}
        assert res.log_scales["h1"][2] == 0.0 and res.log_scales["h2"][4] == 0.0
        x = inputs_for(net)
        assert relative_error(net.forward(x), res.network.forward(x)) <= 1e-12
    rep = nb.imbalance(net, nb.Lp(2))
    assert rep.n_dead == 2


def test_a_component_without_ground_is_balanced_up_to_a_common_factor():
    """Two hidden units that only feed each other (a loop with no path to input or output)."""
    pops = [nb.Population("in", 2, "input"), nb.Population("h", 4, "hidden", "relu"),
            nb.Population("out", 1, "output")]
    w_in = np.array([[1.0, 0.5], [0.3, 2.0], [0, 0], [0, 0]])
    w_out = np.array([[1.0, 3.0, 0, 0]])
    w_rec = np.zeros((4, 4))
    w_rec[0, 1], w_rec[1, 0] = 0.4, 0.2     # grounded pair
    w_rec[2, 3], w_rec[3, 2] = 5.0, 0.01    # floating pair: units 2 and 3
    net = nb.Network(pops, [nb.Projection("in", "h", w_in), nb.Projection("h", "out", w_out),
                            nb.Projection("h", "h", w_rec, delay=1)])
    for method in ("global", "stochastic"):
        res = nb.balance(net, nb.Lp(2), method, tol=1e-12)
        assert res.converged
        assert {k: v.tolist() for k, v in res.ungrounded_units.items()} == {"h": [2]}  # unit 2 anchors the pair
        rep = nb.imbalance(res.network, nb.Lp(2))
        assert rep.relative["h"][[0, 1, 2, 3]].max() <= 1e-12
        w = res.network.projection("h->h").weight
        assert w[2, 3] == pytest.approx(w[3, 2]) and w[2, 3] == pytest.approx(np.sqrt(5.0 * 0.01))


def test_bad_arguments_are_refused():
    net = nb.mlp([3, 4, 2])
    with pytest.raises(ValueError, match="method"):
        nb.balance(net, nb.Lp(2), method="newton")
    with pytest.raises(ValueError, match="schedule"):
        nb.balance(net, nb.Lp(2), method="stochastic", schedule="zigzag")
    with pytest.raises(ValueError, match="p must be"):
        nb.Lp(0)
    with pytest.raises(ValueError, match="p must be"):
        nb.Lp(-1.5)
    with pytest.raises(ValueError, match="p must be"):
        nb.Lp(float("nan"))
    with pytest.raises(ValueError, match="tie"):
        nb.balance(net, nb.Lp(2), tie="unit")


@given(networks(recurrent=False, tanh=True), costs(linf=False))
def test_layer_tied_balancing_preserves_function_and_costs_at_least_the_untied_optimum(net, cost):
    tied = nb.balance(net, cost, tie="layer", tol=1e-12)
    untied = nb.balance(net, cost, tol=1e-12)
    assert tied.converged
    for name, u in tied.log_scales.items():
        assert np.all(u == u[0])
    assert tied.cost_after >= untied.cost_after * (1 - 1e-12)
    x = inputs_for(net)
    assert relative_error(net.forward(x), tied.network.forward(x)) <= 1e-10
    assert nb.imbalance(tied.network, cost, tie="layer").max_relative <= 1e-10


@settings(max_examples=15)
@given(networks(), costs(linf=False), st.integers(0, 100))
def test_float32_hessian_products_reach_the_same_balanced_state(net, cost, seed):
    """Only the Newton direction is float32; the cost, its gradient and the stopping test are float64."""
    rescaled = nb.scale(net, random_log_scales(net, seed, spread=1.5))
    a = nb.balance(rescaled, cost, tol=1e-10)
    b = nb.balance(rescaled, cost, tol=1e-10, hessian_dtype="float32")
    assert a.converged and b.converged and b.imbalance <= 1e-10
    assert weight_distance(b.network, a.network) <= 1e-9
    assert abs(b.cost_after - a.cost_after) <= 1e-12 * a.cost_after


def test_hessian_dtype_is_checked():
    net = nb.mlp([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match="hessian_dtype"):
        nb.balance(net, nb.Lp(2), hessian_dtype="float16")
    with pytest.raises(ValueError, match="hessian_dtype"):
        nb.balance(net, nb.Lp(2), method="sweep", hessian_dtype="float32")
