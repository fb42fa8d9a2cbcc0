"""Tests for dataset.images: every bad upload is built in memory."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from dataset.images import (
    ImageRejected,
    decode_image,
    encode_png_lossless,
    open_checked,
    pixel_sha256,
    smear_id_for,
)

RNG = np.random.default_rng(7)
PATTERN = RNG.integers(0, 256, size=(12, 20, 3), dtype=np.uint8)


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height RGB pixels, with a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def bmp_header_only(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 54) + info + b"\x00" * 16


def png_chunk_types(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


# --- refusals -------------------------------------------------------------------------


def test_empty_file_is_refused_by_name():
    with pytest.raises(ImageRejected, match=r"'smear1\.png' is empty"):
        decode_image(b"", "smear1.png")


@pytest.mark.parametrize("cut", [-2, -200, 0.5])
def test_truncated_jpeg_is_refused(cut):
    data = encode(Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")
    end = int(len(data) * cut) if isinstance(cut, float) else len(data) + cut
    with pytest.raises(ImageRejected, match=r"'cut\.jpg' is (truncated|damaged)"):
        decode_image(data[:end], "cut.jpg")


def test_truncated_png_is_refused():
    data = encode(Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "PNG")
    with pytest.raises(ImageRejected, match=r"'cut\.png'"):
        decode_image(data[: len(data) // 2], "cut.png")


def test_text_named_png_is_refused_as_text():
    with pytest.raises(ImageRejected, match=r"'notes\.png' is not a PNG.*looks like text"):
        decode_image(b"patient 12, Giemsa, 100x oil\n", "notes.png")


def test_other_formats_are_refused_with_the_accepted_list():
    gif = encode(Image.new("RGB", (4, 4)), "GIF")
    with pytest.raises(ImageRejected, match=r"GIF.*PNG, JPEG, TIFF, BMP"):
        decode_image(gif, "anim.gif")


@pytest.mark.parametrize("header", [png_header_only, bmp_header_only])
def test_huge_header_is_refused_before_decoding(header):
    # 50,000² pixels would be 7.5 GB of RGB; the file itself is under 100 bytes.
    with pytest.raises(ImageRejected, match=r"'bomb' claims more pixels"):
        decode_image(header(50_000, 50_000), "bomb")


@pytest.mark.parametrize("header", [png_header_only, bmp_header_only])
def test_header_over_max_pixels_is_refused_by_size_not_by_decoding(header):
    # Between Pillow's warning and error thresholds: only our own check can refuse it, and
    # the message gives the header's size (a decode attempt would report truncation).
    with pytest.raises(ImageRejected, match=r"'big' is 12000 × 12000 pixels.*limit is 100\.0"):
        decode_image(header(12_000, 12_000), "big")


def test_max_pixels_is_configurable():
    data = encode(Image.fromarray(PATTERN), "PNG")
    with pytest.raises(ImageRejected, match=r"20 × 12 pixels"):
        decode_image(data, "small.png", max_pixels=200)
    assert decode_image(data, "small.png", max_pixels=240).width == 20


@pytest.mark.parametrize(
    ("array", "what"),
    [
        (np.full((4, 4), 1.5, dtype=np.float32), "floating-point"),
        (np.full((4, 4), 70_000, dtype=np.int32), "32-bit integer"),
    ],
)
def test_unscalable_pixel_formats_are_refused(array, what):
    with pytest.raises(ImageRejected, match=what):
        decode_image(encode(Image.fromarray(array), "TIFF"), "odd.tif")


def test_truncated_images_flag_left_on_elsewhere_is_loud(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        decode_image(encode(Image.fromarray(PATTERN), "PNG"), "a.png")


# --- accepted formats and pixel modes -------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "BMP"])
def test_lossless_formats_decode_exactly(fmt):
    result = decode_image(encode(Image.fromarray(PATTERN), fmt), f"a.{fmt.lower()}")
    assert result.source_format == fmt
    assert (result.width, result.height) == (20, 12)
    assert result.rgb.dtype == np.uint8 and result.rgb.shape == (12, 20, 3)
    np.testing.assert_array_equal(result.rgb, PATTERN)
    assert result.warnings == ()


def test_jpeg_decodes_close_to_source():
    flat = np.zeros((16, 16, 3), dtype=np.uint8)
    flat[:] = (200, 40, 90)
    result = decode_image(encode(Image.fromarray(flat), "JPEG", quality=95), "a.jpg")
    assert result.source_format == "JPEG"
    assert np.abs(result.rgb.astype(int) - flat).max() <= 3


def test_greyscale_expands_to_rgb():
    grey = PATTERN[:, :, 0]
    result = decode_image(encode(Image.fromarray(grey), "PNG"), "g.png")
    np.testing.assert_array_equal(result.rgb, np.repeat(grey[:, :, None], 3, axis=2))


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF"])
def test_one_bit_becomes_black_and_white(fmt):
    img = Image.new("1", (5, 3), 0)
    img.putpixel((1, 2), 1)
    rgb = decode_image(encode(img, fmt), "bw").rgb
    assert rgb[2, 1].tolist() == [255, 255, 255]
    assert rgb[0, 0].tolist() == [0, 0, 0]
    assert int(rgb.sum()) == 3 * 255


def palette_image() -> Image.Image:
    img = Image.new("P", (4, 3), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((2, 1), 1)
    return img


def test_palette_without_transparency():
    result = decode_image(encode(palette_image(), "PNG"), "p.png")
    assert result.rgb[0, 0].tolist() == [255, 0, 0]
    assert result.rgb[1, 2].tolist() == [0, 0, 255]
    assert result.warnings == ()


def test_palette_with_transparency_is_composited_over_white():
    result = decode_image(encode(palette_image(), "PNG", transparency=0), "p.png")
    assert result.rgb[0, 0].tolist() == [255, 255, 255]
    assert result.rgb[1, 2].tolist() == [0, 0, 255]
    assert any("over white" in w for w in result.warnings)


def test_rgba_is_composited_over_white_with_a_warning():
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., :3] = (100, 0, 200)
    rgba[..., 3] = [[255, 0, 128], [255, 255, 255]]
    result = decode_image(encode(Image.fromarray(rgba), "PNG"), "t.png")
    assert result.rgb[0, 0].tolist() == [100, 0, 200]
    assert result.rgb[0, 1].tolist() == [255, 255, 255]
    # 100·128/255 + 255·127/255 = 177.2; 200·128/255 + 127 = 227.4
    assert result.rgb[0, 2].tolist() == [177, 127, 227]
    assert result.warnings == ("'t.png' has transparent pixels; they were composited over white.",)


def test_opaque_rgba_needs_no_warning():
    rgba = np.dstack([PATTERN, np.full(PATTERN.shape[:2], 255, np.uint8)])
    result = decode_image(encode(Image.fromarray(rgba), "PNG"), "o.png")
    np.testing.assert_array_equal(result.rgb, PATTERN)
    assert result.warnings == ()


def test_grey_with_alpha():
    la = Image.fromarray(
        np.dstack([np.full((2, 2), 100, np.uint8), np.full((2, 2), 128, np.uint8)])
    )
    assert la.mode == "LA"
    result = decode_image(encode(la, "PNG"), "la.png")
    assert result.rgb[0, 0].tolist() == [177, 177, 177]


def test_cmyk_jpeg_converts_to_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red ink-wise
    data = encode(cmyk, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    rgb = decode_image(data, "print.jpg").rgb
    assert np.abs(rgb[8, 8].astype(int) - [255, 0, 0]).max() <= 3


SIXTEEN = np.array([0, 128, 129, 257, 32767, 32768, 51200, 65535], dtype=np.uint16)
# round(v * 255 / 65535); 51200 gives 199 where keeping the high byte would give 200.
EIGHT = [0, 0, 1, 1, 127, 128, 199, 255]


def test_sixteen_bit_greyscale_png_scales_by_bit_depth():
    img = Image.fromarray(SIXTEEN.reshape(2, 4))
    assert img.mode == "I;16"
    rgb = decode_image(encode(img, "PNG"), "g16.png").rgb
    assert rgb[:, :, 0].ravel().tolist() == EIGHT
    assert (rgb[:, :, 0] == rgb[:, :, 2]).all()


def test_sixteen_bit_rgb_tiff_scales_by_bit_depth():
    tifffile = pytest.importorskip("tifffile")
    pixels = np.stack([SIXTEEN, SIXTEEN[::-1], np.full_like(SIXTEEN, 257)], axis=-1)
    pixels = pixels.reshape(2, 4, 3)
    out = io.BytesIO()
    tifffile.imwrite(out, pixels, photometric="rgb")
    rgb = decode_image(out.getvalue(), "rgb16.tif").rgb
    assert rgb[:, :, 0].ravel().tolist() == EIGHT
    assert rgb[:, :, 1].ravel().tolist() == EIGHT[::-1]
    assert (rgb[:, :, 2] == 1).all()


def test_multipage_tiff_takes_first_page_with_warning():
    pages = [Image.new("RGB", (8, 6), (40 * i, 10, 10)) for i in range(3)]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    result = decode_image(data, "stack.tif")
    assert result.rgb[0, 0].tolist() == [0, 10, 10]
    assert result.warnings == ("'stack.tif' has 3 pages; only the first was used.",)


# --- orientation, metadata, identity --------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_exif_transpose(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(PATTERN), "PNG", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    result = decode_image(data, "o.png")
    np.testing.assert_array_equal(result.rgb, expected)
    assert (result.height, result.width) == expected.shape[:2]


def test_jpeg_exif_rotation_is_applied():
    img = np.zeros((8, 16, 3), dtype=np.uint8)
    img[:, :8] = (255, 0, 0)
    img[:, 8:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # camera held rotated: display turned 90° clockwise
    result = decode_image(encode(Image.fromarray(img), "JPEG", quality=95, exif=exif), "r.jpg")
    assert (result.width, result.height) == (8, 16)
    assert result.rgb[2, 4, 0] > 200 and result.rgb[2, 4, 2] < 50  # left half is now on top
    assert result.rgb[13, 4, 2] > 200 and result.rgb[13, 4, 0] < 50


def test_lossless_png_carries_no_metadata_and_round_trips():
    exif = Image.Exif()
    exif[0x0110] = "SecretScope 3000"
    source = encode(Image.fromarray(PATTERN), "PNG", exif=exif, icc_profile=b"any-icc-bytes")
    assert {"exif", "icc_profile"} <= set(Image.open(io.BytesIO(source)).info)
    decoded = decode_image(source, "meta.png")
    png = encode_png_lossless(decoded.rgb)
    assert png_chunk_types(png) == [b"IHDR", b"IDAT", b"IEND"]
    reopened = Image.open(io.BytesIO(png))
    assert "exif" not in reopened.info and "icc_profile" not in reopened.info
    assert not reopened.getexif()
    assert reopened.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(reopened), PATTERN)


@pytest.mark.parametrize("bad", [PATTERN[:, :, 0], PATTERN.astype(np.uint16), PATTERN[:, :, :2]])
def test_lossless_png_refuses_non_rgb8(bad):
    with pytest.raises(ValueError, match="RGB"):
        encode_png_lossless(bad)


def test_pixel_hash_is_the_same_for_a_png_copy_of_decoded_jpeg_pixels():
    jpeg = encode(Image.fromarray(RNG.integers(0, 256, (16, 24, 3), dtype=np.uint8)), "JPEG")
    from_jpeg = decode_image(jpeg, "a.jpg").rgb
    from_png = decode_image(encode_png_lossless(from_jpeg), "a.png").rgb
    assert pixel_sha256(from_jpeg) == pixel_sha256(from_png)
    assert smear_id_for(from_jpeg) == smear_id_for(from_png)


def test_pixel_hash_is_the_sha256_of_the_rgb_bytes():
    flat = np.zeros((4, 6, 3), dtype=np.uint8)
    assert pixel_sha256(flat) == hashlib.sha256(flat.tobytes()).hexdigest()
    assert pixel_sha256(flat) != pixel_sha256(flat + 1)
    assert re.fullmatch(r"[0-9a-f]{64}", pixel_sha256(flat))
    assert re.fullmatch(r"s[0-9a-f]{12}", smear_id_for(flat))
    assert smear_id_for(flat) == "s" + pixel_sha256(flat)[:12]


def test_open_checked_keeps_the_mode_for_mask_imports():
    img, notes = open_checked(encode(palette_image(), "PNG"), "m.png")
    try:
        assert img.mode == "P" and notes == []
    finally:
        img.close()
