"""Who may open which page and press which button (issue 12), through AppTest.

Accounts are created in the test workspace and signed in through the app's own form (or, for
a run of ``app.py`` itself, with a session token issued as the sign-in form issues it); the
app has no test switch.
"""

from __future__ import annotations

import ast
import datetime as dt
import shutil
from pathlib import Path

import pytest
import streamlit
from streamlit.testing.v1 import AppTest

from dataset import accounts
from dataset.demo import load_demo
from dataset.roles import PERMISSIONS, ROLES
from dataset.schema import DEFAULT_CLASSES
from dataset.store import Store
from tests._accounts import PASSWORD, ensure_account, open_page, sign_in

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180  # a loaded machine: the first run of each page imports the stack
SESSION_KEY = "_smearlab_session"


def _app_pages() -> list[tuple[str, str, str, str]]:
    """app.py's PAGES table, read from its source (running app.py needs a browser session)."""
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PAGES":
            return [tuple(row) for row in ast.literal_eval(node.value)]
    raise AssertionError("app.py has no PAGES table")


PAGES = _app_pages()
# What issue 12 asks, page by page: the roles that may open it.
EXPECTED = {
    "Upload": {"annotator", "reviewer", "admin"},
    "Label": {"annotator", "reviewer", "admin"},
    "Review": {"reviewer", "admin"},
    "Dataset": {"annotator", "reviewer", "admin"},
    "Train": {"admin"},
    "Suggestions": {"annotator", "reviewer", "admin"},
    "Analysis": {"annotator", "reviewer", "clinician", "admin"},
    "Diagnosis": {"clinician", "admin"},
    "Settings": {"admin"},
    "Users": {"admin"},
    "Audit trail": {"admin"},
}


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("access") / "workspace"
    store = Store.open(root)
    store.init(list(DEFAULT_CLASSES))
    load_demo(store, actor="tester")
    for role in ROLES:
        ensure_account(root, role, role)  # one account per role, named after it
    return root


@pytest.fixture
def ws(demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = Path(shutil.copytree(demo_template, tmp_path / "workspace"))
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(root))
    return root


def test_every_page_names_its_action_and_the_table_matches_the_issue() -> None:
    assert {title for _, title, _, _ in PAGES} == set(EXPECTED)
    for stem, title, _, action in PAGES:
        assert set(PERMISSIONS[action]) == EXPECTED[title], title
        source = (ROOT / "pages" / f"{stem}.py").read_text(encoding="utf-8")
        assert f'need="{action}"' in source, f"pages/{stem}.py checks another action"


def _navigation(ws: Path, role: str, monkeypatch) -> tuple[AppTest, list[str]]:
    """app.py run for ``role``'s account; returns the AppTest and the visible page titles."""
    calls: list = []
    real = streamlit.navigation

    def spy(pages, **kw):
        calls.append(pages)
        return real(pages, **kw)

    monkeypatch.setattr(streamlit, "navigation", spy)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    # A session token as the sign-in form issues it (the form is tested below).
    at.session_state[SESSION_KEY] = accounts.issue_session(ws, role, idle=dt.timedelta(minutes=30))
    at.run()
    assert not at.exception, at.exception
    return at, [p.title for p in calls[-1] if p.visibility == "visible"]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_exactly_its_pages_and_is_refused_the_others(ws, role, monkeypatch):
    at, visible = _navigation(ws, role, monkeypatch)
    assert visible == [t for _, t, _, _ in PAGES if role in EXPECTED[t]]
    # The default page (what "/" opens) is one the role may use.
    assert at.title and not [e for e in at.error if "Ask an admin" in e.value]
    for stem, title, _, _ in PAGES:
        at.switch_page(f"pages/{stem}.py").run()
        assert not at.exception, (title, at.exception)
        refused = [e.value for e in at.error if "Ask an admin if you need it" in e.value]
        if role in EXPECTED[title]:
            assert not refused, (role, title, refused)
        else:
            assert refused == [
                f"The {title} page is for the {' or '.join(sorted(EXPECTED[title]))} role; "
                f"you are signed in as {role} ({role}). Ask an admin if you need it."
            ]
            # Nothing of the page itself is drawn: a title and the refusal only.
            assert len(at.title) == 1
            assert not at.dataframe and not at.text_input and not at.selectbox


def test_a_page_run_on_its_own_asks_for_sign_in_first(ws) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    for stem, _, _, _ in PAGES:
        at.switch_page(f"pages/{stem}.py").run()
        assert [t.value for t in at.title] == ["Sign in to SmearLab"], stem
        assert not at.sidebar.button, "no sidebar before sign-in"


def test_a_role_change_applies_on_the_next_run(ws) -> None:
    at = open_page("pages/settings.py", "admin")
    assert not at.error
    accounts.add_account(ws, "second", "admin", PASSWORD)
    accounts.set_role(ws, "admin", "annotator")
    at.run()
    assert any("is for the admin role" in e.value for e in at.error)


