"""Label page: paint a tile's mask with classes, an eraser and a background fill; save revisions.

What it promises the person labelling:
- The canvas shows the tile enlarged with its current mask over it; what is painted becomes
  crisp class pixels (the canvas objects are re-drawn by
  :func:`dataset.masks.rasterize_canvas`, never read back from anti-aliased screen pixels).
- Every Save is a new revision with who, the revision it started from and the seconds spent
  since the tile (or the last save) was opened. "Saved" is shown only after the store
  returned. If someone saved the tile in between, nothing is lost: reload theirs, or save
  yours on top (both stay in the history).
- A tile nobody saved a mask for can open pre-filled ("Start from a prediction", on by
  default): with the current model's prediction, or the colour rules while there is no
  model. A save of such a start records source ``prefill`` and the model id
  (:data:`RULES_ID` for the rules), so the lead times of pre-filled and hand-painted tiles
  can be compared. The seconds count from when the pre-fill was shown, not while it ran.
- Leaving a tile with unsaved paint asks first; an untouched pre-fill is no such paint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from dataset.masks import apply_paint, fill_rest, overlay, rasterize_canvas
from dataset.schema import UNLABELLED, ClassSchema
from dataset.store import (
    RULES_MODEL_ID,
    Revision,
    RevisionConflict,
    Store,
    StoreError,
    TileInfo,
)
from model_zoo import ZooError
from pages import _common
from training.service import LoadedModel, Prefill, prefill

DISPLAY_SIDE = 512  # canvas pixels for a full tile: 2x for the default 256 tiles
TOOLS = {"Brush": "freedraw", "Polygon": "polygon", "Rectangle": "rect"}
ERASER = "eraser"
# The canvas has no eraser: it paints in a colour no class uses, mapped to "unlabelled".
_ERASER_CANDIDATES = ("#ffffff", "#00ffff", "#ff00ff", "#000000", "#00ff00")
PAINT_ALPHA = 0.6  # see-through paint; rasterize_canvas ignores alpha

EDITING_KEY = "lbl_editing"
CANVAS_KEY = "lbl_canvas_key"  # the live canvas's widget key (tests feed drawings through it)
FLASH_KEY = "lbl_flash"
CONFLICT_KEY = "lbl_conflict"
LEAVE_KEY = "lbl_leave"
ORDER_CACHE_KEY = "lbl_order_cache"
PREFILL_KEY = "lbl_prefill"
RULES_ID = RULES_MODEL_ID  # the model id a save records for a pre-fill by the colour rules

# ------------------------------------------------------------------------------ tile order
# A tile order is one callable: store -> tile ids in walking order. Add a strategy by adding
# an entry here; the active-learning page can also hand over a ranked queue at run time
# (pages._common.set_label_queue), offered as an extra order.
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


# ------------------------------------------------------------------------------ state
@dataclass(frozen=True, eq=False)
class Editing:
    """The tile being edited in this session.

    Attributes:
        tile_id: The tile.
        base: The revision the edit started from (None: the tile had no saved mask).
        saved: The mask of ``base`` (all unlabelled when None).
        mask: The working mask: where the edit started plus edits baked in (fill the rest,
            a replacing prediction), before strokes.
        opened: ``time.monotonic()`` when the tile was opened or last saved.
        nonce: Part of the canvas key; a new value gives an empty canvas.
        source: What a save records: ``prefill`` when ``mask`` came from a pre-fill, else
            ``manual``.
        model_id: The model of that pre-fill (:data:`RULES_ID` for the colour rules).
        start: The pre-fill the edit started from; None when it started from ``saved``.
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

    def with_prefill(self, start: Prefill, nonce: int) -> Editing:
        """This edit with ``start`` as its working mask (a save records it as a pre-fill)."""
        return replace(
            self, mask=start.mask.copy(), source="prefill", model_id=prefill_id(start), nonce=nonce
        )

    def back_to_origin(self, nonce: int) -> Editing:
        """This edit with every change since it started dropped."""
        if self.start is not None:
            return self.with_prefill(self.start, nonce)
        return replace(self, mask=self.saved.copy(), source="manual", model_id=None, nonce=nonce)


