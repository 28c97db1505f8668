"""Read untrusted YAML: UTF-8 only, size and nesting bounded, aliases refused; `short` and `reason` for messages."""
from __future__ import annotations

import os
import reprlib
from typing import Any

import yaml

from ..errors import UntrustedFileError
from .regular_file import read_regular

__all__ = ["load_yaml", "short", "reason", "MAX_YAML_BYTES", "MAX_DEPTH"]

MAX_YAML_BYTES = 16 * 2**20  # model files and profiles are a few kB
MAX_DEPTH = 64  # mappings and lists nested deeper than this are refused

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple = 3, 6, 4, 6
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 60, 60, 40


def short(value: Any) -> str:
    """``repr(value)`` cut to about 80 characters (lists, mappings and strings elided with ``...``).

    Examples
    --------
    >>> short(list(range(1000)))
    '[0, 1, 2, 3, 4, 5, ...]'
    """
    return " ".join(_REPR.repr(value).split())  # one line, also for a numpy array's repr


def reason(err: BaseException) -> str:
    """``Type: message`` of an exception on one line, at most 160 characters (for "cannot be read (...)")."""
    text = " ".join(f"{type(err).__name__}: {err}".split()) if str(err) else type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _refused(problem: str, mark: Any = None, line: int | None = None) -> UntrustedFileError:
    """The refusal of a YAML text, placed at a PyYAML mark (0-based) or a 1-based line."""
    if mark is not None:
        return UntrustedFileError(problem, f" at line {mark.line + 1}, column {mark.column + 1}")
    return UntrustedFileError(problem, f" at line {line}" if line is not None else "")


class _ScanBoundedLoader(yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, its scanner stopped at the flow-depth limit (used without libyaml)."""

    def fetch_flow_collection_start(self, TokenClass):
        # Each open '[' or '{' may start a key, and the scanner looks ahead over all of them (up to
        # 1024 characters, quadratically) before the first event: stop at the limit already.
        if self.flow_level >= MAX_DEPTH:
            raise _refused(f"nested deeper than {MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)


# libyaml's safe loader when it is installed (10 times faster; it stops at 1000 levels itself), else PyYAML's.
_LOADER = getattr(yaml, "CSafeLoader", None) or _ScanBoundedLoader
_OPEN, _CLOSE = (yaml.SequenceStartEvent, yaml.MappingStartEvent), (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _check_events(text: str) -> None:
    """Refuse aliases and nesting deeper than `MAX_DEPTH` from the parser's events, before anything is built."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise _refused(f"alias *{event.anchor} refused (aliases are not allowed in these files; write the "
                           "value out)", event.start_mark)
        if isinstance(event, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                raise _refused(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        elif isinstance(event, _CLOSE):
            depth -= 1


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise _refused(f"not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})", line=line) from None
    return text.removeprefix("\ufeff")


def load_yaml(path: str | os.PathLike, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """Parse the YAML file ``path`` with the safe loader, refusing what could exhaust time or memory.

    The text is parsed twice: once into events, refusing aliases and deep nesting, then into the
    document (PyYAML's composer recurses once per level, so the depth is checked first).

    Parameters
    ----------
    path : path-like
        Must be a regular file (`neuro_balance.model.regular_file.open_regular`).
    max_bytes : int
        Larger files are refused.

    Returns
    -------
    Any
        The document (``None`` for an empty file).

    Raises
    ------
    FileNotFoundError, OSError
        The file is missing, not a regular file, too large or unreadable.
    UntrustedFileError
        The text is not UTF-8, not valid YAML, uses an alias (``*name``; a few bytes of aliases can
        expand to gigabytes) or nests deeper than `MAX_DEPTH` levels; one line with the place.
    """
    text = _decode(read_regular(path, max_bytes))
    try:
        _check_events(text)
        return yaml.load(text, Loader=_LOADER)
    except UntrustedFileError:
        raise
    except yaml.YAMLError as err:
        problem = str(getattr(err, "problem", None) or err)
        if "maximum nesting depth" in problem:  # libyaml's own limit, met while scanning ahead
            problem = f"nested deeper than {MAX_DEPTH} levels"
        raise _refused(problem, getattr(err, "problem_mark", None)) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as err:  # e.g. a 5000-digit integer
        raise _refused(f"a value cannot be read ({reason(err)})") from None
