"""Per-class IoU and Dice from a confusion matrix over labelled pixels.

The promise of this module: pixels unlabelled in the truth (255) never count. A class with no
labelled pixel in the truth has no score (``None``), rather than a flattering 1.0 or a
punishing 0.0, is left out of the mean IoU, and is named in :attr:`SegMetrics.absent` so a
report can say why it has no figure; pixels wrongly predicted as that class still count
against the true class. A prediction may itself leave pixels unlabelled (the colour rules
do): with ``unlabelled_pred=True`` such pixels count as wrong for their true class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dataset.schema import UNLABELLED

__all__ = ["SegMetrics", "absent_note", "confusion_matrix", "metrics_from_confusion"]


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, n_classes: int, *, unlabelled_pred: bool = False
) -> np.ndarray:
    """Counts of (true class, predicted class) over the labelled pixels.

    Args:
        unlabelled_pred: Accept 255 in ``pred`` (a partial prediction such as the colour
            rules' pre-fill) and count it in an extra last column, "left unlabelled", which
            :func:`metrics_from_confusion` scores as wrong.

    Shape:
        pred, target: (H, W) integer arrays of the same shape; returns (C, C) int64, or
        (C, C + 1) with ``unlabelled_pred``; rows = true class, columns = predicted class.
    """
    if pred.shape != target.shape:
        raise ValueError(f"Prediction {pred.shape} and mask {target.shape} differ in shape.")
    valid = target != UNLABELLED
    t = target[valid].astype(np.int64)
    p = pred[valid].astype(np.int64)
    columns = n_classes
    if unlabelled_pred:
        p = np.where(p == UNLABELLED, n_classes, p)
        columns = n_classes + 1
    if t.size and (t.max() >= n_classes or p.max() >= columns):
        raise ValueError(f"Class index out of range for {n_classes} classes.")
    return np.bincount(t * columns + p, minlength=n_classes * columns).reshape(n_classes, columns)


@dataclass(frozen=True)
class SegMetrics:
    """Validation scores; ``None`` marks a class with no labelled pixel (named in ``absent``)."""

    classes: tuple[str, ...]
    iou: tuple[float | None, ...]
    dice: tuple[float | None, ...]
    miou: float | None
    pixel_accuracy: float | None
    n_pixels: int
    absent: tuple[str, ...] = ()

    def absent_note(self, where: str = "the validation tiles") -> str | None:
        """A sentence naming the classes left out of the mean, or None when every class counts."""
        if not self.absent:
            return None
        return absent_note(self.absent, where)

    def to_dict(self) -> dict:
        """JSON-ready summary (for model cards and progress files)."""
        return {
            "miou": self.miou,
            "pixel_accuracy": self.pixel_accuracy,
            "n_pixels": self.n_pixels,
            "iou": dict(zip(self.classes, self.iou, strict=True)),
            "dice": dict(zip(self.classes, self.dice, strict=True)),
            "absent_classes": list(self.absent),
        }


def absent_note(absent: Sequence[str], where: str = "the validation tiles") -> str:
    """Why some classes have no figure, e.g. "No labelled pixels of platelet in the validation
    tiles: it has no IoU and is left out of the mean IoU."."""
    if len(absent) == 1:
        return (
            f"No labelled pixels of {absent[0]} in {where}: it has no IoU and is left out of "
            "the mean IoU."
        )
    return (
        f"No labelled pixels of {', '.join(absent)} in {where}: they have no IoU and are left "
        "out of the mean IoU."
    )


def metrics_from_confusion(cm: np.ndarray, classes: Sequence[str]) -> SegMetrics:
    """IoU = TP / (TP + FP + FN) and Dice = 2TP / (2TP + FP + FN) for each labelled class.

    A class without a labelled pixel gets ``None`` and is left out of the mean. An extra
    last column (from ``confusion_matrix(..., unlabelled_pred=True)``) holds pixels the
    prediction left unlabelled: false negatives of their true class, never a true positive.

    Shape:
        cm: (C, C) or (C, C + 1) with C = len(classes).
    """
    cm = np.asarray(cm, dtype=np.float64)
    n = len(classes)
    if cm.shape not in ((n, n), (n, n + 1)):
        raise ValueError(f"Confusion matrix {cm.shape} does not fit {n} classes.")
    tp = np.diag(cm[:, :n])
    fp = cm[:, :n].sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    present = cm.sum(axis=1) > 0
    union = tp + fp + fn
    iou = tuple(float(tp[i] / union[i]) if present[i] else None for i in range(n))
    dice = tuple(
        float(2 * tp[i] / (2 * tp[i] + fp[i] + fn[i])) if present[i] else None for i in range(n)
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
        absent=tuple(c for c, p in zip(classes, present, strict=True) if not p),
    )
