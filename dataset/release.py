"""Releases: frozen, checksummed snapshots of the labelled tiles, in the huggingface layout.

What this module promises:

* :func:`create_release` writes ``<workspace>/releases/<version>/``: Parquet files
  ``data/{split}-NNNNN.parquet`` (``image`` and ``mask`` as ``struct<bytes, path>``, the
  huggingface features in the Parquet schema, so ``datasets.load_dataset("parquet", ...)``
  decodes both as images), a dataset card ``README.md`` and ``manifest.json`` (checksums of
  every other file).
* A release holds the latest revision of every labelled tile (at least one labelled pixel,
  tile not skipped) as it was when the release began: a save made meanwhile is not in it.
* A release appears whole or not at all. It is written into ``releases/.tmp-*``, fsynced,
  then renamed into place; only after the rename is it recorded in the ``releases`` table.
  A released version is never rewritten, and versions (SemVer, matched to the end of the
  string) only ever increase. A release folder is read-only once written (its files and
  folders, itself included), and no export writes into the releases folder.
* The split is the workspace's (:meth:`dataset.store.Store.splits_of`): no smear, and no
  patient, is ever in two splits, in any release or in training.
* Nothing identifies a person or an upload: the patient pseudonym is replaced by a hash
  salted afresh for each release (the salt is not kept, so keys cannot be linked across
  releases), and upload file names never appear; an image's and a mask's stored ``path``
  is ``"<tile_id>.png"``.
* No pixel is decoded or encoded: tile PNGs are copied as the store keeps them (encoded once,
  at ingest) and mask PNGs as they were saved. The card's class pixel counts are the ones
  stored with each revision; only masks saved before the store kept counts are decoded.
* Memory stays flat: each table is read once, streamed page by page; masks wait in a temp
  file; rows go out in row groups.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import stat
import zipfile
from collections import deque
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from functools import total_ordering
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from dataset._delta import local_dataset
from dataset.card import render_card
from dataset.durable import fsync_dir
from dataset.png import PngError, decode_mask, encode_indexed, mask_histogram, read_header
from dataset.schema import UNLABELLED, UNLABELLED_NAME, ClassSchema
from dataset.store import SPLITS, Store, StoreError, TileInfo

__all__ = [
    "FIELDS",
    "ClassEntry",
    "Mismatch",
    "ReleaseError",
    "ReleaseField",
    "ReleaseInfo",
    "ReleaseManifest",
    "ReleaseOptions",
    "SemVer",
    "VerifyReport",
    "create_release",
    "export_release",
    "list_releases",
    "release_dir",
    "verify_release",
]

FORMAT_VERSION = 1  # of the release layout (columns, manifest); bumped on incompatible change
UNLABELLED_COLOR = "#000000"
_MIB = 2**20

ProgressFn = Callable[[int, int], None]


class ReleaseError(StoreError):
    """A release request SmearLab refuses, saying what to do instead."""


# ----------------------------------------------------------------------------- versions
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\Z"  # \Z: "1.0.1\n" is no version
)


@total_ordering
@dataclass(frozen=True, eq=False)
class SemVer:
    """A Semantic Versioning 2.0.0 version; compares by precedence (build metadata ignored)."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        """Parse ``MAJOR.MINOR.PATCH[-pre.release][+build]``.

        Raises:
            ReleaseError: ``text`` is not a SemVer version.
        """
        m = _SEMVER.fullmatch(text or "")
        if not m:
            hint = f" (drop the leading 'v': {text[1:]})" if text[:1] in "vV" else ""
            raise ReleaseError(
                f"{text!r} is not a version of the form MAJOR.MINOR.PATCH, e.g. 1.2.0 or "
                f"1.2.0-rc.1 (semver.org){hint}."
            )
        pre = tuple(m.group(4).split(".")) if m.group(4) else ()
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, m.group(5) or "")

    def _key(self) -> tuple:
        # A pre-release sorts before its release; numeric identifiers before alphanumeric
        # ones, numbers by value; a shorter run of equal identifiers first (semver.org §11).
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and self._key() == other._key()

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        pre = f"-{'.'.join(self.pre)}" if self.pre else ""
        build = f"+{self.build}" if self.build else ""
        return f"{self.major}.{self.minor}.{self.patch}{pre}{build}"

    def next_patch(self) -> SemVer:
        """The smallest plain release above this one (1.2.0-rc.1 → 1.2.0, 1.2.0 → 1.2.1)."""
        if self.pre:
            return SemVer(self.major, self.minor, self.patch)
        return SemVer(self.major, self.minor, self.patch + 1)


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class ReleaseOptions:
    """How a release is cut into files; the defaults suit huggingface and DuckDB readers.

    Attributes:
        rows_per_group: Rows per Parquet row group (huggingface uses 100 for image sets).
        max_file_rows: Start a new ``{split}-NNNNN.parquet`` after this many rows.
        max_file_bytes: ... or once a file has grown past this many bytes.
        workers: Threads decoding the masks saved before the store kept class pixel counts
            (Pillow inflates with the GIL released), beside the thread writing the files.
    """

    rows_per_group: int = 100
    max_file_rows: int = 50_000
    max_file_bytes: int = 256 * _MIB
    workers: int = 2


@dataclass(frozen=True)
class ReleaseField:
    """One column of a release: its Arrow type, huggingface feature and meaning."""

    name: str
    arrow: pa.DataType
    feature: dict
    doc: str


_IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_TS = pa.timestamp("us", tz="UTC")


def _value(dtype: str) -> dict:
    return {"dtype": dtype, "_type": "Value"}


FIELDS: tuple[ReleaseField, ...] = (
    ReleaseField("image", _IMAGE_STRUCT, {"_type": "Image"}, "RGB tile, lossless PNG"),
    ReleaseField(
        "mask",
        _IMAGE_STRUCT,
        {"_type": "Image"},
        f"class index per pixel, 8-bit greyscale PNG; {UNLABELLED} = unlabelled",
    ),
    ReleaseField("tile_id", pa.string(), _value("string"), "`<smear_id>_x<x>_y<y>`"),
    ReleaseField("smear_id", pa.string(), _value("string"), "hash of the smear's pixels"),
    ReleaseField(
        "patient_key",
        pa.string(),
        _value("string"),
        "salted hash of the patient pseudonym, valid within this release only; null if none",
    ),
    ReleaseField("x", pa.int32(), _value("int32"), "left edge of the tile in the smear (pixels)"),
    ReleaseField("y", pa.int32(), _value("int32"), "top edge of the tile in the smear (pixels)"),
    ReleaseField("w", pa.int32(), _value("int32"), "tile width (pixels)"),
    ReleaseField("h", pa.int32(), _value("int32"), "tile height (pixels)"),
    ReleaseField("annotator", pa.string(), _value("string"), "who saved the released revision"),
    ReleaseField("revision", pa.int32(), _value("int32"), "revision number of the mask (from 1)"),
    ReleaseField("source", pa.string(), _value("string"), "`manual`, `import` or `prefill`"),
    ReleaseField(
        "labelled_at", _TS, _value("timestamp[us, tz=UTC]"), "when that revision was saved (UTC)"
    ),
)
_SCALAR_COLUMNS = [f.name for f in FIELDS if f.arrow != _IMAGE_STRUCT]


class ClassEntry(BaseModel):
    """A mask value and what it means."""

    value: int
    name: str
    color: str


class ReleaseManifest(BaseModel):
    """``manifest.json``: what a release holds and the checksum of every other file in it."""

    format: Literal["smearlab-release"] = "smearlab-release"
    format_version: int = FORMAT_VERSION
    version: str
    message: str
    created_at: dt.datetime
    seed: int
    license: str
    schema_version: int
    classes: list[ClassEntry]
    unlabelled: ClassEntry
    image_path: str = "<tile_id>.png"
    rows: dict[str, int]
    smears: dict[str, int]
    patients: dict[str, int]
    class_pixel_counts: dict[str, int]
    class_pixel_shares: dict[str, float] = Field(
        description="share of each class among labelled pixels"
    )
    table_versions: dict[str, int]
    files: dict[str, str] = Field(default_factory=dict, description="path → sha256")

    @property
    def n_tiles(self) -> int:
        return sum(self.rows.values())


class ReleaseInfo(BaseModel):
    """A release as the pages and the CLI list it."""

    version: str
    message: str
    seed: int
    created_at: dt.datetime
    path: Path
    counts: dict[str, int]
    n_tiles: int
    class_pixel_shares: dict[str, float]
    license: str = ""
    manifest_sha256: str = ""


class Mismatch(BaseModel):
    """A file of a release that differs from its manifest."""

    path: str
    problem: Literal["missing", "changed", "unexpected", "manifest"]
    expected: str | None = None
    actual: str | None = None

    def __str__(self) -> str:
        what = {
            "missing": "is missing",
            "changed": "has changed since release",
            "unexpected": "was added after release",
            "manifest": "differs from the manifest recorded at release",
        }[self.problem]
        return f"{self.path} {what}"


class VerifyReport(BaseModel):
    """Outcome of :func:`verify_release`."""

    version: str
    ok: bool
    checked: int
    mismatches: list[Mismatch]


# ----------------------------------------------------------------------------- paths
def _releases_root(store: Store) -> Path:
    return store.root / "releases"


def release_dir(store: Store, version: str) -> Path:
    """Folder of a release (``<workspace>/releases/<version>``); the version is validated."""
    SemVer.parse(version)
    return _releases_root(store) / version


def _on_disk(store: Store) -> dict[str, Path]:
    root = _releases_root(store)
    if not root.is_dir():
        return {}
    out = {}
    for p in root.iterdir():
        if p.is_dir() and not p.name.startswith(".") and _SEMVER.fullmatch(p.name):
            out[p.name] = p
    return out


# ----------------------------------------------------------------------------- masks
def _check_mask_header(mask_png: bytes, w: int, h: int) -> None:
    """Refuse a mask that is not a ``w`` x ``h`` 8-bit grey PNG, from its header alone."""
    head = read_header(mask_png)
    if head is None or (head.width, head.height) != (w, h) or head.mode != "L":
        shown = f"{head.width}x{head.height} {head.mode}" if head else "not a PNG"
        raise ReleaseError(
            f"A stored mask is {shown} but its tile needs {w}x{h} L (8-bit class indices); "
            "the workspace is damaged, run the store checks."
        )


def _stored_counts(
    class_px: list[int] | None, n_classes: int, n_labelled_px: int, w: int, h: int
) -> np.ndarray | None:
    """Pixels per mask value from the counts stored with a revision; None if it has none.

    Shape:
        returns (256,) int64.
    """
    if class_px is None or len(class_px) != n_classes:
        return None
    counts = np.zeros(256, dtype=np.int64)
    counts[:n_classes] = class_px
    counts[UNLABELLED] = w * h - n_labelled_px
    return counts


def _mask_counts(mask_png: bytes, w: int, h: int) -> np.ndarray:
    """Pixels per mask value of one released mask, decoded (runs in a worker thread); for
    revisions saved before the store kept class pixel counts.

    Shape:
        returns (256,) int64.
    """
    _check_mask_header(mask_png, w, h)
    try:
        return mask_histogram(mask_png)
    except PngError as exc:
        raise ReleaseError(f"{exc} The workspace is damaged, run the store checks.") from None


# ----------------------------------------------------------------------------- writing
class _HashingFile:
    """Write-only file that hashes what passes through and fsyncs on close."""

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "xb")  # noqa: SIM115 - closed in close()
        self._sha = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._sha.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> str:
        if not self.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self.closed = True
        return self._sha.hexdigest()


def _write_bytes(path: Path, data: bytes) -> str:
    f = _HashingFile(path)
    f.write(data)
    return f.close()


def _arrow_schema(schema: ClassSchema, version: str) -> pa.Schema:
    features = {f.name: f.feature for f in FIELDS}
    meta = {
        "huggingface": json.dumps({"info": {"features": features}}),
        "smearlab": json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "release": version,
                "classes": list(schema.names),
                "colors": list(schema.colors),
                "schema_version": schema.version,
                "unlabelled": UNLABELLED,
            }
        ),
    }
    return pa.schema([(f.name, f.arrow) for f in FIELDS], metadata=meta)


class _SplitWriter:
    """Rows of one split into ``data/{split}-NNNNN.parquet``, in row groups, rolling files."""

    def __init__(self, data_dir: Path, split: str, schema: pa.Schema, opts: ReleaseOptions):
        self.data_dir, self.split, self.schema, self.opts = data_dir, split, schema, opts
        self.files: dict[str, str] = {}  # relative path → sha256
        self.rows = 0
        self._buf: list[dict] = []
        self._file: _HashingFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._name = ""
        self._file_rows = 0

    def add(self, row: dict) -> None:
        self._buf.append(row)
        if len(self._buf) >= self.opts.rows_per_group:
            self._flush()

    def _open(self) -> None:
        self._name = f"data/{self.split}-{len(self.files):05d}.parquet"
        self._file = _HashingFile(self.data_dir.parent / self._name)
        self._writer = pq.ParquetWriter(
            self._file,
            self.schema,
            compression={"image.bytes": "none", "mask.bytes": "none"} | self._zstd(),
            use_dictionary=["smear_id", "patient_key", "annotator", "source"],
            write_statistics=_SCALAR_COLUMNS,
        )
        self._file_rows = 0

    @staticmethod
    def _zstd() -> dict[str, str]:
        paths = ["image.path", "mask.path", *_SCALAR_COLUMNS]
        return dict.fromkeys(paths, "zstd")

    def _flush(self) -> None:
        if not self._buf:
            return
        if self._writer is None:
            self._open()
        assert self._writer is not None and self._file is not None
        cols = {name: [r[name] for r in self._buf] for name in _SCALAR_COLUMNS}
        arrays = [
            pa.StructArray.from_arrays(
                [
                    pa.array([r[f"{kind}_png"] for r in self._buf], pa.binary()),
                    pa.array([f"{r['tile_id']}.png" for r in self._buf], pa.string()),
                ],
                fields=list(_IMAGE_STRUCT),
            )
            for kind in ("image", "mask")
        ] + [pa.array(cols[f.name], f.arrow) for f in FIELDS[2:]]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.rows += len(self._buf)
        self._file_rows += len(self._buf)
        self._buf = []
        if (
            self._file_rows >= self.opts.max_file_rows
            or self._file.size >= self.opts.max_file_bytes
        ):
            self._close_file()

    def _close_file(self) -> None:
        assert self._writer is not None and self._file is not None
        self._writer.close()
        self.files[self._name] = self._file.close()
        self._writer = self._file = None

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._close_file()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            if self._writer is not None:
                self._writer.close()
        with contextlib.suppress(Exception):
            if self._file is not None:
                self._file.close()


def _patient_key(salt: bytes, patient: str | None) -> str | None:
    if not patient:
        return None
    return hmac.new(salt, patient.encode(), hashlib.sha256).hexdigest()[:16]


class _MaskSpill:
    """The released mask PNGs, gathered in one pass over the revisions table into a temp file.

    The revisions table is in save order and the smears table in upload order; spilling the
    masks (and keeping only offsets in memory) lets the release walk the smears in their own
    order while reading each table once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "w+b")  # noqa: SIM115 - closed in close()
        self._index: dict[str, tuple[int, int]] = {}
        self.class_px: dict[str, list[int] | None] = {}

    def fill(self, revisions: pads.Dataset, wanted: dict[str, int]) -> None:
        offset = 0
        columns = ["tile_id", "revision", "mask_png"]
        for batch in _stream(revisions, columns, "tile_id", wanted, optional=["class_px"]):
            ids = batch.column("tile_id").to_pylist()
            revs = batch.column("revision").to_pylist()
            pngs = batch.column("mask_png")
            names = batch.schema.names
            pxs = batch.column("class_px") if "class_px" in names else None
            for i, (tid, rev) in enumerate(zip(ids, revs, strict=True)):
                if wanted.get(tid) == rev and tid not in self._index:
                    data = pngs[i].as_py()
                    self._fh.write(data)
                    self._index[tid] = (offset, len(data))
                    self.class_px[tid] = None if pxs is None else pxs[i].as_py()
                    offset += len(data)
        self._fh.flush()
        missing = sorted(set(wanted) - set(self._index))
        if missing:
            t = missing[0]
            raise ReleaseError(
                f"Revision {wanted[t]} of tile {t} is not in the revisions table "
                f"({len(missing)} tiles affected); the workspace is damaged."
            )

    def get(self, tile_id: str) -> bytes:
        offset, length = self._index[tile_id]
        return os.pread(self._fh.fileno(), length, offset)

    def close(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)


