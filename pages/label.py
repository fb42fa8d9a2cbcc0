"""Label page: paint a tile's mask with classes, an eraser, a magic wand and a background fill;
save revisions; walk tile after tile by keys.

What it promises the person labelling:
- Next, Previous and Skip move exactly one tile in the chosen order
  (:func:`pages._label_session.step`); "Jump to smear" moves only when the person picks a
  smear in it.
- Every frequent action has a key, listed on the page (:data:`SHORTCUTS`); the canvas at 2×,
  the class palette and Save & next fit a 1366 × 768 window with the sidebar open.
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
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import streamlit as st
from PIL import Image

from dataset.masks import overlay
from dataset.schema import UNLABELLED, ClassSchema
from dataset.store import Revision, RevisionConflict, Store, StoreError, TileInfo
from dataset.wand import DEFAULT_TOLERANCE, to_lab
from model_zoo import ZooError
from pages import _common
from pages import _label_session as session
from pages._label_session import (
    ERASER,
    RULES_ID,
    TILE_ORDERS,
    ZOOMS,
    Editing,
    Painted,
    Wand,
    color_to_class,
    paint_colors,
    prefill_id,
)
from training.service import LoadedModel, Prefill, prefill

__all__ = ["RULES_ID", "TILE_ORDERS", "Editing", "paint_colors", "prefill_id"]

TOOLS = {"Brush": "freedraw", "Wand": "point", "Polygon": "polygon", "Rectangle": "rect"}
PAINT_ALPHA = 0.6  # see-through paint; rasterize_canvas ignores alpha
BRUSH_RANGE = (2, 64)
BRUSH_STEP = 4  # screen px per [ or ]
PAN_STEPS = (0, 25, 50, 75, 100)  # where the zoomed window sits, % of the room to move

EDITING_KEY = "lbl_editing"
CANVAS_KEY = "lbl_canvas_key"  # the live canvas's widget key (tests feed drawings through it)
FLASH_KEY = "lbl_flash"
CONFLICT_KEY = "lbl_conflict"
LEAVE_KEY = "lbl_leave"
ORDER_CACHE_KEY = "lbl_order_cache"
PREFILL_KEY = "lbl_prefill"
SMEAR_KEY = "lbl_smear"  # "Jump to smear": empty until the person picks one
PREFS_KEY = "lbl_prefs"  # the page's settings, kept while widget keys are dropped off-page
KEYS_KEY = "lbl_keys"
PENDING_KEY = "lbl_pending"  # a PendingAction not finished yet
INTENT_KEY = "lbl_intent"  # (move, tile id) pressed, not acted on yet
KEY_SEEN_KEY = "lbl_keys_seen"  # (browser tab token, number of the last key event applied)

# Key -> what it does, as listed on the page. The browser side is in _KEYS_JS.
SHORTCUTS = (
    ("Enter", "save and next"),
    ("S", "save"),
    ("→ or D", "next"),
    ("← or A", "previous"),
    ("X", "skip"),
    ("1–9", "class by its number"),
    ("E", "eraser"),
    ("B / W", "brush / wand"),
    ("Ctrl+Z", "undo"),
    ("Ctrl+Y or Ctrl+Shift+Z", "redo"),
    ("[ / ]", "brush smaller / larger"),
    ("M", "mask on / off"),
    ("Z", "zoom 1× → 2× → 4×"),
    ("Shift+arrows", "pan when zoomed in"),
)

_KEYS_JS = """
export default function (component) {
  // One listener per browser tab, installed on the first mount and never removed: a re-run
  // re-mounts this component, and a listener removed in between would drop a key. Each mount
  // hands the listener its newest way to reach Python.
  window.__smearlabSend = component.setStateValue;
  if (window.__smearlabKeys) return;
  const token = Math.random().toString(36).slice(2);
  let number = 0;
  let recent = [];
  function send(action) {
    // Numbered, with the last few: a key pressed while the page re-runs is not lost.
    number += 1;
    recent = [...recent, { n: number, action }].slice(-20);
    window.__smearlabSend("keys", { token, events: recent });
  }
  const keys = {
    Enter: "save_next", s: "save", S: "save", ArrowRight: "next", d: "next", D: "next",
    ArrowLeft: "previous", a: "previous", A: "previous", x: "skip", X: "skip",
    e: "eraser", E: "eraser", b: "brush", B: "brush", w: "wand", W: "wand",
    "[": "brush_down", "]": "brush_up", m: "mask", M: "mask", z: "zoom", Z: "zoom",
  };
  const pans = { ArrowLeft: "pan_left", ArrowRight: "pan_right", ArrowUp: "pan_up",
                 ArrowDown: "pan_down" };
  const moves = new Set(["save_next", "save", "next", "previous", "skip"]);
  function canvasButton(label) {
    // The canvas component keeps its toolbar in a shadow root; find its Undo/Redo there.
    const roots = [document, ...Array.from(document.querySelectorAll("*"))
      .filter((el) => el.shadowRoot).map((el) => el.shadowRoot)];
    for (const root of roots) {
      const button = root.querySelector(`button.dc-icon-button[aria-label="${label}"]`);
      if (button) return button;
    }
    return null;
  }
  function typing(target) {
    if (!target || !target.tagName) return false;
    const tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }
  const handler = (event) => {
    if (!document.querySelector(".st-key-lbl_save_next")) return;  // not on the Label page
    if (event.defaultPrevented || event.isComposing) return;
    const target = event.composedPath ? event.composedPath()[0] : event.target;
    if (typing(target)) return;
    if (target && target.getAttribute && target.getAttribute("role") === "slider"
        && event.key.startsWith("Arrow")) return;
    let action = null;
    if (event.ctrlKey || event.metaKey) {
      const k = event.key.toLowerCase();
      if (k === "z") action = event.shiftKey ? "redo" : "undo";
      else if (k === "y") action = "redo";
    } else if (event.altKey) {
      return;
    } else if (event.shiftKey && pans[event.key]) {
      action = pans[event.key];
    } else if (/^[1-9]$/.test(event.key)) {
      action = "class_" + event.key;
    } else {
      action = keys[event.key] || null;
    }
    if (!action) return;
    event.preventDefault();
    event.stopPropagation();
    if (event.repeat && moves.has(action)) return;  // a held key moves one tile, not ten
    if (action === "undo" || action === "redo") {
      const button = canvasButton(action === "undo" ? "Undo" : "Redo");
      if (button && !button.disabled) button.click();
    } else if (window.__smearlabSend) {
      send(action);
    }
  };
  window.__smearlabKeys = handler;
  document.addEventListener("keydown", handler, true);
}
"""


@st.cache_resource(show_spinner=False)
def _keys_component():
    """The keyboard listener, registered once per process (a page run repeats its module)."""
    return st.components.v2.component("smearlab_label_keys", js=_KEYS_JS)


# Room for the canvas at 2× above the fold: Streamlit's default top padding clears a header
# this page does not need.
_PAGE_CSS = """<style>
.stMainBlockContainer { padding-top: 3.6rem; }
.st-key-lbl_keys { display: none; }
.stMainBlockContainer h1 { padding-top: 0; padding-bottom: 0.25rem; }
</style>"""


@dataclass(frozen=True, eq=False)
class PendingConflict:
    """A save refused because someone saved the tile after ``editing.base``."""

    editing: Editing
    mask: np.ndarray
    seconds: float
    theirs: Revision


@dataclass(frozen=True, eq=False)
class PendingAction:
    """A save and/or move under way.

    Streamlit may end a script run at any read or write of the session (a re-run the canvas
    asks for, say), and the press that started the action is gone by then. So the action is
    written to the session before anything happens, and every run first finishes one left
    unfinished (:func:`_finish`, which may run twice without saving twice).

    Attributes:
        move: ``save``, ``save_next``, ``skip``, ``next`` or ``previous``.
        target: The tile to go to (None: stay).
        leave: Whether a move goes now (False: unsaved paint asks first).
        force: Save on top of a revision someone saved since (the conflict box's choice).
    """

    move: str
    editing: Editing
    mask: np.ndarray
    unsaved: bool
    name: str
    target: str | None
    leave: bool
    seconds: float
    force: bool = False


def _next_nonce() -> int:
    nonce = int(st.session_state.get("lbl_nonce", 0)) + 1
    st.session_state["lbl_nonce"] = nonce
    return nonce


def open_tile(
    store: Store, tile: TileInfo, starter: Starter | None = None, view: session.View | None = None
) -> Editing:
    """Start editing ``tile`` from its newest revision, or, without one, from a pre-fill.

    Args:
        starter: Where a tile without a saved mask gets its pre-fill; None: it opens blank.
        view: The zoom and pan to open at (the page's current one).
    """
    base = store.latest(tile.tile_id)
    if base is not None:
        saved = store.mask(tile.tile_id, base.revision)
    else:
        saved = np.full((tile.h, tile.w), UNLABELLED, dtype=np.uint8)
    start = starter.prefill(store, tile.tile_id) if base is None and starter else None
    # The clock starts once the pre-fill is on screen: its inference is no labelling time.
    return session.opened(
        tile.tile_id, base, saved, _next_nonce(), time.monotonic(), start=start, view=view
    )


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


@st.cache_data(show_spinner=False, max_entries=32)
def _tile_lab(_store: Store, workspace: str, tile_id: str) -> np.ndarray:
    """The tile in Lab, for wand clicks (once per tile)."""
    del workspace
    return to_lab(np.asarray(_store.tile_image(tile_id)))


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

    @property
    def earned(self) -> bool:
        """A model that beat the colour rules on its validation tiles (its card says so)."""
        if self.loaded is None:
            return False
        metrics = getattr(self.loaded.card, "metrics", None) or {}
        return metrics.get("beats_rules") is True

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
    {"success": st.success, "info": st.info, "error": st.error, "warning": st.warning}[kind](text)


# ------------------------------------------------------------------------------ canvas
def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def canvas_objects(result: object) -> list[dict]:
    """The fabric objects of a canvas result (empty when nothing was drawn)."""
    data = getattr(result, "json_data", None) or {}
    return list(data.get("objects") or [])


def _background(
    tile_rgb: np.ndarray,
    mask: np.ndarray,
    schema: ClassSchema,
    opacity: float,
    window: tuple[int, int, int, int],
    size: tuple[int, int],
) -> Image.Image:
    x, y, w, h = window
    shown = overlay(
        tile_rgb[y : y + h, x : x + w], mask[y : y + h, x : x + w], schema.palette(), opacity
    )
    # Nearest-neighbour so each tile pixel stays a crisp block the painter can aim at.
    return Image.fromarray(shown).resize(size, Image.Resampling.NEAREST)


# ------------------------------------------------------------------------------ settings
def _prefs() -> dict:
    return st.session_state.setdefault(PREFS_KEY, {})


def _setting(key: str, default: object, valid: object = None) -> object:
    """The value widget ``key`` shows: its own, else the session's setting, else ``default``.

    Every settings widget gets this as its default too, so a widget the browser mounts anew
    (widget keys die off-page, and a moved widget is re-mounted) shows the same value.
    """
    if valid is not None and key in st.session_state and st.session_state[key] not in valid:
        del st.session_state[key]  # outlived its options (a queue that went away)
    value = st.session_state.get(key, _prefs().get(key, default))
    if valid is not None and value not in valid:
        value = default
    return value


def _remember(*keys: str) -> None:
    prefs = _prefs()
    for key in keys:
        if key in st.session_state:
            prefs[key] = st.session_state[key]


_SETTINGS = (
    "lbl_order",
    "lbl_class",
    "lbl_tool",
    "lbl_brush",
    "lbl_opacity",
    "lbl_show_mask",
    "lbl_zoom",
    "lbl_pan_x",
    "lbl_pan_y",
    "lbl_tolerance",
    "lbl_fill_erased",
    PREFILL_KEY,
)


MOVES = ("save_next", "save", "next", "previous", "skip")


def _key_events(result: object) -> tuple[list[str], str | None, tuple[str | None, int]]:
    """The keys pressed since the last applied one: setting keys, then at most one move.

    The browser sends the tab's last 20 key events, numbered, with every re-run; the session
    keeps the number of the last one applied. So a key pressed while the page re-runs (or
    one whose run was cut short) is neither lost nor applied twice. One move per run: keys
    after it wait for the next run, on the next tile.

    Returns:
        The setting actions to apply, the move (or None), and the mark to store once done.
    """
    keys = (result or {}).get("keys") or {}
    token, events = keys.get("token"), list(keys.get("events") or [])
    seen_token, seen = st.session_state.get(KEY_SEEN_KEY, (None, 0))
    if token is None:  # no key pressed since this component mounted: keep the mark
        return [], None, (seen_token, seen)
    if token != seen_token:
        seen = 0
    fresh = sorted((e for e in events if int(e.get("n", 0)) > seen), key=lambda e: int(e["n"]))
    settings: list[str] = []
    for event in fresh:
        action, seen = str(event.get("action")), int(event["n"])
        if action in MOVES:
            return settings, action, (token, seen)
        settings.append(action)
    return settings, None, (token, seen)


def _apply_key(action: str | None, classes: list[str]) -> None:
    """A key that changes a setting, applied before the widgets are drawn."""
    if action is None:
        return
    state = st.session_state
    if action.startswith("class_"):
        number = int(action.removeprefix("class_"))
        if number <= len(classes):
            state["lbl_class"] = classes[number - 1]
    elif action == "eraser":
        state["lbl_class"] = ERASER
    elif action in ("brush", "wand"):
        state["lbl_tool"] = action.capitalize()
    elif action in ("brush_down", "brush_up"):
        low, high = BRUSH_RANGE
        size = int(_setting("lbl_brush", 16))
        size += -BRUSH_STEP if action == "brush_down" else BRUSH_STEP
        state["lbl_brush"] = min(max(size, low), high)
    elif action == "mask":
        state["lbl_show_mask"] = not _setting("lbl_show_mask", True)
    elif action == "zoom":
        zoom = int(_setting("lbl_zoom", session.DEFAULT_ZOOM, ZOOMS))
        state["lbl_zoom"] = ZOOMS[(ZOOMS.index(zoom) + 1) % len(ZOOMS)]
    elif action.startswith("pan_"):
        axis, sign = {
            "pan_left": ("lbl_pan_x", -1),
            "pan_right": ("lbl_pan_x", 1),
            "pan_up": ("lbl_pan_y", -1),
            "pan_down": ("lbl_pan_y", 1),
        }[action]
        at = PAN_STEPS.index(int(_setting(axis, 0, PAN_STEPS)))
        state[axis] = PAN_STEPS[min(max(at + sign, 0), len(PAN_STEPS) - 1)]


# ------------------------------------------------------------------------------ actions
def _goto(tile_id: str) -> None:
    st.session_state[_common.LABEL_TILE_KEY] = tile_id
    st.session_state.pop(LEAVE_KEY, None)
    st.session_state.pop(CONFLICT_KEY, None)


def _store_save(
    store: Store, editing: Editing, mask: np.ndarray, name: str, seconds: float, force: bool
) -> Revision | RevisionConflict | StoreError:
    """Save ``mask`` as a new revision; touches the store only, never the session."""
    record = editing.record()
    try:
        return store.save_mask(
            editing.tile_id,
            mask,
            annotator=name,
            source=record.source,
            model_id=record.model_id,
            base_revision=record.base_revision,
            seconds=seconds,
            force=force,
        )
    except (RevisionConflict, StoreError) as exc:
        return exc


def _landed(store: Store, editing: Editing, mask: np.ndarray, name: str) -> Revision | None:
    """The revision an interrupted save already wrote (same person, same mask), if any."""
    latest = store.latest(editing.tile_id)
    if latest is None or latest.revision == editing.base_number or latest.annotator != name:
        return None
    return latest if np.array_equal(store.mask(editing.tile_id, latest.revision), mask) else None


def _save(
    store: Store,
    editing: Editing,
    mask: np.ndarray,
    name: str,
    *,
    seconds: float | None = None,
    force: bool = False,
    note: str = "Saved revision {revision} ({pixels} labelled pixels).",
) -> Revision | None:
    """Save ``mask`` as a new revision; None when it was refused (the page says why)."""
    if seconds is None:
        seconds = round(time.monotonic() - editing.opened, 1)
    rev = _landed(store, editing, mask, name)
    if rev is None:
        rev = _store_save(store, editing, mask, name, seconds, force)
    if isinstance(rev, RevisionConflict):
        st.session_state[CONFLICT_KEY] = PendingConflict(editing, mask, seconds, rev.latest)
        return None
    if isinstance(rev, StoreError):
        _flash("error", f"Not saved: {rev}")
        return None
    # Only now, with the commit durable, does the page say "Saved".
    st.session_state.pop(CONFLICT_KEY, None)
    st.session_state.pop(LEAVE_KEY, None)
    st.session_state[EDITING_KEY] = editing.after_save(rev, mask, _next_nonce(), time.monotonic())
    _flash("success", note.format(revision=rev.revision, pixels=rev.n_labelled_px))
    return rev


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
        order = session.suggested_order(store, queue[1])
    else:
        order = TILE_ORDERS[choice](store)
    st.session_state[ORDER_CACHE_KEY] = (key, order)
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
        _goto(first)


def main() -> None:
    store = _common.setup("Label")
    st.html(_PAGE_CSS)
    st.title("Label")
    tiles = {t.tile_id: t for t in store.tiles()}
    if not tiles:
        st.info("There are no smears in this workspace yet. Add some on the **Upload** page.")
        return
    schema = store.schema()
    pending = st.session_state.get(PENDING_KEY)
    if pending is not None:
        _finish(store, pending)
    colors = paint_colors(schema)
    classes = list(colors)

    # Keys first: a key that picks a class or a brush size must land before those widgets.
    settings, key_move, key_mark = _key_events(
        _keys_component()(key=KEYS_KEY, on_keys_change=lambda: None)
    )
    for action in settings:
        _apply_key(action, classes)
    if key_move is None:
        st.session_state[KEY_SEEN_KEY] = key_mark

    queue = _common.label_queue()
    choices = ([f"Suggested: {queue[0]}"] if queue else []) + list(TILE_ORDERS)
    if queue and st.session_state.get("lbl_seen_queue") != queue:
        # A ranking just handed over (Suggestions page): walk it.
        st.session_state["lbl_seen_queue"] = queue
        st.session_state["lbl_order"] = choices[0]
        _prefs()["lbl_order"] = choices[0]
    first_cell = next((n for n in classes if n != "background"), classes[0])
    canvas_col, side = st.columns([3, 2], gap="medium")
    with side:
        pick = st.columns(2)
        choice = pick[0].selectbox(
            "Tile order",
            choices,
            index=choices.index(_setting("lbl_order", choices[0], choices)),
            key="lbl_order",
        )
    order = _order(store, choice, len(tiles)) or list(tiles)

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
            index=classes.index(_setting("lbl_class", first_cell, classes)),
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
            index=tools.index(_setting("lbl_tool", "Brush", tools)),
            horizontal=True,
            key="lbl_tool",
        )
        row = st.columns(2)
        if TOOLS[tool] == "point":
            tolerance = row[0].slider(
                "Wand tolerance (ΔE)",
                2.0,
                60.0,
                value=float(_setting("lbl_tolerance", DEFAULT_TOLERANCE)),
                step=1.0,
                key="lbl_tolerance",
                help="A click on a cell takes the whole cell, cut from its neighbours at the "
                "narrowing between them. A click on plasma takes the pixels this close in colour "
                "(CIE Lab) to the clicked one; larger grows into the cells.",
            )
        else:
            tolerance = float(_setting("lbl_tolerance", DEFAULT_TOLERANCE))
            row[0].slider(
                "Brush size (screen px)",
                *BRUSH_RANGE,
                value=int(_setting("lbl_brush", 16)),
                key="lbl_brush",
            )
        brush = int(_setting("lbl_brush", 16))
        zoom = row[1].selectbox(
            "Zoom",
            ZOOMS,
            index=ZOOMS.index(_setting("lbl_zoom", session.DEFAULT_ZOOM, ZOOMS)),
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
                value=_setting("lbl_pan_x", 0, PAN_STEPS),
                key="lbl_pan_x",
            )
            pan[1].select_slider(
                "Pan down (%)",
                PAN_STEPS,
                value=_setting("lbl_pan_y", 0, PAN_STEPS),
                key="lbl_pan_y",
            )
        view = _view(view_probe.zoom, tile, tile_size)
        mask_row = st.columns(2)
        show_mask = mask_row[0].toggle(
            "Show mask", value=bool(_setting("lbl_show_mask", True)), key="lbl_show_mask"
        )
        opacity = mask_row[1].slider(
            "Mask opacity",
            0,
            100,
            value=int(_setting("lbl_opacity", 45)),
            step=5,
            format="%d%%",
            key="lbl_opacity",
        )
        starter = _prefill_toggle(schema)
        edits = st.container()
        _shortcuts()

    editing = st.session_state.get(EDITING_KEY)
    if editing is None or editing.tile_id != tile_id:
        editing = open_tile(store, tile, starter, view)
    elif (
        editing.base is None
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
        _buttons(buttons, name, tile_id)
        # A key's move is noted at once: Streamlit may cut this run short at any later point.
        if key_move is not None:
            st.session_state[INTENT_KEY] = (key_move, tile_id)
            st.session_state[KEY_SEEN_KEY] = key_mark
        notes = st.container()
        from streamlit_drawable_canvas import st_canvas  # only importable inside a page run

        result = st_canvas(
            fill_color=_rgba(colour, PAINT_ALPHA),
            stroke_width=brush if TOOLS[tool] == "freedraw" else 2,
            stroke_color=_rgba(colour, PAINT_ALPHA),
            background_image=_background(
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
        paint_now = _painted(store, schema, editing, objects, tolerance, starter, tile_size)
    except ValueError as exc:
        with notes:
            st.error(f"The drawing cannot be turned into a mask: {exc} Undo the last shape.")
        st.session_state.pop(INTENT_KEY, None)
        return
    mask = paint_now.mask
    if view != editing.view:
        # The canvas is redrawn for the new view: its strokes become part of the mask first.
        st.session_state[EDITING_KEY] = editing.baked(paint_now, _next_nonce(), view)
        _remember(*_SETTINGS)
        st.rerun()
    # changed: work that leaving would lose; unsaved: also an untouched pre-fill to accept.
    changed = bool(objects) or not np.array_equal(mask, editing.origin)
    unsaved = changed or not np.array_equal(mask, editing.saved)

    _remember(*_SETTINGS)
    with about:
        _about(store, editing, objects, changed, unsaved, tile_id)
    with edits:
        _edits(store, schema, editing, paint_now, changed, starter)
    move = _intent(tile_id)
    with notes:
        _notes(store, editing, objects, changed, name, tile_id)
    _act(store, editing, mask, move, changed, unsaved, name, order, tile_id)


def _view(zoom: int, tile: TileInfo, tile_size: int) -> session.View:
    """The view the zoom and pan widgets ask for, in tile pixels."""
    probe = session.view_for(zoom, 0, 0)
    _, _, w, h = probe.window(tile.w, tile.h, tile_size)
    fx = int(_setting("lbl_pan_x", 0, PAN_STEPS)) / 100
    fy = int(_setting("lbl_pan_y", 0, PAN_STEPS)) / 100
    return session.view_for(zoom, round(fx * (tile.w - w)), round(fy * (tile.h - h)))


def _painted(
    store: Store,
    schema: ClassSchema,
    editing: Editing,
    objects: list[dict],
    tolerance: float,
    starter: Starter | None,
    tile_size: int,
) -> Painted:
    wand = None
    if any(session.is_wand_click(o) for o in objects):
        prediction = None
        if starter is not None and starter.earned:
            prediction = starter.prefill(store, editing.tile_id).mask
        background = schema.index("background") if "background" in schema.names else None
        lab = _tile_lab(store, str(_common.workspace()), editing.tile_id)
        wand = Wand(lab, float(tolerance), prediction, background)
    return session.painted(
        editing, objects, tile_size=tile_size, colors=color_to_class(schema), wand=wand
    )


def _shortcuts() -> None:
    with st.expander("Keyboard shortcuts", expanded=False):
        st.markdown(
            "\n".join(f"- **{key}**: {what}" for key, what in SHORTCUTS)
            + "\n\nKeys act when no text box has the focus."
        )


def _prefill_toggle(schema: ClassSchema) -> Starter | None:
    """The "Start from a prediction" toggle and what it starts from (None when off)."""
    on = st.toggle(
        "Start from a prediction",
        value=bool(_setting(PREFILL_KEY, True)),
        key=PREFILL_KEY,
        help="A tile without a saved mask opens with a predicted mask for you to correct, "
        "instead of blank. Its save is recorded as a pre-fill, with the model's id.",
    )
    if not on:
        st.caption("Tiles without a saved mask open blank.")
        return None
    starter = current_starter(schema)
    if starter.loaded is not None:
        earned = " The wand uses its cells." if starter.earned else ""
        st.caption(
            f"Tiles without a saved mask open with the prediction of model "
            f"`{starter.model_id}`.{earned}"
        )
    else:
        st.caption(
            "Tiles without a saved mask open with the colour rules' pre-fill (no model yet)."
        )
    if starter.note:
        st.info(starter.note)
    return starter


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
            value=bool(_setting("lbl_fill_erased", False)),
            key="lbl_fill_erased",
        )
        if fill:
            baked = editing.baked(paint_now, _next_nonce())
            filled = session.fill_the_rest(
                baked.mask, baked.erased_px, schema.index("background"), erased_too=erased_too
            )
            st.session_state[EDITING_KEY] = replace(baked, mask=filled)
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


def _buttons(where, name: str, tile_id: str) -> None:
    """The action row above the canvas. A press is noted by its callback, which Streamlit
    runs before the script: a re-run that cuts the script short (the new canvas asks for one
    as it mounts) can no longer lose a press read in the body."""
    with where:
        cols = st.columns([5, 3, 3, 4, 3])
        specs = (
            ("save_next", "Save & next", "lbl_save_next", "Enter", not name),
            ("save", "Save", "lbl_save", "S", not name),
            ("skip", "Skip", "lbl_skip", "X · not worth labelling (blurred, empty)", False),
            ("previous", "Previous", "lbl_prev", "← or A", False),
            ("next", "Next", "lbl_next", "→ or D", False),
        )
        for col, (move, label, key, keys, disabled) in zip(cols, specs, strict=True):
            col.button(
                label,
                key=key,
                type="primary" if move == "save_next" else "secondary",
                disabled=disabled,
                width="stretch",
                help=keys,
                on_click=_pressed,
                args=(move, tile_id),
            )


def _pressed(move: str, tile_id: str) -> None:
    """A button's press, for the tile it was shown with."""
    st.session_state[INTENT_KEY] = (move, tile_id)


def _intent(tile_id: str) -> str | None:
    """The move pressed on this tile and not acted on yet (a press for another tile is
    dropped)."""
    intent = st.session_state.get(INTENT_KEY)
    if intent is None:
        return None
    if intent[1] != tile_id:
        st.session_state.pop(INTENT_KEY, None)
        return None
    return intent[0]


def _notes(
    store: Store, editing: Editing, objects: list[dict], changed: bool, name: str, tile_id: str
) -> None:
    if not name:  # beside the name box, not above the canvas: the tile stays in view
        st.sidebar.warning("Enter your name above to save masks.")
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


def _act(
    store: Store,
    editing: Editing,
    mask: np.ndarray,
    move: str | None,
    changed: bool,
    unsaved: bool,
    name: str,
    order: list[str],
    tile_id: str,
) -> None:
    if move is None:
        return
    if move in ("save", "save_next") and not name:
        st.session_state.pop(INTENT_KEY, None)
        _flash("warning", "Enter your name in the sidebar to save masks.")
        st.rerun()
    step = {"save_next": "next"}.get(move, move)
    target = None if move == "save" else session.step(order, tile_id, step)
    why = "Previous" if move == "previous" else "Next"
    leave = not changed or st.session_state.get(LEAVE_KEY) == (target, why)
    seconds = round(time.monotonic() - editing.opened, 1)
    action = PendingAction(move, editing, mask, unsaved, name, target, leave, seconds)
    st.session_state[PENDING_KEY] = action
    _finish(store, action)


def _finish(store: Store, action: PendingAction) -> None:
    """Carry out ``action`` and re-run; safe to call again if a re-run cut it short."""
    editing, move = action.editing, action.move
    if move in ("save", "save_next"):
        rev = None
        if action.unsaved:
            note = "Saved revision {revision} ({pixels} labelled pixels)."
            if move == "save_next":
                note = "Saved revision {revision} of the previous tile."
            rev = _save(
                store,
                editing,
                action.mask,
                action.name,
                seconds=action.seconds,
                force=action.force,
                note=note,
            )
        elif move == "save":
            what = f"revision {editing.base_number}" if editing.base else "the blank tile"
            _flash("info", f"Nothing to save: nothing changed since {what}.")
        if move == "save_next" and (rev is not None or not action.unsaved):
            flash = st.session_state.get(FLASH_KEY)
            _goto(action.target)
            if rev is not None and flash is not None:
                st.session_state[FLASH_KEY] = (*flash[:2], action.target)
    elif move == "skip":
        if not store.is_skipped(editing.tile_id):
            store.skip(editing.tile_id, annotator=action.name)
        _goto(action.target)
        _flash("info", "Skipped the previous tile; it stays out of training until saved.")
    elif action.leave:
        _goto(action.target)
    else:
        st.session_state[LEAVE_KEY] = (action.target, "Previous" if move == "previous" else "Next")
    st.session_state.pop(INTENT_KEY, None)
    st.session_state.pop(PENDING_KEY, None)
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
            st.session_state[EDITING_KEY] = open_tile(
                store, store.tile(conflict.editing.tile_id), view=conflict.editing.view
            )
            _flash("info", f"Loaded revision {theirs.revision}; your paint was dropped.")
            st.rerun()
        if right.button("Save mine on top", key="lbl_conflict_force", type="primary"):
            action = PendingAction(
                "save", conflict.editing, conflict.mask, True, name, None, True,
                conflict.seconds, force=True,
            )  # fmt: skip
            st.session_state[PENDING_KEY] = action
            _finish(store, action)


main()
