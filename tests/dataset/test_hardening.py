"""Hardening of the store's edges (issue #9): retries, concurrency and refusals."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dataset.ingest import ingest_files, ingest_paths
from dataset.roles import Actor
from dataset.store import Store
from tests._accounts import add_account

ROOT = Path(__file__).resolve().parents[2]

# Dies (SIGKILL, like a power cut) right after the tiles commit, before the smears commit.
_KILLED_MID_INGEST = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from dataset._delta import DeltaTables
    from dataset.ingest import ingest_paths
    from dataset.store import Store

    real_append = DeltaTables.append

    def append(self, name, rows):
        if name == "smears":
            os.kill(os.getpid(), signal.SIGKILL)
        return real_append(self, name, rows)

    DeltaTables.append = append
    ingest_paths(Store.open(sys.argv[1]), [Path(sys.argv[2])], actor="tester")
    """
)


def _tile_rows(store: Store) -> list[str]:
    return store.tables.read("tiles", ["tile_id"]).column(0).to_pylist()


def test_a_retried_ingest_reuses_the_orphan_tiles_of_a_killed_one(
    store, tmp_path, make_smear, encode_image
):
    photo = tmp_path / "smear.png"
    photo.write_bytes(encode_image(make_smear(200, 150, seed=4).rgb))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMEARLAB_")}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_INGEST, str(store.root), str(photo)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    fresh = Store.open(store.root)
    orphans = _tile_rows(fresh)
    assert orphans and fresh.smears() == []  # the kill left tiles without their smear

    [res] = ingest_paths(fresh, [photo], actor="tester")
    assert res.status == "added" and res.tiles == len(orphans)
    rows = _tile_rows(fresh)
    assert sorted(rows) == sorted(set(rows)) == sorted(orphans)  # no duplicate tile rows
    assert {t.tile_id for t in fresh.tiles(res.smear_id)} == set(orphans)


# ------------------------------------------------------------------ input limits
def test_settings_carry_the_input_limits_with_defaults():
    from dataset.settings import get_settings

    s = get_settings()
    assert (s.max_file_mb, s.min_side_px, s.max_aspect_ratio) == (320, 32, 20.0)
    assert get_settings(max_file_mb=5).max_file_mb == 5


def test_streamlits_upload_limit_is_the_file_size_limit():
    import tomllib

    from dataset.settings import get_settings

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == get_settings().max_file_mb


def test_read_input_file_refuses_devices_fifos_and_large_files(tmp_path):
    from dataset.limits import InputRefused, read_input_file

    with pytest.raises(InputRefused, match=r"'/dev/zero' is a character device"):
        read_input_file("/dev/zero", 1000)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputRefused, match=r"FIFO"):
        read_input_file(fifo, 1000)  # no writer: a plain open would block for ever
    big = tmp_path / "big.png"
    with open(big, "wb") as fh:
        fh.truncate(2**20 + 1)
    with pytest.raises(InputRefused, match=r"big.png' is 1.0 MiB; the limit is 1.0 MiB"):
        read_input_file(big, 2**20)
    (tmp_path / "ok.bin").write_bytes(b"x" * 10)
    assert read_input_file(tmp_path / "ok.bin", 10) == b"x" * 10


def test_ingest_refuses_a_device_and_an_oversized_file_by_name(store, tmp_path, monkeypatch):
    monkeypatch.setenv("SMEARLAB_MAX_FILE_MB", "1")
    big = tmp_path / "huge.png"
    with open(big, "wb") as fh:
        fh.truncate(3 * 2**20)
    dev, huge = ingest_paths(store, [Path("/dev/zero"), big], actor="tester")
    assert dev.status == "rejected" and "'/dev/zero' is a character device" in dev.reason
    assert huge.status == "rejected" and "3.0 MiB; the limit is 1.0 MiB" in huge.reason
    [mem] = ingest_files(store, [("upload.png", b"\0" * (2**20 + 1))], actor="tester")
    assert mem.status == "rejected" and "the limit is 1.0 MiB" in mem.reason
    assert store.smears() == []


def test_pairs_csv_naming_dev_zero_is_refused_before_reading(tmp_path):
    from dataset.imports import PairsError, read_pairs_csv

    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text("image,mask\n/dev/zero,/dev/zero\n")
    with pytest.raises(PairsError, match=r"line 2: image '/dev/zero' \(not a regular file"):
        read_pairs_csv(csv_path)
    with pytest.raises(PairsError, match="not a regular file"):
        read_pairs_csv("/dev/zero")


