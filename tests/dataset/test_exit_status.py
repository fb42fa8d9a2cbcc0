"""A command that did its work exits 0: no abort at interpreter exit (issue #9, item 1).

Reading a Delta table through deltalake's default Python filesystem made 5-25 % of
``stats``, ``ingest`` and ``init`` runs on a populated workspace abort with SIGABRT after
printing their result (see :func:`dataset._delta.local_dataset`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
import pytest

from dataset.ingest import ingest_files
from dataset.store import Store

ROOT = Path(__file__).resolve().parents[2]
RUNS = 20


def test_table_reads_use_arrows_native_filesystem(store):
    """The cause of the abort: Python-backed buffers freed on Arrow's IO threads at exit."""
    for name in ("config", "revisions"):
        ds = store.tables.dataset(name)
        assert not isinstance(ds.filesystem, pafs.PyFileSystem), name
    assert store.tables.read("config").num_rows > 0


def test_no_package_reads_a_delta_table_through_deltalakes_own_filesystem():
    """Every read goes through ``dataset._delta.local_dataset``: a direct
    ``to_pyarrow_table()`` / ``to_pyarrow_dataset()`` elsewhere brings the abort back (it did,
    once, in the workspace settings)."""
    offenders = []
    for package in ("dataset", "training", "model_zoo", "pages"):
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            for call in ("to_pyarrow_table(", "to_pyarrow_dataset("):
                if call in text and path != ROOT / "dataset" / "_delta.py":
                    offenders.append(f"{path.relative_to(ROOT)}: {call}")
    assert offenders == []


@pytest.fixture(scope="module")
def populated(tmp_path_factory) -> tuple[Path, Path]:
    """A workspace with 4 smears and 420 revisions, and a photo that is stored there."""
    from tests.conftest import encode, synthetic_smear

    root = tmp_path_factory.mktemp("populated")
    ws = root / "ws"
    store = Store.open(ws)
    store.init(tile_size=64)
    photos = [(f"s{i}.png", encode(synthetic_smear(192, 192, seed=i).rgb)) for i in range(4)]
    ingest_files(store, photos, actor="tester")
    (root / "again.png").write_bytes(photos[0][1])
    tiles = store.tiles()
    rng = np.random.default_rng(0)
    for k in range(420):
        tile = tiles[k % len(tiles)]
        latest = store.latest(tile.tile_id)
        mask = rng.integers(0, 4, size=(tile.h, tile.w), dtype=np.uint8)
        store.save_mask(
            tile.tile_id, mask, annotator="t", base_revision=latest.revision if latest else None
        )
    return ws, root / "again.png"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["stats", "ingest", "init"])
def test_cli_exits_0_every_time_on_a_populated_workspace(populated, tmp_path, command):
    ws, again = populated
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMEARLAB_")}
    statuses = []
    for i in range(RUNS):
        if command == "stats":
            argv = ["--workspace", str(ws), "stats", "--json"]
        elif command == "ingest":
            argv = ["--workspace", str(ws), "ingest", str(again)]  # a duplicate: reads only
        else:
            argv = ["--workspace", str(tmp_path / f"new{i}"), "init", "--tile-size", "64"]
        done = subprocess.run(
            [sys.executable, "-m", "dataset", *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=False,
        )
        statuses.append(done.returncode)
        assert done.returncode == 0, (i, done.returncode, done.stderr[-500:])
    assert statuses == [0] * RUNS
