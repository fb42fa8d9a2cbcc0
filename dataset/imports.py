"""Importing existing label masks, paired with their images, as ``import`` revisions.

What this module promises:

* A mask's grey values become classes by the nearest level of a level map such as
  ``"0=unlabelled,155=leukocyte,255=leukocyte"`` (see :func:`dataset.masks.parse_levels`),
  within an explicit tolerance band (default ±40 grey levels); a level may mean
  "unlabelled". A grey outside every band refuses the mask, naming it, the level and its
  pixel count, however few pixels it has; with ``lenient`` such pixels are imported as
  unlabelled and counted in the result.
* Each pair is checked completely (image readable, mask readable, same size, level map
  explains the mask) before anything of it is stored; a refused pair stores nothing and
  its result names the file and says what to do. Other pairs of the call still import.
* The image is ingested when it is not stored yet (same rules as uploads); the mask is cut
  like the image's tiles and each tile gets one ``import`` revision, except tiles where the
  mask is all unlabelled. Importing the same mask again adds no revisions.
"""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataset import audit
from dataset.images import ImageRejected, decode_image
from dataset.ingest import IngestResult, ProgressFn, SmearMeta, store_decoded
from dataset.limits import InputLimits, InputRefused, input_limits, read_input_file
from dataset.masks import (
    DEFAULT_LEVEL_TOLERANCE,
    LevelMap,
    MaskRejected,
    apply_levels,
    load_mask_file,
    parse_levels,
    unmatched_levels,
)
from dataset.schema import UNLABELLED
from dataset.store import Store

__all__ = ["MaskPair", "PairFiles", "PairsError", "import_masks", "read_pairs_csv"]

_MAX_LISTED = 5


class PairsError(ValueError):
    """A pairs CSV that cannot be used; the message names the file, the rows and the fix."""


@dataclass(frozen=True)
class MaskPair:
    """An image and its existing mask, both as uploaded bytes.

    The names are labels for messages (the image's becomes the smear's label); they are
    never used as paths.
    """

    image_name: str
    image_bytes: bytes
    mask_name: str
    mask_bytes: bytes


@dataclass(frozen=True)
class PairFiles:
    """One row of a pairs CSV: the two files, read only when the pair is imported.

    So a CSV of many pairs holds one pair's bytes at a time. Reading applies the same
    checks as :func:`read_pairs_csv` did (regular file, size limit) once more, since the
    files may have changed in between.
    """

    image_name: str
    image_path: Path
    mask_name: str
    mask_path: Path
    max_bytes: int

    @property
    def image_bytes(self) -> bytes:
        return _read_named(self.image_path, self.max_bytes, self.image_name)

    @property
    def mask_bytes(self) -> bytes:
        return _read_named(self.mask_path, self.max_bytes, self.mask_name)


def _read_named(path: Path, max_bytes: int, name: str) -> bytes:
    try:
        return read_input_file(path, max_bytes, name)
    except OSError as exc:
        raise InputRefused(f"{name!r} cannot be read ({exc.strerror or exc}).") from None


def _file_problem(target: Path, max_bytes: int) -> str | None:
    """Why a file named in the CSV cannot be imported (checked without reading it)."""
    try:
        info = os.stat(target)
    except OSError as exc:
        return exc.strerror or str(exc)
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a device, FIFO or folder)"
    if info.st_size > max_bytes:
        return f"{info.st_size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.1f} MiB limit"
    return None