# ---------------------------------------------------------------------------- actions
def test_release_and_export_follow_the_role(ws) -> None:
    at = open_page("pages/dataset.py", "annotator")
    assert any("for a reviewer or an admin" in c.value for c in at.caption)
    assert not [b for b in at.button if b.label == "Create release"]
    at = open_page("pages/dataset.py", "reviewer", timeout=240)
    at.text_input[0].input("1.0.0")
    at.text_input[1].input("reviewed labels")
    next(b for b in at.button if b.label == "Create release").click().run()
    assert not at.exception, at.exception
    assert any("Release 1.0.0 created" in s.value for s in at.success)
    # The reviewer may release but not export (download) it; an admin may.
    assert any("(an export) is for an admin" in c.value for c in at.caption)
    assert not at.get("download_button")
    at = open_page("pages/dataset.py", "admin")
    assert len(at.get("download_button")) == 2


def test_only_an_admin_saves_the_classes(tmp_path, monkeypatch) -> None:
    root = tmp_path / "fresh"
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(root))
    at = open_page("pages/upload.py", "ana", "annotator")
    at.button(key="up_save_classes").click().run()
    assert any("ana (annotator) may not change the classes" in e.value for e in at.error)
    assert not Store.open(root).is_initialised()
    at = open_page("pages/upload.py", "boss", "admin")
    at.button(key="up_save_classes").click().run()
    assert Store.open(root).is_initialised()


def test_a_clinician_confirms_but_does_not_train_the_classifier(ws) -> None:
    at = open_page("pages/diagnosis.py", "clinician")
    assert not at.error
    assert at.button(key="dx_train_go").disabled
    assert "Training the classifier is for an admin." in [c.value for c in at.caption]
    at = open_page("pages/diagnosis.py", "admin")
    assert "Training the classifier is for an admin." not in [c.value for c in at.caption]


# ---------------------------------------------------------------------------- sessions
def test_the_session_ends_after_the_idle_time_and_not_before(ws, monkeypatch) -> None:
    at = open_page("pages/analysis.py", "annotator")
    start = accounts.clock()
    monkeypatch.setattr(accounts, "clock", lambda: start + dt.timedelta(minutes=29))
    at.run()  # activity: the session is renewed for another 30 minutes
    assert [t.value for t in at.title] == ["Analysis"]
    monkeypatch.setattr(accounts, "clock", lambda: start + dt.timedelta(minutes=58))
    at.run()
    assert [t.value for t in at.title] == ["Analysis"]
    monkeypatch.setattr(accounts, "clock", lambda: start + dt.timedelta(minutes=89))
    at.run()
    assert [t.value for t in at.title] == ["Sign in to SmearLab"]
    assert any("without activity" in i.value for i in at.info)


def test_a_forged_session_state_is_refused(ws, tmp_path) -> None:
    at = open_page("pages/analysis.py", "annotator")
    token = at.session_state[SESSION_KEY]
    payload, signature = token.rsplit(".", 1)
    elsewhere = tmp_path / "elsewhere"
    accounts.add_account(elsewhere, "admin", "admin", PASSWORD)
    for forged in (
        f"{payload}.{signature[::-1]}",
        accounts.issue_session(elsewhere, "admin", idle=dt.timedelta(minutes=30)),
        "admin",
    ):
        at.session_state[SESSION_KEY] = forged
        at.switch_page("pages/settings.py").run()
        assert [t.value for t in at.title] == ["Sign in to SmearLab"], forged


def test_sign_out_and_disable_end_the_session(ws) -> None:
    at = open_page("pages/label.py", "annotator")
    next(b for b in at.sidebar.button if b.label == "Sign out").click().run()
    assert [t.value for t in at.title] == ["Sign in to SmearLab"]
    assert any("signed out" in i.value for i in at.info)
    sign_in(at, "annotator")
    assert [t.value for t in at.title] == ["Label"]
    accounts.disable(ws, "annotator")
    at.run()
    assert [t.value for t in at.title] == ["Sign in to SmearLab"]
    at = open_page("pages/analysis.py", "reviewer")
    sign_in_form = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    sign_in_form.switch_page("pages/analysis.py").run()
    sign_in(sign_in_form, "annotator")
    assert any("disabled" in e.value for e in sign_in_form.error)


def test_failed_sign_ins_lock_the_account_out_across_sessions(ws) -> None:
    first = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    first.switch_page("pages/analysis.py").run()
    for _ in range(5):
        sign_in(first, "reviewer", "wrong-password")
        assert any("Wrong account name or password" in e.value for e in first.error)
    sign_in(first, "reviewer", PASSWORD)
    assert any("Too many failed sign-ins for this account" in e.value for e in first.error)
    # Another browser session (the count is in the workspace, not the session).
    second = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    second.switch_page("pages/analysis.py").run()
    sign_in(second, "reviewer", PASSWORD)
    assert any("try again at" in e.value for e in second.error)
    assert [t.value for t in second.title] == ["Sign in to SmearLab"]
