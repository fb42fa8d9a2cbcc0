"""Walking tile after tile on the Label page, in a real browser: Next, Previous, Save & next
and Skip move exactly one tile in the chosen order, by buttons and by keys, in store order,
unlabelled first and a suggested order handed over by the Suggestions page; the page fits a
1366 × 768 window; its settings outlive a visit to another page.

The tile shown is read from the page (its id is printed above the canvas) after every step and
compared with the order worked out here from the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import (
    CHROMIUM,
    TILE_ID,
    WAIT_MS,
    blur,
    idle,
    launch,
    open_label_page,
    serve,
    shown_tile,
)

from dataset.demo import load_demo
from dataset.store import Store

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]
STEPS = 20


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.service import score_unlabelled

    root = tmp_path_factory.mktemp("walk") / "workspace"
    store = Store.open(root)
    load_demo(store)
    # The random strategy's scores, so the Suggestions page can hand over a ranking.
    score_unlabelled(store, "random", None)
    return root


@pytest.fixture(scope="module")
def app_url(workspace: Path) -> Iterator[str]:
    with serve(workspace) as url:
        yield url


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = launch(pw)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser, width: int = 1400, height: int = 1000):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(WAIT_MS)
    return context.new_page()


def _expect_tile(page, order: list[str], tile_id: str, why: str = "") -> None:
    from playwright.sync_api import expect

    try:
        expect(page.locator(TILE_ID)).to_have_text(tile_id)
    except AssertionError:
        shown = shown_tile(page)
        where = order.index(shown) if shown in order else None
        notes = page.get_by_test_id("stAlert").all_inner_texts()
        raise AssertionError(
            f"{why}: expected tile {order.index(tile_id)} {tile_id} of {len(order)}, the page "
            f"shows {where} {shown}; its notes: {notes}"
        ) from None
    idle(page)
    # Still there once every re-run the new canvas causes is over.
    assert shown_tile(page) == tile_id
    expect(page.get_by_text(f"tile {order.index(tile_id) + 1} of {len(order)}")).to_be_visible()


def _choose_order(page, name: str) -> None:
    from playwright.sync_api import expect

    box = page.get_by_role("combobox", name="Tile order")
    box.click()
    page.get_by_role("option", name=name, exact=True).click()
    expect(box).to_have_value(name)
    idle(page)
    blur(page)


def _walk(page, order: list[str], *, save: bool) -> None:
    """20 tiles forward and 20 back from the tile shown, checking each tile on the way."""
    start = shown_tile(page)
    at = order.index(start)
    for step in range(STEPS):
        at = (at + 1) % len(order)
        if save:
            page.keyboard.press("Enter")  # save and next
        elif step % 2:
            page.keyboard.press("ArrowRight")
        else:
            page.get_by_role("button", name="Next", exact=True).click()
        _expect_tile(page, order, order[at], f"forward step {step}, save={save}")
    for step in range(STEPS):
        at = (at - 1) % len(order)
        if step % 2:
            page.keyboard.press("ArrowLeft")
        else:
            page.get_by_role("button", name="Previous", exact=True).click()
        _expect_tile(page, order, order[at], f"back step {step}, save={save}")
    assert order[at] == start


def test_walk_every_order_forward_and_back(app_url: str, workspace: Path, browser) -> None:
    from pages._label_session import store_order, unlabelled_first
    from training.service import suggest

    page = _page(browser)
    open_label_page(page, app_url)
    blur(page)

    _choose_order(page, "Store order")
    order = store_order(Store.open(workspace))
    _walk(page, order, save=False)
    before = set(Store.open(workspace).latest_revisions())
    _walk(page, order, save=True)
    store = Store.open(workspace)
    saved = set(store.latest_revisions()) - before
    first = order.index(shown_tile(page))
    walked = {order[(first + i) % len(order)] for i in range(STEPS)}
    assert saved and saved <= walked, "Save & next saves the tile it leaves, and only that"
    assert all(store.latest(t).source == "prefill" for t in saved)

    _choose_order(page, "Unlabelled first")
    order = unlabelled_first(Store.open(workspace))
    _walk(page, order, save=False)
    _walk(page, order, save=True)

    # A ranking handed over through the Suggestions page's "Label this".
    ranked = [
        s.tile_id
        for s in suggest(
            Store.open(workspace), "random", 6, diversity="per_smear", score_missing=False
        )
    ]
    page.goto(f"{app_url}/suggestions")
    page.get_by_role("button", name="Label this").first.click()
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="Label")).to_be_visible()
    expect(page.get_by_role("combobox", name="Tile order")).to_have_value(
        "Suggested: random suggestions"
    )
    _expect_tile(page, ranked, ranked[0])
    blur(page)
    _walk(page, ranked, save=False)
    _walk(page, ranked, save=True)

    # Skip moves on by one and marks the tile.
    here = shown_tile(page)
    page.keyboard.press("x")
    _expect_tile(page, ranked, ranked[(ranked.index(here) + 1) % len(ranked)])
    assert Store.open(workspace).is_skipped(here)


def test_jump_to_smear_moves_only_when_picked(app_url: str, workspace: Path, browser) -> None:
    from pages._label_session import store_order

    page = _page(browser)
    open_label_page(page, app_url)
    _choose_order(page, "Store order")
    store = Store.open(workspace)
    order = store_order(store)
    smears = store.smears()
    target = smears[3]
    page.get_by_role("combobox", name="Jump to smear").click()
    page.get_by_role("option", name=target.label or target.smear_id, exact=True).click()
    first = next(t for t in order if store.tile(t).smear_id == target.smear_id)
    _expect_tile(page, order, first)
    blur(page)
    for step in range(1, 6):
        page.keyboard.press("ArrowRight")
        _expect_tile(page, order, order[order.index(first) + step])


def test_the_page_fits_a_small_laptop_and_keeps_its_settings(
    app_url: str, browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = _page(browser, 1366, 768)
    open_label_page(page, app_url)
    expect(page.get_by_test_id("stSidebar")).to_be_visible()
    canvas = page.locator("canvas.upper-canvas")
    expect(canvas).to_have_count(1)  # a re-run may show the old canvas for a moment
    expect(canvas).to_be_visible()
    page.screenshot(path=str(tmp_path / "label-1366x768.png"))
    for what in (
        page.get_by_role("button", name="Save & next"),
        page.get_by_role("button", name="Next", exact=True),
        canvas,
        page.get_by_test_id("stRadio").filter(has_text="Paint with"),
    ):
        box = what.bounding_box()
        assert box is not None
        assert box["y"] >= 0 and box["y"] + box["height"] <= 768, (what, box)
        assert box["x"] + box["width"] <= 1366, (what, box)
    assert round(canvas.bounding_box()["width"]) == 512, "the canvas shows the tile at 2×"
    assert page.evaluate("() => document.scrollingElement.scrollTop") == 0

    # Settings chosen here stay after a visit to another page.
    _choose_order(page, "Store order")
    page.get_by_test_id("stRadio").filter(has_text="Paint with").get_by_text(
        "4 platelet", exact=True
    ).click()
    idle(page)
    blur(page)
    page.keyboard.press("]")
    expect(page.get_by_text("brush · 20 px")).to_be_visible()
    page.get_by_role("link", name="Dataset").click()
    expect(page.get_by_role("heading", name="Dataset")).to_be_visible()
    page.get_by_role("link", name="Label").click()
    expect(page.get_by_role("heading", name="Label")).to_be_visible()
    expect(page.get_by_role("combobox", name="Tile order")).to_have_value("Store order")
    expect(page.get_by_text("Painting with platelet · brush · 20 px")).to_be_visible()
