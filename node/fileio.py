"""Writing files safely: a new file never overwrites one, a replaced file is never seen half
written, a lock file serialises writers. Standard library only, so the pure core's shells
may use it too."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_exclusive(path: Path, data: bytes, mode: int) -> None:
    """Write a new file with `mode` from the start; FileExistsError if it is there."""
    # O_NOFOLLOW: a planted symlink must not redirect a private key elsewhere.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it; never widens past `mode`
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data` (file mode `mode`): readers, and a restart after a crash,
    see the old file or the new one, never half of one.

    Writes a temporary file in the same folder, syncs it, renames it over `path`, then
    syncs the folder so the rename itself survives a crash.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # left by a crashed writer that had this process id
    try:
        write_exclusive(tmp, data, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable (fsync the folder itself)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def exclusive_lock(path: Path, mode: int) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created with `mode`) for the block: writers in
    other processes (cron, a server, a maintainer's command) wait their turn."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
