"""Safe decoding of uploaded smear photos into plain RGB pixels, and their identity.

What this module promises:

* :func:`decode_image` either returns 8-bit RGB pixels of the first page, upright (EXIF
  orientation applied), or raises :class:`ImageRejected` saying which upload was wrong and
  why. Only PNG, JPEG, TIFF and BMP are parsed. The size in the file header is checked
  before any pixel is decoded, and the whole image is decoded before it is accepted, so a
  truncated upload is refused rather than padded with grey.
* The pixels carry no metadata: :func:`encode_png_lossless` writes them back as a PNG with
  no EXIF, ICC or text chunks, and decodes to exactly the same pixels.
* :func:`pixel_sha256` identifies pixels, not files: a JPEG and a PNG re-encoding of its
  decoded pixels get the same id.

The ``name`` of an upload is only a label for messages; it is never used as a path.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from dataset.limits import InputLimits, InputRefused, check_file_size, check_image_size
from dataset.png import _check_rgb, encode_rgb

ACCEPTED_FORMATS = ("PNG", "JPEG", "TIFF", "BMP")
DEFAULT_MAX_PIXELS = 100_000_000
_ORIENTATION_TAG = 0x0112
_TIFF_BITS_PER_SAMPLE = 258
_TIFF_SAMPLES_PER_PIXEL = 277
_TIFF_PHOTOMETRIC_RGB = 2
# What Pillow's decoders raise on damaged input; broad because each plugin has its own.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    struct.error,
)
_SNIFF = (
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"PK\x03\x04", "a ZIP archive"),
)
_ACCEPTED_TEXT = "PNG, JPEG, TIFF or BMP"


class ImageRejected(ValueError):
    """An upload that cannot be used as a smear image; the message says which and why."""


@dataclass(frozen=True)
class DecodedImage:
    """Pixels of an accepted upload.

    Attributes:
        rgb: Upright pixels, no metadata.
        width: Pixel columns.
        height: Pixel rows.
        source_format: Pillow's name of the file format: ``PNG``, ``JPEG``, ``TIFF`` or ``BMP``.
        warnings: Things the user should know about what was done to the upload (first page
            of several taken, transparency flattened, ...); empty when nothing notable.

    Shape:
        rgb: (height, width, 3), uint8.
    """

    rgb: np.ndarray
    width: int
    height: int
    source_format: str
    warnings: tuple[str, ...] = ()


def decode_image(
    data: bytes | BinaryIO,
    name: str,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    limits: InputLimits | None = None,
) -> DecodedImage:
    """Decode an uploaded photo into upright 8-bit RGB pixels, or refuse it.

    Colour handling: greyscale, 1-bit and palette images are expanded to RGB; CMYK uses
    Pillow's conversion (Adobe-inverted JPEGs included, embedded ICC profiles ignored);
    transparency is composited over white with a warning; 16-bit samples are scaled by
    their bit depth, ``round(v * 255 / 65535)`` (16-bit greyscale and 16-bit RGB TIFF
    exactly; for 16-bit colour PNG Pillow keeps the high byte, within one level of that).
    32-bit integer and floating-point images are refused: their range is not defined.

    Args:
        data: The uploaded file's bytes, or a binary file open at its start (read as
            needed, so a large file is never held in memory whole; see
            :func:`dataset.limits.open_input_file`). The caller closes the file.
        name: The upload's file name, used only to name it in messages.
        max_pixels: Largest width × height accepted; checked from the header before any
            pixel is decoded. Pillow's own limit (twice ``PIL.Image.MAX_IMAGE_PIXELS``)
            also applies.
        limits: The upload limits (:mod:`dataset.limits`): file size, pixels, shortest
            side, aspect ratio, all checked before any pixel is decoded; when given, its
            ``max_pixels`` replaces the argument's.

    Returns:
        The decoded pixels, their size, the source format and any warnings.

    Raises:
        ImageRejected: Empty, not one of the accepted formats, too large, truncated or
            otherwise undecodable, or a pixel format SmearLab cannot convert.
    """
    img, notes = open_checked(data, name, max_pixels=max_pixels, limits=limits)
    source_format = img.format or ""
    try:
        orientation = _orientation(img, notes)
        rgb = _tiff_rgb16(data, img) if _is_tiff_rgb16(img) else None
        if rgb is None:
            rgb = _to_rgb(img, name, notes)
    except ImageRejected:
        raise
    except _DECODE_ERRORS as exc:
        raise ImageRejected(
            f"{name!r} ({img.mode} pixels) could not be converted to RGB ({exc}). "
            "Save it as an 8-bit RGB image and upload that."
        ) from None
    finally:
        img.close()
    rgb = np.ascontiguousarray(_apply_orientation(rgb, orientation))
    height, width = rgb.shape[:2]
    return DecodedImage(rgb, width, height, source_format, tuple(notes))


def open_checked(
    data: bytes | BinaryIO,
    name: str,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    limits: InputLimits | None = None,
) -> tuple[Image.Image, list[str]]:
    """Open an upload with Pillow, check it, and fully decode its first page.

    The checks of :func:`decode_image` (non-empty, accepted format, size from the header
    within ``max_pixels`` before decoding, complete pixel data) without the conversion to
    RGB, for callers that need the image in its own mode (mask imports).

    Args:
        data: The uploaded file's bytes, or a binary file open at its start.
        name: The upload's file name, used only to name it in messages.
        max_pixels: Largest width × height accepted.
        limits: As for :func:`decode_image`.

    Returns:
        The loaded image (first page; close it when done) and warnings for the user.

    Raises:
        ImageRejected: As :func:`decode_image`.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Pillow would pad a truncated upload with grey and report success; refuse to run
        # rather than accept damaged smears silently.
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES was set to True somewhere in this process; "
            "SmearLab needs it False to detect truncated uploads."
        )
    size = _size(data)
    if not size:
        raise ImageRejected(f"{name!r} is empty (0 bytes): upload the image file again.")
    if limits is not None:
        try:
            check_file_size(name, size, limits.max_file_bytes)
        except InputRefused as exc:
            raise ImageRejected(str(exc)) from None
    buffer = _stream(data)
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below decides; the warning would only be noise.
            # (If threads interleave and this filter leaks, the same check still holds.)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(buffer, formats=list(ACCEPTED_FORMATS))
    except Image.DecompressionBombError as exc:
        raise ImageRejected(
            f"{name!r} claims more pixels than SmearLab will decode ({exc}). "
            "Upload a smaller image or a crop of it."
        ) from None
    except UnidentifiedImageError:
        raise ImageRejected(
            f"{name!r} is not a {_ACCEPTED_TEXT} image{_sniff(data)}. "
            f"Export it as one of: {', '.join(ACCEPTED_FORMATS)}."
        ) from None
    except _DECODE_ERRORS as exc:
        raise ImageRejected(
            f"{name!r} is damaged or truncated: its header cannot be read ({exc})."
        ) from None

    try:
        return img, _check_and_load(img, name, max_pixels, limits)
    except BaseException:
        img.close()
        raise


