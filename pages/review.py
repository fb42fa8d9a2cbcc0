"""Review page: a reviewer checks each newly saved mask and approves it or sends it back.

What it promises the reviewer:
- The queue is every labelled tile whose latest revision nobody reviewed yet, the oldest save
  first (:meth:`dataset.store.Store.review_queue`), less the masks that are wholly the
  reviewer's own (another reviewer approves those); the reviewer's own corrections of
  someone else's mask come first.
- The tile is shown beside its mask drawn over it, with who saved which revision and when,
  and any earlier request for changes on the tile.
- **Approve** and **Request changes** record a verdict on the revision shown, never on a
  later one: if the tile was saved or reviewed meanwhile, nothing is recorded and the page
  says who came first. A request needs a comment; it goes to the annotator, whose Label page
  then opens with the tile first and the comment above the canvas.
- **Edit, then approve** opens the tile on the Label page. Saving there makes a new revision
  in the reviewer's name on top of the annotator's; it comes back here at the top of the
  queue, as the reviewer's correction, to approve. Both revisions stay in the history.
- Double-labelled tiles with both independent labels and no pick yet are listed apart: the
  two masks side by side, and **Use the first** / **Use the second** picks the one that goes
  into releases and training (:meth:`dataset.store.Store.pick_mask`, also ``python -m dataset
  review pick-mask``). A reviewer who labelled the tile is not offered it.
- The role is checked by the store on every verdict and pick, whatever the page shows, for the
  account as it is at the click (re-read then, not kept from when the page was drawn).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from dataset.masks import overlay
from dataset.roles import Actor, PermissionDenied
from dataset.store import ReviewConflict, ReviewStatus, Store, StoreError
from pages import _common

FLASH_KEY = "rv_flash"
TILE_KEY = "rv_tile"
COMMENT_KEY = "rv_comment"
PICK_KEY = "rv_pick_tile"
SHOW_PX = 512  # the tile is drawn at up to this many screen pixels a side, pixels kept crisp


def _flash(kind: str, text: str) -> None:
    st.session_state[FLASH_KEY] = (kind, text)


def _verdict(store: Store, tile_id: str, revision: int, approve: bool) -> None:
    """Button callback: record a verdict on the revision the page showed.

    Who acts is read again at the click, not when the page was drawn: a role taken away (or
    a session ended) in between must not let the click through.
    """
    why = _common.refusal("review")
    if why is not None:
        _flash("error", f"Nothing was recorded: {why}")
        return
    actor = _common.actor()
    try:
        if approve:
            store.approve(tile_id, revision, actor)
            _flash("success", f"Approved revision {revision} of {tile_id}.")
        else:
            comment = str(st.session_state.get(COMMENT_KEY, ""))
            store.request_changes(tile_id, revision, actor, comment)
            st.session_state[COMMENT_KEY] = ""
            _flash("success", f"Sent revision {revision} of {tile_id} back to its annotator.")
    except ReviewConflict as exc:
        _flash("warning", f"Nothing was recorded: {exc}")
    except (PermissionDenied, StoreError) as exc:
        _flash("error", f"Nothing was recorded: {exc}")
    st.session_state.pop(TILE_KEY, None)  # on to the oldest tile still waiting


def _pick(store: Store, tile_id: str, lane: str) -> None:
    """Button callback: keep one of a double-labelled tile's two labels (who acts is read
    again at the click, as for a verdict)."""
    why = _common.refusal("review")
    if why is not None:
        _flash("error", f"Nothing was recorded: {why}")
        return
    try:
        pick = store.pick_mask(tile_id, lane, _common.actor())
        _flash(
            "success",
            f"Picked the {lane} label of {tile_id}: revision {pick.revision} goes into "
            "releases and training.",
        )
    except ReviewConflict as exc:
        _flash("warning", f"Nothing was recorded: {exc}")
    except (PermissionDenied, StoreError) as exc:
        _flash("error", f"Nothing was recorded: {exc}")
    st.session_state.pop(PICK_KEY, None)


def _picks(store: Store, actor: Actor, schema) -> None:
    """The double-labelled tiles waiting for a reviewer to pick one of their two labels."""
    waiting = store.awaiting_pick(actor.name)
    if not waiting:
        return
    with st.expander(f"Double-labelled tiles to pick a label for ({len(waiting)})", expanded=True):
        st.caption(
            "Two annotators labelled each of these tiles independently. Until you pick, "
            "training and releases use the first label."
        )
        tile_id = st.selectbox("Double-labelled tile", waiting, key=PICK_KEY)
        first, second = store.first_label(tile_id), store.second_label(tile_id)
        rgb = np.asarray(store.tile_image(tile_id))
        cols = st.columns(2)
        for col, lane, rev, mask in (
            (cols[0], "first", first, store.mask(tile_id, first.revision)),
            (cols[1], "second", second, store.second_mask(tile_id, second.revision)),
        ):
            shown = overlay(rgb, mask, schema.palette(), 0.55)
            col.image(
                _crisp(shown),
                caption=f"{lane.capitalize()} label, by {rev.annotator}",
                width="stretch",
            )
            col.button(
                f"Use the {lane}",
                key=f"rv_pick_{lane}",
                width="stretch",
                on_click=_pick,
                args=(store, tile_id, lane),
            )


def _crisp(image: np.ndarray) -> np.ndarray:
    """Scale up by a whole factor (nearest pixel), so mask edges stay sharp on screen."""
    factor = max(1, SHOW_PX // max(image.shape[:2]))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def _label(status: ReviewStatus) -> str:
    rev = status.revision
    saved = f"{rev.created_at:%Y-%m-%d %H:%M} UTC"
    return f"{status.tile_id} · revision {rev.revision} by {rev.annotator} · {saved}"


def _counts(store: Store) -> None:
    counts = store.review_counts()
    cols = st.columns(3)
    cols[0].metric("To review", counts["unreviewed"])
    cols[1].metric("Approved", counts["approved"])
    cols[2].metric("Changes requested", counts["changes_requested"])


def _about(store: Store, status: ReviewStatus) -> None:
    rev = status.revision
    how = rev.source if rev.source != "prefill" else f"corrected pre-fill ({rev.model_id})"
    took = f", {rev.seconds:.0f} s of labelling" if rev.seconds is not None else ""
    st.markdown(
        f"Revision **{rev.revision}**, saved by **{rev.annotator}** on "
        f"{rev.created_at:%Y-%m-%d %H:%M} UTC ({how}{took}); "
        f"{rev.n_labelled_px:,} labelled pixels."
    )
    earlier = [r for r in store.reviews(status.tile_id) if r.revision < rev.revision]
    if earlier:
        last = earlier[-1]
        what = "approved" if last.verdict == "approved" else f'sent back: "{last.comment}"'
        st.caption(f"Revision {last.revision} was {what} (by {last.reviewer}).")


def main() -> None:
    store = _common.setup("Review", need="review")
    st.title("Review")
    schema = _common.schema_or_none(store)
    if schema is None:
        st.info("Nothing to review yet: add smears on the **Upload** page and label them.")
        return
    actor = _common.actor()
    _counts(store)
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        {"success": st.success, "warning": st.warning, "error": st.error}[flash[0]](flash[1])
    _picks(store, actor, schema)
    queue = {s.tile_id: s for s in store.review_queue(actor.name)}
    if not queue:
        st.info(
            "Nothing waits for your review: every labelled tile's latest revision has a "
            "verdict, or is your own labelling (another reviewer approves that)."
        )
        return
    if st.session_state.get(TILE_KEY) not in queue:
        st.session_state[TILE_KEY] = next(iter(queue))
    tile_id = st.selectbox(
        f"Tile ({len(queue)} waiting, the oldest save first)",
        list(queue),
        key=TILE_KEY,
        format_func=lambda t: _label(queue[t]),
    )
    status = queue[tile_id]
    revision = status.revision.revision
    rgb = np.asarray(store.tile_image(tile_id))
    mask = store.mask(tile_id, revision)
    left, right = st.columns([3, 2], gap="medium")
    with right:
        _about(store, status)
        _common.legend(schema)
        opacity = st.slider("Mask opacity", 0, 100, 55, step=5, format="%d%%", key="rv_opacity")
        st.button(
            "Approve",
            key="rv_approve",
            type="primary",
            width="stretch",
            on_click=_verdict,
            args=(store, tile_id, revision, True),
        )
        st.text_area(
            "What should change",
            key=COMMENT_KEY,
            placeholder="Required for a request, e.g. 'the nucleus bleeds into the cytoplasm'",
        )
        st.button(
            "Request changes",
            key="rv_request",
            width="stretch",
            on_click=_verdict,
            args=(store, tile_id, revision, False),
        )
        if st.button("Edit, then approve", key="rv_edit", width="stretch"):
            _common.goto_tile(tile_id)
        st.caption(
            "Edit, then approve opens this tile on the Label page. Save your correction "
            "there: it becomes a new revision in your name, and comes back here first in "
            "your queue for you to approve."
        )
    with left:
        shown = overlay(rgb, mask, schema.palette(), opacity / 100)
        a, b = st.columns(2)
        a.image(_crisp(rgb), caption="Tile", width="stretch")
        b.image(_crisp(shown), caption=f"Revision {revision} over the tile", width="stretch")


main()
