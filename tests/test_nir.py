"""NIR files: round trips bit for bit, files written by snnTorch and sinabs, bad input, the CLI on .nir files."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance.app.cli import main
from neuro_balance.errors import ModelError

nir = pytest.importorskip("nir")
from nir_graphs import GRAPHS, assert_same_graph  # noqa: E402

DATA = Path(__file__).parent / "data" / "nir"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "neuro_balance.app.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def cli_in_process(capsys, *args):
    """The CLI's ``main`` in this process (fast): exit code and stderr lines."""
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.strip().splitlines()


def yaml_networks():
    mlp = nb.mlp([6, 9, 7, 3], seed=1)
    mlp.populations["h2"].ground = True
    return {
        "mlp": mlp,
        "dag": nb.dag([5, 8, 8, 8, 3], skips=[(0, 2), (1, 4)], seed=2),
        "recurrent": nb.rnn(4, [6, 5], 3, seed=3),
        "conv": nb.conv_net((2, 8, 8), [{"channels": 4, "kernel": 3, "padding": 1},
                                        {"channels": 4, "kernel": 3, "groups": 2, "pool": {"kind": "avg", "size": 2}},
                                        {"channels": 3, "kernel": 2, "stride": 2, "pool": {"kind": "sum", "size": 1}}],
                            dense=[6], n_out=3, seed=4),
        "imported": nb.from_nir(GRAPHS["conv"]()),
    }


def assert_same_network(a, b):
    """Same populations and projections, every array equal bit for bit."""
    assert a.name == b.name
    assert list(a.populations) == list(b.populations)
    for name, p in a.populations.items():
        q = b.populations[name]
        assert (p.size, p.role, p.activation.spec, p.shape, p.ground) == (q.size, q.role, q.activation.spec, q.shape,
                                                                           q.ground), name
        assert (p.bias is None) == (q.bias is None), name
        if p.bias is not None:
            assert p.bias.tobytes() == q.bias.tobytes(), name
        assert (p.neuron is None) == (q.neuron is None), name
        if p.neuron is not None:
            assert p.neuron.model == q.neuron.model
            for key, value in p.neuron.params.items():
                assert value.shape == q.neuron.params[key].shape and value.tobytes() == q.neuron.params[key].tobytes()
    key = lambda proj: proj.name  # noqa: E731
    assert sorted(map(key, a.projections)) == sorted(map(key, b.projections))
    for p in a.projections:
        q = b.projection(p.name)
        assert (p.pre, p.post, p.kind, p.delay) == (q.pre, q.post, q.kind, q.delay), p.name
        assert nb.model.conv.geometry(p.options, a.populations[p.pre].shape) == nb.model.conv.geometry(
            q.options, b.populations[q.pre].shape) if p.kind == "conv2d" else p.options == q.options
        assert p.weight.shape == q.weight.shape and p.weight.tobytes() == q.weight.tobytes(), p.name


@pytest.mark.parametrize("kind", ["mlp", "dag", "recurrent", "conv", "imported"])
def test_yaml_to_nir_to_yaml_keeps_every_array_bit_for_bit(kind, tmp_path):
    net = yaml_networks()[kind]
    nb.save_model(net, tmp_path / "a.yaml")
    first = nb.load_model(tmp_path / "a.yaml")
    nb.save_model(first, tmp_path / "b.nir")
    nb.save_model(nb.load_model(tmp_path / "b.nir"), tmp_path / "c.yaml")
    assert_same_network(net, nb.load_model(tmp_path / "c.yaml"))


@pytest.mark.parametrize("kind", sorted(GRAPHS))
def test_nir_to_toolkit_to_nir_keeps_every_array_bit_for_bit(kind, tmp_path):
    graph = GRAPHS[kind]()
    assert_same_graph(graph, nb.to_nir(nb.from_nir(graph)))
    nir.write(tmp_path / "a.nir", graph)
    nb.save_model(nb.load_model(tmp_path / "a.nir"), tmp_path / "b.nir")
    assert_same_graph(graph, nir.read(tmp_path / "b.nir", type_check=False))