@dataclass(frozen=True, eq=False)
class PendingConflict:
    """A save refused because someone saved the tile after ``editing.base``."""

    editing: Editing
    mask: np.ndarray
    seconds: float
    theirs: Revision


def _next_nonce() -> int:
    nonce = int(st.session_state.get("lbl_nonce", 0)) + 1
    st.session_state["lbl_nonce"] = nonce
    return nonce


def open_tile(store: Store, tile: TileInfo, starter: Starter | None = None) -> Editing:
    """Start editing ``tile`` from its newest revision, or, without one, from a pre-fill.

    Args:
        starter: Where a tile without a saved mask gets its pre-fill; None: it opens blank.
    """
    base = store.latest(tile.tile_id)
    if base is not None:
        saved = store.mask(tile.tile_id, base.revision)
        return Editing(tile.tile_id, base, saved, saved.copy(), time.monotonic(), _next_nonce())
    blank = np.full((tile.h, tile.w), UNLABELLED, dtype=np.uint8)
    if starter is None:
        return Editing(tile.tile_id, None, blank, blank.copy(), time.monotonic(), _next_nonce())
    start = starter.prefill(store, tile.tile_id)
    # The clock starts once the pre-fill is on screen: its inference is no labelling time.
    editing = Editing(tile.tile_id, None, blank, blank, time.monotonic(), _next_nonce())
    return replace(editing.with_prefill(start, editing.nonce), start=start)


def restart(store: Store, editing: Editing, starter: Starter | None) -> Editing:
    """An untouched blank tile started again from ``starter``'s pre-fill (None: blank).

    The canvas (and any strokes on it) and the clock stay: only what lies under them changes,
    when the toggle is flipped or another model became current.
    """
    if starter is None:
        blank = editing.saved.copy()
        return replace(editing, mask=blank, source="manual", model_id=None, start=None)
    start = starter.prefill(store, editing.tile_id)
    return replace(editing.with_prefill(start, editing.nonce), start=start)


# ------------------------------------------------------------------------------ pre-fill
def prefill_id(start: Prefill) -> str:
    """The model id a save of ``start`` records (:data:`RULES_ID` for the colour rules)."""
    return start.model_id or RULES_ID


def prefill_name(model_id: str | None) -> str:
    """How the page names the source of a pre-fill."""
    if model_id == RULES_ID:
        return "the colour rules"
    return f"model {model_id}" if model_id else "an unrecorded model"


@st.cache_data(show_spinner="Pre-filling the tile…", max_entries=256)
def _cached_prefill(
    _store: Store,
    _loaded: LoadedModel | None,
    workspace: str,
    model_id: str,
    classes: tuple[str, ...],
    tile_id: str,
) -> Prefill:
    """``prefill`` once per (workspace, model, class list, tile): re-runs only read it back."""
    del workspace, model_id, classes  # the cache key; the pre-fill reads the store and model
    return prefill(_store, tile_id, _loaded)


@dataclass(frozen=True)
class Starter:
    """Where pre-fills come from on this run: the current model, else the colour rules.

    Attributes:
        loaded: The current model; None for the colour rules.
        note: Why the colour rules stand in although there is a model ("" when they don't).
    """

    loaded: LoadedModel | None
    note: str = ""

    @property
    def model_id(self) -> str:
        return self.loaded.model_id if self.loaded is not None else RULES_ID

    def prefill(self, store: Store, tile_id: str) -> Prefill:
        schema = store.schema()
        key = (str(_common.workspace()), self.model_id, tuple(schema.names), tile_id)
        return _cached_prefill(store, self.loaded, *key)


def current_starter(schema: ClassSchema) -> Starter:
    """The current segmentation model when it predicts this workspace's classes, else rules."""
    try:
        loaded = _common.loaded_model()
    except (ZooError, OSError, ValueError) as exc:
        return Starter(None, f"The current model cannot be loaded ({exc}); colour rules instead.")
    if loaded is not None and list(loaded.card.classes) != list(schema.names):
        return Starter(
            None,
            f"Model {loaded.model_id} predicts {', '.join(loaded.card.classes)}, not this "
            f"workspace's {', '.join(schema.names)}: colour rules pre-fill instead.",
        )
    return Starter(loaded)


