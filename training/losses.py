"""Segmentation loss: cross-entropy plus soft Dice, blind to unlabelled pixels.

The promise of this module: pixels marked unlabelled (255) contribute nothing to the loss
or its gradient, so a tile with a few brush strokes trains only on those strokes; a batch
without any labelled pixel gives a zero loss that still backpropagates (instead of the NaN
that ``torch.nn.functional.cross_entropy`` returns when every pixel is ignored).

petroscope ships similar losses, but they import through its lazy-import layer and weight
the Dice of absent classes; this module is the small, dependency-free version.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from dataset.schema import UNLABELLED

__all__ = ["SegLoss", "class_weights"]


class SegLoss(torch.nn.Module):
    """``ce_weight * CE + dice_weight * (1 - soft Dice)`` over labelled pixels.

    Dice is averaged over the classes present among the labelled pixels of the batch, so
    classes nobody labelled in this batch neither help nor hurt.

    Args:
        weight: Optional per-class weights for the cross-entropy term.
        ce_weight: Factor on the cross-entropy term.
        dice_weight: Factor on the Dice term (0 turns it off).
        smooth: Added to numerator and denominator of Dice to keep it finite.
    """

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        smooth: float = 1.0,
    ) -> None:
        super().__init__()
        self.register_buffer("weight", None if weight is None else weight.float())
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss.

        Shape:
            logits: (N, C, H, W) float; target: (N, H, W) long with values in [0, C) or 255.
        """
        valid = target != UNLABELLED
        if not bool(valid.any()):
            return logits.sum() * 0.0
        loss = logits.new_zeros(())
        if self.ce_weight:
            ce = F.cross_entropy(logits, target, weight=self.weight, ignore_index=UNLABELLED)
            loss = loss + self.ce_weight * ce
        if self.dice_weight:
            loss = loss + self.dice_weight * self._dice_loss(logits, target, valid)
        return loss

    def _dice_loss(
        self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        n_classes = logits.shape[1]
        probs = logits.float().softmax(dim=1)
        keep = valid.unsqueeze(1).float()
        onehot = F.one_hot(target.where(valid, 0), n_classes).permute(0, 3, 1, 2).float()
        onehot = onehot * keep
        probs = probs * keep
        dims = (0, 2, 3)
        inter = (probs * onehot).sum(dims)
        total = probs.sum(dims) + onehot.sum(dims)
        dice = (2 * inter + self.smooth) / (total + self.smooth)
        present = onehot.sum(dims) > 0
        return (1 - dice)[present].mean()


def class_weights(
    masks: Iterable[np.ndarray], n_classes: int, method: str = "inverse_sqrt"
) -> np.ndarray:
    """Per-class weights from labelled pixel counts, normalised to mean 1.

    Args:
        masks: Label rasters (255 ignored).
        n_classes: Number of classes.
        method: ``"inverse"`` (1/frequency) or ``"inverse_sqrt"`` (gentler, usually better
            for a dominant background).

    Returns:
        float32 array of length ``n_classes``; classes without labelled pixels get 1.
    """
    if method not in ("inverse", "inverse_sqrt"):
        raise ValueError(f"Unknown class weight method {method!r}; use inverse or inverse_sqrt.")
    counts = np.zeros(n_classes, dtype=np.int64)
    for mask in masks:
        values = mask[mask != UNLABELLED]
        if values.size and int(values.max()) >= n_classes:
            raise ValueError(
                f"A mask holds class index {int(values.max())} but there are {n_classes} classes."
            )
        counts += np.bincount(values.ravel(), minlength=n_classes)[:n_classes]
    weights = np.ones(n_classes, dtype=np.float64)
    seen = counts > 0
    if seen.any():
        freq = counts[seen] / counts.sum()
        w = 1.0 / freq if method == "inverse" else 1.0 / np.sqrt(freq)
        weights[seen] = w / w.mean()
    return weights.astype(np.float32)
