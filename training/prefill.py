"""Classical pre-fill: a starting mask for a tile before any model exists.

The promise of this module: :func:`prefill_mask` labels only what simple colour rules
are fairly sure of, and leaves everything else unlabelled (255) for the annotator, so
accepting a pre-fill never adds a confident-looking wrong label in ambiguous places.

The rules are written for Romanowsky stains (Giemsa, Wright, May-Grunwald):

- Leukocyte nuclei and platelets stain dark purple-blue: blue well above green.
  Purple pieces close together are one nucleus (lobes of a neutrophil); small isolated
  purple specks are platelets.
- Erythrocytes are pink-red and darker than the plasma: they separate from the background
  by Otsu's threshold on a redness-and-darkness score. Their pale centres (central
  pallor) are filled in.
- Pixels near a threshold, and the cytoplasm ring around each nucleus (which looks like
  neither plasma nor red cell), stay unlabelled.

Classes are matched by name (``erythrocyte``, ``rbc``, ``red blood cell``, ...); a class
the rules do not know is never filled, and a region whose class is not in the list stays
unlabelled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage as ndi

from dataset.schema import UNLABELLED

__all__ = ["ALIASES", "PrefillConfig", "match_classes", "prefill_mask"]

# Region kinds the rules can find, and the class names that mean them.
ALIASES: dict[str, tuple[str, ...]] = {
    "background": ("background", "plasma", "bg", "backdrop"),
    "erythrocyte": ("erythrocyte", "erythrocytes", "rbc", "red blood cell", "red cell", "red_cell"),
    "leukocyte": ("leukocyte", "leukocytes", "wbc", "white blood cell", "white cell", "leucocyte"),
    "nucleus": ("nucleus", "nuclei", "wbc nucleus", "wbc_nucleus"),
    "platelet": ("platelet", "platelets", "thrombocyte", "thrombocytes", "plt"),
}


class PrefillConfig(BaseModel):
    """Tuning of the pre-fill rules; the defaults suit BCCD-like Giemsa photographs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    purple_min: float = Field(
        35.0, description="lowest blue-minus-green threshold for nuclei/platelets (0-255)"
    )
    purple_max: float = Field(70.0, description="highest threshold Otsu may pick")
    purple_margin: float = Field(12.0, ge=0, description="unsure band around the threshold")
    cell_margin: float = Field(
        0.2, ge=0, le=0.5, description="unsure band, as a fraction of the gap between the means"
    )
    min_contrast: float = Field(
        0.8, ge=0, description="least gap (in score s.d.) between cells and plasma to trust it"
    )
    platelet_min_rel: float = Field(
        0.02, ge=0, description="smallest platelet, as a fraction of a typical red cell's area"
    )
    platelet_max_rel: float = Field(0.3, gt=0, description="largest platelet, same unit")
    nucleus_min_rel: float = Field(0.5, gt=0, description="smallest nucleus group, same unit")
    lobe_gap_px: int = Field(3, ge=0, description="purple pieces closer than this are one")
    min_object_px: int = Field(6, ge=1)
    cytoplasm_rel: float = Field(
        1.2, ge=0, description="unsure ring around a nucleus, times its equivalent radius"
    )


def match_classes(classes: Sequence[str]) -> dict[str, int]:
    """Which class index each known region kind maps to (kinds absent from ``classes`` left out)."""
    found: dict[str, int] = {}
    for i, name in enumerate(classes):
        key = name.strip().lower().replace("-", " ")
        for kind, aliases in ALIASES.items():
            if key in aliases or key.replace("_", " ") in aliases:
                found.setdefault(kind, i)
    return found


def _otsu(values: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(values)) if values.size and np.ptp(values) > 0 else float("nan")