def test_import_masks_cli_with_dev_zero_is_one_error_line(tmp_path):
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text("image,mask\n/dev/zero,/dev/zero\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMEARLAB_")}
    done = subprocess.run(
        [sys.executable, "-m", "dataset", "--workspace", str(tmp_path / "ws"), "import-masks",
         "--pairs", str(csv_path), "--levels", "0=unlabelled"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "'/dev/zero'" in done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((40, 31), "each side must be at least 32 pixels"),
        ((2100, 100), "21 times longer than wide; the limit is 20"),
        ((40, 34), None),  # smaller than a tile, within the limits: one tile
    ],
)
def test_ingest_refuses_thin_and_elongated_images_with_the_reason(
    store, encode_image, size, expected
):
    w, h = size
    pixels = np.full((h, w, 3), 180, np.uint8)
    [res] = ingest_files(store, [("shape.png", encode_image(pixels))], actor="tester")
    if expected is None:
        assert res.status == "added" and res.tiles == 1
    else:
        assert res.status == "rejected" and expected in res.reason and "'shape.png'" in res.reason


def test_a_one_million_by_two_strip_is_refused_from_its_header(store):
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", 1_000_000, 2, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    [res] = ingest_files(store, [("strip.png", png)], actor="tester")
    assert res.status == "rejected" and "1000000 × 2 pixels" in res.reason


def test_a_large_smear_is_kept_as_tiles_committed_in_chunks(
    store, make_smear, encode_image, monkeypatch
):
    import dataset.ingest
    import dataset.store.smears

    # Scaled down: "large" is over 5,000 pixels, and a tiles commit holds about 2 KB of PNG.
    monkeypatch.setattr(dataset.ingest, "WHOLE_PNG_MAX_PIXELS", 5_000)
    monkeypatch.setattr(dataset.store.smears, "TILE_COMMIT_BYTES", 2_000)
    smear = make_smear(200, 150, seed=7).rgb
    before = store.table_versions()["tiles"]
    [res] = ingest_files(store, [("big.png", encode_image(smear))], actor="tester")
    assert res.status == "added" and res.tiles == 12
    assert store.table_versions()["tiles"] - before > 1  # several bounded commits
    row = store.tables.read("smears", ["image_png"]).column(0)[0].as_py()
    assert row is None  # no whole-image blob
    np.testing.assert_array_equal(Store.open(store.root).smear_image(res.smear_id), smear)
    assert len(_tile_rows(store)) == 12


def test_ingest_files_takes_one_upload_at_a_time_from_a_generator(
    store, make_smear, encode_image, monkeypatch
):
    import dataset.ingest

    # A batch of one smear, so each upload is stored before the next one is read.
    monkeypatch.setattr(dataset.ingest._Batcher, "BATCH_SMEARS", 1)
    done: list[int] = []

    def uploads():
        for i in range(3):
            assert len(done) == i  # the previous upload's result is final before the next read
            yield f"u{i}.png", encode_image(make_smear(64, 48, seed=20 + i).rgb)

    results = ingest_files(
        store, uploads(), on_progress=lambda d, t: done.append(d), total=3, actor="tester"
    )
    assert [r.status for r in results] == ["added"] * 3 and done == [1, 2, 3]


