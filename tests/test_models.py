"""Every shipped model loads, classifies digits as its header says, and balances without changing its function."""
import re
from pathlib import Path

import numpy as np
import pytest

import neuro_balance as nb
from neuro_balance import datasets
from neuro_balance.learn.training import evaluate

MODELS = sorted((Path(__file__).resolve().parents[1] / "models").glob("*.yaml"))


def digits_for(net):
    data = datasets.digits()
    X = data.X_test
    if net.recurrent:
        X = X.reshape(-1, 8, 8).transpose(1, 0, 2)
    return X, data.y_test


def test_the_shipped_models_are_there():
    assert {p.stem for p in MODELS} >= {"digits_mlp", "digits_cnn", "digits_dag", "digits_rnn", "digits_mixed"}


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_shipped_model_matches_its_stated_accuracy_and_balances(path):
    net = nb.load_model(path)
    X, y = digits_for(net)
    stated = float(re.search(r"test accuracy (\d\.\d+)", path.read_text()).group(1))
    assert evaluate(net, X, y)[1] == pytest.approx(stated, abs=1e-4)
    res = nb.balance(net, nb.Lp(2), tol=1e-11)
    assert res.converged and res.cost_after < res.cost_before
    out, new = net.forward(X), res.network.forward(X)
    assert np.max(np.abs(out - new)) <= 1e-10 * np.max(np.abs(out))
