"""The workspace store: smears, tiles, mask revisions, the class schema and the split.

This is the one interface the pages, the CLI and training use; nothing else touches Delta.
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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from dataset._delta import DeltaTables
from dataset.png import PngError, decode_mask, decode_rgb, encode_mask, encode_rgb
from dataset.schema import UNLABELLED, ClassSchema, SchemaError
from dataset.tiling import TileBox, assemble, tile_grid, tile_id

SPLITS = ("train", "validation", "test")
# Tile PNG bytes per commit of the tiles table: what an ingest holds of a smear's tiles.
TILE_COMMIT_BYTES = 32 * 2**20
# Above this a smear's row keeps no whole-image PNG: its tiles hold every pixel already, and
# one blob of hundreds of MB costs several times its size to write (measured: 160 MB -> 700 MB
# peak in deltalake's writer). smear_image() then puts the tiles together.
WHOLE_PNG_MAX_PIXELS = 16_000_000
SPLIT_SHARES = (0.8, 0.1, 0.1)


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
            :data:`WHOLE_PNG_MAX_PIXELS`, which is kept as its tiles only.
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


def split_for_group(group_key: str, seed: int) -> str:
    """Deterministic 80/10/10 assignment of a group by a hash of seed and group."""
    h = hashlib.sha256(f"{seed}:{group_key}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    edge = 0.0
    for name, share in zip(SPLITS, SPLIT_SHARES, strict=True):
        edge += share
        if u < edge:
            return name
    return SPLITS[-1]


def group_key(patient: str | None, smear_id: str) -> str:
    """The unit that never straddles two splits: the patient, else the smear."""
    return f"patient:{patient}" if patient else f"smear:{smear_id}"


class Store:
    """A SmearLab workspace (see the module docstring for its promises)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tables = DeltaTables(self.root)
        self._latest: dict[str, Revision] = {}
        self._latest_files: set[str] = set()
        # One Store serves every browser session of the app: guard the revision cache.
        self._latest_lock = threading.RLock()
        self._image_cache = lru_cache(maxsize=8)(self._load_smear_image)
        self._memos: dict[str, tuple[tuple[int, ...], object]] = {}
        self._memo_lock = threading.RLock()

    def _memo(self, key: str, tables: tuple[str, ...], build):
        """``build()`` once per version of ``tables``: reads that run on every save (schema,
        tile index, skips) cost a version check, not a table scan, until something changes."""
        versions = tuple(self.tables.version(t) for t in tables)
        with self._memo_lock:
            hit = self._memos.get(key)
            if hit is not None and hit[0] == versions:
                return hit[1]
        value = build()
        with self._memo_lock:
            self._memos[key] = (versions, value)
        return value

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, workspace: Path | str | None = None) -> Store:
        """Open (creating if needed) the workspace; defaults to the settings' workspace."""
        if workspace is None:
            from dataset.settings import get_settings

            workspace = get_settings().workspace
        root = Path(workspace)
        if root.exists() and not root.is_dir():
            raise StoreError(f"Workspace {root} is a file; give a folder path.")
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    # ----------------------------------------------------------------- config
    def _config(self) -> dict[str, str]:
        def build() -> dict[str, str]:
            t = self.tables.read("config")
            out: dict[str, str] = {}
            for row in sorted(t.to_pylist(), key=lambda r: r["created_at"]):
                out[row["key"]] = row["value"]
            return out

        return dict(self._memo("config", ("config",), build))

    def _set_config(self, values: dict[str, str]) -> None:
        now = _now()
        self.tables.append(
            "config", [{"key": k, "value": v, "created_at": now} for k, v in values.items()]
        )

    def is_initialised(self) -> bool:
        return "classes" in self._config()

    def init(
        self,
        classes: list[str] | tuple[str, ...] | None = None,
        tile_size: int | None = None,
        colors: list[str] | None = None,
        split_seed: int = 0,
    ) -> ClassSchema:
        """Set the class list and tile size of a new workspace (or change them before labelling).

        Raises:
            SchemaError: if the class list is invalid or a revision has been saved already.
        """
        from dataset.schema import DEFAULT_CLASSES

        with self.tables.lock("config"):
            cfg = self._config()
            names = list(classes or DEFAULT_CLASSES)
            schema = ClassSchema.from_names(names)
            if colors:
                schema = ClassSchema(schema.names, tuple(c.lower() for c in colors))
            if "classes" in cfg:
                old = self.schema()
                if old.names == schema.names and old.colors == schema.colors:
                    if tile_size and int(cfg["tile_size"]) != tile_size:
                        self._check_tile_size_change()
                        self._set_config({"tile_size": str(tile_size)})
                    return old
                if self.tables.version("revisions") > 0:
                    raise SchemaError(
                        "The class list is frozen: masks have been saved with "
                        f"{', '.join(old.names)}. Start a new workspace to use other classes."
                    )
                schema = ClassSchema(schema.names, schema.colors, old.version + 1)
            size = tile_size or int(cfg.get("tile_size", 0)) or self._default_tile_size()
            if "tile_size" in cfg and size != int(cfg["tile_size"]):
                self._check_tile_size_change()
            self._set_config(
                {
                    "classes": json.dumps(list(schema.names)),
                    "colors": json.dumps(list(schema.colors)),
                    "schema_version": str(schema.version),
                    "tile_size": str(size),
                    "split_seed": cfg.get("split_seed", str(split_seed)),
                }
            )
            return schema

    def _check_tile_size_change(self) -> None:
        if self.tables.version("smears") > 0:
            raise StoreError(
                "The tile size cannot change once smears are stored; start a new workspace."
            )

    @staticmethod
    def _default_tile_size() -> int:
        from dataset.settings import get_settings

        return get_settings().tile_size

    def ensure_initialised(self) -> ClassSchema:
        """The schema, initialising the workspace with the defaults if it is new."""
        return self.schema() if self.is_initialised() else self.init()

    def schema(self) -> ClassSchema:
        cfg = self._config()
        if "classes" not in cfg:
            raise StoreError(
                f"Workspace {self.root} has no class list yet: run "
                "`python -m dataset init --classes background,erythrocyte,leukocyte,platelet`."
            )
        return ClassSchema(
            tuple(json.loads(cfg["classes"])),
            tuple(json.loads(cfg["colors"])),
            int(cfg.get("schema_version", "1")),
        )

    def schema_frozen(self) -> bool:
        return self.tables.version("revisions") > 0

    def tile_size(self) -> int:
        cfg = self._config()
        return int(cfg.get("tile_size") or self._default_tile_size())

    def split_seed(self) -> int:
        return int(self._config().get("split_seed", "0"))

    def table_versions(self) -> dict[str, int]:
        return {name: self.tables.version(name) for name in self.tables.schemas}

    # ----------------------------------------------------------------- smears
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

    def smear_image(self, smear_id: str) -> np.ndarray:
        """The smear's pixels, exactly as uploaded after orientation.

        Shape:
            (H, W, 3) uint8, read-only.
        """
        return self._image_cache(smear_id)

    # ----------------------------------------------------------------- tiles
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

    # ----------------------------------------------------------------- revisions
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
        return rev

    # ----------------------------------------------------------------- skips
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

    def skip(self, tile_id_: str, annotator: str = "") -> None:
        """Mark a tile as not worth labelling (blurred, empty); saving a mask un-skips it."""
        self.tile(tile_id_)
        self._set_skip(tile_id_, True, annotator)

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

    # ----------------------------------------------------------------- splits
    def splits_of(self, smear_ids: set[str] | list[str], seed: int | None = None) -> dict[str, str]:
        """Split of each smear, assigning (and storing) groups seen for the first time."""
        smears = {s.smear_id: s for s in self.smears()}
        missing = [s for s in smear_ids if s not in smears]
        if missing:
            raise StoreError(f"No smear {missing[0]!r} in workspace {self.root}.")
        keys = {s: group_key(smears[s].patient, s) for s in smear_ids}
        known = self._split_table()
        todo = sorted(set(keys.values()) - known.keys())
        if todo:
            with self.tables.lock("splits"):
                known = self._split_table()
                todo = sorted(set(keys.values()) - known.keys())
                if todo:
                    seed = self.split_seed() if seed is None else seed
                    now = _now()
                    rows = [
                        {
                            "group_key": g,
                            "split": split_for_group(g, seed),
                            "seed": seed,
                            "created_at": now,
                        }
                        for g in todo
                    ]
                    self.tables.append("splits", rows)
                    known.update({r["group_key"]: r["split"] for r in rows})
        return {s: known[k] for s, k in keys.items()}

    def split_of(self, smear_id: str) -> str:
        return self.splits_of([smear_id])[smear_id]

    def assign_splits(self, wanted: dict[str, str]) -> dict[str, str]:
        """Put smears' groups in chosen splits instead of hashed ones (the demo uses this so
        each split holds labelled tiles).

        A group that already has a split keeps it: an assignment is never changed, so a
        model's card and a release stay true.

        Args:
            wanted: Smear id to ``train``, ``validation`` or ``test``.

        Returns:
            The split each of those smears is in now.

        Raises:
            StoreError: An unknown smear or split name.
        """
        bad = sorted(set(wanted.values()) - set(SPLITS))
        if bad:
            raise StoreError(f"Unknown split {bad[0]!r}; use one of {', '.join(SPLITS)}.")
        smears = {s.smear_id: s for s in self.smears()}
        missing = [s for s in wanted if s not in smears]
        if missing:
            raise StoreError(f"No smear {missing[0]!r} in workspace {self.root}.")
        keys = {s: group_key(smears[s].patient, s) for s in wanted}
        with self.tables.lock("splits"):
            known = self._split_table()
            rows, now = {}, _now()
            for smear_id, key in keys.items():
                if key not in known and key not in rows:
                    rows[key] = {
                        "group_key": key,
                        "split": wanted[smear_id],
                        "seed": self.split_seed(),
                        "created_at": now,
                    }
            if rows:
                self.tables.append("splits", list(rows.values()))
                known.update({k: r["split"] for k, r in rows.items()})
        return {s: known[k] for s, k in keys.items()}

    def _split_table(self) -> dict[str, str]:
        t = self.tables.read("splits", ["group_key", "split", "created_at"])
        out: dict[str, str] = {}
        # First assignment wins for ever, even if a racing writer appended a second one.
        for r in sorted(t.to_pylist(), key=lambda r: r["created_at"], reverse=True):
            out[r["group_key"]] = r["split"]
        return out

    def split_assignment(self) -> dict[str, str]:
        """Every stored group → split (recorded in model cards and releases)."""
        return self._split_table()

    # ----------------------------------------------------------------- queries
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


__all__ = [
    "SPLITS",
    "NewSmear",
    "Revision",
    "RevisionConflict",
    "SchemaError",
    "SmearInfo",
    "Store",
    "StoreError",
    "TileInfo",
    "group_key",
    "split_for_group",
]
