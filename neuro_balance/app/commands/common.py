"""Argument types and checks shared by the subcommands."""
from __future__ import annotations

import argparse
from pathlib import Path

from ...balancing.costs import Cost, parse_cost

__all__ = ["cost_argument", "positive_float", "output_path"]


def cost_argument(text: str) -> Cost:
    """argparse type for ``--cost`` (L1, L2, Lp:P, Linf): bad values are usage errors (exit 2)."""
    try:
        return parse_cost(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def positive_float(text: str) -> float:
    """argparse type for a float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def output_path(parser: argparse.ArgumentParser, output: str | None, *inputs: str, suffixes=(".yaml", ".yml", ".nir")) -> Path | None:
    """Check an output path: right suffix and never one of the inputs (inputs stay untouched)."""
    if output is None:
        return None
    out = Path(output)
    if suffixes and out.suffix not in suffixes:
        parser.error(f"-o/--output: {output!r} must end in {' or '.join(suffixes)}")
    for name in inputs:
        if Path(name).resolve() == out.resolve() or Path(name).with_suffix(".npz").resolve() == out.with_suffix(".npz").resolve():
            parser.error(f"-o/--output: {output!r} would overwrite the input {name!r}")
    return out