def _flash(kind: str, text: str) -> None:
    """A message for the tile now current, kept until it changes or new paint arrives.

    (A single-run message would vanish: a freshly mounted canvas reports its size at once,
    which re-runs the page.)
    """
    st.session_state[FLASH_KEY] = (kind, text, st.session_state.get(_common.LABEL_TILE_KEY))


def _show_flash(tile_id: str, painting: bool) -> None:
    flash = st.session_state.get(FLASH_KEY)
    if flash is None:
        return
    kind, text, for_tile = flash
    if for_tile != tile_id or painting:
        st.session_state.pop(FLASH_KEY, None)
        return
    {"success": st.success, "info": st.info, "error": st.error}[kind](text)


# ------------------------------------------------------------------------------ canvas
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


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def canvas_objects(result: Any) -> list[dict]:
    """The fabric objects of a canvas result (empty when nothing was drawn)."""
    data = getattr(result, "json_data", None) or {}
    return list(data.get("objects") or [])


def painted_mask(
    editing: Editing, objects: list[dict], canvas_size: tuple[int, int], schema: ClassSchema
) -> np.ndarray:
    """The working mask with the canvas strokes laid over it.

    Shape:
        return: (h, w) uint8, 255 = unlabelled.
    """
    if not objects:
        return editing.mask.copy()
    h, w = editing.mask.shape
    values, touched = rasterize_canvas(
        objects,
        canvas_size=canvas_size,
        tile_size=(w, h),
        color_to_class=color_to_class(schema),
    )
    return apply_paint(editing.mask, values, touched)


def _background(tile_rgb: np.ndarray, mask: np.ndarray, schema: ClassSchema, opacity: float, size):
    shown = overlay(tile_rgb, mask, schema.palette(), opacity)
    # Nearest-neighbour so each tile pixel stays a crisp block the painter can aim at.
    return Image.fromarray(shown).resize(size, Image.Resampling.NEAREST)


# ------------------------------------------------------------------------------ actions
def _goto(tile_id: str) -> None:
    st.session_state[_common.LABEL_TILE_KEY] = tile_id
    st.session_state.pop(LEAVE_KEY, None)
    st.session_state.pop(CONFLICT_KEY, None)


def _leave(target: str, unsaved: bool, why: str) -> bool:
    """Go to ``target`` unless unsaved work asks for a second press first."""
    if unsaved and st.session_state.get(LEAVE_KEY) != (target, why):
        st.session_state[LEAVE_KEY] = (target, why)
        return False
    _goto(target)
    return True


def _save(
    store: Store,
    editing: Editing,
    mask: np.ndarray,
    name: str,
    *,
    seconds: float | None = None,
    force: bool = False,
) -> None:
    if seconds is None:
        seconds = round(time.monotonic() - editing.opened, 1)
    try:
        rev = store.save_mask(
            editing.tile_id,
            mask,
            annotator=name,
            source=editing.source,
            model_id=editing.model_id,
            base_revision=editing.base_number or None,
            seconds=seconds,
            force=force,
        )
    except RevisionConflict as exc:
        st.session_state[CONFLICT_KEY] = PendingConflict(editing, mask, seconds, exc.latest)
        return
    except StoreError as exc:
        _flash("error", f"Not saved: {exc}")
        return
    # Only now, with the commit durable, does the page say "Saved".
    st.session_state.pop(CONFLICT_KEY, None)
    st.session_state.pop(LEAVE_KEY, None)
    st.session_state[EDITING_KEY] = Editing(
        editing.tile_id, rev, mask, mask.copy(), time.monotonic(), _next_nonce()
    )
    _flash("success", f"Saved revision {rev.revision} ({rev.n_labelled_px} labelled pixels).")


def _describe(editing: Editing) -> str:
    """Which revision is being edited, who saved it and how it was made."""
    rev = editing.base
    if rev is None:
        if editing.source == "prefill":
            return (
                f"No mask saved yet: you start from the pre-fill of "
                f"{prefill_name(editing.model_id)}. Correct it, then save."
            )
        return "No mask saved yet: you start from an unlabelled tile."
    who = rev.annotator or "unknown"
    how = f"pre-filled by {prefill_name(rev.model_id)}" if rev.source == "prefill" else rev.source
    took = f", {rev.seconds:.0f} s" if rev.seconds is not None else ""
    return (
        f"Editing revision {rev.revision}, saved by **{who}** on "
        f"{rev.created_at:%Y-%m-%d %H:%M} UTC ({how}{took})."
    )


