"""Smear analysis: object counts (touching cells split), shares, sizes, overlay."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dataset.schema import UNLABELLED, ClassSchema
from training.analysis import analyse_image, analyse_mask, label_objects, overlay
from training.inference import InferenceConfig

CLASSES = ["background", "erythrocyte", "leukocyte", "platelet"]


def _disc(mask: np.ndarray, cy: int, cx: int, r: int, value: int) -> None:
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = value


@pytest.fixture()
def smear() -> np.ndarray:
    mask = np.zeros((120, 160), np.uint8)
    _disc(mask, 30, 30, 10, 1)
    _disc(mask, 30, 47, 10, 1)  # touches the one before: one component, two cells
    _disc(mask, 85, 30, 10, 1)
    _disc(mask, 80, 100, 14, 2)
    for cy, cx in [(15, 130), (50, 140), (100, 145)]:
        _disc(mask, cy, cx, 2, 3)
    yy, xx = np.mgrid[:120, :160]
    mask[((yy - 30) / 7) ** 2 + ((xx - 95) / 16) ** 2 <= 1] = 1  # an oval red cell stays one
    mask[110:, :20] = UNLABELLED
    return mask


def test_counts_split_touching_discs_and_keep_an_oval_whole(smear):
    result = analyse_mask(smear, CLASSES)
    assert result.row("erythrocyte").count == 4
    assert result.row("leukocyte").count == 1
    assert result.row("platelet").count == 3
    assert result.row("background").count is None
    assert result.row("erythrocyte").count_share == pytest.approx(4 / 8)


def test_without_watershed_touching_discs_count_once(smear):
    assert analyse_mask(smear, CLASSES, split=()).row("erythrocyte").count == 3


def test_shares_and_sizes_leave_unlabelled_pixels_out(smear):
    result = analyse_mask(smear, CLASSES, um_per_px=0.5)
    labelled = int((smear != UNLABELLED).sum())
    assert result.labelled_pixels == labelled
    for i, name in enumerate(CLASSES):
        row = result.row(name)
        assert row.pixels == int((smear == i).sum())
        assert row.pixel_share == pytest.approx(row.pixels / labelled)
    leuk = result.row("leukocyte")
    assert leuk.mean_object_px == leuk.pixels
    assert leuk.mean_object_um2 == pytest.approx(leuk.pixels * 0.25)
    rows = result.to_rows()
    assert [r["class_name"] for r in rows] == CLASSES and "count_share" in rows[0]
    features = result.features()
    assert features["platelet count"] == 3.0 and "background count" not in features


def test_specks_below_the_minimum_size_are_not_objects():
    mask = np.zeros((40, 40), np.uint8)
    mask[5, 5] = 3
    _disc(mask, 20, 20, 3, 3)
    assert analyse_mask(mask, CLASSES, min_object_px=4).row("platelet").count == 1
    assert label_objects(mask == 3, split=False, min_object_px=1).max() == 2


def test_empty_and_bad_masks():
    empty = analyse_mask(np.full((10, 10), UNLABELLED, np.uint8), CLASSES)
    assert empty.row("erythrocyte").count == 0 and empty.row("erythrocyte").pixel_share is None
    with pytest.raises(ValueError, match="class index 7"):
        analyse_mask(np.full((4, 4), 7, np.uint8), CLASSES)
    with pytest.raises(KeyError, match="background, erythrocyte"):
        empty.row("neutrophil")


def test_overlay_tints_labelled_pixels_only():
    image = np.full((4, 4, 3), 100, np.uint8)
    mask = np.full((4, 4), UNLABELLED, np.uint8)
    mask[0, 0], mask[0, 1] = 1, 0
    schema = ClassSchema.from_names(CLASSES)
    out = overlay(image, mask, schema.palette(), alpha=1.0)
    assert out[0, 0].tolist() == list(schema.rgb(1)) and out[0, 1].tolist() == list(schema.rgb(0))
    assert (out[1:] == 100).all()
    half = overlay(image, mask, ["#000000", "#c80000"], alpha=0.5)
    assert half[0, 0].tolist() == [150, 50, 50]
    with pytest.raises(ValueError, match="no colour"):
        overlay(image, np.full((4, 4), 3, np.uint8), ["#000000"])


def test_analyse_image_predicts_then_counts():
    class RedIsCell(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            red = (x[:, :1] - x[:, 1:2]) * 5
            zero = torch.zeros_like(red) - 10
            return torch.cat([-red, red, zero, zero], dim=1)

    image = np.full((64, 96, 3), 220, np.uint8)
    mask = np.zeros((64, 96), np.uint8)
    _disc(mask, 20, 20, 8, 1)
    _disc(mask, 40, 70, 8, 1)
    image[mask == 1] = (220, 40, 40)
    result, predicted = analyse_image(RedIsCell(), image, CLASSES, InferenceConfig(window=64))
    assert (predicted == mask).all()
    assert result.row("erythrocyte").count == 2


def test_a_red_cell_with_a_pale_centre_is_one_object():
    mask = np.zeros((60, 60), np.uint8)
    _disc(mask, 30, 30, 14, 1)
    _disc(mask, 30, 30, 5, 0)
    assert analyse_mask(mask, CLASSES).row("erythrocyte").count == 1
