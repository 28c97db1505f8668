"""Training without a regulariser disrupts an initially perfect balance (S1 Fig 4).

A digits MLP is balanced exactly (global solver), then trained by SGD at three learning rates with no
regulariser. One step of size lr changes each unit's D = sum_in w**2 - sum_out w**2 by exactly
lr**2 (|g_in|**2 - |g_out|**2): small steps keep the balance, large ones destroy it. The last panel
measures the drift after 5 full-batch steps for halving learning rates (slope 2 on a log-log plot).
Writes balance_disrupted.json and balance_disrupted.png.

    python demos/balance_disrupted.py --out demo_output
    python demos/balance_disrupted.py --quick        # a check in seconds
"""
from neuro_balance.app.commands.demo import experiment_script

if __name__ == "__main__":
    experiment_script("balance_disrupted", __doc__, lrs=(0.01, 0.05, 0.2), epochs=30)
