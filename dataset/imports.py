"""Importing existing label masks, paired with their images, as ``import`` revisions.

What this module promises:

* A mask's grey values become classes by the nearest level of a level map such as
  ``"0=unlabelled,155=leukocyte,255=leukocyte"`` (see :func:`dataset.masks.parse_levels`),
  so anti-aliased masks import cleanly; a level may mean "unlabelled".
* Each pair is checked completely (image readable, mask readable, same size, level map
  explains the mask) before anything of it is stored; a refused pair stores nothing and
  its result names the file and says what to do. Other pairs of the call still import.
* The image is ingested when it is not stored yet (same rules as uploads); the mask is cut
  like the image's tiles and each tile gets one ``import`` revision, except tiles where the
  mask is all unlabelled. Importing the same mask again adds no revisions.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataset.images import ImageRejected, decode_image
from dataset.ingest import IngestResult, ProgressFn, SmearMeta, resolve_max_pixels, store_decoded
from dataset.masks import LevelMap, MaskRejected, apply_levels, load_mask_file, parse_levels
from dataset.schema import UNLABELLED
from dataset.store import Store

__all__ = ["MaskPair", "PairsError", "import_masks", "read_pairs_csv"]

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


def read_pairs_csv(path: Path | str) -> list[MaskPair]:
    """Read a CSV with columns ``image,mask`` and the files it names.

    Paths are relative to the CSV's folder unless absolute. Every row is checked before
    any is returned, so a typo is reported with all the others at once.

    Args:
        path: The CSV file.

    Returns:
        The pairs in the CSV's order, named as written in the CSV.

    Raises:
        PairsError: The CSV is missing, unreadable, lacks the two columns or has no rows, or
            a file it names cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PairsError(f"Pairs file {str(path)!r} does not exist; check the path.") from None
    except UnicodeDecodeError:
        raise PairsError(f"Pairs file {str(path)!r} is not UTF-8 text; save it as CSV.") from None
    except OSError as exc:
        raise PairsError(f"Pairs file {str(path)!r} cannot be read ({exc.strerror}).") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
    if "image" not in columns or "mask" not in columns:
        raise PairsError(
            f"Pairs file {str(path)!r} needs a header row with the columns image,mask; "
            f"found {', '.join(repr(c) for c in reader.fieldnames or []) or 'no header'}."
        )
    pairs: list[MaskPair] = []
    problems: list[str] = []
    for line, row in enumerate(reader, start=2):
        cells = {k: (row.get(columns[k]) or "").strip() for k in ("image", "mask")}
        if not any(cells.values()):
            continue
        loaded: dict[str, bytes] = {}
        for kind, cell in cells.items():
            if not cell:
                problems.append(f"line {line}: the {kind} cell is empty")
                continue
            target = Path(cell) if Path(cell).is_absolute() else path.parent / cell
            try:
                loaded[kind] = target.read_bytes()
            except OSError as exc:
                problems.append(f"line {line}: {kind} {cell!r} ({exc.strerror or exc})")
        if len(loaded) == 2:
            pairs.append(MaskPair(cells["image"], loaded["image"], cells["mask"], loaded["mask"]))
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
    pair: MaskPair,
    level_map: LevelMap,
    meta: SmearMeta | None,
    annotator: str,
    max_pixels: int,
) -> IngestResult:
    mask_name, image_name = pair.mask_name, pair.image_name

    def refuse(reason: str) -> IngestResult:
        return IngestResult(mask_name, "rejected", reason=reason, image=image_name)

    try:
        decoded = decode_image(pair.image_bytes, image_name, max_pixels=max_pixels)
    except ImageRejected as exc:
        return refuse(f"The image of mask {mask_name!r} was refused: {exc}")
    try:
        grey = load_mask_file(pair.mask_bytes, mask_name, max_pixels=max_pixels)
    except MaskRejected as exc:
        return refuse(str(exc))
    if grey.shape != (decoded.height, decoded.width):
        return refuse(
            f"{mask_name!r} is {grey.shape[1]} × {grey.shape[0]} pixels but its image "
            f"{image_name!r} is {decoded.width} × {decoded.height}; a mask must have its "
            "image's size (check the pairing, or export the mask at full size)."
        )
    try:
        classes = apply_levels(grey, level_map, name=mask_name)
    except MaskRejected as exc:
        return refuse(str(exc))

    # Everything about this pair is valid: only now is anything stored.
    stored = store_decoded(store, decoded, image_name, meta)
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
        )
        saved += 1

    warnings = list(stored.warnings)
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
    )


def import_masks(
    store: Store,
    pairs: Sequence[MaskPair],
    levels: str,
    *,
    meta: SmearMeta | None = None,
    annotator: str = "import",
    on_progress: ProgressFn | None = None,
    max_pixels: int | None = None,
) -> list[IngestResult]:
    """Import existing masks with their images as ``import`` revisions.

    Args:
        store: The workspace (initialised with the default classes if it is new).
        pairs: Image and mask bytes per pair.
        levels: Grey-level map, e.g. ``"0=unlabelled,155=leukocyte,255=leukocyte"``.
        meta: Metadata for images that are not stored yet.
        annotator: Recorded as the revisions' author.
        on_progress: Called as ``on_progress(done, total)`` after each pair.
        max_pixels: Largest accepted width × height (default: the settings' ``max_pixels``).

    Returns:
        One result per pair, named by the mask: ``added`` (image or labels stored; see
        ``revisions``), ``duplicate`` (nothing new) or ``rejected`` (nothing stored).
    """
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
    limit = resolve_max_pixels(max_pixels)
    results = []
    for done, pair in enumerate(pairs, start=1):
        results.append(_import_one(store, pair, level_map, meta, annotator, limit))
        if on_progress is not None:
            on_progress(done, len(pairs))
    return results
