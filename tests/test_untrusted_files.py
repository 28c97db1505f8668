"""Untrusted files are refused in one clear line, quickly, in bounded memory, and nothing is written.

A fixed corpus (`CORPUS`: one hostile file per case, built in a temporary folder) covers every class of
issue 24's untrusted files -- YAML aliases and nesting, non-UTF-8 text and wrong types, declared sizes,
npz archive members, HDF5 dataset shapes and node attributes, non-regular files, ``weights:`` paths
outside the model's folder, hardware profile values, ``quantize --data`` archives and ``simulate
--input`` files. Each case asserts the error class (`ModelError` or `ProfileError`), one line naming the
file and the field, node or member, a bounded time and traced peak memory, and a folder left exactly as
it was. Hypothesis then varies the same classes (alias chains, nesting depths, npy headers, member
names, HDF5 shapes, profile values); a few cases run through the command line in a subprocess; and a
reader stuck inside the HDF5 library is stopped.
"""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

import neuro_balance as nb
from neuro_balance.app.commands.simulate import _input as simulate_input
from neuro_balance.errors import ModelError, ProfileError
from neuro_balance.hardware.profile import PROFILE_DIR, load_profile
from neuro_balance.learn.datasets import labelled_npz

h5py = pytest.importorskip("h5py")
pytest.importorskip("nir")

MAX_SECONDS = 5.0  # each refusal; they take milliseconds on an idle machine
MAX_PEAK = 64 * 2**20  # traced bytes: the bombs below would need 0.8 to 4 GB
# Each example writes files and loads them under tracemalloc: half the profile's count (20 by default, 125 in dev).
FUZZ = settings(max_examples=max(10, settings.default.max_examples // 2), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------- helpers
def _snapshot(folder: Path) -> dict:
    """Every entry under ``folder`` with its type, size and modification time (FIFOs are not opened)."""
    return {str(p.relative_to(folder)): (p.is_symlink(), p.lstat().st_mode, p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def refused(call, folder: Path, error: type, *needles: str) -> str:
    """Run ``call``; it must raise ``error`` in one line holding every needle, fast, small, writing nothing."""
    before = _snapshot(folder)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(error) as info:
            call()
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "\n" not in message and len(message) < 1000, message
    for needle in needles:
        assert needle in message, (needle, message)
    assert elapsed < MAX_SECONDS, (elapsed, message)
    assert peak < MAX_PEAK, (peak, message)
    assert _snapshot(folder) == before, message
    return message


def _model(folder: Path, net=None, name: str = "net.yaml") -> Path:
    return nb.save_model(net if net is not None else nb.mlp([4, 5, 3], seed=0), folder / name)


def _edit_yaml(path: Path, edit) -> Path:
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _npy_header(shape, descr: str = "<f8", fortran: bool = False) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": fortran, "shape": tuple(shape)})
    return out.getvalue()


def _raw_zip(path: Path, members: list[tuple[str, bytes, int, int, int, int]]) -> None:
    """A zip written by hand: (name, stored bytes, method, crc, declared size, flags) per member.

    Lets a member declare sizes and a CRC its bytes do not have, as a hostile archive can.
    """
    body, directory = bytearray(), bytearray()
    for name, data, method, crc, size, flags in members:
        raw = name.encode()
        offset = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc, len(data), size, len(raw), 0)
        body += raw + data
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, 0, 0x21, crc, len(data),
                                 size, len(raw), 0, 0, 0, 0, 0, offset) + raw
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), len(body), 0)
    path.write_bytes(bytes(body + directory + end))


