"""Uploading smear photos into the workspace store.

What this module promises:

* Every upload gets exactly one :class:`IngestResult`: ``added`` (with its tile count),
  ``duplicate`` (the same pixels are stored already; nothing is written) or ``rejected``
  (with a reason that names the upload and says what to do).
* Good files are stored even when others in the same call are bad, and a rejected file
  writes nothing: the store is untouched by it.
* What is stored is the upright pixels only, losslessly (EXIF orientation applied, then
  EXIF, ICC and every other metadata dropped; see :mod:`dataset.images`).
* An upload's name is kept only as a label in the workspace (its last path component);
  it is never used as a path.
* Memory is bounded (:mod:`dataset.limits`): a file over the size limit, a device or a
  FIFO is refused before it is read; uploads are taken one at a time and decoded from their
  file; an image over the pixel limit, with a side under 32 px or an aspect ratio over 20
  is refused from its header. The largest accepted image (100 megapixels) peaks under 1 GB
  (``bench/memory_bench.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from dataset import audit
from dataset.images import (
    ACCEPTED_FORMATS,
    DecodedImage,
    ImageRejected,
    decode_image,
    encode_png_lossless,
    smear_id_for,
)
from dataset.limits import InputLimits, InputRefused, input_limits, open_input_file
from dataset.store import WHOLE_PNG_MAX_PIXELS, NewSmear, Store

__all__ = [
    "IMAGE_SUFFIXES",
    "IngestResult",
    "MetaError",
    "SmearMeta",
    "ingest_files",
    "ingest_paths",
    "store_decoded",
    "upload_label",
]

Status = Literal["added", "duplicate", "rejected"]
ProgressFn = Callable[[int, int], None]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_LABEL_MAX = 120
_TEXT_LIMITS = {"patient": 64, "stain": 64, "magnification": 32, "note": 1000}


class MetaError(ValueError):
    """Smear metadata that cannot be stored, with the field and what to enter instead."""


@dataclass(frozen=True)
class SmearMeta:
    """What the user tells about a batch of smears; every field is optional.

    Text is stripped and empty text becomes None.

    Attributes:
        patient: A pseudonym (never a real name); smears of one patient share a split.
        stain: E.g. ``Giemsa``, ``Wright``.
        magnification: As written on the microscope, e.g. ``100x oil``.
        um_per_px: Micrometres per pixel, > 0.
        note: Free text.

    Raises:
        MetaError: A text too long or with control characters, or a scale that is not a
            positive number.
    """

    patient: str | None = None
    stain: str | None = None
    magnification: str | None = None
    um_per_px: float | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        for name, limit in _TEXT_LIMITS.items():
            value = getattr(self, name)
            if value is None:
                continue
            text = str(value).strip()
            allowed = "\n\t" if name == "note" else ""
            if any(not ch.isprintable() and ch not in allowed for ch in text):
                raise MetaError(f"The {name} contains control characters; type it as plain text.")
            if len(text) > limit:
                raise MetaError(f"The {name} is {len(text)} characters long; keep it to {limit}.")
            object.__setattr__(self, name, text or None)
        if self.um_per_px is not None:
            try:
                scale = float(self.um_per_px)
            except (TypeError, ValueError):
                scale = math.nan
            if not math.isfinite(scale) or scale <= 0:
                raise MetaError(
                    f"Micrometres per pixel must be a positive number, got {self.um_per_px!r}; "
                    "leave it empty if unknown."
                )
            object.__setattr__(self, "um_per_px", scale)


@dataclass(frozen=True)
class IngestResult:
    """What happened to one upload (or one imported mask, see :mod:`dataset.imports`).

    Attributes:
        input: The upload's name (or path) as given, for the result row.
        status: ``added``, ``duplicate`` or ``rejected``.
        smear_id: The smear the pixels are stored as (None when rejected).
        tiles: Tiles of that smear (0 when rejected).
        reason: Why it was rejected, or what it duplicates.
        warnings: What the user should know about what was done (first page of a TIFF
            taken, transparency flattened, ...).
        image: For mask imports: the image the mask belongs to.
        revisions: For mask imports: tiles that got an ``import`` revision.
        unmatched: For lenient mask imports: pixels per grey level that no level of the
            map explained, imported as unlabelled.
    """

    input: str
    status: Status
    smear_id: str | None = None
    tiles: int = 0
    reason: str | None = None
    warnings: tuple[str, ...] = field(default=())
    image: str | None = None
    revisions: int | None = None
    unmatched: dict[int, int] | None = None

    def to_json(self) -> dict:
        """The result row of ``--json`` output (mask-import keys only for mask imports)."""
        out: dict = {
            "input": self.input,
            "status": self.status,
            "smear_id": self.smear_id,
            "tiles": self.tiles,
            "reason": self.reason,
            "warnings": list(self.warnings),
        }
        if self.image is not None:
            out["image"] = self.image
        if self.revisions is not None:
            out["revisions"] = self.revisions
        if self.unmatched is not None:
            out["unmatched"] = {str(k): v for k, v in self.unmatched.items()}
        return out


def upload_label(name: str) -> str:
    """The label kept for an upload: its last path component, printable, at most 120 chars.

    ``../../etc/x.png`` becomes ``x.png``; the label is only ever shown, never opened.
    """
    last = re.split(r"[\\/]", str(name))[-1]
    text = "".join(ch for ch in last if ch.isprintable()).strip()
    return text[:_LABEL_MAX] or "upload"


def store_decoded(
    store: Store,
    decoded: DecodedImage,
    name: str,
    meta: SmearMeta | None = None,
    *,
    actor: str,
) -> IngestResult:
    """Store decoded pixels as a smear (or find them stored already).

    Args:
        store: The workspace.
        decoded: Pixels from :func:`dataset.images.decode_image`.
        name: The upload's name; kept only as a label.
        meta: Metadata for a newly added smear (a duplicate keeps what it had).
        actor: Who uploads, for the audit trail (an ``upload`` row per smear added).

    Returns:
        ``added`` or ``duplicate``, with the smear id and its tile count.
    """
    audit.require_actor(actor, "upload")
    smear_id = smear_id_for(decoded.rgb)
    if store.has_smear(smear_id):
        # Skip the PNG encoding (the slow part of an upload); add_smear re-checks under lock.
        return _duplicate(store, name, smear_id, decoded.warnings)
    added, tiles = store.add_smear(_new_smear(smear_id, decoded, name, meta))
    if added:
        result = IngestResult(name, "added", smear_id, len(tiles), warnings=decoded.warnings)
        audit.record_all(store, [_upload_event(actor, result)])
        return result
    return _duplicate(store, name, smear_id, decoded.warnings)


def _new_smear(smear_id: str, decoded: DecodedImage, name: str, meta: SmearMeta | None) -> NewSmear:
    meta = meta or SmearMeta()
    return NewSmear(
        smear_id=smear_id,
        # A large smear is kept as its tiles only (see dataset.store.WHOLE_PNG_MAX_PIXELS).
        image_png=encode_png_lossless(decoded.rgb)
        if decoded.width * decoded.height <= WHOLE_PNG_MAX_PIXELS
        else None,
        width=decoded.width,
        height=decoded.height,
        label=upload_label(name),
        patient=meta.patient,
        stain=meta.stain,
        magnification=meta.magnification,
        um_per_px=meta.um_per_px,
        note=meta.note,
        rgb=decoded.rgb,
    )


def _duplicate(store: Store, name: str, smear_id: str, warnings: tuple[str, ...]) -> IngestResult:
    info = store.smear(smear_id)
    return IngestResult(
        name,
        "duplicate",
        smear_id,
        info.n_tiles,
        reason=f"the same pixels are stored already as {info.label!r} ({smear_id}); "
        "no second copy was made.",
        warnings=warnings,
    )


def _upload_event(actor: str, result: IngestResult) -> audit.Event:
    return audit.Event(
        actor, "upload", result.smear_id or "", detail={"file": result.input, "tiles": result.tiles}
    )


def _decode(name: str, data: bytes | BinaryIO, limits: InputLimits) -> DecodedImage | IngestResult:
    try:
        return decode_image(data, name, limits=limits)
    except ImageRejected as exc:
        return IngestResult(name, "rejected", reason=str(exc))
    except MemoryError:
        return IngestResult(
            name,
            "rejected",
            reason=f"{name!r} is too large to decode in this machine's memory; "
            "upload a smaller image or a crop.",
        )


@dataclass
class _Pending:
    index: int
    name: str
    smear_id: str
    warnings: tuple[str, ...]
    smear: NewSmear | None  # None: repeats an earlier upload of the same batch


class _Batcher:
    """Uploads of one call, stored a batch at a time: one commit of tiles, one of smears.

    Each commit costs several fsyncs, so committing smears in batches instead of one by one
    is what makes a folder ingest fast. A batch holds at most ``BATCH_SMEARS`` smears or
    ``BATCH_PIXEL_BYTES`` of decoded pixels, whichever comes first. Results are final (and
    progress is reported) only once their batch is committed.
    """

    BATCH_SMEARS = 16
    BATCH_PIXEL_BYTES = 64 * 2**20

    def __init__(
        self,
        store: Store,
        meta: SmearMeta | None,
        total: int,
        on_progress: ProgressFn | None,
        limits: InputLimits,
        actor: str,
    ) -> None:
        self.actor = audit.require_actor(actor, "upload")
        self.store, self.meta, self.total = store, meta, total
        self.on_progress, self.limits = on_progress, limits
        self.results: list[IngestResult | None] = []
        self._pending: list[_Pending] = []
        self._pending_ids: set[str] = set()
        self._pixel_bytes = 0
        self._reported = 0

    def add(self, name: str, data: bytes | BinaryIO | IngestResult) -> None:
        """One upload: its bytes or open file (closed here once decoded), or its result
        already known (unreadable file)."""
        index = len(self.results)
        self.results.append(None)
        if isinstance(data, IngestResult):
            decoded: DecodedImage | IngestResult = data
        else:
            try:
                decoded = _decode(name, data, self.limits)
            finally:
                if not isinstance(data, bytes | bytearray | memoryview):
                    data.close()
        del data  # the file's bytes are not needed past decoding; a batch may hold many
        if isinstance(decoded, IngestResult):
            self.results[index] = decoded
        else:
            self._queue(index, name, decoded)
        self._report()

    def _queue(self, index: int, name: str, decoded: DecodedImage) -> None:
        smear_id = smear_id_for(decoded.rgb)
        if smear_id in self._pending_ids:
            self._pending.append(_Pending(index, name, smear_id, decoded.warnings, None))
            return
        if self.store.has_smear(smear_id):
            # Skip the PNG encoding (the slow part); add_smears re-checks under its lock.
            self.results[index] = _duplicate(self.store, name, smear_id, decoded.warnings)
            return
        smear = _new_smear(smear_id, decoded, name, self.meta)
        self._pending.append(_Pending(index, name, smear_id, decoded.warnings, smear))
        self._pending_ids.add(smear_id)
        self._pixel_bytes += decoded.rgb.nbytes
        if len(self._pending_ids) >= self.BATCH_SMEARS or (
            self._pixel_bytes >= self.BATCH_PIXEL_BYTES
        ):
            self.flush()

    def flush(self) -> None:
        """Store the pending smears and settle their results."""
        if not self._pending:
            return
        new = [p for p in self._pending if p.smear is not None]
        outcomes = self.store.add_smears([p.smear for p in new if p.smear is not None])
        events = []
        for p, (added, tiles) in zip(new, outcomes, strict=True):
            if added:
                result = IngestResult(p.name, "added", p.smear_id, len(tiles), warnings=p.warnings)
                self.results[p.index] = result
                events.append(_upload_event(self.actor, result))
        # The batch's smears are committed: their audit rows follow in one commit.
        audit.record_all(self.store, events)
        for p in self._pending:
            if self.results[p.index] is None:
                self.results[p.index] = _duplicate(self.store, p.name, p.smear_id, p.warnings)
        self._pending, self._pending_ids, self._pixel_bytes = [], set(), 0
        self._report()

    def _report(self) -> None:
        while self._reported < len(self.results) and self.results[self._reported] is not None:
            self._reported += 1
            if self.on_progress is not None:
                self.on_progress(self._reported, self.total)

    def finish(self) -> list[IngestResult]:
        self.flush()
        return [r for r in self.results if r is not None]


def ingest_files(
    store: Store,
    files: Iterable[tuple[str, bytes | BinaryIO]],
    meta: SmearMeta | None = None,
    on_progress: ProgressFn | None = None,
    *,
    max_pixels: int | None = None,
    total: int | None = None,
    actor: str,
) -> list[IngestResult]:
    """Ingest uploaded files: decode, check, deduplicate, store and tile each one.

    Smears are committed in small batches; a batch is written whole or not at all.

    Args:
        store: The workspace.
        files: ``(name, bytes)`` per upload, or ``(name, file)`` with a binary file open at
            its start (closed once decoded); the name is a label only, never a path.
        actor: Who uploads, for the audit trail (an ``upload`` row per smear added).
        meta: Metadata applied to every newly added smear of the batch.
        on_progress: Called as ``on_progress(done, total)`` once each file's result is final.
        max_pixels: Largest accepted width × height (default: the settings' ``max_pixels``);
            the other limits of :func:`dataset.limits.input_limits` apply too.
        total: How many files ``files`` yields, for progress. Give it with a generator
            that reads one file at a time, so only that file's bytes are held.

    Returns:
        One result per file, in the order given.
    """
    if total is None:
        files = files if isinstance(files, Sequence) else list(files)
        total = len(files)
    batcher = _Batcher(store, meta, total, on_progress, input_limits(max_pixels), actor)
    for name, data in files:
        batcher.add(name, data)
    return batcher.finish()


def _expand(paths: Sequence[Path]) -> list[tuple[str, Path | None, str | None]]:
    """``(input, path, problem)`` per file to read; folders give their image files, sorted."""
    out: list[tuple[str, Path | None, str | None]] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                child
                for child in path.iterdir()
                if child.is_file()
                and not child.name.startswith(".")
                and child.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                out.append(
                    (
                        str(path),
                        None,
                        f"Folder {str(path)!r} holds no {', '.join(ACCEPTED_FORMATS)} files "
                        f"({', '.join(IMAGE_SUFFIXES)}); subfolders are not searched.",
                    )
                )
            out.extend((str(child), child, None) for child in found)
        elif path.exists():
            # Not only regular files: a device or a FIFO is refused by name when read.
            out.append((str(path), path, None))
        else:
            out.append((str(path), None, f"{str(path)!r} does not exist; check the path."))
    return out


def ingest_paths(
    store: Store,
    paths: Sequence[Path],
    meta: SmearMeta | None = None,
    on_progress: ProgressFn | None = None,
    *,
    max_pixels: int | None = None,
    actor: str,
) -> list[IngestResult]:
    """Ingest files and folders from disk (the command line's ``ingest``).

    A folder contributes its image files (by suffix, hidden files skipped, not recursive),
    sorted by name; a file named explicitly is always tried. Files are read one at a time;
    decoded smears wait for their batch's commit (see :func:`ingest_files`).

    A named path that is not a regular file (a device such as ``/dev/zero``, a FIFO) and a
    file over the size limit are refused by name before anything is read.

    Args:
        store: The workspace.
        paths: Files and folders.
        meta: Metadata applied to every newly added smear.
        on_progress: Called as ``on_progress(done, total)`` after each file.
        max_pixels: Largest accepted width × height (default: the settings' ``max_pixels``).
        actor: Who uploads, for the audit trail (an ``upload`` row per smear added).

    Returns:
        One result per file found (and one ``rejected`` per missing path or empty folder).
    """
    todo = _expand([Path(p) for p in paths])
    limits = input_limits(max_pixels)
    batcher = _Batcher(store, meta, len(todo), on_progress, limits, actor)
    for name, path, problem in todo:
        if path is None:
            batcher.add(name, IngestResult(name, "rejected", reason=problem))
            continue
        # The decoder reads the open file as it goes: its bytes are never held whole.
        batcher.add(name, _open(name, path, limits))
    return batcher.finish()


def _open(name: str, path: Path, limits: InputLimits) -> BinaryIO | IngestResult:
    """The file opened within the limits, or its ``rejected`` result."""
    try:
        return open_input_file(path, limits.max_file_bytes, name)
    except InputRefused as exc:
        return IngestResult(name, "rejected", reason=str(exc))
    except OSError as exc:
        reason = f"{name!r} cannot be read ({exc.strerror or exc}); check its permissions."
        return IngestResult(name, "rejected", reason=reason)
