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

import numpy as np
import pytest
from _browser import (
    BROWSER_MARKS,
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
from dataset.schema import DEFAULT_CLASSES
from dataset.store import Store

pytestmark = BROWSER_MARKS
STEPS = 20


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.service import score_unlabelled

    root = tmp_path_factory.mktemp("walk") / "workspace"
    store = Store.open(root)
    # The lab's default classes (the demo alone brings background/cytoplasm/nucleus): the
    # keys test paints erythrocytes, leukocytes and platelets.
    store.init(list(DEFAULT_CLASSES))
    load_demo(store, actor="tester")
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
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    try:
        # While a run is under way the previous run's elements may still be on the page.
        page.wait_for_function(
            "id => Array.from(document.querySelectorAll('code.lbl-tile-id'))"
            ".some(e => e.textContent === id)",
            arg=tile_id,
        )
        idle(page)
        # The new canvas asks for a re-run once it is mounted; press only after that one.
        expect(page.locator("canvas.upper-canvas")).to_have_count(1)
        idle(page)
        expect(page.locator(TILE_ID)).to_have_text(tile_id)
    except (AssertionError, PlaywrightError):
        shown = page.locator(TILE_ID).all_inner_texts()
        where = [order.index(t) if t in order else None for t in shown]
        notes = page.get_by_test_id("stAlert").all_inner_texts()
        raise AssertionError(
            f"{why}: expected tile {order.index(tile_id)} {tile_id} of {len(order)}, the page "
            f"shows {where} {shown}; its notes: {notes}"
        ) from None
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


# Presses per 40 that may be dropped. Button presses read in the script body were lost about
# once in 150 when the new canvas's re-run cut the run short; they are noted by on_click
# callbacks now (0 of 240 dropped under load), and keys are numbered: none may be lost.
MAX_DROPPED = 0


def _press(page, order: list[str], here: str, target: str, press, why: str) -> int:
    """Press once, and again if the press was dropped; returns the number dropped.

    A press must move exactly one tile. A dropped press (the page stays on its tile) is
    counted and pressed again, so the walk goes on and the count is reported; any other tile
    fails at once.
    """
    from playwright.sync_api import expect

    for dropped in range(3):
        press()
        try:
            expect(page.locator(TILE_ID)).not_to_have_text(here, timeout=15_000)
        except AssertionError:
            idle(page)
            if shown_tile(page) == here:
                continue
        _expect_tile(page, order, target, why)
        return dropped
    raise AssertionError(f"{why}: three presses left the page on {here}")


def _walk(page, order: list[str], *, save: bool) -> int:
    """20 tiles forward and 20 back from the tile shown, checking each tile on the way."""
    start = shown_tile(page)
    at = order.index(start)
    dropped = 0
    for step in range(STEPS):
        here, at = order[at], (at + 1) % len(order)
        if save:
            press = lambda: page.keyboard.press("Enter")  # noqa: E731 (save and next)
        elif step % 2:
            press = lambda: page.keyboard.press("ArrowRight")  # noqa: E731
        else:
            press = page.get_by_role("button", name="Next", exact=True).click
        dropped += _press(page, order, here, order[at], press, f"forward {step}, save={save}")
    for step in range(STEPS):
        here, at = order[at], (at - 1) % len(order)
        if step % 2:
            press = lambda: page.keyboard.press("ArrowLeft")  # noqa: E731
        else:
            press = page.get_by_role("button", name="Previous", exact=True).click
        dropped += _press(page, order, here, order[at], press, f"back {step}, save={save}")
    assert order[at] == start
    print(f"walk save={save}: {dropped} of {2 * STEPS} presses dropped")  # shown with -s
    assert dropped <= MAX_DROPPED, f"{dropped} of {2 * STEPS} presses were dropped"
    return dropped


def test_walk_every_order_forward_and_back(app_url: str, workspace: Path, browser) -> None:
    from pages._label_session import store_order, unlabelled_first

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

    # A ranking handed over through the Suggestions page's "Label this": read it off the page.
    page.get_by_role("link", name="Suggestions").click()  # the same session: the name stays
    from playwright.sync_api import expect

    expect(page.locator('[class*="st-key-sugg_label_"] button')).to_have_count(6)
    idle(page)
    ranked = page.evaluate(
        """() => Array.from(document.querySelectorAll('[class*="st-key-sugg_label_"]'))
          .map(el => {
            const key = Array.from(el.classList).find(c => c.startsWith('st-key-sugg_label_'));
            let box = el;
            while (box && !/#\\d+/.test(box.innerText || '')) box = box.parentElement;
            return [Number((box.innerText.match(/#(\\d+)/) || [0, 0])[1]),
                    key.slice('st-key-sugg_label_'.length)];
          })
          .sort((a, b) => a[0] - b[0]).map(p => p[1])"""
    )
    assert len(ranked) == 6, ranked
    page.locator(f".st-key-sugg_label_{ranked[0]} button").click()
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


def _caption(page, text: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_text(text).first).to_be_visible()
    idle(page)


def _stroke(page, x0: float, y0: float, x1: float, y1: float) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    canvas = page.locator("canvas.upper-canvas")
    # A zoom or tile change mounts a new canvas, and its mount asks for one more re-run: for a
    # moment the old and the new canvas are both on the page. Stroke only once one canvas is
    # left after the app is idle (a bounded number of looks, each waiting on the page).
    for _ in range(20):
        expect(canvas).to_have_count(1)
        idle(page)
        try:
            box = canvas.bounding_box(timeout=2_000)
        except PlaywrightError:
            continue
        if box is not None and canvas.count() == 1:
            break
    else:
        raise AssertionError("the Label page kept two canvases")
    page.mouse.move(box["x"] + x0, box["y"] + y0)
    page.mouse.down()
    page.mouse.move(box["x"] + x1, box["y"] + y1, steps=20)
    page.mouse.up()


def test_keys_paint_undo_zoom_and_the_wand(app_url: str, workspace: Path, browser) -> None:
    from playwright.sync_api import expect
    from scipy import ndimage

    from training.service import prefill

    page = _page(browser)
    open_label_page(page, app_url)
    _choose_order(page, "Store order")
    store = Store.open(workspace)
    # A smear whose first tile nobody touched yet (the walks above save and skip tiles).
    last = next(
        m
        for m in reversed(store.smears())
        if store.latest(store.tiles(m.smear_id)[0].tile_id) is None
        and not store.is_skipped(store.tiles(m.smear_id)[0].tile_id)
    )
    page.get_by_role("combobox", name="Jump to smear").click()
    page.get_by_role("option", name=last.label or last.smear_id, exact=True).click()
    tile_id = store.tiles(last.smear_id)[0].tile_id
    expect(page.locator(TILE_ID)).to_have_text(tile_id)
    idle(page)
    assert (store.tile(tile_id).w, store.tile(tile_id).h) == (256, 256)
    assert store.latest(tile_id) is None
    blur(page)

    page.keyboard.press("3")
    _caption(page, "Painting with leukocyte · brush · 16 px")
    page.keyboard.press("e")
    _caption(page, "Painting with eraser")
    page.keyboard.press("3")
    page.keyboard.press("]")
    _caption(page, "Painting with leukocyte · brush · 20 px")
    page.keyboard.press("[")
    _caption(page, "Painting with leukocyte · brush · 16 px")
    show_mask = page.get_by_test_id("stCheckbox").filter(has_text="Show mask").locator("input")
    page.keyboard.press("m")
    expect(show_mask).not_to_be_checked()
    page.keyboard.press("m")
    expect(show_mask).to_be_checked()
    idle(page)

    _stroke(page, 60, 100, 260, 100)
    _caption(page, "1 shape not saved yet")
    page.keyboard.press("Control+z")
    _caption(page, "Pre-fill not saved yet")
    page.keyboard.press("Control+y")
    _caption(page, "1 shape not saved yet")
    page.keyboard.press("Control+z")
    _caption(page, "Pre-fill not saved yet")

    # 4×: the canvas shows tile (0..128, 0..128); canvas (40..200, 40) is tile (10..50, 10).
    page.keyboard.press("z")
    _caption(page, "4×, showing x 0, y 0")
    _stroke(page, 40, 40, 200, 40)
    _caption(page, "1 shape not saved yet")
    page.keyboard.press("Enter")
    expect(page.locator(TILE_ID)).not_to_have_text(tile_id)
    idle(page)
    store = Store.open(workspace)
    mask = store.mask(tile_id)
    rules = prefill(store, tile_id).mask
    leukocyte = store.schema().index("leukocyte")
    assert (mask[9:12, 12:48] == leukocyte).all(), "the stroke, at tile resolution"
    near = np.zeros(mask.shape, dtype=bool)
    near[4:17, 4:57] = True
    np.testing.assert_array_equal(mask[~near], rules[~near])
    assert set(np.unique(mask[near]).tolist()) <= set(np.unique(rules).tolist()) | {leukocyte}

    # The wand: a click inside an erythrocyte the colour rules found fills that cell.
    page.keyboard.press("ArrowLeft")
    expect(page.locator(TILE_ID)).to_have_text(tile_id)
    idle(page)
    # Back to 2× through the Zoom box (the z key was checked above; two quick presses in a
    # row can meet the re-run race that drops a press, see _press).
    zoom = page.get_by_role("combobox", name="Zoom")
    zoom.click()
    page.get_by_role("option", name="2×", exact=True).click()
    idle(page)
    blur(page)
    _caption(page, "2×, showing x 0, y 0")
    page.keyboard.press("w")
    _caption(page, "Painting with leukocyte · wand")
    red = rules == store.schema().index("erythrocyte")
    cells, n = ndimage.label(red)
    sizes = ndimage.sum(red, cells, range(1, n + 1))
    biggest = cells == 1 + int(np.argmax(sizes))
    ys, xs = np.nonzero(ndimage.binary_erosion(biggest, iterations=3))
    y, x = int(ys[len(ys) // 2]), int(xs[len(xs) // 2])
    expect(page.locator("canvas.upper-canvas")).to_have_count(1)
    box = page.locator("canvas.upper-canvas").bounding_box()
    page.mouse.click(box["x"] + 2 * x + 1, box["y"] + 2 * y + 1)
    _caption(page, "1 shape not saved yet")
    page.keyboard.press("s")
    _caption(page, "Saved revision 2")
    mask = Store.open(workspace).mask(tile_id)
    filled = (mask == leukocyte) & (rules != leukocyte)
    assert filled[y, x]
    region = ndimage.label(filled)[0]
    blob = region == region[y, x]
    assert blob.sum() > 100, "the wand filled a region, not a dot"
    # It takes most of the clicked cell. (On this pale demo tile it also runs into the plasma
    # at the default tolerance: the colour flood has no edge to stop at.)
    assert (blob & biggest).sum() > 0.5 * biggest.sum(), "most of the clicked cell"
