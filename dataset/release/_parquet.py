"""The files of a release being written: hashed as they are written, Parquet in row groups,
masks spilled to a temp file, tables streamed page by page.

Promises: every file written through :class:`_HashingFile` is fsynced on close and its
SHA-256 is the manifest's; memory stays flat however large the workspace (each table is
read once, page by page; masks wait in a temp file; rows go out in row groups).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Collection, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from dataset.release.manifest import (
    _IMAGE_STRUCT,
    _SCALAR_COLUMNS,
    FIELDS,
    FORMAT_VERSION,
    ReleaseError,
    ReleaseOptions,
)
from dataset.schema import UNLABELLED, ClassSchema

_MIB = 2**20


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
