"""Double labelling end to end in a real browser (issue 12, item 5): three accounts.

Every tile is in the double-labelled share. ana labelled the second tile of a smear. bob's
Label page opens on that tile (it waits for his independent second label, so it comes before
the tile nobody labelled), says it is a second label and starts him from an unlabelled tile,
not from ana's mask. bob paints and saves; ana's revision is untouched. The reviewer rita then
finds the tile among those to pick a label for and keeps bob's. What the pages said is
checked against the store.

Every wait is on a page condition, never a fixed delay.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _browser import BROWSER_MARKS, WAIT_MS, idle, launch, open_label_page, serve, shown_tile
from _browser import sign_in as browser_sign_in
from _lab import paint_and_save, two_tiles

from dataset import audit
from dataset.schema import DEFAULT_CLASSES
from dataset.settings import set_workspace_setting
from dataset.store import Store
from tests._accounts import add_account

pytestmark = BROWSER_MARKS


def test_a_second_annotator_labels_blind_and_a_reviewer_picks(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    workspace, (unlabelled, waiting) = two_tiles(tmp_path / "ws")
    set_workspace_setting(workspace, "double_label_share", 1.0)
    # ana's first label: all background, so any leukocyte in the second label is bob's.
    background = list(DEFAULT_CLASSES).index("background")
    Store.open(workspace).save_mask(
        waiting, np.full((256, 256), background, np.uint8), annotator="ana"
    )
    for name, role in (("ana", "annotator"), ("bob", "annotator"), ("rita", "reviewer")):
        add_account(workspace, name, role)
    with serve(workspace) as url, sync_playwright() as pw:
        browser = launch(pw)
        try:
            contexts = [
                browser.new_context(viewport={"width": 1400, "height": 1100}) for _ in range(2)
            ]
            for context in contexts:
                context.set_default_timeout(WAIT_MS)
            bob, rita = (c.new_page() for c in contexts)

            save = open_label_page(bob, url, "bob")
            assert shown_tile(bob) == waiting, "the tile waiting for bob's second label first"
            expect(bob.get_by_text("Independent second label.")).to_be_visible()
            expect(
                bob.get_by_text("No second label saved yet: you start from an unlabelled tile.")
            ).to_be_visible()
            paint_and_save(bob, save, 1, 120)
            expect(bob.get_by_text("Independent second label: saved revision 1")).to_be_visible()

            store = Store.open(workspace)
            second = store.second_label(waiting)
            assert second is not None and second.annotator == "bob"
            leukocyte = list(DEFAULT_CLASSES).index("leukocyte")
            assert (store.second_mask(waiting) == leukocyte).any()
            assert (store.latest(waiting).revision, store.latest(waiting).annotator) == (1, "ana")
            assert (store.mask(waiting) == background).all(), "ana's label is untouched"

            browser_sign_in(rita, url, "review", "rita")
            expect(
                rita.get_by_text("Double-labelled tiles to pick a label for (1)")
            ).to_be_visible()
            expect(rita.get_by_text("Second label, by bob")).to_be_visible()
            idle(rita)
            rita.get_by_role("button", name="Use the second").click()
            expect(rita.get_by_text(f"Picked the second label of {waiting}")).to_be_visible()
            idle(rita)
        finally:
            browser.close()

    store = Store.open(workspace)
    latest = store.latest(waiting)
    assert (latest.revision, latest.annotator) == (2, "bob")
    assert (store.mask(waiting) == store.second_mask(waiting)).all()
    assert store.mask_pick(waiting).reviewer == "rita"
    assert store.latest(unlabelled) is None
    picks = [(r.actor, r.object_id, r.after) for r in audit.read(store, action="pick_mask")]
    assert picks == [("rita", waiting, "second")]
