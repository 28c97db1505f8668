"""Every shipped model loads, classifies digits, and balances without changing its function.

The accuracy is checked against a forward pass written out here from the model file itself (YAML
read with PyYAML, arrays from the npz, numpy only): it shares no code with `load_model`,
`Network.forward` or the training code that wrote the header's accuracy.
"""
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

import neuro_balance as nb
from neuro_balance import datasets

MODELS = sorted((Path(__file__).resolve().parents[1] / "models").glob("*.yaml"))

# Chance is 0.10 on ten balanced classes; a small network trained on digits reaches 0.95-0.98
# (scikit-learn's own MLPClassifier gets ~0.97 on this split). 0.93 fails a model whose weights were
# shuffled, mis-ordered or mis-read by a loader bug, and passes every honestly trained one.
MIN_ACCURACY = 0.93


def digits_for(recurrent):
    data = datasets.digits()
    X = data.X_test
    if recurrent:
        X = X.reshape(-1, 8, 8).transpose(1, 0, 2)  # 8 time steps of one 8-pixel row each
    return X, data.y_test


def _activation(spec):
    if spec == "linear":
        return lambda z: z
    if spec == "relu":
        return lambda z: np.maximum(z, 0.0)
    if spec == "tanh":
        return np.tanh
    if spec.startswith("leaky_relu:"):
        alpha = float(spec.split(":")[1])
        return lambda z: np.where(z >= 0, z, alpha * z)
    raise AssertionError(f"the written-out forward pass has no {spec!r}")


def _conv2d(x, w, stride, padding):
    """Cross-correlation of x (batch, C, H, W) with w (F, C, kh, kw), zero padding, one loop per tap."""
    batch, _, H, W = x.shape
    F, _, kh, kw = w.shape
    xp = np.zeros((batch, x.shape[1], H + 2 * padding[0], W + 2 * padding[1]))
    xp[:, :, padding[0]:padding[0] + H, padding[1]:padding[1] + W] = x
    out_h = (H + 2 * padding[0] - kh) // stride[0] + 1
    out_w = (W + 2 * padding[1] - kw) // stride[1] + 1
    out = np.zeros((batch, F, out_h, out_w))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride[0] * out_h:stride[0], j:j + stride[1] * out_w:stride[1]]
            out += np.einsum("bchw,fc->bfhw", patch, w[:, :, i, j])
    return out


def written_out_forward(path, X):
    """The output of the model file's network on X, from the file's own fields (see the module docstring)."""
    spec = yaml.safe_load(path.read_text())
    arrays = np.load(path.parent / spec["weights"])
    pops = spec["populations"]
    projs = spec["projections"]
    recurrent = any(p.get("delay", 0) for p in projs)
    steps = X if recurrent else X[None]
    previous = None
    for x in steps:
        acts = {}
        for pop in pops:
            name = pop["name"]
            if pop["role"] == "input":
                acts[name] = x.reshape((len(x), *pop["shape"])) if "shape" in pop else x
                continue
            z = 0.0
            for proj in (p for p in projs if p["post"] == name):
                w = arrays[f"{proj['pre']}->{name}"]
                if proj.get("delay", 0):  # the previous step's activity, zero before the first step
                    if previous is None:
                        continue
                    pre = previous[proj["pre"]]
                else:
                    pre = acts[proj["pre"]]
                if proj.get("kind") == "conv2d":
                    assert proj["groups"] == 1
                    z = z + _conv2d(pre, w, proj["stride"], proj["padding"])
                else:
                    z = z + pre.reshape(len(pre), -1) @ w.T
            if pop.get("bias"):
                b = arrays[f"{name}.bias"]
                z = z + (b[None, :, None, None] if np.ndim(z) == 4 else b)
            acts[name] = _activation(pop["activation"])(z)
        previous = acts
    return acts[pops[-1]["name"]]


def test_the_shipped_models_are_there():
    assert {p.stem for p in MODELS} >= {"digits_mlp", "digits_cnn", "digits_dag", "digits_rnn", "digits_mixed"}


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_shipped_model_classifies_digits_as_a_written_out_forward_pass_says(path):
    net = nb.load_model(path)
    X, y = digits_for(net.recurrent)
    expected = written_out_forward(path, X)
    out = net.forward(X)[-1] if net.recurrent else net.forward(X)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12 * np.max(np.abs(expected)))
    accuracy = float(np.mean(expected.argmax(axis=1) == y))
    assert accuracy >= MIN_ACCURACY
    stated = float(re.search(r"test accuracy (\d\.\d+)", path.read_text()).group(1))
    assert accuracy == pytest.approx(stated, abs=0.5e-4)  # the header rounds to 4 digits


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_shipped_model_balances_without_changing_its_function(path):
    net = nb.load_model(path)
    X, _ = digits_for(net.recurrent)
    res = nb.balance(net, nb.Lp(2), tol=1e-11)
    assert res.converged and res.cost_after < res.cost_before
    out, new = net.forward(X), res.network.forward(X)
    assert np.max(np.abs(out - new)) <= 1e-10 * np.max(np.abs(out))
