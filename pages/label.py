"""Label page: paint a tile's mask with classes, an eraser and a background fill; save revisions.

What it promises the person labelling:
- The canvas shows the tile enlarged with its current mask over it; what is painted becomes
  crisp class pixels (the canvas objects are re-drawn by
  :func:`dataset.masks.rasterize_canvas`, never read back from anti-aliased screen pixels).
- Every Save is a new revision with who, the revision it started from and the seconds spent
  since the tile (or the last save) was opened. "Saved" is shown only after the store
  returned. If someone saved the tile in between, nothing is lost: reload theirs, or save
  yours on top (both stay in the history).
- Leaving a tile with unsaved paint asks first.
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
from dataset.store import Revision, RevisionConflict, Store, StoreError, TileInfo
from pages import _common

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
        mask: The working mask: ``saved`` plus edits baked in (fill the rest), before strokes.
        opened: ``time.monotonic()`` when the tile was opened or last saved.
        nonce: Part of the canvas key; a new value gives an empty canvas.
    """

    tile_id: str
    base: Revision | None
    saved: np.ndarray
    mask: np.ndarray
    opened: float
    nonce: int

    @property
    def base_number(self) -> int:
        return self.base.revision if self.base else 0

    @property
    def canvas_key(self) -> str:
        return f"lbl_canvas_{self.tile_id}_{self.base_number}_{self.nonce}"


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


def open_tile(store: Store, tile: TileInfo) -> Editing:
    """Start editing ``tile`` from its newest revision."""
    base = store.latest(tile.tile_id)
    if base is None:
        saved = np.full((tile.h, tile.w), UNLABELLED, dtype=np.uint8)
    else:
        saved = store.mask(tile.tile_id, base.revision)
    return Editing(tile.tile_id, base, saved, saved.copy(), time.monotonic(), _next_nonce())


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
            source="manual",
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


def _describe(rev: Revision | None) -> str:
    if rev is None:
        return "No mask saved yet: you start from an unlabelled tile."
    who = rev.annotator or "unknown"
    took = f", {rev.seconds:.0f} s" if rev.seconds is not None else ""
    return (
        f"Editing revision {rev.revision}, saved by **{who}** on "
        f"{rev.created_at:%Y-%m-%d %H:%M} UTC ({rev.source}{took})."
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

    editing = st.session_state.get(EDITING_KEY)
    if editing is None or editing.tile_id != tile_id:
        editing = open_tile(store, tile)
        st.session_state[EDITING_KEY] = editing

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
        edits = st.container()

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
    unsaved = bool(objects) or not np.array_equal(mask, editing.saved)

    with about:
        _about(store, editing, objects, unsaved, tile_id)
    with edits:
        _edits(schema, editing, mask, unsaved)
    with canvas_col:
        _actions(store, editing, mask, objects, unsaved, name, order, tile_id)


def _jump_to_smear(key: str, order: list[str], tiles: dict[str, TileInfo]) -> None:
    smear = st.session_state[key]
    first = next((t for t in order if tiles[t].smear_id == smear), None)
    if first is None:
        first = next(t for t in tiles if tiles[t].smear_id == smear)
    _goto(first)


def _about(
    store: Store, editing: Editing, objects: list[dict], unsaved: bool, tile_id: str
) -> None:
    st.markdown(_describe(editing.base))
    latest = store.latest(tile_id)
    if latest is not None and latest.revision != editing.base_number:
        st.warning(
            f"{latest.annotator or 'Someone'} saved revision {latest.revision} of this tile "
            "after you opened it."
        )
    if store.is_skipped(tile_id):
        st.caption("This tile is marked as skipped; saving a mask un-skips it.")
    n = len(objects)
    status = f"{n} shape{'s' if n != 1 else ''} not saved yet" if n else "No new shapes"
    if not objects and unsaved:
        status = "Unsaved changes"
    st.markdown(f"**{status}**")


def _edits(schema: ClassSchema, editing: Editing, mask: np.ndarray, unsaved: bool) -> None:
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
        "Discard changes",
        key="lbl_discard",
        disabled=not unsaved,
        width="stretch",
        help="Back to the revision you opened.",
    ):
        st.session_state[EDITING_KEY] = replace(
            editing, mask=editing.saved.copy(), nonce=_next_nonce()
        )
        st.rerun()


def _actions(
    store: Store,
    editing: Editing,
    mask: np.ndarray,
    objects: list[dict],
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
    if leaving and unsaved:
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
        _leave(target, unsaved, "Previous" if prev else "Next")
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