def test_imported_graphs_map_onto_populations_and_projections():
    net = nb.from_nir(GRAPHS["conv"]())
    assert [(p.name, p.role, p.size, p.shape, p.neuron.model) for p in net.populations.values() if p.neuron] == [
        ("map1", "hidden", 4, (4, 8, 8), "IF"), ("map2", "hidden", 4, (4, 2, 2), "IF"),
        ("if3", "hidden", 5, None, "IF"), ("li", "output", 5, None, "LI")]
    assert {p.name: (p.kind, p.options.get("pool", {}).get("kind")) for p in net.projections} == {
        "c1": ("conv2d", None), "c2": ("conv2d", "sum"), "c3": ("conv2d", "avg"), "fc": ("dense", None),
        "gain": ("elementwise", None)}
    rec = nb.from_nir(GRAPHS["recurrent"]())
    assert {p.name: p.delay for p in rec.projections} == {"a1": 0, "rec": 1, "a2": 0}
    dag = nb.from_nir(GRAPHS["dag"]())
    graph = GRAPHS["dag"]()
    # Several edges into one node add: the population's bias is the Affine's, skips add Linear inputs.
    assert [p.name for p in dag.incoming("if2")] == ["a2", "skip"]
    np.testing.assert_array_equal(dag.populations["if2"].bias, graph.nodes["a2"].bias)


def test_files_written_by_snntorch_and_sinabs_hold_the_frameworks_parameters():
    ref = np.load(DATA / "reference.npz")
    versions = json.loads((DATA / "versions.json").read_text())
    assert {"torch", "snntorch", "sinabs", "nir"} <= set(versions)
    net = nb.load_model(DATA / "snntorch_mlp.nir")
    assert [(p.name, p.role, p.neuron and p.neuron.model) for p in net.populations.values()] == [
        ("input", "input", None), ("1", "hidden", "LIF"), ("3", "output", "LIF")]
    for lin, lif in (("0", "1"), ("2", "3")):
        np.testing.assert_array_equal(net.projection(lin).weight, ref[f"snntorch_mlp/{lin}.weight"])
        np.testing.assert_array_equal(net.populations[lif].bias, ref[f"snntorch_mlp/{lin}.bias"])
        params = net.populations[lif].neuron.params
        np.testing.assert_array_equal(params["v_threshold"], ref[f"snntorch_mlp/{lif}.threshold"])
        # snnTorch exports beta as tau = dt / (1 - beta) with dt = 1e-4 s, in float32.
        beta = ref[f"snntorch_mlp/{lif}.beta"]
        np.testing.assert_allclose(params["tau"], 1e-4 / (1 - beta), rtol=1e-5)
    cnn = nb.load_model(DATA / "sinabs_cnn.nir")
    assert {p.name: (p.kind, p.pre, p.post, p.options.get("pool", {}).get("kind")) for p in cnn.projections} == {
        "0": ("conv2d", "input", "1", None), "3": ("conv2d", "1", "4", "sum"), "6": ("dense", "4", "7", None)}
    assert cnn.populations["1"].shape == (4, 6, 6) and cnn.populations["4"].shape == (4, 3, 3)
    for conv in ("0", "3", "6"):
        np.testing.assert_array_equal(cnn.projection(conv).weight, ref[f"sinabs_cnn/{conv}.weight"])
    np.testing.assert_array_equal(cnn.populations["1"].bias, ref["sinabs_cnn/0.bias"])
    np.testing.assert_array_equal(cnn.populations["1"].neuron.params["v_threshold"].reshape(-1),
                                  np.broadcast_to(ref["sinabs_cnn/1.spike_threshold"], (4 * 6 * 6,)))


def _mutate(graph, node, field, value):
    setattr(graph.nodes[node], field, value)
    return graph