def _deflated_zeros(header: bytes, mib: int) -> bytes:
    """A raw deflate stream of ``header`` and ``mib`` MiB of zeros, built from one repeated 1-MiB block."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = comp.compress(header) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(bytes(2**20)) + comp.flush(zlib.Z_FULL_FLUSH)  # byte-aligned, so it can repeat
    return head + block * mib + b"\x03\x00"  # an empty final block ends the stream


def _fifo(path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    os.mkfifo(path)
    return path


def _nir(folder: Path, net=None, name: str = "net.nir") -> Path:
    return nb.save_model(net if net is not None else nb.mlp([4, 5, 3], seed=0), folder / name)


def _conv():
    return nb.conv_net((2, 6, 6), [{"channels": 2, "kernel": 3, "padding": 1}], dense=[4], n_out=2, seed=0)


def _replace_dataset(path: Path, name: str, **create) -> Path:
    with h5py.File(path, "a") as f:
        del f[name]
        f.create_dataset(name, **create)
    return path


def _profile(folder: Path, text: str | bytes, name: str = "chip.yaml") -> Path:
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


LOIHI = (PROFILE_DIR / "loihi1.yaml").read_text()
BOMB = "".join(f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 9)}]\n" for k in range(1, 10))  # 9**9 leaves
DEEP_FLOW = "[" * 5000 + "]" * 5000
DEEP_BLOCK = "".join("  " * i + "k:\n" for i in range(3000)) + "  " * 3000 + "v\n"


# ---------------------------------------------------------------------------------------- the corpus
# Each case builds its hostile file(s) in ``d`` and returns (call, error class, needles the message must hold).
def c_yaml_alias_bomb(d):
    path = _model(d)
    path.write_text(path.read_text() + "l0: &l0 [x]\n" + BOMB)
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "alias *l0")


def c_yaml_one_alias(d):
    path = _model(d)
    path.write_text(path.read_text().replace("name: mlp", "name: &n mlp\nx: *n"))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "alias *n", "line 3")


def c_yaml_deep_flow(d):
    path = _model(d)
    path.write_text(path.read_text().replace("name: mlp", f"name: {DEEP_FLOW}"))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "nested deeper than 64")


def c_yaml_deep_block(d):
    path = _model(d)
    path.write_text(path.read_text() + "x:\n" + "".join("  " + line + "\n" for line in DEEP_BLOCK.splitlines()))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "nested deeper than 64")


def c_yaml_latin1(d):
    path = _model(d)
    path.write_bytes(path.read_bytes().replace(b"name: mlp", b"name: caf\xe9"))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "not UTF-8", "line 2")


def c_yaml_neuron_list(d):
    path = _edit_yaml(_model(d), lambda doc: doc.update(format="neuro_balance.model/2") or
                      doc["populations"][1].update(neuron=["IF"]))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "populations[1].neuron", "['IF']")


def c_yaml_activation_mapping(d):
    path = _edit_yaml(_model(d), lambda doc: doc["populations"][1].update(activation={"relu": 1}))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "populations[1].activation")


def c_yaml_size_list(d):
    path = _edit_yaml(_model(d), lambda doc: doc["populations"][1].update(size=[5]))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "populations[1].size", "[5]")


def c_yaml_huge_integer(d):
    path = _model(d)
    path.write_text(path.read_text().replace("size: 5", "size: " + "9" * 5000))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "cannot be read")


def c_yaml_huge_value_is_cut(d):
    path = _edit_yaml(_model(d), lambda doc: doc["populations"][1].update(role="x" * 20_000))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "populations[1].role", "...")


def c_yaml_too_large(d):
    path = _model(d)
    path.write_text(path.read_text() + "#" * (17 * 2**20) + "\n")
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "larger than")


def c_size_1e8(d):
    path = _edit_yaml(_model(d), lambda doc: doc["populations"][1].update(size=10**8))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "populations['h1'].bias", "100000000")


def c_size_1e9_input(d):
    path = _edit_yaml(_model(d), lambda doc: doc["populations"][0].update(size=10**9))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "projections[0]", "1000000000")


def c_npy_declares_1e8(d):
    path = _model(d)
    arrays = dict(np.load(path.with_suffix(".npz")))
    arrays.pop("h1.bias")
    np.savez(path.with_suffix(".npz"), **arrays)
    with zipfile.ZipFile(path.with_suffix(".npz"), "a") as z:
        z.writestr("h1.bias.npy", _npy_header((10**8,)) + bytes(40))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "array 'h1.bias'", "[100000000]")


def c_npy_declares_1e9_fortran(d):
    path = _model(d)
    arrays = dict(np.load(path.with_suffix(".npz")))
    arrays.pop("in->h1")
    np.savez(path.with_suffix(".npz"), **arrays)
    with zipfile.ZipFile(path.with_suffix(".npz"), "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("in->h1.npy", _npy_header((5, 2 * 10**8), fortran=True) + bytes(160))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "array 'in->h1'", "[5, 200000000]")


def c_member_not_npy(d):
    path = _model(d)
    with zipfile.ZipFile(path.with_suffix(".npz"), "a") as z:
        z.writestr("notes.txt", "hello")
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "member 'notes.txt'", "not an .npy")


def c_member_directory(d):
    path = _model(d)
    with zipfile.ZipFile(path.with_suffix(".npz"), "a") as z:
        z.writestr("sub/", b"")
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "member 'sub/'")


def _with_stray(path: Path, mib: int) -> None:
    """Rewrite the model's npz with an extra deflated member ``stray.npy`` of ``mib`` MiB of zeros, CRC 0.

    The CRC is not computed (for 4000 MiB that would take seconds); a loader that decompressed the
    member would fail the memory bound, or the CRC check, before it could name it as unreferenced.
    """
    npz = path.with_suffix(".npz")
    with zipfile.ZipFile(npz) as z:
        members = [(i.filename, z.read(i), 0, i.CRC, i.file_size, 0) for i in z.infolist()]
    header = _npy_header(((mib * 2**20 - 128) // 8,))
    assert len(header) == 128
    members.append(("stray.npy", _deflated_zeros(header, mib), 8, 0, mib * 2**20, 0))
    _raw_zip(npz, members)


def c_member_unreferenced_4gb(d):
    """4000 MiB of zeros in 4 MB: a zip bomb, refused from the directory entry alone."""
    path = _model(d)
    _with_stray(path, 4000)
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "member 'stray.npy'", "declares 4194304000 bytes")


def c_member_unreferenced_never_read(d):
    """12 MiB of zeros with a wrong CRC in a member no field refers to: named, never decompressed."""
    path = _model(d)
    _with_stray(path, 12)
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "no field refers to", "['stray']")


def c_member_lying_size(d):
    path = _model(d)
    header = _npy_header((5,))
    data = zlib.compress(header + bytes(40))[2:-4]
    members = [("h1.bias.npy", data, 8, 0, 4 * 10**9, 0)]
    _raw_zip(path.with_suffix(".npz"), members)
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "member 'h1.bias.npy'", "4000000000")


def c_member_encrypted(d):
    path = _model(d)
    with zipfile.ZipFile(path.with_suffix(".npz")) as z:
        members = [(i.filename, z.read(i), 0, i.CRC, i.file_size, 1) for i in z.infolist()]
    _raw_zip(path.with_suffix(".npz"), members)
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "encrypted")


def c_member_pickle(d):
    path = _model(d)
    arrays = dict(np.load(path.with_suffix(".npz")))
    arrays["h1.bias"] = np.array([{"a": 1}] * 5, dtype=object)
    np.savez(path.with_suffix(".npz"), **arrays)
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "array 'h1.bias'", "not numbers")


def c_member_bad_crc(d):
    path = _model(d)
    with zipfile.ZipFile(path.with_suffix(".npz")) as z:
        members = [(i.filename, z.read(i), 0, i.CRC ^ 1, i.file_size, 0) for i in z.infolist()]
    _raw_zip(path.with_suffix(".npz"), members)
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "cannot be read", "CRC")


def c_npz_truncated(d):
    path = _model(d)
    npz = path.with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[:300])
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "net.npz", "not a readable npz")


def c_weights_fifo(d):
    path = _model(d)
    path.with_suffix(".npz").unlink()
    _fifo(path.with_suffix(".npz"))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "weights", "FIFO")


def c_weights_directory(d):
    path = _model(d)
    path.with_suffix(".npz").unlink()
    path.with_suffix(".npz").mkdir()
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "weights", "directory")


def c_yaml_fifo(d):
    path = _fifo(d / "net.yaml")
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "FIFO")


def c_weights_parent(d):
    (d / "inner").mkdir()
    _model(d, name="outside.yaml")
    path = _edit_yaml(_model(d / "inner"), lambda doc: doc.update(weights="../outside.npz"))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "weights", "model's folder", "allow_outside")


def c_weights_absolute(d):
    other = _model(d, name="outside.yaml")
    (d / "inner").mkdir()
    path = _edit_yaml(_model(d / "inner"), lambda doc: doc.update(weights=str(other.with_suffix(".npz"))))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "weights", "model's folder")


def c_weights_symlink_out(d):
    other = _model(d, name="outside.yaml")
    (d / "inner").mkdir()
    path = _model(d / "inner")
    path.with_suffix(".npz").unlink()
    path.with_suffix(".npz").symlink_to(other.with_suffix(".npz"))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "weights", "outside the model's folder")


def c_weights_nul(d):
    path = _edit_yaml(_model(d), lambda doc: doc.update(weights="net\0.npz"))
    return lambda: nb.load_model(path), ModelError, ("net.yaml", "weights", "NUL")


def c_nir_fill_value(d):
    """A chunked dataset with a fill value: 3.2 GB declared in a file of a few kB."""
    path = _nir(d)
    _replace_dataset(path, "node/nodes/in->h1/weight", shape=(20000, 20000), dtype="f8", chunks=(100, 100),
                     fillvalue=1.0)
    return lambda: nb.load_model(path), ModelError, ("net.nir", "node/nodes/in->h1/weight", "fill value")


def c_nir_gzip_bomb(d):
    path = _nir(d)
    _replace_dataset(path, "node/nodes/in->h1/weight", data=np.zeros((5, 2**19)), chunks=(1, 2**16),
                     compression="gzip", compression_opts=9)  # 21 MB of zeros in ~20 kB
    return lambda: nb.load_model(path), ModelError, ("net.nir", "node/nodes/in->h1/weight", "compressed")


def c_nir_groups_pair(d):
    path = _nir(d, _conv())
    _replace_dataset(path, "node/nodes/in->h1/groups", data=np.array([1, 1]))
    return lambda: nb.load_model(path), ModelError, ("net.nir", "node 'in->h1'.groups", "[1, 1]")


def c_nir_stride_text(d):
    path = _nir(d, _conv())
    _replace_dataset(path, "node/nodes/in->h1/stride", data="x", dtype=h5py.string_dtype())
    return lambda: nb.load_model(path), ModelError, ("net.nir", "node 'in->h1'")


def c_nir_shape_nan(d):
    path = _nir(d)
    _replace_dataset(path, "node/nodes/in/shape", data=np.array([np.nan]))
    return lambda: nb.load_model(path), ModelError, ("net.nir", "node 'in'")


def c_nir_unknown_type(d):
    path = _nir(d)
    _replace_dataset(path, "node/nodes/h1/type", data="Teleporter", dtype=h5py.string_dtype())
    return lambda: nb.load_model(path), ModelError, ("net.nir", "node 'h1'.type", "Teleporter")


def c_nir_external_link(d):
    path = _nir(d)
    _nir(d, name="other.nir")
    with h5py.File(path, "a") as f:
        del f["node/nodes/in->h1/weight"]
        f["node/nodes/in->h1/weight"] = h5py.ExternalLink(str(d / "other.nir"), "node/nodes/in->h1/weight")
    return lambda: nb.load_model(path), ModelError, ("net.nir", "node/nodes/in->h1/weight", "ExternalLink")


def c_nir_fifo(d):
    path = _fifo(d / "net.nir")
    return lambda: nb.load_model(path), ModelError, ("net.nir", "FIFO")


def c_nir_not_hdf5(d):
    path = d / "net.nir"
    path.write_text("format: neuro_balance.model/2\n")
    return lambda: nb.load_model(path), ModelError, ("net.nir", "not an HDF5 file")


def c_profile_alias_bomb(d):
    path = _profile(d, LOIHI + "l0: &l0 [x]\n" + BOMB)
    return lambda: load_profile(path, warn=False), ProfileError, ("chip.yaml", "field '(yaml)'", "alias")


def c_profile_deep(d):
    path = _profile(d, LOIHI.replace("name: loihi1", f"name: {DEEP_FLOW}"))
    return lambda: load_profile(path, warn=False), ProfileError, ("chip.yaml", "field '(yaml)'", "nested")


def c_profile_latin1(d):
    path = _profile(d, LOIHI.encode().replace(b"name: loihi1", b"name: loihi\xb9"))
    return lambda: load_profile(path, warn=False), ProfileError, ("chip.yaml", "not UTF-8", "line")


def c_profile_bits_mapping(d):
    path = _profile(d, LOIHI.replace("v: {bits: 24", "v: {bits: {}", 1))
    return lambda: load_profile(path, warn=False), ProfileError, ("chip.yaml", "field 'state.v.bits'", "integer")


def c_profile_bits_list(d):
    path = _profile(d, LOIHI.replace("u: {bits: 24", "u: {bits: [24]", 1))
    return lambda: load_profile(path, warn=False), ProfileError, ("chip.yaml", "field 'state.u.bits'")


def c_profile_huge_value_is_cut(d):
    path = _profile(d, LOIHI.replace("kind: digital", "kind: " + "z" * 20_000, 1))
    return lambda: load_profile(path, warn=False), ProfileError, ("chip.yaml", "field 'kind'", "...")


def c_profile_fifo(d):
    path = _fifo(d / "chip.yaml")
    return lambda: load_profile(path, warn=False), ProfileError, ("chip.yaml", "field '(file)'", "FIFO")


def c_data_truncated(d):
    path = d / "data.npz"
    np.savez(path, X=np.ones((20, 4)), y=np.arange(20) % 3)
    path.write_bytes(path.read_bytes()[:-40])
    return lambda: labelled_npz(path, 4), ModelError, ("data.npz", "not a readable npz")


def c_data_no_x(d):
    path = d / "data.npz"
    np.savez(path, x=np.ones((20, 4)))
    return lambda: labelled_npz(path, 4), ModelError, ("data.npz", "field 'X'")


def c_data_nan(d):
    path = d / "data.npz"
    np.savez(path, X=np.full((3, 4), np.nan))
    return lambda: labelled_npz(path, 4), ModelError, ("data.npz", "field 'X'", "NaN")


def c_data_declares_1e9(d):
    path = d / "data.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("X.npy", _npy_header((10**9 // 4, 4)) + bytes(64))
    return lambda: labelled_npz(path, 4), ModelError, ("data.npz", "array 'X'", "[250000000, 4]")


def c_data_fifo(d):
    path = _fifo(d / "data.npz")
    return lambda: labelled_npz(path, 4), ModelError, ("data.npz", "FIFO")


def c_data_input_npy_declares_1e9(d):
    path = d / "rates.npy"
    path.write_bytes(_npy_header((10**9,)) + bytes(32))
    return lambda: simulate_input(path, 4, 0), ModelError, ("rates.npy", "input", "[1000000000]")


def c_data_input_fifo(d):
    path = _fifo(d / "rates.txt")
    return lambda: simulate_input(path, 4, 0), ModelError, ("rates.txt", "input", "FIFO")


CORPUS = {name[2:]: case for name, case in sorted(globals().items()) if name.startswith("c_")}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_every_hostile_file_of_the_corpus_is_refused_in_one_line(case, tmp_path):
    call, error, needles = CORPUS[case](tmp_path)
    refused(call, tmp_path, error, *needles)


@pytest.mark.parametrize("case", sorted(c for c in CORPUS if c.startswith(("yaml_", "profile_"))))
def test_without_libyaml_the_same_yaml_is_refused(case, tmp_path, monkeypatch):
    """PyYAML's pure-Python loader (used when libyaml is missing) refuses the same files the same way."""
    from neuro_balance.model import safe_yaml

    monkeypatch.setattr(safe_yaml, "_LOADER", safe_yaml._ScanBoundedLoader)
    call, error, needles = CORPUS[case](tmp_path)
    refused(call, tmp_path, error, *needles)


