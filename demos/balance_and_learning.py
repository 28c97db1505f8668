"""Does balancing help learning? The companion paper's protocol (S2) on digits, or on MNIST.

Six conditions share each seed's init and minibatch order: plain SGD, L1 and L2 regularisers, full
L2 balance before training (FB), and one balancing sweep after every epoch for L1 or L2 with no
regulariser (L1 NB, L2 NB). Five seeds, on the full training set and on a stratified 1 % of it.
Prints mean ± std of the final and best test accuracy and the epochs to 90 % test accuracy, and
writes balance_and_learning.json and balance_and_learning.png.

    python demos/balance_and_learning.py --out demo_output
    python demos/balance_and_learning.py --mnist ~/data/mnist --epochs 5   # the four IDX files; long
    python demos/balance_and_learning.py --quick        # a check in seconds
"""
from neuro_balance.app.commands.demo import experiment_script

if __name__ == "__main__":
    experiment_script("balance_and_learning", __doc__, seeds=(0, 1, 2, 3, 4), fractions=(1.0, 0.01))
