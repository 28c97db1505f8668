"""NIR round trips through real frameworks: snnTorch and sinabs write a graph, the toolkit reads it,
balances it (the exact gauge) and writes it back, and the framework computes the same spikes from it.

Needs the ``[interop]`` extra (torch, snntorch, sinabs); skipped without it, and not run by CI.
"""
import numpy as np
import pytest

import neuro_balance as nb

pytestmark = pytest.mark.interop
torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")

STEPS = 40


def _balanced_copy(path, tmp_path, grid, tie="layer"):
    """Read a framework's file, balance it exactly, write it; also write the unbalanced network back.

    ``tie="layer"``: one gauge per layer, since snnTorch reads one threshold per layer.
    """
    net = nb.load_model(path)
    res = nb.balance(net, nb.Lp(2), method="sweep" if grid else "global", scale_grid=grid, tie=tie)
    assert res.extra["invariance"] == "exact" and res.converged
    assert any(np.any(v != 0) for v in res.extra["gauge"].values())  # thresholds and weights really moved
    nb.save_model(net, tmp_path / "plain.nir")
    nb.save_model(res.network, tmp_path / "balanced.nir")
    return nir.read(tmp_path / "plain.nir"), nir.read(tmp_path / "balanced.nir")


def _snntorch_net():
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 12), snn.Leaky(beta=torch.linspace(0.6, 0.95, 12), threshold=torch.full((12,), 0.5),
                                          init_hidden=True),
        torch.nn.Linear(12, 4), snn.Leaky(beta=torch.full((4,), 0.9), threshold=torch.full((4,), 0.5),
                                          init_hidden=True, output=True))
    with torch.no_grad():
        net[0].weight.mul_(torch.exp(torch.randn(12, 1)))  # units far from balance
    return net


def _run_snntorch(module, x):
    """Spikes (T, batch, n) of a module imported by snnTorch (a GraphModule taking and returning state)."""
    state, out = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            spikes, state = module(x[t], state)
            out.append(spikes)
    return torch.stack(out)


@pytest.mark.parametrize("grid", ["pow2", None])
def test_snntorch_reads_the_balanced_graph_and_computes_the_same_spikes(grid, tmp_path):
    pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir
    from snntorch.import_nir import import_from_nir

    net = _snntorch_net()
    nir.write(tmp_path / "snntorch.nir", export_to_nir(net, torch.zeros(1, 6), ignore_dims=[0]))
    plain, balanced = _balanced_copy(tmp_path / "snntorch.nir", tmp_path, grid)
    x = (torch.rand(STEPS, 8, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    before = _run_snntorch(import_from_nir(plain), x)
    after = _run_snntorch(import_from_nir(balanced), x)
    assert before.sum() > 50
    assert torch.equal(before, after)


def _sinabs_net(batch):
    sl = pytest.importorskip("sinabs.layers")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), sl.IAFSqueeze(batch_size=batch, min_v_mem=-1.0), sl.SumPool2d(2),
        torch.nn.Conv2d(4, 4, 3, padding=1), sl.IAFSqueeze(batch_size=batch, min_v_mem=-1.0), torch.nn.Flatten(),
        torch.nn.Linear(36, 5), sl.IAFSqueeze(batch_size=batch, min_v_mem=-1.0))
    with torch.no_grad():
        for layer, gain in ((net[0], 8.0), (net[3], 0.5), (net[6], 4.0)):
            layer.weight.mul_(gain)
    return net


def _run_sinabs(module, x):
    """Output spikes of a sinabs model on ``x`` (batch, T, C, H, W), time folded into the batch axis."""
    for layer in module.modules():
        if hasattr(layer, "reset_states"):
            layer.reset_states()
    batch, steps = x.shape[:2]
    with torch.no_grad():
        out = module(x.reshape(batch * steps, *x.shape[2:]))
    return (out[0] if isinstance(out, tuple) else out).reshape(batch, steps, -1)


@pytest.mark.parametrize("tie", ["layer", None])
@pytest.mark.parametrize("grid", ["pow2", None])
def test_sinabs_reads_the_balanced_graph_and_computes_the_same_spikes(grid, tie, tmp_path):
    pytest.importorskip("sinabs")
    from sinabs.nir import from_nir, to_nir

    batch = 2
    net = _sinabs_net(batch)
    graph = to_nir(net, torch.zeros(batch, 1, 8, 8))
    graph.infer_types()
    for node in graph.nodes.values():
        for key, value in vars(node).items():
            if isinstance(value, torch.Tensor):
                setattr(node, key, value.detach().numpy())
    nir.write(tmp_path / "sinabs.nir", graph)
    plain, balanced = _balanced_copy(tmp_path / "sinabs.nir", tmp_path, grid, tie)  # sinabs: a threshold per unit
    x = (torch.rand(batch, STEPS, 1, 8, 8, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    original = _run_sinabs(net, x)
    before = _run_sinabs(from_nir(plain, batch_size=batch), x)
    after = _run_sinabs(from_nir(balanced, batch_size=batch), x)
    assert before.sum() > 20
    assert torch.equal(original, before)  # the toolkit's unbalanced copy is the framework's own network
    assert torch.equal(before, after)
