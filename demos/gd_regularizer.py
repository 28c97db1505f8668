"""Gradient descent balances a network only when it has a regulariser (S1 Fig 3).

The same digits MLP is trained twice from each of three inits: on the loss E alone, and on
E + 0.01 * sum w**2. For every hidden unit, gradient flow keeps D = sum_in w**2 - sum_out w**2 fixed on
E alone and makes it decay like exp(-4 alpha t) with the regulariser (t = lr * steps), so the deficit
sum D**2 follows exp(-8 alpha t). Writes gd-regularizer.json and gd-regularizer.png.

    python demos/gd_regularizer.py --out demo_output
"""
import argparse

from neuro_balance.learn import experiments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_output", help="output directory")
    args = parser.parse_args()
    result = experiments.run("gd-regularizer", alpha=1e-2, lr=0.05, epochs=60, seeds=(0, 1, 2))
    paths = experiments.save(result, args.out)
    print(experiments.summary_text(result))
    print("wrote", *paths.values())


if __name__ == "__main__":
    main()
