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


def test_a_class_without_labelled_pixels_is_left_out_even_when_predicted():
    # Class "c" is predicted on two labelled pixels but never labelled: before, it scored
    # IoU 0.0 and dragged the mean down; now it has no figure and is named as absent.
    target = np.array([[0, 0, 1, 1]], np.uint8)
    pred = np.array([[0, 2, 1, 2]], np.uint8)
    m = metrics_from_confusion(confusion_matrix(pred, target, 3), ["a", "b", "c"])
    assert m.iou == (pytest.approx(0.5), pytest.approx(0.5), None)
    assert m.miou == pytest.approx(0.5)
    assert m.absent == ("c",)
    assert m.to_dict()["absent_classes"] == ["c"]
    assert "No labelled pixels of c" in m.absent_note()
    assert "left out of the mean IoU" in m.absent_note()


def test_every_class_labelled_has_no_absent_note():
    target = np.array([[0, 1]], np.uint8)
    m = metrics_from_confusion(confusion_matrix(target, target, 2), ["a", "b"])
    assert m.absent == () and m.absent_note() is None and m.miou == 1.0


def test_pixels_a_prediction_leaves_unlabelled_count_as_wrong():
    target = np.array([[0, 0, 1, 1]], np.uint8)
    pred = np.array([[0, UNLABELLED, 1, UNLABELLED]], np.uint8)
    with pytest.raises(ValueError, match="out of range"):
        confusion_matrix(pred, target, 2)
    cm = confusion_matrix(pred, target, 2, unlabelled_pred=True)
    assert cm.tolist() == [[1, 0, 1], [0, 1, 1]]
    m = metrics_from_confusion(cm, ["a", "b"])
    assert m.iou == (pytest.approx(0.5), pytest.approx(0.5))
    assert m.pixel_accuracy == pytest.approx(0.5) and m.n_pixels == 4
    # Leaving everything unlabelled scores zero, not "no figure".
    blank = np.full_like(target, UNLABELLED)
    none = metrics_from_confusion(confusion_matrix(blank, target, 2, unlabelled_pred=True), "ab")
    assert none.miou == 0.0
