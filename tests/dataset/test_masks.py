"""Tests for dataset.masks: storage, level-map imports, canvas rasterisation, display."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dataset.masks import (
    LevelMap,
    MaskRejected,
    apply_levels,
    apply_paint,
    colorize,
    decode_mask_png,
    encode_mask_png,
    fill_rest,
    load_mask_file,
    overlay,
    parse_levels,
    threshold_canvas_rgba,
    unmatched_levels,
)
from dataset.schema import UNLABELLED

NAMES = ("background", "erythrocyte", "leukocyte", "platelet")
RED, BLUE, PURPLE, ERASER = "#e53935", "#1e88e5", "#7e57c2", "#ffffff"
COLOURS = {RED: 1, BLUE: 2, PURPLE: 3, ERASER: UNLABELLED}
CANVAS, TILE = (512, 512), (256, 256)


def png_bytes(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


# --- storage ------------------------------------------------------------------------------


def test_mask_png_round_trip_is_exact():
    mask = np.random.default_rng(3).integers(0, 256, size=(37, 53), dtype=np.uint8)
    mask[0, 0] = UNLABELLED
    data = encode_mask_png(mask)
    assert Image.open(io.BytesIO(data)).mode == "L"
    back = decode_mask_png(data)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, mask)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((4, 4), dtype=np.uint16), "uint8"),
        (np.zeros((4, 4, 3), dtype=np.uint8), "2-D"),
        ([[0, 1]], "numpy array"),
    ],
)
def test_mask_png_refuses_wrong_arrays(bad, match):
    with pytest.raises(ValueError, match=match):
        encode_mask_png(bad)


def test_decode_mask_refuses_colour_and_garbage():
    with pytest.raises(ValueError, match="single-channel"):
        decode_mask_png(png_bytes(Image.new("RGB", (4, 4))))
    with pytest.raises(ValueError, match="not a readable PNG"):
        decode_mask_png(b"\x89PNG broken")


# --- level maps -----------------------------------------------------------------------------


def test_parse_levels_reads_pairs_in_any_order():
    level_map = parse_levels(" 255=leukocyte; 0=unlabelled,\n155 = Leukocyte ", NAMES)
    assert level_map == LevelMap(
        levels=(0, 155, 255),
        classes=(UNLABELLED, 2, 2),
        names=("unlabelled", "leukocyte", "leukocyte"),
    )


def test_parse_levels_unknown_class_lists_valid_names():
    with pytest.raises(ValueError, match=r"'monocyte'.*background, erythrocyte.*unlabelled"):
        parse_levels("0=background,200=monocyte", NAMES)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "empty"),
        ("0:background", "Cannot read '0:background'"),
        ("x=background", "Cannot read"),
        ("300=background", "outside 0..255"),
        ("0=background,0=platelet", "given twice"),
    ],
)
def test_parse_levels_bad_syntax(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_levels(spec, NAMES)


def test_anti_aliased_mask_imports_to_the_right_classes():
    classes = np.full((16, 16), 0, dtype=np.uint8)  # background
    classes[2:9, 3:10] = 1
    classes[10:14, 4:15] = 2
    classes[3:7, 11:15] = 3
    levels = np.array([0, 80, 160, 240], dtype=np.uint8)
    grey = Image.fromarray(levels[classes]).resize((128, 128), Image.Resampling.BILINEAR)
    smooth = np.asarray(grey)
    assert len(np.unique(smooth)) > 4  # really anti-aliased
    level_map = parse_levels("0=background,80=erythrocyte,160=leukocyte,240=platelet", NAMES)
    result = apply_levels(smooth, level_map, name="aa.png")
    assert set(np.unique(result)) <= {0, 1, 2, 3}
    expected = np.kron(classes, np.ones((8, 8), dtype=np.uint8))
    # Away from class borders the import must be exact.
    edge = np.zeros_like(expected, dtype=bool)
    for axis in (0, 1):
        change = np.diff(expected.astype(int), axis=axis) != 0
        pad = [(0, 0), (0, 0)]
        pad[axis] = (0, 1)
        edge |= np.pad(change, pad)
        pad[axis] = (1, 0)
        edge |= np.pad(change, pad)
    grown = edge.copy()
    for shift in range(-4, 5):
        grown |= np.roll(edge, shift, axis=0) | np.roll(edge, shift, axis=1)
    np.testing.assert_array_equal(result[~grown], expected[~grown])


def test_wrong_level_map_is_refused_naming_the_file():
    grey = np.zeros((20, 20), dtype=np.uint8)
    grey[5:15, 5:15] = 200
    level_map = parse_levels("0=background,100=leukocyte", NAMES)
    with pytest.raises(MaskRejected, match=r"'cells_07\.png' has 100 pixels .* grey 200: 100 px"):
        apply_levels(grey, level_map, name="cells_07.png")


def test_any_stray_grey_is_an_error_unless_lenient_or_within_the_band():
    grey = np.zeros((100, 100), dtype=np.uint8)
    grey[0, :3] = 200  # 3 pixels (0.03 %), 100 levels from 100
    grey[1, :5] = 130  # within 40 of 100: leukocyte
    level_map = parse_levels("0=background,100=leukocyte", NAMES)
    with pytest.raises(MaskRejected, match=r"'m\.png' has 3 pixels .* more than 40 .* grey 200"):
        apply_levels(grey, level_map, name="m.png")
    lenient = apply_levels(grey, level_map, name="m.png", lenient=True)
    assert (lenient[0, :3] == UNLABELLED).all() and (lenient[1, :5] == 2).all()
    assert unmatched_levels(grey, level_map) == {200: 3}
    wide = apply_levels(grey, level_map, name="m.png", tolerance=100)
    assert (wide[0, :3] == 2).all()  # nearest level within the wider band
    with pytest.raises(MaskRejected, match="grey 130: 5 px"):
        apply_levels(grey, level_map, name="m.png", tolerance=20)


def test_load_mask_file_modes():
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[1, 1] = (255, 255, 255)
    assert load_mask_file(png_bytes(Image.fromarray(rgb)), "rgb.png")[1, 1] == 255
    small = Image.fromarray(np.array([[0, 1], [2, 3]], dtype=np.uint16))
    np.testing.assert_array_equal(load_mask_file(png_bytes(small), "idx16.png"), [[0, 1], [2, 3]])
    wide = Image.fromarray(np.array([[0, 257], [51200, 65535]], dtype=np.uint16))
    np.testing.assert_array_equal(load_mask_file(png_bytes(wide), "g16.png"), [[0, 1], [199, 255]])
    palette = Image.new("P", (2, 2), 3)
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    assert (load_mask_file(png_bytes(palette), "p.png") == 3).all()
    with pytest.raises(MaskRejected, match=r"'notes\.png'"):
        load_mask_file(b"not a mask at all", "notes.png")


# --- canvas paint -> masks ---------------------------------------------------------------


def test_fill_rest_and_apply_paint_checks():
    mask = np.array([[UNLABELLED, 2], [1, UNLABELLED]], dtype=np.uint8)
    np.testing.assert_array_equal(fill_rest(mask, 0), [[0, 2], [1, 0]])
    with pytest.raises(ValueError, match=r"0\.\.254"):
        fill_rest(mask, UNLABELLED)
    with pytest.raises(ValueError, match="shape"):
        apply_paint(mask, mask, np.zeros((3, 3), dtype=bool))


def test_threshold_fallback_never_bleeds_into_a_third_class():
    big = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    draw.line([(20, 128), (236, 128)], fill=(0xE5, 0x39, 0x35, 255), width=40)
    draw.line([(128, 20), (128, 236)], fill=(0x1E, 0x88, 0xE5, 255), width=40)
    canvas = np.asarray(big.resize((64, 64), Image.Resampling.BOX))  # anti-aliased edges
    assert len({tuple(p) for p in canvas.reshape(-1, 4)}) > 10
    values, touched = threshold_canvas_rgba(canvas, COLOURS)
    assert set(np.unique(values)) == {1, 2, UNLABELLED}  # never purple (3)
    assert values[32, 8] == 1 and values[8, 32] == 2
    assert not touched[0, 0] and not touched[canvas[:, :, 3] < 128].any()
    halved, _ = threshold_canvas_rgba(canvas, COLOURS, tile_size=(32, 32))
    assert halved.shape == (32, 32) and halved[16, 4] == 1


# --- display ------------------------------------------------------------------------------


def test_overlay_blends_labelled_pixels_only():
    rgb = np.full((2, 2, 3), 100, dtype=np.uint8)
    mask = np.array([[1, UNLABELLED], [0, 1]], dtype=np.uint8)
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[1] = (200, 0, 100)
    palette[UNLABELLED] = (255, 255, 255)
    out = overlay(rgb, mask, palette, 0.25)
    assert out[0, 0].tolist() == [125, 75, 100]
    assert out[0, 1].tolist() == [100, 100, 100]
    assert out[1, 0].tolist() == [75, 75, 75]
    with pytest.raises(ValueError, match="opacity"):
        overlay(rgb, mask, palette, 1.5)


def test_colorize_is_transparent_where_unlabelled():
    mask = np.array([[2, UNLABELLED]], dtype=np.uint8)
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[2] = (1, 2, 3)
    out = colorize(mask, palette, alpha=200)
    assert out.shape == (1, 2, 4)
    assert out[0, 0].tolist() == [1, 2, 3, 200]
    assert out[0, 1, 3] == 0
