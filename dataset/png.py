"""PNG bytes of tiles and masks: every encode and decode the workspace does goes through here.

Promises:

* Tiles: :func:`encode_rgb` writes 8-bit RGB as ``IHDR``, one ``IDAT`` and ``IEND`` (no EXIF,
  ICC or text chunks) and :func:`decode_rgb` gives back exactly those pixels; it refuses
  anything but an 8-bit RGB PNG.
* Masks: :func:`encode_mask` writes a uint8 class raster as a single-channel 8-bit PNG and
  :func:`decode_mask` gives back exactly that raster; it refuses any other PNG (a palette PNG
  only when asked to take its indices). :func:`read_header` reads width, height and pixel
  format from the ``IHDR`` chunk alone, so a stored mask is checked without inflating it.
* The same pixels always give the same bytes (the release checksums rely on it): the
  encoders take no options that change with the caller.
* A refusal is a :class:`PngError` (a ``ValueError``) that says what the bytes are; callers
  add which file or tile it was.

Uploaded photos and mask files in other formats are decoded by :mod:`dataset.images`, which
checks their size before any pixel is decoded; this module reads only the PNGs SmearLab
wrote itself (and, through :func:`decode_mask`, a mask PNG given on the command line).
"""

from __future__ import annotations

import contextlib
import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = [
    "PNG_SIGNATURE",
    "PngError",
    "PngHeader",
    "check_mask",
    "decode_mask",
    "decode_rgb",
    "encode_indexed",
    "encode_mask",
    "encode_rgb",
    "mask_histogram",
    "read_header",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BAND_BYTES = 16 * 2**20
# (bit depth, colour type) of IHDR -> Pillow's name of the pixel format.
_MODES = {
    (8, 0): "L",
    (16, 0): "I;16",
    (8, 2): "RGB",
    (8, 3): "P",
    (8, 4): "LA",
    (8, 6): "RGBA",
}
_MASK_LEVEL = 1  # zlib level of stored masks: a save stays fast; masks compress well anyway


class PngError(ValueError):
    """Bytes that are not the PNG the caller expects.

    Attributes:
        mode: Pillow's name of the pixel format found (``"RGB"``, ``"P"`` ...), or None when
            the bytes are no readable PNG at all.
        detail: Why Pillow could not read them (empty when ``mode`` is set).
    """

    def __init__(self, message: str, mode: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.mode = mode
        self.detail = detail


@dataclass(frozen=True)
class PngHeader:
    """What the ``IHDR`` chunk says: size and pixel format (``"?"`` for a rare one)."""

    width: int
    height: int
    mode: str


def read_header(data: bytes) -> PngHeader | None:
    """Width, height and pixel format of a PNG from its header; None if it is no PNG.

    The IHDR chunk sits at a fixed place after the signature, so nothing is inflated.
    """
    if len(data) < 26 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return PngHeader(width, height, _MODES.get((data[24], data[25]), "?"))


# ----------------------------------------------------------------------------- tiles
def encode_rgb(rgb: np.ndarray) -> bytes:
    """Lossless 8-bit RGB PNG, fast: the Up filter and Huffman-only deflate, no metadata.

    Blood-smear photos are noisy, so LZ77 matching finds little; filtering against the row
    above and entropy coding alone gives about Pillow's ``compress_level=1`` size in a
    fraction of its time. Any (H, W, 3) uint8 array is accepted, a non-contiguous crop too.

    Raises:
        ValueError: ``rgb`` is not an (H, W, 3) uint8 array.

    Shape:
        rgb: (H, W, 3), uint8.
    """
    _check_rgb(rgb)
    h, w = rgb.shape[:2]
    comp = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
    # Filtered a band of rows at a time, so a large image costs one band, not a second copy.
    band = max(1, _BAND_BYTES // (3 * w + 1))
    raw = np.empty((min(band, h), w * 3 + 1), dtype=np.uint8)
    raw[:, 0] = 2  # PNG filter type "Up" on every scanline
    parts = []
    for y in range(0, h, band):
        n = min(band, h - y)
        rows = rgb[y : y + n].reshape(n, w * 3)
        out = raw[:n]
        if y == 0:
            out[0, 1:] = rows[0]
        else:
            np.subtract(rows[0], rgb[y - 1].reshape(w * 3), out=out[0, 1:])
        np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])  # uint8 wrap-around is the PNG rule
        parts.append(comp.compress(out.data))
    parts.append(comp.flush())
    crc = zlib.crc32(b"IDAT")
    for part in parts:
        crc = zlib.crc32(part, crc)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    # One join of the compressed parts: the PNG is assembled without an extra copy of IDAT.
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            struct.pack(">I", sum(map(len, parts))),
            b"IDAT",
            *parts,
            struct.pack(">I", crc),
            _chunk(b"IEND", b""),
        )
    )


