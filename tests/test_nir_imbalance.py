"""One imbalance for spiking units: `nb.imbalance`, ``inspect`` and ``balance`` agree on NIR files, and ``balance
--for`` writes the thresholds a framework's importer takes."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.app.cli import main
from neuro_balance.errors import ModelError
from neuro_balance.model.activations import parse_activation
from neuro_balance.model.neurons import Neuron
from neuro_balance.model.nir_write import check_readable_by

pytest.importorskip("nir")

DATA = Path(__file__).parent / "data" / "nir"


def exported_lif(path: Path) -> Path:
    """A toolkit network with a LIF, an LI and a CubaLIF population, exported to NIR by `save_model`."""
    rng = np.random.default_rng(7)
    net = nb.mlp([5, 12, 8, 6, 3], seed=3)
    for proj, gain in zip(net.projections, (4.0, 0.3, 2.0, 0.5)):
        proj.weight *= gain  # far from balance
    h1, h2, h3 = (net.populations[n] for n in ("h1", "h2", "h3"))
    h1.neuron = Neuron("LIF", {"tau": rng.uniform(5, 20, 12), "r": rng.uniform(0.5, 2, 12), "v_leak": np.zeros(12),
                               "v_threshold": np.full(12, 0.8), "v_reset": np.zeros(12)})
    h2.neuron, h2.activation = Neuron("LI", {"tau": rng.uniform(5, 20, 8), "r": np.ones(8),
                                             "v_leak": np.zeros(8)}), parse_activation("linear")
    h3.neuron = Neuron("CubaLIF", {"tau_syn": np.full(6, 2.0), "tau_mem": np.full(6, 10.0), "r": np.ones(6),
                                   "v_leak": np.zeros(6), "v_threshold": np.full(6, 1.5), "v_reset": np.zeros(6),
                                   "w_in": np.ones(6)})
    nb.save_model(net, path)
    return path


@pytest.fixture(params=["snntorch_mlp.nir", "sinabs_cnn.nir", "exported"])
def nir_file(request, tmp_path):
    return exported_lif(tmp_path / "lif.nir") if request.param == "exported" else DATA / request.param


def cli_out(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().out


def printed_imbalance(text: str, after: str) -> float:
    return float(re.search(after + r" ([-+0-9.e]+)", text).group(1))


def test_a_spiking_units_imbalance_is_that_of_its_gauge_by_hand():
    # snnTorch's file: Input(6) -> Affine -> LIF(10) -> Affine -> LIF(3). The gauge multiplies a hidden LIF unit's
    # in-cost sum_j W1[i,j]^2 + b1[i]^2 by mu^2 and leaves its out-cost sum_k W2[k,i]^2: balanced when they are equal.
    net = nb.load_model(DATA / "snntorch_mlp.nir")
    w1, w2 = (p.weight for p in net.projections)
    A = (w1 ** 2).sum(axis=1) + net.populations["1"].bias ** 2
    B = (w2 ** 2).sum(axis=0)
    rep = nb.imbalance(net, nb.Lp(2))
    np.testing.assert_allclose(rep.relative["1"], np.abs(A - B) / np.maximum(A, B), rtol=1e-12)
    np.testing.assert_allclose(rep.lam_star["1"], np.sqrt(B / A), rtol=1e-12)  # the gauge step mu
    assert rep.max_relative == pytest.approx(np.max(np.abs(A - B) / np.maximum(A, B)), rel=1e-12)
    assert rep.max_relative > 0.5 and rep.symmetry == {"input": "none", "1": "gauge", "3": "none"}
    tied = nb.imbalance(net, nb.Lp(2), tie="layer")  # one gauge per layer: the imbalance of the summed costs
    assert tied.max_relative == pytest.approx(abs(A.sum() - B.sum()) / max(A.sum(), B.sum()), rel=1e-12)


@pytest.mark.parametrize("options", [[], ["--tie", "layer"], ["--cost", "L1"]])
def test_inspect_imbalance_and_balance_agree(nir_file, options, capsys):
    net = nb.load_model(nir_file)
    tie = "layer" if "layer" in options else None
    cost = nb.Lp(1) if "L1" in options else nb.Lp(2)
    rep = nb.imbalance(net, cost, tie)
    result = nb.balance(net, cost, tie=tie)
    assert rep.max_relative > 0.1  # every file starts far from balance
    assert result.history["imbalance"][0] == pytest.approx(rep.max_relative, rel=1e-12)
    assert nb.imbalance(result.network, cost, tie).max_relative == pytest.approx(result.imbalance, abs=1e-14)
    assert result.imbalance <= 1e-10
    code, text = cli_out(capsys, "inspect", nir_file, *options)
    assert code == 0
    assert printed_imbalance(text, "max relative imbalance") == pytest.approx(rep.max_relative, rel=2e-3)
    for name, pop in net.populations.items():  # every row names the neuron model and its invariance
        unit = pop.neuron.model if pop.neuron is not None else pop.activation.spec
        assert re.search(rf"^{re.escape(name)}\s+{pop.role}\s+{unit}\s+{rep.symmetry[name]}\s", text, re.M), name
    code, text = cli_out(capsys, "balance", nir_file, *options)
    assert code == 0
    assert printed_imbalance(text, "max relative imbalance") == pytest.approx(rep.max_relative, rel=2e-3)


def test_exported_graph_names_each_neuron_model_and_invariance(tmp_path, capsys):
    code, text = cli_out(capsys, "inspect", exported_lif(tmp_path / "lif.nir"))
    assert code == 0
    for row in (r"h1\s+hidden\s+LIF\s+gauge", r"h2\s+hidden\s+LI\s+exchange", r"h3\s+hidden\s+CubaLIF\s+gauge",
                r"out\s+output\s+linear\s+none"):
        assert re.search(row, text), row
    assert "gauge: a spiking unit's incoming weights" in text and "exchange: incoming weights" in text


def if_file(path: Path) -> Path:
    """Input(6) -> IF(10), thresholds 0.5 -> linear readout(3), exported by `save_model`."""
    net = nb.mlp([6, 10, 3], seed=1)
    net.projections[0].weight *= 3
    net.populations["h1"].neuron = Neuron("IF", {"r": np.ones(10), "v_threshold": np.full(10, 0.5),
                                                 "v_reset": np.zeros(10)})
    nb.save_model(net, path)
    return path


def test_the_rate_invariance_measures_if_units_as_their_rate_model_and_refuses_a_leak(tmp_path, capsys):
    # An IF unit with threshold theta and reset by subtraction fires at relu(z) / theta: its rate model is the ReLU
    # unit with incoming weights and bias / theta (by hand below), which the rate exchange balances.
    src = if_file(tmp_path / "if.nir")
    net = nb.load_model(src)
    rate = nb.imbalance(net, nb.Lp(2), invariance="rate")
    w1, w2 = (p.weight for p in net.projections)
    A = ((w1 / 0.5) ** 2).sum(axis=1) + (net.populations["h1"].bias / 0.5) ** 2
    B = (w2 ** 2).sum(axis=0)
    assert rate.max_relative == pytest.approx(np.max(np.abs(A - B) / np.maximum(A, B)), rel=1e-12)
    assert rate.symmetry["h1"] == "rate exchange"
    result = nb.balance(net, nb.Lp(2), invariance="rate")
    assert result.history["imbalance"][0] == pytest.approx(rate.max_relative, rel=1e-12)
    assert nb.imbalance(result.network, nb.Lp(2), invariance="rate").max_relative <= 1e-10
    np.testing.assert_array_equal(result.network.populations["h1"].neuron.params["v_threshold"], 1.0)
    code, text = cli_out(capsys, "inspect", src, "--invariance", "rate")
    assert code == 0 and re.search(r"^h1\s+hidden\s+IF\s+rate exchange", text, re.M)
    assert printed_imbalance(text, "max relative imbalance") == pytest.approx(rate.max_relative, rel=2e-3)
    code, text = cli_out(capsys, "simulate", src, "--invariance", "rate", "--duration", "0.05")
    assert code == 0 and printed_imbalance(text, "max relative imbalance") == pytest.approx(rate.max_relative, rel=2e-3)
    with pytest.raises(ModelError, match=r"node '1': LIF leaks.*--invariance exact"):
        nb.imbalance(nb.load_model(DATA / "snntorch_mlp.nir"), nb.Lp(2), invariance="rate")
    assert main(["inspect", str(DATA / "snntorch_mlp.nir"), "--invariance", "rate"]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_balance_for_snntorch_writes_one_threshold_per_layer(tmp_path, capsys):
    src = DATA / "snntorch_mlp.nir"
    code, text = cli_out(capsys, "balance", src, "-o", tmp_path / "any.nir")
    assert code == 0 and "one threshold per neuron (--for nir)" in text
    per_neuron = nb.load_model(tmp_path / "any.nir")
    assert np.unique(per_neuron.populations["1"].neuron.params["v_threshold"]).size == 10
    with pytest.raises(ModelError, match=r"populations\['1'\].neuron.v_threshold: snnTorch's importer takes one "
                                         r"threshold per LIF layer"):
        check_readable_by(per_neuron, "snntorch")
    check_readable_by(per_neuron, "sinabs")
    code, text = cli_out(capsys, "balance", src, "--for", "snntorch", "-o", tmp_path / "snntorch.nir")
    assert code == 0 and "one threshold per layer (--for snntorch)" in text
    layer = nb.load_model(tmp_path / "snntorch.nir")
    check_readable_by(layer, "snntorch")
    theta = layer.populations["1"].neuron.params["v_threshold"]
    assert theta[0] != 0.5  # the gauge moved the layer's threshold
    assert nb.imbalance(layer, nb.Lp(2), tie="layer").max_relative <= 1e-10
    # an input whose layer already has several thresholds cannot become one snnTorch imports: refused, nothing written
    assert main(["balance", str(tmp_path / "any.nir"), "--for", "snntorch", "-o", str(tmp_path / "x.nir")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "any.nir: populations['1'].neuron.v_threshold" in err[0]
    assert not (tmp_path / "x.nir").exists()
    with pytest.raises(SystemExit) as usage:
        main(["balance", str(src), "--for", "snntorch", "--tie", "channel"])
    assert usage.value.code == 2 and "needs --tie layer" in capsys.readouterr().err


def test_balance_help_states_the_default_reader_and_why(capsys):
    with pytest.raises(SystemExit):
        main(["balance", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "nir (default) gives each spiking neuron its own gauge" in text
    assert "'v_threshold must be same for all neurons'" in text and "snntorch implies --tie layer" in text


def test_simulate_takes_the_invariance_as_an_option(tmp_path, capsys):
    src = DATA / "snntorch_mlp.nir"
    start = nb.imbalance(nb.load_model(src), nb.Lp(2)).max_relative
    code, text = cli_out(capsys, "simulate", src, "-o", tmp_path / "out.nir")  # exact: the LIF layer takes its gauge
    assert code == 0 and "1 agent populations ['1']" in text and "(by their gauge: 1)" in text
    assert printed_imbalance(text, "max relative imbalance") == pytest.approx(start, rel=2e-3)
    out = nb.load_model(tmp_path / "out.nir")
    assert nb.imbalance(out, nb.Lp(2)).max_relative <= 1e-12
    assert out.populations["1"].neuron.model == "LIF"
    assert main(["simulate", str(src), "--invariance", "rate"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "node '1': LIF leaks (tau)" in err[0], err


def test_simulate_balances_exchange_units_and_gauges_the_spiking_ones_all_as_agents(tmp_path, capsys):
    src = exported_lif(tmp_path / "lif.nir")
    start = nb.imbalance(nb.load_model(src), nb.Lp(2)).max_relative
    code, text = cli_out(capsys, "simulate", src, "--duration", "0.5", "--rate", "400", "--no-progress",
                         "-o", tmp_path / "out.nir")
    assert code == 0 and "3 agent populations ['h1', 'h2', 'h3']" in text and "(by their gauge: h1, h3)" in text
    assert printed_imbalance(text, "max relative imbalance") == pytest.approx(start, rel=2e-3)
    end = printed_imbalance(text, r"max relative imbalance [-+0-9.e]+ ->")
    assert end == pytest.approx(nb.imbalance(nb.load_model(tmp_path / "out.nir"), nb.Lp(2)).max_relative, rel=2e-3)
    assert end <= 1e-10


def run_quick(model: Path, out: Path, *options: str):
    proc = subprocess.run([sys.executable, "-m", "neuro_balance.app.cli", "run", "--quick", "--no-progress", "--model",
                           str(model), "--out", str(out), *options], capture_output=True, text=True, timeout=600)
    report = (out / "report.md").read_text() if proc.returncode == 0 else ""
    return proc, proc.stdout + proc.stderr + report


def test_run_quick_on_a_lif_file_runs_its_lif_units_in_the_agents_and_prints_no_nan_or_warning(tmp_path):
    proc, text = run_quick(DATA / "snntorch_mlp.nir", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert not re.search(r"\bnan\b", text, re.I) and "RuntimeWarning" not in text and "Warning" not in proc.stderr
    assert "max relative imbalance 0.894" in proc.stdout  # as inspect and balance say
    assert "non-leaky integrate-and-fire" not in text.lower()  # the LIF units are not simulated as IF ones
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["stages"]["agents"]["applied"] and report["stages"]["spiking"]["applied"]
    assert report["spiking"]["neuron"].startswith("the model's own neuron models (hidden populations 1 (LIF))")
    assert report["agents"]["imbalance_after"] <= 1e-12  # the agents' gauge reaches balance's state
    assert report["agents"]["max_relative_weight_difference"] <= 1e-12
    assert report["spiking"]["spike_changes"] == 0  # balancing while it spiked changed no spike


@pytest.mark.slow
def test_run_quick_on_an_if_file_under_the_rate_invariance_simulates_its_if_units(tmp_path):
    src = if_file(tmp_path / "if.nir")
    proc, text = run_quick(src, tmp_path / "out", "--invariance", "rate")
    assert proc.returncode == 0, proc.stderr
    assert not re.search(r"\bnan\b", text, re.I) and "RuntimeWarning" not in text
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["invariance"] == "rate" and report["stages"]["agents"]["applied"]
    assert report["stages"]["spiking"]["applied"]
    assert report["spiking"]["neuron"].startswith("the model's IF units (populations h1), run as non-leaky")
    assert report["agents"]["imbalance_after"] <= 1e-8
    start = nb.imbalance(nb.load_model(src), nb.Lp(2), invariance="rate").max_relative
    assert report["agents"]["imbalance_before"] == pytest.approx(start, rel=1e-12)  # the agents' start is inspect's
