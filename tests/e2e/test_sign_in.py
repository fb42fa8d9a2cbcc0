"""Sign-in in a real browser (issue 12): the first-run admin, the session cookie across
reloads and page URLs, sign-out, and a page a role may not use."""

from __future__ import annotations

from pathlib import Path

import pytest
from _browser import BROWSER_MARKS, WAIT_MS, idle, launch, serve, sign_in

from dataset import accounts
from tests._accounts import PASSWORD, add_account

pytestmark = BROWSER_MARKS


def _session_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == accounts.SESSION_COOKIE), None)


def test_first_run_creates_the_admin_and_the_cookie_survives_reloads(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    workspace = tmp_path / "ws"
    with serve(workspace, account=False) as url, sync_playwright() as pw:
        browser = launch(pw)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            page = context.new_page()
            page.goto(f"{url}/label")
            expect(page.get_by_role("heading", name="Create the admin account")).to_be_visible()
            page.get_by_role("textbox", name="Account").fill("lead")
            page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
            page.get_by_role("textbox", name="Repeat the password").fill(PASSWORD)
            page.get_by_role("button", name="Create the admin account").click()
            expect(page.get_by_text("Signed in as lead (admin)")).to_be_visible()
            # The page asked for at first opens once signed in.
            expect(page.get_by_role("heading", name="Label", exact=True)).to_be_visible()
            assert [(a.name, a.role) for a in accounts.list_accounts(workspace)] == [
                ("lead", "admin")
            ]
            page.wait_for_function(f"() => document.cookie.includes('{accounts.SESSION_COOKIE}=')")
            cookie = _session_cookie(context)
            assert cookie["sameSite"] == "Strict" and cookie["path"] == "/"
            assert accounts.check_session(workspace, cookie["value"]).actor.name == "lead"
            # A reload and another page's URL, in the same browser: still signed in.
            page.reload()
            expect(page.get_by_text("Signed in as lead (admin)")).to_be_visible()
            page.goto(f"{url}/settings")
            expect(page.get_by_role("heading", name="Settings")).to_be_visible()
            expect(page.get_by_text("Signed in as lead (admin)")).to_be_visible()
            # Another browser has no cookie: it is asked to sign in.
            stranger = browser.new_context().new_page()
            stranger.goto(f"{url}/settings")
            expect(stranger.get_by_role("heading", name="Sign in to SmearLab")).to_be_visible()
            # Sign out: the cookie goes, and the old value signs nobody in any more.
            old = cookie["value"]
            idle(page)
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("heading", name="Sign in to SmearLab")).to_be_visible()
            page.wait_for_function(f"() => !document.cookie.includes('{accounts.SESSION_COOKIE}=')")
            with pytest.raises(accounts.SessionInvalid):
                accounts.check_session(workspace, old)
            page.reload()
            expect(page.get_by_role("heading", name="Sign in to SmearLab")).to_be_visible()
        finally:
            browser.close()


def test_an_annotator_sees_their_pages_and_a_forbidden_url_is_refused(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests._segfixtures import make_workspace

    expect.set_options(timeout=WAIT_MS)
    workspace = make_workspace(tmp_path / "ws")
    add_account(workspace, "ana", "annotator")
    with serve(workspace) as url, sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            sign_in(page, url, "", "ana")
            links = page.locator('[data-testid="stSidebarNav"] a')
            titles = [t.split("\n")[-1] for t in links.all_inner_texts()]
            assert titles == ["Upload", "Label", "Dataset", "Suggestions", "Analysis"]
            page.goto(f"{url}/train")
            expect(page.get_by_text("The Train page is for the admin role")).to_be_visible()
            expect(page.get_by_role("button", name="Train from scratch")).to_have_count(0)
        finally:
            browser.close()