def read_pairs_csv(path: Path | str, *, limits: InputLimits | None = None) -> list[PairFiles]:
    """Read a CSV with columns ``image,mask`` and check the files it names.

    Paths are relative to the CSV's folder unless absolute. Every row is checked before
    any is returned, so a typo is reported with all the others at once. The CSV is read a
    line at a time; the files it names are checked (regular file, within the size limit)
    but read only when their pair is imported (:class:`PairFiles`).

    Args:
        path: The CSV file.
        limits: The size limit for the CSV and each file (default: the settings').

    Returns:
        The pairs in the CSV's order, named as written in the CSV.

    Raises:
        PairsError: The CSV is missing, unreadable, not a regular file, over the size limit,
            lacks the two columns or has no rows, or a file it names cannot be imported.
    """
    path = Path(path)
    max_bytes = (limits or input_limits()).max_file_bytes
    problem = _file_problem(path, max_bytes)
    if problem is not None:
        if not path.exists():
            raise PairsError(f"Pairs file {str(path)!r} does not exist; check the path.")
        raise PairsError(f"Pairs file {str(path)!r} cannot be read: {problem}.")
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return _read_pairs(fh, path, max_bytes)
    except UnicodeDecodeError:
        raise PairsError(f"Pairs file {str(path)!r} is not UTF-8 text; save it as CSV.") from None
    except csv.Error as exc:
        raise PairsError(f"Pairs file {str(path)!r} is not a readable CSV ({exc}).") from None
    except OSError as exc:
        raise PairsError(f"Pairs file {str(path)!r} cannot be read ({exc.strerror}).") from None


