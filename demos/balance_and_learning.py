"""Does balancing help learning? The companion paper's protocol (S2) on digits, or on MNIST.

Six conditions share each seed's init and minibatch order: plain SGD, L1 and L2 regularisers, full
L2 balance before training (FB), and one balancing sweep after every epoch for L1 or L2 with no
regulariser (L1 NB, L2 NB). Five seeds, on the full training set and on a stratified 1 % of it.
Prints mean ± std of the final and best test accuracy and the epochs to 90 % test accuracy, and
writes balance-and-learning.json and balance-and-learning.png.

    python demos/balance_and_learning.py --out demo_output
    python demos/balance_and_learning.py --mnist ~/data/mnist --epochs 5   # the four IDX files; long
"""
import argparse

from neuro_balance.learn import experiments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_output", help="output directory")
    parser.add_argument("--mnist", help="directory with MNIST / Fashion-MNIST IDX files (default: digits)")
    parser.add_argument("--epochs", type=int, help="epochs (default 40 on the full set; more on 1 %%)")
    args = parser.parse_args()
    result = experiments.run("balance-and-learning", mnist=args.mnist, seeds=(0, 1, 2, 3, 4), fractions=(1.0, 0.01),
                             epochs=args.epochs)
    paths = experiments.save(result, args.out)
    print(experiments.summary_text(result))
    print("wrote", *paths.values())


if __name__ == "__main__":
    main()
