"""What a chip's precision does to a network, and what balancing wins back.

The bundled digits MLP is given a function-preserving random rescaling of its hidden units (each
unit's inputs times lambda, its outputs divided by lambda): in float64 nothing changes, but on a
chip with few weight bits the badly scaled units lose their small weights to rounding. Balancing
maps every rescaled copy back to the one balanced state. Accuracy against weight bits on four chip
profiles, for the original, the rescaled and the balanced network. Writes chip_precision.png.

    python demos/chip_precision.py --out demo_output
"""
import argparse
import warnings
from pathlib import Path

import numpy as np

import neuro_balance as nb
from neuro_balance.model.files import atomic_output

MODEL = Path(__file__).resolve().parents[1] / "models" / "digits_mlp.yaml"
PROFILES = ("loihi1", "speck", "spinnaker2", "xylo_audio2")
BITS = (2, 3, 4, 6, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_output", help="output directory")
    parser.add_argument("--sigma", type=float, default=1.0, help="spread of the random log-scales")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    net = nb.load_model(MODEL)
    digits = nb.datasets.digits()
    rng = np.random.default_rng(0)
    rescaled = nb.scale(net, {n: rng.normal(0, args.sigma, p.size) for n, p in net.populations.items() if p.balanced})
    versions = {"original": net, "rescaled (same function)": rescaled,
                "rescaled, then balanced": nb.balance(rescaled, nb.Lp(2)).network}
    fig, axes = plt.subplots(1, len(PROFILES), figsize=(3.4 * len(PROFILES), 3.2), sharey=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nb.hardware.UnverifiedProfileWarning)
        for label, version in versions.items():
            ev = nb.hardware.evaluate(version, digits.X_test, digits.y_test, calibration=digits.X_train,
                                      profiles=PROFILES, bits=BITS, variants=("quantized",), check=False)
            for ax, profile in zip(axes, PROFILES):
                acc = [ev.mean(profile, b, "quantized") for b in BITS]
                ax.plot(BITS, [np.nan if a is None else a for a in acc], marker="o", label=label)
                print(f"{profile:12s} {label:26s} " + " ".join("  n/a" if a is None else f"{a:.3f}" for a in acc))
    for ax, profile in zip(axes, PROFILES):
        ax.axhline(ev.float_accuracy, color="k", ls="--", lw=0.8)
        ax.set_title(profile)
        ax.set_xlabel("weight bits")
    axes[0].set_ylabel("test accuracy (digits)")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Quantisation depends on how a network is scaled; balancing picks one scaling", y=1.05)
    path = Path(args.out) / "chip_precision.png"
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    print(f"bits: {BITS}; float accuracy {ev.float_accuracy:.4f}\nwrote {path}")


if __name__ == "__main__":
    main()
