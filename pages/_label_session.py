"""The Label page's labelling session, without Streamlit: which tile comes next, what is being
edited, how the canvas becomes a mask, and what a save records.

Promises:
- A tile order is one callable, store -> tile ids (:data:`TILE_ORDERS`); a ranking handed over
  by the Suggestions page walks as given (:func:`suggested_order`).
- :func:`step` moves exactly one tile in the order, whatever else the page shows: Next and
  Skip to the one after, Previous to the one before, wrapping at the ends; from a tile outside
  the order, Next goes to its first tile and Previous to its last.
- :class:`Editing` is the tile being edited: where it started (a revision or a pre-fill), the
  working mask, the canvas's view (zoom and pan) and which pixels the eraser cleared since the
  tile was opened. Every change returns a new value; the page keeps one in its session.
- :func:`painted` turns canvas objects into a mask at tile resolution: strokes are re-drawn
  crisp by :func:`dataset.masks.rasterize_canvas` through the view's crop, and wand clicks
  (point objects) fill the region :mod:`dataset.wand` finds under them.
- :meth:`Editing.record` is what a save writes beside the mask (source, model, base revision).
- Nothing here imports Streamlit, so all of it is tested with plain pytest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from dataset.masks import apply_paint, class_of_color, fill_rest, rasterize_canvas
from dataset.schema import UNLABELLED, ClassSchema
from dataset.store import RULES_MODEL_ID, Revision, Store
from dataset.wand import Click, cell_region, component_region

if TYPE_CHECKING:
    from training.service import Prefill

RULES_ID = RULES_MODEL_ID  # the model id a save records for a pre-fill by the colour rules
ERASER = "eraser"
# The canvas has no eraser: it paints in a colour no class uses, mapped to "unlabelled".
_ERASER_CANDIDATES = ("#ffffff", "#00ffff", "#ff00ff", "#000000", "#00ff00")
MAX_CANVAS = 512  # the canvas's largest side in screen pixels: 2× of a 256-px tile
ZOOMS = (1, 2, 4)  # screen pixels per tile pixel
DEFAULT_ZOOM = 2

# ------------------------------------------------------------------------------ tile order
TileOrder = Callable[[Store], list[str]]


def store_order(store: Store) -> list[str]:
    """Tiles as stored: by smear, then row, then column."""
    return [t.tile_id for t in store.tiles()]


def unlabelled_first(store: Store) -> list[str]:
    """Store order, with tiles nobody labelled or skipped yet first."""
    latest = store.latest_revisions()
    skipped = store.skipped_tile_ids()

    def done(tile_id: str) -> bool:
        rev = latest.get(tile_id)
        return tile_id in skipped or (rev is not None and rev.n_labelled_px > 0)

    return sorted(store_order(store), key=done)


TILE_ORDERS: dict[str, TileOrder] = {
    "Unlabelled first": unlabelled_first,
    "Store order": store_order,
}


def suggested_order(store: Store, ranked: Sequence[str]) -> list[str]:
    """A handed-over ranking, without tiles the store no longer has (first mention wins)."""
    known = set(store_order(store))
    seen: set[str] = set()
    order = []
    for tile_id in ranked:
        if tile_id in known and tile_id not in seen:
            seen.add(tile_id)
            order.append(tile_id)
    return order


MOVES = ("next", "previous", "skip")


def step(order: Sequence[str], current: str, move: str) -> str:
    """The tile one ``move`` away from ``current`` in ``order``.

    Raises:
        ValueError: an empty order or an unknown move.
    """
    if move not in MOVES:
        raise ValueError(f"Unknown move {move!r}; the moves are {', '.join(MOVES)}.")
    if not order:
        raise ValueError("There is no tile to move to: the tile order is empty.")
    if current not in order:
        return order[-1] if move == "previous" else order[0]
    pos = order.index(current)
    return order[(pos + (-1 if move == "previous" else 1)) % len(order)]


def position(order: Sequence[str], current: str) -> str:
    """Where ``current`` stands in ``order``, for the page ("tile 3 of 90")."""
    if current in order:
        return f"tile {order.index(current) + 1} of {len(order)}"
    return "outside this order"


# ------------------------------------------------------------------------------ view
@dataclass(frozen=True)
class View:
    """What part of the tile the canvas shows, and how large.

    Attributes:
        zoom: Screen pixels per tile pixel (one of :data:`ZOOMS`).
        x, y: Tile pixel at the canvas's top-left corner.
    """

    zoom: int = DEFAULT_ZOOM
    x: int = 0
    y: int = 0

    def window(self, tile_w: int, tile_h: int, tile_size: int) -> tuple[int, int, int, int]:
        """The tile crop shown, ``(x, y, w, h)`` in tile pixels, inside the tile.

        The canvas is at most :data:`MAX_CANVAS` screen pixels per side for a full tile of
        ``tile_size``; a zoom that would exceed it shows a crop, which the pan moves.
        """
        side = max(1, min(tile_size, MAX_CANVAS // self.zoom))
        w, h = min(side, tile_w), min(side, tile_h)
        x = min(max(self.x, 0), tile_w - w)
        y = min(max(self.y, 0), tile_h - h)
        return x, y, w, h

    def canvas_size(self, tile_w: int, tile_h: int, tile_size: int) -> tuple[int, int]:
        """The canvas's (width, height) in screen pixels."""
        _, _, w, h = self.window(tile_w, tile_h, tile_size)
        scale = self.scale(tile_size)
        return round(w * scale), round(h * scale)

    def scale(self, tile_size: int) -> float:
        """Screen pixels per tile pixel. Tiles other than 256 px keep the 512-px canvas at 2×."""
        return self.zoom * (MAX_CANVAS / 2) / max(tile_size, 1)

    def pannable(self, tile_w: int, tile_h: int, tile_size: int) -> bool:
        _, _, w, h = self.window(tile_w, tile_h, tile_size)
        return (w, h) != (tile_w, tile_h)