# ------------------------------------------------------------------------------ page
def _order(store: Store, choice: str, n_tiles: int) -> list[str]:
    """The chosen tile order, computed once per choice so labelling does not reshuffle it."""
    queue = _common.label_queue()
    key = (choice, n_tiles, hash(tuple(queue[1])) if queue else None)
    cached = st.session_state.get(ORDER_CACHE_KEY)
    if cached and cached[0] == key:
        return cached[1]
    if queue is not None and choice == f"Suggested: {queue[0]}":
        known = set(store_order(store))
        order = [t for t in queue[1] if t in known]
    else:
        order = TILE_ORDERS[choice](store)
    st.session_state[ORDER_CACHE_KEY] = (key, order)
    return order


def main() -> None:
    store = _common.setup("Label")
    st.title("Label")
    tiles = {t.tile_id: t for t in store.tiles()}
    if not tiles:
        st.info("There are no smears in this workspace yet. Add some on the **Upload** page.")
        return
    schema = store.schema()

    queue = _common.label_queue()
    choices = ([f"Suggested: {queue[0]}"] if queue else []) + list(TILE_ORDERS)
    if queue and st.session_state.get("lbl_seen_queue") != queue:
        # A ranking just handed over (Suggestions page): walk it.
        st.session_state["lbl_seen_queue"] = queue
        st.session_state["lbl_order"] = choices[0]
    top = st.columns([2, 2, 3])
    choice = top[0].selectbox("Tile order", choices, key="lbl_order")
    order = _order(store, choice, len(tiles)) or list(tiles)

    tile_id = st.session_state.get(_common.LABEL_TILE_KEY)
    if tile_id not in tiles:
        tile_id = order[0]
        st.session_state[_common.LABEL_TILE_KEY] = tile_id
    tile = tiles[tile_id]

    smears = {s.smear_id: s for s in store.smears()}
    smear_ids = list(smears)
    top[1].selectbox(
        "Smear",
        smear_ids,
        index=smear_ids.index(tile.smear_id),
        format_func=lambda s: smears[s].label or s,
        key=f"lbl_smear_{tile_id}",
        on_change=_jump_to_smear,
        args=(f"lbl_smear_{tile_id}", order, tiles),
    )
    pos = order.index(tile_id) if tile_id in order else None
    where = f"tile {pos + 1} of {len(order)}" if pos is not None else "outside this order"
    top[2].markdown(
        f"**{smears[tile.smear_id].label or tile.smear_id}** · {where} · "
        f"at x {tile.x}, y {tile.y}, {tile.w}×{tile.h} px"
    )

    colors = paint_colors(schema)
    name = _common.annotator()
    canvas_col, side = st.columns([3, 2], gap="large")

    with side:
        about = st.container()  # revision and unsaved state, filled once the canvas answered
        st.markdown(
            "&emsp;".join(
                _common.swatch(colors[n], n if n != ERASER else "eraser (unlabelled)")
                for n in colors
            ),
            unsafe_allow_html=True,
        )
        first_cell = next((i for i, n in enumerate(colors) if n != "background"), 0)
        paint = st.radio(
            "Paint with", list(colors), index=first_cell, horizontal=True, key="lbl_class"
        )
        tool = st.radio("Tool", list(TOOLS), horizontal=True, key="lbl_tool")
        brush = st.slider("Brush size (screen px)", 2, 64, 16, key="lbl_brush")
        opacity = st.slider("Mask opacity", 0, 100, 45, step=5, format="%d%%", key="lbl_opacity")
        st.caption(
            "Polygon: click the corners, then the first corner again to close. "
            "Undo and redo: hover over the canvas for its toolbar."
        )
        starter = _prefill_toggle(schema)
        edits = st.container()

    editing = st.session_state.get(EDITING_KEY)
    if editing is None or editing.tile_id != tile_id:
        editing = open_tile(store, tile, starter)
    elif (
        editing.base is None
        and editing.start_id != (starter.model_id if starter else None)
        and np.array_equal(editing.mask, editing.origin)
    ):
        editing = restart(store, editing, starter)
    st.session_state[EDITING_KEY] = editing

    scale = DISPLAY_SIDE / max(store.tile_size(), tile.w, tile.h)
    size = (round(tile.w * scale), round(tile.h * scale))
    tile_rgb = np.asarray(store.tile_image(tile_id))
    colour = colors[paint]
    with canvas_col:
        from streamlit_drawable_canvas import st_canvas  # only importable inside a page run

        # Room above the canvas for its toolbar, which slides in on hover.
        st.space("small")
        result = st_canvas(
            fill_color=_rgba(colour, PAINT_ALPHA),
            stroke_width=brush if TOOLS[tool] == "freedraw" else 2,
            stroke_color=_rgba(colour, PAINT_ALPHA),
            background_image=_background(tile_rgb, editing.mask, schema, opacity / 100, size),
            update_streamlit=True,
            width=size[0],
            height=size[1],
            drawing_mode=TOOLS[tool],
            key=editing.canvas_key,
        )
        size_note = f" · {brush} px" if TOOLS[tool] == "freedraw" else ""
        st.caption(f"Painting with {paint} · {tool.lower()}{size_note}")
    st.session_state[CANVAS_KEY] = editing.canvas_key
    objects = canvas_objects(result)
    try:
        mask = painted_mask(editing, objects, size, schema)
    except ValueError as exc:
        with canvas_col:
            st.error(f"The drawing cannot be turned into a mask: {exc} Undo the last shape.")
        return
    # changed: work that leaving would lose; unsaved: also an untouched pre-fill to accept.
    changed = bool(objects) or not np.array_equal(mask, editing.origin)
    unsaved = changed or not np.array_equal(mask, editing.saved)

    with about:
        _about(store, editing, objects, changed, unsaved, tile_id)
    with edits:
        _edits(store, schema, editing, mask, changed, starter)
    with canvas_col:
        _actions(store, editing, mask, objects, changed, unsaved, name, order, tile_id)


