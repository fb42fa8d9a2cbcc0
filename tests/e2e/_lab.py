"""What the two-account browser tests share: a small two-tile workspace and painting a stroke."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _browser import idle

from dataset.images import encode_png_lossless, smear_id_for
from dataset.schema import DEFAULT_CLASSES
from dataset.store import NewSmear, Store


def two_tiles(root: Path) -> tuple[Path, list[str]]:
    """One 512 x 256 smear cut into two 256 x 256 tiles, nothing labelled; the tile ids."""
    store = Store.open(root)
    store.init(list(DEFAULT_CLASSES), tile_size=256)
    rgb = np.full((256, 512, 3), (230, 200, 210), np.uint8)
    yy, xx = np.mgrid[:256, :512]
    for cy, cx in ((60, 80), (180, 200), (90, 340), (170, 450)):
        rgb[(yy - cy) ** 2 + (xx - cx) ** 2 < 400] = (120, 40, 140)
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 512, 256, label="review.png"))
    return root, [t.tile_id for t in store.tiles(sid)]


def paint_leukocyte_stroke(page, y: int) -> dict:
    """Paint leukocyte across the canvas from x 60 to 260 at canvas row ``y``, and wait until
    the page counts it unsaved; returns the canvas's bounding box."""
    from playwright.sync_api import expect

    page.get_by_test_id("stRadio").filter(has_text="Paint with").get_by_text(
        "3 leukocyte", exact=True
    ).click()
    expect(page.get_by_text("Painting with leukocyte")).to_be_visible()
    idle(page)
    canvas = page.locator("canvas.upper-canvas")
    expect(canvas).to_have_count(1)  # a re-run may show the old canvas for a moment
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 60, box["y"] + y)
    page.mouse.down()
    page.mouse.move(box["x"] + 260, box["y"] + y, steps=25)
    page.mouse.up()
    expect(page.get_by_text("1 shape not saved yet")).to_be_visible()
    idle(page)
    return box


def paint_and_save(page, save, revision: int, y: int) -> None:
    """Paint a leukocyte stroke across the canvas at canvas row ``y`` and save."""
    from playwright.sync_api import expect

    paint_leukocyte_stroke(page, y)
    save.click()
    expect(page.get_by_text(f"Saved revision {revision}")).to_be_visible()
    idle(page)
