"""The closed forms of `balancing.closed_form` against brute-force minimisation, and the engines that use them."""
import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import neuro_balance as nb
from neuro_balance.balancing.closed_form import (lambda_exponent, linf_log_step, linf_sides, lp_log_step,
                                                 out_factor, render_lambda)
from neuro_balance.sim.equations import cost_code, lambda_code

from strategies import weight_distance

RNG = np.random.default_rng(7)
CASES = [(float(a), float(b), float(s)) for a, b, s in np.exp(RNG.normal(scale=2.0, size=(40, 3)))]


def brute_force(phi):
    """The minimiser of a 1-D convex function of the log step, by bounded scalar search."""
    return minimize_scalar(phi, bounds=(-30, 30), method="bounded", options={"xatol": 1e-12}).x


@pytest.mark.parametrize("p", [0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("c", [1.0, 1.5, 3.0])
def test_lp_step_minimises_in_plus_out_cost(p, c):
    for A, B, _ in CASES[:10]:
        d = lp_log_step(A, B, p, c)
        best = brute_force(lambda x: A * math.exp(p * x) + B * math.exp(-c * p * x))
        assert d == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize("c", [0.5, 1.0, 1.5, 3.0])
def test_linf_step_minimises_the_max_including_the_loop(c):
    for A, B, S in CASES:
        d = float(linf_log_step(A, B, S, c))

        def phi(x):
            return max(A * math.exp(x), B * math.exp(-c * x), S * math.exp((1 - c) * x))

        assert phi(d) <= phi(brute_force(phi)) * (1 + 1e-9)
        rising, falling = linf_sides(A * math.exp(d), B * math.exp(-c * d), S * math.exp((1 - c) * d), c)
        assert rising == pytest.approx(falling, rel=1e-12)


def test_brian2_lambda_renders_the_same_closed_form():
    """The agents' ``lam`` string, evaluated in Python, equals ``exp(lp_log_step)``."""
    code = cost_code(nb.Lp(1.5))
    text = lambda_code(code, bias_in_cost=False, has_bias=False)
    expression = next(line for line in text.splitlines() if line.startswith("lam = "))[len("lam = "):]
    assert expression.startswith(render_lambda("cin + int(cin <= 0)", "(cout + int(cout <= 0))", "c_out", "expo*ok"))
    for c in (1.0, 2.0):
        for A, B, _ in CASES[:5]:
            env = {"cin": A, "cout": B, "c_out": out_factor(c, False), "expo": lambda_exponent(1.5, c, False),
                   "ok": 1, "int": int}
            assert eval(expression, env) == pytest.approx(math.exp(lp_log_step(A, B, 1.5, c)), rel=1e-12)


@pytest.mark.parametrize("seed", [875, 1031])
def test_linf_step_with_bipu_self_loops_minimises_the_cost(seed):
    """Issue 14: the L-infinity step of a BiPU unit with a self-loop must account for the loop."""
    net = nb.rnn(3, [4], 2, activation="bipu:1.5", seed=seed)

    def cost_at(log_lam):
        u = np.zeros(4)
        u[1] = log_lam
        return nb.imbalance(nb.scale(net, {"h1": u}), nb.Linf()).total_cost

    _, lam = nb.balance_unit(net, nb.Linf(), "h1", 1)
    assert cost_at(math.log(lam)) <= cost_at(brute_force(cost_at)) * (1 + 1e-9)
    res = nb.balance(net, nb.Linf())
    assert res.converged and res.cost_after <= res.cost_before


@pytest.mark.parametrize("degree", [2.0, 3.0, 4.0])
def test_stochastic_one_unit_updates_handle_the_bipu_degree(degree):
    """The one-unit fast path agrees with the Newton solver on BiPU networks (and never raises the cost)."""
    net = nb.mlp([4, 7, 6, 3], activation=f"bipu:{degree}", seed=3)
    reference = nb.balance(net, nb.Lp(1.5), tol=1e-12)
    run = nb.balance(net, nb.Lp(1.5), method="stochastic", seed=1, tol=1e-12)
    assert run.converged
    assert np.all(np.diff(run.history["cost"]) <= 1e-12 * run.cost_before)
    assert run.cost_after == pytest.approx(reference.cost_after, rel=1e-10)
    assert weight_distance(run.network, reference.network) <= 1e-8
