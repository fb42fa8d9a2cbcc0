"""Accounts for tests: create them in a test workspace, and sign in through the app's form.

Tests sign in as a person would (the sign-in form, a real signed session); nothing in the app
knows it is being tested.
"""

from __future__ import annotations

from pathlib import Path

PASSWORD = "test-password-1"
ROOT = Path(__file__).resolve().parents[1]


def add_account(
    workspace: Path, name: str = "tester", role: str = "admin", password: str = PASSWORD
) -> str:
    """Create an account in ``workspace`` (created if missing); returns its name."""
    from dataset.accounts import add_account as add

    add(workspace, name, role, password, by="test")
    return name


def sign_in(at, name: str = "tester", password: str = PASSWORD):
    """Fill the app's sign-in form on an AppTest that shows it, submit, and run."""
    at.text_input(key="auth_name").input(name)
    at.text_input(key="auth_password").input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()


def signed_in_app(script: Path, name: str = "tester", password: str = PASSWORD, timeout=60):
    """An AppTest of ``script`` (app.py) signed in as ``name``; asserts the run was clean.

    AppTest runs every run after the first as a page on its own (Streamlit's legacy
    multipage mode; see ``pages/_common._leave_legacy_pages_mode``), so the form is filled on
    a page every role may open, whose ``setup`` asks for sign-in as ``app.py`` does.
    """
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(script), default_timeout=timeout).run()
    assert not at.exception, at.exception
    at.switch_page("pages/analysis.py").run()
    sign_in(at, name, password)
    assert not at.exception, at.exception
    assert not [e.value for e in at.error if "password" in e.value.lower()], "sign-in failed"
    return at


def ensure_account(workspace: Path, name: str = "tester", role: str = "admin") -> str:
    """``name`` in ``workspace``, created (with :data:`PASSWORD`) unless it exists."""
    from dataset.accounts import list_accounts

    if name not in {a.name for a in list_accounts(workspace)}:
        add_account(workspace, name, role)
    return name


def open_page(page: str, name: str = "tester", role: str = "admin", timeout: float = 180):
    """``page`` (e.g. ``"pages/label.py"``) through app.py on the workspace of
    ``SMEARLAB_WORKSPACE``, signed in as ``name`` (created with ``role`` if missing)."""
    import os

    from streamlit.testing.v1 import AppTest

    ensure_account(Path(os.environ["SMEARLAB_WORKSPACE"]), name, role)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout).run()
    assert not at.exception, at.exception
    at.switch_page(page).run()
    sign_in(at, name)
    assert not at.exception, at.exception
    return at
