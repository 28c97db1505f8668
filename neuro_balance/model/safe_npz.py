"""Read untrusted npz archives (and npy files): members checked by name, npy header and size before any data is read."""
from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import UntrustedFileError
from .regular_file import open_regular
from .safe_yaml import reason, short

__all__ = ["NpzArchive", "read_npy", "MAX_ARRAY_BYTES"]

MAX_ARRAY_BYTES = 2 * 2**30  # the arrays read from one archive, decompressed, at most
_DEFLATE_RATIO = 1032  # deflate cannot expand data more than ~1032:1 (RFC 1951, 258-byte matches)
# Weights hardly compress (zero-heavy pruned ones ~10:1); a large member claiming more is a zip bomb.
_LARGE, _LARGE_RATIO = 16 * 2**20, 100
_CHUNK = 2**20


class NpzArchive:
    """An npz archive opened for reading: member names, then arrays one by one, each checked first.

    Opening reads only the zip's central directory and refuses, for every member, a name that is
    not ``NAME.npy``, a duplicate, encryption, a compression other than stored or deflate, and a
    declared size the archive cannot hold (a deflated member claiming more than ~1032 times its
    compressed size, or compressed bytes beyond the end of the file) or that only a zip bomb holds
    (over 16 MiB at more than 100 times its compressed size). Members that are never asked
    for are never decompressed. `read` parses a member's npy header (no pickles: object arrays
    are refused), checks its shape and dtype against the member's size and the byte budget, and
    only then allocates and fills the array.

    Parameters
    ----------
    path : path-like
        A regular file (`neuro_balance.model.regular_file.open_regular`).
    max_bytes : int
        At most this many array bytes are read in all (`read` refuses the array that would exceed it).

    Raises
    ------
    FileNotFoundError, OSError
        The file is missing or not a regular file.
    UntrustedFileError
        The archive or a member's entry is refused; one line.

    Examples
    --------
    >>> with NpzArchive("weights.npz") as archive:          # doctest: +SKIP
    ...     w = archive.read("in->h1") if "in->h1" in archive else None
    """

    def __init__(self, path: str | os.PathLike, max_bytes: int = MAX_ARRAY_BYTES) -> None:
        self.path, self.max_bytes, self.bytes_read = path, max_bytes, 0
        self._handle = open_regular(path)
        try:
            size = os.fstat(self._handle.fileno()).st_size
            try:
                self._zip = zipfile.ZipFile(self._handle)
            except Exception as err:  # noqa: BLE001 - a damaged zip fails in many ways (struct, EOF, huge counts)
                raise UntrustedFileError(f"not a readable npz archive ({reason(err)})") from None
            self._members = self._check_directory(size)
        except BaseException:
            self._handle.close()
            raise

    def _check_directory(self, size: int) -> dict[str, zipfile.ZipInfo]:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            name = info.filename
            where = f"member {short(name)}"
            if not name.endswith(".npy") or len(name) == 4:
                raise UntrustedFileError(f"{where}: not an .npy array (an npz archive holds only NAME.npy members)")
            key = name[:-4]
            if key in members:
                raise UntrustedFileError(f"{where}: appears twice")
            if info.flag_bits & 0x1:
                raise UntrustedFileError(f"{where}: is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise UntrustedFileError(f"{where}: compression method {info.compress_type} (only stored or deflate)")
            if info.compress_size > size or info.header_offset + info.compress_size > size:
                raise UntrustedFileError(f"{where}: declares {info.compress_size} compressed bytes at offset "
                                         f"{info.header_offset}, beyond the {size} bytes of the archive (truncated?)")
            limit = info.compress_size if info.compress_type == zipfile.ZIP_STORED else (
                _DEFLATE_RATIO * info.compress_size + 64)
            if info.file_size > max(_LARGE, _LARGE_RATIO * info.compress_size):
                limit = min(limit, _LARGE_RATIO * info.compress_size)
            if info.file_size > limit:
                raise UntrustedFileError(f"{where}: declares {info.file_size} bytes from {info.compress_size} "
                                         "compressed bytes, more than the compression can hold")
            members[key] = info
        return members

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the archive and its file."""
        self._zip.close()
        self._handle.close()

    @property
    def names(self) -> list[str]:
        """The arrays' names (member names without ``.npy``), in archive order."""
        return list(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def read(self, name: str) -> np.ndarray:
        """The array ``name``: its header checked (numbers only, size equal to the member's), then read.

        Raises
        ------
        KeyError
            No such member.
        UntrustedFileError
            A bad header, a dtype that is not integer or floating point, a size that disagrees with
            the member's or exceeds the byte budget, or data that is truncated or damaged.
        """
        info = self._members[name]
        try:
            with self._zip.open(info) as member:
                array = _read_array(member, name, info.file_size, self.max_bytes - self.bytes_read)
        except UntrustedFileError:
            raise
        except Exception as err:  # noqa: BLE001 - zlib, CRC, EOF and struct errors of a damaged member
            raise UntrustedFileError(f"array {short(name)}: cannot be read ({reason(err)})") from None
        self.bytes_read += array.nbytes
        return array


def read_npy(path: str | os.PathLike, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """The array of an untrusted ``.npy`` file: a regular file, numbers only, its header checked before allocation.

    Raises
    ------
    FileNotFoundError, OSError
        The file is missing or not a regular file.
    UntrustedFileError
        As `NpzArchive.read` (the message names the file's stem as the array).
    """
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            return _read_array(handle, Path(path).stem, size, max_bytes)
        except UntrustedFileError:
            raise
        except Exception as err:  # noqa: BLE001 - the same failures as a member's
            raise UntrustedFileError(f"array {short(Path(path).stem)}: cannot be read ({reason(err)})") from None


def _read_array(stream, name: str, size: int, budget: int) -> np.ndarray:
    """An npy array from ``stream`` of ``size`` bytes: header checked against the size and ``budget``, then read."""
    where = f"array {short(name)}"
    shape, fortran, dtype, header_len = _header(stream, name)
    count = 1
    for n in shape:
        count *= n
    nbytes = count * dtype.itemsize
    span = 1
    for n in shape:
        span *= max(n, 1)
    if span > 2**59:  # even empty, numpy cannot hold the shape as float64
        raise UntrustedFileError(f"{where}: shape {list(shape)} is beyond what an array can have")
    if header_len + nbytes != size:
        raise UntrustedFileError(f"{where}: header declares shape {list(shape)} of {dtype} ({nbytes} bytes), "
                                 f"{size - header_len} bytes follow it")
    if nbytes > budget:
        raise UntrustedFileError(f"{where}: {nbytes} bytes would take the arrays read past the limit")
    flat = np.empty(count, dtype)
    view, filled = memoryview(flat).cast("B"), 0
    while filled < nbytes:
        got = stream.readinto(view[filled:filled + _CHUNK])
        if not got:
            raise UntrustedFileError(f"{where}: data ends after {filled} of {nbytes} bytes (truncated)")
        filled += got
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def _header(member, name: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Parse an npy header (format 1.0 or 2.0) from an open member; refuse anything but numbers."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(member)
        else:
            raise ValueError(f"npy format version {version[0]}.{version[1]}")
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:  # the member itself is damaged (CRC, deflate data)
        raise UntrustedFileError(f"array {short(name)}: cannot be read ({reason(err)})") from None
    except Exception as err:  # noqa: BLE001 - numpy raises ValueError, SyntaxError, ... for a bad header
        raise UntrustedFileError(f"array {short(name)}: not a valid npy header ({reason(err)})") from None
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise UntrustedFileError(f"array {short(name)}: has dtype {short(str(dtype))}, not numbers")
    return tuple(int(n) for n in shape), bool(fortran), dtype, member.tell()

