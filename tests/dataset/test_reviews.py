"""Review states in the store: transitions, the queue, four eyes, roles, and two reviewers at
once in two processes (tests/dataset/_review_child.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from dataset.images import encode_png_lossless, smear_id_for
from dataset.roles import Actor, PermissionDenied
from dataset.store import (
    APPROVED,
    CHANGES_REQUESTED,
    UNREVIEWED,
    NewSmear,
    ReviewConflict,
    RevisionConflict,
    Store,
    StoreError,
)

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("_review_child.py")
WATCHDOG_S = 120  # a safety net against a hung child; no test waits on it

RITA = Actor("rita", "reviewer")
ROB = Actor("rob", "reviewer")


@pytest.fixture
def tiles(store: Store, make_smear) -> list[str]:
    rgb = make_smear(192, 64, seed=5).rgb
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 192, 64, label="s.png"))
    return [t.tile_id for t in store.tiles(sid)]


def _save(store: Store, tile_id: str, who: str, value: int = 1):
    t = store.tile(tile_id)
    return store.save_mask(
        tile_id, np.full((t.h, t.w), value, np.uint8), annotator=who, on_latest=True
    )


def test_a_tile_goes_from_unreviewed_to_approved_and_back_with_a_new_revision(
    store: Store, tiles: list[str]
) -> None:
    tid = tiles[0]
    with pytest.raises(StoreError, match="no saved mask yet"):
        store.review_state(tid)
    rev = _save(store, tid, "ana")
    assert store.review_state(tid).state == UNREVIEWED
    review = store.approve(tid, rev.revision, RITA)
    status = store.review_state(tid)
    assert (status.state, status.review, status.revision.revision) == (APPROVED, review, 1)
    _save(store, tid, "ana", value=2)
    assert store.review_state(tid).state == UNREVIEWED  # the state is the latest revision's
    assert [r.revision for r in store.reviews(tid)] == [1]  # the old verdict stays in history
    # A fresh store reads the same from the table.
    again = Store.open(store.root)
    assert again.review_state(tid).state == UNREVIEWED
    assert again.reviews(tid)[0].reviewer == "rita"


def test_a_request_for_changes_needs_a_comment_and_is_sent_back_to_its_author(
    store: Store, tiles: list[str]
) -> None:
    a, b, c = tiles
    for tid in tiles:
        _save(store, tid, "ana")
    with pytest.raises(StoreError, match="needs a comment"):
        store.request_changes(a, 1, RITA, "   ")
    assert store.review_state(a).state == UNREVIEWED
    store.request_changes(b, 1, RITA, "nucleus too small")
    store.request_changes(a, 1, RITA, "missed a platelet")
    assert store.review_state(a).state == CHANGES_REQUESTED
    assert store.review_state(a).review.comment == "missed a platelet"
    sent = store.sent_back("ana")
    assert [(s.tile_id, s.review.comment) for s in sent] == [
        (b, "nucleus too small"),
        (a, "missed a platelet"),
    ]
    assert store.sent_back("bob") == []
    assert store.sent_back_first([a, b, c], "ana") == [b, a, c]
    assert store.sent_back_first([c, a, b], "bob") == [c, a, b]
    assert store.review_counts() == {UNREVIEWED: 1, APPROVED: 0, CHANGES_REQUESTED: 2}
    # The annotator's new revision leaves the sent-back list and is reviewed afresh.
    _save(store, b, "ana", value=2)
    assert [s.tile_id for s in store.sent_back("ana")] == [a]
    assert store.review_state(b).state == UNREVIEWED


def test_the_queue_holds_unreviewed_labelled_tiles_oldest_save_first(
    store: Store, tiles: list[str]
) -> None:
    a, b, c = tiles
    _save(store, b, "ana")
    _save(store, a, "ana")
    _save(store, c, "ana", value=255)  # nothing labelled: nothing to review
    assert [s.tile_id for s in store.review_queue()] == [b, a]
    store.approve(b, 1, RITA)
    assert [s.tile_id for s in store.review_queue()] == [a]
    store.skip(a, annotator="ana")
    assert store.review_queue() == []


def test_nobody_approves_their_own_labelling_but_may_approve_their_correction(
    store: Store, tiles: list[str]
) -> None:
    a, b, _ = tiles
    _save(store, a, "rita")
    _save(store, b, "ana")
    with pytest.raises(PermissionDenied, match="another reviewer must"):
        store.approve(a, 1, RITA)
    assert store.review_state(a).state == UNREVIEWED
    # Rita's own mask is not in her queue; Rob sees it.
    assert [s.tile_id for s in store.review_queue("rita")] == [b]
    assert {s.tile_id for s in store.review_queue("rob")} == {a, b}
    # Edit, then approve: Rita corrects Ana's mask; her correction comes first in her queue.
    _save(store, b, "rita", value=2)
    assert [s.tile_id for s in store.review_queue("rita")] == [b]
    store.approve(b, 2, RITA)
    assert store.review_state(b).state == APPROVED
    # Correcting your own correction is still your own labelling.
    _save(store, a, "rita", value=2)
    with pytest.raises(PermissionDenied):
        store.approve(a, 2, RITA)
    store.approve(a, 2, ROB)


def test_an_annotator_may_not_review(store: Store, tiles: list[str]) -> None:
    _save(store, tiles[0], "ana")
    for verb in ("approve", "request_changes"):
        args = ("fix it",) if verb == "request_changes" else ()
        with pytest.raises(PermissionDenied, match="needs the admin or reviewer role"):
            getattr(store, verb)(tiles[0], 1, Actor("ana", "annotator"), *args)
    assert store.reviews(tiles[0]) == []
    store.approve(tiles[0], 1, Actor("ada", "admin"))


def test_a_revision_gets_one_verdict_and_a_stale_one_is_refused(
    store: Store, tiles: list[str]
) -> None:
    tid = tiles[0]
    _save(store, tid, "ana")
    _save(store, tid, "ana", value=2)
    with pytest.raises(ReviewConflict, match="saved revision 2") as stale:
        store.approve(tid, 1, RITA)
    assert isinstance(stale.value, RevisionConflict)  # the CLI's and pages' conflict
    with pytest.raises(StoreError, match="no revision 7"):
        store.approve(tid, 7, RITA)
    store.approve(tid, 2, RITA)
    with pytest.raises(ReviewConflict, match="already approved by rita"):
        store.request_changes(tid, 2, ROB, "no")
    assert [r.verdict for r in store.reviews(tid)] == [APPROVED]


def _child(workspace: Path, reviewer: str, tile_id: str, revision: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(workspace), reviewer, tile_id, str(revision)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _line(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        pytest.fail(f"child exited ({proc.returncode}) early: {proc.stderr.read()[-2000:]}")
    return line.strip()


@pytest.mark.parametrize("attempt", range(2))
def test_two_reviewers_approving_at_once_record_one_approval_and_one_conflict(
    store: Store, tiles: list[str], attempt: int
) -> None:
    tid = tiles[attempt]
    _save(store, tid, "ana")
    procs = [_child(store.root, name, tid, 1) for name in ("rita", "rob")]
    watchdogs = [threading.Timer(WATCHDOG_S, p.kill) for p in procs]
    for w in watchdogs:
        w.start()
    try:
        for p in procs:
            assert _line(p) == "ready"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outcomes = sorted(_line(p) for p in procs)
    finally:
        for w, p in zip(watchdogs, procs, strict=True):
            w.cancel()
            if p.poll() is None:
                p.kill()
            p.wait()
            for stream in (p.stdin, p.stdout, p.stderr):
                stream.close()
    assert outcomes[0] == "approved"
    assert outcomes[1].startswith("conflict ")
    fresh = Store.open(store.root)
    reviews = fresh.reviews(tid)
    assert len(reviews) == 1 and reviews[0].verdict == APPROVED
    assert f"already approved by {reviews[0].reviewer}" in outcomes[1]
    rows = fresh.tables.read("reviews").to_pylist()
    assert len([r for r in rows if r["tile_id"] == tid]) == 1


def test_each_verdict_is_an_audit_row_and_a_refused_one_is_not(
    store: Store, tiles: list[str]
) -> None:
    from dataset import audit

    first = _save(store, tiles[0], "ana")
    second = _save(store, tiles[1], "ana")
    store.approve(tiles[0], first.revision, RITA)
    store.request_changes(tiles[1], second.revision, ROB, "cell at top left is a platelet")
    with pytest.raises(ReviewConflict):
        store.approve(tiles[0], first.revision, ROB)
    rows = audit.read(store, action="review")
    assert [(r.actor, r.object_id, r.before, r.after) for r in rows] == [
        ("rita", tiles[0], str(first.revision), APPROVED),
        ("rob", tiles[1], str(second.revision), CHANGES_REQUESTED),
    ]
    assert "platelet" in rows[1].detail
