"""The audit trail (issue 12, item 4): one append-only row per action, written by the package
function that does the action, so the command line and the pages record alike.

Actions of the dataset package are checked here; training, promotion, jobs and the patient
registry in tests/training/test_audit_actions.py; the page in tests/app/test_audit_page.py.
"""

from __future__ import annotations

import datetime as dt
import getpass
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from deltalake import DeltaTable

from dataset import audit
from dataset.cli import main
from dataset.demo import load_demo
from dataset.imports import MaskPair, import_masks
from dataset.ingest import ingest_files
from dataset.release import create_release, export_release
from dataset.roles import Actor
from dataset.store import Store
from tests._accounts import add_account

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("_audit_child.py")


def rows_of(store_or_ws, action: str | None = None) -> list[audit.AuditRow]:
    return audit.read(store_or_ws, action=action)


def key(row: audit.AuditRow) -> tuple:
    return (row.actor, row.action, row.object_id, row.before, row.after)


@pytest.fixture
def labelled(store: Store, make_smear, encode_image) -> tuple[Store, str]:
    """A store with one smear and one saved tile; returns the store and that tile's id."""
    [res] = ingest_files(store, [("s.png", encode_image(make_smear(96, 80).rgb))], actor="ana")
    tile = store.tiles(res.smear_id)[0]
    store.save_mask(tile.tile_id, np.ones((tile.h, tile.w), np.uint8), annotator="ana")
    return store, tile.tile_id


# ------------------------------------------------------------------------------ the table
def test_a_row_holds_who_when_what_and_the_references(workspace: Path) -> None:
    before = dt.datetime.now(dt.UTC)
    row = audit.record(
        workspace,
        actor=" ana ",
        action="promote",
        object_id="m-2",
        before="m-1",
        after="m-2",
        detail={"kind": "segmentation"},
    )
    [stored] = audit.read(workspace)
    assert stored == row
    assert (stored.actor, stored.action, stored.object_id) == ("ana", "promote", "m-2")
    assert (stored.before, stored.after) == ("m-1", "m-2")
    assert json.loads(stored.detail) == {"kind": "segmentation"}
    assert stored.os_user == getpass.getuser()
    assert before <= stored.at <= dt.datetime.now(dt.UTC) and stored.at.utcoffset() == dt.timedelta(
        0
    )
    assert list(stored.to_json()) == list(audit.FIELDS)


def test_unknown_actions_and_nameless_actors_are_refused_and_write_nothing(
    workspace: Path,
) -> None:
    with pytest.raises(ValueError, match=r"Unknown audit action 'delete_row'.*sign_in"):
        audit.record(workspace, actor="ana", action="delete_row", object_id="x")
    with pytest.raises(ValueError, match="Say who"):
        audit.record(workspace, actor="  ", action="save", object_id="x")
    with pytest.raises(ValueError, match="Unknown audit action"):
        audit.read(workspace, action="frobnicate")
    assert audit.read(workspace) == []
    # Reading an unaudited workspace creates nothing.
    assert not (workspace / "tables" / audit.TABLE).exists()


def test_the_vocabulary_covers_every_action_of_the_issue() -> None:
    issue = {
        "sign_in", "sign_in_failed", "sign_out", "upload", "save", "skip", "review",
        "release", "export", "train_start", "train_cancel", "promote", "rollback",
        "patient_add", "patient_change", "visit_add", "visit_change", "diagnosis_confirm",
        "patient_open", "user_add", "user_change",
    }  # fmt: skip
    assert issue <= set(audit.ACTIONS)


