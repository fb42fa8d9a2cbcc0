"""Tests for dataset.png: exact round trips, header checks, stable bytes, and that no second
PNG codec creeps back into the packages."""

from __future__ import annotations

import ast
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset.images import encode_png_lossless
from dataset.png import (
    PngError,
    PngHeader,
    decode_mask,
    decode_rgb,
    encode_indexed,
    encode_mask,
    encode_rgb,
    mask_histogram,
    read_header,
)

ROOT = Path(__file__).resolve().parents[2]


def pillow_png(img: Image.Image, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG", **params)
    return out.getvalue()


def chunk_types(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


# --- tiles -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (32, 32), (33, 64), (480, 640)])
def test_fast_png_round_trips_exactly(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    rgb[: shape[0] // 2] = 200  # flat rows as well as noise
    png = encode_rgb(rgb)
    assert png == encode_png_lossless(rgb)
    assert chunk_types(png) == [b"IHDR", b"IDAT", b"IEND"]
    np.testing.assert_array_equal(decode_rgb(png), rgb)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), rgb)  # any reader
    view = np.zeros((40, 40, 3), np.uint8)[3:20, 5:9]  # a non-contiguous crop
    view[::2] = rng.integers(0, 256, view[::2].shape, dtype=np.uint8)
    np.testing.assert_array_equal(decode_rgb(encode_rgb(view)), view)
    with pytest.raises(ValueError, match="uint8"):
        encode_rgb(rgb.astype(np.float32))


def test_fast_png_is_no_larger_than_a_tenth_over_pillows_fastest_on_a_smear(make_smear):
    rgb = make_smear(256, 192, seed=4).rgb
    assert len(encode_rgb(rgb)) <= 1.1 * len(pillow_png(Image.fromarray(rgb), compress_level=1))


def test_decode_rgb_refuses_what_is_no_rgb_png() -> None:
    with pytest.raises(PngError, match="8-bit RGB PNG; this one is 'L'"):
        decode_rgb(pillow_png(Image.new("L", (4, 4))))
    with pytest.raises(PngError, match="not a readable PNG") as err:
        decode_rgb(b"\x89PNG broken")
    assert err.value.mode is None and err.value.detail
    with pytest.raises(PngError, match="not a readable PNG"):  # a JPEG is no stored tile
        out = io.BytesIO()
        Image.new("RGB", (4, 4)).save(out, format="JPEG")
        decode_rgb(out.getvalue())


# --- masks -------------------------------------------------------------------------------
def test_mask_round_trip_is_exact_and_its_bytes_stable() -> None:
    mask = np.arange(48 * 40, dtype=np.uint32).reshape(40, 48).astype(np.uint8) % 5
    mask[::7] = 255
    png = encode_mask(mask)
    np.testing.assert_array_equal(decode_mask(png), mask)
    assert read_header(png) == PngHeader(48, 40, "L")
    # The bytes the store has always written (Pillow, zlib level 1): a release's checksums
    # and "copied byte for byte" depend on the same pixels giving the same bytes.
    assert png == pillow_png(Image.fromarray(mask), compress_level=1)
    assert hashlib.sha256(png).hexdigest() == hashlib.sha256(encode_mask(mask.copy())).hexdigest()
    counts = mask_histogram(png)
    assert counts.shape == (256,) and counts.dtype == np.int64
    np.testing.assert_array_equal(counts, np.bincount(mask.ravel(), minlength=256))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "I;16", "P"])
def test_decode_mask_refuses_other_pixel_formats_and_names_them(mode: str) -> None:
    png = pillow_png(Image.new(mode, (4, 3)))
    with pytest.raises(PngError, match="single-channel 8-bit PNG") as err:
        decode_mask(png)
    assert err.value.mode == mode
    with pytest.raises(PngError, match="single-channel"):
        mask_histogram(png)


