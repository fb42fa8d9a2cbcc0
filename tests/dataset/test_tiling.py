"""Tests for dataset.tiling: coverage, inward-shifted edges, small images, ids, assembly."""

from __future__ import annotations

import numpy as np
import pytest

from dataset.schema import UNLABELLED
from dataset.tiling import TileBox, assemble, tile_grid, tile_id

SIZES = [(1, 1), (63, 64), (64, 64), (65, 64), (100, 30), (256, 256), (257, 513), (640, 480)]


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize("tile", [32, 64, 256])
def test_every_pixel_is_covered_and_no_tile_leaves_the_image(width, height, tile):
    boxes = tile_grid(width, height, tile)
    covered = np.zeros((height, width), dtype=int)
    for b in boxes:
        assert b.x >= 0 and b.y >= 0
        assert b.x + b.w <= width and b.y + b.h <= height
        assert (b.w, b.h) == (min(tile, width), min(tile, height))
        covered[b.y : b.y + b.h, b.x : b.x + b.w] += 1
    assert covered.min() >= 1
    assert len({(b.x, b.y) for b in boxes}) == len(boxes)


def test_edge_tiles_shift_inward_instead_of_padding():
    boxes = tile_grid(640, 480, 256)
    assert sorted({b.x for b in boxes}) == [0, 256, 384]
    assert sorted({b.y for b in boxes}) == [0, 224]
    assert len(boxes) == 6


def test_exact_multiple_has_no_extra_tile():
    assert [(b.x, b.y) for b in tile_grid(512, 256, 256)] == [(0, 0), (256, 0)]


def test_image_smaller_than_a_tile_is_one_tile_of_its_own_size():
    assert tile_grid(40, 30, 256) == [TileBox(0, 0, 40, 30)]


def test_image_smaller_in_one_direction_keeps_its_height():
    boxes = tile_grid(300, 50, 256)
    assert boxes == [TileBox(0, 0, 256, 50), TileBox(44, 0, 256, 50)]


@pytest.mark.parametrize(("w", "h"), [(0, 10), (10, 0), (-5, 5)])
def test_empty_image_cannot_be_tiled(w, h):
    with pytest.raises(ValueError, match="Cannot tile"):
        tile_grid(w, h, 64)


def test_tile_id_format():
    assert tile_id("s0123456789ab", 7, 1234) == "s0123456789ab_x0007_y1234"


def test_assemble_later_labelled_pixels_win_and_unlabelled_never_erase():
    a = np.full((4, 4), 1, dtype=np.uint8)
    b = np.full((4, 4), UNLABELLED, dtype=np.uint8)
    b[:, 2:] = 2  # b's right half labelled, left half unlabelled
    out = assemble(6, 4, [(TileBox(0, 0, 4, 4), a), (TileBox(2, 0, 4, 4), b)])
    # Columns 2-3 overlap: b's unlabelled pixels leave a's labels, its labels win.
    assert out[:, :2].tolist() == [[1, 1]] * 4
    assert out[:, 2:4].tolist() == [[1, 1]] * 4
    assert out[:, 4:].tolist() == [[2, 2]] * 4
    out_reversed = assemble(6, 4, [(TileBox(2, 0, 4, 4), b), (TileBox(0, 0, 4, 4), a)])
    assert out_reversed[:, 2:4].tolist() == [[1, 1]] * 4


def test_assemble_leaves_untiled_pixels_unlabelled():
    out = assemble(5, 3, [])
    assert out.shape == (3, 5) and (out == UNLABELLED).all()


def test_assemble_refuses_a_mask_of_the_wrong_size():
    with pytest.raises(ValueError, match="does not fit"):
        assemble(8, 8, [(TileBox(0, 0, 4, 4), np.zeros((3, 4), dtype=np.uint8))])


def test_tiles_cut_and_assembled_give_back_the_whole_mask():
    rng = np.random.default_rng(3)
    whole = rng.integers(0, 4, size=(130, 200), dtype=np.uint8)
    boxes = tile_grid(200, 130, 64)
    pieces = [(b, whole[b.y : b.y + b.h, b.x : b.x + b.w]) for b in boxes]
    assert np.array_equal(assemble(200, 130, pieces), whole)
