"""Small file-system promises the store, the model zoo and the job runner share.

- :func:`atomic_write_text`: readers see the old file or the new one, never half of either,
  and the new one survives a crash once the call returns.
- :func:`fsync_path` / :func:`fsync_dir`: push a file's data, or a folder's entries, to disk.
- :func:`locked`: an exclusive ``fcntl`` lock on a lock file, across processes of one machine
  (and across threads of one process, since each call opens its own descriptor).
- :func:`try_locked`: the same lock, but given up after a wait instead of waited for forever.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write_text", "fsync_dir", "fsync_path", "locked", "try_locked"]


def fsync_path(path: Path) -> None:
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (new, renamed or removed names) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically and durably (temp file, fsync, rename)."""
    tag = f"{os.getpid()}.{threading.get_ident()}.{secrets.token_hex(4)}"
    tmp = path.with_name(f".{path.name}.{tag}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def try_locked(path: Path, wait_s: float = 0.0) -> Iterator[bool]:
    """Try to hold the lock of :func:`locked` on ``path`` for the ``with`` block.

    Yields True while the lock is held, False when another holder kept it for ``wait_s``
    seconds (the block then runs without it). ``wait_s=0`` tries once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    held = False
                    break
                time.sleep(0.02)
        yield held
    finally:
        os.close(fd)  # closing the descriptor releases the lock