def decode_rgb(data: bytes) -> np.ndarray:
    """The pixels of a tile or smear PNG written by :func:`encode_rgb`.

    Raises:
        PngError: The bytes are no readable PNG, or not 8-bit RGB.

    Shape:
        return: (H, W, 3), uint8, writable.
    """
    with _open(data, "Stored image bytes are") as im:
        if im.mode != "RGB":
            raise PngError(f"A stored image must be an 8-bit RGB PNG; this one is {im.mode!r}.")
        return np.asarray(im).copy()


# ----------------------------------------------------------------------------- masks
def encode_mask(mask: np.ndarray) -> bytes:
    """Encode a mask as a single-channel 8-bit PNG.

    Args:
        mask: Class indices, 255 = unlabelled.

    Returns:
        PNG bytes that :func:`decode_mask` turns back into exactly ``mask``.

    Raises:
        ValueError: ``mask`` is not a 2-D uint8 array.

    Shape:
        mask: (H, W), uint8.
    """
    check_mask(mask, "mask")
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask)).save(out, format="PNG", compress_level=_MASK_LEVEL)
    return out.getvalue()


def decode_mask(data: bytes, *, palette_ok: bool = False) -> np.ndarray:
    """The class indices of a mask PNG.

    Args:
        data: The PNG's bytes.
        palette_ok: Also take a palette PNG, as its palette indices (a mask file a person
            saved with a colour table; SmearLab never stores one).

    Raises:
        PngError: The bytes are no readable PNG, or not single-channel 8-bit (``mode`` says
            what they are).

    Shape:
        return: (H, W), uint8.
    """
    with _open(data, "Stored mask bytes are") as im:
        if im.mode != "L" and not (palette_ok and im.mode == "P"):
            raise PngError(
                f"A stored mask must be a single-channel 8-bit PNG; this one is {im.mode!r}.",
                im.mode,
            )
        return np.array(im, dtype=np.uint8)


def mask_histogram(data: bytes) -> np.ndarray:
    """Pixels per value of a single-channel 8-bit mask PNG.

    Pillow's histogram counts in one C pass what a NumPy copy and ``bincount`` would count
    in three.

    Raises:
        PngError: As :func:`decode_mask`.

    Shape:
        return: (256,), int64.
    """
    with _open(data, "Stored mask bytes are") as im:
        if im.mode != "L":
            raise PngError(
                f"A stored mask must be a single-channel 8-bit PNG; this one is {im.mode!r}.",
                im.mode,
            )
        return np.array(im.histogram(), dtype=np.int64)


def encode_indexed(mask: np.ndarray, palette: np.ndarray) -> bytes:
    """A mask as a palette PNG: pixel values unchanged, shown in the palette's colours.

    Shape:
        mask: (H, W), uint8. palette: (256, 3), uint8.
    """
    check_mask(mask, "mask")
    im = Image.fromarray(np.ascontiguousarray(mask))
    im.putpalette(np.ascontiguousarray(palette, dtype=np.uint8).tobytes())  # 'L' becomes 'P'
    out = io.BytesIO()
    im.save(out, format="PNG", optimize=False)
    return out.getvalue()


def check_mask(mask: object, what: str) -> None:
    """Refuse anything but a non-empty 2-D uint8 array, naming it ``what``.

    Raises:
        ValueError: Saying what ``mask`` is instead.
    """
    if not isinstance(mask, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(mask).__name__}.")
    if mask.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 class indices, got dtype {mask.dtype}.")
    if mask.ndim != 2 or 0 in mask.shape:
        raise ValueError(f"{what} must be a 2-D (H, W) raster, got shape {mask.shape}.")


# ----------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _open(data: bytes, what: str) -> Iterator[Image.Image]:
    """A fully loaded PNG, or a PngError saying ``what`` is not one."""
    try:
        im = Image.open(io.BytesIO(bytes(data)), formats=["PNG"])
    except Exception as exc:  # Pillow raises many types on damaged data
        raise PngError(f"{what} not a readable PNG ({exc}).", detail=str(exc)) from None
    with im:
        try:
            im.load()
        except Exception as exc:
            raise PngError(f"{what} not a readable PNG ({exc}).", detail=str(exc)) from None
        yield im


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8:
        raise ValueError(
            f"Expected RGB pixels as a uint8 numpy array, got {type(rgb).__name__}"
            f"{' of ' + str(rgb.dtype) if isinstance(rgb, np.ndarray) else ''}."
        )
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"Expected RGB pixels of shape (H, W, 3), got {rgb.shape}.")


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
