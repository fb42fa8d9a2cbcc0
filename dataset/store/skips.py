"""Skips, and which tiles count as labelled.

Promises:
- A skip is an append-only row; the latest row of a tile wins, and saving a mask un-skips it.
- A tile is labelled when its latest revision has a labelled pixel and it is not skipped.
"""

from __future__ import annotations

from dataset import audit
from dataset.store._base import StoreBase
from dataset.store.records import StoreError, _now


class SkipsPart(StoreBase):
    """Marking tiles as not worth labelling, and listing the labelled ones."""

    def _skips(self) -> dict[str, bool]:
        def build() -> dict[str, bool]:
            t = self.tables.read("skips")
            out: dict[str, bool] = {}
            for r in sorted(t.to_pylist(), key=lambda r: r["created_at"]):
                out[r["tile_id"]] = r["skipped"]
            return out

        return dict(self._memo("skips", ("skips",), build))

    def _set_skip(self, tile_id_: str, skipped: bool, annotator: str) -> None:
        self.tables.append(
            "skips",
            [
                {
                    "tile_id": tile_id_,
                    "skipped": skipped,
                    "annotator": annotator,
                    "created_at": _now(),
                }
            ],
        )

    def skip(self, tile_id_: str, *, annotator: str) -> None:
        """Mark a tile as not worth labelling (blurred, empty); saving a mask un-skips it.

        Raises:
            StoreError: no annotator named, or no such tile.
        """
        if not str(annotator or "").strip():
            raise StoreError(f"Say who skips {tile_id_}: give an annotator.")
        self.tile(tile_id_)
        self._set_skip(tile_id_, True, annotator)
        audit.record(self, actor=annotator, action="skip", object_id=tile_id_)

    def skipped_tile_ids(self) -> set[str]:
        return {t for t, s in self._skips().items() if s}

    def is_skipped(self, tile_id_: str) -> bool:
        return self._skips().get(tile_id_, False)

    def labelled_tile_ids(self, split: str | None = None) -> list[str]:
        """Tiles whose latest revision has a labelled pixel and that are not skipped."""
        skipped = self.skipped_tile_ids()
        ids = sorted(
            t
            for t, r in self.latest_revisions().items()
            if r.n_labelled_px > 0 and t not in skipped
        )
        if split is None:
            return ids
        tiles = {t.tile_id: t for t in self.tiles()}
        splits = self.splits_of({tiles[t].smear_id for t in ids if t in tiles})
        return [t for t in ids if t in tiles and splits[tiles[t].smear_id] == split]