def test_the_corpus_covers_every_class():
    """Every case belongs to one class of issue 24 and every class has cases (counts in the report)."""
    classes = ("yaml_", "size_", "npy_", "member_", "npz_", "weights_", "nir_", "profile_", "data_")
    counts = {prefix: sum(name.startswith(prefix) for name in CORPUS) for prefix in classes}
    assert min(counts.values()) >= 1 and sum(counts.values()) == len(CORPUS), counts
    assert {"yaml_fifo", "weights_fifo", "nir_fifo", "profile_fifo", "data_fifo"} <= set(CORPUS)


def test_what_the_guards_refuse_loads_when_it_is_allowed(tmp_path):
    """The confinement is a default: allow_outside=True reads weights elsewhere; valid files still load."""
    other = _model(tmp_path, name="outside.yaml")
    (tmp_path / "inner").mkdir()
    path = _edit_yaml(_model(tmp_path / "inner"), lambda doc: doc.update(weights="../outside.npz"))
    net = nb.load_model(path, allow_outside=True)
    np.testing.assert_array_equal(net.projections[0].weight, nb.load_model(other).projections[0].weight)
    fortran = _model(tmp_path, name="f.yaml")
    arrays = dict(np.load(fortran.with_suffix(".npz")))
    arrays["in->h1"] = np.asfortranarray(arrays["in->h1"])
    np.savez_compressed(fortran.with_suffix(".npz"), **arrays)  # deflated members, Fortran order
    np.testing.assert_array_equal(nb.load_model(fortran).projections[0].weight, arrays["in->h1"])
    assert nb.load_model(_nir(tmp_path, _conv())).projections[0].options["groups"] == 1
    X, y = labelled_npz(_save(tmp_path / "d.npz", X=np.eye(4), y=np.arange(4.0), notes=np.zeros(3)), 4)
    assert X.dtype == np.float64 and y.dtype == np.int64 and list(y) == [0, 1, 2, 3]


