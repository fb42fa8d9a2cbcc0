"""The first-start demo: a dozen real BCCD smears, a few with white-cell masks as labels.

What this module promises: :func:`load_demo` stores the 12 BCCD photos shipped in
``dataset/demo_data`` (MIT licence; see its ``NOTICE``) and imports the 4 white-cell masks
shipped with them as ``import`` revisions. Those masks mark white cells only, so their 0 is
imported as *unlabelled*, never as background. Loading twice adds nothing new.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dataset.imports import MaskPair, import_masks, read_pairs_csv
from dataset.ingest import IngestResult, ProgressFn, SmearMeta, ingest_paths
from dataset.store import Store

__all__ = [
    "DEMO_DIR",
    "DEMO_LEVELS",
    "DEMO_LEVEL_TOLERANCE",
    "DEMO_META",
    "demo_images",
    "demo_pairs",
    "load_demo",
    "workspace_is_empty",
]

DEMO_DIR = Path(__file__).resolve().parent / "demo_data"
# 0 is "not a white cell" in these masks (red cells included), so it must stay unlabelled.
DEMO_LEVELS = "0=unlabelled,155=leukocyte,255=leukocyte"
# Two of the shipped masks are RGB with anti-aliased edges (greys all along 0..255): a band
# of 80 levels, over half the widest gap of the map (155), gives every grey its nearest level.
DEMO_LEVEL_TOLERANCE = 80
DEMO_META = SmearMeta(
    stain="Giemsa", note="BCCD demo smear (MIT licence; see dataset/demo_data/NOTICE)."
)


def demo_images() -> list[Path]:
    """The shipped BCCD photos, sorted by name."""
    return sorted((DEMO_DIR / "bccd").glob("*.jpg"))


def demo_pairs() -> list[MaskPair]:
    """The shipped white-cell masks, each with its photo."""
    return read_pairs_csv(DEMO_DIR / "masks.csv")


def workspace_is_empty(store: Store) -> bool:
    """True when no smear is stored: the Upload page then offers the demo."""
    return not store.smears()


def load_demo(store: Store, on_progress: ProgressFn | None = None) -> list[IngestResult]:
    """Store the demo smears and import their white-cell masks.

    The workspace is initialised with the default classes if it is new. In a workspace
    whose classes lack ``leukocyte`` the photos are still stored and the masks come back
    ``rejected`` with the reason.

    Args:
        store: The workspace.
        on_progress: Called as ``on_progress(done, total)`` after each photo and mask.

    Returns:
        One result per photo (by file name), then one per mask.
    """
    store.ensure_initialised()
    images = demo_images()
    pairs = demo_pairs()
    total = len(images) + len(pairs)

    def photos_progress(done: int, _: int) -> None:
        if on_progress is not None:
            on_progress(done, total)

    def masks_progress(done: int, _: int) -> None:
        if on_progress is not None:
            on_progress(len(images) + done, total)

    photos = ingest_paths(store, images, DEMO_META, photos_progress)
    # Result rows name the shipped files, not paths inside the installed package.
    photos = [replace(r, input=Path(r.input).name) for r in photos]
    masks = import_masks(
        store,
        pairs,
        DEMO_LEVELS,
        meta=DEMO_META,
        annotator="BCCD white-cell masks (Banik et al. 2020)",
        on_progress=masks_progress,
        tolerance=DEMO_LEVEL_TOLERANCE,
    )
    return photos + masks
