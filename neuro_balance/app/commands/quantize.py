"""``neuro-balance quantize``: map a model onto a chip profile and report what the precision does."""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from ...errors import ModelError, NumericalError
from ...hardware.chip_balance import BALANCE_CHOICES, balance_for_chip
from ...hardware.emulate import quantize
from ...hardware.fixed_point import ROUNDING_MODES
from ...hardware.profile import load_profile
from ...hardware.spec import GRANULARITIES, METHODS
from ...model.files import atomic_write_text, load_model
from .common import (COST_HELP, MODEL_HELP, add_scheduler_arguments, cost_argument, model_argument, positive_int,
                     profile_argument, scheduler_of)


def register(sub) -> None:
    parser = sub.add_parser(
        "quantize", help="emulate a model on a chip profile (integer weights, saturation, accuracy)",
        description="Map MODEL onto the chip described by --profile the way the chip's users do, run the integer "
                    "emulation, and print per-projection integer weights and per-population saturation counts. "
                    "With --data, also the float and quantised accuracy and the output error. --balance first "
                    "balances the model (L-infinity range equalisation, the Lp balanced state of --cost, "
                    "power-of-two factors, or auto: the one closest to the float outputs on the calibration "
                    "data); the float function is "
                    "unchanged, only the quantisation sees the difference.")
    parser.add_argument("model", type=model_argument, help=MODEL_HELP)
    parser.add_argument("--profile", required=True, type=profile_argument,
                        help="profile name (see `neuro-balance profiles`) or YAML path")
    parser.add_argument("--weight-bits", type=positive_int,
                        help="override the weight width (one the chip offers: `neuro-balance profiles NAME`)")
    parser.add_argument("--activation-bits", type=positive_int,
                        help="override the activity width / rate-code window bits")
    parser.add_argument("--granularity", choices=GRANULARITIES, help="which weights share a scale")
    parser.add_argument("--method", choices=METHODS, help="weight scale from max, percentile or worst-case input")
    parser.add_argument("--rounding", choices=ROUNDING_MODES, help="weight and bias rounding")
    parser.add_argument("--balance", choices=BALANCE_CHOICES + ("continuous",), default="none",
                        help="balance before quantising: none (default), linf, lp (= continuous), pow2 or auto")
    parser.add_argument("--cost", type=cost_argument, default="L2", help=f"cost for --balance lp: {COST_HELP}")
    parser.add_argument("--data", help="'digits' (scikit-learn digits: train split calibrates, test split scores) "
                                       "or an .npz with X (and y) used for both")
    parser.add_argument("--seed", type=int, default=0, help="seed of stochastic rounding and analog noise")
    parser.add_argument("--json", help="also write the report as JSON here")
    parser.add_argument("--sweep", type=width_list, metavar="BITS",
                        help="instead of one mapping, a grid: accuracy of every balancing variant at each of these "
                             "weight widths (comma-separated, 'native' for the chip's own) over --seeds seeds; "
                             "needs --data with labels")
    parser.add_argument("--seeds", type=positive_int, default=1, help="seeds of a --sweep (0 .. N-1; default 1)")
    add_scheduler_arguments(parser)
    parser.set_defaults(func=run, parser=parser)


