"""Double labelling in the store: the share, the second label's own table, who may give it,
what each annotator sees, and the reviewer's pick (dataset/store/second_labels.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dataset import audit
from dataset.images import encode_png_lossless, smear_id_for
from dataset.roles import Actor, PermissionDenied
from dataset.settings import SettingsError, get_settings, set_workspace_setting
from dataset.store import (
    FIRST,
    SECOND,
    NewSmear,
    ReviewConflict,
    RevisionConflict,
    Store,
    StoreError,
    in_double_share,
)
from dataset.store.second_labels import share_point

RITA = Actor("rita", "reviewer")


@pytest.fixture
def tiles(store: Store, make_smear) -> list[str]:
    rgb = make_smear(192, 64, seed=5).rgb
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 192, 64, label="s.png"))
    set_workspace_setting(store.root, "double_label_share", 1.0)  # every tile labelled twice
    return [t.tile_id for t in store.tiles(sid)]


def _mask(store: Store, tile_id: str, value: int) -> np.ndarray:
    t = store.tile(tile_id)
    return np.full((t.h, t.w), value, np.uint8)


# ------------------------------------------------------------------------------ the share
def test_the_share_is_chosen_by_a_hash_of_the_tile_id_close_to_the_setting() -> None:
    ids = [f"smear{i // 50:04d}_{i % 50:03d}" for i in range(20_000)]
    for share in (0.05, 0.3):
        chosen = sum(in_double_share(t, share) for t in ids) / len(ids)
        # 20 000 draws: the binomial standard deviation is at most 0.0035; allow 4 of them.
        assert abs(chosen - share) < 0.014, (share, chosen)
    # Stable across runs and machines: a pinned constant of SHA-256 (no per-process hash
    # seed). Changing it would move existing workspaces' tiles in or out of the share.
    assert share_point("abc") == pytest.approx(0.3436190, abs=1e-7)
    # Growing the share keeps every tile that was in.
    assert all(in_double_share(t, 0.3) for t in ids if in_double_share(t, 0.05))
    assert not any(in_double_share(t, 0.0) for t in ids[:500])
    assert all(in_double_share(t, 1.0) for t in ids[:500])


def test_the_share_is_a_workspace_setting_of_five_percent_checked_on_the_way_in(
    workspace,
) -> None:
    assert get_settings(workspace=workspace).double_label_share == 0.05
    set_workspace_setting(workspace, "double_label_share", "0.2")
    assert get_settings(workspace=workspace).double_label_share == 0.2
    for bad in ("1.5", "-0.1", "half"):
        with pytest.raises(SettingsError, match=rf"'{bad}' is not a valid double_label_share"):
            set_workspace_setting(workspace, "double_label_share", bad)


# ------------------------------------------------------------------------------ the two labels
def test_a_second_annotator_saves_on_a_blank_base_into_the_second_label(
    store: Store, tiles: list[str]
) -> None:
    tid = tiles[0]
    lane, first = store.save_label(tid, _mask(store, tid, 1), annotator="ana")
    assert lane == FIRST and first.revision == 1
    # bob opened the tile blank before ana saved: an ordinary save would conflict.
    with pytest.raises(RevisionConflict):
        store.save_mask(tid, _mask(store, tid, 2), annotator="bob", base_revision=None)
    lane, second = store.save_label(tid, _mask(store, tid, 2), annotator="bob")
    assert lane == SECOND and second.revision == 1 and second.annotator == "bob"
    # The ordinary revisions (training, releases, review) still hold ana's mask only.
    assert store.latest(tid).revision == 1 and store.latest(tid).annotator == "ana"
    assert (store.mask(tid) == 1).all() and (store.second_mask(tid) == 2).all()
    # bob goes on with his own second label, and a stale base of his own conflicts.
    lane, again = store.save_label(tid, _mask(store, tid, 3), annotator="bob", base_revision=1)
    assert (lane, again.revision) == (SECOND, 2)
    with pytest.raises(RevisionConflict):
        store.save_label(tid, _mask(store, tid, 3), annotator="bob", base_revision=1)
    saves = [r for r in audit.read(store, action="save") if r.object_id == tid]
    assert [(r.actor, json.loads(r.detail)) for r in saves][1:] == [
        ("bob", {"lane": "second", "source": "manual"}),
        ("bob", {"lane": "second", "source": "manual"}),
    ]


def test_the_second_annotator_never_starts_from_the_first_mask(
    store: Store, tiles: list[str]
) -> None:
    tid = tiles[0]
    store.save_label(tid, _mask(store, tid, 1), annotator="ana")
    bob = store.label_base(tid, "bob")
    assert bob.lane == SECOND and bob.revision is None
    assert (bob.mask == 255).all()  # blank, not ana's mask
    ana = store.label_base(tid, "ana")
    assert ana.lane == FIRST and ana.revision.revision == 1 and (ana.mask == 1).all()
    store.save_label(tid, _mask(store, tid, 2), annotator="bob")
    bob = store.label_base(tid, "bob")
    assert bob.lane == SECOND and bob.revision.revision == 1 and (bob.mask == 2).all()
    # A third person works on the ordinary revisions (a correction), never a third label.
    carl = store.label_base(tid, "carl")
    assert carl.lane == FIRST and (carl.mask == 1).all()


def test_a_third_independent_label_is_refused_with_who_gave_the_two(
    store: Store, tiles: list[str]
) -> None:
    tid = tiles[0]
    store.save_label(tid, _mask(store, tid, 1), annotator="ana")
    store.save_label(tid, _mask(store, tid, 2), annotator="bob")
    third = "already has its two independent labels, by ana and by bob; a third"
    with pytest.raises(StoreError, match=third):
        store.save_label(tid, _mask(store, tid, 3), annotator="carl")  # a blank base
    with pytest.raises(StoreError, match=third):
        store.save_second_mask(tid, _mask(store, tid, 3), annotator="carl")
    # Correcting the tile on top of its latest revision is ordinary work.
    lane, rev = store.save_label(tid, _mask(store, tid, 3), annotator="carl", base_revision=1)
    assert (lane, rev.revision) == (FIRST, 2)


def test_one_person_is_never_both_annotators_of_a_tile(store: Store, tiles: list[str]) -> None:
    tid = tiles[0]
    store.save_label(tid, _mask(store, tid, 1), annotator="ana")
    assert store.label_lane(tid, "ana") == FIRST
    with pytest.raises(StoreError, match=r"ana saved revision 1 of tile .* never both annotators"):
        store.save_second_mask(tid, _mask(store, tid, 2), annotator="ana")
    # A blank-base save by ana herself stays an ordinary save (and conflicts as ever).
    with pytest.raises(RevisionConflict):
        store.save_label(tid, _mask(store, tid, 2), annotator="ana")


def test_a_second_label_needs_the_share_and_a_first_label(store: Store, tiles: list[str]) -> None:
    tid = tiles[0]
    with pytest.raises(StoreError, match="no first label yet"):
        store.save_second_mask(tid, _mask(store, tid, 2), annotator="bob")
    store.save_label(tid, _mask(store, tid, 1), annotator="ana")
    set_workspace_setting(store.root, "double_label_share", 0.0)
    assert store.label_lane(tid, "bob") == FIRST
    with pytest.raises(StoreError, match=r"not among the double-labelled tiles"):
        store.save_second_mask(tid, _mask(store, tid, 2), annotator="bob")


# ------------------------------------------------------------------------------ the pick
def test_until_a_pick_the_first_label_is_used_then_the_picked_one(
    store: Store, tiles: list[str]
) -> None:
    a, b = tiles[0], tiles[1]
    for tid in (a, b):
        store.save_label(tid, _mask(store, tid, 1), annotator="ana")
        store.save_label(tid, _mask(store, tid, 2), annotator="bob")
    # What training and releases read: the ordinary latest revisions, ana's.
    assert {t: r.annotator for t, r in store.latest_revisions().items()} == {a: "ana", b: "ana"}
    pick = store.pick_mask(a, SECOND, RITA)
    assert (pick.lane, pick.reviewer, pick.revision) == (SECOND, "rita", 2)
    latest = store.latest(a)
    assert (latest.revision, latest.annotator) == (2, "bob") and (store.mask(a) == 2).all()
    assert store.pick_mask(b, FIRST, RITA).revision == 1 and store.latest(b).revision == 1
    # One pick per tile; the second label is closed after it.
    with pytest.raises(ReviewConflict, match="rita already picked the second label"):
        store.pick_mask(a, FIRST, Actor("rob", "reviewer"))
    with pytest.raises(StoreError, match="second label is closed"):
        store.save_second_mask(a, _mask(store, a, 3), annotator="bob", on_latest=True)
    assert store.label_lane(a, "bob") == FIRST
    rows = [
        (r.actor, r.object_id, r.after, json.loads(r.detail))
        for r in audit.read(store, action="pick_mask")
    ]
    assert rows == [
        ("rita", a, "second", {"revision": 2, "first": "ana", "second": "bob"}),
        ("rita", b, "first", {"revision": 1, "first": "ana", "second": "bob"}),
    ]
    # Picking the second saved bob's mask in his name, by rita's hand.
    save = [r for r in audit.read(store, action="save") if r.object_id == a][-1]
    assert (save.actor, save.after) == ("rita", "2")


def test_a_pick_needs_a_reviewer_who_is_neither_annotator_and_two_labels(
    store: Store, tiles: list[str]
) -> None:
    tid = tiles[0]
    store.save_label(tid, _mask(store, tid, 1), annotator="ana")
    with pytest.raises(StoreError, match="no second label yet"):
        store.pick_mask(tid, FIRST, RITA)
    store.save_label(tid, _mask(store, tid, 2), annotator="bob")
    with pytest.raises(PermissionDenied, match="may not review"):
        store.pick_mask(tid, FIRST, Actor("ann", "annotator"))
    with pytest.raises(PermissionDenied, match="bob labelled tile"):
        store.pick_mask(tid, SECOND, Actor("bob", "reviewer"))
    with pytest.raises(StoreError, match="Pick first or second, not 'third'"):
        store.pick_mask(tid, "third", RITA)
    assert store.mask_pick(tid) is None


# ------------------------------------------------------------------------------ what comes first
def test_tiles_waiting_for_my_second_label_come_forward_oldest_first(
    store: Store, tiles: list[str]
) -> None:
    assert len(tiles) >= 3
    a, b, c = tiles[:3]
    for tid in (b, a, c):  # first labelled in this order, by ana
        store.save_label(tid, _mask(store, tid, 1), annotator="ana")
    order = list(reversed(tiles))
    assert store.awaiting_second("bob") == [b, a, c]
    assert store.second_labels_first(order, "bob") == [b, a, c] + [
        t for t in order if t not in (a, b, c)
    ]
    assert store.awaiting_second("ana") == []  # the first annotator never gives the second
    assert store.second_labels_first(order, "ana") == order
    for tid in store.awaiting_second("bob"):
        assert store.label_lane(tid, "bob") == SECOND  # the same rule as the lane
    # Given (by bob), or another person's edit of the first label: no longer waiting for me.
    store.save_label(a, _mask(store, a, 2), annotator="bob")
    assert store.awaiting_second("bob") == [b, c] and store.awaiting_second("cy") == [b, c]
    store.save_mask(c, _mask(store, c, 3), annotator="cy", base_revision=1)
    assert store.awaiting_second("cy") == [b]
    # Outside the share nothing waits.
    set_workspace_setting(store.root, "double_label_share", 0.0)
    assert store.awaiting_second("bob") == []
