"""Balance a PyTorch ResNet in place: every unit's in-cost meets its out-cost, the outputs do not move.

A torchvision-style small ResNet (`neuro_balance.torch.small_resnet`: batch norm, identity and 1x1
shortcuts) with random weights, put off balance by a random rescaling of its units (as training without
a regulariser leaves a network), is balanced for L2 by `neuro_balance.torch.balance_`. The units on the
residual stream are held at ground (an identity addition pins their scale); the units inside the
blocks balance. The figure plots each unit's out-cost against its in-cost before and after: balanced
units sit on the diagonal. A rescaling moves a unit along its own line in-cost x out-cost = constant (the
product does not change), so balancing lands it at sqrt(in-cost x out-cost); at this random initialisation
every unit's product is nearly the same (each cost sums many random weights of one variance; 0.09 to
0.14 at width 16), so all the units land near one point. Writes torch_resnet.png. Needs the
``[torch]`` extra.

    python demos/torch_resnet.py --out demo_output
"""
import argparse
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

import neuro_balance as nb
import neuro_balance.torch as nbt
from neuro_balance.model.files import atomic_output


def _costs(rep: nb.ImbalanceReport) -> tuple[np.ndarray, np.ndarray]:
    units = [n for n in rep.in_cost if rep.balanced[n].any()]
    return (np.concatenate([rep.in_cost[n][rep.balanced[n]] for n in units]),
            np.concatenate([rep.out_cost[n][rep.balanced[n]] for n in units]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_output", help="output directory")
    parser.add_argument("--width", type=int, default=16)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = nbt.small_resnet(width=args.width).eval()
    x = torch.randn(8, 3, 32, 32)
    binding = nbt.from_module(model, x)
    rng = np.random.default_rng(0)
    nbt.apply_log_scales(model, binding, {n: rng.normal(0, 1, p.size)
                                          for n, p in binding.network.populations.items() if p.balanced})
    cost = nb.Lp(2)
    before_out = model(x).detach()
    before = nb.imbalance(nbt.from_module(model, x).network, cost)
    res = nbt.balance_(model, cost, x)
    after = nb.imbalance(nbt.from_module(model, x).network, cost)
    change = float((model(x).detach() - before_out).abs().max() / before_out.abs().max())
    n_ground = sum(p.ground for p in binding.network.populations.values())
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters; {len(binding.network.populations)} populations "
          f"({n_ground} on the residual stream, held at ground)")
    print(f"L2 cost {res.cost_before:.4g} -> {res.cost_after:.4g}; max relative imbalance "
          f"{before.max_relative:.3g} -> {after.max_relative:.2g} ({res.method} solver)")
    print(f"largest output change: {change:.2g} of the largest output (float32 rounding)")

    a, b = _costs(before)
    product = a * b   # unchanged by any rescaling: balancing puts each unit at sqrt(product) on the diagonal
    fig = Figure(figsize=(8, 7))
    ax = fig.add_subplot()
    for rep, label, style in ((before, "before", dict(marker="o", alpha=0.35, color="tab:red")),
                              (after, "after balancing", dict(marker="x", color="tab:blue"))):
        a, b = _costs(rep)
        ax.loglog(a, b, linestyle="none", markersize=5, label=f"{label} ({len(a)} units)", **style)
    lo, hi = ax.get_xlim()
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, label="in-cost = out-cost")
    ax.set_xlabel("in-cost of a unit (sum of w², bias included)")
    ax.set_ylabel("out-cost of a unit (sum of w²)")
    ax.set_title(f"small ResNet, L2: every unit balanced (cost {res.cost_before:.3g} → {res.cost_after:.3g}, "
                 f"outputs unchanged to {change:.0e})\nA rescaling keeps in-cost x out-cost, which is "
                 f"{product.min():.2g} to {product.max():.2g} for every unit at this random init:\nbalancing moves "
                 f"each along its line to the diagonal, so all land near √(in x out) ≈ {np.sqrt(np.median(product)):.2g}",
                 fontsize=10)
    ax.legend(fontsize=10)
    fig.tight_layout()
    path = Path(args.out) / "torch_resnet.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    print("wrote", path)


if __name__ == "__main__":
    main()
