"""The one thing only a browser can show: a stroke painted on the Label page's canvas becomes
crisp class pixels in a saved revision, on a blank tile and over the colour-rule pre-fill.

Starts ``streamlit run app.py`` on a free port over a temporary demo workspace and drives
Debian's Chromium with Playwright (never ``playwright install``). Every wait is on a page or
process condition, never a fixed delay.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _browser import BROWSER_MARKS, USER, WAIT_MS, launch, open_label_page, serve
from _lab import paint_leukocyte_stroke

from dataset.demo import load_demo
from dataset.schema import DEFAULT_CLASSES, UNLABELLED
from dataset.store import Store

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e") / "workspace"
    store = Store.open(root)
    # The four default classes: the demo's white cells come in as leukocyte, painted here.
    store.init(list(DEFAULT_CLASSES))
    load_demo(store, actor="tester")
    return root


@pytest.fixture(scope="module")
def app_url(workspace: Path) -> Iterator[str]:
    with serve(workspace) as url:
        yield url


@pytest.fixture
def page(app_url: str):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = launch(pw)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            context.set_default_timeout(WAIT_MS)
            yield context.new_page()
        finally:
            browser.close()


def _next_unlabelled(store: Store) -> str:
    """The tile the Label page opens on: the first nobody labelled yet (none is skipped here)."""
    assert not store.skipped_tile_ids()
    labelled = store.latest_revisions()
    tile_id = next(t.tile_id for t in store.tiles() if t.tile_id not in labelled)
    tile = store.tile(tile_id)
    assert (tile.w, tile.h) == (256, 256), "the demo's first unlabelled tiles are full tiles"
    return tile_id


def _open_label_page(page, app_url: str):
    """The Label page with a name entered; returns the Save button."""
    return open_label_page(page, app_url)


def _paint_and_save(page, save, tmp_path: Path) -> None:
    """Paint leukocyte from tile (30, 50) to (130, 50) and save."""
    from playwright.sync_api import expect

    # Canvas (60, 100) -> (260, 100) is tile (30, 50) -> (130, 50) at 2x.
    box = paint_leukocyte_stroke(page, 100)
    assert round(box["width"]) == 512

    save.click()
    try:
        expect(page.get_by_text("Saved revision 1")).to_be_visible()
    except AssertionError:
        shot = tmp_path / "label-page.png"
        page.screenshot(path=str(shot), full_page=True)
        raise AssertionError(f"No 'Saved' message; the page is in {shot}") from None


def _near_stroke(shape: tuple[int, int], margin: int = 6) -> np.ndarray:
    """Tile pixels within ``margin`` of the painted line (brush 16 screen px = 8 tile px)."""
    near = np.zeros(shape, dtype=bool)
    near[50 - margin : 50 + margin + 1, 30 - margin : 130 + margin + 1] = True
    return near


def test_painted_stroke_is_saved_as_leukocyte_pixels(
    app_url: str, workspace: Path, page, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    store = Store.open(workspace)
    before = store.latest_revisions()
    tile_id = _next_unlabelled(store)
    save = _open_label_page(page, app_url)
    # Painted by hand from a blank tile: without a pre-fill under the stroke, every pixel the
    # stroke missed must stay unlabelled.
    page.get_by_text("Start from a prediction", exact=True).click()
    expect(page.get_by_text("Tiles without a saved mask open blank.")).to_be_visible()
    expect(page.get_by_text("you start from an unlabelled tile")).to_be_visible()
    _paint_and_save(page, save, tmp_path)

    store = Store.open(workspace)
    rev = store.latest(tile_id)
    assert rev is not None and rev.revision == 1
    assert (rev.annotator, rev.source, rev.model_id) == (USER, "manual", None)
    changed = {t for t, r in store.latest_revisions().items() if before.get(t) != r}
    assert changed == {tile_id}, "only the painted tile got a revision"

    mask = store.mask(tile_id)
    leukocyte = store.schema().index("leukocyte")
    # Under the stroke: leukocyte along the whole line.
    assert (mask[48:53, 32:128] == leukocyte).all()
    # Crisp: every pixel is leukocyte or still unlabelled, and the paint stays near the stroke.
    assert set(np.unique(mask).tolist()) == {leukocyte, UNLABELLED}
    assert not (mask[~_near_stroke(mask.shape)] == leukocyte).any()


def test_stroke_over_the_colour_rule_prefill(
    app_url: str, workspace: Path, page, tmp_path: Path
) -> None:
    """Pre-fill is on by default: the saved revision is the rules' mask with the stroke on top."""
    from playwright.sync_api import expect

    from training.service import prefill

    store = Store.open(workspace)
    before = store.latest_revisions()
    tile_id = _next_unlabelled(store)
    rules = prefill(store, tile_id).mask
    save = _open_label_page(page, app_url)
    expect(page.get_by_text("colour rules' pre-fill (no model yet)")).to_be_visible()
    expect(page.get_by_text("you start from the pre-fill of the colour rules")).to_be_visible()
    _paint_and_save(page, save, tmp_path)

    store = Store.open(workspace)
    rev = store.latest(tile_id)
    assert rev is not None and rev.revision == 1
    assert (rev.annotator, rev.source, rev.model_id) == (USER, "prefill", "colour-rules")
    changed = {t for t, r in store.latest_revisions().items() if before.get(t) != r}
    assert changed == {tile_id}, "only the painted tile got a revision"

    mask = store.mask(tile_id)
    leukocyte = store.schema().index("leukocyte")
    assert (mask[48:53, 32:128] == leukocyte).all()
    # Away from the stroke, exactly the pre-fill: the canvas never smudges what it shows.
    far = ~_near_stroke(mask.shape)
    np.testing.assert_array_equal(mask[far], rules[far])
    assert (rules[far] != UNLABELLED).sum() > 1000, "the rules labelled this tile"
