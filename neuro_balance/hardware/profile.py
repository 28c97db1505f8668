"""Hardware profiles: one YAML file per chip, schema version 1, validated on load.

A profile records a chip's number formats (weights, accumulator, states, threshold, bias), its
rounding and overflow rules and the sources every value comes from (its ``sources`` field). The
bundled profiles live in the project's top-level ``hardware_profiles/``; a user adds a chip by passing the
path of their own YAML file to `load_profile`.

The schema, its checks and the messages they raise are in `profile_schema`.
"""
from __future__ import annotations

import os

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProfileError, UntrustedFileError, UnverifiedProfileWarning
from ..model.safe_yaml import load_yaml
from ..resources import resource_dir
from .profile_schema import SCHEMA_VERSION, validate

__all__ = ["Profile", "load_profile", "list_profiles", "PROFILE_DIR", "SCHEMA_VERSION", "UnverifiedProfileWarning"]

PROFILE_DIR = resource_dir("hardware_profiles")


@dataclass
class Profile:
    """A validated hardware profile.

    Attributes
    ----------
    name, kind, family : str
    sources : list of str
    data : dict
        The whole profile with ``{value: X, unverified: true}`` leaves replaced by ``X``.
    unverified : list of str
        Dotted names of fields flagged ``unverified: true``.
    verified : dict of str
        Dotted names of fields written ``{value: X, verified: "<tool> <version>"}``, with that tool.
    path : pathlib.Path or None
        The file it was read from.
    """

    name: str
    kind: str
    family: str
    sources: list[str]
    data: dict[str, Any]
    unverified: list[str] = field(default_factory=list)
    verified: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    def get(self, dotted: str, default: Any = None) -> Any:
        """The value at a dotted field name (``"state.v.bits"``), or ``default``."""
        node: Any = self.data
        for key in dotted.split("."):
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return default if node is None else node

    def is_unverified(self, dotted: str) -> bool:
        """True when ``dotted`` or a section containing it is flagged unverified."""
        return any(dotted == u or dotted.startswith(u + ".") for u in self.unverified)

    @property
    def verified_against(self) -> list[str]:
        """The tools (with versions) that confirmed some of this profile's values, sorted."""
        return sorted(set(self.verified.values()))

    def __repr__(self) -> str:
        flagged = f", {len(self.unverified)} unverified" if self.unverified else ""
        return f"Profile({self.name!r}, kind={self.kind!r}{flagged})"


def _parse(data: Any, where: str) -> Profile:
    clean, unverified = validate(data, where)
    return Profile(name=clean["name"], kind=clean["kind"], family=clean.get("family", clean["name"]),
                   sources=list(clean["sources"]), data=clean, unverified=unverified, verified=_verified(data))


def _verified(node: Any, dotted: str = "") -> dict[str, str]:
    """Dotted field -> tool of every ``verified: "<tool> <version>"`` in a validated profile's raw data."""
    found: dict[str, str] = {}
    if isinstance(node, dict):
        if isinstance(node.get("verified"), str):
            found[dotted] = node["verified"]
        for key, value in node.items():
            if key in ("verified", "unverified", "note"):
                continue
            found.update(_verified(value, dotted if key == "value" else f"{dotted}.{key}" if dotted else str(key)))
    return found


def _one_line(message: str, value_limit: int = 200, limit: int = 2000) -> str:
    """``message`` on one line, its quoted value (after the last ``, got ``) and then the whole cut short."""
    message = " ".join(message.split())
    head, sep, value = message.rpartition(", got ")
    if sep and len(value) > value_limit:
        message = f"{head}{sep}{value[:value_limit - 3]}..."
    return message if len(message) <= limit else f"{message[:limit // 2]} ... {message[-limit // 2:]}"


def list_profiles() -> list[str]:
    """Names of the bundled profiles, sorted.

    Examples
    --------
    >>> "loihi1" in list_profiles()
    True
    """
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | Path | Profile, *, warn: bool = True) -> Profile:
    """Load and validate a bundled profile by name, or a user profile from a YAML path.

    Parameters
    ----------
    name_or_path : str, pathlib.Path or Profile
        A bundled name (see `list_profiles`) or the path of a ``.yaml`` file. A `Profile` is
        returned unchanged.
    warn : bool
        Emit an `UnverifiedProfileWarning` when fields are flagged ``unverified: true``.

    Returns
    -------
    Profile

    Raises
    ------
    ProfileError
        Unknown name, unreadable file, invalid YAML or a field that breaks the schema; the message
        names the file, the field and the value.

    Examples
    --------
    >>> load_profile("loihi1").get("state.u.overflow")
    'wrap'
    """
    if isinstance(name_or_path, Profile):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    bundled = PROFILE_DIR / f"{text}.yaml"
    bare_name = not text.endswith((".yaml", ".yml")) and "/" not in text and os.sep not in text
    if bare_name and (bundled.exists() or not path.exists()):   # a bundled name wins over a folder of the cwd
        path = bundled
        if not path.exists():
            raise ProfileError(f"{text}: field 'name': no bundled profile called {text!r} "
                               f"(known: {', '.join(list_profiles())}), got {text!r}")
    try:  # untrusted: UTF-8 only, no aliases, bounded size and nesting, regular files only
        data = load_yaml(path)
    except OSError as err:
        raise ProfileError(f"{path}: field '(file)': cannot be read ({err.strerror or type(err).__name__}), "
                           f"got {str(path)!r}") from None
    except UntrustedFileError as err:
        raise ProfileError(f"{path}: field '(yaml)': invalid YAML{err.at}: {err.problem}") from None
    try:
        profile = _parse(data, str(path))
    except ProfileError as err:  # the message quotes the offending value: keep it one short line
        raise ProfileError(_one_line(str(err))) from None
    profile.path = path
    if warn and profile.unverified:
        warnings.warn(f"{path}: profile {profile.name!r} uses unverified values: {', '.join(profile.unverified)}",
                      UnverifiedProfileWarning, stacklevel=2)
    return profile
