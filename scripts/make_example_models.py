"""Train the example models shipped in models/ (besides digits_mlp, see train_digits_model.py).

* ``digits_dag``: 64-32-32-10 ReLU network with skip projections in->h2 and h1->out;
* ``digits_rnn``: a recurrent ReLU network reading a digit one row of 8 pixels per step (8 steps);
* ``digits_mixed``: mixed activations (leaky ReLU, tanh, ReLU): the tanh units are never balanced;
* ``digits_cnn``: two 3x3 convolutions (8 and 16 channels, the second with stride 2) and a dense head.

No regulariser, so the trained networks are unbalanced. Run from the repository
root: ``python scripts/make_example_models.py [NAME ...]``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import neuro_balance as nb
from neuro_balance import datasets
from neuro_balance.learn.training import evaluate, train

MODELS = Path(__file__).resolve().parents[1] / "models"


def as_rows(X: np.ndarray) -> np.ndarray:
    """Digits (n, 64) as sequences (8, n, 8): one image row per step."""
    return X.reshape(-1, 8, 8).transpose(1, 0, 2)


def main() -> None:
    data = datasets.digits()
    jobs = {
        "digits_dag": (nb.dag([64, 32, 32, 10], skips=[(0, 2), (1, 3)], seed=1, name="digits_dag"), False,
                       "64-32-32-10 ReLU network with skip projections in->h2 and h1->out", "sgd", 0.02),
        "digits_mixed": (nb.mlp([64, 32, 32, 32, 10], activation=["leaky_relu:0.1", "tanh", "relu"], seed=2,
                                name="digits_mixed"), False,
                         "mixed activations: leaky ReLU (balanced), tanh (never balanced: ground), ReLU (balanced)",
                         "sgd", 0.02),
        "digits_cnn": (nb.conv_net((1, 8, 8), [{"channels": 8, "kernel": 3, "padding": 1},
                                               {"channels": 16, "kernel": 3, "stride": 2, "padding": 1}],
                                   dense=[32], n_out=10, seed=4, name="digits_cnn"), False,
                       "convolutional ReLU network: conv 3x3 (8 channels), conv 3x3 stride 2 (16 channels), "
                       "dense 32; one scale per channel", "sgd", 0.02),
        "digits_rnn": (nb.rnn(8, [48], 10, seed=3, spectral_radius=0.9, name="digits_rnn"), True,
                       "recurrent ReLU network (delay-1 projection h1->h1 with self-loops) reading one 8-pixel row per step",
                       "adam", 0.005),
    }
    only = set(sys.argv[1:]) or set(jobs)
    for name, (net, sequences, what, optimizer, lr) in jobs.items():
        if name not in only:
            continue
        X_train, X_test = (as_rows(data.X_train), as_rows(data.X_test)) if sequences else (data.X_train, data.X_test)
        res = train(net, X_train, data.y_train, lr=lr, optimizer=optimizer, epochs=40, batch_size=32, seed=0,
                    diagnostics=False)
        _, accuracy = evaluate(res.network, X_test, data.y_test)
        comment = (f"{what}.\nTrained on scikit-learn digits by scripts/make_example_models.py ({optimizer}, lr {lr}, "
                   f"batch 32, 40 epochs, seed 0, no regulariser); test accuracy {accuracy:.4f}"
                   + ("\nInputs are sequences (T=8, batch, 8): image rows, one per step; the label is read at the last step."
                      if sequences else ""))
        nb.save_model(res.network, MODELS / f"{name}.yaml", comment=comment)
        print(f"{name}: test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
