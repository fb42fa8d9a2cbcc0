"""Forged identity in the session state is refused on the server (issue 12, tampering).

Who acts is the account of the signed session token, re-read from the accounts table on every
run (:func:`pages._common.actor`); any other key a session could carry (an ``Actor``, a role, the
old free-text name) names nobody. Forged and foreign tokens are in tests/app/test_access.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dataset.images import encode_png_lossless, smear_id_for
from dataset.roles import Actor
from dataset.schema import DEFAULT_CLASSES
from dataset.store import NewSmear, Store
from tests._accounts import ensure_account, open_page

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180
# Keys a forger would try: an Actor object, a role, the old free-text name box.
FORGED = {
    "actor": Actor("mallory", "admin"),
    "role": "admin",
    "user": "admin",
    "annotator": "admin",
    "account": Actor("admin", "admin"),
}


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "workspace"
    store = Store.open(root)
    store.init(list(DEFAULT_CLASSES))
    rgb = np.full((64, 64, 3), (230, 200, 210), np.uint8)
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 64, 64, label="s.png"))
    store.save_mask(store.tiles(sid)[0].tile_id, np.ones((64, 64), np.uint8), annotator="ana")
    for name, role in (("admin", "admin"), ("ana", "annotator")):
        ensure_account(root, name, role)
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(root))
    return root


def _forge(at: AppTest) -> None:
    for key, value in FORGED.items():
        at.session_state[key] = value


def test_identity_keys_without_a_signed_session_sign_nobody_in(ws: Path) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    for page in ("pages/settings.py", "pages/review.py", "pages/label.py"):
        _forge(at)
        at.switch_page(page).run()
        assert not at.exception, at.exception
        assert [t.value for t in at.title] == ["Sign in to SmearLab"], page
        assert "Approve" not in [b.label for b in at.button]


def test_an_annotator_with_forged_admin_keys_is_still_an_annotator(ws: Path) -> None:
    at = open_page("pages/analysis.py", "ana", "annotator")
    _forge(at)
    for page, title, allowed in (
        ("pages/settings.py", "Settings", "admin"),
        ("pages/review.py", "Review", "admin or reviewer"),
        ("pages/users.py", "Users", "admin"),
    ):
        at.switch_page(page).run()
        assert not at.exception, at.exception
        assert [e.value for e in at.error] == [
            f"The {title} page is for the {allowed} role; you are signed in as ana "
            "(annotator). Ask an admin if you need it."
        ], page
    assert "Signed in as **ana** (annotator)" in [m.value for m in at.sidebar.markdown]
    # Nothing was reviewed in anyone's name.
    assert Store.open(ws).reviews(Store.open(ws).tiles()[0].tile_id) == []


def test_a_reviewer_whose_role_was_taken_away_after_the_page_showed_records_nothing(
    ws: Path,
) -> None:
    """The click is judged by the account as it is then, not as it was when the page drew."""
    from dataset import accounts

    ensure_account(ws, "rita", "reviewer")
    at = open_page("pages/review.py", "rita", "reviewer")
    assert [t.value for t in at.title] == ["Review"]
    accounts.set_role(ws, "rita", "annotator", by="admin")
    at.button(key="rv_approve").click().run()
    assert not at.exception, at.exception
    store = Store.open(ws)
    assert store.reviews(store.tiles()[0].tile_id) == []
    assert [e.value for e in at.error] == [
        "The Review page is for the admin or reviewer role; you are signed in as rita "
        "(annotator). Ask an admin if you need it."
    ]
    # The click's refusal waits for the page, should rita be a reviewer again.
    accounts.set_role(ws, "rita", "reviewer", by="admin")
    at.run()
    assert "Nothing was recorded: rita (annotator) may not review" in at.error[0].value
    assert store.reviews(store.tiles()[0].tile_id) == []