def _check_and_load(
    img: Image.Image, name: str, max_pixels: int, limits: InputLimits | None
) -> list[str]:
    if img.format not in ACCEPTED_FORMATS:  # pragma: no cover - open() already restricts
        raise ImageRejected(
            f"{name!r} is a {img.format} image; accepted formats: {', '.join(ACCEPTED_FORMATS)}."
        )
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageRejected(f"{name!r} has no pixels ({width} × {height}).")
    if limits is not None:
        try:
            check_image_size(name, width, height, limits)
        except InputRefused as exc:
            raise ImageRejected(str(exc)) from None
    elif width * height > max_pixels:
        raise ImageRejected(
            f"{name!r} is {width} × {height} pixels ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {max_pixels / 1e6:.1f} megapixels. Upload a smaller image or a crop."
        )
    notes: list[str] = []
    pages = getattr(img, "n_frames", 1)
    if pages > 1:
        notes.append(f"{name!r} has {pages} pages; only the first was used.")
    try:
        img.seek(0)
        img.load()
    except Image.DecompressionBombError as exc:
        raise ImageRejected(
            f"{name!r} claims more pixels than SmearLab will decode ({exc})."
        ) from None
    except _DECODE_ERRORS as exc:
        raise ImageRejected(
            f"{name!r} is truncated or damaged and cannot be decoded completely ({exc}). "
            "Upload the original file again."
        ) from None
    return notes


def encode_png_lossless(rgb: np.ndarray) -> bytes:
    """Encode RGB pixels as a PNG with no metadata chunks (no EXIF, ICC profile or text).

    The PNG holds only ``IHDR``, one ``IDAT`` and ``IEND``; see
    :func:`dataset.png.encode_rgb` for how it is compressed.

    Args:
        rgb: Pixels to encode.

    Returns:
        PNG bytes that decode to exactly ``rgb``.

    Raises:
        ValueError: ``rgb`` is not an (H, W, 3) uint8 array.

    Shape:
        rgb: (H, W, 3), uint8.
    """
    return encode_rgb(rgb)


def pixel_sha256(rgb: np.ndarray) -> str:
    """SHA-256 of the decoded RGB bytes, hex; the same for any lossless re-encoding.

    Shape:
        rgb: (H, W, 3), uint8.
    """
    _check_rgb(rgb)
    h = hashlib.sha256()
    if rgb.flags.c_contiguous:
        h.update(memoryview(rgb).cast("B"))  # no copy of the pixels
    else:
        for row in rgb:  # rows of a crop or a rotated view, in order: the same digest
            h.update(np.ascontiguousarray(row).data)
    return h.hexdigest()


def smear_id_for(rgb: np.ndarray) -> str:
    """Stable smear id derived from the pixels: ``"s"`` + 12 hex digits of their SHA-256.

    Shape:
        rgb: (H, W, 3), uint8.
    """
    return "s" + pixel_sha256(rgb)[:12]


def _size(data: bytes | BinaryIO) -> int:
    if isinstance(data, bytes | bytearray | memoryview):
        return len(data)
    try:
        return os.fstat(data.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):  # an in-memory file
        return data.seek(0, io.SEEK_END)


