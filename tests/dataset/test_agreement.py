"""Inter-annotator agreement (dataset/agreement.py) against figures computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from dataset.agreement import agreement, class_counts
from dataset.images import encode_png_lossless, smear_id_for
from dataset.settings import set_workspace_setting
from dataset.store import NewSmear, Store

U = 255  # unlabelled
# Classes of the store fixture: 0 background, 1 erythrocyte, 2 leukocyte, 3 platelet.
TILE1_ANA = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, U, U], [2, 2, 0, 0]], np.uint8)
TILE1_BOB = np.array([[0, 1, 1, 1], [0, 0, 1, U], [2, 0, 0, 0], [2, 2, 0, 0]], np.uint8)
TILE2_BOB = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.uint8)
TILE2_ANA = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, U]], np.uint8)


def test_counts_leave_out_pixels_unlabelled_in_either_mask() -> None:
    # Tile 1: 16 pixels less ana's two unlabelled (2,2), (2,3) and bob's (1,3): 13 compared.
    # background: ana (0,0) (0,1) (1,0) (1,1) (3,2) (3,3) = 6; bob (0,0) (1,0) (1,1) (2,1)
    #   (3,2) (3,3) = 6; both (0,0) (1,0) (1,1) (3,2) (3,3) = 5.
    # erythrocyte: ana (0,2) (0,3) (1,2) = 3 ((1,3) left out); bob (0,1) (0,2) (0,3) (1,2) = 4;
    #   both 3.  leukocyte: ana (2,0) (2,1) (3,0) (3,1) = 4; bob (2,0) (3,0) (3,1) = 3; both 3.
    counts = class_counts(TILE1_ANA, TILE1_BOB, 4)
    assert counts.tolist() == [[5, 3, 3, 0], [6, 3, 4, 0], [6, 4, 3, 0]]
    with pytest.raises(ValueError, match="differ in shape"):
        class_counts(TILE1_ANA, TILE1_ANA[:2], 4)


@pytest.fixture
def double_labelled(store: Store, make_smear) -> Store:
    """Three tiles labelled twice: ana then bob, bob then ana, carl then ana; each pattern
    sits in the tile's top-left corner, every other pixel unlabelled in both labels."""
    rgb = make_smear(192, 64, seed=5).rgb
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 192, 64, label="s.png"))
    set_workspace_setting(store.root, "double_label_share", 1.0)
    tiles = [t.tile_id for t in store.tiles(sid)]
    carl_all_1 = np.ones((4, 4), np.uint8)
    ana_all_0 = np.zeros((4, 4), np.uint8)
    work = [
        (tiles[0], ("ana", TILE1_ANA), ("bob", TILE1_BOB)),
        (tiles[1], ("bob", TILE2_BOB), ("ana", TILE2_ANA)),
        (tiles[2], ("carl", carl_all_1), ("ana", ana_all_0)),
    ]
    for tile_id, *labels in work:
        for who, corner in labels:
            mask = np.full((64, 64), U, np.uint8)
            mask[:4, :4] = corner
            store.save_label(tile_id, mask, annotator=who)
    return store


def test_agreement_per_pair_and_class_matches_the_hand_computed_figures(
    double_labelled: Store,
) -> None:
    report = agreement(double_labelled)
    assert report.n_tiles == 3
    assert report.pairs == {"ana / bob": 2, "ana / carl": 1}
    got = {(r.annotator_a, r.annotator_b, r.class_name): r for r in report.rows}
    # ana / bob, pooled over tiles 1 and 2 (tile 2: bob first; 15 pixels compared, (3,3) left
    # out; background bob 13, ana 14, both 13; erythrocyte bob 2, ana 1, both 1):
    #   background  both 5+13=18, first 6+13=19, second 6+14=20:
    #               Dice 2*18/(19+20) = 36/39 = 0.923077, IoU 18/(19+20-18) = 18/21 = 0.857143
    #   erythrocyte both 3+1=4, first 3+2=5, second 4+1=5:
    #               Dice 8/10 = 0.8, IoU 4/(5+5-4) = 4/6 = 0.666667
    #   leukocyte   tile 1 only: both 3, 4 and 3: Dice 6/7 = 0.857143, IoU 3/4 = 0.75
    #   platelet    on neither tile: no row.
    # ana / carl, tile 3: carl all erythrocyte, ana all background (16 pixels):
    #   background  both 0, carl 0, ana 16: Dice 0/16 = 0, IoU 0/16 = 0
    #   erythrocyte both 0, carl 16, ana 0: Dice 0, IoU 0
    expected = {
        ("ana", "bob", "background"): (36 / 39, 18 / 21, 2),
        ("ana", "bob", "erythrocyte"): (0.8, 4 / 6, 2),
        ("ana", "bob", "leukocyte"): (6 / 7, 0.75, 1),
        ("ana", "carl", "background"): (0.0, 0.0, 1),
        ("ana", "carl", "erythrocyte"): (0.0, 0.0, 1),
    }
    assert set(got) == set(expected)
    for key, (dice, iou, n_tiles) in expected.items():
        row = got[key]
        assert (row.dice, row.iou, row.n_tiles) == (
            pytest.approx(dice),
            pytest.approx(iou),
            n_tiles,
        ), key
    assert got[("ana", "bob", "background")].dice == pytest.approx(0.923077, abs=1e-6)


def test_agreement_of_some_tiles_under_other_names(double_labelled: Store) -> None:
    store = double_labelled
    carls = [t for t in store.second_labels() if store.first_label(t).annotator == "carl"]
    report = agreement(store, [*carls, "not-a-tile"], shown_as=str.upper)
    assert (report.n_tiles, report.pairs) == (1, {"ANA / CARL": 1})
    assert [(r.annotator_a, r.annotator_b, r.class_name) for r in report.rows] == [
        ("ANA", "CARL", "background"),
        ("ANA", "CARL", "erythrocyte"),
    ]


def test_a_workspace_without_second_labels_has_no_figures(store: Store) -> None:
    report = agreement(store)
    assert (report.n_tiles, report.pairs, report.rows) == (0, {}, [])