def _stream(
    dataset: pads.Dataset,
    columns: list[str],
    key: str,
    wanted: Collection[str],
    batch_size: int = 64,
    optional: Collection[str] = (),
) -> Iterator[pa.RecordBatch]:
    """Batches of ``columns`` from files holding a wanted ``key``, read page by page.

    ``optional`` columns are read from the files that have them (files written before a
    column was added lack it). pyarrow's dataset scanner reads ahead as far as memory allows
    (a 1 GB smears table was in memory within seconds); reading each file with its own
    unbuffered reader keeps only the current batch.
    """
    for fragment in dataset.get_fragments():
        pf = pq.ParquetFile(fragment.open(), pre_buffer=False, buffer_size=_MIB)
        keys = pf.read(columns=[key], use_threads=False).column(0).to_pylist()
        if not any(k in wanted for k in keys):
            continue
        present = [c for c in optional if c in pf.schema_arrow.names]
        yield from pf.iter_batches(
            batch_size=batch_size, columns=[*columns, *present], use_threads=False
        )


# ----------------------------------------------------------------------------- create
def create_release(
    store: Store,
    version: str,
    message: str,
    seed: int | None = None,
    on_progress: ProgressFn | None = None,
    *,
    license: str = "other",
    options: ReleaseOptions | None = None,
) -> ReleaseInfo:
    """Freeze the latest revision of every labelled tile into ``releases/<version>``.

    Args:
        version: SemVer, higher than every earlier release of the workspace.
        message: What changed since the last release (shown in the card and listings).
        seed: Split seed for groups assigned for the first time (default: the workspace's).
            Groups assigned before keep their split.
        on_progress: Called with ``(tiles_done, tiles_total)`` as tiles are written.
        license: Licence identifier for the card (huggingface ``license:`` value).
        options: File layout; the defaults suit most uses.

    Returns:
        The new release.

    Raises:
        ReleaseError: Bad or non-increasing version, no message, or nothing labelled yet.
    """
    target = SemVer.parse(version)
    if not message or not message.strip():
        raise ReleaseError("Give a release message saying what changed, e.g. -m 'More WBCs'.")
    opts = options or ReleaseOptions()
    root = _releases_root(store)
    root.mkdir(parents=True, exist_ok=True)
    with store.tables.lock("releases"):
        _clean_temps(root)
        _adopt_orphans(store)
        _check_version(store, target, version)
        seed = store.split_seed() if seed is None else int(seed)
        tmp = root / f".tmp-{version}-{secrets.token_hex(4)}"
        try:
            manifest = _write_release(
                store, tmp, version, message.strip(), seed, license, opts, on_progress
            )
            final = root / version
            _make_read_only(tmp)
            os.rename(tmp, final)  # atomic: the release appears whole or not at all
            fsync_dir(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        manifest_sha = hashlib.sha256((final / "manifest.json").read_bytes()).hexdigest()
        _record(store, manifest, manifest_sha)
    return _info(manifest, final, manifest_sha)


def _check_version(store: Store, target: SemVer, version: str) -> None:
    existing = set(_recorded(store)) | set(_on_disk(store))
    if version in existing or (_releases_root(store) / version).exists():
        raise ReleaseError(
            f"Release {version} exists already and is never rewritten; "
            f"release the changes as {_suggest(existing)}."
        )
    same = [v for v in existing if SemVer.parse(v) == target]
    if same:
        raise ReleaseError(
            f"Version {version} has the same precedence as release {same[0]} (build metadata "
            f"after '+' does not count); use {_suggest(existing)}."
        )
    if existing:
        latest = max(existing, key=SemVer.parse)
        if target < SemVer.parse(latest):
            raise ReleaseError(
                f"Version {version} is lower than the latest release {latest}; versions must "
                f"increase. Use {_suggest(existing)} or higher."
            )


def _suggest(existing: set[str]) -> str:
    if not existing:
        return "1.0.0"
    return str(max(SemVer.parse(v) for v in existing).next_patch())


def _write_release(
    store: Store,
    tmp: Path,
    version: str,
    message: str,
    seed: int,
    license: str,
    opts: ReleaseOptions,
    on_progress: ProgressFn | None,
) -> ReleaseManifest:
    schema = store.schema()
    tiles = {t.tile_id: t for t in store.tiles()}
    labelled = store.labelled_tile_ids()
    # Freeze what is released: the latest revisions as of now, read from the revisions table
    # at a version that holds them all. A save made during the release is not in it.
    latest = store.latest_revisions()
    revisions_table = store.tables.table("revisions")
    revisions_version = revisions_table.version()
    revisions = local_dataset(revisions_table)
    ids = [t for t in labelled if t in tiles and latest[t].n_labelled_px > 0]
    if not ids:
        raise ReleaseError(
            "Nothing to release: no tile has a saved mask with a labelled pixel. "
            "Label some tiles first."
        )
    smears = {s.smear_id: s for s in store.smears()}
    by_smear: dict[str, list[TileInfo]] = {}
    for t in sorted((tiles[i] for i in ids), key=lambda t: (t.smear_id, t.y, t.x)):
        by_smear.setdefault(t.smear_id, []).append(t)
    split_of = store.splits_of(set(by_smear), seed)
    table_versions = store.table_versions() | {"revisions": revisions_version}
    salt = secrets.token_bytes(16)
    (tmp / "data").mkdir(parents=True)

    rows = {s: 0 for s in SPLITS}
    n_smears = {s: 0 for s in SPLITS}
    patients: dict[str, set[str]] = {s: set() for s in SPLITS}
    for smear_id, group in by_smear.items():
        split = split_of[smear_id]
        rows[split] += len(group)
        n_smears[split] += 1
        if smears[smear_id].patient:
            patients[split].add(smears[smear_id].patient)

    arrow_schema = _arrow_schema(schema, version)
    writers = {s: _SplitWriter(tmp / "data", s, arrow_schema, opts) for s in SPLITS}
    spill = _MaskSpill(tmp / ".masks.spill")
    patient_keys = {sid: _patient_key(salt, smears[sid].patient) for sid in by_smear}
    counts = np.zeros(256, dtype=np.int64)
    n_classes = len(schema.names)
    done, total = 0, len(ids)
    pending: deque[tuple[str, dict, np.ndarray | cf.Future]] = deque()

    def drain(keep: int) -> None:
        nonlocal done
        while len(pending) > keep:
            split, row, tile_counts = pending.popleft()
            counts[:] += tile_counts.result() if isinstance(tile_counts, cf.Future) else tile_counts
            writers[split].add(row)
            done += 1
            if on_progress is not None and (done % 64 == 0 or done == total):
                on_progress(done, total)

    try:
        spill.fill(revisions, {t: latest[t].revision for t in ids})
        with cf.ThreadPoolExecutor(max_workers=max(1, opts.workers)) as pool:
            for tid, image_png in store.iter_tile_pngs(ids):
                t, rev = tiles[tid], latest[tid]
                mask_png = spill.get(tid)
                row = {
                    "image_png": image_png,
                    "mask_png": mask_png,
                    "tile_id": tid,
                    "smear_id": t.smear_id,
                    "patient_key": patient_keys[t.smear_id],
                    "x": t.x,
                    "y": t.y,
                    "w": t.w,
                    "h": t.h,
                    "annotator": rev.annotator,
                    "revision": rev.revision,
                    "source": rev.source,
                    "labelled_at": rev.created_at,
                }
                stored = _stored_counts(spill.class_px[tid], n_classes, rev.n_labelled_px, t.w, t.h)
                if stored is not None:
                    _check_mask_header(mask_png, t.w, t.h)
                    pending.append((split_of[t.smear_id], row, stored))
                else:  # saved before the store kept counts: decode in a worker
                    fut = pool.submit(_mask_counts, mask_png, t.w, t.h)
                    pending.append((split_of[t.smear_id], row, fut))
                # Enough masks in flight to keep the workers busy; the PNGs wait in memory.
                drain(keep=64 * max(1, opts.workers))
            drain(keep=0)
        if done != total:
            raise ReleaseError(
                f"Only {done} of {total} labelled tiles are in the tiles table; "
                "the workspace is damaged."
            )
        files: dict[str, str] = {}
        for w in writers.values():
            w.close()
            files.update(w.files)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    finally:
        spill.close()

    names = list(schema.names)
    labelled_total = int(counts[: len(names)].sum())
    manifest = ReleaseManifest(
        version=version,
        message=message,
        created_at=dt.datetime.now(dt.UTC),
        seed=seed,
        license=license,
        schema_version=schema.version,
        classes=[ClassEntry(value=i, name=n, color=schema.colors[i]) for i, n in enumerate(names)],
        unlabelled=ClassEntry(value=UNLABELLED, name=UNLABELLED_NAME, color=UNLABELLED_COLOR),
        rows=rows,
        smears=n_smears,
        patients={s: len(p) for s, p in patients.items()},
        class_pixel_counts={n: int(counts[i]) for i, n in enumerate(names)}
        | {UNLABELLED_NAME: int(counts[UNLABELLED])},
        class_pixel_shares={
            n: (int(counts[i]) / labelled_total if labelled_total else 0.0)
            for i, n in enumerate(names)
        },
        table_versions=table_versions,
    )
    files["README.md"] = _write_bytes(
        tmp / "README.md", render_card(manifest, FIELDS, sorted(files)).encode()
    )
    manifest.files = dict(sorted(files.items()))
    _write_bytes(tmp / "manifest.json", manifest.model_dump_json(indent=2).encode())
    fsync_dir(tmp / "data")
    fsync_dir(tmp)
    return manifest


def _record(store: Store, manifest: ReleaseManifest, manifest_sha: str) -> None:
    store.tables.append(
        "releases",
        [
            {
                "version": manifest.version,
                "message": manifest.message,
                "seed": manifest.seed,
                "created_at": manifest.created_at,
                "n_tiles": manifest.n_tiles,
                "manifest_sha256": manifest_sha,
            }
        ],
    )


def _recorded(store: Store) -> dict[str, dict]:
    return {r["version"]: r for r in store.tables.read("releases").to_pylist()}


_READ_ONLY_FILE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_READ_ONLY_DIR = _READ_ONLY_FILE | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


def _make_read_only(folder: Path) -> None:
    """Files r--r--r--, folders r-xr-xr-x, the release folder itself included.

    Nobody can then add a file into a release by accident (an export's ``--out``, a
    script). Root ignores mode bits, so the guarantee that holds for everyone is the
    ``--out`` refusal in :func:`export_release` plus :func:`verify_release`.
    """
    for p in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        p.chmod(_READ_ONLY_DIR if p.is_dir() else _READ_ONLY_FILE)
    folder.chmod(_READ_ONLY_DIR)


def _clean_temps(root: Path) -> None:
    """Remove what a release killed mid-write left behind (called under the release lock)."""
    for p in root.glob(".tmp-*"):
        for q in [p, *p.rglob("*")]:  # a temp killed after _make_read_only: writable again
            if q.is_dir():
                with contextlib.suppress(OSError):
                    q.chmod(stat.S_IRWXU)
        shutil.rmtree(p, ignore_errors=True)


def _adopt_orphans(store: Store) -> None:
    """Record releases whose rename happened but whose table row was never written."""
    recorded = _recorded(store)
    for version, path in sorted(_on_disk(store).items(), key=lambda kv: SemVer.parse(kv[0])):
        mpath = path / "manifest.json"
        if version in recorded or not mpath.is_file():
            continue
        raw = mpath.read_bytes()
        manifest = ReleaseManifest.model_validate_json(raw)
        _record(store, manifest, hashlib.sha256(raw).hexdigest())


def _load_manifest(path: Path) -> ReleaseManifest:
    return ReleaseManifest.model_validate_json((path / "manifest.json").read_bytes())


def _info(m: ReleaseManifest, path: Path, manifest_sha: str) -> ReleaseInfo:
    return ReleaseInfo(
        version=m.version,
        message=m.message,
        seed=m.seed,
        created_at=m.created_at,
        path=path,
        counts=dict(m.rows),
        n_tiles=m.n_tiles,
        class_pixel_shares=dict(m.class_pixel_shares),
        license=m.license,
        manifest_sha256=manifest_sha,
    )


# ----------------------------------------------------------------------------- reading
def list_releases(store: Store) -> list[ReleaseInfo]:
    """Recorded releases, oldest version first."""
    out = []
    for version, row in _recorded(store).items():
        path = _releases_root(store) / version
        if (path / "manifest.json").is_file():
            out.append(_info(_load_manifest(path), path, row["manifest_sha256"]))
        else:  # deleted by hand: still listed, so its version is never reused
            out.append(
                ReleaseInfo(
                    version=version,
                    message=row["message"],
                    seed=row["seed"],
                    created_at=row["created_at"],
                    path=path,
                    counts={},
                    n_tiles=row["n_tiles"],
                    class_pixel_shares={},
                    manifest_sha256=row["manifest_sha256"],
                )
            )
    return sorted(out, key=lambda r: SemVer.parse(r.version))


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_MIB):
            h.update(chunk)
    return h.hexdigest()


