"""Model files (YAML + npz) and atomic output files.

A model is two files side by side::

    # digits_mlp.yaml
    format: neuro_balance.model/2
    name: digits_mlp
    weights: digits_mlp.npz          # relative to this file
    populations:
      - {name: in, size: 64, role: input, activation: linear}
      - {name: h1, size: 32, role: hidden, activation: relu, bias: true}
      - {name: out, size: 10, role: output, activation: linear, bias: true}
    projections:
      - {pre: in, post: h1}          # name defaults to "in->h1", kind to dense, delay to 0
      - {pre: h1, post: out}

and an npz archive with one array per projection (key: the projection's name) and one per bias
(key: ``"{population}.bias"``). Feature maps add ``shape: [C, H, W]``; projection kinds other than
dense add their own keys (``kernel``, ``stride``, ``padding``, ``groups``, ``pool``, ...), which
become `Projection.options`; ``ground: true`` holds a hidden population at scale 1. Files are untrusted:
they are read with `safe_yaml` and `safe_npz` (bounded, no aliases, archive members checked before they
are decompressed) and validated; every error names the file, the field and the value.

Format 2 (written since NIR support; format 1 files are still read) adds ``neuron: MODEL`` to a
population read from NIR (``IF``, ``LIF``, ``CubaLIF``, ``LI``, ``CubaLI``, ``I``), with one array
per parameter in the npz (key ``"{population}.neuron.{parameter}"``, e.g. ``lif1.neuron.tau``).

`load_model` and `save_model` pick the format by extension: ``.yaml``/``.yml`` as above,
``.nir`` a NIR graph (`neuro_balance.model.nir_read`, `neuro_balance.model.nir_write`).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import yaml

from ..errors import ModelError, UntrustedFileError
from .network import ROLES, Network, Population, Projection
from .neurons import NEURON_MODELS, Neuron
from .safe_npz import NpzArchive
from .safe_yaml import load_yaml, short

__all__ = ["FORMAT", "READ_FORMATS", "load_model", "save_model", "atomic_output", "atomic_write_text"]

FORMAT = "neuro_balance.model/2"
READ_FORMATS = ("neuro_balance.model/1", FORMAT)
_POPULATION_KEYS = {"name", "size", "role", "activation", "bias", "shape", "ground", "neuron"}
_PROJECTION_KEYS = {"pre", "post", "name", "kind", "delay"}
_MAX_NAME = 1000  # characters in a population, projection or weights file name


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    Nothing is left behind if the block raises, and a reader never sees a half-written file.

    Examples
    --------
    >>> with atomic_output("out.json") as tmp:            # doctest: +SKIP
    ...     tmp.write_text("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file + rename)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def _plain(value: Any) -> Any:
    """Numpy scalars and arrays to plain Python values for YAML."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def save_model(net: Network, path: str | os.PathLike, comment: str | None = None) -> Path:
    """Write ``net`` as ``path`` (YAML) and an npz beside it with the same stem, or as NIR (``.nir``), atomically.

    Parameters
    ----------
    net : Network
    path : path-like
        The YAML file; the weights go to ``path`` with suffix ``.npz``. A ``.nir`` path writes one
        NIR (HDF5) file instead (`neuro_balance.model.nir_write.to_nir`).
    comment : str, optional
        Lines written as ``#`` comments at the top of the YAML file (not written to NIR files).

    Returns
    -------
    Path
        The YAML (or NIR) path.
    """
    path = Path(path)
    if path.suffix == ".nir":
        from .nir_write import write_nir

        return write_nir(net, path)
    if path.suffix not in (".yaml", ".yml"):
        raise ModelError(f"{path}: model files end in .yaml, .yml or .nir")
    weights_path = path.with_suffix(".npz")
    arrays = {proj.name: proj.weight for proj in net.projections}
    populations = []
    for pop in net.populations.values():
        entry: dict[str, Any] = {"name": pop.name, "size": int(pop.size), "role": pop.role,
                                 "activation": pop.activation.spec}
        if pop.role != "input":
            entry["bias"] = pop.bias is not None
        if pop.shape is not None:
            entry["shape"] = list(pop.shape)
        if pop.ground:
            entry["ground"] = True
        if pop.bias is not None:
            arrays[f"{pop.name}.bias"] = pop.bias
        if pop.neuron is not None:
            entry["neuron"] = pop.neuron.model
            arrays.update({f"{pop.name}.neuron.{k}": v for k, v in pop.neuron.params.items()})
        populations.append(entry)
    projections = []
    for proj in net.projections:
        entry = {"pre": proj.pre, "post": proj.post}
        if proj.name != f"{proj.pre}->{proj.post}":
            entry["name"] = proj.name
        if proj.kind != "dense":
            entry["kind"] = proj.kind
        if proj.delay:
            entry["delay"] = int(proj.delay)
        entry.update(_plain(proj.options))
        projections.append(entry)
    document = {"format": FORMAT, "name": net.name, "weights": weights_path.name,
                "populations": populations, "projections": projections}
    header = "".join(f"# {line}\n" for line in comment.splitlines()) if comment else ""
    text = header + yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=110)
    # The YAML refers to the npz, so it is replaced last.
    with atomic_output(weights_path) as tmp_npz:
        with open(tmp_npz, "wb") as handle:
            np.savez(handle, **arrays)
    atomic_write_text(path, text)
    return path


