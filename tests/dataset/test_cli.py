"""Tests for the dataset command line: exit codes, one JSON document, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from dataset.cli import main
from dataset.roles import COMMAND_LINE
from dataset.store import Store
from tests._accounts import add_account

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("SMEARLAB_WORKSPACE", raising=False)
    monkeypatch.setenv("SMEARLAB_ANNOTATOR", "cli-test")  # a save needs a name (issue #9)
    return tmp_path / "ws"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code, out, _ = run(capsys, *argv, "--json")
    return code, json.loads(out)  # exactly one JSON document on stdout


def one_sentence(err: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.fixture
def smear_files(tmp_path, make_smear, encode_image):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(encode_image(make_smear(96, 80, seed=1).rgb))
    (folder / "b.jpg").write_bytes(encode_image(make_smear(70, 60, seed=2).rgb, "JPEG"))
    return folder


@pytest.fixture
def ready(ws, capsys, smear_files):
    """A workspace with 64-px tiles and two smears; returns (ws, tile of smear a)."""
    assert run(capsys, "--workspace", ws, "init", "--tile-size", 64)[0] == 0
    code, doc = run_json(capsys, "ingest", smear_files, "--workspace", ws)
    assert code == 0
    # The accounts that commands recording a person name (issue 12).
    add_account(ws, "cli-test", "annotator")
    add_account(ws, "ann", "annotator")
    return ws, Store.open(ws).tiles(doc["files"][0]["smear_id"])[0]


def write_mask(path: Path, mask: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(mask).save(path)
    return path


# ------------------------------------------------------------------ init, ingest
def test_init_prints_the_schema_and_refuses_changes_once_frozen(ws, capsys, tmp_path):
    code, doc = run_json(
        capsys, "init", "--classes", "background,erythrocyte,leukocyte", "--workspace", ws
    )
    assert code == 0
    assert doc["classes"] == ["background", "erythrocyte", "leukocyte"]
    assert doc["tile_size"] == 256 and doc["schema_version"] == 1
    code, out, _ = run(capsys, "--workspace", ws, "init", "--classes", "background,cell")
    assert code == 0 and "schema version 2" in out  # still editable: nothing saved yet
    code, _, err = run(capsys, "--workspace", ws, "init", "--classes", "Bad Name!")
    assert code == 1 and "'bad name!' is not allowed" in err
    one_sentence(err)


def test_ingest_json_rows_and_exit_codes(ws, capsys, smear_files, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    code, doc = run_json(
        capsys, "--workspace", ws, "ingest", smear_files, bad, "--patient", "P1", "--stain", "MGG"
    )
    assert code == 1  # one file refused
    rows = doc["files"]
    assert [(Path(r["input"]).name, r["status"]) for r in rows] == [
        ("a.png", "added"),
        ("b.jpg", "added"),
        ("bad.png", "rejected"),
    ]
    # A new workspace takes the default classes and 256-pixel tiles: one tile per smear.
    assert rows[0]["tiles"] == 1 and rows[0]["smear_id"].startswith("s")
    assert Store.open(ws).tile_size() == 256
    assert "bad.png" in rows[2]["reason"] and rows[2]["smear_id"] is None
    smears = Store.open(ws).smears()
    assert {s.patient for s in smears} == {"P1"} and {s.stain for s in smears} == {"MGG"}
    # Duplicates are not refusals.
    code, doc = run_json(capsys, "--workspace", ws, "ingest", smear_files / "a.png")
    assert code == 0 and doc["files"][0]["status"] == "duplicate"


def test_ingest_text_output_names_each_file(ws, capsys, smear_files):
    code, out, _ = run(capsys, "--workspace", ws, "ingest", smear_files)
    assert code == 0
    assert out.splitlines()[0].startswith("added") and "a.png" in out and "1 tile)" in out
    assert out.splitlines()[-1] == "2 added, 0 duplicate, 0 rejected."


@pytest.mark.parametrize(
    "extra", [["--um-per-px", "-1"], ["--um-per-px", "abc"], ["--patient", "a\x07b"]]
)
def test_bad_metadata_is_a_usage_error_and_stores_nothing(ws, capsys, smear_files, extra):
    code, _, err = run(capsys, "--workspace", ws, "ingest", smear_files, *extra)
    assert code == 2 and "Traceback" not in err
    assert Store.open(ws).smears() == []


# ------------------------------------------------------------------ import-masks
def test_import_masks_from_a_pairs_csv(ws, capsys, tmp_path, make_smear, encode_image):
    smear = make_smear(96, 80, seed=3)
    (tmp_path / "s.png").write_bytes(encode_image(smear.rgb))
    grey = np.where(smear.mask == 2, 255, 0).astype(np.uint8)
    (tmp_path / "m.png").write_bytes(encode_image(grey))
    (tmp_path / "small.png").write_bytes(encode_image(grey[:10, :10]))
    (tmp_path / "pairs.csv").write_text("image,mask\ns.png,m.png\ns.png,small.png\n")
    code, doc = run_json(
        capsys,
        "--workspace",
        ws,
        "import-masks",
        "--pairs",
        tmp_path / "pairs.csv",
        "--levels",
        "0=unlabelled,255=leukocyte",
    )
    assert code == 1
    ok, refused = doc["files"]
    assert (ok["input"], ok["status"], ok["image"]) == ("m.png", "added", "s.png")
    assert ok["revisions"] > 0
    assert refused["status"] == "rejected" and "'small.png' is 10 × 10" in refused["reason"]
    store = Store.open(ws)
    assert {r.source for r in store.latest_revisions().values()} == {"import"}
    whole = store.smear_mask(ok["smear_id"])
    assert np.array_equal(whole, np.where(smear.mask == 2, 2, 255))


def test_import_masks_with_a_missing_csv_is_one_sentence(ws, capsys, tmp_path):
    missing = tmp_path / "nope.csv"
    code, _, err = run(
        capsys, "--workspace", ws, "import-masks", "--pairs", missing, "--levels", "0=background"
    )
    assert code == 1 and "nope.csv" in err and "does not exist" in err
    one_sentence(err)


# ------------------------------------------------------------------ annotate, skip, stats
def test_annotate_saves_revisions_and_conflicts_exit_3(ready, capsys, tmp_path):
    ws, tile = ready
    mask = write_mask(tmp_path / "m.png", np.ones((tile.h, tile.w), np.uint8))
    code, doc = run_json(
        capsys, "--workspace", ws, "annotate", tile.tile_id, mask, "--annotator", "ann",
        "--seconds", "42",
    )  # fmt: skip
    assert code == 0 and doc["revision"] == 1
    code, doc = run_json(capsys, "--workspace", ws, "annotate", tile.tile_id, mask)
    assert (code, doc["revision"]) == (0, 2)  # no base: on top of the latest
    code, _, err = run(
        capsys, "--workspace", ws, "annotate", tile.tile_id, mask, "--base-revision", "1"
    )
    assert code == 3 and "revision 2" in err and "--force" in err
    one_sentence(err)
    code, doc = run_json(
        capsys, "--workspace", ws, "annotate", tile.tile_id, mask, "--base-revision", "1",
        "--force",
    )  # fmt: skip
    assert (code, doc["revision"]) == (0, 3)
    history = Store.open(ws).history(tile.tile_id)
    assert [(r.revision, r.base_revision) for r in history] == [(1, None), (2, 1), (3, 1)]
    assert (history[0].annotator, history[0].seconds) == ("ann", 42.0)


def test_annotate_refusals(ready, capsys, tmp_path):
    ws, tile = ready
    wrong = write_mask(tmp_path / "wrong.png", np.ones((5, 5), np.uint8))
    rgb = write_mask(tmp_path / "rgb.png", np.ones((tile.h, tile.w, 3), np.uint8))
    good = write_mask(tmp_path / "good.png", np.ones((tile.h, tile.w), np.uint8))
    cases = [
        ((tile.tile_id, wrong), 1, f"must be a {tile.w}x{tile.h}"),
        ((tile.tile_id, rgb), 1, "single-channel"),
        ((tile.tile_id, tmp_path / "none.png"), 1, "none.png"),
        (("s000000000000_x0000_y0000", good), 1, "No tile"),
        ((tile.tile_id, good, "--force"), 2, "--base-revision"),
    ]
    for argv, expected, text in cases:
        code, _, err = run(capsys, "--workspace", ws, "annotate", *argv)
        assert code == expected and text in err, (argv, err)
        one_sentence(err)
    assert Store.open(ws).latest(tile.tile_id) is None


def test_wand_fills_the_clicked_cells_like_the_page_and_saves(ready, capsys, tmp_path):
    from PIL import Image

    from dataset.wand import Click, cell_region, to_lab

    ws, tile = ready
    store = Store.open(ws)
    name = store.schema().names[1]
    lab = to_lab(np.asarray(store.tile_image(tile.tile_id)))
    expected = np.full((tile.h, tile.w), 255, np.uint8)
    for x, y in ((10, 12), (40, 30)):
        expected[cell_region(lab, Click(x, y))] = store.schema().index(name)
    out = tmp_path / "wand.png"
    code, doc = run_json(
        capsys, "--workspace", ws, "wand", tile.tile_id, "--at", "10,12", "--at", "40,30",
        "--class", name, "--out", out,
    )  # fmt: skip
    assert code == 0 and doc["changed_px"] == int((expected != 255).sum())
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)
    assert Store.open(ws).latest(tile.tile_id) is None  # --out alone saves nothing
    code, doc = run_json(
        capsys, "--workspace", ws, "wand", tile.tile_id, "--at", "10,12", "--class", name,
        "--save", "--annotator", "ann",
    )  # fmt: skip
    assert (code, doc["revision"]) == (0, 1)
    saved = Store.open(ws).mask(tile.tile_id)
    np.testing.assert_array_equal(saved != 255, cell_region(lab, Click(10, 12)))
    code, doc = run_json(
        capsys, "--workspace", ws, "wand", tile.tile_id, "--at", "10,12", "--class", name,
        "--save", "--annotator", "ann",
    )  # fmt: skip
    assert code == 0 and doc["changed_px"] == 0 and "revision" not in doc
    assert [r.revision for r in Store.open(ws).history(tile.tile_id)] == [1], "no empty save"


def test_wand_refusals(ready, capsys, tmp_path):
    ws, tile = ready
    name = Store.open(ws).schema().names[1]
    out = str(tmp_path / "m.png")
    cases = [
        (("--at", "1,1", "--class", name), 2, "--out"),
        (("--at", "a,b", "--class", name, "--out", out), 2, "X,Y"),
        (("--at", f"{tile.w},0", "--class", name, "--out", out), 1, "outside"),
        (("--at", "1,1", "--class", "nope", "--out", out), 1, "Unknown class"),
    ]
    for argv, expected, text in cases:
        code, _, err = run(capsys, "--workspace", ws, "wand", tile.tile_id, *argv)
        assert code == expected and text in err, (argv, err)
    assert not Path(out).exists() and Store.open(ws).latest(tile.tile_id) is None


def test_skip_and_stats(ready, capsys):
    ws, tile = ready
    assert run(capsys, "--workspace", ws, "skip", tile.tile_id)[0] == 0
    assert Store.open(ws).is_skipped(tile.tile_id)
    code, doc = run_json(capsys, "stats", "--workspace", ws)
    assert code == 0
    assert (doc["smears"], doc["skipped"], doc["labelled"], doc["tile_size"]) == (2, 1, 0, 64)
    code, _, err = run(capsys, "--workspace", ws, "skip", "nope")
    assert code == 1 and "No tile 'nope'" in err


# ------------------------------------------------------------------ workspace, usage
def test_workspace_from_environment_and_flag_wins(ws, capsys, monkeypatch, tmp_path):
    env_ws = tmp_path / "from_env"
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(env_ws))
    assert run(capsys, "init")[0] == 0
    assert Store.open(env_ws).is_initialised()
    assert run(capsys, "init", "--workspace", ws)[0] == 0
    assert Store.open(ws).is_initialised()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["ingest"],
        ["import-masks", "--levels", "0=background"],
        ["init", "--tile-size", "7"],
        ["export", "1.0.0", "--format", "tar", "--out", "x"],
        ["annotate", "t", "m.png", "--seconds", "-3"],
    ],
)
def test_usage_errors_exit_2(ws, capsys, argv):
    code, _, err = run(capsys, *argv, "--workspace", ws)
    assert code == 2 and "usage:" in err


# ------------------------------------------------------------------ release wiring
@pytest.fixture
def fake_release(monkeypatch):
    """A stand-in dataset.release recording its calls (the real one has its own tests)."""
    calls = []
    module = types.ModuleType("dataset.release")

    class Info:
        version, n_tiles, counts, path = "1.0.0", 3, {"train": 3}, "/r/1.0.0"

        def model_dump(self, mode="python"):
            return {"version": self.version, "n_tiles": self.n_tiles}

    def create_release(
        store,
        version,
        message,
        seed=None,
        on_progress=None,
        approved_only=False,
        name_people=False,
        *,
        actor,
    ):
        calls.append(("create", version, message, seed, approved_only, name_people, actor))
        return Info()

    def verify_release(store, version):
        calls.append(("verify", version))
        bad = version == "9.9.9"
        return types.SimpleNamespace(ok=not bad, checked=5, mismatches=["x.parquet"] if bad else [])

    def export_release(store, version, fmt, out, *, actor):
        calls.append(("export", version, fmt, out, actor))
        return Path(out)

    module.create_release = create_release
    module.verify_release = verify_release
    module.export_release = export_release
    monkeypatch.setitem(sys.modules, "dataset.release", module)
    return calls


def test_release_verify_export_call_dataset_release(ws, capsys, fake_release, tmp_path):
    code, doc = run_json(
        capsys, "--workspace", ws, "release", "1.0.0", "-m", "first", "--seed", "7"
    )
    assert code == 0 and doc == {"version": "1.0.0", "n_tiles": 3}
    code, out, _ = run(capsys, "--workspace", ws, "verify", "1.0.0")
    assert code == 0 and "verified" in out
    code, _, err = run(capsys, "--workspace", ws, "verify", "9.9.9")
    assert code == 1 and "mismatch: x.parquet" in err and "does not match" in err
    out_path = tmp_path / "r.zip"
    code, doc = run_json(
        capsys, "--workspace", ws, "export", "1.0.0", "--format", "zip", "--out", out_path
    )
    assert code == 0 and doc["path"] == str(out_path)
    assert fake_release == [
        ("create", "1.0.0", "first", 7, False, False, COMMAND_LINE),
        ("verify", "1.0.0"),
        ("verify", "9.9.9"),
        ("export", "1.0.0", "zip", out_path, COMMAND_LINE),
    ]


def test_release_end_to_end_with_the_real_module(ready, capsys, tmp_path):
    ws, tile = ready
    mask = write_mask(tmp_path / "m.png", np.ones((tile.h, tile.w), np.uint8))
    assert run(capsys, "--workspace", ws, "annotate", tile.tile_id, mask)[0] == 0
    code, out, err = run(capsys, "--workspace", ws, "release", "1.0.0", "-m", "first labels")
    assert code == 0 and "Release 1.0.0" in out, err
    assert run(capsys, "--workspace", ws, "verify", "1.0.0")[0] == 0
    code, _, err = run(capsys, "--workspace", ws, "verify", "2.0.0")
    assert code == 1
    one_sentence(err)
    # Change one byte of one released file: verify must notice.
    from dataset.release import release_dir

    victim = next(p for p in sorted(release_dir(Store.open(ws), "1.0.0").rglob("*.parquet")))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))
    code, _, err = run(capsys, "--workspace", ws, "verify", "1.0.0")
    assert code == 1 and victim.name in err


# ------------------------------------------------------------------ as a program
def test_python_dash_m_dataset(ws):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMEARLAB_")}
    env["PYTHONPATH"] = str(ROOT)
    ok = subprocess.run(
        [sys.executable, "-m", "dataset", "--workspace", str(ws), "stats", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["smears"] == 0
    usage = subprocess.run(
        [sys.executable, "-m", "dataset"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_init_takes_the_class_colours_as_the_class_editor_does(ws, capsys) -> None:
    classes = ["init", "--workspace", ws, "--classes", "background,cell"]
    code, doc = run_json(capsys, *classes, "--colors", "#FFFFFF, #e53935")
    assert code == 0 and doc["colors"] == ["#ffffff", "#e53935"]
    assert Store.open(ws).schema().colors == ("#ffffff", "#e53935")
    code, _, err = run(capsys, *classes, "--colors", "#ffffff")
    assert code == 1 and "one colour per class" in err
    one_sentence(err)
    code, _, err = run(capsys, *classes, "--colors", "#ffffff,red")
    assert code == 1 and "'red' is not of the form #rrggbb" in err