def test_read_filters_by_time_actor_and_action(workspace: Path, monkeypatch) -> None:
    times = iter(dt.datetime(2026, 3, d, 12, tzinfo=dt.UTC) for d in (1, 2, 3, 4))
    monkeypatch.setattr(audit, "_now", lambda: next(times))  # one row a day
    audit.record(workspace, actor="ana", action="save", object_id="t1")
    audit.record(workspace, actor="bob", action="save", object_id="t2")
    audit.record(workspace, actor="ana", action="release", object_id="1.0.0")
    audit.record(workspace, actor="ana", action="save", object_id="t3")
    monkeypatch.undo()

    def ids(**kw) -> list[str]:
        return [r.object_id for r in audit.read(workspace, **kw)]

    assert ids() == ["t1", "t2", "1.0.0", "t3"]
    assert ids(since=dt.date(2026, 3, 2)) == ["t2", "1.0.0", "t3"]
    assert ids(since=dt.datetime(2026, 3, 2, 12, 0, 1)) == ["1.0.0", "t3"]  # naive: UTC
    assert ids(until=dt.date(2026, 3, 3)) == ["t1", "t2"]
    assert ids(actor="ana") == ["t1", "1.0.0", "t3"]
    assert ids(action="save", actor="ana", since=dt.date(2026, 3, 2)) == ["t3"]


def test_parse_when_takes_dates_and_times_and_names_the_format() -> None:
    assert audit.parse_when("2026-03-02") == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    assert audit.parse_when("2026-03-02T14:30") == dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC)
    assert audit.parse_when("2026-03-02T14:30+01:00").hour == 14
    with pytest.raises(ValueError, match=r"--since 'last week' is not a date; give YYYY-MM-DD"):
        audit.parse_when("last week")


# ------------------------------------------------------------------------------ append only
def test_the_module_offers_no_way_to_change_or_remove_a_row() -> None:
    public = {
        name
        for name, value in vars(audit).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", "") == audit.__name__
    }
    assert public == {"record", "record_all", "read", "parse_when", "require_actor",
                      "authorise", "AuditError", "AuditRow", "Event"}  # fmt: skip
    words = ("delete", "update", "remove", "edit", "overwrite", "truncate", "vacuum", "restore")
    assert not [n for n in dir(audit) if any(w in n.lower() for w in words)]


def test_the_tables_history_holds_appends_only(workspace: Path) -> None:
    """Past the compaction interval: a compaction rewrites files but changes no row."""
    from dataset._delta import COMPACT_EVERY

    for i in range(COMPACT_EVERY + 3):
        audit.record(workspace, actor="ana", action="save", object_id=f"t{i}")
    table = DeltaTable(str(workspace / "tables" / audit.TABLE))
    operations = [h["operation"] for h in table.history()]
    assert set(operations) <= {"CREATE TABLE", "WRITE", "OPTIMIZE"}
    assert "OPTIMIZE" in operations  # the compaction did run
    writes = [h for h in table.history() if h["operation"] == "WRITE"]
    assert {h["operationParameters"]["mode"] for h in writes} == {"Append"}
    log = workspace / "tables" / audit.TABLE / "_delta_log"
    for entry in sorted(log.glob("*.json")):
        for line in entry.read_text().splitlines():
            action = json.loads(line)
            if "remove" in action:  # only a compaction removes files, never their rows
                assert action["remove"]["dataChange"] is False
    assert len(audit.read(workspace)) == COMPACT_EVERY + 3


def test_many_processes_appending_at_once_all_land(workspace: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), str(workspace), name, "15"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("a", "b", "c")
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    reported = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        reported += out.split()
    assert len(reported) == 45
    assert sorted(r.object_id for r in audit.read(workspace)) == sorted(reported)


def test_a_failed_audit_write_is_an_error_that_says_the_action_was_done(
    store: Store, make_smear, encode_image, monkeypatch
) -> None:
    [res] = ingest_files(store, [("s.png", encode_image(make_smear(64, 64).rgb))], actor="ana")
    tile = store.tiles(res.smear_id)[0]
    original = audit.DeltaTables.append

    def full_disk(self, name, rows):
        if name == audit.TABLE:
            raise OSError(28, "No space left on device")
        return original(self, name, rows)

    monkeypatch.setattr(audit.DeltaTables, "append", full_disk)
    mask = np.ones((tile.h, tile.w), np.uint8)
    with pytest.raises(audit.AuditError, match=f"save of {tile.tile_id} by ana was done"):
        store.save_mask(tile.tile_id, mask, annotator="ana")
    monkeypatch.undo()
    assert store.latest(tile.tile_id).revision == 1  # the action itself stands
    assert [r.action for r in audit.read(store)] == ["upload"]  # and its row is missing


