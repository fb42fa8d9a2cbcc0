"""The first-start demo: a dozen real BCCD smears, eight of them labelled by white-cell masks.

What this module promises: :func:`load_demo` stores the 12 BCCD photos shipped in
``dataset/demo_data`` (MIT licence; see its ``NOTICE``) and imports the 8 white-cell masks
shipped with them as ``import`` revisions.

- A new workspace gets the classes the masks mean (:data:`DEMO_CLASSES`: background,
  cytoplasm, nucleus), so every pixel of a masked photo is a label and a first model learns
  every class it predicts. A workspace already set up with a ``leukocyte`` class keeps its
  classes; the masks then label white cells only and their 0 stays *unlabelled* (it covers red
  cells and platelets too, so it is not "background" there).
- Splits are chosen, not hashed (:data:`DEMO_SPLITS`): the masked photos fill train (4),
  validation (2) and test (2), so training can start at once and its validation scores every
  class; the 4 photos without a mask sit in train, to be labelled. A smear already stored keeps
  its split.
- Loading twice adds nothing new.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dataset import audit
from dataset.imports import MaskPair, import_masks, read_pairs_csv
from dataset.ingest import IngestResult, ProgressFn, SmearMeta, ingest_paths
from dataset.store import Store

__all__ = [
    "DEMO_CLASSES",
    "DEMO_DIR",
    "DEMO_LEVELS",
    "DEMO_LEVEL_TOLERANCE",
    "DEMO_META",
    "DEMO_SPLITS",
    "demo_images",
    "demo_levels",
    "demo_pairs",
    "load_demo",
    "workspace_is_empty",
]

DEMO_DIR = Path(__file__).resolve().parent / "demo_data"
# What the shipped masks' grey levels mean (Banik et al. 2020; see demo_data/NOTICE).
DEMO_CLASSES = ("background", "cytoplasm", "nucleus")
DEMO_LEVELS = "0=background,155=cytoplasm,255=nucleus"
# In a workspace with a leukocyte class, 0 ("not a white cell", red cells included) must stay
# unlabelled: it does not say which of the other classes a pixel is.
LEUKOCYTE_LEVELS = "0=unlabelled,155=leukocyte,255=leukocyte"
# Two of the shipped masks are RGB with anti-aliased edges (greys all along 0..255): a band
# of 80 levels, over half the widest gap of the map (155), gives every grey its nearest level.
DEMO_LEVEL_TOLERANCE = 80
DEMO_META = SmearMeta(
    stain="Giemsa", note="BCCD demo smear (MIT licence; see dataset/demo_data/NOTICE)."
)
# Photo -> split. Masked photos: 4 train, 2 validation, 2 test (validation gets two with
# large white cells, so cytoplasm and nucleus have pixels to be scored on); unmasked: train.
DEMO_SPLITS = {
    "BloodImage_00003.jpg": "train",
    "BloodImage_00004.jpg": "train",
    "BloodImage_00009.jpg": "train",
    "BloodImage_00020.jpg": "train",
    "BloodImage_00005.jpg": "validation",
    "BloodImage_00034.jpg": "validation",
    "BloodImage_00006.jpg": "test",
    "BloodImage_00043.jpg": "test",
}


def demo_images() -> list[Path]:
    """The shipped BCCD photos, sorted by name."""
    return sorted((DEMO_DIR / "bccd").glob("*.jpg"))


def demo_pairs() -> list[MaskPair]:
    """The shipped white-cell masks, each with its photo."""
    return read_pairs_csv(DEMO_DIR / "masks.csv")


def demo_levels(classes: tuple[str, ...] | list[str]) -> str:
    """The level map for the demo masks in a workspace with ``classes``.

    The masks' own classes when the workspace has them, else white cells as ``leukocyte``
    (an unusable map is refused by the import, mask by mask, with the reason).
    """
    if set(DEMO_CLASSES) <= set(classes):
        return DEMO_LEVELS
    return LEUKOCYTE_LEVELS


def workspace_is_empty(store: Store) -> bool:
    """True when no smear is stored: the Upload page then offers the demo."""
    return not store.smears()


def load_demo(
    store: Store, on_progress: ProgressFn | None = None, *, actor: str
) -> list[IngestResult]:
    """Store the demo smears, put them in their splits and import their white-cell masks.

    A new workspace is initialised with :data:`DEMO_CLASSES`. In a workspace whose classes
    have neither those nor ``leukocyte`` the photos are still stored and the masks come back
    ``rejected`` with the reason.

    Args:
        store: The workspace.
        on_progress: Called as ``on_progress(done, total)`` after each photo and mask.
        actor: Who loads the demo, for the audit trail.

    Returns:
        One result per photo (by file name), then one per mask.
    """
    audit.require_actor(actor, "upload")
    schema = store.schema() if store.is_initialised() else store.init(list(DEMO_CLASSES))
    images = demo_images()
    pairs = demo_pairs()
    total = len(images) + len(pairs)

    def photos_progress(done: int, _: int) -> None:
        if on_progress is not None:
            on_progress(done, total)

    def masks_progress(done: int, _: int) -> None:
        if on_progress is not None:
            on_progress(len(images) + done, total)

    photos = ingest_paths(store, images, DEMO_META, photos_progress, actor=actor)
    # Result rows name the shipped files, not paths inside the installed package.
    photos = [replace(r, input=Path(r.input).name) for r in photos]
    store.assign_splits(
        {r.smear_id: DEMO_SPLITS.get(str(r.input), "train") for r in photos if r.smear_id}
    )
    masks = import_masks(
        store,
        pairs,
        demo_levels(schema.names),
        meta=DEMO_META,
        annotator="BCCD white-cell masks (Banik et al. 2020)",
        on_progress=masks_progress,
        tolerance=DEMO_LEVEL_TOLERANCE,
        actor=actor,
    )
    return photos + masks
