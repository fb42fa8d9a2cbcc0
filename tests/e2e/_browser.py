"""Start SmearLab and drive Debian's Chromium: shared by the browser tests and the browser bench.

``serve(workspace)`` runs ``streamlit run app.py`` on a free port over ``workspace`` (with the
admin account :data:`USER` created in it first, unless ``account=False``) and yields its URL;
``browser(pw)`` launches /usr/bin/chromium (never ``playwright install``); ``sign_in`` signs
in through the app's form, after which the browser's session cookie keeps the context signed
in. Every wait here is on a page or process condition, never a fixed delay.
"""

from __future__ import annotations

import os
import re
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dataset.accounts import SESSION_COOKIE

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 90
WAIT_MS = 60_000
# Every browser test module: `pytestmark = BROWSER_MARKS`.
BROWSER_MARKS = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]
TILE_ID = "code.lbl-tile-id"  # the Label page shows the current tile's id here
USER = "e2e-painter"  # the admin account serve() creates (tests/_accounts.PASSWORD)
_URL_LINE = re.compile(rb"URL:\s*(\S+)\s*\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_url(proc: subprocess.Popen, deadline: float) -> str:
    """Read the server's output until it prints its URL (or dies, or the deadline passes)."""
    fd = proc.stdout.fileno()
    text = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        # Raw reads: a buffered readline could hold the URL line while select waits on the fd.
        while not _URL_LINE.search(text) and time.monotonic() < deadline:
            if not sel.select(timeout=deadline - time.monotonic()):
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break  # the server exited
            text += chunk
    found = _URL_LINE.search(text)
    if found:
        return found.group(1).decode()
    raise AssertionError("Streamlit did not start:\n" + text.decode(errors="replace")[-4000:])


@contextmanager
def serve(workspace: Path, root: Path = ROOT, account: bool = True) -> Iterator[str]:
    """SmearLab (the checkout at ``root``) over ``workspace`` on a free local port; yields its
    base URL. ``account``: create the admin account :data:`USER` first (if missing)."""
    if account:
        from tests._accounts import ensure_account

        ensure_account(workspace, USER, "admin")
    port = free_port()
    env = {**os.environ, "SMEARLAB_WORKSPACE": str(workspace), "PYTHONUNBUFFERED": "1"}
    env.pop("SMEARLAB_ANNOTATOR", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            # Nothing changes on disk during the run; watching .venv only costs CPU.
            "--server.fileWatcherType",
            "none",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_url(proc, time.monotonic() + START_TIMEOUT_S)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def launch(pw):
    """Debian's Chromium, headless."""
    return pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)


def idle(page) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || document.querySelector('[data-testid=\"stStatusWidget\"]').offsetParent === null"
    )


def sign_in(page, app_url: str, path: str = "", name: str = USER, password: str | None = None):
    """Open ``app_url/path`` and sign in through the app's form (the page then shows)."""
    from playwright.sync_api import expect

    from tests._accounts import PASSWORD

    expect.set_options(timeout=WAIT_MS)
    page.goto(f"{app_url}/{path}")
    expect(page.get_by_role("heading", name="Sign in to SmearLab")).to_be_visible()
    page.get_by_role("textbox", name="Account").fill(name)
    page.get_by_role("textbox", name="Password").fill(password or PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
    idle(page)
    # The page sets the session cookie from a script it renders; a page opened by URL before
    # that ran would ask to sign in again. Wait for the cookie itself.
    page.wait_for_function(f"() => document.cookie.includes({SESSION_COOKIE + '='!r})")


def open_label_page(page, app_url: str, name: str = USER):
    """The Label page, signed in as ``name``; returns the Save button."""
    from playwright.sync_api import expect

    sign_in(page, app_url, "label", name)
    expect(page.get_by_role("heading", name="Label")).to_be_visible()
    save = page.get_by_role("button", name="Save", exact=True)
    expect(save).to_be_enabled()
    idle(page)
    return save


def shown_tile(page) -> str:
    return page.locator(TILE_ID).inner_text()


def blur(page) -> None:
    """Take the focus off any widget, so page keys act (they ignore text boxes)."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