BAD = {
    "unsupported node": (lambda: _mutate(GRAPHS["mlp"](), "fc2", "weight", None) and nir.NIRGraph(
        nodes={**GRAPHS["mlp"]().nodes, "fc2": nir.Delay(delay=np.ones(10))}, edges=GRAPHS["mlp"]().edges,
        type_check=False), r"node 'fc2': type Delay is not supported"),
    "weight shape": (lambda: _mutate(GRAPHS["mlp"](), "fc2", "weight", np.ones((3, 7))),
                     r"node 'fc2'.weight: shape \[3, 7\] does not fit the 10 features of 'lif1'"),
    "nan tau": (lambda: _mutate(GRAPHS["mlp"](), "lif1", "tau", np.full(10, np.nan)),
                r"node 'lif1'.tau: contains NaN"),
    "nan weight": (lambda: _mutate(GRAPHS["conv"](), "c2", "weight", np.full((4, 2, 3, 3), np.nan)),
                   r"node 'c2'.weight: contains NaN"),
    "dilation": (lambda: _mutate(GRAPHS["conv"](), "c1", "dilation", (2, 2)), r"node 'c1'.dilation"),
    "bias shape": (lambda: _mutate(GRAPHS["mlp"](), "fc1", "bias", np.ones(4)), r"node 'fc1'.bias: shape \[4\]"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_graphs_raise_one_line_errors_naming_node_and_field(case, tmp_path, capsys):
    make, pattern = BAD[case]
    with pytest.raises(ModelError, match=pattern) as err:
        nb.from_nir(make())
    assert "\n" not in str(err.value)
    path = tmp_path / "bad.nir"
    nir.write(path, make())
    code, err_lines = cli_in_process(capsys, "balance", path, "-o", tmp_path / "out.nir")
    assert code == 1 and len(err_lines) == 1 and str(path) in err_lines[0], err_lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.nir"]


@pytest.mark.parametrize("damage", ["truncated", "not hdf5", "empty"])
def test_unreadable_files_fail_with_one_line_and_write_nothing(damage, tmp_path, capsys):
    path = tmp_path / "bad.nir"
    nir.write(tmp_path / "good.nir", GRAPHS["mlp"]())
    data = (tmp_path / "good.nir").read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "not hdf5": b"format: nir\n" * 50, "empty": b""}[damage])
    with pytest.raises(ModelError, match=r"bad.nir: not a readable NIR file"):
        nb.load_model(path)
    for args in (("inspect", path), ("balance", path, "-o", tmp_path / "out.nir")):
        code, err_lines = cli_in_process(capsys, *args)
        assert code == 1 and len(err_lines) == 1, err_lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.nir", "good.nir"]


def test_what_nir_cannot_express_is_refused_naming_the_population():
    with pytest.raises(ModelError, match=r"populations\['h1'\].activation: tanh has no NIR node"):
        nb.to_nir(nb.mlp([3, 4, 2], activation="tanh"))
    net = nb.conv_net((1, 6, 6), [{"channels": 2, "kernel": 3, "pool": {"kind": "max", "size": 2}}], n_out=2)
    with pytest.raises(ModelError, match=r"projections \(in->h1\).pool: NIR has no max pooling node"):
        nb.to_nir(net)


def test_cli_balances_inspects_and_quantizes_a_nir_file(tmp_path, capsys):
    src, out = tmp_path / "model.nir", tmp_path / "balanced.nir"
    nir.write(src, GRAPHS["dag"]())
    proc = cli("balance", src, "-o", out)
    assert proc.returncode == 0, proc.stderr
    before, after = nb.load_model(src), nb.load_model(out)
    assert nb.imbalance(after, nb.Lp(2)).max_relative <= 1e-9
    assert main(["inspect", str(out)]) == 0
    assert main(["quantize", str(out), "--profile", "loihi1", "--balance", "pow2"]) == 0
    assert "loihi1" in capsys.readouterr().out
    assert before.populations["if1"].neuron.params["v_threshold"].tobytes() != \
        after.populations["if1"].neuron.params["v_threshold"].tobytes()  # the gauge moved the thresholds


def test_importing_the_package_imports_neither_nir_nor_h5py():
    code = "import sys, neuro_balance; print(sorted(m for m in ('nir', 'h5py', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_readme_pipeline_runs_nir_in_balanced_on_a_chip_nir_out(tmp_path):
    import warnings

    x = np.random.default_rng(0).random((16, 64))
    net = nb.load_model(DATA / "sinabs_cnn.nir")
    res = nb.balance(net, nb.Lp(2), method="sweep", scale_grid="pow2", tie="layer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the speck profile has unverified values
        q = nb.hardware.quantize(res.network, "speck", x)
    nb.save_model(res.network, tmp_path / "balanced.nir")
    assert q.forward(x).shape == (16, 5)
    back = nir.read(tmp_path / "balanced.nir")
    kinds = lambda g: sorted(type(n).__name__ for n in g.nodes.values())  # noqa: E731
    assert kinds(back) == kinds(nir.read(DATA / "sinabs_cnn.nir"))  # pool and flatten nodes take derived names
    assert res.imbalance < res.history["imbalance"][0]
