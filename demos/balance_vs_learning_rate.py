"""Does balancing help learning, or does it change the learning rate? The companion paper's claim, swept over lr.

S2 (Table 4) trains FCNs by plain SGD at lr 1e-3, batch 256, on scarce data, and finds that full balance
before training (FB) and a balancing sweep after every epoch (L1 NB, L2 NB) raise the test accuracy. Here
the same protocol runs on scikit-learn's digits (stratified 100 and 300 training images, 5 seeds) for seven
arms (plain, FB, L1 NB, L2 NB, FB + L1 NB, L1 and L2 regularisers), plain SGD at lr 1e-3, 1e-2 and 1e-1,
and with tuned optimisers (momentum 0.9, Adam). The gains are large at lr 1e-3, where plain SGD has barely
started learning, and shrink to a point or so at a tuned learning rate: one gradient step does not commute
with rescaling, so balancing acts partly like a per-layer learning rate (printed with the table). Writes
balance_vs_learning_rate.json and balance_vs_learning_rate.png (accuracy against learning rate per arm,
and learning curves at lr 1e-3). The default run is not quick: measured with every epoch count cut to a tenth,
it took 28 s of CPU on one core (one BLAS thread), so the whole run takes about 5 minutes of one core, longer on
a busy machine.

    python demos/balance_vs_learning_rate.py --out demo_output   # the small FCN, about 5 min of one core
    python demos/balance_vs_learning_rate.py --quick             # a check in seconds
    python demos/balance_vs_learning_rate.py --paper             # S2's three FCNs; long (about an hour)
    python demos/balance_vs_learning_rate.py --mnist ~/data/mnist --quick   # MNIST or Fashion-MNIST

MNIST / Fashion-MNIST: put the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte,
t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, gzip-compressed or not) in one folder and pass it to
--mnist; the toolkit never downloads them. The nets then take 784 inputs and the test set is the 10,000
t10k images (the default size then takes a few times longer than on digits).
"""
from neuro_balance.app.commands.demo import experiment_script
from neuro_balance.learn.experiments.balance_vs_learning_rate import PAPER

if __name__ == "__main__":
    experiment_script("balance_vs_learning_rate", __doc__, presets={"paper": PAPER})
