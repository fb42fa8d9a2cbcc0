"""Counts over the store: tiles, labels, revisions and pixels per class; raw table scans.

Promises:
- Reads only: nothing here writes a table.
- Pixel counts come from the counts stored with each revision; only revisions saved before
  the store kept counts have their masks decoded.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from dataset.png import decode_mask
from dataset.schema import UNLABELLED
from dataset.store._base import StoreBase


class StatsPart(StoreBase):
    """The Dataset page's counts, pixel counts per class, and read-only table scans."""

    def scan(self, name: str) -> pads.Dataset:
        """Read-only pyarrow dataset of a table, for DuckDB or pandas analysis."""
        return self.tables.dataset(name)

    def stats(self) -> dict:
        """Counts for the Dataset page and ``python -m dataset stats``."""
        latest = self.latest_revisions()
        skipped = self.skipped_tile_ids()
        tiles = self.tiles()
        labelled = [t for t, r in latest.items() if r.n_labelled_px > 0 and t not in skipped]
        seconds = [r.seconds for r in latest.values() if r.seconds is not None]
        return {
            "smears": len(self.smears()),
            "tiles": len(tiles),
            "labelled": len(labelled),
            "skipped": len(skipped),
            "revisions": sum(r.revision for r in latest.values()),
            "median_seconds_per_tile": float(np.median(seconds)) if seconds else None,
        }

    def class_pixel_counts(self, tile_ids: Collection[str] | None = None) -> dict[str, int]:
        """Pixels per class over the latest masks of the given tiles (default: the labelled).

        Sums the counts stored with each revision, reading no mask bytes; only revisions
        saved before the store kept counts are decoded.
        """
        names = self.schema().names
        n_classes = len(names)
        counts = np.zeros(256, dtype=np.int64)
        ids = self.labelled_tile_ids() if tile_ids is None else tile_ids
        latest = self.latest_revisions()
        wanted = {t: latest[t] for t in ids if t in latest}
        index = self._tile_index()
        legacy: list[str] = []
        stored = self._stored_class_px({t: r.revision for t, r in wanted.items()})
        for tid, rev in wanted.items():
            px, tile = stored.get(tid), index.get(tid)
            if px is None or len(px) != n_classes or tile is None:
                legacy.append(tid)
                continue
            counts[:n_classes] += px
            counts[UNLABELLED] += tile.w * tile.h - rev.n_labelled_px
        for _, _, png in self.iter_latest_masks(legacy):
            counts += np.bincount(decode_mask(png).ravel(), minlength=256)
        out = {n: int(counts[i]) for i, n in enumerate(names)}
        out["unlabelled"] = int(counts[UNLABELLED])
        return out

    def _stored_class_px(self, wanted: dict[str, int]) -> dict[str, list[int] | None]:
        """``class_px`` of the wanted ``{tile_id: revision}`` rows; None where not stored."""
        ds = self.tables.dataset("revisions")
        if not wanted or "class_px" not in ds.schema.names:
            return {}
        out: dict[str, list[int] | None] = {}
        keys = pa.array(list(wanted), pa.string())
        # Three small columns of every row in one scan, no mask bytes; only the wanted
        # tiles' rows reach Python.
        for batch in ds.to_batches(columns=["tile_id", "revision", "class_px"]):
            batch = batch.filter(pc.is_in(batch.column(0), value_set=keys))
            tids, revs, pxs = (c.to_pylist() for c in batch.columns)
            for tid, rev, px in zip(tids, revs, pxs, strict=True):
                if wanted.get(tid) == rev:
                    out[tid] = px
        return out