def _save(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _overlap_heap_object(path: Path, index: int = 14, size: int = 210) -> None:
    """Make global-heap object ``index`` of an HDF5 file claim ``size`` bytes, overlapping the objects after it.

    On an rnn saved as NIR by h5py 3.16 (libhdf5 1.14) this makes every string read loop forever.
    """
    data = bytearray(path.read_bytes())
    start = data.index(b"GCOL")
    end, offset = start + struct.unpack_from("<Q", data, start + 8)[0], start + 16
    while offset + 16 <= end:
        number, _, _, length = struct.unpack_from("<HHIQ", data, offset)
        if number == index:
            struct.pack_into("<Q", data, offset + 8, size)
            path.write_bytes(bytes(data))
            return
        offset += 16 + (length + 7) // 8 * 8
    pytest.skip(f"no global heap object {index} in this file layout")


def test_an_hdf5_read_that_loops_is_stopped_in_time(tmp_path, monkeypatch):
    """libhdf5 loops on overlapping heap objects: the child reading the file is stopped, one line, in time."""
    from neuro_balance.model import nir_hdf5

    monkeypatch.setattr(nir_hdf5, "TIMEOUT_SECONDS", 1.0)
    path = _nir(tmp_path, nb.rnn(3, [4], 2, seed=0))
    _overlap_heap_object(path)
    start = time.perf_counter()
    with pytest.raises(ModelError) as info:
        nb.load_model(path)
    assert time.perf_counter() - start < 1.0 + MAX_SECONDS
    assert "\n" not in str(info.value) and "net.nir: not a readable NIR file" in str(info.value)

    def forever(*args):  # what a loop inside the C library looks like from here
        while True:
            time.sleep(1)

    monkeypatch.setattr(nir_hdf5._Reader, "group", forever)  # the forked child inherits it
    good = _nir(tmp_path, name="good.nir")
    with pytest.raises(ModelError, match="good.nir: not a readable NIR file .the HDF5 library did not finish "
                                         "reading it within 1.* s"):
        nb.load_model(good)


def test_the_hdf5_reading_child_has_its_memory_capped(tmp_path, monkeypatch):
    """The child's address space is capped (present size + twice the data budget + 512 MiB)."""
    resource = pytest.importorskip("resource")
    from neuro_balance.model import nir_hdf5

    if not sys.platform.startswith("linux"):
        pytest.skip("the reading child is forked on Linux only")
    monkeypatch.setattr(nir_hdf5._Reader, "group",
                        lambda self, *args: {"cap": resource.getrlimit(resource.RLIMIT_AS)[0]})
    cap = nir_hdf5.read_tree(_nir(tmp_path), max_bytes=2**30)["cap"]
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY or cap < resource.RLIM_INFINITY
    assert 2 * 2**30 + 2**29 < cap < 2 * 2**30 + 2**29 + 64 * 2**30


# ---------------------------------------------------------------------------------------- hypothesis
@FUZZ
@given(levels=st.integers(1, 12), fanout=st.integers(1, 12), target=st.sampled_from(["model", "profile"]))
def test_any_alias_chain_is_refused_before_it_expands(tmp_path_factory, levels, fanout, target):
    d = tmp_path_factory.mktemp("alias")
    chain = "l0: &l0 [x]\n" + "".join(f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * fanout)}]\n"
                                      for k in range(1, levels + 1))
    if target == "model":
        path = _model(d)
        path.write_text(path.read_text() + chain)
        refused(lambda: nb.load_model(path), d, ModelError, "net.yaml", "alias *l0")
    else:
        path = _profile(d, LOIHI + chain)
        refused(lambda: load_profile(path, warn=False), d, ProfileError, "chip.yaml", "alias *l0")


