"""Read an untrusted ``.nir`` (HDF5) file as nested dicts, each dataset checked against its stored size first."""
from __future__ import annotations

import multiprocessing
import os
import sys
from typing import Any

from ..errors import UntrustedFileError
from .regular_file import open_regular
from .safe_yaml import reason, short

__all__ = ["read_tree", "MAX_NIR_BYTES", "TIMEOUT_SECONDS", "SECONDS_PER_MIB"]

MAX_NIR_BYTES = 2 * 2**30  # the datasets of one file, decompressed, at most
MAX_DEPTH = 32  # groups nested deeper are refused
MAX_OBJECTS = 100_000  # groups and datasets visited (hard links can repeat a group)
TIMEOUT_SECONDS, SECONDS_PER_MIB = 30.0, 0.5  # the reading child is stopped after 30 s + 0.5 s per MiB
_RATIO, _SLACK = 1032, 4096  # gzip (deflate) expands at most ~1032:1
_LARGE, _LARGE_RATIO = 16 * 2**20, 100  # a large dataset claiming more is a bomb, not weights


def _refused(node: str, problem: str) -> UntrustedFileError:
    """The refusal of HDF5 object ``node`` (its path in the file; '' for the file itself)."""
    return UntrustedFileError(f"{node}: {problem}" if node else problem)


def read_tree(path: str | os.PathLike, max_bytes: int = MAX_NIR_BYTES, timeout: float | None = None) -> dict[str, Any]:
    """The ``/node`` group of a NIR file as nested dicts (what ``nir.read`` passes to ``nir.dict2NIRNode``).

    Only a regular file is opened. Before a dataset is read, its dtype must be numbers or strings,
    its data must lie in the file (no external storage, virtual layout, soft or external link),
    and its declared size must fit what is stored: an unfiltered dataset must store all of its bytes
    (a chunked dataset with a fill value can declare gigabytes in a few kB), a compressed one at most
    ~1032 times its stored bytes (100 times above 16 MiB), and all of them together at most
    ``max_bytes``. Byte strings are decoded as UTF-8, as ``nir.read`` does.

    The HDF5 library can loop forever (or crash) on a damaged file, e.g. a global heap whose object
    sizes overlap, so on Linux the file is read in a forked child process that is stopped after
    ``timeout`` seconds; elsewhere (no safe fork on macOS, none on Windows) it is read in this process.

    Parameters
    ----------
    path : path-like
    max_bytes : int
    timeout : float, optional
        Default `TIMEOUT_SECONDS` plus `SECONDS_PER_MIB` per MiB of the file.

    Returns
    -------
    dict

    Raises
    ------
    FileNotFoundError, OSError
        The file is missing or not a regular file.
    UntrustedFileError
        The file is not HDF5, has no ``/node`` group, an object in it is refused (named), or the
        HDF5 library did not finish reading it in time.
    """
    with open_regular(path) as handle:  # missing files and FIFOs are refused here, at once
        size = os.fstat(handle.fileno()).st_size
    if not sys.platform.startswith("linux"):
        return _read_tree(path, max_bytes)
    timeout = TIMEOUT_SECONDS + SECONDS_PER_MIB * size / 2**20 if timeout is None else timeout
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_read_in_child, args=(send, path, max_bytes), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(timeout):
            raise _refused("", f"the HDF5 library did not finish reading it within {timeout:.3g} s; "
                           "a damaged file can make it loop")
        kind, value = receive.recv()
    except EOFError:
        child.join()
        raise _refused("", f"the HDF5 library stopped while reading it (exit code {child.exitcode})") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()
    if kind == "problem":
        raise UntrustedFileError(value)
    if kind == "oserror":
        raise OSError(*value)
    return value


def _read_in_child(send: Any, path: str | os.PathLike, max_bytes: int) -> None:
    """`_read_tree` in a forked child: the outcome (the tree, or the refusal's parts) goes back through ``send``."""
    _limit_memory(2 * max_bytes + 2**29)  # the data, its pickled copy, and room for the library
    try:
        outcome: tuple[str, Any] = ("tree", _read_tree(path, max_bytes))
    except UntrustedFileError as err:
        outcome = ("problem", err.problem)
    except OSError as err:
        outcome = ("oserror", (err.errno, err.strerror or str(err)))
    except BaseException as err:  # noqa: BLE001 - anything else still ends as one line in the parent
        outcome = ("problem", f"cannot be read ({reason(err)})")
    send.send(outcome)
    send.close()


def _limit_memory(extra: int) -> None:
    """Cap this (child) process's address space at its present size plus ``extra`` bytes, where it can be.

    Damaged metadata can make the HDF5 library ask for any amount of memory; with the cap the request
    fails in the child (a one-line refusal) instead of exhausting the machine.
    """
    try:
        import resource

        with open("/proc/self/statm") as statm:
            size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        limit = size + extra if hard == resource.RLIM_INFINITY else min(size + extra, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):  # no resource module or /proc: read without the cap
        pass


