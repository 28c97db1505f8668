"""Where balancing before quantisation wins and where it changes nothing: every shipped feedforward model, every chip.

For each model in ``models/`` that the emulator runs (feedforward), `neuro_balance.hardware.evaluate`
maps the float network, and the network balanced each way (``balanced``: L2; ``balanced_linf``:
L-infinity range equalisation; ``balanced_pow2``: L-infinity with power-of-two factors;
``balanced_auto``: chosen per chip on the calibration data), onto every profile at its own weight
width and at 4 bits, calibrated on the digits training split and scored on the test split. The rows
give each network's L-infinity range imbalance, the test accuracy and the relative RMS output error;
``--stepped`` adds the stepped simulation's. A summary lists, per model and width, how
``balanced_auto`` compares with plain quantisation.

    python benchmarks/balance_quantize.py [--models digits_cnn_bn ...] [--profiles loihi1 ...] [--stepped]
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import neuro_balance as nb
from neuro_balance import datasets
from neuro_balance.errors import GridError
from neuro_balance.hardware import Evaluation, evaluate, list_profiles

MODELS = Path(__file__).resolve().parents[1] / "models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", help="model names in models/ (default: every feedforward one)")
    parser.add_argument("--profiles", nargs="+", help="profile names (default: every bundled one)")
    parser.add_argument("--bits", nargs="+", default=["native", "4"], help="weight widths; 'native' = the chip's own")
    parser.add_argument("--stepped", action="store_true", help="also run the stepped simulation (slow on CNNs)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    data = datasets.digits()
    bits = [None if b == "native" else int(b) for b in args.bits]
    names = args.models or sorted(p.stem for p in MODELS.glob("*.yaml"))
    summary = []
    for name in names:
        net = nb.load_model(MODELS / f"{name}.yaml")
        if net.recurrent:
            print(f"## {name}: recurrent, not run (the emulator maps feedforward networks)\n")
            continue
        t0 = time.perf_counter()
        parts, skipped = [], {}
        for prof in args.profiles or list_profiles():
            try:
                parts.append(evaluate(net, data.X_test, data.y_test, calibration=data.X_train, profiles=[prof],
                                      bits=bits, stepped=args.stepped))
            except GridError as err:     # a chip that cannot run this model (tanh units on a spiking chip)
                skipped[prof] = err.result.failed[0][1]
        ev = Evaluation([r for p in parts for r in p.records], parts[0].float_accuracy, parts[0].balance)
        print(f"## {name} ({time.perf_counter() - t0:.0f} s)\n\n{ev.rows_table()}\n")
        for prof, why in skipped.items():
            print(f"{prof}: not run: {why}")
        for prof in ev.profiles:
            for b in ev.bits:
                plain, auto = ev.mean(prof, b, "quantized"), ev.mean(prof, b, "balanced_auto")
                if plain is not None and auto is not None:
                    choice = next(r["choice"] for r in ev.records if r["profile"] == prof and r["bits"] == b
                                  and r["variant"] == "balanced_auto")
                    summary.append((name, prof, b, plain, auto, choice))
    print("## balanced_auto against plain quantisation (test accuracy)\n")
    print("| model | profile | bits | plain | auto | difference (points) | choice |\n|---|---|---|---|---|---|---|")
    for name, prof, b, plain, auto, choice in summary:
        print(f"| {name} | {prof} | {'native' if b is None else b} | {plain:.3f} | {auto:.3f} | "
              f"{100 * (auto - plain):+.1f} | {choice} |")
    worst = min(summary, key=lambda s: s[4] - s[3])
    wins = sum(s[4] > s[3] for s in summary)
    print(f"\n{len(summary)} cells; auto above plain in {wins}, equal in "
          f"{sum(s[4] == s[3] for s in summary)}, below in {sum(s[4] < s[3] for s in summary)}; "
          f"worst {100 * (worst[4] - worst[3]):+.1f} points ({worst[0]}, {worst[1]}, "
          f"{'native' if worst[2] is None else worst[2]} bits)")


if __name__ == "__main__":
    main()
