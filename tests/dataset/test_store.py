"""Tests for dataset.store: revisions, conflicts, skips, labelled tiles, splits, schema, masks."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from dataset._delta import SCHEMAS, DeltaTables
from dataset.images import encode_png_lossless, smear_id_for
from dataset.masks import encode_mask_png
from dataset.schema import UNLABELLED, SchemaError
from dataset.store import NewSmear, RevisionConflict, Store, StoreError
from dataset.tiling import tile_grid, tile_id


def add(store: Store, rgb: np.ndarray, **meta) -> str:
    smear_id = smear_id_for(rgb)
    h, w = rgb.shape[:2]
    store.add_smear(NewSmear(smear_id, encode_png_lossless(rgb), w, h, label="t.png", **meta))
    return smear_id


def full(tile, value: int) -> np.ndarray:
    return np.full((tile.h, tile.w), value, dtype=np.uint8)


@pytest.fixture
def smear(store, make_smear):
    return add(store, make_smear(96, 80, seed=1).rgb)


@pytest.fixture
def tile(store, smear):
    return store.tiles(smear)[0]


# ------------------------------------------------------------------ smears and tiles
def test_smear_is_stored_once_with_its_tiles(store, make_smear):
    rgb = make_smear(96, 80, seed=2).rgb
    sid = smear_id_for(rgb)
    new = NewSmear(sid, encode_png_lossless(rgb), 96, 80, label="a.png")
    added, tiles = store.add_smear(new)
    versions = store.table_versions()
    again, same = store.add_smear(new)
    assert added and not again and same == tiles
    assert store.table_versions() == versions
    assert [t.tile_id for t in tiles] == [
        f"{sid}_x0000_y0000",
        f"{sid}_x0032_y0000",
        f"{sid}_x0000_y0016",
        f"{sid}_x0032_y0016",
    ]
    assert np.array_equal(store.smear_image(sid), rgb)
    t = tiles[3]
    assert np.array_equal(store.tile_image(t.tile_id), rgb[16:80, 32:96])
    assert store.smear(sid).n_tiles == 4


def tile_pngs(store: Store) -> dict[str, list[bytes]]:
    """Every row of the tiles table: tile id → its stored PNGs (one per row)."""
    out: dict[str, list[bytes]] = {}
    for r in store.tables.read("tiles", ["tile_id", "image_png"]).to_pylist():
        out.setdefault(r["tile_id"], []).append(r["image_png"])
    return out


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def new_smear(rgb: np.ndarray, label: str, with_rgb: bool = True) -> NewSmear:
    h, w = rgb.shape[:2]
    png = encode_png_lossless(rgb)
    return NewSmear(smear_id_for(rgb), png, w, h, label=label, rgb=rgb if with_rgb else None)


def test_each_tile_is_stored_with_its_pixels_as_png(store, make_smear):
    rgb = make_smear(96, 80, seed=3).rgb
    # Without the decoded pixels the store decodes the smear PNG itself: same tiles.
    _, tiles = store.add_smear(new_smear(rgb, "a.png", with_rgb=False))
    pngs = tile_pngs(store)
    assert set(pngs) == {t.tile_id for t in tiles}
    for t in tiles:
        [png] = pngs[t.tile_id]
        np.testing.assert_array_equal(decode(png), rgb[t.y : t.y + t.h, t.x : t.x + t.w])
    streamed = dict(store.iter_tile_pngs([tiles[3].tile_id, tiles[0].tile_id, "unknown"]))
    assert streamed == {t.tile_id: pngs[t.tile_id][0] for t in (tiles[0], tiles[3])}


def test_add_smears_commits_a_batch_once_and_skips_every_duplicate(store, make_smear):
    a, b, c = (make_smear(96, 80, seed=s).rgb for s in (4, 5, 6))
    store.add_smear(new_smear(a, "a.png"))
    versions = store.table_versions()
    out = store.add_smears(
        [new_smear(b, "b.png"), new_smear(a, "a2.png"), new_smear(c, "c.png"), new_smear(b, "b2")]
    )
    assert [added for added, _ in out] == [True, False, True, False]
    assert out[3][1] == out[0][1] == store.tiles(smear_id_for(b))
    assert out[1][1] == store.tiles(smear_id_for(a))
    after = store.table_versions()
    # One commit of tiles and one of smears for the whole batch.
    assert (after["tiles"], after["smears"]) == (versions["tiles"] + 1, versions["smears"] + 1)
    assert sorted(s.label for s in store.smears()) == ["a.png", "b.png", "c.png"]
    assert all(len(p) == 1 for p in tile_pngs(store).values())  # no tile written twice
    assert store.add_smears([new_smear(c, "c3")]) == [(False, store.tiles(smear_id_for(c)))]
    assert store.table_versions() == after
    assert store.add_smears([]) == []


def test_pixels_that_do_not_match_the_size_are_refused_and_nothing_is_written(store, make_smear):
    rgb = make_smear(96, 80, seed=7).rgb
    good = new_smear(make_smear(96, 80, seed=8).rgb, "good.png")
    bad = NewSmear(smear_id_for(rgb), encode_png_lossless(rgb), 80, 96, label="bad", rgb=rgb)
    versions = store.table_versions()
    with pytest.raises(StoreError, match="claims 80x96 RGB pixels"):
        store.add_smears([good, bad])
    assert store.table_versions() == versions and store.smears() == []


def test_crash_between_the_tile_and_smear_commits_leaves_no_smear_and_a_retry_works(
    store, make_smear, monkeypatch
):
    smear = new_smear(make_smear(96, 80, seed=9).rgb, "crash.png")
    real = store.tables.append

    def dies_at_smears(name, rows):
        if name == "smears":
            raise OSError("killed (simulated)")
        return real(name, rows)

    monkeypatch.setattr(store.tables, "append", dies_at_smears)
    with pytest.raises(OSError, match="simulated"):
        store.add_smear(smear)
    monkeypatch.undo()
    reopened = Store.open(store.root)
    assert reopened.smears() == [] and reopened.tiles() == []  # orphan tiles stay hidden
    added, tiles = reopened.add_smear(smear)
    assert added and reopened.tiles() == tiles and len(tiles) == 4
    ids = [t.tile_id for t in tiles]
    assert [tid for tid, _ in reopened.iter_tile_pngs(ids)] == ids  # each once


def test_a_tiles_table_from_before_tile_pngs_gains_the_column(workspace, make_smear):
    """A workspace written before tiles kept their PNG: old rows are cut from the smear."""
    old_tiles = pa.schema([f for f in SCHEMAS["tiles"] if f.name != "image_png"])
    old = Store.open(workspace)
    old.tables = DeltaTables(old.root, SCHEMAS | {"tiles": old_tiles})
    old.init(tile_size=64)
    rgb = make_smear(96, 80, seed=10).rgb
    sid = smear_id_for(rgb)
    boxes = tile_grid(96, 80, 64)
    rows = [{"tile_id": tile_id(sid, b.x, b.y), "smear_id": sid, **b.__dict__} for b in boxes]
    old.tables.append("tiles", rows)
    now = dt.datetime.now(dt.UTC)
    old.tables.append("smears", [Store._smear_row(new_smear(rgb, "old"), len(rows), 64, now)])
    store = Store.open(workspace)
    assert "image_png" not in store.tables.read("tiles").column_names
    rgb2 = make_smear(96, 80, seed=11).rgb
    added, _ = store.add_smear(new_smear(rgb2, "new.png"))
    assert added and "image_png" in store.tables.read("tiles").column_names
    assert len(store.tiles()) == 8
    for t in store.tiles():
        source = rgb if t.smear_id == sid else rgb2
        [(_, png)] = store.iter_tile_pngs([t.tile_id])
        np.testing.assert_array_equal(decode(png), source[t.y : t.y + t.h, t.x : t.x + t.w])


def test_unknown_tile_is_refused_by_name(store):
    with pytest.raises(StoreError, match="No tile 'nope'"):
        store.tile("nope")


# ------------------------------------------------------------------ revisions
def test_revisions_are_numbered_per_tile_from_one_and_record_who_when_how(store, smear):
    t0, t1 = store.tiles(smear)[:2]
    before = dt.datetime.now(dt.UTC)
    r1 = store.save_mask(t0.tile_id, full(t0, 1), annotator="ann", seconds=12.5)
    r2 = store.save_mask(t0.tile_id, full(t0, 2), annotator="bob", base_revision=1)
    s1 = store.save_mask(t1.tile_id, full(t1, 0), annotator="ann", source="prefill")
    assert (r1.revision, r2.revision, s1.revision) == (1, 2, 1)
    assert (r1.annotator, r1.source, r1.base_revision, r1.seconds) == ("ann", "manual", None, 12.5)
    assert (r2.annotator, r2.base_revision) == ("bob", 1)
    assert s1.source == "prefill"
    assert before <= r1.created_at <= r2.created_at
    assert r1.n_labelled_px == t0.w * t0.h
    # Nothing is overwritten: every revision stays readable.
    assert (store.mask(t0.tile_id, 1) == 1).all() and (store.mask(t0.tile_id) == 2).all()
    assert [r.revision for r in store.history(t0.tile_id)] == [1, 2]
    reopened = Store.open(store.root)
    assert reopened.latest(t0.tile_id) == r2 and reopened.latest(t1.tile_id) == s1


def test_unsaved_tile_mask_is_all_unlabelled(store, tile):
    assert store.latest(tile.tile_id) is None
    m = store.mask(tile.tile_id)
    assert m.shape == (tile.h, tile.w) and (m == UNLABELLED).all()


def test_conflict_when_someone_saved_after_you_opened(store, tile):
    store.save_mask(tile.tile_id, full(tile, 1), annotator="ann")
    # Both opened revision 1; bob saves first.
    store.save_mask(tile.tile_id, full(tile, 2), annotator="bob", base_revision=1)
    versions = store.table_versions()
    with pytest.raises(RevisionConflict, match="revision 2 by bob") as info:
        store.save_mask(tile.tile_id, full(tile, 3), annotator="ann", base_revision=1)
    assert info.value.latest.revision == 2 and info.value.base == 1
    assert store.table_versions() == versions  # the refused save wrote nothing
    # A blank start (no base) on a tile that has revisions conflicts too.
    with pytest.raises(RevisionConflict):
        store.save_mask(tile.tile_id, full(tile, 3), annotator="ann")


def test_force_saves_on_top_and_records_the_stale_base(store, tile):
    store.save_mask(tile.tile_id, full(tile, 1), annotator="ann")
    store.save_mask(tile.tile_id, full(tile, 2), annotator="bob", base_revision=1)
    rev = store.save_mask(tile.tile_id, full(tile, 3), annotator="ann", base_revision=1, force=True)
    assert (rev.revision, rev.base_revision) == (3, 1)
    assert (store.mask(tile.tile_id) == 3).all()


def test_mask_of_wrong_shape_or_unknown_class_is_refused(store, tile):
    with pytest.raises(StoreError, match=f"must be a {tile.w}x{tile.h}"):
        store.save_mask(tile.tile_id, np.zeros((5, 5), np.uint8), annotator="a")
    bad = full(tile, 0)
    bad[0, 0] = 7
    with pytest.raises(StoreError, match=r"values \[7\]"):
        store.save_mask(tile.tile_id, bad, annotator="a")
    assert store.latest(tile.tile_id) is None


# ------------------------------------------------------------------ skips, labelled
def test_skip_and_unskip_by_saving(store, tile):
    store.skip(tile.tile_id, annotator="ann")
    assert store.is_skipped(tile.tile_id)
    assert tile.tile_id in store.skipped_tile_ids()
    store.save_mask(tile.tile_id, full(tile, 1), annotator="ann")
    assert not store.is_skipped(tile.tile_id)
    assert store.labelled_tile_ids() == [tile.tile_id]


def test_labelled_means_latest_revision_has_a_label_and_tile_not_skipped(store, smear):
    a, b, c, d = store.tiles(smear)
    store.save_mask(a.tile_id, full(a, UNLABELLED), annotator="x")  # nothing labelled
    store.save_mask(b.tile_id, full(b, 1), annotator="x")
    store.save_mask(b.tile_id, full(b, UNLABELLED), annotator="x", base_revision=1)  # erased
    one_pixel = full(c, UNLABELLED)
    one_pixel[3, 4] = 0  # a single background pixel is a label
    store.save_mask(c.tile_id, one_pixel, annotator="x")
    store.save_mask(d.tile_id, full(d, 2), annotator="x")
    store.skip(d.tile_id, annotator="tester")
    assert store.labelled_tile_ids() == [c.tile_id]
    assert store.stats()["labelled"] == 1 and store.stats()["skipped"] == 1


# ------------------------------------------------------------------ splits
def test_split_is_assigned_once_and_never_reassigned(store, make_smear):
    ids = [add(store, make_smear(40, 40, seed=s).rgb) for s in range(3)]
    first = store.splits_of(ids)
    assert set(first.values()) <= {"train", "validation", "test"}
    # Another seed later, or a racing writer's second row, changes nothing.
    assert store.splits_of(ids, seed=999) == first
    key = f"smear:{ids[0]}"
    other = "test" if first[ids[0]] != "test" else "train"
    store.tables.append(
        "splits",
        [{"group_key": key, "split": other, "seed": 5, "created_at": dt.datetime.now(dt.UTC)}],
    )
    assert Store.open(store.root).split_of(ids[0]) == first[ids[0]]


def add_rows(store: Store, smears: dict[str, str | None]) -> None:
    """Many smear rows in one commit (only what the split logic reads): fast to set up."""
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "smear_id": sid,
            "label": "",
            "width": 1,
            "height": 1,
            "patient": patient,
            "n_tiles": 1,
            "tile_size": 64,
            "created_at": now,
            "image_png": b"",
        }
        for sid, patient in smears.items()
    ]
    store.tables.append("smears", rows)


def test_smears_of_one_patient_share_a_split_and_others_split_by_smear(store):
    patients = {f"s{p:02d}{k}": f"P{p}" for p in range(20) for k in range(3)}
    loose = {f"t{s:03d}": None for s in range(40)}
    add_rows(store, patients | loose)
    splits = store.splits_of(list(patients) + list(loose))
    for p in range(20):
        assert len({splits[f"s{p:02d}{k}"] for k in range(3)}) == 1
    assert len({splits[s] for s in patients}) > 1  # patients are spread, not lumped
    groups = store.split_assignment()
    assert {g for g in groups if g.startswith("patient:")} == {f"patient:P{p}" for p in range(20)}
    assert {g for g in groups if g.startswith("smear:")} == {f"smear:{s}" for s in loose}
    # 40 smears without a patient are 40 groups: they do not all land in one split.
    assert len({splits[s] for s in loose}) > 1
    # A smear of a known patient added later joins that patient's split.
    add_rows(store, {"late": "P3"})
    assert store.split_of("late") == splits["s030"]


def test_chosen_splits_hold_for_new_groups_and_never_move_an_old_one(store):
    add_rows(store, {"a": None, "b": "P7", "c": "P7", "d": None})
    before = store.split_of("d")
    other = "test" if before != "test" else "validation"
    got = store.assign_splits({"a": "validation", "b": "test", "d": other})
    assert got == {"a": "validation", "b": "test", "d": before}
    assert store.split_of("c") == "test"  # same patient, same split
    assert Store.open(store.root).splits_of(["a", "b", "d"]) == got
    with pytest.raises(StoreError, match="Unknown split 'holdout'"):
        store.assign_splits({"a": "holdout"})
    with pytest.raises(StoreError, match="No smear 'zz'"):
        store.assign_splits({"zz": "train"})


def test_split_of_unknown_smear_is_refused(store):
    with pytest.raises(StoreError, match="No smear 'sdeadbeef'"):
        store.split_of("sdeadbeef")


# ------------------------------------------------------------------ schema
def test_schema_is_editable_until_the_first_revision_then_frozen(store, tile):
    edited = store.init(["background", "erythrocyte", "leukocyte", "platelet", "parasite"])
    assert edited.version == 2 and not store.schema_frozen()
    store.save_mask(tile.tile_id, full(tile, 4), annotator="a")
    assert store.schema_frozen()
    with pytest.raises(SchemaError, match="frozen"):
        store.init(["background", "cell"])
    assert store.schema() == edited
    # Giving the same list again is not an edit.
    assert store.init(list(edited.names)) == edited


# ------------------------------------------------------------------ whole-smear masks
def test_smear_mask_most_recent_save_wins_where_tiles_overlap(store, smear):
    a, b, _, d = store.tiles(smear)  # 96x80 with 64-px tiles: all four overlap in the middle
    store.save_mask(a.tile_id, full(a, 1), annotator="x")
    store.save_mask(d.tile_id, full(d, 2), annotator="x")
    partial = full(b, UNLABELLED)
    partial[:, :8] = 3  # b (x 32..95) labels only its columns 32..39
    store.save_mask(b.tile_id, partial, annotator="x")
    whole = store.smear_mask(smear)
    assert whole.shape == (80, 96)
    assert (whole[0:16, 0:32] == 1).all()  # only a
    assert (whole[16:64, 40:64] == 2).all()  # a and d overlap: d is newer
    assert (whole[0:64, 32:40] == 3).all()  # b newest, labelled there
    assert (whole[0:16, 64:96] == UNLABELLED).all()  # only b, unlabelled there
    assert (whole[64:80, 40:96] == 2).all()
    # Saving a again makes it the most recent where it is labelled.
    store.save_mask(a.tile_id, full(a, 0), annotator="x", base_revision=1)
    assert (store.smear_mask(smear)[0:64, 0:64] == 0).all()


def test_whole_mask_saved_tile_by_tile_comes_back_exactly(store, make_smear):
    synth = make_smear(150, 100, seed=4)
    sid = add(store, synth.rgb)
    whole = synth.mask.copy()
    whole[:10] = UNLABELLED
    for t in store.tiles(sid):
        crop = np.ascontiguousarray(whole[t.y : t.y + t.h, t.x : t.x + t.w])
        store.save_mask(t.tile_id, crop, annotator="x", source="import", check_base=False)
    assert np.array_equal(store.smear_mask(sid), whole)


# ------------------------------------------------------------------ compaction
def test_latest_revisions_are_the_same_after_compaction(store, smear):
    tiles = store.tiles(smear)
    for k in range(3):
        for t in tiles:
            store.save_mask(t.tile_id, full(t, k), annotator=f"a{k}", force=True)
    before = store.latest_revisions()
    fresh_before = Store.open(store.root).latest_revisions()
    store.tables.compact("revisions")
    assert store.latest_revisions() == before == fresh_before
    assert Store.open(store.root).latest_revisions() == before
    assert [r.revision for r in store.history(tiles[0].tile_id)] == [1, 2, 3]
    assert (store.mask(tiles[0].tile_id, 1) == 0).all()
    assert (store.mask(tiles[0].tile_id) == 2).all()
    nxt = store.save_mask(tiles[0].tile_id, full(tiles[0], 1), annotator="z", base_revision=3)
    assert nxt.revision == 4


# ------------------------------------------------------------------ class pixel counts
def stored_class_px(store: Store, tile_id_: str, revision: int) -> list[int] | None:
    rows = store.tables.read("revisions", ["tile_id", "revision", "class_px"]).to_pylist()
    [px] = [r["class_px"] for r in rows if (r["tile_id"], r["revision"]) == (tile_id_, revision)]
    return px


def decoded_counts(store: Store, tile_ids: list[str]) -> dict[str, int]:
    """The figure class_pixel_counts gave before counts were stored: decode every mask."""
    counts = np.zeros(256, np.int64)
    for t in set(tile_ids):
        if store.latest(t) is not None:
            counts += np.bincount(store.mask(t).ravel(), minlength=256)
    names = store.schema().names
    return {n: int(counts[i]) for i, n in enumerate(names)} | {"unlabelled": int(counts[255])}


def random_mask(tile, seed: int, n_classes: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, n_classes, (tile.h, tile.w), dtype=np.uint8)
    mask[: rng.integers(1, tile.h // 2)] = UNLABELLED
    return mask


def legacy_row(store: Store, tile, mask: np.ndarray, revision: int) -> dict:
    """A revisions row as SmearLab wrote it before class_px existed."""
    return {
        "tile_id": tile.tile_id,
        "revision": revision,
        "annotator": "old",
        "created_at": dt.datetime.now(dt.UTC),
        "source": "manual",
        "base_revision": revision - 1 or None,
        "seconds": None,
        "model_id": None,
        "n_labelled_px": int((mask != UNLABELLED).sum()),
        "mask_png": encode_mask_png(mask),
    }


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import dataset.store.revisions
    import dataset.store.stats

    calls: list[int] = []
    real = dataset.store.stats.decode_mask

    def counting(data: bytes) -> np.ndarray:
        calls.append(1)
        return real(data)

    # Every mask decode of the store: the pixel counts (stats) and mask reads (revisions).
    for module in (dataset.store.stats, dataset.store.revisions):
        monkeypatch.setattr(module, "decode_mask", counting)
    return calls


def test_class_pixels_are_counted_at_save(store, tile):
    n = len(store.schema().names)
    mask = random_mask(tile, seed=3, n_classes=n)
    rev = store.save_mask(tile.tile_id, mask, annotator="a")
    px = stored_class_px(store, tile.tile_id, rev.revision)
    assert px == np.bincount(mask.ravel(), minlength=256)[:n].tolist()
    assert len(px) == n and sum(px) == rev.n_labelled_px == int((mask != UNLABELLED).sum())
    blank = store.save_mask(tile.tile_id, full(tile, UNLABELLED), annotator="a", base_revision=1)
    assert stored_class_px(store, tile.tile_id, blank.revision) == [0] * n


def test_class_pixel_counts_decode_only_rows_saved_without_counts(
    workspace, make_smear, monkeypatch
):
    """A table from before class_px (its rows lack the column), rows appended without counts
    since, and rows saved with counts: the sums match decoding every mask, and only the
    latest revisions without counts are decoded."""
    old_revisions = pa.schema([f for f in SCHEMAS["revisions"] if f.name != "class_px"])
    old = Store.open(workspace)
    old.tables = DeltaTables(old.root, SCHEMAS | {"revisions": old_revisions})
    old.init(tile_size=32)
    sid = add(old, make_smear(96, 64, seed=4).rgb)
    tiles = old.tiles(sid)
    assert len(tiles) == 6
    n = len(old.schema().names)
    masks = {t.tile_id: random_mask(t, seed=i, n_classes=n) for i, t in enumerate(tiles)}
    rows = [legacy_row(old, t, masks[t.tile_id], 1) for t in tiles[:4]]
    old.tables.append("revisions", pa.Table.from_pylist(rows, schema=old_revisions))

    store = Store.open(workspace)
    assert "class_px" not in store.scan("revisions").schema.names
    calls = count_decodes(monkeypatch)
    assert store.class_pixel_counts() == decoded_counts(store, [t.tile_id for t in tiles])
    assert len(calls) == 4 + 4  # the counts, then the reference decoding all four

    # Saves with counts evolve the table; tiles 0 and 1 get a counted revision on top.
    for t in (tiles[0], tiles[1], tiles[4]):
        base = store.latest(t.tile_id)
        mask = random_mask(t, seed=99, n_classes=n)
        store.save_mask(t.tile_id, mask, annotator="new", base_revision=base and base.revision)
    # A later row written without counts (null), over tile 5.
    store.tables.append("revisions", [legacy_row(store, tiles[5], masks[tiles[5].tile_id], 1)])
    assert "class_px" in store.scan("revisions").schema.names
    ids = [t.tile_id for t in tiles]
    for compact in (False, True):
        if compact:  # rewrites the old files: their rows now hold a null class_px
            store.tables.compact("revisions")
            store = Store.open(workspace)
        calls.clear()
        assert store.class_pixel_counts() == decoded_counts(store, ids)
        assert len(calls) == 3 + 6  # tiles 2, 3 and 5 have no counts; the reference: all six
        calls.clear()
        assert store.class_pixel_counts([tiles[0].tile_id, tiles[4].tile_id]) == (
            decoded_counts(store, [tiles[0].tile_id, tiles[4].tile_id])
        )
        assert len(calls) == 2  # only the reference decoded


def test_class_pixel_counts_of_given_tiles_include_blank_and_unsaved_ones(store, smear):
    a, b, c, _ = store.tiles(smear)
    store.save_mask(a.tile_id, full(a, 2), annotator="x")
    store.save_mask(b.tile_id, full(b, UNLABELLED), annotator="x")
    ids = [a.tile_id, b.tile_id, c.tile_id, a.tile_id]  # c never saved; a twice
    counts = store.class_pixel_counts(ids)
    assert counts == decoded_counts(store, ids)
    assert counts[store.schema().names[2]] == a.w * a.h
    assert counts["unlabelled"] == b.w * b.h
    assert store.class_pixel_counts() == decoded_counts(store, [a.tile_id])
