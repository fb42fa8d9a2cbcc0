"""Tiles: the index of every stored tile, and their pixels.

Promises:
- Only tiles of a stored smear are listed: orphans of a killed ingest stay invisible.
- Tiles come in smear, then row, then column order.
- Streaming tile PNGs keeps memory flat however large the tiles table is.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

import numpy as np
import pyarrow.parquet as pq

from dataset.png import encode_rgb
from dataset.store._base import StoreBase
from dataset.store.records import _TILE_COLUMNS, StoreError, TileInfo


class TilesPart(StoreBase):
    """The tile index, one tile's pixels, and the stored tile PNGs."""

    def _tile_index(self) -> dict[str, TileInfo]:
        """Every tile of a stored smear, by id, in smear/row/column order."""

        def build() -> dict[str, TileInfo]:
            rows = self.tables.read("tiles", _TILE_COLUMNS).to_pylist()
            known = {s.smear_id for s in self.smears()}
            tiles = {r["tile_id"]: TileInfo(**r) for r in rows if r["smear_id"] in known}
            return dict(sorted(tiles.items(), key=lambda kv: (kv[1].smear_id, kv[1].y, kv[1].x)))

        return self._memo("tiles", ("tiles", "smears"), build)

    def tiles(self, smear_id: str | None = None) -> list[TileInfo]:
        """Tiles of one smear (or all), ordered by smear, then row, then column."""
        tiles = self._tile_index().values()
        return [t for t in tiles if smear_id is None or t.smear_id == smear_id]

    def tile(self, tile_id_: str) -> TileInfo:
        tile = self._tile_index().get(tile_id_)
        if tile is None:
            raise StoreError(f"No tile {tile_id_!r} in workspace {self.root}.")
        return tile

    def tile_image(self, tile_id_: str) -> np.ndarray:
        """Pixels of one tile.

        Shape:
            (h, w, 3) uint8.
        """
        t = self.tile(tile_id_)
        img = self.smear_image(t.smear_id)
        return img[t.y : t.y + t.h, t.x : t.x + t.w]

    def iter_tile_pngs(self, tile_ids: Collection[str]) -> Iterator[tuple[str, bytes]]:
        """Stream ``(tile_id, image_png)`` of the wanted tiles, each once, in table order.

        Reads the tiles table file by file, a page at a time, skipping files that hold no
        wanted tile, so memory stays flat however large the table. Tiles stored before the
        table kept their pixels are cut from their smear and encoded instead.
        """
        wanted = set(tile_ids)
        seen: set[str] = set()
        for fragment in self.tables.dataset("tiles").get_fragments():
            # pyarrow's dataset scanner reads ahead as far as memory allows; one unbuffered
            # reader per file keeps only the current batch.
            pf = pq.ParquetFile(fragment.open(), pre_buffer=False, buffer_size=2**20)
            ids = pf.read(columns=["tile_id"], use_threads=False).column(0).to_pylist()
            if wanted.isdisjoint(ids):
                continue
            has_png = "image_png" in pf.schema_arrow.names
            columns = ["tile_id", "image_png"] if has_png else ["tile_id"]
            for batch in pf.iter_batches(batch_size=64, columns=columns, use_threads=False):
                ids = batch.column(0).to_pylist()
                pngs = batch.column(1).to_pylist() if has_png else [None] * len(ids)
                for tid, png in zip(ids, pngs, strict=True):
                    if tid not in wanted or tid in seen:
                        continue
                    seen.add(tid)
                    yield tid, png if png is not None else encode_rgb(self.tile_image(tid))
