"""Correction effort: what an annotator must change to turn a starting mask into the truth.

Promises:

- :func:`correction_effort` counts, over the pixels the truth labels, the pixels whose start
  differs (an unlabelled start pixel counts: it must be painted) and the regions to fix: the
  4-connected patches of wrong pixels that share one true class. A region is roughly one
  brush stroke, polygon or wand click, so regions estimate actions and pixels estimate area.
- Pixels the truth leaves unlabelled are never counted: nobody paints them.
- Regions smaller than ``min_region_px`` (speckle a person would not fix one by one) still
  count as pixels but not as regions.
- :func:`total_effort` sums efforts over tiles. Pure numpy/scipy: no store, no model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from dataset.schema import UNLABELLED

__all__ = ["Effort", "correction_effort", "total_effort"]

_FOUR = ndimage.generate_binary_structure(2, 1)


@dataclass(frozen=True)
class Effort:
    """Pixels to change and regions to fix, out of the truth's labelled pixels."""

    pixels: int
    regions: int
    labelled: int

    def __add__(self, other: Effort) -> Effort:
        return Effort(
            self.pixels + other.pixels,
            self.regions + other.regions,
            self.labelled + other.labelled,
        )

    @property
    def pixel_share(self) -> float:
        """Share of the labelled pixels to change (0 when nothing is labelled)."""
        return self.pixels / self.labelled if self.labelled else 0.0


def correction_effort(start: np.ndarray, truth: np.ndarray, *, min_region_px: int = 1) -> Effort:
    """What turns ``start`` into ``truth``.

    Args:
        start: The mask the annotator starts from (255 = unlabelled, e.g. an empty canvas or
            the part of a pre-fill left unlabelled).
        truth: The finished mask (255 = unlabelled: not counted).
        min_region_px: Wrong patches smaller than this are not counted as regions.

    Shape:
        start, truth: (H, W) uint8 of the same shape.
    """
    if start.shape != truth.shape:
        raise ValueError(
            f"The starting mask is {start.shape[1]}x{start.shape[0]} but the truth is "
            f"{truth.shape[1]}x{truth.shape[0]}; compare masks of one tile."
        )
    if min_region_px < 1:
        raise ValueError(f"min_region_px must be at least 1, got {min_region_px}.")
    labelled = truth != UNLABELLED
    wrong = labelled & (start != truth)
    regions = 0
    for value in np.unique(truth[wrong]):
        patches, count = ndimage.label(wrong & (truth == value), structure=_FOUR)
        if count == 0:
            continue
        sizes = np.bincount(patches.ravel())[1:]
        regions += int((sizes >= min_region_px).sum())
    return Effort(int(wrong.sum()), regions, int(labelled.sum()))


def total_effort(efforts: Iterable[Effort]) -> Effort:
    """The sum of per-tile efforts."""
    total = Effort(0, 0, 0)
    for effort in efforts:
        total = total + effort
    return total
