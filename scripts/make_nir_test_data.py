"""Write the NIR files of tests/data/nir/ with snnTorch and sinabs, and what the frameworks hold.

Run in an environment with torch, snntorch, sinabs and nir (the ``[interop]`` extra)::

    python scripts/make_nir_test_data.py [--out tests/data/nir]

For every network it writes ``NAME.nir`` (the framework's own export), and into ``reference.npz``
the framework's parameters as the framework holds them (``NAME/<module>.<parameter>``, from the
torch modules, not from the NIR file), a fixed input ``NAME/input`` and the framework's output
spikes on it ``NAME/spikes`` (T, batch, n). ``versions.json`` records the versions and the seed.
The default test suite reads the files without torch and compares against these arrays.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import nir
import numpy as np
import torch

SEED = 0
STEPS = 20


def snntorch_mlp():
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    net = torch.nn.Sequential(
        torch.nn.Linear(6, 10), snn.Leaky(beta=torch.linspace(0.7, 0.95, 10), threshold=torch.full((10,), 0.5),
                                          init_hidden=True),
        torch.nn.Linear(10, 3), snn.Leaky(beta=torch.full((3,), 0.9), threshold=torch.full((3,), 0.5),
                                          init_hidden=True, output=True))
    graph = export_to_nir(net, torch.zeros(1, 6), ignore_dims=[0])
    params = {"0.weight": net[0].weight, "0.bias": net[0].bias, "1.beta": net[1].beta, "1.threshold": net[1].threshold,
              "2.weight": net[2].weight, "2.bias": net[2].bias, "3.beta": net[3].beta, "3.threshold": net[3].threshold}
    x = (torch.rand(STEPS, 4, 6) < 0.5).float()
    spikes = []
    for module in net.modules():
        if isinstance(module, snn.SpikingNeuron):
            module.reset_hidden()
    with torch.no_grad():
        for t in range(STEPS):
            out = net(x[t])
            spikes.append(out[0] if isinstance(out, tuple) else out)
    return graph, params, x, torch.stack(spikes)


def sinabs_cnn():
    import sinabs.layers as sl
    from sinabs.nir import to_nir

    batch = 2
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), sl.IAFSqueeze(batch_size=batch), sl.SumPool2d(2),
        torch.nn.Conv2d(4, 4, 3, padding=1), sl.IAFSqueeze(batch_size=batch), torch.nn.Flatten(),
        torch.nn.Linear(36, 5), sl.IAFSqueeze(batch_size=batch))
    with torch.no_grad():  # layers far apart in scale, as after batch-norm folding: far from balance
        for layer, gain in ((net[0], 8.0), (net[3], 0.5), (net[6], 4.0)):
            layer.weight.mul_(gain)
    graph = to_nir(net, torch.zeros(batch, 1, 8, 8))
    graph.infer_types()
    params = {"0.weight": net[0].weight, "0.bias": net[0].bias, "3.weight": net[3].weight, "3.bias": net[3].bias,
              "6.weight": net[6].weight, "6.bias": net[6].bias, "1.spike_threshold": net[1].spike_threshold}
    x = (torch.rand(STEPS, batch, 1, 8, 8) < 0.4).float()
    for layer in net:
        if hasattr(layer, "reset_states"):
            layer.reset_states()
    with torch.no_grad():  # IAFSqueeze: (batch * time, ...) with the time axis fastest
        out = net(x.transpose(0, 1).reshape(batch * STEPS, 1, 8, 8))
    spikes = out.reshape(batch, STEPS, -1).transpose(0, 1)
    return graph, params, x.reshape(STEPS, batch, -1), spikes


def _numpy(graph):
    """Parameters as numpy arrays (sinabs leaves torch tensors in its nodes)."""
    for node in graph.nodes.values():
        if isinstance(node, nir.NIRGraph):
            _numpy(node)
        for key, value in vars(node).items():
            if isinstance(value, torch.Tensor):
                setattr(node, key, value.detach().numpy())
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests" / "data" / "nir"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, make in (("snntorch_mlp", snntorch_mlp), ("sinabs_cnn", sinabs_cnn)):
        torch.manual_seed(SEED)
        graph, params, x, spikes = make()
        nir.write(out / f"{name}.nir", _numpy(graph))
        for key, value in params.items():
            arrays[f"{name}/{key}"] = value.detach().numpy()
        arrays[f"{name}/input"] = x.numpy()
        arrays[f"{name}/spikes"] = spikes.detach().numpy()
        print(f"wrote {out / f'{name}.nir'}: {sorted(graph.nodes)}; {int(spikes.sum())} output spikes")
    np.savez(out / "reference.npz", **arrays)
    import sinabs
    import snntorch

    versions = {"torch": torch.__version__, "snntorch": snntorch.__version__, "sinabs": sinabs.__version__,
                "nir": nir.__version__, "numpy": np.__version__, "seed": SEED, "steps": STEPS}
    (out / "versions.json").write_text(json.dumps(versions, indent=1) + "\n")
    print(f"wrote {out / 'reference.npz'} and versions.json: {versions}")


if __name__ == "__main__":
    main()
