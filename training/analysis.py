"""Per-smear counts and shares of each blood element, from a class mask.

The promise of this module: :func:`analyse_mask` turns a mask (predicted or hand-labelled)
into one row per class: pixel count and share of the labelled area, the number of objects
(connected components, with touching cells of the ``split`` classes separated by a
distance-transform watershed), each class's share of all counted objects, and the mean
object size, in pixels and, when the scale is known, in square micrometres. These rows are
the "percentage of each blood element" features of the diagnosis classifier.

Unlabelled pixels (255) are left out of every share. Objects cut by the image border count
as objects; at smear scale that bias is small and the same for every class.

:func:`overlay` blends a mask onto its image with the class palette, for display.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from dataset.schema import UNLABELLED
from training.inference import InferenceConfig, predict_proba, probs_to_mask
from training.model import SegModel

__all__ = [
    "ClassRow",
    "SmearAnalysis",
    "analyse_image",
    "analyse_mask",
    "label_objects",
    "overlay",
]

# Heights of distance-transform peaks are compared relative to the object's own largest
# inscribed radius: two peaks become two cells when the neck between them is at least this
# fraction lower. 0.25 splits equal discs whose centres are 1.4 radii apart or more (1.6 for
# radius-10 discs, where the pixel grid blunts the neck) and leaves ovals and rings whole.
_SPLIT_DEPTH = 0.25


@dataclass(frozen=True)
class ClassRow:
    """Statistics of one class on one smear (``None`` where a figure does not apply)."""

    class_index: int
    class_name: str
    pixels: int
    pixel_share: float | None
    count: int | None
    count_share: float | None
    mean_object_px: float | None
    mean_object_um2: float | None


@dataclass(frozen=True)
class SmearAnalysis:
    """All class rows of one smear plus the totals they are relative to."""

    rows: tuple[ClassRow, ...]
    height: int
    width: int
    labelled_pixels: int
    um_per_px: float | None = None

    def to_rows(self) -> list[dict]:
        """One plain dict per class, ready for a CSV or a table widget."""
        return [asdict(r) for r in self.rows]

    def row(self, class_name: str) -> ClassRow:
        """The row of one class."""
        for r in self.rows:
            if r.class_name == class_name:
                return r
        names = ", ".join(r.class_name for r in self.rows)
        raise KeyError(f"No class {class_name!r} in this analysis; classes: {names}.")

    def features(self) -> dict[str, float]:
        """Flat numeric features (NaN where a figure does not apply) for a classifier."""
        nan = float("nan")
        out: dict[str, float] = {}
        for r in self.rows:
            out[f"{r.class_name} pixel share"] = nan if r.pixel_share is None else r.pixel_share
            if r.count is not None:
                out[f"{r.class_name} count"] = float(r.count)
                out[f"{r.class_name} count share"] = nan if r.count_share is None else r.count_share
                out[f"{r.class_name} mean size px"] = (
                    nan if r.mean_object_px is None else r.mean_object_px
                )
        return out


def label_objects(binary: np.ndarray, split: bool, min_object_px: int = 4) -> np.ndarray:
    """Label connected objects of a binary mask, optionally splitting touching round ones.

    Args:
        binary: True where the class is.
        split: Separate touching objects with a watershed on the distance transform.
        min_object_px: Objects smaller than this are dropped (label 0) as specks.

    Shape:
        binary: (H, W) bool; returns (H, W) int32 labels 1..N, 0 elsewhere.
    """
    labels, n = ndi.label(binary)
    if n and min_object_px > 1:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_object_px
        small[0] = False
        if small.any():
            labels[small[labels]] = 0
            labels, n = ndi.label(labels > 0)
    if not split or n == 0:
        return labels.astype(np.int32)
    from skimage.segmentation import watershed

    dist = ndi.distance_transform_edt(labels > 0)
    peak = ndi.maximum(dist, labels, index=np.arange(1, n + 1))
    relative = dist / np.concatenate([[1.0], peak])[labels]
    markers = _dome_markers(np.round(relative * 1000), _SPLIT_DEPTH * 1000)
    split_labels = watershed(-dist, markers, mask=labels > 0)
    return split_labels.astype(np.int32)


def _dome_markers(levels: np.ndarray, h: float) -> np.ndarray:
    """One marker per dome that rises at least ``h`` above the saddle to any higher dome.

    Unlike skimage's ``h_maxima``, a dome whose top is a ring or several equal points (a red
    cell with a pale centre, a discrete disc) gets one marker, not one per top pixel.
    """
    from skimage.morphology import reconstruction

    rec = reconstruction(np.maximum(levels - h, 0), levels, method="dilation")
    residue = levels - rec
    domes, n = ndi.label(residue > 0)
    keep = np.unique(domes[(residue >= h) & (domes > 0)])
    lut = np.zeros(n + 1, dtype=np.int32)
    lut[keep] = np.arange(1, keep.size + 1)
    return lut[domes]


def analyse_mask(
    mask: np.ndarray,
    classes: Sequence[str],
    *,
    background: Sequence[str] = ("background",),
    split: Sequence[str] = ("erythrocyte",),
    min_object_px: int = 4,
    um_per_px: float | None = None,
) -> SmearAnalysis:
    """Counts, shares and sizes of every class in a mask.

    Args:
        mask: Class indices, 255 = unlabelled.
        classes: Class names; mask value ``i`` is ``classes[i]``.
        background: Classes that are areas, not objects (no count or size).
        split: Classes whose touching objects are separated by watershed (red cells clump).
        min_object_px: Smaller connected pieces are not counted as objects.
        um_per_px: Pixel size, for sizes in square micrometres.

    Shape:
        mask: (H, W) uint8.
    """
    if mask.ndim != 2:
        raise ValueError(f"Expected a 2-D class mask, got shape {mask.shape}.")
    labelled = mask != UNLABELLED
    values = mask[labelled]
    if values.size and int(values.max()) >= len(classes):
        raise ValueError(
            f"The mask holds class index {int(values.max())} but only {len(classes)} classes "
            f"were given ({', '.join(classes)})."
        )
    n_labelled = int(labelled.sum())
    pixels = np.bincount(values.ravel(), minlength=len(classes))
    counts: dict[int, tuple[int, float | None]] = {}
    for i, name in enumerate(classes):
        if name in background:
            continue
        objects = label_objects(mask == i, name in split, min_object_px)
        n = int(objects.max())
        sizes = np.bincount(objects.ravel())[1:]
        sizes = sizes[sizes > 0]
        counts[i] = (int(sizes.size) if n else 0, float(sizes.mean()) if sizes.size else None)
    total_objects = sum(c for c, _ in counts.values())
    area = None if um_per_px is None else um_per_px**2
    rows = []
    for i, name in enumerate(classes):
        count, mean_px = counts.get(i, (None, None))
        rows.append(
            ClassRow(
                class_index=i,
                class_name=name,
                pixels=int(pixels[i]),
                pixel_share=float(pixels[i] / n_labelled) if n_labelled else None,
                count=count,
                count_share=(
                    float(count / total_objects) if count is not None and total_objects else None
                ),
                mean_object_px=mean_px,
                mean_object_um2=None if mean_px is None or area is None else mean_px * area,
            )
        )
    h, w = mask.shape
    return SmearAnalysis(tuple(rows), h, w, n_labelled, um_per_px)


def analyse_image(
    model: SegModel,
    image: np.ndarray,
    classes: Sequence[str],
    inference: InferenceConfig | None = None,
    **options,
) -> tuple[SmearAnalysis, np.ndarray]:
    """Predict a whole smear and analyse the predicted mask.

    Returns:
        The analysis and the predicted mask, (H, W) uint8.
    """
    mask = probs_to_mask(predict_proba(model, image, inference))
    return analyse_mask(mask, classes, **options), mask


def overlay(
    image: np.ndarray,
    mask: np.ndarray,
    palette: np.ndarray | Sequence[str],
    alpha: float = 0.45,
) -> np.ndarray:
    """The image with each labelled pixel tinted by its class colour.

    Args:
        image: uint8 RGB.
        mask: Class indices; unlabelled (255) pixels are left untouched.
        palette: ``ClassSchema.palette()`` (256 x 3 uint8), an (N, 3) array, or "#rrggbb"
            strings, one per class.
        alpha: Weight of the class colour.

    Shape:
        image: (H, W, 3); mask: (H, W); returns (H, W, 3) uint8.
    """
    if image.shape[:2] != mask.shape:
        raise ValueError(f"Image {image.shape[:2]} and mask {mask.shape} differ in size.")
    if isinstance(palette, np.ndarray):
        colours = palette.astype(np.float32)
    else:
        colours = np.array(
            [[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in palette], dtype=np.float32
        )
    lut = np.zeros((256, 3), dtype=np.float32)
    lut[: min(len(colours), 256)] = colours[:256]
    tinted = image.astype(np.float32)
    labelled = mask != UNLABELLED
    if labelled.any() and int(mask[labelled].max()) >= len(colours):
        raise ValueError(f"The mask has class {int(mask[labelled].max())} but no colour for it.")
    tinted[labelled] = (1 - alpha) * tinted[labelled] + alpha * lut[mask[labelled]]
    return np.clip(tinted + 0.5, 0, 255).astype(np.uint8)
