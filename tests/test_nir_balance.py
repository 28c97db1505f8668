"""Balancing imported spiking networks keeps what they compute in the step simulation (model.dynamics)."""
from pathlib import Path

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.balancing.spiking import gauge
from neuro_balance.errors import ModelError
from neuro_balance.model.dynamics import run_steps
from neuro_balance.model.neurons import SYMMETRY

pytest.importorskip("nir")
from nir_graphs import GRAPHS  # noqa: E402

DATA = Path(__file__).parent / "data" / "nir"


def spikes_in(rng, steps, batch, n, p=0.5):
    return (rng.random((steps, batch, n)) < p).astype(np.float64)


def run_all(net, x, reset, dt=1.0):
    return run_steps(net, x, dt=dt, reset=reset).outputs


def test_every_neuron_model_states_its_symmetry():
    assert SYMMETRY == {"IF": "gauge", "LIF": "gauge", "CubaLIF": "gauge", "LI": "exchange", "CubaLI": "exchange",
                        "I": "exchange"}


@pytest.mark.parametrize("kind", sorted(GRAPHS))
@pytest.mark.parametrize("reset", ["value", "subtract"])
def test_a_power_of_two_gauge_leaves_every_spike_train_bit_for_bit(kind, reset):
    net = nb.from_nir(GRAPHS[kind]())
    rng = np.random.default_rng(1)
    spiking = [n for n, p in net.populations.items() if p.neuron is not None and p.neuron.spiking]
    log_mu = {n: np.log(2.0) * rng.integers(-6, 7, net.populations[n].size) for n in spiking}
    x = spikes_in(rng, 30, 3, net.input.n_features)
    before, after = run_all(net, x, reset), run_all(gauge(net, log_mu), x, reset)
    assert sum(before[n].sum() for n in spiking) > 0
    for name in net.populations:
        assert before[name].tobytes() == after[name].tobytes(), name


def test_a_continuous_gauge_leaves_the_spike_trains_unchanged():
    net = nb.from_nir(GRAPHS["mlp"]())
    rng = np.random.default_rng(2)
    log_mu = {n: rng.normal(0, 1, net.populations[n].size) for n in ("lif1", "lif2")}
    x = spikes_in(rng, 40, 4, 6)
    before, after = run_all(net, x, "subtract"), run_all(gauge(net, log_mu), x, "subtract")
    assert before["lif1"].sum() > 20
    for name in ("lif1", "lif2"):  # equal: the membranes differ only by rounding, never across the threshold here
        np.testing.assert_array_equal(before[name], after[name])


@pytest.mark.parametrize("path", ["snntorch_mlp.nir", "sinabs_cnn.nir"])
@pytest.mark.parametrize("grid", [None, "pow2"])
def test_exact_balancing_of_framework_files_keeps_their_spikes(path, grid):
    net = nb.load_model(DATA / path)
    dt = 1e-4 if path.startswith("snntorch") else 1.0
    res = nb.balance(net, nb.Lp(2), method="sweep" if grid else "global", scale_grid=grid)
    assert res.extra["invariance"] == "exact" and res.converged
    assert res.history["imbalance"][0] > 0.1
    if grid is None:
        assert res.imbalance <= 1e-9  # every spiking unit's in-cost equals its out-cost
    else:
        assert all(np.allclose(v / np.log(2), np.round(v / np.log(2))) for v in res.extra["gauge"].values())
    assert any(np.any(v != 0) for v in res.extra["gauge"].values())  # thresholds moved
    ref = np.load(DATA / "reference.npz")
    x = ref[f"{path[:-4]}/input"]
    before, after = run_all(net, x, "subtract", dt), run_all(res.network, x, "subtract", dt)
    for name, pop in net.populations.items():
        if grid == "pow2":
            assert before[name].tobytes() == after[name].tobytes(), name
        else:
            np.testing.assert_array_equal(before[name], after[name])


def test_non_spiking_units_are_balanced_by_the_exact_exchange():
    net = nb.from_nir(GRAPHS["dag"]())  # IF, IF, then an LI readout fed by skips
    res = nb.balance(net, nb.Lp(2))
    assert res.extra["symmetry"] == {"if1": "gauge", "if2": "gauge"}
    rng = np.random.default_rng(3)
    x = spikes_in(rng, 30, 3, 5)
    before, after = run_all(net, x, "value"), run_all(res.network, x, "value")
    np.testing.assert_array_equal(before["if2"], after["if2"])
    np.testing.assert_allclose(after["li"], before["li"], rtol=1e-12, atol=1e-12)


def test_an_li_hidden_unit_takes_the_exchange_with_its_leak_potential():
    import nir

    rng = np.random.default_rng(4)
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}),
             "a": nir.Affine(weight=rng.normal(size=(4, 3)) * 5, bias=rng.normal(size=4)),
             "li": nir.LI(tau=np.full(4, 3.0), r=np.ones(4), v_leak=rng.normal(size=4)),
             "b": nir.Affine(weight=rng.normal(size=(2, 4)) * 0.1, bias=np.zeros(2)),
             "out": nir.Output(output_type={"output": np.array([2])})}
    edges = [("input", "a"), ("a", "li"), ("li", "b"), ("b", "out")]
    net = nb.from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    res = nb.balance(net, nb.Lp(2))
    assert res.imbalance <= 1e-9 and np.ptp(res.log_scales["li"]) > 0.1
    x = rng.normal(size=(25, 2, 3))
    np.testing.assert_allclose(run_all(res.network, x, "value")["out"], run_all(net, x, "value")["out"],
                               rtol=1e-11, atol=1e-12)