@FUZZ
@given(depth=st.integers(1, 5000), flow=st.booleans(), mapping=st.booleans())
def test_nesting_is_bounded_at_any_depth(tmp_path_factory, depth, flow, mapping):
    d = tmp_path_factory.mktemp("deep")
    depth = depth if flow else min(depth, 150)  # block style: the text grows as depth**2 (indentation)
    if flow:
        value = ("{a: " * depth + "1" + "}" * depth) if mapping else ("[" * depth + "]" * depth)
    else:
        value = "\n" + "".join("  " * (i + 1) + ("k:\n" if mapping else "-\n") for i in range(depth)) \
                + "  " * (depth + 1) + "v"
    path = _model(d)
    path.write_text(path.read_text() + f"extra: {value}\n")
    # the limit counts every node: the top mapping, the containers and the leaf
    needle = "nested deeper than 64" if depth >= 64 else "unknown top-level field" if depth < 62 else "net.yaml"
    refused(lambda: nb.load_model(path), d, ModelError, "net.yaml", needle)


@FUZZ
@given(shape=st.lists(st.integers(0, 2**34), min_size=0, max_size=4),
       descr=st.sampled_from(["<f8", ">f4", "<i8", "|u1", "|b1", "<c16", "|O", "<U4", "|V8"]),
       fortran=st.booleans(), n_data=st.integers(0, 256), member=st.sampled_from(["h1.bias", "in->h1"]))
