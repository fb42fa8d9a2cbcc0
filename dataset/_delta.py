"""Thin layer over Delta Lake tables: typed schemas, locked appends, durable commits.

Every table lives in ``<workspace>/tables/<name>`` and is append-only from SmearLab's side:
history is never rewritten, so every version stays readable. Appends that must check
something first (a duplicate smear, the next revision number) hold an ``fcntl`` lock on
``<workspace>/locks/<name>.lock`` for the read-check-write, which makes them safe across
processes of one machine. Small commits are compacted and checkpointed as they pile up.

Reads go through :func:`local_dataset`, never ``DeltaTable.to_pyarrow_dataset()`` with its
default filesystem; see there why (a process that read a table could abort at exit).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
from deltalake import DeltaTable, write_deltalake

from dataset.durable import fsync_dir, fsync_path, locked

TS = pa.timestamp("us", tz="UTC")

# One saved mask of a tile: the ordinary revisions and the second labels alike.
MASK_REVISIONS = pa.schema(
    [
        ("tile_id", pa.string()),
        ("revision", pa.int32()),
        ("annotator", pa.string()),
        ("created_at", TS),
        ("source", pa.string()),
        ("base_revision", pa.int32()),
        ("seconds", pa.float64()),
        ("model_id", pa.string()),
        ("n_labelled_px", pa.int64()),
        ("mask_png", pa.binary()),
        # Pixels per class (index = class value), counted at save so that releases and
        # the Dataset page need not decode masks; null in rows written before the column
        # was. Unlabelled pixels are the tile's area less ``n_labelled_px``.
        ("class_px", pa.list_(pa.int64())),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "config": pa.schema(
        [
            ("key", pa.string()),
            ("value", pa.string()),
            ("created_at", TS),
        ]
    ),
    "smears": pa.schema(
        [
            ("smear_id", pa.string()),
            ("label", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("patient", pa.string()),
            ("stain", pa.string()),
            ("magnification", pa.string()),
            ("um_per_px", pa.float64()),
            ("note", pa.string()),
            ("n_tiles", pa.int32()),
            ("tile_size", pa.int32()),
            ("created_at", TS),
            ("image_png", pa.binary()),
        ]
    ),
    "tiles": pa.schema(
        [
            ("tile_id", pa.string()),
            ("smear_id", pa.string()),
            ("x", pa.int32()),
            ("y", pa.int32()),
            ("w", pa.int32()),
            ("h", pa.int32()),
            # The tile's pixels as a lossless PNG, written at ingest so that a release copies
            # bytes instead of decoding smears; null in rows written before the column was.
            ("image_png", pa.binary()),
        ]
    ),
    "revisions": MASK_REVISIONS,
    "skips": pa.schema(
        [
            ("tile_id", pa.string()),
            ("skipped", pa.bool_()),
            ("annotator", pa.string()),
            ("created_at", TS),
        ]
    ),
    # One row per verdict on one revision of a tile (dataset/store/reviews.py); never changed.
    "reviews": pa.schema(
        [
            ("tile_id", pa.string()),
            ("revision", pa.int32()),
            ("verdict", pa.string()),
            ("reviewer", pa.string()),
            ("comment", pa.string()),
            ("created_at", TS),
        ]
    ),
    # The independent second label of a double-labelled tile (dataset/store/second_labels.py):
    # its own revisions, numbered per tile from 1, never read by training or releases.
    "second_masks": MASK_REVISIONS,
    # A reviewer's choice of which of the two labels goes into releases (one per tile).
    "mask_picks": pa.schema(
        [
            ("tile_id", pa.string()),
            ("lane", pa.string()),
            ("reviewer", pa.string()),
            ("revision", pa.int32()),
            ("created_at", TS),
        ]
    ),
    "splits": pa.schema(
        [
            ("group_key", pa.string()),
            ("split", pa.string()),
            ("seed", pa.int64()),
            ("created_at", TS),
        ]
    ),
    "releases": pa.schema(
        [
            ("version", pa.string()),
            ("message", pa.string()),
            ("seed", pa.int64()),
            ("created_at", TS),
            ("n_tiles", pa.int64()),
            ("manifest_sha256", pa.string()),
        ]
    ),
}


def local_dataset(dt: DeltaTable) -> pads.Dataset:
    """A pyarrow dataset of the table's current files, read with Arrow's own local filesystem.

    Why not ``dt.to_pyarrow_dataset()`` as it comes: without a ``filesystem`` it reads
    through ``pyarrow.fs.PyFileSystem(DeltaStorageHandler)``, so every byte read is a
    Python object wrapped in an ``arrow::py::PyBuffer``. The Parquet reader pre-buffers
    column chunks on Arrow's IO thread pool; after a scan returns, some of those read-ahead
    futures (and their PyBuffers) are still alive and are released on an IO thread. When
    that happens during interpreter shutdown, ``~PyBuffer`` asks for the GIL, CPython 3.11
    ends the thread with ``pthread_exit`` (its rule for threads that want the GIL while it
    finalises), the forced unwind meets a ``noexcept`` destructor, and ``std::terminate``
    aborts the process: exit status 134 with "terminate called without an active exception",
    after a command had printed its complete result. Measured with a bare
    ``DeltaTable(p).to_pyarrow_dataset().to_table()`` on a 500-revision table: 5-25 % of runs
    abort, with deltalake 1.6.6 / pyarrow 26.0.1 and with 1.4.2 / 24.0.0 alike, so no pin
    helps. Arrow's C++ ``LocalFileSystem`` hands out native buffers that need no GIL to be
    freed, which removes the cause (0 aborts in 60 runs of the same script).

    The table is local (``<workspace>/tables/<name>``); its files are named relative to its
    root, as ``to_pyarrow_dataset`` expects of a ``SubTreeFileSystem`` rooted there.
    """
    root = unquote(dt.table_uri.removeprefix("file://"))
    return dt.to_pyarrow_dataset(filesystem=pafs.SubTreeFileSystem(root, pafs.LocalFileSystem()))


COMPACT_EVERY = 64  # commits between compactions; each small commit adds one Parquet file


class DeltaTables:
    """The workspace's tables, opened lazily and refreshed before each read."""

    def __init__(self, root: Path, schemas: dict[str, pa.Schema] | None = None) -> None:
        self.root = root
        self.schemas = dict(SCHEMAS if schemas is None else schemas)
        self._tables: dict[str, DeltaTable] = {}
        self._open_lock = threading.RLock()  # pages share one instance across sessions
        (root / "tables").mkdir(parents=True, exist_ok=True)
        (root / "locks").mkdir(parents=True, exist_ok=True)

    def register(self, name: str, schema: pa.Schema) -> None:
        """Add a table definition (used by parts that keep their own tables)."""
        self.schemas[name] = schema

    def path(self, name: str) -> Path:
        return self.root / "tables" / name

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Exclusive cross-process lock for a read-check-write on table ``name``."""
        with locked(self.root / "locks" / f"{name}.lock"):
            yield

    def table(self, name: str) -> DeltaTable:
        """The table, created empty on first use, updated to its latest version."""
        with self._open_lock:
            dt = self._tables.get(name)
            if dt is None:
                path = self.path(name)
                if not DeltaTable.is_deltatable(str(path)):
                    with self.lock(f"{name}.create"):
                        if not DeltaTable.is_deltatable(str(path)):
                            DeltaTable.create(str(path), schema=self.schemas[name], name=name)
                dt = DeltaTable(str(path))
                self._tables[name] = dt
            else:
                dt.update_incremental()
            return dt

    def version(self, name: str) -> int:
        return self.table(name).version()

    def dataset(self, name: str) -> pads.Dataset:
        """A pyarrow dataset over the latest version (streams; nothing loaded yet)."""
        return local_dataset(self.table(name))

    def read(
        self, name: str, columns: list[str] | None = None, filter: pads.Expression | None = None
    ) -> pa.Table:
        return self.dataset(name).to_table(columns=columns, filter=filter)

    def append(self, name: str, rows: list[dict] | pa.Table) -> int:
        """Append rows in one durable commit; returns the new table version.

        The commit is atomic (Delta's log entry is written last), and the new data and log
        files are fsynced before returning, so a save reported done survives a crash.
        """
        schema = self.schemas[name]
        data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=schema)
        dt = self.table(name)
        before = dt.version()
        stored = {f.name for f in dt.schema().fields}
        # A table created by an older SmearLab gains the columns added since (old rows read
        # them as null) with its first append; otherwise the append must match exactly.
        evolve = not set(schema.names) <= stored
        write_deltalake(dt, data, mode="append", schema_mode="merge" if evolve else None)
        dt.update_incremental()
        version = dt.version()
        # Another process may have committed in between: sync every new entry, ours among them.
        for v in range(before + 1, version + 1):
            self._fsync_commit(name, v)
        if version > 0 and version % COMPACT_EVERY == 0:
            self.compact(name)
        return version

    def _fsync_commit(self, name: str, version: int) -> None:
        """fsync the data files this commit added (named in its log entry), the entry itself,
        and both folders; reading the entry keeps this O(commit), not O(table)."""
        base = self.path(name)
        log = base / "_delta_log"
        entry = log / f"{version:020d}.json"
        paths = [entry]
        with open(entry, encoding="utf-8") as fh:
            for line in fh:
                action = json.loads(line)
                if "add" in action:
                    paths.append(base / unquote(action["add"]["path"]))
        for p in paths:
            fsync_path(p)
        fsync_dir(base)
        fsync_dir(log)

    def compact(self, name: str) -> None:
        """Merge small files and write a checkpoint so reads stay fast as commits pile up.

        Old files stay referenced by old versions (no vacuum), so history remains readable.
        """
        with self.lock(f"{name}.compact"):
            dt = self.table(name)
            try:
                dt.optimize.compact()
                dt.update_incremental()
                dt.create_checkpoint()
            except Exception:  # a lost race with a concurrent writer only delays compaction
                dt.update_incremental()