def _prefill_toggle(schema: ClassSchema) -> Starter | None:
    """The "Start from a prediction" toggle and what it starts from (None when off)."""
    on = st.toggle(
        "Start from a prediction",
        value=True,
        key=PREFILL_KEY,
        help="A tile without a saved mask opens with a predicted mask for you to correct, "
        "instead of blank. Its save is recorded as a pre-fill, with the model's id.",
    )
    if not on:
        st.caption("Tiles without a saved mask open blank.")
        return None
    starter = current_starter(schema)
    if starter.loaded is not None:
        st.caption(
            f"Tiles without a saved mask open with the prediction of model `{starter.model_id}`."
        )
    else:
        st.caption(
            "Tiles without a saved mask open with the colour rules' pre-fill (no model yet)."
        )
    if starter.note:
        st.info(starter.note)
    return starter


def _jump_to_smear(key: str, order: list[str], tiles: dict[str, TileInfo]) -> None:
    smear = st.session_state[key]
    first = next((t for t in order if tiles[t].smear_id == smear), None)
    if first is None:
        first = next(t for t in tiles if tiles[t].smear_id == smear)
    _goto(first)


def _about(
    store: Store,
    editing: Editing,
    objects: list[dict],
    changed: bool,
    unsaved: bool,
    tile_id: str,
) -> None:
    st.markdown(_describe(editing))
    latest = store.latest(tile_id)
    if latest is not None and latest.revision != editing.base_number:
        st.warning(
            f"{latest.annotator or 'Someone'} saved revision {latest.revision} of this tile "
            "after you opened it."
        )
    if store.is_skipped(tile_id):
        st.caption("This tile is marked as skipped; saving a mask un-skips it.")
    n = len(objects)
    if n:
        status = f"{n} shape{'s' if n != 1 else ''} not saved yet"
    elif changed:
        status = "Unsaved changes"
    elif unsaved:
        status = "Pre-fill not saved yet: correct it, or save it as it is"
    else:
        status = "No new shapes"
    st.markdown(f"**{status}**")


