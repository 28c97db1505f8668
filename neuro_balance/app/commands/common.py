"""The argument parser, argument types and checks shared by the subcommands."""
from __future__ import annotations

import argparse
import difflib
import importlib.util
import math
import os
from pathlib import Path

from ...balancing.costs import Cost, parse_cost
from ...grid import SCHEDULERS
from ...model.safe_yaml import load_yaml
from ...resources import resource_dir

__all__ = ["Parser", "unrecognized", "COST_HELP", "MODEL_HELP", "INVARIANCE_HELP", "cost_argument", "model_argument",
           "positive_float", "positive_int", "profile_argument", "profile_list", "output_path",
           "check_output_spares_inputs", "add_scheduler_arguments", "scheduler_of"]

COST_SPELLINGS = "L1, L2, Lp:P or LP for any P > 0 (L3 is Lp:3, L0.5 is Lp:0.5), or Linf (the largest |w|)"
COST_HELP = f"{COST_SPELLINGS}; default L2"
MODEL_HELP = "model file (YAML or NIR), or the name of a bundled model such as digits_mlp"
MODEL_SUFFIXES = (".yaml", ".yml", ".nir")
INVARIANCE_HELP = ("how spiking units (NIR IF, LIF, CubaLIF) are balanced: exact (default) by the gauge, incoming "
                   "weights, bias and v_threshold, v_reset, v_leak x mu, so every spike is unchanged; rate by the rate "
                   "exchange of hidden IF units (threshold kept, outgoing weights / lam: rates x lam, rate-level "
                   "only; LIF and CubaLIF refused, a leak makes the rate a non-homogeneous function of the input); "
                   "no effect on other units")


class Parser(argparse.ArgumentParser):
    """An argument parser that never abbreviates options and suggests the closest one for a mistyped option."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self._subcommand_parser(parsed)
            parser.error(unrecognized(parser, extras))
        return parsed

    def _subcommand_parser(self, parsed) -> argparse.ArgumentParser:
        """The parser of the subcommand that was chosen (where the unrecognised arguments belong), else self."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action.choices.get(getattr(parsed, action.dest, None), self)
        return self


def unrecognized(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """argparse's "unrecognized arguments" message, with the closest option of ``parser`` for a mistyped one."""
    message = f"unrecognized arguments: {' '.join(extras)}"
    known = [opt for action in parser._actions for opt in action.option_strings]
    for word in extras:
        if word.startswith("-"):
            close = difflib.get_close_matches(word.split("=")[0], known, n=1, cutoff=0.6)
            if close:
                return f"{message}; did you mean {close[0]}?"
    return message


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def cost_argument(text: str) -> Cost:
    """argparse type for ``--cost`` (L1, L2, Lp:P, LP, Linf): anything else is a usage error (exit 2) listing them."""
    try:
        return parse_cost(text)
    except ValueError:
        pass
    key = text.strip()
    p = _number(key[3:] if key.lower().startswith("lp:") else key[1:] if key[:1] in "lL" else "")
    if p is not None and math.isinf(p):
        why = "for the cost of the largest |w| write Linf"
    elif p is not None:
        why = f"p must be finite and > 0, got {p:g}"
    elif key.lower().startswith("lp") and _number(key[2:]) is not None:
        why = f"did you mean Lp:{key[2:]}?"
    else:
        why = "not a cost"
    raise argparse.ArgumentTypeError(f"cost {text!r}: {why}{' ' if why.endswith('?') else '; '}use {COST_SPELLINGS}")


def model_argument(text: str) -> str:
    """argparse type for a model: a path (YAML or NIR), or a bundled model's name with a "did you mean"."""
    if Path(text).suffix in MODEL_SUFFIXES or Path(text).exists():
        return text
    folder = resource_dir("models")
    for suffix in MODEL_SUFFIXES:
        if (folder / f"{text}{suffix}").is_file():
            return str(folder / f"{text}{suffix}")
    known = sorted({p.stem for suffix in MODEL_SUFFIXES for p in folder.glob(f"*{suffix}")})
    close = difflib.get_close_matches(text, known, n=2)
    hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    raise argparse.ArgumentTypeError(f"unknown model {text!r} (no such file, and no bundled model of that name); "
                                     f"{hint}bundled: {', '.join(known)}")


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


def _written(out: Path) -> list[Path]:
    """The files `save_model` writes for ``out``: a NIR file, or a YAML file and the npz beside it."""
    return [out] if out.suffix == ".nir" else [out, out.with_suffix(".npz")]


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def output_path(parser: argparse.ArgumentParser, output: str | None, *inputs: str,
                suffixes=MODEL_SUFFIXES) -> Path | None:
    """Check an output path before any work: right suffix, not a folder, never one of the inputs.

    The input's weights archive, named inside its YAML, is checked once the model has been read
    (`check_output_spares_inputs`).
    """
    if output is None:
        return None
    out = Path(output)
    if suffixes and out.suffix not in suffixes:
        parser.error(f"-o/--output: {output!r} must end in {' or '.join(suffixes)}")
    for path in _written(out):
        if path.is_dir():
            parser.error(f"-o/--output: {str(path)!r} is a folder; give a file name")
    for name in inputs:
        read = [Path(name)] + ([Path(name).with_suffix(".npz")] if Path(name).suffix in (".yaml", ".yml") else [])
        if any(_same_file(path, source) for path in _written(out) for source in read):
            parser.error(f"-o/--output: {output!r} would overwrite the input {name!r}")
    return out


def files_read(model: str) -> list[Path]:
    """The files loading ``model`` reads: the model file and, for YAML, the weights archive it names."""
    path = Path(model)
    files = [path]
    if path.suffix in (".yaml", ".yml"):
        document = load_yaml(path)  # load_model has accepted it; read the same way (no aliases, bounded)
        if isinstance(document, dict) and isinstance(document.get("weights"), str):
            files.append(path.parent / document["weights"])
    return files


def check_output_spares_inputs(parser: argparse.ArgumentParser, out: Path | None, model: str) -> None:
    """After ``model`` is read: refuse an output that would overwrite any file it was read from (usage error)."""
    if out is None:
        return
    for source in files_read(model):
        for path in _written(out):
            if _same_file(path, source):
                parser.error(f"-o/--output: {str(out)!r} would overwrite {str(source)!r}, which the input "
                             f"{model!r} reads; give another name")


def add_scheduler_arguments(parser) -> None:
    """``--scheduler`` and ``--workers``: where a command's grid of independent runs goes (needs the [dask] extra)."""
    parser.add_argument("--scheduler", metavar="WHERE",
                        help="run the grid's cells on Dask: 'processes' or 'threads' (a local cluster) or a scheduler "
                             "address such as tcp://host:8786; needs pip install \"neuro-balance[dask]\"")
    parser.add_argument("--workers", type=positive_int, metavar="N",
                        help="size of the local Dask cluster (implies --scheduler processes)")


def scheduler_of(args) -> str | None:
    """The scheduler ``--scheduler`` / ``--workers`` ask for (None: serial, in this process)."""
    if args.scheduler is not None and args.scheduler not in SCHEDULERS and "://" not in args.scheduler:
        args.parser.error(f"--scheduler: expected {' or '.join(SCHEDULERS)} or an address such as tcp://host:8786, "
                          f"got {args.scheduler!r}")
    scheduler = args.scheduler if args.scheduler is not None else "processes" if args.workers is not None else None
    if scheduler is not None and importlib.util.find_spec("distributed") is None:
        option = "--scheduler" if args.scheduler is not None else "--workers"
        args.parser.error(f"{option} needs Dask: pip install \"neuro-balance[dask]\"")
    return scheduler
