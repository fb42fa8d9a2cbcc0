"""The Label page's session state: the keys it keeps, its settings, its one message.

Promises:
- Every ``st.session_state`` key the page keeps is named here (``lbl_…``), one constant each;
  the tests read them by value.
- A setting chosen on the page (:data:`SETTINGS`: order, class, tool, brush, opacity, mask,
  zoom, pan, wand tolerance, fill, pre-fill) stays for the session, across visits to other
  pages: :func:`remember` copies the widgets' values under ``PREFS_KEY``, and :func:`setting`
  gives a widget the browser mounts anew the same value, dropping one that outlived its
  options.
- :func:`set_flash` keeps one message for the tile now current, shown by :func:`show_flash`
  until the tile changes or new paint arrives.
- :func:`goto` makes a tile current and drops the leave question and the conflict of the tile
  it leaves; :func:`next_nonce` numbers the canvases, a new number for each fresh canvas.
"""

from __future__ import annotations

import streamlit as st

from pages import _common

BRUSH_RANGE = (2, 64)
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

# The widgets whose values stay for the session (kept under PREFS_KEY).
SETTINGS = (
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


def next_nonce() -> int:
    """A number no canvas of this session had: a new one makes a fresh canvas widget."""
    nonce = int(st.session_state.get("lbl_nonce", 0)) + 1
    st.session_state["lbl_nonce"] = nonce
    return nonce


def set_flash(kind: str, text: str) -> None:
    """A message for the tile now current, kept until it changes or new paint arrives.

    (A single-run message would vanish: a freshly mounted canvas reports its size at once,
    which re-runs the page.)
    """
    st.session_state[FLASH_KEY] = (kind, text, st.session_state.get(_common.LABEL_TILE_KEY))


def show_flash(tile_id: str, painting: bool) -> None:
    """The kept message, if it is for ``tile_id`` and no new paint arrived; else it goes."""
    flash = st.session_state.get(FLASH_KEY)
    if flash is None:
        return
    kind, text, for_tile = flash
    if for_tile != tile_id or painting:
        st.session_state.pop(FLASH_KEY, None)
        return
    {"success": st.success, "info": st.info, "error": st.error, "warning": st.warning}[kind](text)


def kept_settings() -> dict:
    """The settings kept for the session (widget key -> value)."""
    return st.session_state.setdefault(PREFS_KEY, {})


def setting(key: str, default: object, valid: object = None) -> object:
    """The value widget ``key`` shows: its own, else the session's setting, else ``default``.

    Every settings widget gets this as its default too, so a widget the browser mounts anew
    (widget keys die off-page, and a moved widget is re-mounted) shows the same value.
    """
    if valid is not None and key in st.session_state and st.session_state[key] not in valid:
        del st.session_state[key]  # outlived its options (a queue that went away)
    value = st.session_state.get(key, kept_settings().get(key, default))
    if valid is not None and value not in valid:
        value = default
    return value


def remember(*keys: str) -> None:
    """Keep the current values of the widgets ``keys`` for the session."""
    prefs = kept_settings()
    for key in keys:
        if key in st.session_state:
            prefs[key] = st.session_state[key]


def goto(tile_id: str) -> None:
    """Make ``tile_id`` current; the leave question and the conflict box of the last go."""
    st.session_state[_common.LABEL_TILE_KEY] = tile_id
    st.session_state.pop(LEAVE_KEY, None)
    st.session_state.pop(CONFLICT_KEY, None)