def verify_release(store: Store, version: str) -> VerifyReport:
    """Check every file of a release against its manifest, and the manifest against the table.

    Raises:
        ReleaseError: There is no such release.
    """
    path = release_dir(store, version)
    if not (path / "manifest.json").is_file():
        raise ReleaseError(f"No release {version} in {_releases_root(store)}.")
    mismatches: list[Mismatch] = []
    raw = (path / "manifest.json").read_bytes()
    row = _recorded(store).get(version)
    actual = hashlib.sha256(raw).hexdigest()
    if row is not None and row["manifest_sha256"] != actual:
        mismatches.append(
            Mismatch(
                path="manifest.json",
                problem="manifest",
                expected=row["manifest_sha256"],
                actual=actual,
            )
        )
    manifest = ReleaseManifest.model_validate_json(raw)
    for rel, expected in manifest.files.items():
        p = path / rel
        if not p.is_file():
            mismatches.append(Mismatch(path=rel, problem="missing", expected=expected))
            continue
        got = _sha256_file(p)
        if got != expected:
            mismatches.append(Mismatch(path=rel, problem="changed", expected=expected, actual=got))
    known = {*manifest.files, "manifest.json"}
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).as_posix()
        if p.is_file() and rel not in known:
            mismatches.append(Mismatch(path=rel, problem="unexpected"))
    return VerifyReport(
        version=version, ok=not mismatches, checked=len(manifest.files) + 1, mismatches=mismatches
    )


