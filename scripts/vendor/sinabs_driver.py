"""Run speck cases through sinabs 3.1.3's DynapcnnNetwork (CPU, no device): ``sinabs_driver.py in.npz out.npz``.

Runs in the sinabs venv (``scripts/vendor_venvs.sh``) with numpy, torch and sinabs only. samna, which
``sinabs.backend.dynapcnn`` imports at module level, is needed only to talk to a device: a meta-path
finder hands out empty stand-in modules for ``samna*`` so that the network runs on the CPU.
Each case (keys in ``sinabs.py``): layer ``i`` is a 1x1 ``Conv2d`` with the integer weights ``w{i}``
and biases ``b{i}`` followed by ``IAFSqueeze`` (``MultiSpike``, ``MembraneSubtract``) with threshold
``theta{i}`` and ``min_v_mem``; the output layer has no floor and a threshold it never reaches. Writes per case the
spike counts ``s{i}`` and membranes ``v{i}`` of every hidden layer and the output membrane ``acc``,
or ``error``.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from unittest import mock



class _DeviceStub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Stand-in ``samna`` / ``samnagui`` packages (device I/O only; not used on the CPU)."""

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("samna", "samnagui"):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = mock.MagicMock()
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _DeviceStub())

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import sinabs.layers as sl  # noqa: E402
from sinabs.backend.dynapcnn import DynapcnnNetwork  # noqa: E402

NEVER = float(2**24)


def _threshold(theta: np.ndarray) -> float:
    """The layer's one threshold (sinabs's IAF has one per layer)."""
    if np.unique(theta).size != 1:
        raise ValueError(f"one threshold per layer expected, got {np.unique(theta)}")
    return float(theta.flat[0])


def run_case(case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n_hidden = int(case["n_hidden"])
    steps = int(case["steps"])
    floor = float(case["min_v_mem"])
    modules = []
    for i in range(1, n_hidden + 2):
        w, b = case[f"w{i}"], case[f"b{i}"]
        conv = nn.Conv2d(w.shape[1], w.shape[0], 1, bias=True)
        conv.weight.data = torch.tensor(w[..., None, None], dtype=torch.float32)
        conv.bias.data = torch.tensor(b, dtype=torch.float32)
        last = i == n_hidden + 1
        modules += [conv, sl.IAFSqueeze(batch_size=1, spike_threshold=NEVER if last else _threshold(case[f"theta{i}"]),
                                        min_v_mem=None if last else floor, record_states=True)]
    n_in = case["w1"].shape[1]
    net = DynapcnnNetwork(nn.Sequential(*modules), input_shape=(n_in, 1, 1), discretize=False)
    layers = list(net.dynapcnn_layers.values()) if isinstance(net.dynapcnn_layers, dict) else list(net.dynapcnn_layers)
    if len(layers) != n_hidden + 1:
        raise RuntimeError(f"DynapcnnNetwork made {len(layers)} layers, expected {n_hidden + 1}")
    spikes: dict[int, torch.Tensor] = {}
    for i, layer in enumerate(layers[:-1], start=1):
        layer.spk.register_forward_hook(lambda module, args, out, i=i: spikes.__setitem__(i, out.detach().clone()))
    raster = torch.tensor(case["raster"], dtype=torch.float32).reshape(steps, n_in, 1, 1)
    with torch.no_grad():
        net(raster)
    out: dict[str, np.ndarray] = {}
    for i, layer in enumerate(layers, start=1):
        v = layer.spk.recordings["v_mem"].reshape(steps, -1).numpy()
        if i <= n_hidden:
            out[f"s{i}"] = spikes[i].reshape(steps, -1).numpy()
            out[f"v{i}"] = v
        else:
            out["acc"] = v
    for key, value in out.items():            # float32 values must be the integers they stand for
        if not np.array_equal(value, np.rint(value)) or np.abs(value).max(initial=0) >= 2**24:
            raise RuntimeError(f"{key}: sinabs produced values that are not exact float32 integers")
        out[key] = value.astype(np.int64)
    return out


if __name__ == "__main__":
    from driver_io import run_cases

    run_cases(sys.argv[1], sys.argv[2], "sinabs", run_case)