def test_any_npy_header_is_checked_before_allocation(tmp_path_factory, shape, descr, fortran, n_data, member):
    d = tmp_path_factory.mktemp("npy")
    path = _model(d)
    npz = path.with_suffix(".npz")
    arrays = dict(np.load(npz))
    arrays.pop(member)
    np.savez(npz, **arrays)
    with zipfile.ZipFile(npz, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member + ".npy", _npy_header(shape, descr, fortran) + bytes(n_data))
    refused(lambda: nb.load_model(path), d, ModelError, "net.yaml", member.removesuffix(".bias"))


@FUZZ
@given(name=st.text(min_size=1, max_size=40))
def test_any_stray_archive_member_is_refused_by_name(tmp_path_factory, name):
    d = tmp_path_factory.mktemp("member")
    path = _model(d)
    with zipfile.ZipFile(path.with_suffix(".npz")) as z:
        members = [(i.filename, z.read(i), 0, i.CRC, i.file_size, 0) for i in z.infolist()]
    _raw_zip(path.with_suffix(".npz"), members + [(name, bytes(64), 0, zlib.crc32(bytes(64)), 64, 0)])
    refused(lambda: nb.load_model(path), d, ModelError, "net.yaml", "weights")


@FUZZ
@given(shape=st.lists(st.integers(1, 30000), min_size=1, max_size=3), fill=st.floats(allow_nan=False),
       target=st.sampled_from(["in->h1/weight", "h1/v_threshold", "in/shape", "h1->out/bias"]))
