"""`balance` and `path_norm` do what they are asked or refuse: no option is silently reinterpreted."""
from __future__ import annotations

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.app.cli import main


@pytest.fixture
def net():
    return nb.mlp([4, 6, 5, 3], seed=2)


def _same_weights(a, b):
    return all(np.array_equal(p.weight, q.weight) for p, q in zip(a.projections, b.projections))


@pytest.mark.parametrize("method", ["global", "sweep", "stochastic"])
def test_max_iter_zero_runs_no_iteration_and_reports_the_starting_state(net, method):
    res = nb.balance(net, nb.Lp(2), method, max_iter=0)
    assert res.iterations == 0 and res.updates == 0
    assert _same_weights(res.network, net)
    assert res.cost_after == res.cost_before and len(res.history["cost"]) == 1
    assert not res.converged  # a random MLP starts far from balance (imbalance ~1)


@pytest.mark.parametrize("bad", [-1, 2.5, True, "10"])
def test_max_iter_that_is_not_a_count_is_refused(net, bad):
    with pytest.raises(ValueError, match="max_iter"):
        nb.balance(net, nb.Lp(2), max_iter=bad)


@pytest.mark.parametrize("option", [{"scale_grid": "pow2"}, {"fraction": 0.5}, {"schedule": "random"},
                                    {"schedule": "colour"}])
def test_global_refuses_the_options_of_the_local_methods(net, option):
    with pytest.raises(ValueError, match=f"method='global' has no {next(iter(option))}"):
        nb.balance(net, nb.Lp(2), "global", **option)


def test_global_with_linf_reports_the_sweeps_that_ran(net):
    res = nb.balance(net, nb.Linf(), "global", tol=1e-9)
    assert (res.method, res.schedule) == ("sweep", "colour")
    assert res.converged and res.imbalance <= 1e-9
    sweep = nb.balance(net, nb.Linf(), "sweep", tol=1e-9)
    assert np.array_equal(res.log_scales["h1"], sweep.log_scales["h1"])


@pytest.mark.parametrize("method", ["global", "stochastic"])
@pytest.mark.parametrize("bad", ["abc", 1.5, -3])
def test_a_bad_seed_is_a_value_error_naming_it(net, method, bad):
    with pytest.raises(ValueError, match=f"seed must be .*{bad!r}"):
        nb.balance(net, nb.Lp(2), method, seed=bad)


@pytest.mark.parametrize("activation", ["tanh", "bipu:2.0", "sigmoid"])
def test_path_norm_refuses_units_that_are_not_bilu(activation):
    net = nb.mlp([3, 5, 2], activation=activation, seed=0)
    with pytest.raises(ValueError, match=f"BiLU units only.*{activation}"):
        nb.path_norm(net)


def test_path_norm_of_bilu_units_is_still_invariant_under_rescaling():
    net = nb.mlp([3, 5, 4, 2], activation=["leaky_relu:0.1", "bilu:-0.5,2.0"], seed=0)
    rng = np.random.default_rng(1)
    scaled = nb.scale(net, {"h1": rng.normal(size=5), "h2": rng.normal(size=4)})
    assert nb.path_norm(scaled, 2.0) == pytest.approx(nb.path_norm(net, 2.0), rel=1e-12)


def test_the_cli_names_the_engine_that_ran(tmp_path, capsys):
    path = tmp_path / "net.yaml"
    nb.save_model(nb.mlp([3, 4, 2], seed=0), path)
    assert main(["balance", str(path), "--cost", "linf"]) == 0
    assert "sweep balancing for" in capsys.readouterr().out
    assert main(["balance", str(path), "--method", "global", "--schedule", "random"]) == 1
    err = capsys.readouterr().err
    assert "method='global' has no schedule" in err and "Traceback" not in err
