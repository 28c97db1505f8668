"""The ``neuro-balance`` command.

Every subcommand lives in its own module under `neuro_balance.app.commands` and exposes
``register(subparsers)``. Shared conventions: ``--help`` explains, exit code 2 for usage errors
(with a "did you mean" for a mistyped command, option or profile; options are never abbreviated),
1 for data errors (one line on stderr naming the file and field, never a traceback); after Ctrl-C or
SIGTERM, one line, nothing half-written left behind, and death by that signal (the shell's ``$?`` is 130
or 143); atomic outputs, and a quiet exit when the reader of the output goes away
(``neuro-balance profiles | head``).
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import os
import signal
import sys

import neuro_balance
from ..errors import GridError
from .clean_exit import (EXIT_CODES, Terminated, end_by_signal, finish_brian2, install_signal_handlers,
                         restore_signal_handlers)
from .commands.common import Parser

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = ("run", "balance", "inspect", "simulate", "quantize", "profiles", "demo")
TRACEBACK_ENV = "NEURO_BALANCE_TRACEBACK"  # set to 1 to see where an unexpected error came from


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = Parser(
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
    """Run the command line; returns the exit code (after SIGINT or SIGTERM, the process ends by that signal)."""
    install_signal_handlers()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        _check_command(parser, argv)
        args = parser.parse_args(argv)
        return _run(args)
    except (KeyboardInterrupt, Terminated) as stop:
        signum = signal.SIGINT if isinstance(stop, KeyboardInterrupt) else signal.SIGTERM
        finish_brian2()
        print(f"neuro-balance: {'interrupted' if signum == signal.SIGINT else 'terminated'}", file=sys.stderr)
        end_by_signal(signum)
        return EXIT_CODES[signum]  # only if the signal's default action is not to end the process
    finally:
        finish_brian2()
        restore_signal_handlers()


def _run(args: argparse.Namespace) -> int:
    """Run the chosen subcommand; every error becomes one line on stderr and exit code 1."""
    where = f"neuro-balance {args.command}"
    try:
        code = _command(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # the reader stopped reading (`| head`): send what is left in the buffer nowhere and stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError, GridError) as err:  # ModelError, ProfileError, files: the message names the file
        print(f"{where}: error: {err}", file=sys.stderr)
    except MemoryError:
        print(f"{where}: error: out of memory", file=sys.stderr)
    except Exception as err:  # noqa: BLE001 - a bug still ends in one line; the variable shows the traceback
        if os.environ.get(TRACEBACK_ENV):
            raise
        text = " ".join(str(err).split())
        print(f"{where}: internal error: {type(err).__name__}: {text} (please report it; {TRACEBACK_ENV}=1 shows "
              f"the traceback)", file=sys.stderr)
    return 1


def _command(args: argparse.Namespace) -> int:
    """The subcommand itself; if it stops on an exception, Brian2 goes quiet before the run's objects are freed."""
    try:
        return int(args.func(args) or 0)
    except BaseException:
        finish_brian2()
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