def _read_tree(path: str | os.PathLike, max_bytes: int) -> dict[str, Any]:
    """`read_tree` in this process."""
    import h5py  # an optional dependency, imported only here

    handle = open_regular(path)
    try:
        size = os.fstat(handle.fileno()).st_size
        try:
            file = h5py.File(handle, "r")
        except Exception as err:  # noqa: BLE001 - h5py raises OSError, ValueError, ... for a non-HDF5 file
            raise _refused("", f"not an HDF5 file ({reason(err)})") from None
        with file:
            reader = _Reader(h5py, size, max_bytes)
            root = reader.child(file, "node", "")
            if not isinstance(root, h5py.Group):
                raise _refused("node", "missing, or not a group (a NIR file keeps its graph in /node)")
            return reader.group(root, "node", 0)
    finally:
        handle.close()


class _Reader:
    def __init__(self, h5py: Any, file_size: int, max_bytes: int) -> None:
        self.h5py, self.file_size, self.max_bytes = h5py, file_size, max_bytes
        self.total, self.visited = 0, 0

    def child(self, group: Any, key: str, where: str) -> Any:
        """The object at ``key`` of ``group`` if it is reached by a hard link (None when absent)."""
        name = f"{where}/{key}" if where else key
        try:
            link = group.get(key, getlink=True)
            if link is None:
                return None
            if not isinstance(link, self.h5py.HardLink):
                raise _refused(name, f"a {type(link).__name__} (only objects stored in this file are read)")
            return group[key]
        except UntrustedFileError:
            raise
        except Exception as err:  # noqa: BLE001 - a damaged object header
            raise _refused(name, f"cannot be opened ({reason(err)})") from None

    def group(self, group: Any, where: str, depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise _refused(where, f"groups nested deeper than {MAX_DEPTH} levels")
        out: dict[str, Any] = {}
        try:
            keys = list(group.keys())
        except Exception as err:  # noqa: BLE001
            raise _refused(where, f"cannot be listed ({reason(err)})") from None
        for key in keys:
            self.visited += 1
            if self.visited > MAX_OBJECTS:
                raise _refused(where, f"more than {MAX_OBJECTS} objects")
            name = f"{where}/{key}"
            item = self.child(group, key, where)
            if isinstance(item, self.h5py.Group):
                out[key] = self.group(item, name, depth + 1)
            elif isinstance(item, self.h5py.Dataset):
                out[key] = self.dataset(item, name)
            else:
                raise _refused(name, f"a {type(item).__name__}, neither a group nor a dataset")
        return out

    def dataset(self, ds: Any, where: str) -> Any:
        try:
            return self._dataset(ds, where)
        except UntrustedFileError:
            raise
        except Exception as err:  # noqa: BLE001 - a damaged header: dtype, layout or chunk index unreadable
            raise _refused(where, f"cannot be read ({reason(err)})") from None

    def _dataset(self, ds: Any, where: str) -> Any:
        h5py = self.h5py
        shape, dtype = ds.shape, ds.dtype
        if shape is None:
            raise _refused(where, "an empty (null) dataset")
        string = h5py.check_string_dtype(dtype) is not None
        if not (string or dtype.kind in "biuf"):
            raise _refused(where, f"dtype {short(str(dtype))} (only numbers and strings are read)")
        count = 1
        for n in shape:
            count *= int(n)
        nbytes = count * dtype.itemsize
        plist = ds.id.get_create_plist()
        layout = plist.get_layout()
        if layout == h5py.h5d.VIRTUAL or plist.get_external_count():
            raise _refused(where, "its data lies in other files (external or virtual storage)")
        stored = ds.id.get_storage_size()
        if stored > self.file_size:
            raise _refused(where, f"declares {stored} stored bytes, the file has {self.file_size} (truncated?)")
        if count and not string:
            filtered = layout == h5py.h5d.CHUNKED and plist.get_nfilters() > 0
            limit = stored if not filtered else _RATIO * stored + _SLACK
            if filtered and nbytes > max(_LARGE, _LARGE_RATIO * stored):
                limit = min(limit, _LARGE_RATIO * stored)
            if layout != h5py.h5d.COMPACT and nbytes > limit:
                raise _refused(where, f"declares shape {list(shape)} of {dtype} ({nbytes} bytes) but stores "
                               f"{stored} bytes{' compressed' if filtered else ''}; the rest would be "
                               "invented (fill value)")
        if self.total + nbytes > self.max_bytes:
            raise _refused(where, f"{nbytes} bytes would take the data read past the limit of "
                           f"{self.max_bytes} bytes")
        self.total += nbytes
        value = ds[()]  # a damaged chunk, a failing filter or a truncated file raise: see `dataset`
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise _refused(where, "a string that is not UTF-8") from None
        return value