def _edits(
    store: Store,
    schema: ClassSchema,
    editing: Editing,
    mask: np.ndarray,
    changed: bool,
    starter: Starter | None,
) -> None:
    if "background" in schema.names and st.button(
        "Fill the rest as background",
        key="lbl_fill",
        width="stretch",
        help="Every pixel nobody painted becomes background.",
    ):
        filled = fill_rest(mask, schema.index("background"))
        st.session_state[EDITING_KEY] = replace(editing, mask=filled, nonce=_next_nonce())
        st.rerun()
    if st.button(
        "Replace with prediction",
        key="lbl_replace",
        width="stretch",
        help="The working mask becomes the current model's prediction of this tile (the "
        "colour rules' pre-fill without a model), for you to correct; unsaved paint is dropped.",
    ):
        if starter is None:  # the toggle is off: the button still predicts
            starter = current_starter(schema)
            if starter.note:
                _flash("info", starter.note)
        start = starter.prefill(store, editing.tile_id)
        st.session_state[EDITING_KEY] = editing.with_prefill(start, _next_nonce())
        st.rerun()
    if st.button(
        "Discard changes",
        key="lbl_discard",
        disabled=not changed,
        width="stretch",
        help="Back to where you started: the revision you opened, or the pre-fill.",
    ):
        st.session_state[EDITING_KEY] = editing.back_to_origin(_next_nonce())
        st.rerun()


def _actions(
    store: Store,
    editing: Editing,
    mask: np.ndarray,
    objects: list[dict],
    changed: bool,
    unsaved: bool,
    name: str,
    order: list[str],
    tile_id: str,
) -> None:
    cols = st.columns(4)
    save = cols[0].button(
        "Save", key="lbl_save", type="primary", disabled=not name, width="stretch"
    )
    skip = cols[1].button(
        "Skip", key="lbl_skip", help="Not worth labelling (blurred, empty)", width="stretch"
    )
    prev = cols[2].button("Previous", key="lbl_prev", width="stretch")
    nxt = cols[3].button("Next", key="lbl_next", width="stretch")
    if not name:
        st.warning("Enter your name in the sidebar to save masks.")
    leaving = st.session_state.get(LEAVE_KEY)
    if leaving and changed:
        st.warning(
            f"This tile has unsaved paint. Save it, or press {leaving[1]} again to leave "
            "without saving."
        )
    _show_flash(tile_id, painting=bool(objects))
    conflict: PendingConflict | None = st.session_state.get(CONFLICT_KEY)
    if conflict is not None and conflict.editing.tile_id == tile_id:
        _conflict_box(store, conflict, name)

    pos = order.index(tile_id) if tile_id in order else -1
    if save:
        if not unsaved:
            what = f"revision {editing.base_number}" if editing.base else "the blank tile"
            _flash("info", f"Nothing to save: nothing changed since {what}.")
        else:
            _save(store, editing, mask, name)
        st.rerun()
    if skip:
        store.skip(tile_id, annotator=name)
        _goto(order[(pos + 1) % len(order)])
        _flash("info", "Skipped the previous tile; it stays out of training until saved.")
        st.rerun()
    if prev or nxt:
        target = order[(pos - 1) % len(order)] if prev else order[(pos + 1) % len(order)]
        _leave(target, changed, "Previous" if prev else "Next")
        st.rerun()


def _conflict_box(store: Store, conflict: PendingConflict, name: str) -> None:
    theirs = conflict.theirs
    with st.container(border=True):
        st.warning(
            f"**{theirs.annotator or 'Someone'}** saved revision {theirs.revision} of this tile "
            f"at {theirs.created_at:%H:%M:%S} UTC, after you opened revision "
            f"{conflict.editing.base_number}. Your paint is not saved yet."
        )
        left, right = st.columns(2)
        if left.button("Load their version", key="lbl_conflict_reload"):
            st.session_state.pop(CONFLICT_KEY, None)
            st.session_state[EDITING_KEY] = open_tile(store, store.tile(conflict.editing.tile_id))
            _flash("info", f"Loaded revision {theirs.revision}; your paint was dropped.")
            st.rerun()
        if right.button("Save mine on top", key="lbl_conflict_force", type="primary"):
            _save(
                store, conflict.editing, conflict.mask, name, seconds=conflict.seconds, force=True
            )
            st.rerun()


main()
