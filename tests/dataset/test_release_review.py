"""Releases and review: approved tiles only, the card's review counts and people, and the
pseudonymous ``annotator`` column (stable across releases, names only when the lab opts in)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dataset.images import encode_png_lossless, smear_id_for
from dataset.release import ReleaseError, create_release
from dataset.release.pseudonyms import account_key, pseudonym_secret
from dataset.roles import Actor
from dataset.store import NewSmear, Store

RITA = Actor("rita", "reviewer")


@pytest.fixture
def reviewed(store: Store, make_smear) -> tuple[Store, list[str]]:
    """Four tiles by ana, bob, ana, ana: approved, approved, changes requested, unreviewed."""
    rgb = make_smear(256, 64, seed=9).rgb
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 256, 64, label="s.png"))
    ids = [t.tile_id for t in store.tiles(sid)]
    assert len(ids) == 4
    for tid, who in zip(ids, ("ana", "bob", "ana", "ana"), strict=True):
        t = store.tile(tid)
        store.save_mask(tid, np.ones((t.h, t.w), np.uint8), annotator=who)
    store.approve(ids[0], 1, RITA)
    store.approve(ids[1], 1, Actor("rob", "reviewer"))
    store.request_changes(ids[2], 1, RITA, "too coarse")
    return store, ids


def _rows(path: Path) -> list[dict]:
    return [
        r
        for f in sorted((path / "data").glob("*.parquet"))
        for r in pq.read_table(f).drop(["image", "mask"]).to_pylist()
    ]


def test_an_approved_only_release_holds_the_approved_tiles_and_says_so(
    reviewed: tuple[Store, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, ids = reviewed
    info = create_release(
        store, "1.0.0", "approved", approved_only=True, actor=Actor("tester", "admin")
    )
    rows = _rows(info.path)
    assert sorted(r["tile_id"] for r in rows) == sorted(ids[:2])
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert manifest["approved_only"] is True
    assert manifest["review_counts"] == {"unreviewed": 0, "approved": 2, "changes_requested": 0}
    card = (info.path / "README.md").read_text()
    assert "approved tiles only" in card and "| approved | 2 |" in card
    # Still read as a plain release: pandas, DuckDB and huggingface datasets.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets
    import duckdb
    import pandas as pd

    assert len(pd.read_parquet(info.path / "data")) == 2
    glob = (info.path / "data" / "*.parquet").as_posix()
    assert duckdb.sql(f"select count(*) from '{glob}'").fetchall() == [(2,)]
    split = next(s for s, n in info.counts.items() if n)
    ds = datasets.load_dataset(
        "parquet", data_dir=str(info.path), split=split, cache_dir=str(tmp_path / "c")
    )
    assert len(ds) == info.counts[split]


def test_the_card_counts_every_review_state_and_people_by_role_without_names(
    reviewed: tuple[Store, list[str]],
) -> None:
    store, _ = reviewed
    info = create_release(store, "1.0.0", "all", actor=Actor("tester", "admin"))
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert manifest["approved_only"] is False
    assert manifest["review_counts"] == {"unreviewed": 1, "approved": 2, "changes_requested": 1}
    assert manifest["people"] == {"annotators": 2, "reviewers": 2}
    assert manifest["named_people"] is None
    card = (info.path / "README.md").read_text()
    for line in ("| unreviewed | 1 |", "| changes requested | 1 |", "| annotators | 2 |"):
        assert line in card
    blobs = [p.read_bytes() for p in info.path.rglob("*") if p.is_file()]
    blobs.append(json.dumps(_rows(info.path), default=str).encode())
    for name in (b"ana", b"bob", b"rita", b"rob"):
        assert not any(name in b for b in blobs), name


def test_the_annotator_key_is_stable_across_releases_and_needs_the_workspace_secret(
    reviewed: tuple[Store, list[str]], tmp_path: Path
) -> None:
    store, ids = reviewed
    first = {
        r["tile_id"]: r["annotator"]
        for r in _rows(create_release(store, "1.0.0", "a", actor=Actor("tester", "admin")).path)
    }
    second = {
        r["tile_id"]: r["annotator"]
        for r in _rows(create_release(store, "1.1.0", "b", actor=Actor("tester", "admin")).path)
    }
    assert first == second  # stable across releases of the workspace
    assert first[ids[0]] == first[ids[2]] != first[ids[1]]  # one key per account
    secret = pseudonym_secret(store.root)
    assert first[ids[0]] == account_key(secret, "ana")
    assert (store.root / "keys" / "release-pseudonyms.key").stat().st_mode & 0o077 == 0
    # Another workspace (another secret) gives the same account another key.
    other = Store.open(tmp_path / "other").root
    assert account_key(pseudonym_secret(other), "ana") != first[ids[0]]


def test_a_lab_that_opts_in_names_annotators_and_reviewers(
    reviewed: tuple[Store, list[str]],
) -> None:
    store, ids = reviewed
    info = create_release(store, "1.0.0", "named", name_people=True, actor=Actor("tester", "admin"))
    rows = {r["tile_id"]: r["annotator"] for r in _rows(info.path)}
    assert rows[ids[0]] == "ana" and rows[ids[1]] == "bob"
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert manifest["named_people"] == {
        "annotators": {"ana": 3, "bob": 1},
        "reviewers": {"rita": 2, "rob": 1},
    }
    card = (info.path / "README.md").read_text()
    assert "| annotator | ana | 3 |" in card and "| reviewer | rob | 1 |" in card


def test_approved_only_with_nothing_approved_is_refused(store: Store, make_smear) -> None:
    rgb = make_smear(64, 64, seed=2).rgb
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 64, 64, label="s.png"))
    tid = store.tiles(sid)[0].tile_id
    store.save_mask(tid, np.ones((64, 64), np.uint8), annotator="ana")
    with pytest.raises(ReleaseError, match="none of the 1 labelled tiles is approved"):
        create_release(store, "1.0.0", "x", approved_only=True, actor=Actor("tester", "admin"))
    assert not (store.root / "releases" / "1.0.0").exists()


def test_the_card_reports_the_agreement_of_the_released_double_labelled_tiles(
    reviewed: tuple[Store, list[str]],
) -> None:
    from dataset.settings import set_workspace_setting

    store, ids = reviewed
    card = (
        create_release(store, "0.9.0", "none twice", actor=Actor("tester", "admin")).path
        / "README.md"
    )
    assert "No released tile was labelled twice" in card.read_text()
    set_workspace_setting(store.root, "double_label_share", 1.0)
    # carl labels two tiles again: ids[0] (ana's, all erythrocyte) the same, ids[3] (ana's) as
    # background. Erythrocyte: both 4096 on ids[0], ana 4096 and carl 0 on ids[3]:
    # Dice 2*4096/(8192+4096) = 0.667, IoU 4096/8192 = 0.5, 2 tiles. Background: carl 4096 on
    # ids[3] only: Dice 0, IoU 0, 1 tile. ids[3] is unreviewed, left out of approved-only.
    store.save_label(ids[0], np.ones((64, 64), np.uint8), annotator="carl")
    store.save_label(ids[3], np.zeros((64, 64), np.uint8), annotator="carl")
    info = create_release(store, "1.0.0", "agreement", actor=Actor("tester", "admin"))
    text = (info.path / "README.md").read_text()
    secret = pseudonym_secret(store.root)
    ana, carl = sorted([account_key(secret, "ana"), account_key(secret, "carl")])
    assert "## Agreement between annotators" in text and "pseudonymous account keys" in text
    assert f"| {ana} / {carl} | erythrocyte | 0.667 | 0.500 | 2 |" in text
    assert f"| {ana} / {carl} | background | 0.000 | 0.000 | 1 |" in text
    assert "carl" not in text and "ana /" not in text
    manifest = json.loads((info.path / "manifest.json").read_text())
    assert manifest["agreement"]["n_tiles"] == 2
    # Until a reviewer picks, the release holds the first label: ana's, not carl's.
    released = {r["tile_id"]: r["annotator"] for r in _rows(info.path)}
    assert released[ids[3]] == account_key(secret, "ana")
    named = create_release(
        store,
        "1.1.0",
        "approved",
        approved_only=True,
        name_people=True,
        actor=Actor("tester", "admin"),
    )
    text = (named.path / "README.md").read_text()
    assert "| ana / carl | erythrocyte | 1.000 | 1.000 | 1 |" in text
    assert "background" not in text.split("## Agreement between annotators")[1].split("##")[0]
