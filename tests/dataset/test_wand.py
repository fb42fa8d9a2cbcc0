"""The magic wand: a click fills the cell under it, from the tile's colours or a model's mask."""

from __future__ import annotations

import numpy as np
import pytest

from dataset.wand import Click, cell_region, component_region, flood_region, to_lab


def _disc_tile() -> tuple[np.ndarray, np.ndarray]:
    """Plasma with one pink disc (radius 12 at (30, 20)) holding a purple nucleus."""
    yy, xx = np.mgrid[0:48, 0:64]
    rgb = np.empty((48, 64, 3), dtype=np.uint8)
    rgb[:] = (232, 214, 220)
    disc = (xx - 30) ** 2 + (yy - 20) ** 2 <= 12**2
    rgb[disc] = (205, 120, 130)
    rgb[(xx - 30) ** 2 + (yy - 20) ** 2 <= 4**2] = (95, 60, 150)
    noise = np.random.default_rng(0).integers(-4, 5, rgb.shape)
    return np.clip(rgb.astype(int) + noise, 0, 255).astype(np.uint8), disc


def test_a_click_on_a_cell_fills_the_cell_and_its_nucleus() -> None:
    rgb, disc = _disc_tile()
    region = flood_region(to_lab(rgb), Click(x=22, y=20))
    np.testing.assert_array_equal(region, disc)


def test_a_click_on_plasma_fills_the_plasma_around_the_cell() -> None:
    rgb, disc = _disc_tile()
    region = flood_region(to_lab(rgb), Click(x=2, y=2))
    np.testing.assert_array_equal(region, ~disc)


def test_a_larger_tolerance_grows_past_the_edge() -> None:
    rgb, disc = _disc_tile()
    lab = to_lab(rgb)
    assert flood_region(lab, Click(22, 20), tolerance=100).all()
    assert flood_region(lab, Click(22, 20), tolerance=3).sum() < disc.sum()


@pytest.mark.parametrize(
    ("click", "tolerance", "words"),
    [
        (Click(64, 0), 14, "outside the 64×48 tile"),
        (Click(0, -1), 14, "outside"),
        (Click(0, 0), 0, "tolerance"),
        (Click(0, 0), 101, "tolerance"),
    ],
)
def test_bad_clicks_and_tolerances_are_refused(click, tolerance, words) -> None:
    rgb, _ = _disc_tile()
    lab = to_lab(rgb)
    with pytest.raises(ValueError, match=words):
        flood_region(lab, click, tolerance)
    with pytest.raises(ValueError, match=words):
        cell_region(lab, click, tolerance)


def test_a_click_on_a_cell_refuses_a_bad_tolerance_too() -> None:
    rgb, _ = _disc_tile()
    with pytest.raises(ValueError, match="tolerance"):
        cell_region(to_lab(rgb), Click(22, 20), 0)


def _noisy(rgb: np.ndarray) -> np.ndarray:
    noise = np.random.default_rng(1).integers(-4, 5, rgb.shape)
    return np.clip(rgb.astype(int) + noise, 0, 255).astype(np.uint8)


def test_the_cell_region_cuts_touching_cells_apart() -> None:
    yy, xx = np.mgrid[0:64, 0:96]
    left = (xx - 30) ** 2 + (yy - 32) ** 2 <= 16**2
    right = (xx - 60) ** 2 + (yy - 32) ** 2 <= 16**2  # overlaps ``left`` by 2 px
    rgb = np.empty((64, 96, 3), dtype=np.uint8)
    rgb[:] = (232, 214, 220)
    rgb[left | right] = (205, 120, 130)
    lab = to_lab(_noisy(rgb))
    click = Click(x=26, y=32)
    assert flood_region(lab, click).sum() == (left | right).sum()  # the flood takes both
    region = cell_region(lab, click)
    assert region[left & ~right].all()
    assert not region[right & ~left].any()


def test_the_cell_region_takes_a_white_cell_whole_from_a_click_on_its_nucleus() -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    cell = (xx - 32) ** 2 + (yy - 32) ** 2 <= 20**2
    nucleus = (xx - 32) ** 2 + (yy - 32) ** 2 <= 11**2
    rgb = np.empty((64, 64, 3), dtype=np.uint8)
    rgb[:] = (232, 214, 220)
    rgb[cell] = (190, 170, 215)  # pale cytoplasm, far from the nucleus in colour
    rgb[nucleus] = (95, 60, 150)
    lab = to_lab(_noisy(rgb))
    click = Click(x=32, y=32)
    np.testing.assert_array_equal(flood_region(lab, click), nucleus)
    region = cell_region(lab, click)
    assert (region & cell).sum() / (region | cell).sum() > 0.95


def test_the_cell_region_of_a_click_on_plasma_or_a_flat_tile_is_the_flood() -> None:
    rgb, _ = _disc_tile()
    lab = to_lab(rgb)
    np.testing.assert_array_equal(cell_region(lab, Click(2, 2)), flood_region(lab, Click(2, 2)))
    flat = to_lab(np.full((16, 16, 3), 200, dtype=np.uint8))
    assert cell_region(flat, Click(3, 3)).all()


def test_the_model_component_under_the_click() -> None:
    pred = np.zeros((20, 20), dtype=np.uint8)
    pred[2:8, 2:8] = 2
    pred[4:6, 4:6] = 3  # a hole of another class inside the cell: filled
    pred[12:18, 12:18] = 2  # another cell of the same class: not taken
    region = component_region(pred, Click(3, 3), background=0)
    expected = np.zeros_like(region)
    expected[2:8, 2:8] = True
    np.testing.assert_array_equal(region, expected)
    assert not component_region(pred, Click(0, 0), background=0).any()
    pred[0, 0] = 255
    assert not component_region(pred, Click(0, 0), background=None).any()
