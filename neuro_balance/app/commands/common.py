"""Argument types and checks shared by the subcommands."""
from __future__ import annotations

import argparse
import difflib
import importlib.util
from pathlib import Path

from ...balancing.costs import Cost, parse_cost
from ...grid import SCHEDULERS

__all__ = ["COST_HELP", "cost_argument", "positive_float", "positive_int", "profile_argument", "profile_list",
           "output_path", "add_scheduler_arguments", "scheduler_of"]

COST_HELP = ("L1, L2, Lp:P or LP for any P > 0 (L3 is Lp:3, L0.5 is Lp:0.5), or Linf (the largest |w|); "
             "default L2")


def cost_argument(text: str) -> Cost:
    """argparse type for ``--cost`` (L1, L2, Lp:P, LP, Linf): bad values are usage errors (exit 2)."""
    try:
        return parse_cost(text)
    except ValueError as err:
        if "unknown cost" in str(err):
            raise argparse.ArgumentTypeError(str(err)) from None
        raise argparse.ArgumentTypeError(f"{err}; use {COST_HELP.removesuffix('; default L2')}") from None


def positive_float(text: str) -> float:
    """argparse type for a float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type for an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def profile_argument(text: str) -> str:
    """argparse type for a hardware profile: a bundled name (with a "did you mean") or a YAML path."""
    from ...hardware.profile import list_profiles

    if Path(text).suffix in (".yaml", ".yml"):
        return text
    known = list_profiles()
    if text in known:
        return text
    close = sorted({k for k in known if k.startswith(text)} | set(difflib.get_close_matches(text, known, n=2)))[:3]
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    raise argparse.ArgumentTypeError(f"unknown profile {text!r}; {hint}bundled: {', '.join(known)} "
                                     f"(or the path of a profile .yaml)")


def profile_list(text: str) -> list[str]:
    """argparse type for a comma-separated list of profiles (each checked by `profile_argument`)."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected profile names separated by commas, got {text!r}")
    return [profile_argument(name) for name in names]


def output_path(parser: argparse.ArgumentParser, output: str | None, *inputs: str,
                suffixes=(".yaml", ".yml", ".nir")) -> Path | None:
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


def add_scheduler_arguments(parser) -> None:
    """``--scheduler`` and ``--workers``: where a command's grid of independent runs goes (needs the [dask] extra)."""
    parser.add_argument("--scheduler", metavar="WHERE",
                        help="run the grid's cells on Dask: 'processes' or 'threads' (a local cluster) or a scheduler "
                             "address such as tcp://host:8786; needs pip install \"neuro-balance[dask]\"")
    parser.add_argument("--workers", type=positive_int, metavar="N",
                        help="size of the local Dask cluster (implies --scheduler processes)")


def scheduler_of(args) -> str | None:
    """The scheduler ``--scheduler`` / ``--workers`` ask for (None: serial, in this process)."""
    if args.scheduler is None and args.workers is not None:
        return "processes"
    if args.scheduler is not None and args.scheduler not in SCHEDULERS and "://" not in args.scheduler:
        args.parser.error(f"--scheduler: expected {' or '.join(SCHEDULERS)} or an address such as tcp://host:8786, "
                          f"got {args.scheduler!r}")
    if args.scheduler is not None and importlib.util.find_spec("distributed") is None:
        args.parser.error("--scheduler needs Dask: pip install \"neuro-balance[dask]\"")
    return args.scheduler
