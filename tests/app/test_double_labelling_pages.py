"""Double labelling on the pages, through AppTest: the Label page's independent second label,
the Dataset page's agreement table, and the Review page's pick."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dataset.images import encode_png_lossless, smear_id_for
from dataset.settings import set_workspace_setting
from dataset.store import NewSmear, Store
from tests._accounts import open_page

TIMEOUT = 180


def _shared_smear(root: Path, monkeypatch, make_smear, width: int, seed: int) -> list[str]:
    """A workspace at ``root`` (the app's) with one smear ``width`` x 64 in 64-px tiles, every
    tile in the double-labelled share (share 1); its tile ids."""
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(root))
    monkeypatch.delenv("SMEARLAB_DOUBLE_LABEL_SHARE", raising=False)
    store = Store.open(root)
    store.init(tile_size=64)
    rgb = make_smear(width, 64, seed=seed).rgb
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), width, 64, label="s.png"))
    set_workspace_setting(root, "double_label_share", 1.0)
    return [t.tile_id for t in store.tiles(sid)]


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_smear) -> tuple[Path, str]:
    """One 64-px tile in the double-labelled share (share 1), labelled by ana: the left half
    erythrocyte, the right half background."""
    root = tmp_path / "workspace"
    (tile_id,) = _shared_smear(root, monkeypatch, make_smear, 64, seed=7)
    store = Store.open(root)
    mask = np.zeros((64, 64), np.uint8)
    mask[:, :32] = 1
    store.save_mask(tile_id, mask, annotator="ana")
    return root, tile_id


def _texts(elements) -> list[str]:
    return [e.value for e in elements]


def test_the_second_annotator_labels_independently_without_the_first_mask(ws) -> None:
    root, tile_id = ws
    at = open_page("pages/label.py", "bob", "annotator", timeout=TIMEOUT)
    assert at.session_state["label_tile_id"] == tile_id
    assert any("Independent second label" in i for i in _texts(at.info))
    editing = at.session_state["lbl_editing"]
    assert editing.lane == "second" and editing.base is None
    assert (editing.mask == 255).all() and (editing.saved == 255).all()  # not ana's mask
    assert at.button(key="lbl_replace").disabled  # no prediction either
    # Fill the rest as background and save: the second label, ana's revision untouched.
    at.button(key="lbl_fill").click().run()
    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception
    store = Store.open(root)
    second = store.second_label(tile_id)
    assert second is not None and second.annotator == "bob"
    assert (store.second_mask(tile_id) == 0).all()
    assert store.latest(tile_id).annotator == "ana" and store.latest(tile_id).revision == 1
    assert any("Independent second label: saved revision 1" in s for s in _texts(at.success))
    # ana, the first annotator, opens her own mask and is told nothing of a second label.
    ana = open_page("pages/label.py", "ana", "annotator", timeout=TIMEOUT)
    assert ana.session_state["lbl_editing"].lane == "first"
    assert not any("Independent second label" in i for i in _texts(ana.info))
    assert (ana.session_state["lbl_editing"].saved[:, :32] == 1).all()


def test_the_dataset_page_shows_agreement_and_the_review_page_picks(ws) -> None:
    root, tile_id = ws
    store = Store.open(root)
    # bob: all erythrocyte. On the 64 x 64 tile: erythrocyte ana 2048, bob 4096, both 2048:
    # Dice 2*2048/(2048+4096) = 0.667, IoU 2048/4096 = 0.5; background ana 2048, bob 0,
    # both 0: Dice 0, IoU 0.
    store.save_label(tile_id, np.ones((64, 64), np.uint8), annotator="bob")
    at = open_page("pages/dataset.py", "rita", "reviewer", timeout=TIMEOUT)
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "Dice" in d.value.columns)
    assert table.to_dict("records") == [
        {"Annotators": "ana / bob", "Class": "background", "Dice": 0.0, "IoU": 0.0, "Tiles": 1},
        {"Annotators": "ana / bob", "Class": "erythrocyte", "Dice": 0.667, "IoU": 0.5, "Tiles": 1},
    ]
    review = open_page("pages/review.py", "rita", "reviewer", timeout=TIMEOUT)
    assert review.selectbox(key="rv_pick_tile").value == tile_id
    review.button(key="rv_pick_second").click().run()
    assert not review.exception, review.exception
    assert any("Picked the second label" in s for s in _texts(review.success))
    latest = Store.open(root).latest(tile_id)
    assert (latest.revision, latest.annotator) == (2, "bob")
    assert Store.open(root).mask_pick(tile_id).reviewer == "rita"


def test_the_label_page_opens_the_tile_waiting_for_my_second_label_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_smear
) -> None:
    root = tmp_path / "workspace"
    ids = _shared_smear(root, monkeypatch, make_smear, 256, seed=3)
    # ana labelled the last tile only: in the store's order it comes last for everyone else.
    Store.open(root).save_mask(ids[-1], np.zeros((64, 64), np.uint8), annotator="ana")
    bob = open_page("pages/label.py", "bob", "annotator", timeout=TIMEOUT)
    assert not bob.exception, bob.exception
    assert bob.session_state["label_tile_id"] == ids[-1]
    assert bob.session_state["lbl_editing"].lane == "second"
    ana = open_page("pages/label.py", "ana", "annotator", timeout=TIMEOUT)
    assert ana.session_state["label_tile_id"] != ids[-1]  # nothing waits for ana