def test_any_declared_hdf5_shape_is_checked_before_reading(tmp_path_factory, shape, fill, target):
    d = tmp_path_factory.mktemp("h5")
    path = _nir(d)
    chunks = tuple(min(n, 64) for n in shape)
    _replace_dataset(path, f"node/nodes/{target}", shape=tuple(shape), dtype="f8", chunks=chunks, fillvalue=fill)
    refused(lambda: nb.load_model(path), d, ModelError, "net.nir", "node")


NIR_VALUES = st.sampled_from([np.array([1, 1]), np.array(b"x"), np.array(np.nan), np.zeros((2, 2, 2, 2, 2)),
                              np.array([1.5]), np.array([], dtype=float), np.array(10**12), np.array(-3),
                              np.array([[1, 2], [3, 4]]), np.array(True), np.array(["a", "b"], dtype=object), None])


def _datasets(path: Path) -> list[str]:
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
    return sorted(names)


@FUZZ
@given(data=st.data())
def test_any_nir_field_of_the_wrong_type_is_refused_naming_the_node_or_loads(tmp_path_factory, data):
    """Every dataset of a NIR file (shapes, strides, groups, types, edges, metadata) replaced or deleted."""
    d = tmp_path_factory.mktemp("nirfield")
    path = _nir(d, data.draw(st.sampled_from([_conv(), nb.rnn(3, [4], 2, seed=0)])))
    name, value = data.draw(st.sampled_from(_datasets(path))), data.draw(NIR_VALUES)
    with h5py.File(path, "a") as f:
        del f[name]
        if value is not None:
            f.create_dataset(name, data=value, **({"dtype": h5py.string_dtype()} if value.dtype == object else {}))
    before = _snapshot(d)
    try:
        net = nb.load_model(path)
    except ModelError as err:
        message = str(err)
        assert "\n" not in message and len(message) < 1000 and "net.nir" in message, message
        assert any(word in message for word in ("node", "graph", "edges", "not a readable NIR file")), message
    else:
        x = np.zeros((3, 2, net.input.n_features) if net.recurrent else (2, net.input.n_features))
        assert np.all(np.isfinite(net.forward(x)))
    assert _snapshot(d) == before


