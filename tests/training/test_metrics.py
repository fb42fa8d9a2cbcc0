"""Per-class IoU and Dice by hand on a tiny example."""

from __future__ import annotations

import numpy as np
import pytest

from dataset.schema import UNLABELLED
from training.metrics import confusion_matrix, metrics_from_confusion


def test_iou_and_dice_by_hand():
    target = np.array([[0, 0, 1, 1], [0, 0, 1, UNLABELLED]], np.uint8)
    pred = np.array([[0, 1, 1, 1], [0, 0, 0, 2]], np.uint8)
    cm = confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[3, 1, 0], [1, 2, 0], [0, 0, 0]]
    m = metrics_from_confusion(cm, ["a", "b", "c"])
    assert m.iou[0] == pytest.approx(3 / 5) and m.iou[1] == pytest.approx(2 / 4)
    assert m.dice[0] == pytest.approx(6 / 8) and m.dice[1] == pytest.approx(4 / 6)
    assert m.iou[2] is None and m.miou == pytest.approx((0.6 + 0.5) / 2)
    assert m.n_pixels == 7 and m.pixel_accuracy == pytest.approx(5 / 7)
    assert m.to_dict()["iou"] == {"a": m.iou[0], "b": m.iou[1], "c": None}


def test_confusion_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 2)