# ------------------------------------------------------------------ strict level maps
def test_a_grey_missing_from_the_level_map_is_an_error_whatever_its_share(
    tmp_path, capsys, make_smear, encode_image
):
    """The BCCD case: cytoplasm grey (155) with no level in the map was stored as nucleus."""
    import json

    from dataset.cli import main

    ws = tmp_path / "ws"
    assert main(["--workspace", str(ws), "init", "--classes", "background,cytoplasm,nucleus"]) == 0
    smear = make_smear(120, 100, seed=9)
    grey = np.zeros((100, 120), np.uint8)
    grey[40:60, 40:60] = 255  # nucleus
    grey[40:60, 60:64] = 155  # a thin rim of cytoplasm: 80 pixels, 0.67 % of the image
    (tmp_path / "s.png").write_bytes(encode_image(smear.rgb))
    (tmp_path / "m.png").write_bytes(encode_image(grey))
    (tmp_path / "pairs.csv").write_text("image,mask\ns.png,m.png\n")
    argv = ["--workspace", str(ws), "import-masks", "--pairs", str(tmp_path / "pairs.csv"),
            "--levels", "0=background,255=nucleus", "--json"]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 1
    doc = json.loads(capsys.readouterr().out)
    [row] = doc["files"]
    assert row["status"] == "rejected" and "'m.png' has 80 pixels" in row["reason"]
    assert "grey 155: 80 px" in row["reason"] and doc["tolerance"] == 40
    assert Store.open(ws).latest_revisions() == {}

    assert main([*argv, "--levels-lenient"]) == 0
    doc = json.loads(capsys.readouterr().out)
    [row] = doc["files"]
    assert row["status"] == "added" and row["unmatched"] == {"155": 80} and doc["lenient"]
    whole = Store.open(ws).smear_mask(row["smear_id"])
    assert (whole[40:60, 60:64] == 255).all() and (whole[40:60, 40:60] == 2).all()

    assert main([*argv[:-1], "--level-tolerance", "300"]) == 2  # usage error: 0..255
    main([*argv[:-1], "--levels-lenient", "--level-tolerance", "10"])
    assert "each ±10 grey levels (lenient" in capsys.readouterr().out


# ------------------------------------------------------------------ releases
@pytest.fixture
def released(store, make_smear, encode_image):
    from dataset.release import create_release

    [res] = ingest_files(
        store, [("s.png", encode_image(make_smear(96, 80, seed=11).rgb))], actor="tester"
    )
    tile = store.tiles(res.smear_id)[0]
    store.save_mask(tile.tile_id, np.ones((tile.h, tile.w), np.uint8), annotator="ann")
    info = create_release(store, "1.0.0", "first", actor=Actor("tester", "admin"))
    return store, info


def test_export_into_the_releases_folder_is_refused_and_the_release_stays_valid(released, tmp_path):
    from dataset.release import ReleaseError, export_release, verify_release

    store, info = released
    inside = [info.path, store.root / "releases", store.root / "releases" / "x.zip"]
    for out in inside:
        with pytest.raises(ReleaseError, match="inside the workspace's releases folder"):
            export_release(store, "1.0.0", "zip", out, actor=Actor("tester", "admin"))
    assert verify_release(store, "1.0.0").ok
    outside = export_release(
        store, "1.0.0", "zip", tmp_path / "exports", actor=Actor("tester", "admin")
    )
    assert outside.is_file() and verify_release(store, "1.0.0").ok


def test_a_release_folder_is_read_only_folder_included(released):
    import stat

    _, info = released
    paths = [info.path, *info.path.rglob("*")]
    assert len(paths) > 3
    for p in paths:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o222 == 0, (p, oct(mode))  # no write bit for anyone
        assert mode & 0o444 == 0o444, (p, oct(mode))
    assert stat.S_IMODE(info.path.parent.stat().st_mode) & stat.S_IWUSR  # releases/ itself


@pytest.mark.parametrize("version", ["1.0.1\n", "1.0.1\n\n", " 1.0.1", "1.0.1 "])
def test_a_version_must_match_to_the_end(released, version):
    from dataset.release import ReleaseError, SemVer, create_release

    store, _ = released
    with pytest.raises(ReleaseError, match="is not a version"):
        SemVer.parse(version)
    with pytest.raises(ReleaseError, match="is not a version"):
        create_release(store, version, "again", actor=Actor("tester", "admin"))


