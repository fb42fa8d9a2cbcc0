"""Our confusion-matrix IoU agrees with petroscope's dataset-level IoU counters.

petroscope (MSU's segmentation toolkit) accumulates intersection and union per class over a
whole dataset (``ExIoU.reduce``); agreeing with an independent implementation guards the
figures SmearLab reports on its model cards and benchmarks.
"""

from __future__ import annotations

import numpy as np
import pytest

from dataset.schema import UNLABELLED
from training.metrics import confusion_matrix, metrics_from_confusion


def test_iou_matches_petroscope_counters() -> None:
    metrics = pytest.importorskip("petroscope.segmentation.metrics")
    rng = np.random.default_rng(3)
    classes = ("background", "cytoplasm", "nucleus")
    n = len(classes)
    cm = np.zeros((n, n), dtype=np.int64)
    per_class: dict[str, list] = {c: [] for c in classes}
    for _ in range(4):
        truth = rng.integers(0, n, (32, 32)).astype(np.uint8)
        pred = np.where(rng.random((32, 32)) < 0.7, truth, rng.integers(0, n, (32, 32)))
        pred = pred.astype(np.uint8)
        truth[:4] = UNLABELLED  # unlabelled pixels count for neither side
        cm += confusion_matrix(pred, truth, n)
        keep = truth != UNLABELLED
        onehot_t = np.eye(n)[truth[keep]]
        onehot_p = np.eye(n)[pred[keep]]
        found = metrics.iou_per_class(onehot_t, onehot_p, dict(enumerate(classes)), smooth=0)
        for name, value in found.items():
            per_class[name].append(value)
    ours = metrics_from_confusion(cm, classes)
    for i, name in enumerate(classes):
        theirs = metrics.ExIoU.reduce(per_class[name])
        assert ours.iou[i] == pytest.approx(theirs.intersection / theirs.union, abs=1e-12)
