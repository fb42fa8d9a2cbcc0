"""Tests for dataset.release: layout, readers, splits, privacy, versions, atomicity, exports."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import re
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dataset._delta import SCHEMAS, DeltaTables
from dataset.images import encode_png_lossless, smear_id_for
from dataset.masks import encode_mask_png
from dataset.release import (
    ReleaseError,
    ReleaseOptions,
    SemVer,
    create_release,
    export_release,
    list_releases,
    release_dir,
    verify_release,
)
from dataset.release import writer as rel
from dataset.release.pseudonyms import account_key, pseudonym_secret
from dataset.roles import Actor
from dataset.schema import UNLABELLED
from dataset.store import SPLITS, NewSmear, Store, group_key, split_for_group

LABEL = "SECRET-upload-name"  # upload file names must never reach a release
PATIENTS = ("Pat-Anna-1961", "Pat-Bob-1975", "Pat-Cleo-1990")
SMEAR_PATIENTS = (PATIENTS[0], PATIENTS[0], PATIENTS[1], PATIENTS[2], None, None, PATIENTS[1])


def _pick_seed(smear_ids: list[str]) -> int:
    """First seed under which the fixture's groups fill all three splits."""
    keys = {group_key(p, s) for p, s in zip(SMEAR_PATIENTS, smear_ids, strict=True)}
    for seed in range(10_000):
        if {split_for_group(k, seed) for k in keys} == set(SPLITS):
            return seed
    raise AssertionError("no seed fills all splits")


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small workspace, built once: 7 smears of 64x48 in 32-px tiles, masks on most tiles.

    Per smear: tile 0 has two revisions (the second is released), tile 1 one revision,
    tile 2 a labelled revision erased by a later all-unlabelled one (not released), and
    tile 3 is never saved. Smear 0's tile 1 is skipped (not released).
    """
    root = tmp_path_factory.mktemp("release-template") / "ws"
    rng = np.random.default_rng(7)
    rgbs = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in SMEAR_PATIENTS]
    ids = [smear_id_for(x) for x in rgbs]
    store = Store.open(root)
    store.init(tile_size=32, split_seed=_pick_seed(ids))
    for i, (rgb, patient) in enumerate(zip(rgbs, SMEAR_PATIENTS, strict=True)):
        png = encode_png_lossless(rgb)
        _, tiles = store.add_smear(NewSmear(ids[i], png, 64, 48, f"{LABEL}-{i}.jpg", patient))
        assert len(tiles) == 4
        for k, t in enumerate(tiles[:3]):
            first = rng.integers(0, 4, (t.h, t.w), dtype=np.uint8)
            store.save_mask(t.tile_id, first, annotator="ann-a")
            if k == 0:
                second = first.copy()
                second[:5] = UNLABELLED
                store.save_mask(t.tile_id, second, annotator="ann-b", base_revision=1)
            if k == 2:
                blank = np.full((t.h, t.w), UNLABELLED, np.uint8)
                store.save_mask(t.tile_id, blank, annotator="ann-b", base_revision=1)
        if i == 0:
            store.skip(tiles[1].tile_id, annotator="ann-a")
    return root


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Store:
    root = tmp_path / "ws"
    shutil.copytree(template, root)
    return Store.open(root)


def _expected_ids(store: Store) -> set[str]:
    return set(store.labelled_tile_ids())


def _split_tables(path: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for f in sorted((path / "data").glob("*.parquet")):
        out[f.name.rsplit("-", 1)[0]] += pq.read_table(f).to_pylist()
    return out


def _snapshot(path: Path) -> dict[str, tuple[str, int]]:
    return {
        p.relative_to(path).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in path.rglob("*")
        if p.is_file()
    }


# ----------------------------------------------------------------------------- layout
def test_release_holds_latest_labelled_revisions_with_images(store: Store) -> None:
    progress: list[tuple[int, int]] = []
    info = create_release(
        store,
        "1.0.0",
        "first",
        on_progress=lambda d, n: progress.append((d, n)),
        actor=Actor("tester", "admin"),
    )
    expected = _expected_ids(store)
    assert len(expected) == 7 * 2 - 1  # tiles 0 and 1 of each smear, less the skipped one
    assert info.n_tiles == len(expected) and sum(info.counts.values()) == len(expected)
    assert progress[-1] == (len(expected), len(expected))
    assert {p.name for p in info.path.iterdir()} == {"data", "README.md", "manifest.json"}

    rows = [r for rs in _split_tables(info.path).values() for r in rs]
    assert {r["tile_id"] for r in rows} == expected
    for r in rows:
        latest = store.latest(r["tile_id"])
        key = account_key(pseudonym_secret(store.root), latest.annotator)
        assert r["revision"] == latest.revision and r["annotator"] == key
        assert r["image"]["path"] == r["mask"]["path"] == f"{r['tile_id']}.png"
        img = np.asarray(Image.open(io.BytesIO(r["image"]["bytes"])))
        np.testing.assert_array_equal(img, store.tile_image(r["tile_id"]))
        mask = np.asarray(Image.open(io.BytesIO(r["mask"]["bytes"])))
        np.testing.assert_array_equal(mask, store.mask(r["tile_id"]))
        t = store.tile(r["tile_id"])
        assert (r["smear_id"], r["x"], r["y"], r["w"], r["h"]) == (t.smear_id, t.x, t.y, t.w, t.h)


def test_release_copies_stored_pngs_without_touching_pixels(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = dict(store.iter_tile_pngs(_expected_ids(store)))
    masks = {t: png for t, _, png in store.iter_latest_masks(sorted(stored))}

    def no_pixels(*args: object) -> None:
        raise AssertionError("a release must not decode smears or encode tiles")

    fresh = Store.open(store.root)  # nothing cached: a smear decode would show
    monkeypatch.setattr(fresh, "_image_cache", no_pixels)
    monkeypatch.setattr("dataset.store.smears.encode_rgb", no_pixels)
    monkeypatch.setattr("dataset.store.tiles.encode_rgb", no_pixels)
    info = create_release(fresh, "1.0.0", "bytes only", actor=Actor("tester", "admin"))
    rows = [r for rs in _split_tables(info.path).values() for r in rs]
    assert len(rows) == len(stored)
    for r in rows:
        assert r["image"]["bytes"] == stored[r["tile_id"]]
        assert r["mask"]["bytes"] == masks[r["tile_id"]]


def test_a_damaged_mask_is_refused_by_name(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real = rel._MaskSpill.get
    small = Image.new("L", (3, 3))
    buf = io.BytesIO()
    small.save(buf, format="PNG")
    monkeypatch.setattr(rel._MaskSpill, "get", lambda self, t: buf.getvalue())
    with pytest.raises(ReleaseError, match="3x3 L but its tile needs 32x32"):
        create_release(store, "1.0.0", "damaged", actor=Actor("tester", "admin"))
    monkeypatch.setattr(rel._MaskSpill, "get", real)
    assert list((store.root / "releases").iterdir()) == []


@pytest.mark.parametrize(
    ("image", "shown"),
    [
        (Image.new("RGB", (32, 32)), "32x32 RGB"),
        (Image.new("I;16", (32, 32)), "32x32 I;16"),
        (Image.new("L", (32, 16)), "32x16 L"),
        (None, "not a PNG"),
    ],
)
def test_a_mask_with_stored_counts_is_checked_from_its_png_header(
    image: Image.Image | None, shown: str
) -> None:
    buf = io.BytesIO()
    if image is not None:
        image.save(buf, format="PNG")
    data = buf.getvalue() or b"GIF89a not a png at all"
    with pytest.raises(ReleaseError, match=f"A stored mask is {re.escape(shown)} but its tile"):
        rel._check_mask_header(data, 32, 32)
    good = io.BytesIO()
    Image.new("L", (32, 32)).save(good, format="PNG")
    rel._check_mask_header(good.getvalue(), 32, 32)


def test_parquet_schema_carries_features_classes_and_schema_version(store: Store) -> None:
    info = create_release(store, "1.0.0", "first", actor=Actor("tester", "admin"))
    for f in (info.path / "data").glob("*.parquet"):
        meta = pq.read_schema(f).metadata
        features = json.loads(meta[b"huggingface"])["info"]["features"]
        assert features["image"] == features["mask"] == {"_type": "Image"}
        ours = json.loads(meta[b"smearlab"])
        assert ours["classes"] == list(store.schema().names)
        assert ours["schema_version"] == store.schema().version
        assert ours["unlabelled"] == UNLABELLED and ours["release"] == "1.0.0"


def test_pandas_duckdb_and_datasets_read_the_release(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets
    import duckdb
    import pandas as pd

    info = create_release(store, "1.0.0", "first", actor=Actor("tester", "admin"))
    n = info.n_tiles
    df = pd.read_parquet(info.path / "data")
    assert len(df) == n and set(df["tile_id"]) == _expected_ids(store)
    glob = (info.path / "data" / "*.parquet").as_posix()
    assert duckdb.sql(f"select count(*) from '{glob}'").fetchall() == [(n,)]

    loaded = 0
    for split, count in info.counts.items():
        ds = datasets.load_dataset(
            "parquet", data_dir=str(info.path), split=split, cache_dir=str(tmp_path / "c")
        )
        assert len(ds) == count
        for row in ds:
            assert isinstance(row["image"], Image.Image) and isinstance(row["mask"], Image.Image)
            assert row["image"].size == row["mask"].size == (row["w"], row["h"])
            np.testing.assert_array_equal(np.asarray(row["mask"]), store.mask(row["tile_id"]))
            np.testing.assert_array_equal(
                np.asarray(row["image"]), store.tile_image(row["tile_id"])
            )
        loaded += len(ds)
    assert loaded == n
    # The card's header lets the folder itself be loaded, too.
    ds = datasets.load_dataset(str(info.path), split="train", cache_dir=str(tmp_path / "c2"))
    assert len(ds) == info.counts["train"]


def test_files_roll_over_and_row_groups_stay_small(store: Store, tmp_path: Path) -> None:
    opts = ReleaseOptions(rows_per_group=1, max_file_rows=2)
    info = create_release(
        store, "1.0.0", "small files", options=opts, actor=Actor("tester", "admin")
    )
    names = sorted(p.name for p in (info.path / "data").iterdir())
    assert info.counts["train"] >= 3
    for split, count in info.counts.items():
        files = [n for n in names if n.startswith(f"{split}-")]
        assert files == [f"{split}-{i:05d}.parquet" for i in range(-(-count // 2))]
    for n in names:
        pf = pq.ParquetFile(info.path / "data" / n)
        assert pf.metadata.num_rows <= 2
        assert all(pf.metadata.row_group(i).num_rows == 1 for i in range(pf.num_row_groups))
    assert sum(len(v) for v in _split_tables(info.path).values()) == info.n_tiles


def test_card_and_manifest_describe_the_release(store: Store) -> None:
    info = create_release(
        store, "1.0.0", "WBC pass", license="cc-by-4.0", actor=Actor("tester", "admin")
    )
    card = (info.path / "README.md").read_text()
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert card.startswith('---\nlicense: "cc-by-4.0"')
    assert "WBC pass" in card and "| 255 | unlabelled |" in card
    for name in store.schema().names:
        assert f"| {name} |" in card
    assert manifest["version"] == "1.0.0" and manifest["seed"] == store.split_seed()
    assert [c["name"] for c in manifest["classes"]] == list(store.schema().names)
    assert manifest["rows"] == info.counts
    assert pytest.approx(sum(manifest["class_pixel_shares"].values())) == 1.0
    files = {p.relative_to(info.path).as_posix() for p in info.path.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"manifest.json"}
    for path, sha in manifest["files"].items():
        assert hashlib.sha256((info.path / path).read_bytes()).hexdigest() == sha
    counts = store.class_pixel_counts()
    assert manifest["class_pixel_counts"] == counts


def _released_mask_counts(path: Path, names: tuple[str, ...]) -> dict[str, int]:
    """Class pixels of the released masks, decoded: the figure releases gave before
    revisions stored their counts."""
    counts = np.zeros(256, np.int64)
    for rows in _split_tables(path).values():
        for r in rows:
            mask = np.asarray(Image.open(io.BytesIO(r["mask"]["bytes"])))
            counts += np.bincount(mask.ravel(), minlength=256)
    return {n: int(counts[i]) for i, n in enumerate(names)} | {"unlabelled": int(counts[255])}


def _counting_mask_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = rel._mask_counts

    def counting(mask_png: bytes, w: int, h: int) -> np.ndarray:
        calls.append("decode")
        return real(mask_png, w, h)

    monkeypatch.setattr(rel, "_mask_counts", counting)
    return calls


def _legacy_rows(store: Store, tiles: list[str], seed: int) -> dict[str, bytes]:
    """Append a revision without class pixel counts on top of each tile, as SmearLab wrote
    them before; returns the new mask PNGs."""
    rng = np.random.default_rng(seed)
    rows, pngs = [], {}
    for tid in tiles:
        t, latest = store.tile(tid), store.latest(tid)
        mask = rng.integers(0, len(store.schema().names), (t.h, t.w), dtype=np.uint8)
        mask[:3] = UNLABELLED
        pngs[tid] = encode_mask_png(mask)
        rev = (latest.revision if latest else 0) + 1
        rows.append(
            {
                "tile_id": tid,
                "revision": rev,
                "annotator": "old",
                "created_at": dt.datetime.now(dt.UTC),
                "source": "manual",
                "base_revision": rev - 1 or None,
                "n_labelled_px": int((mask != UNLABELLED).sum()),
                "mask_png": pngs[tid],
            }
        )
    store.tables.append("revisions", rows)
    return pngs


def test_card_counts_come_from_stored_counts_and_equal_decoding_the_released_masks(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counting_mask_decodes(monkeypatch)
    info = create_release(
        Store.open(store.root), "1.0.0", "no decoding", actor=Actor("tester", "admin")
    )
    assert calls == []  # every revision of the fixture was saved with its counts
    manifest = json.loads((info.path / "manifest.json").read_text())
    names = store.schema().names
    decoded = _released_mask_counts(info.path, names)
    assert manifest["class_pixel_counts"] == decoded
    labelled = sum(decoded[n] for n in names)
    assert manifest["class_pixel_shares"] == {n: decoded[n] / labelled for n in names}
    card = (info.path / "README.md").read_text()
    for i, n in enumerate(names):
        assert f"| {i} | {n} | `{store.schema().colors[i]}` | {decoded[n]} " in card


def test_masks_saved_without_counts_are_decoded_for_the_card_and_released_as_stored(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = sorted(_expected_ids(store))
    legacy = _legacy_rows(store, ids[:5], seed=11)
    store = Store.open(store.root)
    calls = _counting_mask_decodes(monkeypatch)
    info = create_release(store, "1.0.0", "mixed", actor=Actor("tester", "admin"))
    assert len(calls) == 5  # only the revisions without counts
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert manifest["class_pixel_counts"] == _released_mask_counts(info.path, store.schema().names)
    assert manifest["class_pixel_counts"] == store.class_pixel_counts()
    masks = {t: png for t, _, png in store.iter_latest_masks(ids)}
    rows = [r for rs in _split_tables(info.path).values() for r in rs]
    assert {r["tile_id"] for r in rows} == set(ids)
    for r in rows:
        assert r["mask"]["bytes"] == masks[r["tile_id"]]
        if r["tile_id"] in legacy:
            assert r["mask"]["bytes"] == legacy[r["tile_id"]]


def test_a_revisions_table_from_before_class_counts_is_released(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files written before the column lack it: their masks are decoded, the rest are not."""
    old_revisions = pa.schema([f for f in SCHEMAS["revisions"] if f.name != "class_px"])
    old = Store.open(workspace)
    old.tables = DeltaTables(old.root, SCHEMAS | {"revisions": old_revisions})
    old.init(tile_size=32)
    rgb = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    _, tiles = old.add_smear(NewSmear(smear_id_for(rgb), encode_png_lossless(rgb), 64, 64))
    _legacy_rows(old, [t.tile_id for t in tiles[:3]], seed=12)
    store = Store.open(workspace)
    assert "class_px" not in store.scan("revisions").schema.names
    store.save_mask(tiles[3].tile_id, np.full((32, 32), 1, np.uint8), annotator="new")
    assert "class_px" in store.scan("revisions").schema.names
    calls = _counting_mask_decodes(monkeypatch)
    info = create_release(store, "1.0.0", "old table", actor=Actor("tester", "admin"))
    assert info.n_tiles == 4 and len(calls) == 3
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert manifest["class_pixel_counts"] == _released_mask_counts(info.path, store.schema().names)


