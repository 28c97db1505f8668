"""Stochastic balancing reaches the same weights whatever the order (S1 Fig 5).

One random, strongly unbalanced MLP is balanced 1000 times by the paper's stochastic algorithm, each
time visiting the units in a different random order, until every unit's relative imbalance is below
1e-10. The balanced state is the unique minimiser of a strictly convex cost (Thm 5.1), so all runs
agree with each other and with the global (Newton) solution to rounding. Writes
order_independence.json and order_independence.png.

    python demos/order_independence.py --out demo_output
    python demos/order_independence.py --quick        # a check in seconds
"""
from neuro_balance.app.commands.demo import experiment_script

if __name__ == "__main__":
    experiment_script("order_independence", __doc__, runs=1000, sizes=(6, 10, 10, 4))
