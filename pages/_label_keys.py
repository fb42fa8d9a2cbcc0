"""The Label page's keyboard: one listener per browser tab, and what each key does.

Promises:
- :data:`SHORTCUTS` lists every key the page answers, as :func:`shortcuts` shows it. The
  browser side maps the same keys, leaves them alone while a text box, a select or a slider
  has the focus, and hands Ctrl+Z / Ctrl+Y to the canvas's own Undo / Redo.
- The listener is registered once per process (:func:`keys_component`) and installed once
  per browser tab. Its key events are numbered, so :func:`key_events` applies a key pressed
  while the page re-runs exactly once, and at most one move (:data:`MOVES`) per run.
- :func:`apply_key` applies a setting key (class, eraser, tool, brush size, mask, zoom, pan)
  to the widgets' session values before the widgets are drawn; brush size and pan stay in
  their ranges.
"""

from __future__ import annotations

import streamlit as st

from pages import _label_session as session
from pages._label_session import ERASER, ZOOMS
from pages._label_state import BRUSH_RANGE, KEY_SEEN_KEY, PAN_STEPS, setting

BRUSH_STEP = 4  # screen px per [ or ]
MOVES = ("save_next", "save", "next", "previous", "skip")

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
def keys_component():
    """The keyboard listener, registered once per process (every page run asks for it)."""
    return st.components.v2.component("smearlab_label_keys", js=_KEYS_JS)


def key_events(result: object) -> tuple[list[str], str | None, tuple[str | None, int]]:
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


def apply_key(action: str | None, classes: list[str]) -> None:
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
        size = int(setting("lbl_brush", 16))
        size += -BRUSH_STEP if action == "brush_down" else BRUSH_STEP
        state["lbl_brush"] = min(max(size, low), high)
    elif action == "mask":
        state["lbl_show_mask"] = not setting("lbl_show_mask", True)
    elif action == "zoom":
        zoom = int(setting("lbl_zoom", session.DEFAULT_ZOOM, ZOOMS))
        state["lbl_zoom"] = ZOOMS[(ZOOMS.index(zoom) + 1) % len(ZOOMS)]
    elif action.startswith("pan_"):
        axis, sign = {
            "pan_left": ("lbl_pan_x", -1),
            "pan_right": ("lbl_pan_x", 1),
            "pan_up": ("lbl_pan_y", -1),
            "pan_down": ("lbl_pan_y", 1),
        }[action]
        at = PAN_STEPS.index(int(setting(axis, 0, PAN_STEPS)))
        state[axis] = PAN_STEPS[min(max(at + sign, 0), len(PAN_STEPS) - 1)]


def shortcuts() -> None:
    with st.expander("Keyboard shortcuts", expanded=False):
        st.markdown(
            "\n".join(f"- **{key}**: {what}" for key, what in SHORTCUTS)
            + "\n\nKeys act when no text box has the focus."
        )