# ----------------------------------------------------------------------------- splits, privacy
def test_no_smear_in_two_splits_and_splits_are_the_workspace_ones(store: Store) -> None:
    info = create_release(store, "1.0.0", "first", actor=Actor("tester", "admin"))
    tables = _split_tables(info.path)
    seen: dict[str, str] = {}
    for split, rows in tables.items():
        assert rows, f"fixture should fill {split}"
        for r in rows:
            assert seen.setdefault(r["smear_id"], split) == split
    assert store.splits_of(set(seen)) == seen
    keys = {}
    for split, rows in tables.items():
        for r in rows:
            if r["patient_key"] is not None:
                assert keys.setdefault(r["patient_key"], split) == split


def test_patient_key_is_salted_per_release_and_never_the_pseudonym(store: Store) -> None:
    first = _split_tables(
        create_release(store, "1.0.0", "first", actor=Actor("tester", "admin")).path
    )
    second = _split_tables(
        create_release(store, "1.1.0", "second", actor=Actor("tester", "admin")).path
    )
    patient_of = {s.smear_id: s.patient for s in store.smears()}

    def keys(tables: dict[str, list[dict]]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for rows in tables.values():
            for r in rows:
                assert out.setdefault(r["smear_id"], r["patient_key"]) == r["patient_key"]
        return out

    k1, k2 = keys(first), keys(second)
    for smear, patient in patient_of.items():
        if patient is None:
            assert k1[smear] is None and k2[smear] is None
            continue
        assert k1[smear] and patient not in k1[smear]
        assert k1[smear] != k2[smear]  # a fresh salt per release
    by_patient: dict[str, set[str]] = {}
    for smear, patient in patient_of.items():
        if patient:
            by_patient.setdefault(patient, set()).add(k1[smear])
    assert all(len(v) == 1 for v in by_patient.values())  # stable within a release
    assert len({next(iter(v)) for v in by_patient.values()}) == len(by_patient)


def test_upload_names_and_pseudonyms_appear_nowhere(store: Store, tmp_path: Path) -> None:
    info = create_release(store, "1.0.0", "first", actor=Actor("tester", "admin"))
    exports = [
        export_release(store, "1.0.0", "zip", tmp_path / "out", actor=Actor("tester", "admin")),
        export_release(
            store, "1.0.0", "png-masks", tmp_path / "out", actor=Actor("tester", "admin")
        ),
    ]
    secrets_ = [LABEL.encode(), *(p.encode() for p in PATIENTS)]
    blobs = [p.read_bytes() for p in info.path.rglob("*") if p.is_file()]
    for z in exports:
        with zipfile.ZipFile(z) as zf:
            blobs += [zf.read(n) for n in zf.namelist()] + ["\n".join(zf.namelist()).encode()]
    for f in (info.path / "data").glob("*.parquet"):  # compressed columns: check the values
        blobs.append(
            json.dumps(pq.read_table(f).drop(["image", "mask"]).to_pylist(), default=str).encode()
        )
        blobs.append(str(pq.read_schema(f).metadata).encode())
    for blob in blobs:
        for s in secrets_:
            assert s not in blob


def test_save_during_release_is_not_in_it(store: Store) -> None:
    target = sorted(_expected_ids(store))[-1]
    before = store.latest(target)
    saved = []

    def meddle(done: int, total: int) -> None:
        if not saved:
            m = store.mask(target)
            m[m == UNLABELLED] = 0
            saved.append(store.save_mask(target, m, annotator="late", force=True))

    info = create_release(
        store, "1.0.0", "first", on_progress=meddle, actor=Actor("tester", "admin")
    )
    row = next(r for rs in _split_tables(info.path).values() for r in rs if r["tile_id"] == target)
    assert saved and saved[0].revision == before.revision + 1
    key = account_key(pseudonym_secret(store.root), before.annotator)
    assert row["revision"] == before.revision and row["annotator"] == key


# ----------------------------------------------------------------------------- versions
def test_semver_precedence_follows_semver_org() -> None:
    ordered = [
        "0.9.9",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0",
    ]
    parsed = [SemVer.parse(v) for v in ordered]
    assert parsed == sorted(reversed(parsed))
    assert all(a < b for a, b in itertools.pairwise(parsed))
    assert SemVer.parse("1.0.0+build.7") == SemVer.parse("1.0.0")
    assert str(SemVer.parse("1.2.3-rc.1+b5")) == "1.2.3-rc.1+b5"
    for bad in ("1.2", "v1.2.0", "01.2.3", "1.2.3-01", "1.2.3-", "../1.0.0", "1.0.0/x", ""):
        with pytest.raises(ReleaseError, match="not a version"):
            SemVer.parse(bad)


def test_versions_must_increase_and_a_release_is_never_rewritten(store: Store) -> None:
    info = create_release(store, "1.0.0", "first", actor=Actor("tester", "admin"))
    before = _snapshot(info.path)
    with pytest.raises(ReleaseError, match=r"exists already and is never rewritten.*1\.0\.1"):
        create_release(store, "1.0.0", "again", actor=Actor("tester", "admin"))
    for lower in ("0.9.0", "1.0.0-rc.1"):
        with pytest.raises(ReleaseError, match=r"lower than the latest release 1\.0\.0"):
            create_release(store, lower, "older", actor=Actor("tester", "admin"))
    with pytest.raises(ReleaseError, match="same precedence"):
        create_release(store, "1.0.0+rebuild", "same", actor=Actor("tester", "admin"))
    with pytest.raises(ReleaseError, match="not a version"):
        create_release(store, "v1.1.0", "prefixed", actor=Actor("tester", "admin"))
    assert _snapshot(info.path) == before
    assert [r.version for r in list_releases(store)] == ["1.0.0"]
    create_release(store, "1.1.0-rc.1", "candidate", actor=Actor("tester", "admin"))
    create_release(store, "1.1.0", "final", actor=Actor("tester", "admin"))
    assert [r.version for r in list_releases(store)] == ["1.0.0", "1.1.0-rc.1", "1.1.0"]
    assert _snapshot(info.path) == before
    mode = (info.path / "manifest.json").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_refuses_empty_message_and_empty_workspace(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "empty")
    store.init(tile_size=32)
    with pytest.raises(ReleaseError, match="message"):
        create_release(store, "1.0.0", "  ", actor=Actor("tester", "admin"))
    with pytest.raises(ReleaseError, match="Nothing to release"):
        create_release(store, "1.0.0", "nothing", actor=Actor("tester", "admin"))
    assert not release_dir(store, "1.0.0").exists()


# ----------------------------------------------------------------------------- integrity
def test_verify_detects_a_flipped_byte(store: Store, tmp_path: Path) -> None:
    info = create_release(store, "1.0.0", "first", actor=Actor("tester", "admin"))
    assert verify_release(store, "1.0.0").ok
    victim = sorted((info.path / "data").glob("*.parquet"))[0]
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    report = verify_release(store, "1.0.0")
    assert not report.ok
    assert [(m.path, m.problem) for m in report.mismatches] == [
        (victim.relative_to(info.path).as_posix(), "changed")
    ]
    with pytest.raises(ReleaseError, match="does not match its manifest"):
        export_release(store, "1.0.0", "zip", tmp_path, actor=Actor("tester", "admin"))


def test_verify_detects_an_edited_manifest_and_added_files(store: Store) -> None:
    info = create_release(store, "1.0.0", "first", actor=Actor("tester", "admin"))
    manifest = info.path / "manifest.json"
    manifest.chmod(0o644)
    manifest.write_text(manifest.read_text().replace('"first"', '"edited"'))
    (info.path / "extra.txt").write_text("x")
    problems = {(m.path, m.problem) for m in verify_release(store, "1.0.0").mismatches}
    assert problems == {("manifest.json", "manifest"), ("extra.txt", "unexpected")}


def test_failure_mid_write_leaves_no_release_and_no_row(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = rel._SplitWriter._flush

    def failing_flush(self: rel._SplitWriter) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        real(self)

    monkeypatch.setattr(rel._SplitWriter, "_flush", failing_flush)
    with pytest.raises(OSError, match="simulated"):
        create_release(
            store,
            "1.0.0",
            "doomed",
            options=ReleaseOptions(rows_per_group=2),
            actor=Actor("tester", "admin"),
        )
    monkeypatch.undo()
    releases = store.root / "releases"
    assert list(releases.iterdir()) == []
    assert list_releases(store) == [] and store.tables.read("releases").num_rows == 0
    assert create_release(store, "1.0.0", "retry", actor=Actor("tester", "admin")).n_tiles == len(
        _expected_ids(store)
    )


def test_failure_in_card_leaves_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> str:
        raise RuntimeError("card failed")

    monkeypatch.setattr(rel, "render_card", boom)
    with pytest.raises(RuntimeError):
        create_release(store, "1.0.0", "doomed", actor=Actor("tester", "admin"))
    assert list((store.root / "releases").iterdir()) == []
    assert store.tables.read("releases").num_rows == 0


def test_leftovers_of_a_killed_release_are_invisible_and_cleaned(store: Store) -> None:
    leftover = store.root / "releases" / ".tmp-1.0.0-dead"
    (leftover / "data").mkdir(parents=True)
    (leftover / "data" / "train-00000.parquet").write_bytes(b"half")
    assert list_releases(store) == []
    create_release(store, "1.0.0", "after the crash", actor=Actor("tester", "admin"))
    assert not leftover.exists()
    assert [r.version for r in list_releases(store)] == ["1.0.0"]


def test_release_renamed_but_not_recorded_is_adopted(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> None:
        raise KeyboardInterrupt  # the process dies between the rename and the table row

    monkeypatch.setattr(rel, "_record", crash)
    with pytest.raises(KeyboardInterrupt):
        create_release(store, "1.0.0", "first", actor=Actor("tester", "admin"))
    monkeypatch.undo()
    assert release_dir(store, "1.0.0").is_dir() and list_releases(store) == []
    with pytest.raises(ReleaseError, match="exists already"):
        create_release(store, "1.0.0", "again", actor=Actor("tester", "admin"))
    create_release(store, "1.0.1", "next", actor=Actor("tester", "admin"))
    assert [r.version for r in list_releases(store)] == ["1.0.0", "1.0.1"]
    assert verify_release(store, "1.0.0").ok


# ----------------------------------------------------------------------------- exports
def test_zip_export_holds_the_release(store: Store, tmp_path: Path) -> None:
    info = create_release(store, "1.0.0", "first", actor=Actor("tester", "admin"))
    z = export_release(store, "1.0.0", "zip", tmp_path / "dl", actor=Actor("tester", "admin"))
    assert z == tmp_path / "dl" / "smearlab-release-1.0.0.zip"
    with zipfile.ZipFile(z) as zf:
        names = set(zf.namelist())
        top = "smearlab-release-1.0.0/"
        assert {top + "manifest.json", top + "README.md"} <= names
        data = sorted(n for n in names if n.startswith(top + "data/"))
        assert data == sorted(
            top + p.relative_to(info.path).as_posix() for p in (info.path / "data").iterdir()
        )
        assert zf.read(top + "manifest.json") == (info.path / "manifest.json").read_bytes()
    assert [p.name for p in z.parent.iterdir()] == [z.name]  # no partial file left


def test_png_mask_export_has_one_index_png_per_tile_and_a_legend(
    store: Store, tmp_path: Path
) -> None:
    info = create_release(store, "1.0.0", "first", actor=Actor("tester", "admin"))
    z = export_release(
        store, "1.0.0", "png-masks", tmp_path / "masks.zip", actor=Actor("tester", "admin")
    )
    assert z == tmp_path / "masks.zip"
    top = "smearlab-release-1.0.0-masks/"
    with zipfile.ZipFile(z) as zf:
        pngs = [n for n in zf.namelist() if n.endswith(".png")]
        assert len(pngs) == info.n_tiles
        for name in pngs:
            split, file = name[len(top) :].split("/")[1:]
            tile = file.removesuffix(".png")
            assert store.split_of(store.tile(tile).smear_id) == split
            im = Image.open(io.BytesIO(zf.read(name)))
            assert im.mode == "P"
            np.testing.assert_array_equal(np.asarray(im), store.mask(tile))
        legend = json.loads(zf.read(top + "legend.json"))
        rows = list(csv.DictReader(io.StringIO(zf.read(top + "legend.csv").decode())))
    names = [*store.schema().names, "unlabelled"]
    assert [c["name"] for c in legend["classes"]] == names
    assert legend["unlabelled_value"] == 255
    assert legend["classes"][-1] == {"value": 255, "name": "unlabelled", "color": "#000000"}
    assert [(int(r["value"]), r["name"]) for r in rows] == [
        *((i, n) for i, n in enumerate(store.schema().names)),
        (255, "unlabelled"),
    ]
    assert legend["classes"][0]["color"] == store.schema().colors[0]


def test_export_refuses_unknown_format_and_release(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="No release"):
        export_release(store, "9.9.9", "zip", tmp_path, actor=Actor("tester", "admin"))
    create_release(store, "1.0.0", "first", actor=Actor("tester", "admin"))
    with pytest.raises(ReleaseError, match="'zip' or 'png-masks'"):
        export_release(store, "1.0.0", "tar", tmp_path, actor=Actor("tester", "admin"))  # type: ignore[arg-type]


# ------------------------------------------------------------------ module layout
def _release_imports(module: str) -> set[str]:
    """Modules of the release package that ``dataset/release/<module>.py`` imports."""
    import ast

    path = Path(__file__).resolve().parents[2] / "dataset" / "release" / f"{module}.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        found.update(n for n in names if n.startswith("dataset.release"))
    return found


def test_release_modules_depend_one_way_and_the_card_on_the_manifest_alone() -> None:
    assert _release_imports("manifest") == set()
    assert _release_imports("card") == {"dataset.release.manifest"}
    assert _release_imports("verify") == {"dataset.release.manifest"}
    assert _release_imports("writer") == {
        "dataset.release.manifest",
        "dataset.release.card",
        "dataset.release._parquet",
        "dataset.release.pseudonyms",
    }
    assert "dataset.release.writer" not in _release_imports("export")


@pytest.mark.parametrize("first", ["dataset.release.card", "dataset.release.manifest"])
def test_any_release_module_imports_first_in_a_fresh_interpreter(first: str) -> None:
    import subprocess
    import sys

    code = f"import {first}; from dataset.release import create_release, export_release"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
