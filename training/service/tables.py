"""The service's own tables in the workspace store: cached scores and stored smear analyses.

Promises:
- Scores are cached per (checkpoint, strategy, tile) in the ``scores`` table and analyses per
  (checkpoint, smear) in the ``analyses`` table, both append-only Delta tables.
- :func:`register_tables` is idempotent: every workflow that reads or writes them calls it.
"""

from __future__ import annotations

import pyarrow as pa

from dataset._delta import TS
from dataset.store import Store

SCORES = pa.schema(
    [
        ("model_id", pa.string()),
        ("strategy", pa.string()),
        ("tile_id", pa.string()),
        ("smear_id", pa.string()),
        ("score", pa.float64()),
        ("features", pa.list_(pa.float32())),
        ("created_at", TS),
    ]
)
ANALYSES = pa.schema(
    [
        ("smear_id", pa.string()),
        ("model_id", pa.string()),
        ("created_at", TS),
        ("rows_json", pa.string()),
        ("features_json", pa.string()),
    ]
)

__all__ = ["ANALYSES", "SCORES", "register_tables"]


def register_tables(store: Store) -> None:
    """Make the ``scores`` and ``analyses`` tables known to ``store`` (created on first write)."""
    store.tables.register("scores", SCORES)
    store.tables.register("analyses", ANALYSES)