def _stream(data: bytes | BinaryIO) -> BinaryIO:
    """A file object at the start of the upload (bytes are wrapped without a copy)."""
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(data)
    data.seek(0)
    return data


def _head(data: bytes | BinaryIO, n: int) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data[:n])
    data.seek(0)
    return data.read(n)


def _sniff(data: bytes | BinaryIO) -> str:
    head = _head(data, 16)
    for magic, what in _SNIFF:
        if head.startswith(magic):
            return f": it looks like {what}"
    if head[4:8] == b"ftyp":
        return ": it looks like a HEIC/AVIF (phone camera) image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return ": it looks like a WebP image"
    sample = _head(data, 512)
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    if text and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return ": it looks like text, not an image"
    return ""


def _orientation(img: Image.Image, notes: list[str]) -> int:
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        notes.append("The EXIF data is unreadable; the image was used as stored, not rotated.")
        return 1
    if value not in range(1, 9):
        notes.append(f"EXIF orientation {value!r} is not valid; the image was not rotated.")
        return 1
    return int(value)


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation as ``ImageOps.exif_transpose`` does, on an array."""
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1]
    if orientation == 5:
        return pixels.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(pixels, -1)
    if orientation == 7:
        return pixels.swapaxes(0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(pixels, 1)
    return pixels


def _scale16(values: np.ndarray) -> np.ndarray:
    """16-bit samples to 8 bits by the bit depth: round(v * 255 / 65535) = round(v / 257)."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _is_tiff_rgb16(img: Image.Image) -> bool:
    if img.format != "TIFF":
        return False
    tags = img.tag_v2  # type: ignore[attr-defined]
    bits = tags.get(_TIFF_BITS_PER_SAMPLE, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    return (
        tags.get(_TIFF_SAMPLES_PER_PIXEL, 1) == 3
        and tags.get(262) == _TIFF_PHOTOMETRIC_RGB
        and all(b == 16 for b in bits)
    )


def _tiff_rgb16(data: bytes | BinaryIO, img: Image.Image) -> np.ndarray | None:
    """Exact 16-bit RGB TIFF pixels scaled to 8 bits; None to fall back to Pillow.

    Pillow reads such files keeping only the high byte of each sample; tifffile reads the
    full samples so the scaling follows the bit depth.
    """
    try:
        import tifffile

        with tifffile.TiffFile(_stream(data)) as tif:
            page = tif.pages[0]
            pixels = page.asarray()
    except Exception:  # any failure means: let Pillow's reading stand
        return None
    if pixels.dtype != np.uint16 or pixels.shape != (img.height, img.width, 3):
        return None
    return _scale16(pixels)


_BAND_BYTES = 16 * 2**20


def _rgb_in_bands(img: Image.Image) -> np.ndarray:
    """An RGB image's pixels as one array, copied out of Pillow a band of rows at a time.

    ``np.asarray(img)`` goes through ``img.tobytes()``, a second full-size buffer; copying
    bands keeps the peak at Pillow's own pixels plus the result (see bench/memory_bench.py).

    Shape:
        return: (H, W, 3) uint8.
    """
    width, height = img.size
    out = np.empty((height, width, 3), dtype=np.uint8)
    band = max(1, _BAND_BYTES // (3 * width))
    for y in range(0, height, band):
        piece = img.crop((0, y, width, min(height, y + band)))
        out[y : y + piece.height] = np.asarray(piece, dtype=np.uint8)
    return out


def _to_rgb(img: Image.Image, name: str, notes: list[str]) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return _rgb_in_bands(img)
    if mode in ("L", "1"):
        grey = np.asarray(img.convert("L"), dtype=np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode.startswith("I;16"):
        grey = _scale16(np.asarray(img).astype(np.uint16))
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P":
        has_alpha = "transparency" in img.info or img.palette.mode == "RGBA"
        if not has_alpha:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
        return _flatten_alpha(np.asarray(img.convert("RGBA")), name, notes)
    if mode in ("RGBA", "LA", "PA", "RGBa"):
        return _flatten_alpha(np.asarray(img.convert("RGBA")), name, notes)
    if mode in ("CMYK", "YCbCr", "RGBX"):
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    if mode in ("I", "F"):
        kind = "32-bit integer" if mode == "I" else "floating-point"
        raise ImageRejected(
            f"{name!r} has {kind} pixels, whose brightness range is not defined. "
            "Save it as an 8-bit or 16-bit image and upload that."
        )
    raise ImageRejected(
        f"{name!r} uses the pixel format {mode!r}, which SmearLab cannot convert to RGB. "
        "Save it as an 8-bit RGB image and upload that."
    )


def _flatten_alpha(rgba: np.ndarray, name: str, notes: list[str]) -> np.ndarray:
    """Composite over white; a stain photo has no meaningful transparency."""
    alpha = rgba[:, :, 3:4].astype(np.uint32)
    rgb = rgba[:, :, :3].astype(np.uint32)
    if bool((alpha == 255).all()):
        return rgb.astype(np.uint8)
    notes.append(f"{name!r} has transparent pixels; they were composited over white.")
    flat = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return flat.astype(np.uint8)