def view_for(zoom: int, x: int, y: int) -> View:
    """A view, refusing a zoom the page does not offer."""
    if zoom not in ZOOMS:
        raise ValueError(f"Zoom {zoom}× is not offered; choose one of {ZOOMS}.")
    return View(zoom, int(x), int(y))


# ------------------------------------------------------------------------------ editing
@dataclass(frozen=True)
class SaveRecord:
    """What a save writes beside the mask."""

    source: str
    model_id: str | None
    base_revision: int | None


@dataclass(frozen=True, eq=False)
class Editing:
    """The tile being edited in this session.

    Attributes:
        tile_id: The tile.
        base: The revision the edit started from (None: the tile had no saved mask).
        saved: The mask of ``base`` (all unlabelled when None).
        mask: The working mask: where the edit started plus edits baked in (fill the rest,
            a replacing prediction, strokes made before the view changed), before the strokes
            on the canvas now.
        opened: ``time.monotonic()`` when the tile was opened or last saved.
        nonce: Part of the canvas key; a new value gives an empty canvas.
        source: What a save records: ``prefill`` when ``mask`` came from a pre-fill, else
            ``manual``.
        model_id: The model of that pre-fill (:data:`RULES_ID` for the colour rules).
        start: The pre-fill the edit started from; None when it started from ``saved``.
        view: The zoom and pan the current canvas is drawn at.
        erased: Pixels the eraser cleared since the tile was opened (baked strokes only).
        lane: The label being edited: ``first`` (the tile's ordinary revisions) or
            ``second`` (its independent second label; ``base`` is then a revision of that
            label, :mod:`dataset.store.second_labels`).
    """

    tile_id: str
    base: Revision | None
    saved: np.ndarray
    mask: np.ndarray
    opened: float
    nonce: int
    source: str = "manual"
    model_id: str | None = None
    start: Prefill | None = None
    view: View = field(default_factory=View)
    erased: np.ndarray | None = None
    lane: str = "first"

    @property
    def second(self) -> bool:
        """Whether this is the tile's independent second label."""
        return self.lane == "second"

    @property
    def base_number(self) -> int:
        return self.base.revision if self.base else 0

    @property
    def canvas_key(self) -> str:
        return f"lbl_canvas_{self.tile_id}_{self.base_number}_{self.nonce}"

    @property
    def origin(self) -> np.ndarray:
        """The mask the edit started from: the pre-fill, or the saved revision."""
        return self.start.mask if self.start is not None else self.saved

    @property
    def start_id(self) -> str | None:
        """The model id of the pre-fill the edit started from (None: no pre-fill)."""
        return None if self.start is None else prefill_id(self.start)

    @property
    def erased_px(self) -> np.ndarray:
        """:attr:`erased` as a full boolean raster."""
        if self.erased is None:
            return np.zeros(self.mask.shape, dtype=bool)
        return self.erased

    def record(self) -> SaveRecord:
        """What a save of this edit records."""
        return SaveRecord(self.source, self.model_id, self.base_number or None)

    def with_prefill(self, start: Prefill, nonce: int) -> Editing:
        """This edit with ``start`` as its working mask (a save records it as a pre-fill)."""
        return replace(
            self, mask=start.mask.copy(), source="prefill", model_id=prefill_id(start), nonce=nonce
        )

    def back_to_origin(self, nonce: int) -> Editing:
        """This edit with every change since it started dropped."""
        if self.start is not None:
            return replace(self.with_prefill(self.start, nonce), erased=None)
        return replace(
            self,
            mask=self.saved.copy(),
            source="manual",
            model_id=None,
            nonce=nonce,
            erased=None,
        )

    def baked(self, paint: Painted, nonce: int, view: View | None = None) -> Editing:
        """The canvas's strokes made part of the working mask, on a fresh canvas."""
        return replace(
            self,
            mask=paint.mask,
            erased=self.erased_px | paint.erased,
            nonce=nonce,
            view=self.view if view is None else view,
        )

    def after_save(
        self, rev: Revision, mask: np.ndarray, nonce: int, now: float, lane: str | None = None
    ) -> Editing:
        """Editing on from the revision just saved (edits on top are the annotator's own), on
        the label it was saved to (``lane``; default this edit's)."""
        return Editing(
            self.tile_id,
            rev,
            mask,
            mask.copy(),
            now,
            nonce,
            view=self.view,
            erased=None,
            lane=lane or self.lane,
        )


