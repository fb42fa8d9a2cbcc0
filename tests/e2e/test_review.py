"""Review end to end in a real browser (issue 12): two accounts in two browser contexts.

An annotator paints and saves a mask on the Label page; a reviewer, signed in in another
context, finds it in the Review page's queue and sends it back with a comment; the annotator's
Label page then opens on that tile (before the tile nobody labelled yet) with the comment above
the canvas; the annotator saves again and the reviewer approves the new revision. What the
pages said is checked against the store through the package functions.

Every wait is on a page condition, never a fixed delay.
"""

from __future__ import annotations

import re
from pathlib import Path

from _browser import BROWSER_MARKS, WAIT_MS, idle, launch, open_label_page, serve, shown_tile
from _browser import sign_in as browser_sign_in
from _lab import paint_and_save, two_tiles

from dataset import audit
from dataset.store import APPROVED, CHANGES_REQUESTED, Store
from tests._accounts import add_account

pytestmark = BROWSER_MARKS

COMMENT = "The cell at the top left is a platelet, not a leukocyte."


def _open_review(page, url: str, tile_id: str, revision: int) -> None:
    """The Review page showing ``revision`` of ``tile_id``, by the annotator ana."""
    from playwright.sync_api import expect

    page.goto(f"{url}/review")
    expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible()
    # The queue's selectbox shows the tile waiting first (its value, not its text).
    shown = page.get_by_role("combobox", name=re.compile(r"^Tile \("))
    expect(shown).to_have_value(re.compile(re.escape(f"{tile_id} · revision {revision} by ana")))
    expect(page.get_by_text(f"Revision {revision} over the tile")).to_be_visible()
    idle(page)


def test_a_sent_back_mask_is_fixed_and_approved(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    workspace, (first, second) = two_tiles(tmp_path / "ws")
    add_account(workspace, "ana", "annotator")
    add_account(workspace, "rita", "reviewer")
    with serve(workspace) as url, sync_playwright() as pw:
        browser = launch(pw)
        try:
            annotator = browser.new_context(viewport={"width": 1400, "height": 1100})
            reviewer = browser.new_context(viewport={"width": 1400, "height": 1100})
            for context in (annotator, reviewer):
                context.set_default_timeout(WAIT_MS)
            ana, rita = annotator.new_page(), reviewer.new_page()

            # The annotator saves a first mask on the first tile.
            save = open_label_page(ana, url, "ana")
            assert shown_tile(ana) == first
            paint_and_save(ana, save, 1, 100)

            # The reviewer, in the other context, sees it in the queue and sends it back.
            browser_sign_in(rita, url, "review", "rita")
            expect(rita.get_by_text("Signed in as rita (reviewer)")).to_be_visible()
            _open_review(rita, url, first, 1)
            rita.get_by_role("textbox", name="What should change").fill(COMMENT)
            idle(rita)
            rita.get_by_role("button", name="Request changes").click()
            expect(
                rita.get_by_text(f"Sent revision 1 of {first} back to its annotator.")
            ).to_be_visible()
            idle(rita)
            status = Store.open(workspace).review_state(first)
            assert (status.revision.revision, status.state) == (1, CHANGES_REQUESTED)
            assert (status.review.reviewer, status.review.comment) == ("rita", COMMENT)

            # The annotator's Label page opens on the sent-back tile, before the unlabelled
            # one, with the comment above the canvas.
            # A fresh load of the page (the session cookie keeps ana signed in).
            ana.goto(f"{url}/label")
            expect(ana.get_by_role("heading", name="Label")).to_be_visible()
            save = ana.get_by_role("button", name="Save", exact=True)
            expect(save).to_be_enabled()
            idle(ana)
            assert shown_tile(ana) == first, "the sent-back tile comes first"
            note = ana.get_by_text("Sent back by rita")
            expect(note).to_be_visible()
            expect(ana.get_by_text(COMMENT)).to_be_visible()
            paint_and_save(ana, save, 2, 200)
            state = Store.open(workspace).review_state(first)
            assert (state.revision.revision, state.state) == (2, "unreviewed")

            # The reviewer approves the new revision.
            _open_review(rita, url, first, 2)
            expect(rita.get_by_text(f'Revision 1 was sent back: "{COMMENT}"')).to_be_visible()
            rita.get_by_role("button", name="Approve", exact=True).click()
            expect(rita.get_by_text(f"Approved revision 2 of {first}.")).to_be_visible()
            idle(rita)
        finally:
            browser.close()

    store = Store.open(workspace)
    status = store.review_state(first)
    assert (status.revision.revision, status.state) == (2, APPROVED)
    assert [r.annotator for r in store.history(first)] == ["ana", "ana"]
    assert [(r.revision, r.verdict, r.reviewer, r.comment) for r in store.reviews(first)] == [
        (1, CHANGES_REQUESTED, "rita", COMMENT),
        (2, APPROVED, "rita", ""),
    ]
    assert store.latest(second) is None, "the other tile was never saved"
    assert store.review_queue("rita") == []
    rows = audit.read(store, action="review")
    assert [(r.actor, r.object_id, r.before, r.after) for r in rows] == [
        ("rita", first, "1", CHANGES_REQUESTED),
        ("rita", first, "2", APPROVED),
    ]
    saves = [(r.actor, r.object_id) for r in audit.read(store, action="save")]
    assert saves == [("ana", first), ("ana", first)]