def _leaves(doc, prefix=()):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, prefix + (k,))
    else:
        yield prefix


WRONG = st.sampled_from([{}, {"a": 1}, [], [[1]], "x" * 5000, None, True, -1, 2**70, 1e308, float("nan"), "",
                         [1, "a"], {"value": {}, "unverified": True}])


@FUZZ
@given(data=st.data())
def test_any_wrong_profile_value_is_refused_naming_the_field_or_loads(tmp_path_factory, data):
    name = data.draw(st.sampled_from(["loihi1", "speck", "truenorth", "spinnaker2"]))
    doc = yaml.safe_load((PROFILE_DIR / f"{name}.yaml").read_text())
    path = data.draw(st.sampled_from([p for p in _leaves(doc) if p and p[0] in ("state", "weights", "threshold",
                                                                                  "bias", "accumulator", "neuron")]))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = data.draw(WRONG)
    d = tmp_path_factory.mktemp("profile")
    file = _profile(d, yaml.safe_dump(doc))
    before = _snapshot(d)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_profile(file)
    except ProfileError as err:
        message = str(err)
        assert "\n" not in message and len(message) < 2500 and "chip.yaml: field '" in message, message
    assert _snapshot(d) == before


# ---------------------------------------------------------------------------------------- the command line
CLI_CASES = {
    "inspect an alias bomb": (c_yaml_alias_bomb, ["inspect", "{file}"]),
    "inspect a FIFO as weights": (c_weights_fifo, ["inspect", "{file}"]),
    "inspect a NIR fill-value bomb": (c_nir_fill_value, ["inspect", "{file}"]),
    "quantize with an alias-bomb profile": (c_profile_alias_bomb, ["quantize", "{model}", "--profile", "{file}"]),
    "quantize --data a truncated npz": (c_data_truncated, ["quantize", "{model}", "--profile", "loihi1", "--data",
                                                           "{file}"]),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_the_command_line_refuses_in_one_line_without_a_traceback(case, tmp_path):
    build, argv = CLI_CASES[case]
    build(tmp_path)
    file = next(p for p in sorted(tmp_path.iterdir()) if p.suffix in (".yaml", ".nir") or p.name == "data.npz")
    (tmp_path / "m").mkdir()
    model = _model(tmp_path / "m")  # a valid model for the quantize cases
    before = _snapshot(tmp_path)
    args = [a.format(file=file, model=model) for a in argv]
    run = subprocess.run([sys.executable, "-m", "neuro_balance.app.cli", *args], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode in (1, 2), (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr and "Brian 2 encountered" not in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1 and file.name in run.stderr, run.stderr
    assert _snapshot(tmp_path) == before
