"""Reading files someone else put there: regular files only, and never more than a cap.

`Path.read_bytes()` on a FIFO blocks until a writer appears (forever), on
`/dev/zero` it reads until memory runs out, and a huge file is read whole before
anything looks at it. Here the file is opened without blocking, checked to be a
regular file, and read to at most `max_bytes`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MIB = 1 << 20
_CHUNK = 4 * MIB


class UnsafeFile(OSError):
    """Not a regular file, or over the size cap; the message says which and names the file."""


def kind_of(mode: int) -> str:
    """A file type in words, for refusal messages."""
    kinds = [(stat.S_ISREG, "regular file"), (stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO (named pipe)"),
             (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"),
             (stat.S_ISLNK, "symbolic link")]
    return next((name for test, name in kinds if test(mode)), "special file")


def read_regular_file(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of `path` if it is a regular file of at most `max_bytes`, else UnsafeFile."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{path}: not a regular file (a {kind_of(info.st_mode)}); refused")
        if info.st_size > max_bytes:
            raise UnsafeFile(f"{path}: {info.st_size:,} bytes is over the {max_bytes:,}-byte limit; refused")
        chunks, total = [], 0
        while chunk := os.read(fd, min(_CHUNK, max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # it grew while being read
                raise UnsafeFile(f"{path}: more than the {max_bytes:,}-byte limit; refused")
        return b"".join(chunks)
    finally:
        os.close(fd)
