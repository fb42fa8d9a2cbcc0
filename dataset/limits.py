"""Input limits: what one uploaded or imported file may cost before SmearLab looks at it.

Promises:

* :func:`open_input_file` and :func:`read_input_file` open only regular files, check the
  size before reading, and never read more than the limit (a file growing while it is read
  is refused too). A device (``/dev/zero``), a FIFO, a socket or a folder is refused naming
  the path and what it is, without blocking.
* :func:`check_image_size` refuses, from the header's width and height alone, images over
  the pixel limit, with a side under the minimum, or longer than the aspect-ratio limit;
  each message names the upload, the figure and the limit.
* Every limit has a default in :class:`dataset.settings.Settings` (``max_file_mb``,
  ``max_pixels``, ``min_side_px``, ``max_aspect_ratio``) and is read through
  :func:`input_limits`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "InputLimits",
    "InputRefused",
    "check_file_size",
    "check_image_size",
    "input_limits",
    "open_input_file",
    "read_input_file",
]

_MIB = 2**20


class InputRefused(ValueError):
    """A file or image over a limit, or not a regular file; the message names it and why."""


@dataclass(frozen=True)
class InputLimits:
    """The limits applied to every upload and import.

    Attributes:
        max_file_bytes: Largest file read, in bytes.
        max_pixels: Largest width × height decoded.
        min_side: Smallest accepted width or height, pixels.
        max_aspect: Largest ratio of the longer side to the shorter side.
    """

    max_file_bytes: int = 320 * _MIB
    max_pixels: int = 100_000_000
    min_side: int = 32
    max_aspect: float = 20.0


def input_limits(max_pixels: int | None = None) -> InputLimits:
    """The limits from the settings; ``max_pixels`` overrides the settings' pixel limit."""
    from dataset.settings import get_settings

    s = get_settings()
    return InputLimits(
        max_file_bytes=s.max_file_mb * _MIB,
        max_pixels=max_pixels if max_pixels is not None else s.max_pixels,
        min_side=s.min_side_px,
        max_aspect=s.max_aspect_ratio,
    )


def _mib(n: int) -> str:
    return f"{n / _MIB:.1f} MiB"


def check_file_size(name: str, size: int, max_bytes: int) -> None:
    """Refuse a file of ``size`` bytes over ``max_bytes``.

    Raises:
        InputRefused: The file is larger than the limit.
    """
    if size > max_bytes:
        raise InputRefused(
            f"{name!r} is {_mib(size)}; the limit is {_mib(max_bytes)} per file "
            "(setting SMEARLAB_MAX_FILE_MB). Upload a smaller file, a crop, or a compressed "
            "(PNG or JPEG) copy."
        )


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_input_file(path: Path | str, max_bytes: int, name: str | None = None) -> BinaryIO:
    """Open a regular file of at most ``max_bytes`` for reading; the caller closes it.

    The file is opened without blocking (a FIFO with no writer would hang a plain open) and
    checked with ``fstat`` on the open descriptor, so a path swapped after a check cannot
    slip in. Nothing is read yet: a decoder can read what it needs as it goes.

    Args:
        path: The file.
        max_bytes: Largest size accepted.
        name: How to name the file in messages (default: the path).

    Raises:
        InputRefused: Not a regular file, or larger than ``max_bytes``.
        OSError: The file cannot be opened (missing, no permission).
    """
    label = str(path) if name is None else name
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputRefused(
                f"{label!r} is {_kind(info.st_mode)}, not a regular file; "
                "give the path of an image file."
            )
        check_file_size(label, info.st_size, max_bytes)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def read_input_file(path: Path | str, max_bytes: int, name: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (see :func:`open_input_file`).

    Reads at most ``max_bytes + 1`` bytes, so a file that grows while it is read is refused
    rather than read without end.

    Raises:
        InputRefused: Not a regular file, or larger than ``max_bytes``.
        OSError: The file cannot be opened or read (missing, no permission).
    """
    label = str(path) if name is None else name
    with open_input_file(path, max_bytes, name) as fh:
        data = fh.read(max_bytes + 1)
    check_file_size(label, len(data), max_bytes)  # it grew while being read
    return data


def check_image_size(name: str, width: int, height: int, limits: InputLimits) -> None:
    """Refuse an image by its header's size: too many pixels, a side too short, too long.

    An image smaller than a tile but within these limits is accepted (it becomes one tile
    of its own size).

    Raises:
        InputRefused: Over the pixel limit, under the minimum side, or over the aspect ratio.
    """
    if width * height > limits.max_pixels:
        raise InputRefused(
            f"{name!r} is {width} × {height} pixels ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {limits.max_pixels / 1e6:.1f} megapixels. Upload a smaller image "
            "or a crop."
        )
    short, long = min(width, height), max(width, height)
    if short < limits.min_side:
        raise InputRefused(
            f"{name!r} is {width} × {height} pixels; each side must be at least "
            f"{limits.min_side} pixels (setting SMEARLAB_MIN_SIDE_PX). Upload the full photo, "
            "not a thumbnail or a strip."
        )
    if long / short > limits.max_aspect:
        raise InputRefused(
            f"{name!r} is {width} × {height} pixels, {long / short:.0f} times longer than "
            f"wide; the limit is {limits.max_aspect:g} (setting SMEARLAB_MAX_ASPECT_RATIO). "
            "Cut it into pieces of a more usual shape."
        )