# ----------------------------------------------------------------------------- export
def export_release(store: Store, version: str, fmt: Literal["zip", "png-masks"], out: Path) -> Path:
    """Package a release for download, after checking it against its manifest.

    ``zip``: the release folder as is (card, manifest, Parquet files) under one top folder.
    ``png-masks``: one palette PNG per tile, ``masks/<split>/<tile_id>.png``, whose pixel
    values are class indices (255 unlabelled) and whose palette shows the class colours,
    with ``legend.json`` and ``legend.csv`` mapping value → class name and colour.

    Args:
        out: A folder to write into (the file is named after the release), or a ``.zip`` path.

    Returns:
        The zip file written (atomically: a partial file is never left under its name).

    Raises:
        ReleaseError: Unknown format, no such release, the release fails verification, or
            ``out`` lies inside the workspace's releases folder.
    """
    if fmt not in ("zip", "png-masks"):
        raise ReleaseError(f"Unknown export format {fmt!r}; use 'zip' or 'png-masks'.")
    report = verify_release(store, version)
    if not report.ok:
        problems = "; ".join(map(str, report.mismatches))
        raise ReleaseError(
            f"Release {version} does not match its manifest ({problems}); it will not be "
            "exported. Restore it from a backup or make a new release."
        )
    src = release_dir(store, version)
    stem = f"smearlab-release-{version}" + ("-masks" if fmt == "png-masks" else "")
    out = Path(out)
    target = out if out.suffix == ".zip" else out / f"{stem}.zip"
    releases = _releases_root(store).resolve()
    if target.resolve().is_relative_to(releases):
        raise ReleaseError(
            f"Cannot export to {str(out)!r}: it is inside the workspace's releases folder "
            f"({releases}), where releases are kept exactly as written. Give --out a path "
            "outside it, e.g. ~/exports."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        with zipfile.ZipFile(part, "w") as zf:
            if fmt == "zip":
                _zip_release(zf, src, stem)
            else:
                _zip_masks(zf, src, stem, _load_manifest(src))
        with open(part, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return target


def _zip_release(zf: zipfile.ZipFile, src: Path, stem: str) -> None:
    for p in sorted(src.rglob("*")):
        if p.is_file():
            # Parquet pages here are PNGs already: deflating them again only costs time.
            method = zipfile.ZIP_STORED if p.suffix == ".parquet" else zipfile.ZIP_DEFLATED
            zf.write(p, f"{stem}/{p.relative_to(src).as_posix()}", compress_type=method)


def _legend(manifest: ReleaseManifest) -> list[ClassEntry]:
    return [*manifest.classes, manifest.unlabelled]


def _zip_masks(zf: zipfile.ZipFile, src: Path, stem: str, manifest: ReleaseManifest) -> None:
    legend = _legend(manifest)
    palette = np.zeros((256, 3), dtype=np.uint8)
    for e in legend:
        palette[e.value] = [int(e.color[i : i + 2], 16) for i in (1, 3, 5)]
    zf.writestr(
        f"{stem}/legend.json",
        json.dumps(
            {
                "release": manifest.version,
                "unlabelled_value": UNLABELLED,
                "classes": [e.model_dump() for e in legend],
            },
            indent=2,
        ),
    )
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["value", "name", "color"])
    for e in legend:
        w.writerow([e.value, e.name, e.color])
    zf.writestr(f"{stem}/legend.csv", buf.getvalue())
    for rel in sorted(manifest.files):
        if not rel.endswith(".parquet"):
            continue
        split = Path(rel).name.rsplit("-", 1)[0]
        pf = pq.ParquetFile(src / rel)
        for batch in pf.iter_batches(batch_size=256, columns=["tile_id", "mask"]):
            ids = batch.column("tile_id").to_pylist()
            pngs = batch.column("mask").field("bytes").to_pylist()
            for tid, png in zip(ids, pngs, strict=True):
                data = encode_indexed(decode_mask(png), palette)
                zf.writestr(f"{stem}/masks/{split}/{tid}.png", data)