def width_list(text: str) -> list[int | None]:
    """argparse type for ``--sweep``: ``native,2,4,8`` -> ``[None, 2, 4, 8]``."""
    try:
        widths = [None if w.strip() == "native" else int(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths such as native,2,4,8, got {text!r}") from None
    if any(w is not None and w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"widths must be at least 1, got {text!r}")
    return widths


def _sweep(args: argparse.Namespace, net, X_cal, X, y, overrides: dict) -> int:
    """``--sweep``: `hardware.evaluate` over widths x seeds x variants, serially or on Dask."""
    from ...hardware.evaluate import evaluate

    if X is None or y is None:
        raise ModelError(f"{args.model}: --sweep scores accuracy; give --data with labels (digits or an npz with X, y)")
    overrides.pop("weight_bits", None)
    ev = evaluate(net, X, y, calibration=X_cal, profiles=[args.profile], bits=args.sweep, seeds=range(args.seeds),
                  cost=args.cost, scheduler=scheduler_of(args), workers=args.workers, **overrides)
    print(ev.table())
    if args.json:
        atomic_write_text(args.json, json.dumps(ev.to_dict(), indent=1))
        print(f"wrote {args.json}")
    return 0


def _data(spec: str | None, n_in: int):
    if spec is None:
        return None, None, None
    if spec != "digits" and not Path(spec).is_file():
        raise ModelError(f"--data {spec}: no such file (give 'digits' or an .npz file with arrays X and y)")
    if spec == "digits":
        from ...learn.datasets import digits

        data = digits()
        X_cal, X, y = data.X_train, data.X_test, data.y_test
    else:  # untrusted: members checked before they are decompressed, X finite, y whole labels
        from ...learn.datasets import labelled_npz

        X, y = labelled_npz(spec, n_in)
        X_cal = X
    if X.ndim != 2 or X.shape[1] != n_in:
        raise ModelError(f"{spec}: field 'X': expected shape (n, {n_in}) for this model, got {X.shape}")
    return X_cal, X, y


def _check_width(args: argparse.Namespace) -> None:
    """A --weight-bits the chip does not offer is a usage error that names the chip's widths."""
    if args.weight_bits is None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        profile = load_profile(args.profile)
    allowed = profile.get("weights.bits_allowed")
    if allowed and args.weight_bits not in allowed:
        args.parser.error(f"--weight-bits: {profile.name} offers {', '.join(map(str, allowed))} bits, "
                          f"got {args.weight_bits}")


def run(args: argparse.Namespace) -> int:
    _check_width(args)
    scheduler_of(args)  # a missing Dask is a usage error before any work
    net = load_model(args.model)
    X_cal, X, y = _data(args.data, net.input.n_features)
    overrides = {k: v for k, v in (("weight_bits", args.weight_bits), ("activation_bits", args.activation_bits),
                                   ("granularity", args.granularity), ("method", args.method),
                                   ("weight_rounding", args.rounding)) if v is not None}
    if args.sweep is not None:
        return _sweep(args, net, X_cal, X, y, overrides)
    chosen = None
    if args.balance != "none":
        if args.balance == "auto" and X_cal is None:
            raise ModelError(f"{args.model}: --balance auto chooses on calibration data; give --data")
        chosen = balance_for_chip(net, args.profile, X_cal, "lp" if args.balance == "continuous" else args.balance,
                                  cost=args.cost, seed=args.seed, **overrides)
        net = chosen.network
        print(f"balance: {chosen!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = quantize(net, args.profile, X_cal, seed=args.seed, **overrides)
    for w in caught:
        print(f"warning: {w.message}")
    print(f"{args.model} on {q.spec.name}: {q!r}")
    report = {"model": args.model, "profile": q.spec.name, "balance": args.balance, "overrides": overrides,
              "balance_choice": chosen.choice if chosen else "none",
              "calibration_error": chosen.calibration_error if chosen else {},
              "projections": {}, "populations": {}}
    print(f"{'projection':<16}{'shape':<12}{'levels used':>12}{'max |q|':>9}{'clipped':>9}")
    for proj in net.projections:
        if q.spec.ideal:
            break
        m = q.integer_weights[proj.name]
        clipped = q.stats["weights_clipped"][proj.name]
        print(f"{proj.name:<16}{str(m.shape):<12}{len(np.unique(m)):>12}{int(np.abs(m).max()):>9}{clipped:>9}")
        report["projections"][proj.name] = {"levels": int(len(np.unique(m))), "max_abs": int(np.abs(m).max()),
                                            "clipped": int(clipped)}
    if X is not None:
        run_ = q.run(X)
        out = run_.output
        ref = net.forward(X)
        if not np.isfinite(ref).all():
            raise NumericalError(f"{args.model}: overflow: the float model's own output on --data is not finite, "
                                 "so no output error or accuracy can be measured against it")
        with np.errstate(over="ignore"):
            err = float(np.sqrt(np.mean((out - ref) ** 2)) / (np.sqrt(np.mean(ref ** 2)) or 1.0))
        if not np.isfinite(err):
            raise NumericalError(f"{args.model} on {q.spec.name}: overflow: the output error is not finite (outputs "
                                 f"up to {np.max(np.abs(out)):.3g}): the chip's arithmetic is degenerate for this model")
        report["output_error"] = err
        print(f"relative output error {err:.4g}")
        if y is not None:
            acc_f, acc_q = float(np.mean(ref.argmax(1) == y)), float(np.mean(out.argmax(1) == y))
            report.update(float_accuracy=acc_f, quantized_accuracy=acc_q)
            print(f"accuracy: float {acc_f:.4f}, quantised {acc_q:.4f}")
        print(f"{'population':<12}{'input sat':>10}{'acc overflow':>14}{'state overflow':>16}{'activity sat':>14}")
        fs = run_.counters
        for name in net.populations:
            row = {k: int(fs.get(k, {}).get(name, 0)) for k in
                   ("input_saturated", "accumulator_overflow", "state_overflow", "activation_saturated")}
            report["populations"][name] = row
            print(f"{name:<12}{row['input_saturated']:>10}{row['accumulator_overflow']:>14}"
                  f"{row['state_overflow']:>16}{row['activation_saturated']:>14}")
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return 0
