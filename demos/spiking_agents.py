"""Neurons as agents in a spiking network: each balances itself while the network keeps spiking.

The bundled digits MLP runs as non-leaky integrate-and-fire neurons (reset by subtraction) in Brian2,
driven by one test digit. Every hidden neuron is an agent with its own Poisson balance clock: it reads
only its own synapses, computes its factor lambda and rescales them. Measured before and after:
the output readout is unchanged (up to spike-count quantisation) and every hidden neuron's rate is
multiplied by its own lambda. Writes spiking_agents.png: the population rates over the whole run with
the measuring windows and the balancing shaded, a raster of a few units per population with their balance
events, the readout before and after, and each hidden unit's rate after against lambda x its rate before.

    python demos/spiking_agents.py --out demo_output
"""
import argparse
from pathlib import Path

import numpy as np

import neuro_balance as nb
from neuro_balance.app.plots import plot_spiking_raster, rate_pairs
from neuro_balance.sim.agents import run_agents

MODEL = Path(__file__).resolve().parents[1] / "models" / "digits_mlp.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_output", help="output directory")
    parser.add_argument("--window", type=float, default=1.0, help="measurement window before and after (s)")
    args = parser.parse_args()
    net = nb.load_model(MODEL)
    digits = nb.datasets.digits()
    balance_time = 0.06
    run = run_agents(net, nb.Lp(2), digits.X_test[0], duration=balance_time, window=args.window, record_spikes=True)
    ratios = run.rate_ratios(min_count=100)
    print(run)
    for name, r in ratios.items():
        print(f"{name}: rate after / (lambda x rate before) = {r.mean():.4f} +- {r.std():.4f} over {r.size} neurons")
    print(f"readout before {np.round(run.before.output, 3)}\nreadout after  {np.round(run.after.output, 3)}")
    start = 0.1 + args.window   # run_agents: the window before starts at 0.1 s, the one after 0.1 s after balancing
    events = {n: (run.events.t[run.events.population == n], run.events.index[run.events.population == n])
              for n in run.events.order}
    out = Path(args.out)
    phases = {"measure before": (0.1, start), "balance while spiking": (start, start + balance_time),
              "measure after": (start + balance_time + 0.1, start + balance_time + 0.1 + args.window)}
    path = plot_spiking_raster(run.spikes, events, out / "spiking_agents.png", window=(start - 0.01, start + 0.015),
                               phases=phases, outputs={"before": run.before.output, "after": run.after.output},
                               output_name=run.network.output.name, rates=rate_pairs(run),
                               sizes={n: p.size for n, p in net.populations.items()})
    print("wrote", path)


if __name__ == "__main__":
    main()
