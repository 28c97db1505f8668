"""Training without a regulariser disrupts an initially perfect balance (S1 Fig 4).

A digits MLP is balanced exactly (global solver), then trained by SGD at three learning rates with no
regulariser. One step of size lr changes each unit's D = sum_in w**2 - sum_out w**2 by exactly
lr**2 (|g_in|**2 - |g_out|**2): small steps keep the balance, large ones destroy it. The last panel
measures the drift after 5 full-batch steps for halving learning rates (slope 2 on a log-log plot).
Writes balance-disrupted.json and balance-disrupted.png.

    python demos/balance_disrupted.py --out demo_output
"""
import argparse

from neuro_balance.learn import experiments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_output", help="output directory")
    args = parser.parse_args()
    result = experiments.run("balance-disrupted", lrs=(0.01, 0.05, 0.2), epochs=30)
    paths = experiments.save(result, args.out)
    print(experiments.summary_text(result))
    print("wrote", *paths.values())


if __name__ == "__main__":
    main()
