"""The Label page's moves: Save, Save & next, Skip, Previous and Next, each carried out once.

Promises:
- A press is noted by its button's callback (:func:`action_buttons`), which Streamlit runs
  before the script, for the tile it was shown with; :func:`pressed_move` drops a press meant
  for another tile.
- :func:`act` writes the action to the session (:class:`PendingAction`) before anything
  happens, and every run first finishes one left unfinished (:func:`finish`): a re-run that
  cuts it short loses nothing and saves nothing twice (a save that already landed, same
  person and same mask, is recognised).
- Every save is a new revision with who, the revision it started from and the seconds spent;
  "Saved" is flashed only after the store returned. A save refused because someone saved the
  tile in between becomes a :class:`PendingConflict`, and :func:`conflict_box` offers to load
  theirs or to save yours on top.
- Leaving a tile with unsaved paint asks first (the same move pressed again leaves); Skip
  marks the tile skipped; a save without a name is refused with a message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import streamlit as st

from dataset.store import Revision, RevisionConflict, Store, StoreError
from pages import _label_session as session
from pages._label_prefill import open_tile
from pages._label_session import Editing
from pages._label_state import (
    CONFLICT_KEY,
    EDITING_KEY,
    FLASH_KEY,
    INTENT_KEY,
    LEAVE_KEY,
    PENDING_KEY,
    goto,
    next_nonce,
    set_flash,
)


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
    unfinished (:func:`finish`, which may run twice without saving twice).

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


def action_buttons(where, name: str, tile_id: str) -> None:
    """The action row above the canvas. A press is noted by its callback, which Streamlit
    runs before the script: a re-run that cuts the script short (the new canvas asks for one
    as it mounts) can no longer lose a press read in the body."""
    with where:
        cols = st.columns([5, 3, 3, 4, 3])
        specs = (
            ("save_next", "Save & next", "lbl_save_next", "Enter", not name),
            ("save", "Save", "lbl_save", "S", not name),
            ("skip", "Skip", "lbl_skip", "X · not worth labelling (blurred, empty)", not name),
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


def pressed_move(tile_id: str) -> str | None:
    """The move pressed on this tile and not acted on yet (a press for another tile is
    dropped)."""
    intent = st.session_state.get(INTENT_KEY)
    if intent is None:
        return None
    if intent[1] != tile_id:
        st.session_state.pop(INTENT_KEY, None)
        return None
    return intent[0]


def act(
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
    """Start ``move`` (pressed on ``tile_id``, None: nothing pressed) as a pending action."""
    if move is None:
        return
    if move in ("save", "save_next") and not name:
        st.session_state.pop(INTENT_KEY, None)
        set_flash("warning", "Enter your name in the sidebar to save masks.")
        st.rerun()
    step = {"save_next": "next"}.get(move, move)
    target = None if move == "save" else session.step(order, tile_id, step)
    why = "Previous" if move == "previous" else "Next"
    leave = not changed or st.session_state.get(LEAVE_KEY) == (target, why)
    seconds = round(time.monotonic() - editing.opened, 1)
    action = PendingAction(move, editing, mask, unsaved, name, target, leave, seconds)
    st.session_state[PENDING_KEY] = action
    finish(store, action)


def finish(store: Store, action: PendingAction) -> None:
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
            set_flash("info", f"Nothing to save: nothing changed since {what}.")
        if move == "save_next" and (rev is not None or not action.unsaved):
            flash = st.session_state.get(FLASH_KEY)
            goto(action.target)
            if rev is not None and flash is not None:
                st.session_state[FLASH_KEY] = (*flash[:2], action.target)
    elif move == "skip" and not action.name:  # the X key, with no name entered
        set_flash("warning", "Enter your name in the sidebar to skip: a skip records who.")
    elif move == "skip":
        if not store.is_skipped(editing.tile_id):
            store.skip(editing.tile_id, annotator=action.name)
        goto(action.target)
        set_flash("info", "Skipped the previous tile; it stays out of training until saved.")
    elif action.leave:
        goto(action.target)
    else:
        st.session_state[LEAVE_KEY] = (action.target, "Previous" if move == "previous" else "Next")
    st.session_state.pop(INTENT_KEY, None)
    st.session_state.pop(PENDING_KEY, None)
    st.rerun()


def _store_save(
    store: Store, editing: Editing, mask: np.ndarray, name: str, seconds: float, force: bool
) -> tuple[str, Revision] | RevisionConflict | StoreError:
    """Save ``mask`` as a new revision of the label being edited; touches the store only,
    never the session. A blank start leaves the label to the store: a tile of the
    double-labelled share that someone else saved meanwhile takes this as its second label."""
    record = editing.record()
    try:
        return store.save_label(
            editing.tile_id,
            mask,
            annotator=name,
            lane=editing.lane if editing.base is not None or editing.second else None,
            source=record.source,
            model_id=record.model_id,
            base_revision=record.base_revision,
            seconds=seconds,
            force=force,
        )
    except (RevisionConflict, StoreError) as exc:
        return exc


def _landed(
    store: Store, editing: Editing, mask: np.ndarray, name: str
) -> tuple[str, Revision] | None:
    """The label and revision an interrupted save already wrote (same person, same mask)."""
    tile_id = editing.tile_id
    for lane, latest in (("first", store.latest(tile_id)), ("second", store.second_label(tile_id))):
        if latest is None or latest.annotator != name:
            continue
        if lane == editing.lane and latest.revision == editing.base_number:
            continue
        if editing.lane == "second" and lane == "first":
            continue  # a second label never lands among the ordinary revisions
        read = store.second_mask if lane == "second" else store.mask
        if np.array_equal(read(tile_id, latest.revision), mask):
            return lane, latest
    return None


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
    done = _landed(store, editing, mask, name)
    if done is None:
        done = _store_save(store, editing, mask, name, seconds, force)
    if isinstance(done, RevisionConflict):
        st.session_state[CONFLICT_KEY] = PendingConflict(editing, mask, seconds, done.latest)
        return None
    if isinstance(done, StoreError):
        set_flash("error", f"Not saved: {done}")
        return None
    lane, rev = done
    # Only now, with the commit durable, does the page say "Saved".
    st.session_state.pop(CONFLICT_KEY, None)
    st.session_state.pop(LEAVE_KEY, None)
    st.session_state[EDITING_KEY] = editing.after_save(
        rev, mask, next_nonce(), time.monotonic(), lane
    )
    saved = note.format(revision=rev.revision, pixels=rev.n_labelled_px)
    if lane == "second":
        saved = "Independent second label: " + saved[0].lower() + saved[1:]
    set_flash("success", saved + _auto_update(store))
    return rev


def _auto_update(store: Store) -> str:
    """Ask for the automatic model update a save may trigger; what to add to "Saved"."""
    from dataset.settings import get_settings
    from training.service import auto_update

    if get_settings(workspace=store.root).auto_update_every is None:
        return ""
    update = auto_update(store.root)
    if update.job_id is None:
        return ""
    return (
        f" {update.new_tiles} labelled tiles are new to the current model: an update of it "
        f"is queued (job {update.job_id}; the Train page shows it)."
    )


def conflict_box(store: Store, conflict: PendingConflict, name: str) -> None:
    """Who saved in between, and the choice: load their version, or save mine on top."""
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
                store,
                store.tile(conflict.editing.tile_id),
                view=conflict.editing.view,
                annotator=name,
            )
            set_flash("info", f"Loaded revision {theirs.revision}; your paint was dropped.")
            st.rerun()
        if right.button("Save mine on top", key="lbl_conflict_force", type="primary"):
            action = PendingAction(
                "save", conflict.editing, conflict.mask, True, name, None, True,
                conflict.seconds, force=True,
            )  # fmt: skip
            st.session_state[PENDING_KEY] = action
            finish(store, action)