def prefill_mask(
    image: np.ndarray, classes: Sequence[str], config: PrefillConfig | None = None
) -> np.ndarray:
    """A partial mask of class indices from colour rules; 255 where unsure or unmapped.

    Args:
        image: uint8 RGB tile or smear.
        classes: The workspace's class names; only names the rules know get filled.
        config: Thresholds and sizes.

    Shape:
        image: (H, W, 3); returns (H, W) uint8.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}.")
    config = config or PrefillConfig()
    targets = match_classes(classes)
    out = np.full(image.shape[:2], UNLABELLED, dtype=np.uint8)
    if not targets:
        return out

    rgb = image.astype(np.float32)
    purple_score = rgb[..., 2] - rgb[..., 1]
    t_purple = np.clip(_otsu(purple_score), config.purple_min, config.purple_max)
    if np.isnan(t_purple):
        t_purple = config.purple_min
    purple = purple_score > t_purple + config.purple_margin
    purple_unsure = np.abs(purple_score - t_purple) <= config.purple_margin

    cells, plasma = _cells_and_plasma(rgb, ~(purple | purple_unsure), config)
    rbc_area = _typical_cell_area(cells, config.min_object_px)
    if rbc_area is None:
        # Too few red cells to measure: assume one covers about 1 % of the tile.
        rbc_area = 0.01 * out.size
    else:
        cells = _fill_pallor(cells, max_hole=0.5 * rbc_area)
        plasma &= ~cells
        # Plasma almost enclosed by a cell is mostly pale cell centre: leave it to the annotator.
        plasma &= ~_nearly_enclosed(cells, radius=0.25 * np.sqrt(rbc_area / np.pi))

    nuclei, platelets, groups = _split_purple(purple, rbc_area, config)
    unsure_ring = _cytoplasm_ring(groups, config.cytoplasm_rel) & ~nuclei

    def put(kind: str, where: np.ndarray) -> None:
        if kind in targets:
            out[where] = targets[kind]

    put("background", plasma & ~unsure_ring)
    put("erythrocyte", cells & ~unsure_ring)
    put("platelet", platelets & ~unsure_ring)  # granules of a white cell look like platelets
    put("nucleus" if "nucleus" in targets else "leukocyte", nuclei)
    return out


def _cells_and_plasma(
    rgb: np.ndarray, candidates: np.ndarray, config: PrefillConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Red cells vs plasma among non-purple pixels, each with an unsure band between them."""
    from skimage.color import rgb2lab

    lab = rgb2lab(rgb / 255.0)
    # Red cells are redder (a*) and darker (L*) than plasma; each term in its own spread.
    a, lightness = lab[..., 1], lab[..., 0]
    sel_a, sel_l = a[candidates], lightness[candidates]
    none = np.zeros(candidates.shape, dtype=bool)
    if sel_a.size < 16:
        return none, none
    score = (a - sel_a.mean()) / (sel_a.std() + 1e-6) - (lightness - sel_l.mean()) / (
        sel_l.std() + 1e-6
    )
    values = score[candidates]
    t = _otsu(values)
    if np.isnan(t):
        return none, none
    hi, lo = values[values > t], values[values <= t]
    gap = float(hi.mean() - lo.mean()) if hi.size and lo.size else 0.0
    # A tile of plasma only (or cells only) has no real split: Otsu would cut noise.
    if gap < config.min_contrast * float(values.std() + 1e-6) * 2:
        return none, none
    band = config.cell_margin * gap
    return candidates & (score > t + band), candidates & (score < t - band)


def _typical_cell_area(cells: np.ndarray, min_object_px: int) -> float | None:
    """Area of the red cell a typical red-cell pixel belongs to (fragments weigh little)."""
    from training.analysis import label_objects

    objects = label_objects(cells, split=True, min_object_px=min_object_px)
    if objects.max() < 3:
        return None
    sizes = np.bincount(objects.ravel())
    return float(np.median(sizes[objects[objects > 0]]))


def _nearly_enclosed(cells: np.ndarray, radius: float) -> np.ndarray:
    r = max(1, round(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = yy**2 + xx**2 <= r * r
    padded = np.pad(cells, r, mode="edge")
    closed = ndi.binary_closing(padded, structure=disk)[r:-r, r:-r]
    return closed & ~cells


def _fill_pallor(cells: np.ndarray, max_hole: float) -> np.ndarray:
    holes = ndi.binary_fill_holes(cells) & ~cells
    labels, n = ndi.label(holes)
    if n == 0:
        return cells
    sizes = np.bincount(labels.ravel())
    small = sizes <= max_hole
    small[0] = False
    return cells | small[labels]


def _split_purple(
    purple: np.ndarray, rbc_area: float, config: PrefillConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nuclei (large purple groups), platelets (small isolated specks), and nucleus groups."""
    grouped = purple
    if config.lobe_gap_px:
        grouped = ndi.binary_closing(
            purple, structure=np.ones((3, 3), bool), iterations=config.lobe_gap_px
        )
        grouped |= purple
    labels, n = ndi.label(grouped)
    if n == 0:
        return purple, purple, purple
    sizes = np.bincount(labels.ravel(), weights=purple.ravel().astype(np.float64))
    kind = np.zeros(n + 1, dtype=np.uint8)  # 0 unsure, 1 platelet, 2 nucleus
    rel = sizes / rbc_area
    kind[(rel >= config.platelet_min_rel) & (rel <= config.platelet_max_rel)] = 1
    kind[rel >= config.nucleus_min_rel] = 2
    kind[sizes < config.min_object_px] = 0
    kind[0] = 0
    k = kind[labels]
    return purple & (k == 2), purple & (k == 1), grouped & (k == 2)


def _cytoplasm_ring(nuclei: np.ndarray, rel: float) -> np.ndarray:
    """Pixels within ``rel`` equivalent radii of the nearest nucleus group (group excluded)."""
    if not nuclei.any() or rel == 0:
        return np.zeros(nuclei.shape, dtype=bool)
    labels, _ = ndi.label(nuclei)
    areas = np.bincount(labels.ravel())
    radius = np.sqrt(areas / np.pi) * rel
    dist, (iy, ix) = ndi.distance_transform_edt(~nuclei, return_indices=True)
    nearest = labels[iy, ix]
    return (dist > 0) & (dist <= radius[nearest])
