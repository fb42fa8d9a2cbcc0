"""Magic wand: the region of a tile that one click means.

Promises:
- :func:`flood_region` grows the region under a click over 4-connected pixels whose colour
  is close to the clicked colour in CIE Lab (Euclidean distance, CIE76 ΔE, against the mean of
  the 3 × 3 pixels around the click, so one noisy pixel does not decide). A region clear of the
  tile's border gets its holes filled, so a click on a cell's cytoplasm also takes its nucleus;
  one that reaches the border (plasma) leaves the cells inside it out. No weights, no
  store, no Streamlit: a tile and a click in, a boolean raster out.
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

__all__ = [
    "DEFAULT_TOLERANCE",
    "MAX_TOLERANCE",
    "Click",
    "component_region",
    "flood_region",
    "to_lab",
]

DEFAULT_TOLERANCE = 9.0  # ΔE: best median IoU with the colour rules' red cells on the demo tiles
MAX_TOLERANCE = 100.0  # the whole Lab lightness range: anything larger means "everything"
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
    if not 0 < tolerance <= MAX_TOLERANCE:
        raise ValueError(
            f"The wand tolerance must be a colour distance in (0, {MAX_TOLERANCE:g}], "
            f"got {tolerance}."
        )
    y0, y1 = max(click.y - 1, 0), click.y + 2
    x0, x1 = max(click.x - 1, 0), click.x + 2
    seed = lab[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    close = np.einsum("hwc,hwc->hw", lab - seed, lab - seed) <= tolerance * tolerance
    close[click.y, click.x] = True
    labels, _ = ndimage.label(close, structure=_FOUR)
    region = labels == labels[click.y, click.x]
    return _cell_holes_filled(region)


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
