"""Label page: paint a tile's mask with classes, an eraser, a magic wand and a background fill;
save revisions; walk tile after tile by keys.

What it promises the person labelling:
- Next, Previous and Skip move exactly one tile in the chosen order
  (:func:`pages._label_session.step`); "Jump to smear" moves only when the person picks a
  smear in it.
- Every frequent action has a key, listed on the page
  (:data:`pages._label_keys.SHORTCUTS`); the canvas at 2×, the class palette and Save & next
  fit a 1366 × 768 window with the sidebar open.
- The canvas shows the tile (or, zoomed in, a crop of it that the pan moves) with its current
  mask over it; what is painted becomes crisp class pixels (the canvas objects are re-drawn by
  :func:`dataset.masks.rasterize_canvas` at tile resolution, never read back from
  anti-aliased screen pixels). A wand click fills the cell under it (:mod:`dataset.wand`, or
  the current model's component when that model beat the colour rules).
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
- "Fill the rest" leaves the pixels erased since the tile was opened alone, unless asked.
- The order, class, tool, brush, zoom and the other settings chosen here stay for the
  session, across visits to other pages.
- Tiles a reviewer sent back to the person labelling come first in every order, the oldest
  request first, with the reviewer's comment above the canvas; then the tiles waiting for
  their independent second label.
- On a tile of the double-labelled share that someone else labelled, a second annotator gives
  its independent second label: the page says so, and shows neither the first mask nor a
  pre-fill (:mod:`dataset.store.second_labels`). A blank tile saved meanwhile by someone else
  takes the save as its second label instead of a conflict.

This file is the page's layout and flow. Its parts, one idea each, sit beside it: the
session logic without Streamlit (:mod:`pages._label_session`), the session state and kept
settings (:mod:`pages._label_state`), the keyboard (:mod:`pages._label_keys`), how a tile
opens and pre-fills (:mod:`pages._label_prefill`), the canvas (:mod:`pages._label_canvas`)
and the save and move actions (:mod:`pages._label_actions`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import streamlit as st

from dataset.schema import ClassSchema
from dataset.settings import get_settings
from dataset.store import CHANGES_REQUESTED, Store, TileInfo
from dataset.wand import DEFAULT_TOLERANCE
from pages import _common
from pages import _label_session as session
from pages._label_actions import (
    PendingConflict,
    act,
    action_buttons,
    conflict_box,
    finish,
    pressed_move,
)
from pages._label_canvas import (
    PAINT_ALPHA,
    TOOLS,
    asked_view,
    background_image,
    canvas_objects,
    painted,
    rgba,
)
from pages._label_keys import apply_key, key_events, keys_component, shortcuts
from pages._label_prefill import (
    Starter,
    current_starter,
    open_tile,
    prefill_name,
    prefill_toggle,
    restart,
)
from pages._label_session import ERASER, TILE_ORDERS, ZOOMS, Editing, Painted, paint_colors
from pages._label_state import (
    BRUSH_RANGE,
    CANVAS_KEY,
    CONFLICT_KEY,
    EDITING_KEY,
    INTENT_KEY,
    KEY_SEEN_KEY,
    KEYS_KEY,
    LEAVE_KEY,
    ORDER_CACHE_KEY,
    PAN_STEPS,
    PENDING_KEY,
    SETTINGS,
    SMEAR_KEY,
    goto,
    kept_settings,
    next_nonce,
    remember,
    set_flash,
    setting,
    show_flash,
)

# Room for the canvas at 2× above the fold: Streamlit's default top padding clears a header
# this page does not need.
_PAGE_CSS = """<style>
.stMainBlockContainer { padding-top: 3.6rem; }
.st-key-lbl_keys { display: none; }
.stMainBlockContainer h1 { padding-top: 0; padding-bottom: 0.25rem; }
</style>"""


def _describe(editing: Editing) -> str:
    """Which revision is being edited, who saved it and how it was made."""
    rev = editing.base
    if editing.second:
        if rev is None:
            return "No second label saved yet: you start from an unlabelled tile."
        return (
            f"Editing your second label, revision {rev.revision}, saved "
            f"{rev.created_at:%Y-%m-%d %H:%M} UTC."
        )
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


def _order(store: Store, choice: str, n_tiles: int, name: str) -> list[str]:
    """The chosen tile order, computed once per choice so labelling does not reshuffle it,
    with the tiles a reviewer sent back to ``name`` first (:meth:`Store.sent_back_first`),
    then the tiles waiting for ``name``'s second label (:meth:`Store.second_labels_first`).

    A tile sent back or waiting for a second label since is a reason to compute it again;
    one re-saved is not (it would jump away under the person walking the order).
    """
    queue = _common.label_queue()
    key = (choice, n_tiles, hash(tuple(queue[1])) if queue else None, name)
    sent = {s.tile_id for s in store.sent_back(name)} if name else set()
    sent |= set(store.awaiting_second(name))
    cached = st.session_state.get(ORDER_CACHE_KEY)
    if cached and cached[0] == key and sent <= cached[2]:
        return cached[1]
    if queue is not None and choice == f"Suggested: {queue[0]}":
        order = session.suggested_order(store, queue[1])
    else:
        order = TILE_ORDERS[choice](store)
    order = store.sent_back_first(store.second_labels_first(order, name), name)
    st.session_state[ORDER_CACHE_KEY] = (key, order, sent)
    return order


def _jump_to_smear(order: list[str], tiles: dict[str, TileInfo]) -> None:
    """The person picked a smear: go to its first tile in the order, and empty the box."""
    smear = st.session_state.get(SMEAR_KEY)
    st.session_state[SMEAR_KEY] = None
    if smear is None:
        return
    first = next((t for t in order if tiles[t].smear_id == smear), None)
    if first is None:
        first = next((t for t in tiles if tiles[t].smear_id == smear), None)
    if first is not None:
        goto(first)


def main() -> None:
    store = _common.setup("Label", need="label")
    st.html(_PAGE_CSS)
    st.title("Label")
    tiles = {t.tile_id: t for t in store.tiles()}
    if not tiles:
        st.info("There are no smears in this workspace yet. Add some on the **Upload** page.")
        return
    schema = store.schema()
    pending = st.session_state.get(PENDING_KEY)
    if pending is not None:
        finish(store, pending)
    colors = paint_colors(schema)
    classes = list(colors)

    # Keys first: a key that picks a class or a brush size must land before those widgets.
    settings, key_move, key_mark = key_events(
        keys_component()(key=KEYS_KEY, on_keys_change=lambda: None)
    )
    for action in settings:
        apply_key(action, classes)
    if key_move is None:
        st.session_state[KEY_SEEN_KEY] = key_mark

    queue = _common.label_queue()
    choices = ([f"Suggested: {queue[0]}"] if queue else []) + list(TILE_ORDERS)
    if queue and st.session_state.get("lbl_seen_queue") != queue:
        # A ranking just handed over (Suggestions page): walk it.
        st.session_state["lbl_seen_queue"] = queue
        st.session_state["lbl_order"] = choices[0]
        kept_settings()["lbl_order"] = choices[0]
    first_cell = next((n for n in classes if n != "background"), classes[0])
    canvas_col, side = st.columns([3, 2], gap="medium")
    with side:
        pick = st.columns(2)
        choice = pick[0].selectbox(
            "Tile order",
            choices,
            index=choices.index(setting("lbl_order", choices[0], choices)),
            key="lbl_order",
        )
    order = _order(store, choice, len(tiles), _common.annotator()) or list(tiles)

    tile_id = st.session_state.get(_common.LABEL_TILE_KEY)
    if tile_id not in tiles:
        tile_id = order[0]
        st.session_state[_common.LABEL_TILE_KEY] = tile_id
    tile = tiles[tile_id]
    smears = {s.smear_id: s for s in store.smears()}
    pick[1].selectbox(
        "Jump to smear",
        list(smears),
        index=None,
        placeholder="Pick a smear",
        format_func=lambda s: smears[s].label or s,
        key=SMEAR_KEY,
        on_change=_jump_to_smear,
        args=(order, tiles),
    )

    name = _common.annotator()
    with side:
        about = st.container()  # revision and unsaved state, filled once the canvas answered
        labels = {n: f"{i} {n}" if i <= 9 else n for i, n in enumerate(classes, start=1)}
        labels[ERASER] = "E eraser"
        paint = st.radio(
            "Paint with",
            classes,
            index=classes.index(setting("lbl_class", first_cell, classes)),
            horizontal=True,
            key="lbl_class",
            format_func=labels.get,
        )
        st.markdown(
            "&emsp;".join(
                _common.swatch(colors[n], n if n != ERASER else "eraser (unlabelled)")
                for n in colors
            ),
            unsafe_allow_html=True,
        )
        tools = list(TOOLS)
        tool = st.radio(
            "Tool",
            tools,
            index=tools.index(setting("lbl_tool", "Brush", tools)),
            horizontal=True,
            key="lbl_tool",
        )
        row = st.columns(2)
        if TOOLS[tool] == "point":
            tolerance = row[0].slider(
                "Wand tolerance (ΔE)",
                2.0,
                60.0,
                value=float(setting("lbl_tolerance", DEFAULT_TOLERANCE)),
                step=1.0,
                key="lbl_tolerance",
                help="A click on a cell takes the whole cell, cut from its neighbours at the "
                "narrowing between them. A click on plasma takes the pixels this close in colour "
                "(CIE Lab) to the clicked one; larger grows into the cells.",
            )
        else:
            tolerance = float(setting("lbl_tolerance", DEFAULT_TOLERANCE))
            row[0].slider(
                "Brush size (screen px)",
                *BRUSH_RANGE,
                value=int(setting("lbl_brush", 16)),
                key="lbl_brush",
            )
        brush = int(setting("lbl_brush", 16))
        zoom = row[1].selectbox(
            "Zoom",
            ZOOMS,
            index=ZOOMS.index(setting("lbl_zoom", session.DEFAULT_ZOOM, ZOOMS)),
            key="lbl_zoom",
            format_func=lambda z: f"{z}×",
        )
        view_probe = session.view_for(int(zoom), 0, 0)
        tile_size = store.tile_size()
        if view_probe.pannable(tile.w, tile.h, tile_size):
            pan = st.columns(2)
            pan[0].select_slider(
                "Pan across (%)",
                PAN_STEPS,
                value=setting("lbl_pan_x", 0, PAN_STEPS),
                key="lbl_pan_x",
            )
            pan[1].select_slider(
                "Pan down (%)",
                PAN_STEPS,
                value=setting("lbl_pan_y", 0, PAN_STEPS),
                key="lbl_pan_y",
            )
        view = asked_view(view_probe.zoom, tile, tile_size)
        mask_row = st.columns(2)
        show_mask = mask_row[0].toggle(
            "Show mask", value=bool(setting("lbl_show_mask", True)), key="lbl_show_mask"
        )
        opacity = mask_row[1].slider(
            "Mask opacity",
            0,
            100,
            value=int(setting("lbl_opacity", 45)),
            step=5,
            format="%d%%",
            key="lbl_opacity",
        )
        starter = prefill_toggle(schema)
        edits = st.container()
        shortcuts()

    editing = st.session_state.get(EDITING_KEY)
    if editing is None or editing.tile_id != tile_id:
        editing = open_tile(store, tile, starter, view, annotator=name)
    elif (
        editing.base is None
        and not editing.second
        and editing.start_id != (starter.model_id if starter else None)
        and np.array_equal(editing.mask, editing.origin)
    ):
        editing = restart(store, editing, starter)
    st.session_state[EDITING_KEY] = editing

    window = editing.view.window(tile.w, tile.h, tile_size)
    size = editing.view.canvas_size(tile.w, tile.h, tile_size)
    tile_rgb = np.asarray(store.tile_image(tile_id))
    colour = colors[paint]
    smear = smears[tile.smear_id]
    with canvas_col:
        st.markdown(
            f'Tile <code class="lbl-tile-id">{tile_id}</code> · **{smear.label or smear.smear_id}**'
            f" · {session.position(order, tile_id)}",
            unsafe_allow_html=True,
        )
        buttons = st.container()
        action_buttons(buttons, name, tile_id)
        # A key's move is noted at once: Streamlit may cut this run short at any later point.
        if key_move is not None:
            st.session_state[INTENT_KEY] = (key_move, tile_id)
            st.session_state[KEY_SEEN_KEY] = key_mark
        notes = st.container()
        from streamlit_drawable_canvas import st_canvas  # only importable inside a page run

        result = st_canvas(
            fill_color=rgba(colour, PAINT_ALPHA),
            stroke_width=brush if TOOLS[tool] == "freedraw" else 2,
            stroke_color=rgba(colour, PAINT_ALPHA),
            background_image=background_image(
                tile_rgb, editing.mask, schema, opacity / 100 if show_mask else 0.0, window, size
            ),
            update_streamlit=True,
            width=size[0],
            height=size[1],
            drawing_mode=TOOLS[tool],
            point_display_radius=3,
            key=editing.canvas_key,
        )
        zoom_note = f" · {editing.view.zoom}×, showing x {window[0]}, y {window[1]}"
        where = f"Tile at x {tile.x}, y {tile.y} of the smear, {tile.w}×{tile.h} px"
        size_note = f" · {brush} px" if TOOLS[tool] == "freedraw" else ""
        st.caption(f"Painting with {paint} · {tool.lower()}{size_note}{zoom_note} · {where}")
    st.session_state[CANVAS_KEY] = editing.canvas_key
    objects = canvas_objects(result)
    try:
        paint_now = painted(store, schema, editing, objects, tolerance, starter, tile_size)
    except ValueError as exc:
        with notes:
            st.error(f"The drawing cannot be turned into a mask: {exc} Undo the last shape.")
        st.session_state.pop(INTENT_KEY, None)
        return
    mask = paint_now.mask
    if view != editing.view:
        # The canvas is redrawn for the new view: its strokes become part of the mask first.
        st.session_state[EDITING_KEY] = editing.baked(paint_now, next_nonce(), view)
        remember(*SETTINGS)
        st.rerun()
    # changed: work that leaving would lose; unsaved: also an untouched pre-fill to accept.
    changed = bool(objects) or not np.array_equal(mask, editing.origin)
    unsaved = changed or not np.array_equal(mask, editing.saved)

    remember(*SETTINGS)
    with about:
        _about(store, editing, objects, changed, unsaved, tile_id)
    with edits:
        _edits(store, schema, editing, paint_now, changed, starter)
    move = pressed_move(tile_id)
    with notes:
        _notes(store, editing, objects, changed, name, tile_id)
    act(store, editing, mask, move, changed, unsaved, name, order, tile_id)


def _about(
    store: Store,
    editing: Editing,
    objects: list[dict],
    changed: bool,
    unsaved: bool,
    tile_id: str,
) -> None:
    if editing.second:
        st.info(
            "**Independent second label.** This tile is one of the double-labelled share: "
            "someone else labelled it, and you label it again without seeing their mask, so "
            "the two can be compared. Training and releases keep the first label until a "
            "reviewer picks one.",
            icon=":material/group:",
        )
    st.markdown(_describe(editing))
    latest = store.second_label(tile_id) if editing.second else store.latest(tile_id)
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
    paint_now: Painted,
    changed: bool,
    starter: Starter | None,
) -> None:
    if "background" in schema.names:
        fill_col, erased_col = st.columns([3, 2])
        fill = fill_col.button(
            "Fill the rest as background",
            key="lbl_fill",
            width="stretch",
            help="Every pixel nobody painted becomes background; pixels you erased on this "
            "tile stay unlabelled unless the box beside is ticked.",
        )
        erased_too = erased_col.checkbox(
            "Erased pixels too",
            value=bool(setting("lbl_fill_erased", False)),
            key="lbl_fill_erased",
        )
        if fill:
            baked = editing.baked(paint_now, next_nonce())
            filled = session.fill_the_rest(
                baked.mask, baked.erased_px, schema.index("background"), erased_too=erased_too
            )
            st.session_state[EDITING_KEY] = replace(baked, mask=filled)
            st.rerun()
    if st.button(
        "Replace with prediction",
        key="lbl_replace",
        width="stretch",
        disabled=editing.second,
        help="The working mask becomes the current model's prediction of this tile (the "
        "colour rules' pre-fill without a model), for you to correct; unsaved paint is dropped.",
    ):
        if starter is None:  # the toggle is off: the button still predicts
            starter = current_starter(schema)
            if starter.note:
                set_flash("info", starter.note)
        start = starter.prefill(store, editing.tile_id)
        st.session_state[EDITING_KEY] = editing.with_prefill(start, next_nonce())
        st.rerun()
    if st.button(
        "Discard changes",
        key="lbl_discard",
        disabled=not changed,
        width="stretch",
        help="Back to where you started: the revision you opened, or the pre-fill.",
    ):
        st.session_state[EDITING_KEY] = editing.back_to_origin(next_nonce())
        st.rerun()


def _sent_back_note(store: Store, tile_id: str) -> None:
    """A reviewer's request for changes on the tile's latest revision, above the canvas."""
    if store.latest(tile_id) is None:
        return
    status = store.review_state(tile_id)
    if status.review is not None and status.state == CHANGES_REQUESTED:
        st.warning(
            f"**Sent back** by {status.review.reviewer} on "
            f"{status.review.created_at:%Y-%m-%d %H:%M} UTC (revision "
            f"{status.revision.revision} by {status.revision.annotator}): "
            f"{status.review.comment}",
            icon=":material/rate_review:",
        )


def _notes(
    store: Store, editing: Editing, objects: list[dict], changed: bool, name: str, tile_id: str
) -> None:
    if not name:  # beside the name box, not above the canvas: the tile stays in view
        st.sidebar.warning("Enter your name above to save masks.")
    every = get_settings(workspace=store.root).auto_update_every
    if every is not None:
        st.sidebar.caption(
            f"Automatic updates are on: the current model is fine-tuned after every {every} "
            "new labelled tiles (Settings page, auto_update_every)."
        )
    leaving = st.session_state.get(LEAVE_KEY)
    if leaving and changed:
        st.warning(
            f"This tile has unsaved paint. Save it, or press {leaving[1]} again to leave "
            "without saving."
        )
    if not editing.second:  # a request on the first label says nothing to the second
        _sent_back_note(store, tile_id)
    show_flash(tile_id, painting=bool(objects))
    conflict: PendingConflict | None = st.session_state.get(CONFLICT_KEY)
    if conflict is not None and conflict.editing.tile_id == tile_id:
        conflict_box(store, conflict, name)


main()
