"""The Review page (approve, request changes with and without a comment, a verdict that came
second, edit then approve) and the Label page's sent-back tiles, through AppTest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dataset.images import encode_png_lossless, smear_id_for
from dataset.roles import Actor
from dataset.store import APPROVED, CHANGES_REQUESTED, UNREVIEWED, NewSmear, Store
from tests._accounts import open_page

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_smear) -> tuple[Path, list[str]]:
    """Four 64-px tiles; ana saved the first three, in order."""
    root = tmp_path / "workspace"
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(root))
    store = Store.open(root)
    store.init(tile_size=64)
    rgb = make_smear(256, 64, seed=6).rgb
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 256, 64, label="s.png"))
    ids = [t.tile_id for t in store.tiles(sid)]
    for tid in ids[:3]:
        store.save_mask(tid, np.ones((64, 64), np.uint8), annotator="ana")
    return root, ids


# Who is who in these tests: reviewers review, annotators label.
ROLES = {"rita": "reviewer", "rob": "reviewer", "ana": "annotator", "bob": "annotator"}


@pytest.fixture
def router() -> Path:
    return ROOT / "app.py"


def _open(router: Path, page: str, name: str, role: str | None = None) -> AppTest:
    """``page`` through ``app.py``, signed in as ``name`` with ``role`` (else the one
    ``ROLES`` gives it)."""
    at = open_page(f"pages/{page}", name, role or ROLES[name], timeout=TIMEOUT)
    assert not at.exception, at.exception
    return at


def _texts(elements) -> list[str]:
    return [e.value for e in elements]


def test_the_queue_starts_at_the_oldest_save_and_approve_records_it(ws, router) -> None:
    root, ids = ws
    at = _open(router, "review.py", "rita")
    assert [t.value for t in at.title] == ["Review"]
    assert at.selectbox(key="rv_tile").value == ids[0]
    assert at.selectbox(key="rv_tile").options == [
        at.selectbox(key="rv_tile").format_func(t) for t in ids[:3]
    ]
    at.button(key="rv_approve").click().run()
    assert not at.exception, at.exception
    assert Store.open(root).review_state(ids[0]).state == APPROVED
    assert any(f"Approved revision 1 of {ids[0]}" in s for s in _texts(at.success))
    assert at.selectbox(key="rv_tile").value == ids[1]  # on to the next oldest


def test_request_changes_needs_a_comment_and_then_sends_the_tile_back(ws, router) -> None:
    root, ids = ws
    at = _open(router, "review.py", "rita")
    at.button(key="rv_request").click().run()
    assert any("needs a comment" in e for e in _texts(at.error))
    assert Store.open(root).review_state(ids[0]).state == UNREVIEWED
    at.text_area(key="rv_comment").input("nucleus bleeds into the cytoplasm").run()
    at.button(key="rv_request").click().run()
    assert not at.exception, at.exception
    status = Store.open(root).review_state(ids[0])
    assert status.state == CHANGES_REQUESTED
    assert status.review.comment == "nucleus bleeds into the cytoplasm"
    assert status.review.reviewer == "rita"
    assert at.text_area(key="rv_comment").value == ""


def test_a_verdict_that_comes_second_is_not_recorded_and_says_who_came_first(ws, router) -> None:
    root, ids = ws
    at = _open(router, "review.py", "rita")
    Store.open(root).approve(ids[0], 1, Actor("rob", "reviewer"))  # in another session
    at.button(key="rv_approve").click().run()
    assert any("already approved by rob" in w for w in _texts(at.warning))
    assert [r.reviewer for r in Store.open(root).reviews(ids[0])] == ["rob"]


def test_own_labelling_is_left_to_another_reviewer(ws, router) -> None:
    at = _open(router, "review.py", "ana", role="reviewer")  # ana labelled every tile
    assert "rv_tile" not in [s.key for s in at.selectbox]
    assert any("Nothing waits for your review" in i for i in _texts(at.info))


def test_edit_then_approve_opens_the_tile_on_the_label_page(ws, router) -> None:
    _, ids = ws
    at = _open(router, "review.py", "rita")
    at.selectbox(key="rv_tile").set_value(ids[1]).run()
    at.button(key="rv_edit").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Label"]
    assert at.session_state["label_tile_id"] == ids[1]


def test_the_label_page_opens_sent_back_tiles_first_with_the_comment(ws, router) -> None:
    root, ids = ws
    store = Store.open(root)
    store.request_changes(ids[2], 1, Actor("rita", "reviewer"), "missed the platelet")
    at = _open(router, "label.py", "ana")
    assert at.session_state["label_tile_id"] == ids[2]
    assert any("missed the platelet" in w and "rita" in w for w in _texts(at.warning))
    assert any("tile 1 of 4" in m for m in _texts(at.markdown))
    # Someone else's walk is not reordered, and shows the request only on that tile.
    other = _open(router, "label.py", "bob")
    assert other.session_state["label_tile_id"] != ids[2]
    assert not any("missed the platelet" in w for w in _texts(other.warning))


def test_the_page_runs_on_an_empty_and_on_the_demo_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, router: Path
) -> None:
    from dataset.demo import load_demo

    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(tmp_path / "empty"))
    at = _open(router, "review.py", "rita")
    assert [t.value for t in at.title] == ["Review"] and not at.error
    demo = tmp_path / "demo"
    load_demo(Store.open(demo), actor="tester")
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(demo))
    at = _open(router, "review.py", "rita")
    assert not at.error, _texts(at.error)
    assert len(at.selectbox(key="rv_tile").options) == len(Store.open(demo).review_queue())
    assert len(at.image) == 2  # the tile, and its mask over it


def test_the_dataset_page_releases_approved_tiles_only_without_names(ws, router) -> None:
    import pyarrow.parquet as pq

    root, ids = ws
    Store.open(root).approve(ids[1], 1, Actor("rita", "reviewer"))
    at = _open(router, "dataset.py", "rita")
    assert "1 of 3 labelled" in at.checkbox(key="ds_approved_only").label
    at.text_input[0].input("1.0.0")
    at.text_input[1].input("approved only")
    at.checkbox(key="ds_approved_only").check()
    at.button(key="FormSubmitter:ds_release-Create release").click().run()
    assert not at.exception, at.exception
    assert any("Release 1.0.0 created with 1 tiles" in s for s in _texts(at.success))
    path = root / "releases" / "1.0.0"
    rows = [r for f in (path / "data").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert [r["tile_id"] for r in rows] == [ids[1]]
    assert rows[0]["annotator"] != "ana"  # a pseudonymous key unless the lab opts in
    assert "approved tiles only" in (path / "README.md").read_text()
