"""Uploading smears in a real browser: the page's header counts the smears just added.

The header ("The workspace holds N smears in M tiles") is drawn above the upload form; before
this test existed it kept the counts from before the upload until the next visit.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _browser import BROWSER_MARKS, WAIT_MS, idle, launch, serve, sign_in
from PIL import Image

from dataset.store import Store

pytestmark = BROWSER_MARKS
TILE = 64


def smear_png(seed: int, width: int = 150, height: int = 100) -> bytes:
    """A distinct noisy picture (so no upload is a duplicate of another)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dataset.ingest import SmearMeta, ingest_files

    root = tmp_path_factory.mktemp("upload") / "workspace"
    store = Store.open(root)
    store.init(["background", "erythrocyte", "leukocyte", "platelet"], tile_size=TILE)
    ingest_files(store, [("first.png", smear_png(0))], SmearMeta(), actor="tester")
    return root


@pytest.fixture(scope="module")
def app_url(workspace: Path) -> Iterator[str]:
    with serve(workspace) as url:
        yield url


def test_header_counts_the_smears_an_upload_added(app_url: str, workspace: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            sign_in(page, app_url, "upload")
            header = page.get_by_text(re.compile(r"The workspace holds"))
            before = sum(s.n_tiles for s in Store.open(workspace).smears())
            expect(header).to_contain_text(f"1 smears in {before} tiles")
            page.locator('input[type="file"]').set_input_files(
                [
                    {"name": f"new-{i}.png", "mimeType": "image/png", "buffer": smear_png(i)}
                    for i in (1, 2)
                ]
            )
            page.get_by_role("button", name="Add to workspace").click()
            expect(page.get_by_text(re.compile(r"This upload: 2 smears added"))).to_be_visible()
            idle(page)
            stored = Store.open(workspace).smears()
            n_tiles = sum(s.n_tiles for s in stored)
            assert len(stored) == 3
            expect(header).to_contain_text(f"3 smears in {n_tiles} tiles")
        finally:
            browser.close()
