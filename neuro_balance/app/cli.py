"""The ``neuro-balance`` command.

Every subcommand lives in its own module under `neuro_balance.app.commands` and exposes
``register(subparsers)``. Shared conventions: ``--help`` explains, exit code 2 for usage errors,
1 for data errors (one line on stderr naming the file and field, no traceback), atomic outputs.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import ModelError, ProfileError

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = ("run", "balance", "inspect", "simulate", "quantize", "profiles", "demo")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="neuro-balance",
        description="Exact synaptic balancing of neural networks: balance, inspect, simulate neurons as "
                    "Brian2 agents, and emulate neuromorphic chips' fixed-point precision.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"neuro_balance.app.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ModelError, ProfileError, ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as err:
        print(f"neuro-balance {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("neuro-balance: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