def _require(mapping: dict, key: str, where: str, path: Path) -> Any:
    if key not in mapping:
        raise ModelError(f"{path}: {where}: missing field {short(key)}")
    return mapping[key]


def _neuron(entry: dict, pname: str, arrays: NpzArchive, used: set, where: str, weights_name: str) -> Neuron | None:
    """The `Neuron` of a format-2 population entry (``neuron: MODEL``), its arrays from the npz."""
    model = entry.get("neuron")
    if model is None:
        return None
    if not isinstance(model, str) or model not in NEURON_MODELS:
        raise ModelError(f"{where}: unknown neuron model {short(model)}; known: {', '.join(NEURON_MODELS)}")
    params = {}
    for key in NEURON_MODELS[model]:
        name = f"{pname}.neuron.{key}"
        if name not in arrays:
            raise ModelError(f"{where}: {weights_name} has no array {short(name)}")
        params[key] = arrays.read(name)
        used.add(name)
    try:
        return Neuron(model, params)
    except ModelError as err:
        raise ModelError(f"{where}: {err}") from None


def load_model(path: str | os.PathLike, *, allow_outside: bool = False) -> Network:
    """Read a model written by `save_model` (or by hand): YAML + npz, or a NIR file, validated.

    Model files are treated as untrusted: the YAML is read with `neuro_balance.model.safe_yaml`
    (no aliases, bounded nesting, UTF-8 only), the npz with `neuro_balance.model.safe_npz` (each
    member's name, npy header and size checked before it is decompressed; arrays no field refers
    to are refused by name, never read), and only regular files are opened (a FIFO is refused at
    once).

    Parameters
    ----------
    path : path-like
        The YAML file (format 1 or 2), or a ``.nir`` file (`neuro_balance.model.nir_read.from_nir`).
    allow_outside : bool
        Let the YAML's ``weights:`` name a file outside the YAML's folder (an absolute path, a
        ``..`` or a symbolic link leading out). Off by default, so a model file received from
        someone else cannot make the loader read other files.

    Returns
    -------
    Network

    Raises
    ------
    ModelError
        For anything wrong in either file; the message names the file, the field and the value.
    FileNotFoundError
        When the YAML or the weights file does not exist.
    """
    path = Path(path)
    if path.suffix == ".nir":
        from .nir_read import from_nir

        return from_nir(path)
    try:
        doc = load_yaml(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such model file") from None
    except OSError as err:
        raise ModelError(f"{path}: not a YAML model file ({err.strerror or type(err).__name__})") from None
    except UntrustedFileError as err:  # one line: the problem and where, not PyYAML's multi-line report
        raise ModelError(f"{path}: not valid YAML{err.at}: {err.problem}") from None
    if not isinstance(doc, dict):
        raise ModelError(f"{path}: the top level must be a mapping, got {type(doc).__name__}")
    fmt = doc.get("format")
    if fmt not in READ_FORMATS:
        raise ModelError(f"{path}: format: expected {' or '.join(map(repr, READ_FORMATS))}, got {short(fmt)}")
    unknown = set(doc) - {"format", "name", "weights", "populations", "projections"}
    if unknown:
        raise ModelError(f"{path}: unknown top-level field(s) {short(sorted(map(str, unknown)))}")
    weights_name = _require(doc, "weights", "top level", path)
    if not isinstance(weights_name, str) or not 0 < len(weights_name) <= _MAX_NAME:
        raise ModelError(f"{path}: weights: must be a file name, got {short(weights_name)}")
    weights_path = _weights_path(path, weights_name, allow_outside)
    try:
        archive = NpzArchive(weights_path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: weights: file {str(weights_path)!r} does not exist") from None
    except OSError as err:
        raise ModelError(f"{path}: weights: {str(weights_path)!r} cannot be read "
                         f"({err.strerror or type(err).__name__})") from None
    except UntrustedFileError as err:
        raise ModelError(f"{path}: weights: {str(weights_path)!r}: {err}") from None
    try:
        with archive:
            return _network(doc, fmt, path, archive, weights_name)
    except UntrustedFileError as err:
        raise ModelError(f"{path}: weights: {weights_name}: {err}") from None


def _weights_path(path: Path, weights_name: str, allow_outside: bool) -> Path:
    """The weights file named by ``weights:``, which must stay in the YAML's folder unless ``allow_outside``."""
    if "\0" in weights_name:
        raise ModelError(f"{path}: weights: a file name cannot hold a NUL character, got {short(weights_name)}")
    weights_path = path.parent / weights_name
    if allow_outside:
        return weights_path
    if Path(weights_name).is_absolute() or ".." in Path(weights_name).parts:
        raise ModelError(f"{path}: weights: must name a file in the model's folder (no absolute path, no '..'), "
                         f"got {short(weights_name)} "
                         "(load_model(..., allow_outside=True) reads files elsewhere)")
    folder, resolved = path.parent.resolve(), weights_path.resolve()
    if resolved != folder and folder not in resolved.parents:  # the folder itself: refused as not a file
        raise ModelError(f"{path}: weights: {short(weights_name)} leads outside the model's folder (a symbolic "
                         "link?); load_model(..., allow_outside=True) reads files elsewhere")
    return weights_path


def _network(doc: dict, fmt: str, path: Path, arrays: NpzArchive, weights_name: str) -> Network:
    """The `Network` of a parsed model document, its arrays read from ``arrays`` as fields refer to them."""
    name = doc.get("name", path.stem)
    used = set()

    pops_doc = _require(doc, "populations", "top level", path)
    if not isinstance(pops_doc, list) or not pops_doc:
        raise ModelError(f"{path}: populations: must be a non-empty list")
    populations = []
    for k, entry in enumerate(pops_doc):
        where = f"populations[{k}]"
        if not isinstance(entry, dict):
            raise ModelError(f"{path}: {where}: must be a mapping, got {short(entry)}")
        extra = set(entry) - _POPULATION_KEYS
        if fmt == READ_FORMATS[0] and "neuron" in entry:  # format 1 has no neuron models
            extra.add("neuron")
        if extra:
            raise ModelError(f"{path}: {where}: unknown field(s) {short(sorted(map(str, extra)))}")
        pname = _require(entry, "name", where, path)
        if not isinstance(pname, str) or not 0 < len(pname) <= _MAX_NAME:
            raise ModelError(f"{path}: {where}.name: must be a non-empty string of at most {_MAX_NAME} characters, "
                             f"got {short(pname)}")
        size = _require(entry, "size", where, path)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ModelError(f"{path}: {where}.size: must be a positive integer, got {short(size)}")
        role = _require(entry, "role", where, path)
        if not isinstance(role, str) or role not in ROLES:
            raise ModelError(f"{path}: {where}.role: must be one of {', '.join(ROLES)}, got {short(role)}")
        activation = entry.get("activation", "linear" if role != "hidden" else "relu")
        if not isinstance(activation, str):
            raise ModelError(f"{path}: {where}.activation: must be a string such as relu, got {short(activation)}")
        has_bias = entry.get("bias", False)
        if not isinstance(has_bias, bool):
            raise ModelError(f"{path}: {where}.bias: must be true or false, got {short(has_bias)}")
        bias = None
        if has_bias:
            key = f"{pname}.bias"
            if key not in arrays:
                raise ModelError(f"{path}: {where}.bias: {weights_name} has no array {short(key)}")
            bias = arrays.read(key)
            used.add(key)
        ground = entry.get("ground", False)
        if not isinstance(ground, bool):
            raise ModelError(f"{path}: {where}.ground: must be true or false, got {short(ground)}")
        shape = entry.get("shape")
        if shape is not None and (not isinstance(shape, list) or not all(
                isinstance(s, int) and not isinstance(s, bool) for s in shape)):
            raise ModelError(f"{path}: {where}.shape: must be a list of integers [C, H, W], got {short(shape)}")
        neuron = _neuron(entry, pname, arrays, used, f"{path}: {where}.neuron", weights_name)
        try:
            populations.append(Population(pname, size, role, activation, bias, tuple(shape) if shape else None,
                                          ground, neuron))
        except ModelError as err:
            raise ModelError(f"{path}: {where}.activation: {err}") from None

    projs_doc = doc.get("projections", [])
    if not isinstance(projs_doc, list):
        raise ModelError(f"{path}: projections: must be a list")
    names = {pop.name for pop in populations}
    projections = []
    for k, entry in enumerate(projs_doc):
        where = f"projections[{k}]"
        if not isinstance(entry, dict):
            raise ModelError(f"{path}: {where}: must be a mapping, got {short(entry)}")
        pre, post = _require(entry, "pre", where, path), _require(entry, "post", where, path)
        for end, value in (("pre", pre), ("post", post)):
            if not isinstance(value, str) or value not in names:
                raise ModelError(f"{path}: {where}.{end}: no population named {short(value)}")
        pname = entry.get("name", f"{pre}->{post}")
        delay = entry.get("delay", 0)
        kind = entry.get("kind", "dense")
        for field, value in (("name", pname), ("kind", kind)):
            if not isinstance(value, str) or len(value) > _MAX_NAME:
                raise ModelError(f"{path}: {where}.{field}: must be a string of at most {_MAX_NAME} characters, "
                                 f"got {short(value)}")
        if pname not in arrays:
            raise ModelError(f"{path}: {where} ({short(pname)}): {weights_name} has no array {short(pname)}")
        used.add(pname)
        options = {key: value for key, value in entry.items() if key not in _PROJECTION_KEYS}
        if kind == "dense" and options:
            raise ModelError(f"{path}: {where} ({short(pname)}): unknown field(s) {short(sorted(map(str, options)))} "
                             "for kind dense")
        projections.append(Projection(pre, post, arrays.read(pname), kind, delay, pname, options))
    unused = set(arrays.names) - used
    if unused:
        raise ModelError(f"{path}: weights: {weights_name} has arrays no field refers to: {short(sorted(unused))}")
    try:
        return Network(populations, projections, str(name))
    except ModelError as err:
        raise ModelError(f"{path}: {err}") from None
