"""Open untrusted input files: regular files only, refused at once (never waited on) when they are anything else."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = ["open_regular", "read_regular"]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file (symbolic links followed).

    The file is opened without blocking, so a FIFO with no writer is refused at once instead of
    waiting; the check is made on the open descriptor, so the file checked is the file read.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    BinaryIO
        Positioned at the start; the caller closes it.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    OSError
        When it is not a regular file (``strerror`` says what it is) or cannot be opened.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a file")
            raise OSError(errno.EINVAL, f"{kind}, not a regular file", str(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, refused if it holds more than ``max_bytes``.

    Raises
    ------
    FileNotFoundError, OSError
        As `open_regular`; also an ``OSError`` (``EFBIG``) for a file larger than ``max_bytes``.
    """
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        # the size first, then no more than it: not a max_bytes buffer for every small file
        data = handle.read(size + 1) if size <= max_bytes else b""
    if size > max_bytes or len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"larger than {max_bytes} bytes", str(Path(path)))
    return data