def opened(
    tile_id: str,
    base: Revision | None,
    saved: np.ndarray,
    nonce: int,
    now: float,
    start: Prefill | None = None,
    view: View | None = None,
    lane: str = "first",
) -> Editing:
    """An edit of a tile just opened: from its revision ``base``, else from ``start``.

    ``start`` (a pre-fill) is used only for a tile without a saved mask.
    """
    view = view or View()
    editing = Editing(tile_id, base, saved, saved.copy(), now, nonce, view=view, lane=lane)
    if base is None and start is not None:
        return replace(editing.with_prefill(start, nonce), start=start)
    return editing


def prefill_id(start: Prefill) -> str:
    """The model id a save of ``start`` records (:data:`RULES_ID` for the colour rules)."""
    return start.model_id or RULES_ID


# ------------------------------------------------------------------------------ paint
def paint_colors(schema: ClassSchema) -> dict[str, str]:
    """Brush colour (#rrggbb) of every class and of the eraser."""
    used = {c.lower() for c in schema.colors}
    eraser = next((c for c in _ERASER_CANDIDATES if c not in used), None)
    if eraser is None:  # a schema that uses every candidate: take any free grey
        greys = (f"#{v:02x}{v:02x}{v:02x}" for v in range(1, 255))
        eraser = next(g for g in greys if g not in used)
    return {**dict(zip(schema.names, schema.colors, strict=True)), ERASER: eraser}


def color_to_class(schema: ClassSchema) -> dict[str, int]:
    """Canvas colour -> mask value, the eraser giving :data:`UNLABELLED`."""
    colors = paint_colors(schema)
    return {colors[n]: (UNLABELLED if n == ERASER else schema.index(n)) for n in colors}


