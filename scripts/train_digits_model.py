"""Train the project's bundled model: a 64-32-32-10 ReLU MLP on scikit-learn's digits.

Plain minibatch SGD with no regulariser (so the trained network is far from balanced, which is what
the balancing demos start from), seed 0. Writes models/digits_mlp.yaml and models/digits_mlp.npz and
prints the test accuracy on the default digits split (25 % held out, seed 0).

    python scripts/train_digits_model.py [--out models/digits_mlp.yaml]
"""
import argparse
import sys
from pathlib import Path

from neuro_balance.learn.digits_models import train_digits_model
from neuro_balance.model.files import save_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "models" / "digits_mlp.yaml"))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    net, accuracy = train_digits_model(epochs=args.epochs, lr=args.lr, seed=args.seed)
    if accuracy < 0.93:
        print(f"test accuracy {accuracy:.4f} is below 0.93; not saving", file=sys.stderr)
        return 1
    save_model(net, args.out, comment=f"64-32-32-10 ReLU MLP trained on scikit-learn digits by "
                                      f"scripts/train_digits_model.py (plain SGD, lr {args.lr:g}, batch 32, "
                                      f"{args.epochs} epochs, seed {args.seed}); test accuracy {accuracy:.4f}")
    print(f"test accuracy {accuracy:.4f}; wrote {args.out} and {Path(args.out).with_suffix('.npz')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
