"""The store's records and errors: what a smear, a tile and a revision are.

Promises:
- Every record the store hands out is a frozen dataclass; none holds a reference into a table.
- :class:`StoreError` is the one error the store raises for a request it refuses, with what to
  do instead; :class:`RevisionConflict` is a :class:`StoreError` that names who saved last.
- ``SOURCES`` lists every origin a revision may record; ``RULES_MODEL_ID`` is the model id of
  a pre-fill made by the colour rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from dataset.tiling import TileBox


class StoreError(ValueError):
    """A request the store refuses, with what to do instead."""


class RevisionConflict(StoreError):
    """Someone saved the tile after the revision this save was based on."""

    def __init__(self, tile_id: str, base: int | None, latest: Revision) -> None:
        self.tile_id, self.base, self.latest = tile_id, base, latest
        super().__init__(
            f"Tile {tile_id} was saved as revision {latest.revision} by "
            f"{latest.annotator or 'someone'} at {latest.created_at:%Y-%m-%d %H:%M:%S} UTC "
            f"after you opened revision {base or 0}. Reload theirs, or save yours on top."
        )


@dataclass(frozen=True)
class SmearInfo:
    smear_id: str
    label: str
    width: int
    height: int
    patient: str | None
    stain: str | None
    magnification: str | None
    um_per_px: float | None
    note: str | None
    n_tiles: int
    created_at: dt.datetime


@dataclass(frozen=True)
class TileInfo:
    tile_id: str
    smear_id: str
    x: int
    y: int
    w: int
    h: int

    @property
    def box(self) -> TileBox:
        return TileBox(self.x, self.y, self.w, self.h)


@dataclass(frozen=True)
class Revision:
    tile_id: str
    revision: int
    annotator: str
    created_at: dt.datetime
    source: str
    base_revision: int | None
    seconds: float | None
    model_id: str | None
    n_labelled_px: int


@dataclass(frozen=True)
class NewSmear:
    """A decoded smear ready to store (pixels already stripped of all metadata).

    Attributes:
        image_png: The whole image as a PNG, or None for a smear over
            :data:`~dataset.store.smears.WHOLE_PNG_MAX_PIXELS`, which is kept as its tiles only.
        rgb: The pixels ``image_png`` decodes to, when the caller has them; without them
            the store decodes ``image_png`` once to cut the tiles.

    Shape:
        rgb: (height, width, 3) uint8.
    """

    smear_id: str
    image_png: bytes | None
    width: int
    height: int
    label: str = ""
    patient: str | None = None
    stain: str | None = None
    magnification: str | None = None
    um_per_px: float | None = None
    note: str | None = None
    rgb: np.ndarray | None = field(default=None, repr=False, compare=False)


_REV_COLUMNS = [
    "tile_id",
    "revision",
    "annotator",
    "created_at",
    "source",
    "base_revision",
    "seconds",
    "model_id",
    "n_labelled_px",
]
SOURCES = ("manual", "import", "prefill")
# The model id a "prefill" revision records when the colour rules, not a model, made the pre-fill.
RULES_MODEL_ID = "colour-rules"
_TILE_COLUMNS = [f for f in TileInfo.__dataclass_fields__]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