@dataclass(frozen=True)
class Wand:
    """How a wand click becomes a region on this tile.

    Attributes:
        lab: The tile in Lab (:func:`dataset.wand.to_lab`).
        tolerance: ΔE for the colour flood that seeds the clicked cell.
        prediction: The current model's mask of the tile, when that model earned its place
            (beat the colour rules); its component under the click wins over the classical
            cell region.
        background: The background class index (None: no such class).
    """

    lab: np.ndarray
    tolerance: float
    prediction: np.ndarray | None = None
    background: int | None = None

    def region(self, click: Click) -> np.ndarray:
        if self.prediction is not None:
            region = component_region(self.prediction, click, self.background)
            if region.any():
                return region
        return cell_region(self.lab, click, self.tolerance)


@dataclass(frozen=True)
class Painted:
    """The working mask with the canvas laid over it, and the pixels the eraser cleared."""

    mask: np.ndarray
    erased: np.ndarray


def is_wand_click(obj: Mapping[str, Any]) -> bool:
    """A point the canvas placed in point mode (the page's wand tool draws nothing else)."""
    return str(obj.get("type", "")).lower() == "circle" and obj.get("originX") == "left"


def click_of(obj: Mapping[str, Any], window: tuple[int, int, int, int], scale: float) -> Click:
    """The tile pixel a point-mode circle marks (its centre, as the canvas placed it)."""
    radius = float(obj.get("radius", 0)) * float(obj.get("scaleX", 1) or 1)
    cx = float(obj["left"]) + radius + float(obj.get("strokeWidth", 0) or 0) / 2
    cy = float(obj["top"])
    x0, y0, w, h = window
    x = min(max(math.floor(cx / scale), 0), w - 1) + x0
    y = min(max(math.floor(cy / scale), 0), h - 1) + y0
    return Click(x, y)


def painted(
    editing: Editing,
    objects: Sequence[Mapping[str, Any]],
    *,
    tile_size: int,
    colors: Mapping[str, int],
    wand: Wand | None = None,
) -> Painted:
    """The working mask with the canvas objects laid over it, in order (later ones win).

    Strokes are re-drawn at tile resolution inside the view's crop; wand clicks fill the
    region under them with their colour's class.

    Raises:
        ValueError: an object the rasterizer refuses, a colour no class uses, or a wand click
            without a wand.

    Shape:
        return.mask: (h, w) uint8, 255 = unlabelled. return.erased: (h, w) bool.
    """
    mask = editing.mask.copy()
    erased = np.zeros(mask.shape, dtype=bool)
    if not objects:
        return Painted(mask, erased)
    th, tw = mask.shape
    window = editing.view.window(tw, th, tile_size)
    canvas = editing.view.canvas_size(tw, th, tile_size)
    scale = editing.view.scale(tile_size)
    x0, y0, w, h = window
    run: list[Mapping[str, Any]] = []

    def flush() -> None:
        if not run:
            return
        values, touched = rasterize_canvas(
            run, canvas_size=canvas, tile_size=(w, h), color_to_class=colors
        )
        crop = mask[y0 : y0 + h, x0 : x0 + w]
        mask[y0 : y0 + h, x0 : x0 + w] = apply_paint(crop, values, touched)
        erased[y0 : y0 + h, x0 : x0 + w] |= touched & (values == UNLABELLED)
        run.clear()

    for obj in objects:
        if not is_wand_click(obj):
            run.append(obj)
            continue
        flush()
        if wand is None:
            raise ValueError("A wand click arrived, but this tile has no wand to answer it.")
        value = class_of_color(obj.get("stroke") or obj.get("fill"), colors)
        region = wand.region(click_of(obj, window, scale))
        mask[region] = value
        if value == UNLABELLED:
            erased |= region
    flush()
    return Painted(mask, erased)


def fill_the_rest(
    mask: np.ndarray, erased: np.ndarray, background: int, *, erased_too: bool = False
) -> np.ndarray:
    """Unlabelled pixels become ``background``, except those erased since the tile opened.

    Args:
        erased_too: Fill the erased pixels as well.

    Shape:
        mask: (H, W) uint8. erased: (H, W) bool. return: (H, W) uint8.
    """
    filled = fill_rest(mask, background)
    if erased_too:
        return filled
    return np.where(erased & (mask == UNLABELLED), mask, filled).astype(np.uint8)
