"""Stochastic balancing reaches the same weights whatever the order (S1 Fig 5).

One random, strongly unbalanced MLP is balanced 1000 times by the paper's stochastic algorithm, each
time visiting the units in a different random order, until every unit's relative imbalance is below
1e-10. The balanced state is the unique minimiser of a strictly convex cost (Thm 5.1), so all runs
agree with each other and with the global (Newton) solution to rounding. Writes
order-independence.json and order-independence.png.

    python demos/order_independence.py --out demo_output
"""
import argparse

from neuro_balance.learn import experiments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_output", help="output directory")
    args = parser.parse_args()
    result = experiments.run("order-independence", runs=1000, sizes=(6, 10, 10, 4))
    paths = experiments.save(result, args.out)
    print(experiments.summary_text(result))
    print("wrote", *paths.values())


if __name__ == "__main__":
    main()
