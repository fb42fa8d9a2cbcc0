"""Correction effort: pixels and regions an annotator must change to reach the truth."""

from __future__ import annotations

import numpy as np
import pytest

from dataset.schema import UNLABELLED
from training.effort import Effort, correction_effort, total_effort


def test_an_empty_canvas_costs_every_labelled_pixel_and_one_region_per_patch() -> None:
    truth = np.full((20, 20), 0, np.uint8)
    truth[2:6, 2:6] = 1
    truth[10:14, 10:14] = 1  # a second cell of the same class: a second region
    truth[18:, 18:] = UNLABELLED  # not labelled: never counted
    empty = np.full_like(truth, UNLABELLED)
    effort = correction_effort(empty, truth)
    assert effort == Effort(pixels=400 - 4, regions=3, labelled=400 - 4)
    assert effort.pixel_share == 1.0


def test_a_close_start_costs_only_its_mistakes() -> None:
    truth = np.zeros((20, 20), np.uint8)
    truth[2:6, 2:6] = 1
    start = truth.copy()
    start[2:6, 2:4] = 0  # half the cell missed
    start[15, 15] = 2  # one wrong speck on background
    effort = correction_effort(start, truth)
    assert (effort.pixels, effort.regions) == (9, 2)
    assert correction_effort(start, truth, min_region_px=2).regions == 1, "speck not a region"
    assert correction_effort(truth, truth) == Effort(0, 0, 400)


def test_efforts_add_up_over_tiles_and_refuse_mismatched_masks() -> None:
    a, b = Effort(3, 1, 10), Effort(5, 2, 30)
    assert total_effort([a, b]) == Effort(8, 3, 40)
    assert total_effort([]).pixel_share == 0.0
    with pytest.raises(ValueError, match="4x3 but the truth is 5x3"):
        correction_effort(np.zeros((3, 4), np.uint8), np.zeros((3, 5), np.uint8))
    with pytest.raises(ValueError, match="min_region_px"):
        correction_effort(np.zeros((3, 4), np.uint8), np.zeros((3, 4), np.uint8), min_region_px=0)