def test_an_action_with_nobody_named_is_refused_before_it_changes_anything(
    store: Store, make_smear, encode_image
) -> None:
    photo = [("s.png", encode_image(make_smear(64, 64).rgb))]
    with pytest.raises(ValueError, match="Say who does this upload"):
        ingest_files(store, photo, actor="")
    assert store.smears() == [] and audit.read(store) == []


def test_appends_do_not_change_the_store_table_versions(labelled) -> None:
    """Model cards record the store's table versions; audited actions must not move them."""
    store, _ = labelled
    versions = store.table_versions()
    audit.record(store, actor="ana", action="patient_open", object_id="P-1")
    assert store.table_versions() == versions and audit.TABLE not in versions


# ------------------------------------------------------------------------------ actions
def test_upload_records_one_row_per_smear_added(store: Store, make_smear, encode_image) -> None:
    photos = [(f"s{i}.png", encode_image(make_smear(64, 64, seed=i).rgb)) for i in range(2)]
    results = ingest_files(store, [*photos, photos[0]], actor="ana")
    rows = rows_of(store, "upload")
    assert [key(r) for r in rows] == [
        ("ana", "upload", results[0].smear_id, None, None),
        ("ana", "upload", results[1].smear_id, None, None),
    ]  # the repeated photo added nothing, so it has no row
    assert json.loads(rows[0].detail) == {"file": "s0.png", "tiles": results[0].tiles}
    ingest_files(store, photos, actor="bob")
    assert len(rows_of(store, "upload")) == 2  # duplicates again: nothing stored, no row


def test_import_records_uploads_and_saves_by_who_imported(
    store: Store, make_smear, encode_image
) -> None:
    smear = make_smear(64, 64)
    mask = np.where(smear.mask == 2, 255, 0).astype(np.uint8)
    pair = MaskPair("s.png", encode_image(smear.rgb), "m.png", encode_image(mask))
    [res] = import_masks(
        store, [pair], "0=background,255=leukocyte", annotator="lab-x", actor="ana"
    )
    assert res.status == "added" and res.revisions == 1
    rows = audit.read(store)
    assert [(r.actor, r.action) for r in rows] == [("ana", "upload"), ("ana", "save")]
    assert store.latest(rows[1].object_id).annotator == "lab-x"  # the author stays the author


def test_demo_records_who_loaded_it(workspace: Path) -> None:
    store = Store.open(workspace)
    load_demo(store, actor="ana")
    rows = audit.read(store)
    assert {r.action for r in rows} == {"upload", "save"} and {r.actor for r in rows} == {"ana"}
    assert len(rows_of(store, "upload")) == len(store.smears())


def test_save_records_the_base_and_the_new_revision(labelled) -> None:
    store, tile_id = labelled
    tile = store.tile(tile_id)
    store.save_mask(tile_id, np.zeros((tile.h, tile.w), np.uint8), annotator="bob", base_revision=1)
    saves = rows_of(store, "save")
    assert [key(r) for r in saves] == [
        ("ana", "save", tile_id, None, "1"),
        ("bob", "save", tile_id, "1", "2"),
    ]
    assert json.loads(saves[1].detail) == {"source": "manual"}


def test_skip_records_who_skipped(labelled) -> None:
    store, tile_id = labelled
    with pytest.raises(ValueError, match="Say who skips"):
        store.skip(tile_id, annotator="")
    store.skip(tile_id, annotator="bob")
    assert [key(r) for r in rows_of(store, "skip")] == [("bob", "skip", tile_id, None, None)]


