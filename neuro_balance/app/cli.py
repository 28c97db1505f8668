"""The ``neuro-balance`` command.

Every subcommand lives in its own module under `neuro_balance.app.commands` and exposes
``register(subparsers)``. Shared conventions: ``--help`` explains, exit code 2 for usage errors
(with a "did you mean" for a mistyped command or profile), 1 for data errors (one line on stderr
naming the file and field, no traceback), atomic outputs, and a quiet exit when the reader of the
output goes away (``neuro-balance profiles | head``).
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys

import neuro_balance
from ..errors import ModelError, ProfileError

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = ("run", "balance", "inspect", "simulate", "quantize", "profiles", "demo")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="neuro-balance",
        description="Exact synaptic balancing of neural networks: balance, inspect, simulate neurons as "
                    "Brian2 agents, and emulate neuromorphic chips' fixed-point precision.",
        epilog="`neuro-balance COMMAND --help` explains a command. Start with `neuro-balance run --quick`.")
    parser.add_argument("--version", action="version", version=f"neuro-balance {neuro_balance.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"neuro_balance.app.commands.{name}").register(sub)
    return parser


def _check_command(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Bare ``neuro-balance`` lists the commands; an unknown one gets a suggestion (both exit 2)."""
    if not argv:
        parser.print_help(sys.stderr)
        sys.exit(2)
    word = argv[0]
    if word.startswith("-") or word in COMMANDS:
        return
    close = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    parser.error(f"unknown command {word!r}; {hint}commands: {', '.join(COMMANDS)}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    _check_command(parser, argv)
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except (ModelError, ProfileError, ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as err:
        print(f"neuro-balance {args.command}: error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # the reader stopped reading (`| head`): send what is left in the buffer nowhere and stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("neuro-balance: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
