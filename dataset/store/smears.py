"""Smears: storing them with their tiles, and reading them and their pixels back.

Promises:
- A smear is stored once per distinct pixel content (its id is a hash of the pixels), with
  its tiles; each tile keeps its pixels as a lossless PNG, encoded once at ingest, and a
  smear row is committed only after its tiles. A retried ingest reuses the tiles that a
  killed one left without their smear row, so no tile is stored twice.
- Tile PNGs are committed in chunks of at most ``TILE_COMMIT_BYTES``; a smear over
  ``WHOLE_PNG_MAX_PIXELS`` is kept as its tiles only.
- Every shape is checked before anything is written: a bad smear stores nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pyarrow.compute as pc

from dataset.png import PngError, decode_rgb, encode_rgb
from dataset.store._base import StoreBase
from dataset.store.records import NewSmear, SmearInfo, StoreError, TileInfo, _now
from dataset.tiling import tile_grid, tile_id

# Tile PNG bytes per commit of the tiles table: what an ingest holds of a smear's tiles.
TILE_COMMIT_BYTES = 32 * 2**20
# Above this a smear's row keeps no whole-image PNG: its tiles hold every pixel already, and
# one blob of hundreds of MB costs several times its size to write (measured: 160 MB -> 700 MB
# peak in deltalake's writer). smear_image() then puts the tiles together.
WHOLE_PNG_MAX_PIXELS = 16_000_000


class SmearsPart(StoreBase):
    """Adding smears (with their tiles) and reading smears and their pixels."""

    def _smear_ids(self) -> frozenset[str]:
        def build() -> frozenset[str]:
            t = self.tables.read("smears", ["smear_id"])
            return frozenset(t.column(0).to_pylist())

        return self._memo("smear_ids", ("smears",), build)

    def has_smear(self, smear_id: str) -> bool:
        return smear_id in self._smear_ids()

    def add_smear(self, smear: NewSmear) -> tuple[bool, list[TileInfo]]:
        """Store a smear and its tiles, unless the same pixels are stored already.

        Returns:
            ``(added, tiles)``: ``added`` is False for a duplicate, whose stored tiles are given.

        Raises:
            StoreError: ``smear.rgb`` (or what ``image_png`` decodes to) is not
                ``width`` x ``height`` RGB pixels.
        """
        return self.add_smears([smear])[0]

    def add_smears(self, smears: Sequence[NewSmear]) -> list[tuple[bool, list[TileInfo]]]:
        """Store several smears and their tiles, skipping duplicates.

        A smear whose pixels are stored already, or that repeats an earlier smear of the
        same call, is not stored again. Each tile's pixels are stored as a PNG with its row.
        Tiles are encoded and committed in chunks of at most :data:`TILE_COMMIT_BYTES` of
        PNG, so a 100-megapixel smear never holds all its tile PNGs in memory; the smears'
        rows are committed last, in one commit.

        Returns:
            ``(added, tiles)`` per smear, in the order given, as :meth:`add_smear` returns.

        Raises:
            StoreError: A smear's pixels do not match its width and height; nothing is stored.
        """
        if not smears:
            return []
        self.ensure_initialised()
        size = self.tile_size()
        known = self._smear_ids()
        pixels: dict[str, np.ndarray] = {}
        for smear in smears:  # every shape is checked before anything is written
            if smear.smear_id not in known and smear.smear_id not in pixels:
                pixels[smear.smear_id] = self._checked_pixels(smear)
        new_tiles: dict[str, list[TileInfo]] = {}
        with self.tables.lock("smears"):
            stored = self._smear_ids()
            new: dict[str, NewSmear] = {}
            for smear in smears:  # the first of repeats is the one stored
                if smear.smear_id in pixels and smear.smear_id not in stored:
                    new.setdefault(smear.smear_id, smear)
            if new:
                # Tiles first: a crash before the smears commit leaves orphan tiles, never a
                # smear without tiles. A retry reuses the orphans (same ids, same pixels: the
                # id is a hash of them) and appends only the tiles still missing.
                orphans = self._stored_tile_ids(set(new))
                chunk: list[dict] = []
                chunk_bytes = 0
                for sid, smear in new.items():
                    rgb = pixels.pop(sid)
                    boxes = tile_grid(smear.width, smear.height, size)
                    new_tiles[sid] = [
                        TileInfo(tile_id(sid, b.x, b.y), sid, b.x, b.y, b.w, b.h) for b in boxes
                    ]
                    for t in new_tiles[sid]:
                        if t.tile_id in orphans:
                            continue
                        png = encode_rgb(rgb[t.y : t.y + t.h, t.x : t.x + t.w])
                        chunk.append({**t.__dict__, "image_png": png})
                        chunk_bytes += len(png)
                        if chunk_bytes >= TILE_COMMIT_BYTES:
                            self.tables.append("tiles", chunk)
                            chunk, chunk_bytes = [], 0
                    del rgb
                if chunk:
                    self.tables.append("tiles", chunk)
                now = _now()
                self.tables.append(
                    "smears",
                    [self._smear_row(s, len(new_tiles[sid]), size, now) for sid, s in new.items()],
                )
        out = []
        for smear in smears:
            sid = smear.smear_id
            first = sid in new_tiles
            tiles = new_tiles.pop(sid) if first else self.tiles(sid)
            out.append((first, tiles))  # a repeat later in the same call is a duplicate
        return out

    def _stored_tile_ids(self, smear_ids: set[str]) -> set[str]:
        """Ids of the tiles stored for these smears (orphans, when the smears are not)."""
        t = self.tables.read("tiles", ["tile_id"], pc.field("smear_id").isin(sorted(smear_ids)))
        return set(t.column(0).to_pylist())

    @staticmethod
    def _checked_pixels(smear: NewSmear) -> np.ndarray:
        """The smear's pixels (decoded from ``image_png`` when not given), shape-checked."""
        if smear.rgb is not None:
            rgb = smear.rgb
        elif smear.image_png is not None:
            try:
                rgb = decode_rgb(smear.image_png)
            except PngError as exc:
                raise StoreError(
                    f"Smear {smear.smear_id} comes with a PNG SmearLab cannot store: {exc} "
                    "Decode the upload again."
                ) from None
        else:
            raise StoreError(f"Smear {smear.smear_id} comes with neither pixels nor a PNG.")
        if rgb.shape != (smear.height, smear.width, 3) or rgb.dtype != np.uint8:
            raise StoreError(
                f"Smear {smear.smear_id} claims {smear.width}x{smear.height} RGB pixels but "
                f"its image is {rgb.shape} {rgb.dtype}; decode the upload again."
            )
        return rgb

    @staticmethod
    def _smear_row(smear: NewSmear, n_tiles: int, size: int, now: dt.datetime) -> dict:
        return {
            "smear_id": smear.smear_id,
            "label": smear.label,
            "width": smear.width,
            "height": smear.height,
            "patient": smear.patient or None,
            "stain": smear.stain or None,
            "magnification": smear.magnification or None,
            "um_per_px": smear.um_per_px,
            "note": smear.note or None,
            "n_tiles": n_tiles,
            "tile_size": size,
            "created_at": now,
            "image_png": smear.image_png,
        }

    def smears(self) -> list[SmearInfo]:
        def build() -> list[SmearInfo]:
            cols = [f for f in SmearInfo.__dataclass_fields__]
            rows = self.tables.read("smears", cols).to_pylist()
            return sorted((SmearInfo(**r) for r in rows), key=lambda s: (s.created_at, s.smear_id))

        return list(self._memo("smears", ("smears",), build))

    def smear(self, smear_id: str) -> SmearInfo:
        cols = [f for f in SmearInfo.__dataclass_fields__]
        rows = self.tables.read("smears", cols, pc.field("smear_id") == smear_id).to_pylist()
        if not rows:
            raise StoreError(f"No smear {smear_id!r} in workspace {self.root}.")
        return SmearInfo(**rows[0])

    def _load_smear_image(self, smear_id: str) -> np.ndarray:
        t = self.tables.read(
            "smears", ["image_png", "width", "height"], pc.field("smear_id") == smear_id
        )
        if t.num_rows == 0:
            raise StoreError(f"No smear {smear_id!r} in workspace {self.root}.")
        png = t.column("image_png")[0].as_py()
        if png is not None:
            img = decode_rgb(png)
        else:  # a large smear is kept as its tiles only: put them together
            width, height = t.column("width")[0].as_py(), t.column("height")[0].as_py()
            img = np.empty((height, width, 3), dtype=np.uint8)
            rows = self.tables.read(
                "tiles", ["tile_id", "x", "y", "image_png"], pc.field("smear_id") == smear_id
            )
            for x, y, tile_png in zip(
                rows.column("x").to_pylist(),
                rows.column("y").to_pylist(),
                rows.column("image_png"),
                strict=True,
            ):
                tile = decode_rgb(tile_png.as_py())
                img[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
        img.setflags(write=False)
        return img

    def iter_smear_images(self, smear_ids: Iterable[str]) -> Iterator[tuple[str, np.ndarray]]:
        """``(smear_id, pixels)`` of many smears, read a batch at a time (in ``smear_ids``
        order); as :meth:`smear_image`, but one table scan per batch instead of one per smear.

        Raises:
            StoreError: One of ``smear_ids`` is not in the workspace.
        """
        wanted = list(dict.fromkeys(smear_ids))
        for i in range(0, len(wanted), 64):
            chunk = wanted[i : i + 64]
            t = self.tables.read(
                "smears", ["smear_id", "image_png"], pc.field("smear_id").isin(chunk)
            )
            pngs = dict(zip(t.column("smear_id").to_pylist(), t.column("image_png"), strict=True))
            for smear_id in chunk:
                if smear_id not in pngs:
                    raise StoreError(f"No smear {smear_id!r} in workspace {self.root}.")
                png = pngs[smear_id].as_py()
                if png is None:  # kept as its tiles only: put together by smear_image
                    yield smear_id, self.smear_image(smear_id)
                    continue
                img = decode_rgb(png)
                img.setflags(write=False)
                yield smear_id, img

    def smear_image(self, smear_id: str) -> np.ndarray:
        """The smear's pixels, exactly as uploaded after orientation.

        Shape:
            (H, W, 3) uint8, read-only.
        """
        return self._image_cache(smear_id)
