"""Tests for dataset.imports and dataset.demo: mask pairs, level maps, refusals, the demo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dataset.demo import (
    DEMO_CLASSES,
    DEMO_DIR,
    DEMO_LEVELS,
    DEMO_SPLITS,
    demo_images,
    demo_pairs,
    load_demo,
    workspace_is_empty,
)
from dataset.images import smear_id_for
from dataset.imports import MaskPair, PairsError, import_masks, read_pairs_csv
from dataset.ingest import ingest_files
from dataset.schema import UNLABELLED
from dataset.store import Store

LEVELS = "0=unlabelled,155=leukocyte,255=leukocyte"


def snapshot(store: Store) -> tuple[dict[str, int], list]:
    return store.table_versions(), store.smears()


def wbc_grey(width: int, height: int, cx: float, cy: float, r: float) -> np.ndarray:
    """A white-cell mask as the BCCD masks encode it: 0 outside, 155 cytoplasm, 255 nucleus."""
    yy, xx = np.mgrid[0:height, 0:width]
    d2 = (xx - cx) ** 2 + (yy - cy) ** 2
    grey = np.zeros((height, width), np.uint8)
    grey[d2 <= r * r] = 155
    grey[d2 <= (0.5 * r) ** 2] = 255
    return grey


def antialiased(width: int, height: int, cx: float, cy: float, r: float) -> np.ndarray:
    """The white-cell mask drawn at 4× and shrunk with a box filter: soft edges."""
    big = wbc_grey(width * 4, height * 4, cx * 4 + 1.5, cy * 4 + 1.5, r * 4)
    return np.asarray(Image.fromarray(big).resize((width, height), Image.Resampling.BOX))


@pytest.fixture
def smear(make_smear):
    return make_smear(150, 100, seed=5)


@pytest.fixture
def pair(smear, encode_image):
    grey = wbc_grey(150, 100, cx=40, cy=30, r=20)
    return MaskPair("smear.jpg", encode_image(smear.rgb), "smear_mask.png", encode_image(grey))


# ------------------------------------------------------------------ importing
def test_mask_is_tiled_as_import_revisions_and_comes_back_exactly(store, smear, pair):
    [res] = import_masks(store, [pair], LEVELS, annotator="lab", actor="tester")
    sid = smear_id_for(smear.rgb)
    assert (res.status, res.smear_id, res.input, res.image) == (
        "added",
        sid,
        "smear_mask.png",
        "smear.jpg",
    )
    expected = np.where(wbc_grey(150, 100, 40, 30, 20) > 0, 2, UNLABELLED).astype(np.uint8)
    assert np.array_equal(store.smear_mask(sid), expected)
    latest = store.latest_revisions()
    tiles = store.tiles(sid)
    touched = [t for t in tiles if (expected[t.y : t.y + t.h, t.x : t.x + t.w] != 255).any()]
    # Tiles where the mask is all unlabelled get no revision.
    assert sorted(latest) == sorted(t.tile_id for t in touched) and 0 < len(touched) < len(tiles)
    assert res.revisions == len(touched) and res.tiles == len(tiles)
    for t in touched:
        rev = latest[t.tile_id]
        assert (rev.revision, rev.source, rev.annotator) == (1, "import", "lab")
    assert store.smear(sid).label == "smear.jpg"
    # 0 means "not a white cell" here, so nothing became background.
    assert store.class_pixel_counts()["background"] == 0


def test_antialiased_and_colour_masks_import_by_nearest_level(store, smear, encode_image):
    soft = antialiased(150, 100, cx=80, cy=50, r=25)
    assert len(np.unique(soft)) > 3  # really anti-aliased
    colour = np.dstack([soft] * 3)  # RGB file with equal channels, as some BCCD masks are
    for name, mask in (("soft.png", soft), ("colour.png", colour)):
        fresh = Store.open(store.root.parent / name)
        fresh.init(tile_size=64)
        pairs = [MaskPair("s.png", encode_image(smear.rgb), name, encode_image(mask))]
        [strict] = import_masks(
            fresh, pairs, LEVELS, actor="tester"
        )  # edges fall between the bands of ±40
        assert strict.status == "rejected" and "widen the tolerance" in strict.reason
        # A band of over half the widest gap (155) gives every grey its nearest level.
        [res] = import_masks(fresh, pairs, LEVELS, tolerance=78, actor="tester")
        assert res.status == "added", res.reason
        got = fresh.smear_mask(res.smear_id)
        nearest = np.where(soft > 77, 2, UNLABELLED)  # 0..77 nearer 0, above nearer 155/255
        assert np.array_equal(got, nearest)


def test_image_already_stored_gets_labels_and_reimport_adds_nothing(
    store, smear, pair, encode_image
):
    [up] = ingest_files(store, [("upload.png", encode_image(smear.rgb))], actor="tester")
    [res] = import_masks(store, [pair], LEVELS, actor="tester")
    assert res.status == "added" and res.revisions > 0 and res.smear_id == up.smear_id
    assert len(store.smears()) == 1 and store.smear(up.smear_id).label == "upload.png"
    before = snapshot(store)
    [again] = import_masks(store, [pair], LEVELS, actor="tester")
    assert (again.status, again.revisions) == ("duplicate", 0)
    assert snapshot(store) == before


def test_all_unlabelled_mask_stores_the_image_and_no_revision(store, smear, encode_image):
    blank = MaskPair(
        "s.png", encode_image(smear.rgb), "blank.png", encode_image(np.zeros((100, 150), np.uint8))
    )
    [res] = import_masks(store, [blank], LEVELS, actor="tester")
    assert (res.status, res.revisions) == ("added", 0)
    assert any("no labelled pixels" in w for w in res.warnings)
    assert store.latest_revisions() == {} and len(store.smears()) == 1


def test_import_over_manual_labels_is_a_new_revision_with_a_warning(store, smear, pair):
    [res] = ingest_files(store, [("s.png", pair.image_bytes)], actor="tester")
    t = store.tiles(res.smear_id)[0]
    store.save_mask(t.tile_id, np.zeros((t.h, t.w), np.uint8), annotator="ann")
    [imp] = import_masks(store, [pair], LEVELS, actor="tester")
    assert store.latest(t.tile_id).revision == 2
    assert store.latest(t.tile_id).source == "import" and store.mask(t.tile_id, 1).max() == 0
    assert any("by hand" in w for w in imp.warnings)


# ------------------------------------------------------------------ refusals
def refused(store, pairs, levels=LEVELS):
    before = snapshot(store)
    results = import_masks(store, pairs, levels, actor="tester")
    assert snapshot(store) == before
    return results


def test_mask_of_the_wrong_size_is_refused_naming_the_file(store, smear, encode_image):
    small = encode_image(np.zeros((50, 75), np.uint8))
    [res] = refused(store, [MaskPair("s.png", encode_image(smear.rgb), "small.png", small)])
    assert res.status == "rejected" and res.smear_id is None
    assert "'small.png' is 75 × 50 pixels" in res.reason and "150 × 100" in res.reason


def test_level_map_that_leaves_pixels_unexplained_is_refused(store, smear, encode_image):
    grey = wbc_grey(150, 100, 40, 30, 20)
    grey[:, :10] = 80  # 6.7 % of the pixels, 75 grey levels from every listed level
    pair = MaskPair("s.png", encode_image(smear.rgb), "odd.png", encode_image(grey))
    [res] = refused(store, [pair])
    assert res.status == "rejected"
    assert res.reason.startswith("'odd.png' has 1000 pixels (6.67%) at grey levels more than 40")
    assert "grey 80: 1000 px" in res.reason


def test_a_few_unexplained_pixels_refuse_the_mask_and_lenient_leaves_them_unlabelled(
    store, smear, encode_image
):
    grey = wbc_grey(150, 100, 40, 30, 20)
    grey[0, :12] = 80  # 12 pixels (0.08 %), 75 grey levels from every listed level
    pair = MaskPair("s.png", encode_image(smear.rgb), "few.png", encode_image(grey))
    [res] = import_masks(store, [pair], LEVELS, actor="tester")
    assert res.status == "rejected" and "'few.png' has 12 pixels" in res.reason
    assert "grey 80: 12 px" in res.reason and store.smears() == []
    [ok] = import_masks(store, [pair], LEVELS, lenient=True, actor="tester")
    assert ok.status == "added" and ok.unmatched == {80: 12}
    assert ok.to_json()["unmatched"] == {"80": 12}
    assert any("12 pixels of 'few.png' matched no level within ±40" in w for w in ok.warnings)
    whole = store.smear_mask(ok.smear_id)
    assert (whole[0, :12] == UNLABELLED).all()


def test_unknown_class_name_refuses_every_pair_naming_its_file(store, pair):
    results = refused(store, [pair, pair], "0=unlabelled,255=monocyte")
    assert [r.status for r in results] == ["rejected", "rejected"]
    assert results[0].reason.startswith("'smear_mask.png' was not imported:")
    assert "Unknown class 'monocyte'" in results[0].reason and "leukocyte" in results[0].reason


def test_bad_image_or_unreadable_mask_is_refused(store, smear, encode_image):
    grey = encode_image(wbc_grey(150, 100, 40, 30, 20))
    results = refused(
        store,
        [
            MaskPair("broken.jpg", b"\xff\xd8\xff", "m1.png", grey),
            MaskPair("s.png", encode_image(smear.rgb), "m2.png", b"not a mask"),
        ],
    )
    assert [r.status for r in results] == ["rejected", "rejected"]
    assert "'broken.jpg'" in results[0].reason and "m1.png" in results[0].reason
    assert "'m2.png' is not a PNG" in results[1].reason


def test_good_pairs_import_even_when_others_are_bad(store, smear, pair, encode_image):
    bad = MaskPair(
        "s.png", encode_image(smear.rgb), "small.png", encode_image(np.zeros((5, 5), np.uint8))
    )
    results = import_masks(store, [bad, pair], LEVELS, actor="tester")
    assert [r.status for r in results] == ["rejected", "added"]
    assert len(store.smears()) == 1 and store.latest_revisions()


# ------------------------------------------------------------------ pairs CSV
def test_read_pairs_csv_resolves_paths_relative_to_the_csv(tmp_path, smear, encode_image):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(encode_image(smear.rgb))
    mask = tmp_path / "abs_mask.png"
    mask.write_bytes(b"MASK")
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text(f"\ufeffImage,Mask\nimg/a.png,{mask}\n\n", encoding="utf-8")
    [p] = read_pairs_csv(csv_path)
    assert (p.image_name, p.mask_name, p.mask_bytes) == ("img/a.png", str(mask), b"MASK")
    assert p.image_bytes == (tmp_path / "img" / "a.png").read_bytes()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("picture,label\na.png,b.png\n", "needs a header row with the columns image,mask"),
        ("image,mask\n", "has no rows"),
        (
            "image,mask\nnope.png,a.png\n,a.png\n",
            r"line 2: image 'nope.png'.*line 3: the image cell",
        ),
    ],
)
def test_bad_pairs_csv_is_refused_with_rows_named(tmp_path, text, match):
    (tmp_path / "a.png").write_bytes(b"x")
    path = tmp_path / "pairs.csv"
    path.write_text(text)
    with pytest.raises(PairsError, match=match):
        read_pairs_csv(path)


def test_missing_pairs_csv(tmp_path):
    with pytest.raises(PairsError, match="does not exist"):
        read_pairs_csv(tmp_path / "none.csv")


# ------------------------------------------------------------------ the demo
def test_demo_data_ships_with_its_licences():
    assert len(demo_images()) == 12
    pairs = demo_pairs()
    assert len(pairs) == 8
    notice = (DEMO_DIR / "NOTICE").read_text()
    for licence in ("bccd/LICENSE", "bccd-wbc-masks/LICENSE"):
        assert "MIT License" in (DEMO_DIR / licence).read_text()
        assert licence in notice
    assert "Shenggan/BCCD_Dataset" in notice and "Banik" in notice
    assert DEMO_LEVELS == "0=background,155=cytoplasm,255=nucleus" and DEMO_LEVELS in notice
    assert {p.image_name for p in pairs} == {f"bccd/{name}" for name in DEMO_SPLITS}
    assert sum(p.stat().st_size for p in DEMO_DIR.rglob("*")) < 500_000


@pytest.mark.slow
def test_load_demo_into_an_empty_workspace(workspace):
    store = Store.open(workspace)
    assert workspace_is_empty(store)
    calls = []
    results = load_demo(store, on_progress=lambda d, t: calls.append((d, t)), actor="tester")
    assert calls[-1] == (20, 20) and len(calls) == 20
    assert [r.status for r in results] == ["added"] * 20
    assert not workspace_is_empty(store)
    assert store.schema().names == DEMO_CLASSES
    assert len(store.smears()) == 12 and all(s.stain == "Giemsa" for s in store.smears())
    masks = results[12:]
    assert all(r.revisions and r.revisions > 0 for r in masks)
    counts = store.class_pixel_counts()
    assert all(counts[c] > 0 for c in DEMO_CLASSES)
    assert counts["unlabelled"] == 0  # every pixel of a masked photo is a label
    for r in masks:
        whole = store.smear_mask(r.smear_id)
        assert set(np.unique(whole).tolist()) == {0, 1, 2}
        assert 0.005 < (whole == 2).mean() < 0.3
    # Every split has labelled tiles with every class; validation scores each class.
    by_split = {s: store.labelled_tile_ids(s) for s in ("train", "validation", "test")}
    assert {s: len(ids) for s, ids in by_split.items()} == {
        "train": 24,
        "validation": 12,
        "test": 12,
    }
    for ids in by_split.values():
        assert all(n > 0 for c, n in store.class_pixel_counts(ids).items() if c in DEMO_CLASSES)
    unmasked = {r.smear_id for r in results[:12]} - {r.smear_id for r in masks}
    assert {store.split_of(s) for s in unmasked} == {"train"}
    before = snapshot(store)
    assert {r.status for r in load_demo(store, actor="tester")} == {"duplicate"}
    assert snapshot(store) == before


@pytest.mark.slow
def test_demo_in_a_workspace_with_a_leukocyte_class_labels_white_cells_only(workspace):
    store = Store.open(workspace)
    store.init(["background", "erythrocyte", "leukocyte", "platelet"])
    results = load_demo(store, actor="tester")
    assert [r.status for r in results] == ["added"] * 20
    counts = store.class_pixel_counts()
    # The masks' 0 covers red cells too: it stays unlabelled, never background.
    assert counts["leukocyte"] > 0
    assert counts["background"] == counts["erythrocyte"] == counts["platelet"] == 0
