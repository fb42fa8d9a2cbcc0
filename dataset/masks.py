"""Masks: uint8 rasters of class indices, with 255 (:data:`UNLABELLED`) for unlabelled pixels.

What this module promises:

* PNG round trips are exact (:func:`encode_mask_png` / :func:`decode_mask_png`, which are
  :func:`dataset.png.encode_mask` / :func:`dataset.png.decode_mask`).
* Imported mask files become class indices through an explicit grey-level map
  (:func:`parse_levels`, :func:`apply_levels`) with an explicit tolerance band; a grey that
  no listed level explains refuses the file, naming the file, the level and its pixel count,
  however few such pixels there are (or, asked to be lenient, becomes unlabelled).
* Canvas drawings become crisp class indices: :func:`rasterize_canvas` (in
  :mod:`dataset.canvas`, named here too) re-draws the fabric.js objects of
  ``streamlit-drawable-canvas`` at tile resolution without anti-aliasing, so no stroke edge
  ever takes a third class. :func:`apply_paint` then lays the paint over the tile's saved
  mask.
* Nothing here reads or writes the store; every function is pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataset._colors import _hex_to_rgb, _palette, _parse_color, _rgb_to_hex
from dataset.canvas import _positive_size, rasterize_canvas
from dataset.images import DEFAULT_MAX_PIXELS, ImageRejected, open_checked
from dataset.png import check_mask, decode_mask, encode_mask
from dataset.schema import UNLABELLED, UNLABELLED_NAME

__all__ = [
    "DEFAULT_LEVEL_TOLERANCE",
    "LevelMap",
    "MaskRejected",
    "apply_levels",
    "apply_paint",
    "class_of_color",
    "colorize",
    "decode_mask_png",
    "encode_mask_png",
    "fill_rest",
    "load_mask_file",
    "overlay",
    "parse_levels",
    "rasterize_canvas",
    "threshold_canvas_rgba",
    "unmatched_levels",
]


class MaskRejected(ValueError):
    """A mask file that cannot be imported; the message names the file and says why."""


# --- storage: the PNG codec of stored masks lives in dataset.png; these are its names here.
encode_mask_png = encode_mask
decode_mask_png = decode_mask
_check_mask = check_mask


# --- importing existing mask files -----------------------------------------------------------


@dataclass(frozen=True)
class LevelMap:
    """Which grey level of an imported mask means which class.

    Attributes:
        levels: Grey levels, ascending.
        classes: Class index of each level (255 = unlabelled).
        names: Class name of each level, for messages.
    """

    levels: tuple[int, ...]
    classes: tuple[int, ...]
    names: tuple[str, ...]

    def lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """Class and distance to the nearest level for every grey value 0..255.

        Ties go to the lower level.

        Shape:
            return: two (256,) arrays: uint8 classes, int distances.
        """
        grey = np.arange(256)[:, None]
        distance = np.abs(grey - np.asarray(self.levels)[None, :])
        nearest = distance.argmin(axis=1)
        classes = np.asarray(self.classes, dtype=np.uint8)[nearest]
        return classes, distance.min(axis=1)


_LEVEL_ITEM = re.compile(r"^\s*(\d{1,3})\s*=\s*([^=]+?)\s*$")


def parse_levels(spec: str, schema_names: Sequence[str]) -> LevelMap:
    """Parse a grey-level map such as ``"0=unlabelled,155=leukocyte,255=leukocyte"``.

    Items are separated by commas, semicolons or new lines; several levels may share a
    class. ``unlabelled`` is always a valid name.

    Args:
        spec: The map as the user typed it.
        schema_names: The workspace's class names, in index order.

    Returns:
        The parsed map, levels ascending.

    Raises:
        ValueError: Bad syntax, a level outside 0..255 or given twice, or an unknown class.
    """
    items = [item for item in re.split(r"[,;\n]", spec) if item.strip()]
    if not items:
        raise ValueError(
            "The level map is empty; write it as grey=class pairs, "
            "e.g. '0=unlabelled,155=leukocyte'."
        )
    valid = [*schema_names, UNLABELLED_NAME]
    pairs: dict[int, tuple[int, str]] = {}
    for item in items:
        match = _LEVEL_ITEM.match(item)
        if not match:
            raise ValueError(
                f"Cannot read {item.strip()!r} in the level map; write grey=class pairs "
                "separated by commas, e.g. '0=unlabelled,155=leukocyte'."
            )
        level, name = int(match.group(1)), match.group(2).strip().lower()
        if level > 255:
            raise ValueError(f"Grey level {level} in {item.strip()!r} is outside 0..255.")
        if level in pairs:
            raise ValueError(f"Grey level {level} is given twice in the level map.")
        if name == UNLABELLED_NAME:
            index = UNLABELLED
        elif name in schema_names:
            index = list(schema_names).index(name)
        else:
            raise ValueError(
                f"Unknown class {name!r} in the level map; valid names: {', '.join(valid)}."
            )
        pairs[level] = (index, name)
    levels = tuple(sorted(pairs))
    return LevelMap(
        levels=levels,
        classes=tuple(pairs[level][0] for level in levels),
        names=tuple(pairs[level][1] for level in levels),
    )


DEFAULT_LEVEL_TOLERANCE = 40
"""Grey levels either side of a listed level that still count as that level (JPEG noise,
anti-aliased edges). A grey farther than this from every listed level is unknown."""


def unmatched_levels(
    grey: np.ndarray, level_map: LevelMap, tolerance: int = DEFAULT_LEVEL_TOLERANCE
) -> dict[int, int]:
    """Grey levels farther than ``tolerance`` from every listed level, with their pixel counts.

    Shape:
        grey: (H, W), uint8.
    """
    _, distance = level_map.lookup()
    counts = np.bincount(grey.ravel(), minlength=256)
    far = (distance > tolerance) & (counts > 0)
    return {int(v): int(counts[v]) for v in np.flatnonzero(far)}


def apply_levels(
    grey: np.ndarray,
    level_map: LevelMap,
    *,
    name: str,
    tolerance: int = DEFAULT_LEVEL_TOLERANCE,
    lenient: bool = False,
) -> np.ndarray:
    """Turn an imported grey mask into class indices by the nearest listed level.

    A grey within ``tolerance`` of a listed level takes that level's class (the nearest, if
    several), so JPEG noise and anti-aliased edges import cleanly. A grey farther than
    ``tolerance`` from every listed level is not explained by the map: strict (the
    default), any such pixel, however few, refuses the file; ``lenient``, those pixels
    become unlabelled (count them with :func:`unmatched_levels` to report them).

    Args:
        grey: The mask file's grey values (see :func:`load_mask_file`).
        level_map: From :func:`parse_levels`.
        name: The file's name, for the message.
        tolerance: Grey levels either side of a listed level that count as it (0..255).
        lenient: Map unexplained greys to unlabelled instead of refusing the file.

    Returns:
        Class indices.

    Raises:
        MaskRejected: Strict, and some pixel is farther than ``tolerance`` from every level.
        ValueError: ``tolerance`` outside 0..255.

    Shape:
        grey: (H, W), uint8. return: (H, W), uint8.
    """
    _check_mask(grey, f"The grey values of {name!r}")
    if not 0 <= int(tolerance) <= 255:
        raise ValueError(f"The level tolerance must be 0..255 grey levels, got {tolerance}.")
    classes, distance = level_map.lookup()
    far = distance > tolerance
    unknown = unmatched_levels(grey, level_map, tolerance)
    if unknown and not lenient:
        listed = ", ".join(
            f"{lv}={nm}" for lv, nm in zip(level_map.levels, level_map.names, strict=True)
        )
        worst = sorted(unknown.items(), key=lambda kv: -kv[1])
        shown = ", ".join(f"grey {v}: {n} px" for v, n in worst[:5])
        more = f" and {len(worst) - 5} more levels" if len(worst) > 5 else ""
        total = sum(unknown.values())
        raise MaskRejected(
            f"{name!r} has {total} pixels ({total / grey.size:.2%}) at grey levels more than "
            f"{tolerance} from every level in the map ({listed}): {shown}{more}. Add those "
            "levels to the map, widen the tolerance, or import with --levels-lenient to "
            "leave them unlabelled."
        )
    lut = np.where(far, UNLABELLED, classes).astype(np.uint8)
    return lut[grey]


def load_mask_file(data: bytes, name: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an existing mask image as 8-bit grey values, ready for :func:`apply_levels`.

    Greyscale is used as is. Colour masks are converted to grey (ITU-R 601 luma), so their
    class colours must differ in brightness. Palette masks give their palette indices: in a
    palette mask the index is the label. 16-bit masks whose values all fit in 0..255 (class
    indices stored wide) are used as is; other 16-bit masks are scaled by the bit depth.

    Args:
        data: The file's bytes (PNG, JPEG, TIFF or BMP).
        name: The file's name, for messages.
        max_pixels: Largest width × height accepted.

    Raises:
        MaskRejected: Unreadable, too large, or a pixel format without grey values.

    Shape:
        return: (H, W), uint8.
    """
    try:
        img, _ = open_checked(data, name, max_pixels=max_pixels)
    except ImageRejected as exc:
        raise MaskRejected(str(exc)) from None
    with img:
        mode = img.mode
        if mode in ("P", "PA"):
            return np.array(img.getchannel(0) if mode == "PA" else img, dtype=np.uint8)
        if mode.startswith("I;16"):
            wide = np.asarray(img).astype(np.uint16)
            if int(wide.max(initial=0)) <= 255:
                return wide.astype(np.uint8)
            return ((wide.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        if mode in ("I", "F"):
            raise MaskRejected(
                f"{name!r} has 32-bit pixels; save the mask as an 8-bit greyscale PNG."
            )
        if mode == "LA":
            return np.array(img.getchannel("L"), dtype=np.uint8)
        try:
            return np.array(img.convert("L"), dtype=np.uint8)
        except ValueError as exc:
            raise MaskRejected(
                f"{name!r} uses the pixel format {mode!r}, which has no grey values ({exc}); "
                "save the mask as an 8-bit greyscale PNG."
            ) from None


# --- canvas paint -> masks -----------------------------------------------------------------


def apply_paint(base_mask: np.ndarray, values: np.ndarray, touched: np.ndarray) -> np.ndarray:
    """Lay canvas paint over a tile's mask: touched pixels take the painted value.

    Shape:
        base_mask, values: (H, W), uint8. touched: (H, W), bool. return: (H, W), uint8.
    """
    _check_mask(base_mask, "base_mask")
    _check_mask(values, "values")
    if not isinstance(touched, np.ndarray) or touched.shape != base_mask.shape:
        raise ValueError(
            f"touched must be a bool array of the mask's shape {base_mask.shape}, got "
            f"{getattr(touched, 'shape', type(touched).__name__)}."
        )
    if values.shape != base_mask.shape:
        raise ValueError(f"values {values.shape} and base_mask {base_mask.shape} differ in shape.")
    return np.where(touched.astype(bool), values, base_mask).astype(np.uint8)


def class_of_color(colour: Any, color_to_class: Mapping[str, int]) -> int:
    """The mask value a canvas colour paints, read as :func:`rasterize_canvas` reads it.

    Raises:
        ValueError: ``colour`` is transparent or no class's colour.
    """
    parsed = _parse_color(colour)
    if parsed is None or parsed[1] <= 0:
        raise ValueError(f"The colour {colour!r} paints nothing; pick a class to paint with.")
    palette = _palette(color_to_class)
    key = _rgb_to_hex(parsed[0])
    if key not in palette:
        raise ValueError(f"The colour {colour!r} is not a class colour.")
    return palette[key]


def fill_rest(mask: np.ndarray, background_index: int) -> np.ndarray:
    """Give every unlabelled pixel the background class.

    Shape:
        mask: (H, W), uint8. return: (H, W), uint8.
    """
    _check_mask(mask, "mask")
    if not 0 <= int(background_index) < UNLABELLED:
        raise ValueError(f"background_index must be a class index 0..254, got {background_index}.")
    return np.where(mask == UNLABELLED, np.uint8(background_index), mask).astype(np.uint8)


def threshold_canvas_rgba(
    image_data: np.ndarray,
    color_to_class: Mapping[str, int],
    alpha_threshold: int = 128,
    *,
    tile_size: tuple[int, int] | None = None,
    max_color_distance: float = 48.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Fallback: classify the canvas's rendered pixels instead of re-drawing its objects.

    A pixel counts as painted when its alpha is at least ``alpha_threshold`` and its colour
    is within ``max_color_distance`` (RGB, Euclidean) of a palette colour; it takes that
    colour's class. Blends between two strokes' colours match neither closely and stay
    untouched, so no class bleeds into a third. Only meaningful for a canvas without
    background image or colour: the rendered PNG includes them.

    Args:
        image_data: ``CanvasResult.image_data``.
        color_to_class: As for :func:`rasterize_canvas`.
        alpha_threshold: Least alpha of a painted pixel.
        tile_size: (width, height) to sample down to (the canvas pixel under each tile
            pixel's centre); None keeps the canvas size.
        max_color_distance: Farthest a painted pixel may be from its palette colour.

    Returns:
        ``(values, touched)`` as :func:`rasterize_canvas`.

    Shape:
        image_data: (canvas_h, canvas_w, 4), uint8. values: (H, W), uint8; touched: (H, W).
    """
    rgba = np.asarray(image_data)
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError(f"image_data must be (H, W, 4) uint8 RGBA, got {rgba.shape} {rgba.dtype}.")
    palette = _palette(color_to_class)
    if tile_size is not None:
        tw, th = _positive_size(tile_size, "tile_size")
        ch, cw = rgba.shape[:2]
        rows = np.minimum(((np.arange(th) + 0.5) * ch / th).astype(int), ch - 1)
        cols = np.minimum(((np.arange(tw) + 0.5) * cw / tw).astype(int), cw - 1)
        rgba = rgba[rows][:, cols]
    colours = np.array([_hex_to_rgb(c) for c in palette], dtype=np.float32)
    classes = np.array(list(palette.values()), dtype=np.uint8)
    pixels = rgba[:, :, :3].astype(np.float32)
    distance = np.linalg.norm(pixels[:, :, None, :] - colours[None, None], axis=-1)
    nearest = distance.argmin(axis=-1)
    touched = (rgba[:, :, 3] >= alpha_threshold) & (distance.min(axis=-1) <= max_color_distance)
    values = np.where(touched, classes[nearest], UNLABELLED).astype(np.uint8)
    return values, touched


# --- display ---------------------------------------------------------------------------------


def overlay(rgb: np.ndarray, mask: np.ndarray, palette: np.ndarray, opacity: float) -> np.ndarray:
    """Blend class colours over an image; unlabelled pixels are left as they are.

    Args:
        rgb: The image.
        mask: Class indices.
        palette: Colour of each mask value (``ClassSchema.palette()``).
        opacity: 0 shows only the image, 1 only the class colours.

    Shape:
        rgb: (H, W, 3), uint8. mask: (H, W), uint8. palette: (256, 3), uint8.
        return: (H, W, 3), uint8.
    """
    _check_mask(mask, "mask")
    _check_palette(palette)
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.shape != (*mask.shape, 3):
        raise ValueError(
            f"rgb must be uint8 of shape {(*mask.shape, 3)} to match the mask, got "
            f"{getattr(rgb, 'shape', None)} {getattr(rgb, 'dtype', None)}."
        )
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}.")
    colours = palette[mask].astype(np.float32)
    blended = rgb.astype(np.float32) * (1.0 - opacity) + colours * opacity
    labelled = (mask != UNLABELLED)[:, :, None]
    return np.where(labelled, np.rint(blended).astype(np.uint8), rgb)


def colorize(mask: np.ndarray, palette: np.ndarray, *, alpha: int = 255) -> np.ndarray:
    """RGBA picture of a mask, transparent where unlabelled (to show under the canvas).

    Shape:
        mask: (H, W), uint8. palette: (256, 3), uint8. return: (H, W, 4), uint8.
    """
    _check_mask(mask, "mask")
    _check_palette(palette)
    if not 0 <= alpha <= 255:
        raise ValueError(f"alpha must be 0..255, got {alpha}.")
    out = np.empty((*mask.shape, 4), dtype=np.uint8)
    out[:, :, :3] = palette[mask]
    out[:, :, 3] = np.where(mask == UNLABELLED, 0, alpha)
    return out


def _check_palette(palette: Any) -> None:
    if (
        not isinstance(palette, np.ndarray)
        or palette.shape != (256, 3)
        or palette.dtype != np.uint8
    ):
        raise ValueError(
            "palette must be a (256, 3) uint8 array (ClassSchema.palette()), got "
            f"{getattr(palette, 'shape', type(palette).__name__)}."
        )
