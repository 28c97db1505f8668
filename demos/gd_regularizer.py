"""Gradient descent balances a network only when it has a regulariser (S1 Fig 3).

The same digits MLP is trained twice from each of three inits: on the loss E alone, and on
E + 0.01 * sum w**2. For every hidden unit, gradient flow keeps D = sum_in w**2 - sum_out w**2 fixed on
E alone and makes it decay like exp(-4 alpha t) with the regulariser (t = lr * steps), so the deficit
sum D**2 follows exp(-8 alpha t). Writes gd_regularizer.json and gd_regularizer.png.

    python demos/gd_regularizer.py --out demo_output
    python demos/gd_regularizer.py --quick        # a check in seconds
"""
from neuro_balance.app.commands.demo import experiment_script

if __name__ == "__main__":
    experiment_script("gd_regularizer", __doc__, alpha=1e-2, lr=0.05, epochs=60, seeds=(0, 1, 2))
