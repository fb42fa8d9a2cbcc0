"""Scoring a segmentation model on image/mask pairs from outside the workspace.

Promises:
- Masks are mapped to the model's classes by the same grey-level rule as ``import-masks``
  (:func:`dataset.masks.apply_levels`); a grey no level explains refuses the mask, or, when
  lenient, is left out of the scores and counted per file.
- An image and a mask of different sizes are refused, naming both files.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.service._figures import mean
from training.service.models import LoadedModel

__all__ = ["evaluate_pairs"]


def evaluate_pairs(
    pairs: list,
    levels: str,
    loaded: LoadedModel,
    *,
    tolerance: int | None = None,
    lenient: bool = False,
) -> dict[str, Any]:
    """IoU and Dice per class of the model on image/mask pairs outside the workspace.

    Masks are mapped to the model's classes by nearest grey level under the same rule as
    ``import-masks`` (:func:`dataset.masks.apply_levels`): a grey farther than ``tolerance``
    from every listed level refuses the mask, or, ``lenient``, is left out of the scores as
    unlabelled and counted per file in ``unmatched``.
    """
    from dataset.images import decode_image
    from dataset.masks import (
        DEFAULT_LEVEL_TOLERANCE,
        apply_levels,
        load_mask_file,
        parse_levels,
        unmatched_levels,
    )

    band = DEFAULT_LEVEL_TOLERANCE if tolerance is None else tolerance
    from training.inference import iter_proba, probs_to_mask
    from training.metrics import confusion_matrix, metrics_from_confusion

    classes = list(loaded.card.classes)
    level_map = parse_levels(levels, classes)
    images, masks = [], []
    unmatched: dict[str, dict[int, int]] = {}
    for p in pairs:
        rgb = decode_image(p.image_bytes, p.image_name).rgb
        grey = load_mask_file(p.mask_bytes, p.mask_name)
        mask = apply_levels(grey, level_map, name=p.mask_name, tolerance=band, lenient=lenient)
        if lenient:
            found = unmatched_levels(grey, level_map, band)
            if found:
                unmatched[p.mask_name] = found
        if mask.shape != rgb.shape[:2]:
            raise ValueError(
                f"Mask {p.mask_name} is {mask.shape[1]}x{mask.shape[0]} but image {p.image_name} "
                f"is {rgb.shape[1]}x{rgb.shape[0]}; pair each image with its own mask."
            )
        images.append(rgb)
        masks.append(mask)
    cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for probs, truth in zip(
        iter_proba(loaded.model, images, loaded.inference_config()), masks, strict=True
    ):
        cm += confusion_matrix(probs_to_mask(probs), truth, len(classes))
    metrics = metrics_from_confusion(cm, classes)
    return {
        "model_id": loaded.model_id,
        "images": len(images),
        "per_class": {
            c: {"iou": metrics.iou[i], "dice": metrics.dice[i]} for i, c in enumerate(classes)
        },
        "mean_iou": metrics.miou,
        "mean_dice": mean(metrics.dice),
        "level_tolerance": band,
        "unmatched": {
            name: {str(k): v for k, v in found.items()} for name, found in unmatched.items()
        }
        if lenient
        else None,
    }