def _read_pairs(fh, path: Path, max_bytes: int) -> list[PairFiles]:
    reader = csv.DictReader(fh)
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
    if "image" not in columns or "mask" not in columns:
        raise PairsError(
            f"Pairs file {str(path)!r} needs a header row with the columns image,mask; "
            f"found {', '.join(repr(c) for c in reader.fieldnames or []) or 'no header'}."
        )
    pairs: list[PairFiles] = []
    problems: list[str] = []
    for line, row in enumerate(reader, start=2):
        cells = {k: (row.get(columns[k]) or "").strip() for k in ("image", "mask")}
        if not any(cells.values()):
            continue
        found: dict[str, Path] = {}
        for kind, cell in cells.items():
            if not cell:
                problems.append(f"line {line}: the {kind} cell is empty")
                continue
            target = Path(cell) if Path(cell).is_absolute() else path.parent / cell
            problem = _file_problem(target, max_bytes)
            if problem is None:
                found[kind] = target
            else:
                problems.append(f"line {line}: {kind} {cell!r} ({problem})")
        if len(found) == 2:
            pairs.append(
                PairFiles(cells["image"], found["image"], cells["mask"], found["mask"], max_bytes)
            )
    if problems:
        more = len(problems) - _MAX_LISTED
        listed = "; ".join(problems[:_MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")
        raise PairsError(
            f"Pairs file {str(path)!r} names files that cannot be read: {listed}. "
            "Fix the paths (relative to the CSV's folder) and run the import again."
        )
    if not pairs:
        raise PairsError(f"Pairs file {str(path)!r} has no rows; add one image,mask row per pair.")
    return pairs


def _tile_masks_equal(store: Store, tile_id: str, crop: np.ndarray) -> bool:
    """Whether the tile's latest revision is this very import already (a repeated import)."""
    latest = store.latest(tile_id)
    if latest is None or latest.source != "import":
        return False
    if latest.n_labelled_px != int((crop != UNLABELLED).sum()):
        return False
    return bool(np.array_equal(store.mask(tile_id, latest.revision), crop))


def _import_one(
    store: Store,
    pair: MaskPair | PairFiles,
    level_map: LevelMap,
    meta: SmearMeta | None,
    annotator: str,
    limits: InputLimits,
    tolerance: int,
    lenient: bool,
    actor: str,
) -> IngestResult:
    mask_name, image_name = pair.mask_name, pair.image_name

    def refuse(reason: str) -> IngestResult:
        return IngestResult(mask_name, "rejected", reason=reason, image=image_name)

    try:
        decoded = decode_image(pair.image_bytes, image_name, limits=limits)
    except (ImageRejected, InputRefused) as exc:
        return refuse(f"The image of mask {mask_name!r} was refused: {exc}")
    try:
        grey = load_mask_file(pair.mask_bytes, mask_name, max_pixels=limits.max_pixels)
    except (MaskRejected, InputRefused) as exc:
        return refuse(str(exc))
    if grey.shape != (decoded.height, decoded.width):
        return refuse(
            f"{mask_name!r} is {grey.shape[1]} × {grey.shape[0]} pixels but its image "
            f"{image_name!r} is {decoded.width} × {decoded.height}; a mask must have its "
            "image's size (check the pairing, or export the mask at full size)."
        )
    try:
        classes = apply_levels(
            grey, level_map, name=mask_name, tolerance=tolerance, lenient=lenient
        )
    except MaskRejected as exc:
        return refuse(str(exc))
    unknown = unmatched_levels(grey, level_map, tolerance) if lenient else {}
    del grey

    # Everything about this pair is valid: only now is anything stored.
    stored = store_decoded(store, decoded, image_name, meta, actor=actor)
    assert stored.smear_id is not None
    saved = 0
    over_manual = 0
    for tile in store.tiles(stored.smear_id):
        crop = np.ascontiguousarray(classes[tile.y : tile.y + tile.h, tile.x : tile.x + tile.w])
        if bool((crop == UNLABELLED).all()) or _tile_masks_equal(store, tile.tile_id, crop):
            continue
        latest = store.latest(tile.tile_id)
        if latest is not None and latest.source != "import":
            over_manual += 1
        store.save_mask(
            tile.tile_id,
            crop,
            annotator=annotator,
            source="import",
            base_revision=latest.revision if latest else None,
            check_base=False,
            actor=actor,
        )
        saved += 1

    warnings = list(stored.warnings)
    if unknown:
        listed = ", ".join(f"grey {v}: {n} px" for v, n in sorted(unknown.items()))
        warnings.append(
            f"{sum(unknown.values())} pixels of {mask_name!r} matched no level within "
            f"±{tolerance} and were imported as unlabelled ({listed})."
        )
    if not (classes != UNLABELLED).any():
        warnings.append(f"{mask_name!r} has no labelled pixels under this level map.")
    if over_manual:
        warnings.append(
            f"{over_manual} tile(s) had labels saved by hand or pre-fill; the import is now "
            "their latest revision (the earlier revisions are kept)."
        )
    status = "added" if stored.status == "added" or saved else "duplicate"
    reason = None
    if status == "duplicate":
        reason = "this mask is imported already and its image is stored; nothing was added."
    return IngestResult(
        mask_name,
        status,
        stored.smear_id,
        stored.tiles,
        reason=reason,
        warnings=tuple(warnings),
        image=image_name,
        revisions=saved,
        unmatched=unknown if lenient else None,
    )


def import_masks(
    store: Store,
    pairs: Sequence[MaskPair | PairFiles],
    levels: str,
    *,
    meta: SmearMeta | None = None,
    annotator: str = "import",
    on_progress: ProgressFn | None = None,
    max_pixels: int | None = None,
    tolerance: int = DEFAULT_LEVEL_TOLERANCE,
    lenient: bool = False,
    actor: str,
) -> list[IngestResult]:
    """Import existing masks with their images as ``import`` revisions.

    Args:
        store: The workspace (initialised with the default classes if it is new).
        pairs: Image and mask bytes per pair.
        levels: Grey-level map, e.g. ``"0=unlabelled,155=leukocyte,255=leukocyte"``.
        meta: Metadata for images that are not stored yet.
        annotator: Recorded as the revisions' author.
        actor: Who imports, for the audit trail (``upload`` and ``save`` rows).
        on_progress: Called as ``on_progress(done, total)`` after each pair.
        max_pixels: Largest accepted width × height (default: the settings' ``max_pixels``).
        tolerance: Grey levels either side of a listed level that count as it.
        lenient: Import greys that no level explains as unlabelled (each result then
            reports them in ``unmatched``) instead of refusing the mask.

    Returns:
        One result per pair, named by the mask: ``added`` (image or labels stored; see
        ``revisions``), ``duplicate`` (nothing new) or ``rejected`` (nothing stored).
    """
    audit.require_actor(actor, "upload")
    schema = store.ensure_initialised()
    try:
        level_map = parse_levels(levels, schema.names)
    except ValueError as exc:
        # A map that cannot be used refuses every pair of the call, each by name.
        return [
            IngestResult(
                p.mask_name,
                "rejected",
                reason=f"{p.mask_name!r} was not imported: {exc}",
                image=p.image_name,
            )
            for p in pairs
        ]
    limit = input_limits(max_pixels)
    results = []
    for done, pair in enumerate(pairs, start=1):
        results.append(
            _import_one(store, pair, level_map, meta, annotator, limit, tolerance, lenient, actor)
        )
        if on_progress is not None:
            on_progress(done, len(pairs))
    return results
