"""A direct visit to a page's URL is routed through ``app.py`` (real browser, fresh server).

Streamlit 1.67 runs the files of a ``pages/`` folder beside the entry script in its legacy
multipage mode (no ``app.py``: no shared sidebar, every file listed by its name) until the
process's first ``st.navigation`` call, so the first visit after a restart to ``/label``
would land there. ``pages/_common.py`` hands such a run over to ``app.py`` through a private
Streamlit flag (no supported way keeps a top-level ``pages/`` folder; see
``tests/app/test_routing.py``, which pins the flag to the Streamlit version). This is the
behaviour the flag buys, seen as a user sees it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _browser import BROWSER_MARKS, USER, WAIT_MS, idle, launch, serve, sign_in

from tests._segfixtures import make_workspace

pytestmark = BROWSER_MARKS
# app.py's navigation, in its order; the legacy mode would list "app", "analysis", ... instead.
TITLES = ["Upload", "Label", "Review", "Dataset", "Train", "Suggestions", "Analysis", "Diagnosis",
          "Settings", "Users", "Audit trail"]  # fmt: skip


@pytest.mark.parametrize("path", ["label", "train"])
def test_the_first_visit_after_a_start_to_a_page_url_runs_through_app_py(
    tmp_path: Path, path: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    workspace = make_workspace(tmp_path / "ws")
    with serve(workspace) as url, sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            sign_in(page, url, path)  # the server's first request: the page's URL
            expect(page.get_by_role("heading", name=path.title(), exact=True)).to_be_visible()
            # app.py's shared sidebar and its navigation, not the legacy file list.
            expect(page.get_by_text(f"Signed in as {USER} (admin)")).to_be_visible()
            expect(page.get_by_text(f"Workspace: {workspace}")).to_be_visible()
            idle(page)
            links = page.locator('[data-testid="stSidebarNav"] a')
            # Each link reads "<icon ligature>\n\n<title>"; the title is its last line.
            assert [t.split("\n")[-1] for t in links.all_inner_texts()] == TITLES
            assert page.url.rstrip("/").endswith(f"/{path}")
        finally:
            browser.close()