def test_decode_mask_takes_palette_indices_only_when_asked() -> None:
    indices = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    png = encode_mask(indices)
    palette_png = encode_indexed(indices, np.zeros((256, 3), np.uint8))
    assert read_header(palette_png).mode == "P"
    np.testing.assert_array_equal(decode_mask(palette_png, palette_ok=True), indices)
    np.testing.assert_array_equal(decode_mask(png, palette_ok=True), indices)
    with pytest.raises(PngError, match="'P'"):
        decode_mask(palette_png)


def test_encode_indexed_keeps_values_and_shows_the_palette() -> None:
    mask = np.array([[0, 1, 255]], dtype=np.uint8)
    palette = np.zeros((256, 3), np.uint8)
    palette[1] = (229, 57, 53)
    with Image.open(io.BytesIO(encode_indexed(mask, palette))) as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im), mask)
        assert tuple(im.convert("RGB").getpixel((1, 0))) == (229, 57, 53)


@pytest.mark.parametrize(
    "data", [b"", b"GIF89a" + b"\0" * 40, b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDX" + b"\0" * 20]
)
def test_read_header_says_none_for_what_is_no_png(data: bytes) -> None:
    assert read_header(data) is None


def test_read_header_reads_a_rare_format_as_unknown() -> None:
    png = pillow_png(Image.new("1", (5, 2)))  # 1-bit grey
    assert read_header(png) == PngHeader(5, 2, "?")


# --- one codec ---------------------------------------------------------------------------
# Where the project's code may decode or encode image bytes itself:
# - dataset/png.py: every PNG of a tile or mask the workspace stores, releases or exports;
# - dataset/images.py: uploaded photos and mask files, in PNG, JPEG, TIFF or BMP, opened with
#   their size checked before any pixel is decoded (open_checked).
# Drawing a PIL image from an array (pages/label.py shows a mask that way) is no codec.
CODEC_HOMES = {"dataset/png.py", "dataset/images.py"}
PACKAGES = ("dataset", "training", "model_zoo", "pages")


def codec_uses(path: Path) -> list[str]:
    """``line: what`` for each place ``path`` decodes or encodes image bytes by itself."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if (
                name in ("open", "imdecode", "imencode", "imread", "imwrite")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("Image", "cv2", "imageio", "iio")
            ):
                found.append(f"{node.lineno}: {node.func.value.id}.{name}(")
            elif name == "save" and any(k.arg == "format" for k in node.keywords):
                found.append(f"{node.lineno}: .save(format=...)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            if node.value.startswith((b"\x89PNG", b"IHDR", b"IDAT")):
                found.append(f"{node.lineno}: PNG bytes {node.value[:8]!r}")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "PIL"
            and any(a.name.endswith("ImagePlugin") for a in node.names)
        ):
            found.append(f"{node.lineno}: from PIL import *ImagePlugin")
    return found


def test_the_codec_reader_sees_each_way_of_coding(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import cv2\n"
        "from PIL import Image, PngImagePlugin\n"
        "def f(data, arr, buf):\n"
        "    Image.open(data)\n"
        "    cv2.imdecode(arr, 0)\n"
        "    Image.fromarray(arr).save(buf, format='PNG')\n"
        "    return b'\\x89PNG\\r\\n\\x1a\\n'\n"
        "def g(arr):\n"
        "    return Image.fromarray(arr).resize((2, 2))\n"
    )
    assert sorted(int(u.split(":")[0]) for u in codec_uses(module)) == [2, 4, 5, 6, 7]


def test_pngs_are_coded_only_in_dataset_png_and_uploads_only_in_dataset_images() -> None:
    files = [ROOT / "app.py"] + [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    stray = [
        f"{p.relative_to(ROOT)}:{use}"
        for p in files
        if p.relative_to(ROOT).as_posix() not in CODEC_HOMES
        for use in codec_uses(p)
    ]
    assert stray == [], "decode and encode PNGs with dataset.png; uploads with dataset.images"