def test_release_and_export_record_the_version(labelled, tmp_path: Path) -> None:
    store, _ = labelled
    info = create_release(store, "1.0.0", "first", actor=Actor("rita", "admin"))
    [row] = rows_of(store, "release")
    assert key(row) == ("rita", "release", "1.0.0", None, info.manifest_sha256)
    assert json.loads(row.detail)["n_tiles"] == info.n_tiles
    out = export_release(store, "1.0.0", "zip", tmp_path / "out", actor=Actor("adam", "admin"))
    [row] = rows_of(store, "export")
    assert key(row) == ("adam", "export", "1.0.0", None, None)
    assert json.loads(row.detail) == {"format": "zip", "file": out.name}


def test_a_refused_release_records_nothing(labelled) -> None:
    store, _ = labelled
    create_release(store, "1.0.0", "first", actor=Actor("rita", "admin"))
    with pytest.raises(ValueError, match="exists already"):
        create_release(store, "1.0.0", "again", actor=Actor("rita", "admin"))
    assert len(rows_of(store, "release")) == 1


# ------------------------------------------------------------------------------ the CLI
def test_cli_save_skip_and_release_record_their_person_or_cli(
    labelled, tmp_path: Path, capsys, monkeypatch
) -> None:
    store, tile_id = labelled
    monkeypatch.delenv("SMEARLAB_ANNOTATOR", raising=False)
    tile = store.tile(tile_id)
    mask_path = tmp_path / "m.png"
    from dataset.png import encode_mask

    mask_path.write_bytes(encode_mask(np.zeros((tile.h, tile.w), np.uint8)))
    ws = str(store.root)
    add_account(store.root, "cleo", "annotator")
    assert (
        main(["annotate", tile_id, str(mask_path), "--annotator", "cleo", "--workspace", ws]) == 0
    )
    other = next(t.tile_id for t in store.tiles() if t.tile_id != tile_id)
    assert main(["skip", other, "--annotator", "cleo", "--workspace", ws]) == 0
    assert main(["release", "1.0.0", "-m", "first", "--workspace", ws]) == 0
    capsys.readouterr()
    rows = audit.read(ws)
    assert [key(r) for r in rows[-3:]] == [
        ("cleo", "save", tile_id, "1", "2"),
        ("cleo", "skip", other, None, None),
        ("cli", "release", "1.0.0", None, rows[-1].after),
    ]
    assert {r.os_user for r in rows} == {getpass.getuser()}


def _cli(*argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMEARLAB_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "dataset", *argv], cwd=ROOT, env=env, capture_output=True,
        text=True, check=False, timeout=120,
    )  # fmt: skip


def test_cli_audit_reads_filters_and_refuses_a_bad_date(labelled) -> None:
    store, tile_id = labelled
    ws = str(store.root)
    audit.record(store, actor="bob", action="patient_open", object_id="P-1")
    for _ in range(2):  # a command exits the same way every time
        done = _cli("audit", "--workspace", ws, "--json", "--since", "2000-01-01")
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout)["rows"]
        assert [(r["actor"], r["action"]) for r in rows] == [
            ("ana", "upload"),
            ("ana", "save"),
            ("bob", "patient_open"),
        ]
    done = _cli("--json", "--workspace", ws, "audit", "--actor", "ana", "--action", "save")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)["rows"]
    assert (row["object_id"], row["after"], row["os_user"]) == (tile_id, "1", getpass.getuser())
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    done = _cli("audit", "--workspace", ws, "--since", tomorrow)
    assert done.returncode == 0 and done.stdout.strip().endswith("0 rows.")
    done = _cli("audit", "--workspace", ws, "--since", "yesterday")
    assert done.returncode == 2
    assert "--since 'yesterday' is not a date; give YYYY-MM-DD" in done.stderr
    assert "Traceback" not in done.stderr
    done = _cli("audit", "--workspace", ws, "--action", "delete")
    assert done.returncode == 2 and "the actions are" in done.stderr
