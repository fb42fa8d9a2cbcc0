"""Inter-annotator agreement: how alike the two independent labels of double-labelled tiles are.

Promises:
- Per annotator pair and per class: Dice ``2|A∩B| / (|A| + |B|)`` and IoU
  ``|A∩B| / |A∪B|``, where ``A`` and ``B`` are the pixels of that class in the first and the
  second label, counted only over pixels that both labels labelled (a pixel unlabelled in
  either mask is left out). Counts are pooled over the pair's tiles before dividing, so a
  large cell weighs more than a speck.
- Each figure comes with ``n_tiles``: the pair's tiles where that class appears in either
  label (on the pixels compared). A class that appears on none of the pair's tiles gets no
  row. A pair is the two account names sorted, whoever labelled first.
- The first label of a tile is its first annotator's latest ordinary revision, the second its
  latest second-label revision (:mod:`dataset.store.second_labels`); tiles without both are
  left out. Reading is all this module does: the Dataset page, ``python -m dataset agreement``
  and the release card call :func:`agreement`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from dataset.schema import UNLABELLED

if TYPE_CHECKING:
    from dataset.store import Store

__all__ = [
    "AgreementReport",
    "AgreementRow",
    "agreement",
    "class_counts",
    "summarise",
]


class AgreementRow(BaseModel):
    """Agreement of one annotator pair on one class."""

    annotator_a: str = Field(description="one annotator of the pair (sorted first)")
    annotator_b: str = Field(description="the other annotator of the pair")
    class_name: str
    dice: float = Field(description="2|A∩B| / (|A| + |B|) over pixels both labelled")
    iou: float = Field(description="|A∩B| / |A∪B| over pixels both labelled")
    n_tiles: int = Field(description="the pair's tiles where the class appears in either label")


class AgreementReport(BaseModel):
    """Agreement over the double-labelled tiles: per pair and class, and how many tiles."""

    n_tiles: int = Field(description="double-labelled tiles with both labels compared")
    pairs: dict[str, int] = Field(
        default_factory=dict, description='"a / b" -> tiles that pair labelled twice'
    )
    rows: list[AgreementRow] = Field(default_factory=list)


def class_counts(first: np.ndarray, second: np.ndarray, n_classes: int) -> np.ndarray:
    """Per class: pixels of the class in both labels, in the first, in the second, counted
    over the pixels both labels labelled.

    Shape:
        first, second: (h, w) uint8, 255 = unlabelled. Returns (3, n_classes) int64.
    """
    if first.shape != second.shape:
        raise ValueError(f"The labels differ in shape: {first.shape} and {second.shape}.")
    both = (first != UNLABELLED) & (second != UNLABELLED)
    a, b = first[both].astype(np.int64), second[both].astype(np.int64)
    inter = np.bincount(a[a == b], minlength=n_classes)[:n_classes]
    return np.stack(
        [
            inter,
            np.bincount(a, minlength=n_classes)[:n_classes],
            np.bincount(b, minlength=n_classes)[:n_classes],
        ]
    )


def summarise(
    compared: Iterable[tuple[str, str, np.ndarray]], class_names: Sequence[str]
) -> AgreementReport:
    """The report from ``(annotator, annotator, class_counts(...))`` of each tile."""
    pooled: dict[tuple[str, str], np.ndarray] = {}
    present: dict[tuple[str, str], np.ndarray] = {}
    tiles: dict[tuple[str, str], int] = {}
    n = 0
    for one, other, counts in compared:
        pair = (one, other) if one <= other else (other, one)
        pooled[pair] = pooled.get(pair, 0) + counts
        present[pair] = present.get(pair, 0) + ((counts[1] + counts[2]) > 0).astype(int)
        tiles[pair] = tiles.get(pair, 0) + 1
        n += 1
    rows = []
    for pair in sorted(pooled):
        inter, in_a, in_b = pooled[pair]
        for c, name in enumerate(class_names):
            if present[pair][c] == 0:
                continue
            union = in_a[c] + in_b[c] - inter[c]
            rows.append(
                AgreementRow(
                    annotator_a=pair[0],
                    annotator_b=pair[1],
                    class_name=name,
                    dice=float(2 * inter[c] / (in_a[c] + in_b[c])),
                    iou=float(inter[c] / union),
                    n_tiles=int(present[pair][c]),
                )
            )
    return AgreementReport(
        n_tiles=n, pairs={f"{a} / {b}": k for (a, b), k in sorted(tiles.items())}, rows=rows
    )


def agreement(
    store: Store,
    tile_ids: Iterable[str] | None = None,
    shown_as: Callable[[str], str] | None = None,
) -> AgreementReport:
    """Agreement of the workspace's double-labelled tiles (or of those among ``tile_ids``).

    Args:
        tile_ids: Only these tiles (a release's); None: every tile with two labels.
        shown_as: How an account is named in the report (the release card's pseudonymous
            keys); default its name.
    """
    names = store.schema().names
    seconds = store.second_labels()
    wanted = seconds if tile_ids is None else [t for t in tile_ids if t in seconds]
    show = shown_as or (lambda name: name)

    def compared() -> Iterable[tuple[str, str, np.ndarray]]:
        for tile_id in sorted(wanted):
            first = store.first_label(tile_id)
            if first is None:
                continue
            second = seconds[tile_id]
            counts = class_counts(
                store.mask(tile_id, first.revision),
                store.second_mask(tile_id, second.revision),
                len(names),
            )
            yield show(first.annotator), show(second.annotator), counts

    return summarise(compared(), names)
