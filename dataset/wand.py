"""Magic wand: the region of a tile that one click means.

Promises:
- :func:`flood_region` grows the region under a click over 4-connected pixels whose colour
  is close to the clicked colour in CIE Lab (Euclidean distance, CIE76 ΔE, against the mean of
  the 3 × 3 pixels around the click, so one noisy pixel does not decide). A region clear of the
  tile's border gets its holes filled, so a click on a cell's cytoplasm also takes its nucleus;
  one that reaches the border (plasma) leaves the cells inside it out. No weights, no
  store, no Streamlit: a tile and a click in, a boolean raster out.
- :func:`cell_region` is what a click on the Label page means: the basin, under the click, of
  a watershed of the distance to plasma. Plasma is the lightest of three lightness classes
  (multi-Otsu; nucleus, cells, plasma) where it touches the tile's border or covers 2 % of it,
  so a red cell's pale centre is not plasma. Each cell's centre (a peak of that distance) is a
  marker, so touching cells are cut along the ridge between them, and a cell whose colour
  varies (a white cell's nucleus and cytoplasm) is taken whole. A click on plasma gives the
  flood region. On 621 clicks on BCCD tiles (``bench/wand_latency.py --images 60``) the median
  IoU with the published white-cell masks rose from 0.23 (flood fill alone) to 0.92, and
  with red cells' box ellipses from 0.26 to 0.56, at a median 29 ms per click.
- :func:`component_region` is the model's answer instead: the connected component of the
  predicted class under the click (empty when the click is on the background class, whose
  one component would be most of the tile).
- :func:`to_lab` converts a tile once; callers that click many times on one tile keep it.
- Seeds and tolerances outside their range are refused with a message naming them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.color import rgb2lab
from skimage.feature import peak_local_max
from skimage.filters import threshold_multiotsu
from skimage.segmentation import watershed

__all__ = [
    "DEFAULT_TOLERANCE",
    "MAX_TOLERANCE",
    "Click",
    "cell_region",
    "component_region",
    "flood_region",
    "to_lab",
]

DEFAULT_TOLERANCE = 9.0  # ΔE: best median IoU with the colour rules' red cells on the demo tiles
MAX_TOLERANCE = 100.0  # the whole Lab lightness range: anything larger means "everything"
# Two cell centres closer than this are one cell's: half the radius of a red cell on BCCD's
# 640 × 480 photos (about 25 px); smaller splits cells, larger merges touching ones.
MIN_CENTRE_DISTANCE_PX = 12
PLASMA_MIN_SHARE = 0.02  # a light patch this large is plasma even when it misses the border
# Two lightness classes whose means differ by less than this (CIE L) are one colour split by
# noise; on BCCD tiles red cells and plasma differ by 5.5 to 15.
NOISE_SPLIT_L = 4.0
_FOUR = ndimage.generate_binary_structure(2, 1)


@dataclass(frozen=True)
class Click:
    """A click on a tile, in tile pixels (``x`` column, ``y`` row)."""

    x: int
    y: int

    def check(self, shape: tuple[int, ...]) -> None:
        h, w = shape[:2]
        if not (0 <= self.x < w and 0 <= self.y < h):
            raise ValueError(
                f"The wand click at tile pixel ({self.x}, {self.y}) lies outside the "
                f"{w}×{h} tile; click inside the tile."
            )


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """The tile in CIE Lab (D65), float32.

    Shape:
        rgb: (H, W, 3) uint8. return: (H, W, 3) float32.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"The wand needs an (H, W, 3) RGB tile, got shape {rgb.shape}.")
    return rgb2lab(rgb).astype(np.float32)


