"""``neuro-balance demo``: list the teaching demos, or run one; a demo is a script in the project's ``demos/``.

The scripts in ``demos/`` are the one list: ``neuro-balance demo NAME ARGS...`` runs ``demos/NAME.py ARGS...``
(so a demo has one name and one set of options, whichever way it is started). The demos that run one of
the experiments of ``neuro_balance.learn.experiments`` are three lines each around `experiment_script`,
which gives them the same options (``--out``, ``--quick``, ``--seeds``, ``--epochs``, ``--mnist``,
``--no-figure``, where the experiment takes them).
"""
from __future__ import annotations

import argparse
import ast
import difflib
import importlib.util
import inspect
import runpy
import sys
from pathlib import Path
from typing import Any, Mapping

from ...learn.experiments import EXPERIMENTS, QUICK, run as run_experiment, save, summary_text
from ...resources import resource_dir
from ..clean_exit import tame_brian2
from .common import Parser

__all__ = ["register", "handler", "demos", "experiment_script"]

EXTRAS = {"torch": "torch", "dask": "dask", "distributed": "dask", "snntorch": "interop", "sinabs": "interop",
          "nirtorch": "interop"}  # module a demo imports -> the extra that installs it


def demos() -> dict[str, Path]:
    """Every demo of this installation: name (the script's file name without ``.py``) -> script."""
    folder = resource_dir("demos")
    return {p.stem: p for p in sorted(folder.glob("*.py"))} if folder.is_dir() else {}


def _imports(script: Path) -> set[str]:
    """The modules ``script`` imports by absolute name (``a.b`` for ``import a.b`` and ``from a.b import c``)."""
    names = set()
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _missing(modules: set[str]) -> list[str]:
    """The top-level modules among ``modules`` (outside this package) that are not installed."""
    tops = sorted({name.split(".")[0] for name in modules} - {"neuro_balance"})
    return [top for top in tops if importlib.util.find_spec(top) is None]


def _first_line(script: Path) -> str:
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def register(sub) -> None:
    parser = sub.add_parser(
        "demo", help="list the teaching demos, or run one (writes its figure and JSON)",
        description="Without NAME: list the demos (the scripts in the project's demos/ folder). With NAME: run "
                    "demos/NAME.py with the arguments that follow, exactly as `python demos/NAME.py ARGS` would; "
                    "`neuro-balance demo NAME --help` shows a demo's options. The experiment demos take --quick "
                    "(a check of the pipeline in seconds) and --out DIR.")
    parser.add_argument("name", nargs="?", metavar="NAME", help="a demo; omit to list them")
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the demo's own arguments")
    parser.set_defaults(func=handler, parser=parser)


def handler(args: argparse.Namespace) -> int:
    found = demos()
    if args.name is None:
        if not found:
            print(f"no demos found (looked in {resource_dir('demos')})")
            return 0
        width = max(map(len, found))
        print("demos (run one with: neuro-balance demo NAME [--help]):")
        for name, script in found.items():
            print(f"  {name:<{width}}  {_first_line(script)}")
        return 0
    if args.name not in found:
        close = difflib.get_close_matches(args.name.replace("-", "_"), list(found), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        args.parser.error(f"argument NAME: invalid choice: {args.name!r}{hint} (choose from {', '.join(found)})")
    script = found[args.name]
    imports = _imports(script)
    missing = _missing(imports)
    if missing:
        extra = EXTRAS.get(missing[0])
        how = f'pip install "neuro-balance[{extra}]"' if extra else f"pip install {missing[0]}"
        args.parser.error(f"demo {args.name} needs {', '.join(missing)}, which is not installed: {how}")
    if any(name == "brian2" or name.startswith(("brian2.", "neuro_balance.sim")) for name in imports):
        tame_brian2()
    saved = sys.argv
    sys.argv = [str(script), *args.args]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as stop:  # a demo's own argparse: --help (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        sys.argv = saved
    return 0


def experiment_script(name: str, description: str, presets: Mapping[str, Mapping[str, Any]] | None = None,
                      argv: list[str] | None = None, **defaults: Any) -> int:
    """The command line of a demo that runs the experiment ``name``: run it, print its summary, save it.

    Parameters
    ----------
    name : str
        A key of `EXPERIMENTS`.
    description : str
        The script's docstring (shown by ``--help``).
    presets : dict, optional
        Extra sizes, each a ``--NAME`` flag: preset name -> keyword arguments for the experiment.
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).
    **defaults
        Keyword arguments of the demo's default size.

    Returns
    -------
    int
        0 (usage errors exit with 2 through argparse).
    """
    params = inspect.signature(EXPERIMENTS[name].function).parameters
    parser = Parser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_output", help="output directory (default demo_output)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny settings: checks the pipeline in seconds")
    for preset in presets or {}:
        size.add_argument(f"--{preset}", action="store_true", help=f"the {preset} size (long)")
    if "seeds" in params:
        parser.add_argument("--seeds", type=int, help="number of seeds (0, 1, ...)")
    if "epochs" in params:
        parser.add_argument("--epochs", type=int, help="training epochs")
    if "mnist" in params:
        parser.add_argument("--mnist", help="a directory with the four MNIST or Fashion-MNIST IDX files "
                                            "(gzip or raw; never downloaded); default: scikit-learn's digits")
    parser.add_argument("--no-figure", action="store_true", help="write the JSON only")
    args = parser.parse_args(argv)
    kwargs = dict(QUICK[name]) if args.quick else dict(defaults)
    for preset, values in (presets or {}).items():
        if getattr(args, preset):
            kwargs = dict(values)
    if getattr(args, "seeds", None) is not None:
        if args.seeds < 1:
            parser.error(f"--seeds: must be >= 1, got {args.seeds}")
        kwargs["seeds"] = tuple(range(args.seeds))
    if getattr(args, "epochs", None) is not None:
        if args.epochs < 1:
            parser.error(f"--epochs: must be >= 1, got {args.epochs}")
        kwargs["epochs"] = args.epochs
    if getattr(args, "mnist", None) is not None:
        if not Path(args.mnist).is_dir():
            parser.error(f"--mnist: {args.mnist!r} is not a directory")
        kwargs["mnist"] = args.mnist
    result = run_experiment(name, **kwargs)
    paths = save(result, args.out, figure=not args.no_figure)
    print(summary_text(result))
    for path in paths.values():
        print(f"wrote {path}")
    return 0
