"""The Label page's canvas: what it shows, and how its drawing becomes a mask.

Promises:
- :data:`TOOLS` names the canvas's drawing mode for each tool the page offers.
- :func:`background_image` is the view's window of the tile with the mask over it, scaled
  nearest-neighbour so each tile pixel stays a crisp block the painter can aim at.
- :func:`asked_view` is the zoom and pan the widgets ask for, in tile pixels.
- :func:`painted` turns the canvas objects into a mask at tile resolution
  (:func:`pages._label_session.painted`). A wand click takes the current model's cell when
  that model beat the colour rules, else :mod:`dataset.wand`'s, on the tile's Lab colours
  computed once per tile.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from dataset.masks import overlay
from dataset.schema import ClassSchema
from dataset.store import Store, TileInfo
from dataset.wand import to_lab
from pages import _common
from pages import _label_session as session
from pages._label_prefill import Starter
from pages._label_session import Editing, Painted, Wand, color_to_class
from pages._label_state import PAN_STEPS, setting

TOOLS = {"Brush": "freedraw", "Wand": "point", "Polygon": "polygon", "Rectangle": "rect"}
PAINT_ALPHA = 0.6  # see-through paint; rasterize_canvas ignores alpha


def rgba(hex_color: str, alpha: float) -> str:
    """``#rrggbb`` as a CSS ``rgba()`` colour with ``alpha``."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def canvas_objects(result: object) -> list[dict]:
    """The fabric objects of a canvas result (empty when nothing was drawn)."""
    data = getattr(result, "json_data", None) or {}
    return list(data.get("objects") or [])


def background_image(
    tile_rgb: np.ndarray,
    mask: np.ndarray,
    schema: ClassSchema,
    opacity: float,
    window: tuple[int, int, int, int],
    size: tuple[int, int],
) -> Image.Image:
    """The canvas's background: the ``window`` (x, y, w, h) of the tile under its mask, at
    ``size`` screen pixels."""
    x, y, w, h = window
    shown = overlay(
        tile_rgb[y : y + h, x : x + w], mask[y : y + h, x : x + w], schema.palette(), opacity
    )
    # Nearest-neighbour so each tile pixel stays a crisp block the painter can aim at.
    return Image.fromarray(shown).resize(size, Image.Resampling.NEAREST)


@st.cache_data(show_spinner=False, max_entries=32)
def _tile_lab(_store: Store, workspace: str, tile_id: str) -> np.ndarray:
    """The tile in Lab, for wand clicks (once per tile)."""
    del workspace
    return to_lab(np.asarray(_store.tile_image(tile_id)))


def asked_view(zoom: int, tile: TileInfo, tile_size: int) -> session.View:
    """The view the zoom and pan widgets ask for, in tile pixels."""
    probe = session.view_for(zoom, 0, 0)
    _, _, w, h = probe.window(tile.w, tile.h, tile_size)
    fx = int(setting("lbl_pan_x", 0, PAN_STEPS)) / 100
    fy = int(setting("lbl_pan_y", 0, PAN_STEPS)) / 100
    return session.view_for(zoom, round(fx * (tile.w - w)), round(fy * (tile.h - h)))


def painted(
    store: Store,
    schema: ClassSchema,
    editing: Editing,
    objects: list[dict],
    tolerance: float,
    starter: Starter | None,
    tile_size: int,
) -> Painted:
    """The working mask with the canvas ``objects`` painted in, at tile resolution."""
    wand = None
    if any(session.is_wand_click(o) for o in objects):
        prediction = None
        # A second label takes no model's cells: a model trained on the first mask carries it.
        if starter is not None and starter.earned and not editing.second:
            prediction = starter.prefill(store, editing.tile_id).mask
        background = schema.index("background") if "background" in schema.names else None
        lab = _tile_lab(store, str(_common.workspace()), editing.tile_id)
        wand = Wand(lab, float(tolerance), prediction, background)
    return session.painted(
        editing, objects, tile_size=tile_size, colors=color_to_class(schema), wand=wand
    )
