"""Mask revisions: saving a tile's mask, conflict detection, and reading masks back.

Promises:
- Every mask save is a new revision (numbered per tile from 1); nothing is overwritten.
- A save returns only after its commit is durable; a process killed at any moment leaves a
  store that opens with every revision whose save had returned.
- A save based on a revision older than the tile's latest is refused with
  :class:`~dataset.store.records.RevisionConflict`, unless forced; numbering and the
  conflict check run under the revisions table's lock.
- The latest-revision cache reads only the Parquet files added since it last looked.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataset import audit
from dataset.png import decode_mask, encode_mask
from dataset.schema import UNLABELLED
from dataset.store._base import StoreBase
from dataset.store.records import (
    _REV_COLUMNS,
    SOURCES,
    Revision,
    RevisionConflict,
    StoreError,
    _now,
)
from dataset.tiling import assemble


class RevisionsPart(StoreBase):
    """Saving masks as revisions, the latest-revision cache, and mask reads."""

    def latest_revisions(self) -> dict[str, Revision]:
        """Latest revision of every tile that has one (no mask bytes are read).

        Reads only the Parquet files added since the last call, so it stays cheap as the
        table grows; a compaction (files removed) triggers one full re-read.
        """
        with self._latest_lock:
            return dict(self._refresh_latest())

    def _refresh_latest(self) -> dict[str, Revision]:
        with self._latest_lock:
            dtab = self.tables.table("revisions")
            files = set(dtab.file_uris())
            if not self._latest_files <= files:
                self._latest, self._latest_files = {}, set()
            new = sorted(files - self._latest_files)
            if new:
                t = (
                    pq.ParquetDataset(new).read(columns=_REV_COLUMNS)
                    if len(new) > 1
                    else (pq.read_table(new[0], columns=_REV_COLUMNS))
                )
                for row in t.to_pylist():
                    cur = self._latest.get(row["tile_id"])
                    if cur is None or row["revision"] > cur.revision:
                        self._latest[row["tile_id"]] = Revision(**row)
                self._latest_files |= set(new)
            return self._latest

    def latest(self, tile_id_: str) -> Revision | None:
        with self._latest_lock:
            return self._refresh_latest().get(tile_id_)

    def history(self, tile_id_: str) -> list[Revision]:
        t = self.tables.read("revisions", _REV_COLUMNS, pc.field("tile_id") == tile_id_)
        return sorted((Revision(**r) for r in t.to_pylist()), key=lambda r: r.revision)

    def mask(self, tile_id_: str, revision: int | None = None) -> np.ndarray:
        """A tile's mask at ``revision`` (default the latest); all unlabelled if none saved.

        Shape:
            (h, w) uint8, 255 = unlabelled.
        """
        if revision is None:
            rev = self.latest(tile_id_)
            if rev is None:
                t = self.tile(tile_id_)
                return np.full((t.h, t.w), UNLABELLED, dtype=np.uint8)
            revision = rev.revision
        flt = (pc.field("tile_id") == tile_id_) & (pc.field("revision") == revision)
        t = self.tables.read("revisions", ["mask_png"], flt)
        if t.num_rows == 0:
            raise StoreError(f"Tile {tile_id_} has no revision {revision}.")
        return decode_mask(t.column("mask_png")[0].as_py())

    def _checked_mask(self, tile_id_: str, mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """``mask`` checked against the tile and the schema, and its pixels per class.

        Raises:
            StoreError: the mask does not fit the tile or uses values outside the schema.
        """
        tile = self.tile(tile_id_)
        mask = np.asarray(mask)
        if mask.dtype != np.uint8 or mask.shape != (tile.h, tile.w):
            raise StoreError(
                f"The mask for {tile_id_} must be a {tile.w}x{tile.h} single-channel image of "
                f"class indices (uint8); got shape {mask.shape}, dtype {mask.dtype}."
            )
        n_classes = len(self.schema().names)
        # One pass counts every value: the class pixels stored with the revision, and the
        # values that are no class.
        values = np.bincount(mask.ravel(), minlength=256)
        values[UNLABELLED] = 0
        bad = np.flatnonzero(values[n_classes:]) + n_classes
        if bad.size:
            raise StoreError(
                f"The mask for {tile_id_} has values {bad.tolist()}"
                f" that are no class: use 0..{n_classes - 1}, or 255 for unlabelled."
            )
        class_px = values[:n_classes].tolist()
        return mask, class_px

    def save_mask(
        self,
        tile_id_: str,
        mask: np.ndarray,
        *,
        annotator: str,
        source: str = "manual",
        base_revision: int | None = None,
        seconds: float | None = None,
        model_id: str | None = None,
        force: bool = False,
        check_base: bool = True,
        on_latest: bool = False,
        actor: str | None = None,
    ) -> Revision:
        """Save a new revision of a tile's mask; returns once the commit is durable.

        Args:
            base_revision: the revision the user started from (None or 0: a blank tile).
            force: save on top even when someone saved after ``base_revision``.
            check_base: False for imports, which never conflict.
            on_latest: save on top of whatever revision is latest when the save takes the
                lock, and record that one as the base (``base_revision`` is ignored). For
                callers that name no base: reading the latest before the lock would turn
                every concurrent save into a false conflict.
            actor: who saved, for the audit trail, when not the mask's author (an import
                run by one account of masks drawn by another); default ``annotator``.

        Raises:
            RevisionConflict: the tile's latest revision is newer than ``base_revision``.
            StoreError: no annotator name, or the mask does not fit the tile or uses values
                outside the schema.
        """
        if not str(annotator or "").strip():
            # Until accounts replace names, the name is the only record of who drew a mask.
            raise StoreError(
                f"A mask for {tile_id_} needs the name of whoever drew it; give an annotator."
            )
        mask, class_px = self._checked_mask(tile_id_, mask)
        if source not in SOURCES:
            raise StoreError(f"Unknown source {source!r}; use one of {', '.join(SOURCES)}.")
        png = encode_mask(mask)
        with self.tables.lock("revisions"):
            latest = self.latest(tile_id_)
            if on_latest:
                base_revision = latest.revision if latest else None
            stale = latest is not None and (base_revision or 0) != latest.revision
            if check_base and not force and stale:
                raise RevisionConflict(tile_id_, base_revision, latest)
            rev = Revision(
                tile_id=tile_id_,
                revision=(latest.revision if latest else 0) + 1,
                annotator=annotator,
                created_at=_now(),
                source=source,
                base_revision=base_revision,
                seconds=seconds,
                model_id=model_id,
                n_labelled_px=sum(class_px),
            )
            self.tables.append(
                "revisions", [{**rev.__dict__, "mask_png": png, "class_px": class_px}]
            )
            with self._latest_lock:
                self._latest[tile_id_] = rev
        if self.is_skipped(tile_id_):
            self._set_skip(tile_id_, False, annotator)
        audit.record(
            self,
            actor=actor or annotator,
            action="save",
            object_id=tile_id_,
            before=latest.revision if latest else None,
            after=rev.revision,
            detail={"source": source, **({"model_id": model_id} if model_id else {})},
        )
        return rev

    def smear_mask(self, smear_id: str) -> np.ndarray:
        """Whole-smear mask from its tiles' latest masks, the most recently saved winning.

        Shape:
            (H, W) uint8, 255 = unlabelled.
        """
        info = self.smear(smear_id)
        latest = self.latest_revisions()
        tiles = [t for t in self.tiles(smear_id) if t.tile_id in latest]
        tiles.sort(key=lambda t: latest[t.tile_id].created_at)
        return assemble(info.width, info.height, ((t.box, self.mask(t.tile_id)) for t in tiles))

    def iter_latest_masks(self, tile_ids: list[str]) -> Iterator[tuple[str, Revision, bytes]]:
        """Stream ``(tile_id, revision, mask_png)`` of the latest revisions, a batch at a time."""
        latest = self.latest_revisions()
        wanted = {t: latest[t].revision for t in tile_ids if t in latest}
        ds = self.tables.dataset("revisions")
        ids = list(wanted)
        for i in range(0, len(ids), 512):
            chunk = ids[i : i + 512]
            t = ds.to_table(
                columns=["tile_id", "revision", "mask_png"],
                filter=pc.field("tile_id").isin(chunk),
            )
            for row in t.to_pylist():
                if wanted[row["tile_id"]] == row["revision"]:
                    yield row["tile_id"], latest[row["tile_id"]], row["mask_png"]