def _if_net(seed):
    """Currents -> IF(12) -> IF(3), positive drives below one spike per step (reset by subtraction)."""
    import nir

    rng = np.random.default_rng(seed)
    w1 = rng.uniform(0.0, 1.0, (12, 5))
    w1 *= (0.15 * np.exp(rng.normal(0, 0.7, 12)) / w1.sum(axis=1))[:, None]  # drive per step below 0.6
    nodes = {"input": nir.Input(input_type={"input": np.array([5])}), "a1": nir.Linear(weight=w1),
             "h": nir.IF(r=np.ones(12), v_threshold=np.ones(12), v_reset=np.zeros(12)),
             "a2": nir.Linear(weight=rng.uniform(0.0, 0.3, (3, 12))),
             "o": nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.zeros(3)),
             "output": nir.Output(output_type={"output": np.array([3])})}
    edges = [("input", "a1"), ("a1", "h"), ("h", "a2"), ("a2", "o"), ("o", "output")]
    return nb.from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))


def test_the_rate_exchange_keeps_output_counts_within_its_stated_bound():
    net = _if_net(5)
    res = nb.balance(net, nb.Lp(2), invariance="rate")
    assert res.extra["invariance"] == "rate" and res.converged
    lam = np.exp(res.log_scales["h"])
    assert np.ptp(np.log(lam)) > 0.5
    x = np.random.default_rng(6).uniform(0.0, 1.0, (1000, 4, 5))
    # The bound's condition: hidden drive below one spike per step, so membranes stay in [0, threshold].
    h_drive = x @ net.projection("a1").weight.T
    assert h_drive.max() < 1 and (h_drive * lam).max() < 1
    a, b = run_steps(net, x, reset="subtract"), run_steps(res.network, x, reset="subtract")
    for run in (a, b):
        assert np.all(np.abs(run.membranes["h"]) <= 1.0)
    change = np.abs(b.counts("o") - a.counts("o"))
    bound = res.extra["rate_bound"]["o"]
    np.testing.assert_allclose(bound, 2 + np.abs(net.projection("a2").weight) @ (1 + 1 / lam))
    assert np.all(change <= bound)
    assert a.counts("o").min() > 5 * bound.max()  # the bound is small against the counts
    # Hidden units fire lam times as often: rate-level, within one spike per window.
    assert np.all(np.abs(b.counts("h") - lam * a.counts("h")) <= 1 + lam)


def test_what_cannot_be_balanced_is_refused_naming_the_node():
    with pytest.raises(ModelError, match=r"node 'lif1': LIF leaks \(tau\), so its rate is not a homogeneous"):
        nb.balance(nb.from_nir(GRAPHS["mlp"]()), nb.Lp(2), invariance="rate")
    with pytest.raises(ModelError, match=r"log_mu: 'li' is not a spiking population"):
        gauge(nb.from_nir(GRAPHS["dag"]()), {"li": np.zeros(3)})


def test_brian2_agents_balance_the_rate_model_of_an_imported_if_graph(tmp_path, capsys):
    """`simulate` on a .nir file: thresholds gauged to 1, then the agents' rate exchange; IF neurons come back."""
    from neuro_balance.app.cli import main
    from neuro_balance.balancing.spiking import rate_view

    src = tmp_path / "if.nir"
    nb.save_model(_if_net(7), src)
    net = nb.load_model(src)
    view, dropped = rate_view(net)
    assert sorted(dropped) == ["h"] and view.populations["h"].neuron is None
    x = np.random.default_rng(8).uniform(0, 1, (6, 5))
    # Thresholds to 1 by the exact gauge: the rate model relu(z) / v_threshold is unchanged.
    theta = net.populations["h"].neuron.params["v_threshold"]
    np.testing.assert_allclose(view.forward(x, return_all=True)["h"], np.maximum(x @ net.projection("a1").weight.T, 0)
                               / theta, rtol=1e-12)
    code = main(["simulate", str(src), "--invariance", "rate", "--duration", "0.1", "--no-progress", "-o",
                 str(tmp_path / "out.nir")])
    assert code == 0, capsys.readouterr().err
    out = nb.load_model(tmp_path / "out.nir")
    assert out.populations["h"].neuron.model == "IF"
    np.testing.assert_array_equal(out.populations["h"].neuron.params["v_threshold"], 1.0)
    before, after = (nb.imbalance(v, nb.Lp(2)).max_relative for v in (view, rate_view(out)[0]))
    assert before > 0.5 and after < 0.05 * before, (before, after)  # the agents balanced the rate model
    rate_before = view.forward(x, return_all=True)
    rate_after = rate_view(out)[0].forward(x, return_all=True)
    np.testing.assert_allclose(rate_after["o"], rate_before["o"], rtol=1e-9)  # the rate model's function is kept
    with pytest.raises(ModelError, match=r"node 'lif1': LIF leaks"):
        rate_view(nb.from_nir(GRAPHS["mlp"]()))
