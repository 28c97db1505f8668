"""Train the shipped models that show where balancing before quantisation wins and where it changes nothing.

* ``digits_cnn_bn``: the ``digits_cnn`` architecture (conv 3x3, 8 channels; conv 3x3 stride 2, 16
  channels; dense 32) trained with batch normalisation on every hidden population, folded into the
  weights and biases for deployment (`neuro_balance.learn.batchnorm`). Folding multiplies each
  unit's incoming weights by ``gamma / sigma``, so per-unit ranges spread apart: the case
  cross-layer equalisation was made for.
* ``digits_mlp_adam``: a 64-32-32-10 ReLU MLP trained with Adam and no regulariser. Adam does not
  conserve the per-unit balance that gradient flow keeps, so it ends away from the balanced state.

Run from the repository root: ``python scripts/train_quantization_models.py [NAME ...]``; the seeds,
hyper-parameters, package versions and test accuracies are written into each model's comment.
"""
from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np

import neuro_balance as nb
from neuro_balance import datasets
from neuro_balance.learn.training import evaluate, train

MODELS = Path(__file__).resolve().parents[1] / "models"
SEED = 0


def jobs() -> dict:
    """Name -> (network, description, training keywords)."""
    cnn = nb.conv_net((1, 8, 8), [{"channels": 8, "kernel": 3, "padding": 1},
                                  {"channels": 16, "kernel": 3, "stride": 2, "padding": 1}],
                      dense=[32], n_out=10, seed=4, name="digits_cnn_bn")
    return {
        "digits_cnn_bn": (cnn, "convolutional ReLU network (conv 3x3, 8 channels; conv 3x3 stride 2, 16 channels; "
                               "dense 32) trained with batch normalisation, folded into weights and biases",
                          {"optimizer": "adam", "lr": 0.005, "epochs": 30, "batch_norm": True}),
        "digits_mlp_adam": (nb.mlp([64, 32, 32, 10], seed=5, name="digits_mlp_adam"),
                            "64-32-32-10 ReLU MLP trained with Adam, no regulariser",
                            {"optimizer": "adam", "lr": 0.005, "epochs": 30}),
    }


def main() -> None:
    data = datasets.digits()
    only = set(sys.argv[1:])
    versions = f"neuro_balance {nb.__version__}, numpy {np.__version__}, python {platform.python_version()}"
    for name, (net, what, kwargs) in jobs().items():
        if only and name not in only:
            continue
        res = train(net, data.X_train, data.y_train, batch_size=32, seed=SEED, diagnostics=False, **kwargs)
        _, accuracy = evaluate(res.network, data.X_test, data.y_test)
        settings = ", ".join(f"{k} {v}" for k, v in kwargs.items())
        comment = (f"{what}.\nTrained on scikit-learn digits (default split) by scripts/train_quantization_models.py "
                   f"({settings}, batch 32, seed {SEED}, network seed in the script, no regulariser; {versions}); "
                   f"test accuracy {accuracy:.4f}")
        nb.save_model(res.network, MODELS / f"{name}.yaml", comment=comment)
        print(f"{name}: test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