# ------------------------------------------------------------------ annotate, annotator
def test_annotate_without_a_base_reads_the_latest_under_the_lock(
    store, make_smear, encode_image, tmp_path, capsys, monkeypatch
):
    """Another save landing between a read of the latest and the save is no conflict."""
    from PIL import Image

    from dataset.cli import main

    monkeypatch.delenv("SMEARLAB_ANNOTATOR", raising=False)
    [res] = ingest_files(
        store, [("s.png", encode_image(make_smear(96, 80, seed=12).rgb))], actor="tester"
    )
    tile = store.tiles(res.smear_id)[0]
    path = tmp_path / "m.png"
    Image.fromarray(np.ones((tile.h, tile.w), np.uint8)).save(path)
    real_save = Store.save_mask
    raced: list[int] = []

    def racing_save(self, tile_id, mask, **kw):
        if not raced:  # someone else saves just before ours takes the lock
            raced.append(real_save(self, tile_id, mask, annotator="other").revision)
        return real_save(self, tile_id, mask, **kw)

    monkeypatch.setattr(Store, "save_mask", racing_save)
    add_account(store.root, "a", "annotator")
    argv = ["--workspace", str(store.root), "annotate", tile.tile_id, str(path), "--annotator", "a"]
    assert main(argv) == 0, capsys.readouterr().err
    history = store.history(tile.tile_id)
    assert [(r.revision, r.annotator, r.base_revision) for r in history] == [
        (1, "other", None),
        (2, "a", 1),  # recorded on top of the revision that was latest under the lock
    ]


def test_an_empty_annotator_name_is_refused(
    store, make_smear, encode_image, tmp_path, capsys, monkeypatch
):
    from PIL import Image

    from dataset.cli import main
    from dataset.store import StoreError

    monkeypatch.delenv("SMEARLAB_ANNOTATOR", raising=False)
    [res] = ingest_files(
        store, [("s.png", encode_image(make_smear(96, 80, seed=13).rgb))], actor="tester"
    )
    tile = store.tiles(res.smear_id)[0]
    mask = np.ones((tile.h, tile.w), np.uint8)
    for name in ("", "   "):
        with pytest.raises(StoreError, match="needs the name of whoever drew it"):
            store.save_mask(tile.tile_id, mask, annotator=name)
    path = tmp_path / "m.png"
    Image.fromarray(mask).save(path)
    for extra in ([], ["--annotator", " "]):
        code = main(["--workspace", str(store.root), "annotate", tile.tile_id, str(path), *extra])
        err = capsys.readouterr().err
        assert code == 2 and "--annotator ACCOUNT" in err
    assert store.latest_revisions() == {}


def test_ingest_decodes_from_the_open_file_and_closes_it(
    store, tmp_path, make_smear, encode_image, monkeypatch
):
    import dataset.ingest
    import dataset.limits

    opened = []
    real_open = dataset.limits.open_input_file

    def spy(path, max_bytes, name=None):
        fh = real_open(path, max_bytes, name)
        opened.append(fh)
        return fh

    monkeypatch.setattr(dataset.ingest, "open_input_file", spy)
    photo = tmp_path / "s.tif"
    photo.write_bytes(encode_image(make_smear(96, 80, seed=14).rgb, "TIFF"))
    [res] = ingest_paths(store, [photo], actor="tester")
    assert res.status == "added" and len(opened) == 1 and opened[0].closed


def test_ingest_files_takes_in_memory_files_without_copying_them_out(
    store, make_smear, encode_image
):
    import io

    upload = io.BytesIO(encode_image(make_smear(96, 80, seed=15).rgb))  # as Streamlit hands it
    [res] = ingest_files(store, [("up.png", upload)], actor="tester")
    assert res.status == "added" and upload.closed
    [empty] = ingest_files(store, [("empty.png", io.BytesIO(b""))], actor="tester")
    assert empty.status == "rejected" and "is empty" in empty.reason


@pytest.mark.slow
def test_eight_concurrent_annotates_without_a_base_all_save(
    store, make_smear, encode_image, tmp_path
):
    from PIL import Image

    [res] = ingest_files(
        store, [("s.png", encode_image(make_smear(96, 80, seed=16).rgb))], actor="tester"
    )
    tile = store.tiles(res.smear_id)[0]
    path = tmp_path / "m.png"
    Image.fromarray(np.ones((tile.h, tile.w), np.uint8)).save(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMEARLAB_")}
    argv = [sys.executable, "-m", "dataset", "--workspace", str(store.root), "annotate",
            tile.tile_id, str(path)]  # fmt: skip
    for i in range(8):
        add_account(store.root, f"a{i}", "annotator")
    procs = [
        subprocess.Popen([*argv, "--annotator", f"a{i}"], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(8)
    ]  # fmt: skip
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert [code for code, _ in outcomes] == [0] * 8, outcomes
    history = Store.open(store.root).history(tile.tile_id)
    assert [r.revision for r in history] == list(range(1, 9))
    assert [r.base_revision for r in history] == [None, *range(1, 8)]
