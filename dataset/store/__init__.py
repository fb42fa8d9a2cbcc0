"""The workspace store: smears, tiles, mask revisions, the class schema and the split.

This is the one interface the pages, the CLI and training use; nothing else touches Delta.
:class:`Store` is the facade; each concept behind it has its own module (see
:mod:`dataset.store.workspace`), and this package re-exports the names other code imports.

Promises:
- Every mask save is a new revision (numbered per tile from 1); nothing is overwritten.
- A save returns only after its commit is durable; a process killed at any moment leaves a
  store that opens with every revision whose save had returned.
- A smear is stored once per distinct pixel content (its id is a hash of the pixels), with
  its tiles; each tile keeps its pixels as a lossless PNG, encoded once at ingest, and a
  smear row is committed only after its tiles. A retried ingest reuses the tiles that a
  killed one left without their smear row, so no tile is stored twice. A smear over
  ``WHOLE_PNG_MAX_PIXELS`` is kept as its tiles only.
- A group (patient, else smear) is assigned to train / validation / test once and for ever.
- A tile's latest revision is ``unreviewed``, ``approved`` or ``changes_requested``; verdicts
  are append-only and one per revision (:mod:`dataset.store.reviews`).
- A share of tiles (``double_label_share``) gets an independent second label, kept in its own
  table and never trained on or released until a reviewer picks it
  (:mod:`dataset.store.second_labels`).
"""

from __future__ import annotations

from dataset.schema import SchemaError
from dataset.store.records import (
    RULES_MODEL_ID,
    SOURCES,
    NewSmear,
    Revision,
    RevisionConflict,
    SmearInfo,
    StoreError,
    TileInfo,
)
from dataset.store.reviews import (
    APPROVED,
    CHANGES_REQUESTED,
    REVIEW_STATES,
    UNREVIEWED,
    Review,
    ReviewConflict,
    ReviewStatus,
)
from dataset.store.second_labels import (
    FIRST,
    LANES,
    SECOND,
    LabelBase,
    MaskPick,
    in_double_share,
)
from dataset.store.smears import TILE_COMMIT_BYTES, WHOLE_PNG_MAX_PIXELS
from dataset.store.splits import SPLIT_SHARES, SPLITS, group_key, split_for_group
from dataset.store.workspace import Store

__all__ = [
    "APPROVED",
    "CHANGES_REQUESTED",
    "FIRST",
    "LANES",
    "REVIEW_STATES",
    "RULES_MODEL_ID",
    "SECOND",
    "SOURCES",
    "SPLITS",
    "SPLIT_SHARES",
    "TILE_COMMIT_BYTES",
    "UNREVIEWED",
    "WHOLE_PNG_MAX_PIXELS",
    "LabelBase",
    "MaskPick",
    "NewSmear",
    "Review",
    "ReviewConflict",
    "ReviewStatus",
    "Revision",
    "RevisionConflict",
    "SchemaError",
    "SmearInfo",
    "Store",
    "StoreError",
    "TileInfo",
    "group_key",
    "in_double_share",
    "split_for_group",
]
