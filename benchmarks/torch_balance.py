"""Time of balancing a small ResNet in place (`neuro_balance.torch.balance_`) as a multiple of one forward pass.

The model is `neuro_balance.torch.small_resnet` (ResNet-14 at width 16 by default: 3x3 stem, three stages
of two basic blocks with batch norm, identity and 1x1 shortcuts), random weights, on the CPU. Every
time is the best of ``--repeats`` runs in this process; the baseline is one forward pass of a batch of
``--batch`` 3x32x32 inputs under ``torch.no_grad()``. ``balance_`` is split into its parts: the trace
(torch.fx and shapes), the core engine on the float64 network, and writing the scales back.

Run: ``python benchmarks/torch_balance.py`` (needs the ``[torch]`` extra; ``--width``, ``--batch``,
``--repeats``, ``--threads``).
"""
from __future__ import annotations

import argparse
import copy

import torch

import neuro_balance as nb
import neuro_balance.torch as nbt
from timing import best_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady numbers on a busy machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = nbt.small_resnet(width=args.width).eval()
    x = torch.randn(args.batch, 3, 32, 32)
    n_params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        forward, _ = best_time(lambda: model(x), args.repeats)
    trace, binding = best_time(lambda: nbt.from_module(model, x[:1]), args.repeats)
    rows = [("forward pass (baseline)", forward), ("trace (torch.fx + shapes)", trace)]
    for cost in (nb.Lp(2), nb.Lp(1), nb.Linf()):
        engine, res = best_time(lambda: nb.balance(binding.network, cost), args.repeats)
        write, _ = best_time(lambda: nbt.apply_log_scales(copy.deepcopy(model), binding, res.log_scales), args.repeats)
        whole, _ = best_time(lambda: nbt.balance_(copy.deepcopy(model), cost, x[:1]), args.repeats)
        rows += [(f"{cost!r}: core engine ({res.method}, {res.iterations} it.)", engine),
                 (f"{cost!r}: write scales back (incl. a model copy)", write),
                 (f"{cost!r}: balance_ end to end (incl. a model copy)", whole)]
    copy_time, _ = best_time(lambda: copy.deepcopy(model), args.repeats)
    rows.append(("model copy (subtract from the rows that include one)", copy_time))
    print(f"small ResNet-14, width {args.width}: {n_params:,} parameters; batch {args.batch} x 3x32x32; "
          f"torch {torch.__version__}, {args.threads} thread(s); best of {args.repeats}")
    print(f"{'work':58s} {'ms':>9s} {'x forward':>10s}")
    for name, t in rows:
        print(f"{name:58s} {1e3 * t:9.2f} {t / forward:10.2f}")


if __name__ == "__main__":
    main()
