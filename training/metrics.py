"""Per-class IoU and Dice from a confusion matrix over labelled pixels.

The promise of this module: unlabelled pixels (255) never count; a class that appears
neither in the labels nor in the prediction has no score (``None``), rather than a
flattering 1.0 or a punishing 0.0, and is left out of the mean IoU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dataset.schema import UNLABELLED

__all__ = ["SegMetrics", "confusion_matrix", "metrics_from_confusion"]


def confusion_matrix(pred: np.ndarray, target: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) over the labelled pixels.

    Shape:
        pred, target: (H, W) integer arrays of the same shape; returns (C, C) int64,
        rows = true class, columns = predicted class.
    """
    if pred.shape != target.shape:
        raise ValueError(f"Prediction {pred.shape} and mask {target.shape} differ in shape.")
    valid = target != UNLABELLED
    t = target[valid].astype(np.int64)
    p = pred[valid].astype(np.int64)
    if t.size and (t.max() >= n_classes or p.max() >= n_classes):
        raise ValueError(f"Class index out of range for {n_classes} classes.")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


@dataclass(frozen=True)
class SegMetrics:
    """Validation scores; ``None`` marks a class absent from labels and prediction."""

    classes: tuple[str, ...]
    iou: tuple[float | None, ...]
    dice: tuple[float | None, ...]
    miou: float | None
    pixel_accuracy: float | None
    n_pixels: int

    def to_dict(self) -> dict:
        """JSON-ready summary (for model cards and progress files)."""
        return {
            "miou": self.miou,
            "pixel_accuracy": self.pixel_accuracy,
            "n_pixels": self.n_pixels,
            "iou": dict(zip(self.classes, self.iou, strict=True)),
            "dice": dict(zip(self.classes, self.dice, strict=True)),
        }


def metrics_from_confusion(cm: np.ndarray, classes: Sequence[str]) -> SegMetrics:
    """IoU = TP / (TP + FP + FN) and Dice = 2TP / (2TP + FP + FN) for each class.

    Shape:
        cm: (C, C) with C = len(classes).
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    union = tp + fp + fn
    iou = tuple(float(tp[i] / union[i]) if union[i] > 0 else None for i in range(len(tp)))
    dice = tuple(
        float(2 * tp[i] / (2 * tp[i] + fp[i] + fn[i])) if union[i] > 0 else None
        for i in range(len(tp))
    )
    scored = [v for v in iou if v is not None]
    total = cm.sum()
    return SegMetrics(
        classes=tuple(classes),
        iou=iou,
        dice=dice,
        miou=float(np.mean(scored)) if scored else None,
        pixel_accuracy=float(tp.sum() / total) if total > 0 else None,
        n_pixels=int(total),
    )