def flood_region(lab: np.ndarray, click: Click, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """Pixels connected to ``click`` whose Lab colour lies within ``tolerance`` of the click's.

    Args:
        lab: The tile from :func:`to_lab`.
        click: Where the person clicked.
        tolerance: The largest ΔE (CIE76) from the clicked colour that still joins the region.

    Returns:
        The region (holes filled when it is clear of the border); it always contains the
        clicked pixel.

    Shape:
        lab: (H, W, 3) float. return: (H, W) bool.
    """
    click.check(lab.shape)
    _check_tolerance(tolerance)
    y0, y1 = max(click.y - 1, 0), click.y + 2
    x0, x1 = max(click.x - 1, 0), click.x + 2
    seed = lab[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    close = np.einsum("hwc,hwc->hw", lab - seed, lab - seed) <= tolerance * tolerance
    close[click.y, click.x] = True
    labels, _ = ndimage.label(close, structure=_FOUR)
    region = labels == labels[click.y, click.x]
    return _cell_holes_filled(region)


def cell_region(lab: np.ndarray, click: Click, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """The cell under ``click``: its basin of the distance to plasma.

    Args:
        lab: The tile from :func:`to_lab`.
        click: Where the person clicked.
        tolerance: ΔE for the flood region given when the click is on plasma
            (see :func:`flood_region`).

    Returns:
        The clicked cell with its holes filled; the flood region when the click is on plasma
        or the tile has no plasma to measure from. It always contains the clicked pixel.

    Shape:
        lab: (H, W, 3) float. return: (H, W) bool.
    """
    click.check(lab.shape)
    _check_tolerance(tolerance)
    plasma = _plasma(lab[..., 0])
    if plasma is None or plasma[click.y, click.x]:
        return flood_region(lab, click, tolerance)
    cells = ~plasma
    distance = ndimage.distance_transform_edt(cells)
    centres = peak_local_max(
        distance,
        min_distance=MIN_CENTRE_DISTANCE_PX,
        labels=ndimage.label(cells, structure=_FOUR)[0],
        exclude_border=False,
    )
    markers = np.zeros(cells.shape, dtype=np.int32)
    markers[plasma] = 1
    markers[centres[:, 0], centres[:, 1]] = np.arange(2, 2 + len(centres))
    basins = watershed(-distance, markers)
    return ndimage.binary_fill_holes(basins == basins[click.y, click.x])


def _check_tolerance(tolerance: float) -> None:
    if not 0 < tolerance <= MAX_TOLERANCE:
        raise ValueError(
            f"The wand tolerance must be a colour distance in (0, {MAX_TOLERANCE:g}], "
            f"got {tolerance}."
        )


def _plasma(lightness: np.ndarray) -> np.ndarray | None:
    """The lightest of three lightness classes (multi-Otsu), or of two where the top two are
    one colour split by noise, kept where it touches the border or is large: plasma, not a
    red cell's pale centre. None when the tile has too few colours to find it."""
    try:
        low, high = threshold_multiotsu(lightness, classes=3)
    except ValueError:  # fewer than three distinct values
        return None
    middle = lightness[(lightness > low) & (lightness <= high)]
    top = lightness[lightness > high]
    if middle.size == 0 or top.size == 0 or top.mean() - middle.mean() < NOISE_SPLIT_L:
        high = low
    light = lightness > high
    labels, count = ndimage.label(light, structure=_FOUR)
    if count == 0:
        return None
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    sizes = ndimage.sum_labels(light, labels, index=np.arange(1, count + 1))
    keep = np.flatnonzero(sizes >= PLASMA_MIN_SHARE * light.size) + 1
    plasma = np.isin(labels, np.union1d(edge[edge > 0], keep))
    return plasma if plasma.any() else None


def _cell_holes_filled(region: np.ndarray) -> np.ndarray:
    """A region clear of the tile's border is a cell: its holes (the nucleus) join it. One
    that reaches the border is plasma (or a cut cell): the cells it encloses stay out."""
    if region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any():
        return region
    return ndimage.binary_fill_holes(region)


def component_region(prediction: np.ndarray, click: Click, background: int | None) -> np.ndarray:
    """The connected component of the predicted class under ``click``.

    Args:
        prediction: A model's class raster of the tile (255 = unsure).
        click: Where the person clicked.
        background: The background class index (None: the schema has none); a click on it,
            or on an unsure pixel, gives an empty region so the caller can fall back.

    Shape:
        prediction: (H, W) uint8. return: (H, W) bool.
    """
    click.check(prediction.shape)
    value = int(prediction[click.y, click.x])
    if value == 255 or value == background:
        return np.zeros(prediction.shape, dtype=bool)
    labels, _ = ndimage.label(prediction == value, structure=_FOUR)
    region = labels == labels[click.y, click.x]
    return _cell_holes_filled(region)
