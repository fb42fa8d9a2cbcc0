"""Faults: a saving process killed with SIGKILL, and two processes saving at once.

Children run tests/dataset/_save_child.py and print each revision after its save returned;
the parent reads lines (never sleeps) and then inspects the store from a fresh Store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from dataset.images import encode_png_lossless, smear_id_for
from dataset.store import NewSmear, Store

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("_save_child.py")
WATCHDOG_S = 120  # only a safety net against a hung child; no test waits on it


@pytest.fixture
def tile_ids(store, make_smear) -> list[str]:
    rgb = make_smear(96, 80, seed=21).rgb
    sid = smear_id_for(rgb)
    store.add_smear(NewSmear(sid, encode_png_lossless(rgb), 96, 80, label="f.png"))
    return [t.tile_id for t in store.tiles(sid)]


@contextmanager
def child(workspace: Path, name: str, count: int, tiles: list[str]) -> Iterator[subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(workspace), name, str(count), *tiles],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    watchdog = threading.Timer(WATCHDOG_S, proc.kill)
    watchdog.start()
    try:
        yield proc
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()


def read_line(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        pytest.fail(f"child exited ({proc.returncode}) early: {proc.stderr.read()[-2000:]}")
    return line.strip()


def start(procs: list[subprocess.Popen]) -> None:
    """Wait until every child has opened the store, then let them all go at once."""
    for p in procs:
        assert read_line(p) == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()


def parse(line: str) -> tuple[str, int, int]:
    tile, revision, value = line.split()
    return tile, int(revision), int(value)


def check_saved(store: Store, saved: list[tuple[str, int, int]]) -> None:
    """Every reported save is there, with its content, and numbering has no gaps."""
    for tile, revision, value in saved:
        mask = store.mask(tile, revision)
        assert mask.shape == (64, 64) and (mask == value).all(), (tile, revision)
    for tile in {t for t, _, _ in saved}:
        numbers = [r.revision for r in store.history(tile)]
        assert numbers == list(range(1, len(numbers) + 1))
        assert store.latest(tile).revision == numbers[-1]


def test_sigkill_while_saving_loses_no_returned_save(store, tile_ids):
    lines_before_kill = 12
    with child(store.root, "killed", 0, tile_ids[:2]) as proc:
        start([proc])
        saved = [parse(read_line(proc)) for _ in range(lines_before_kill)]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
    reopened = Store.open(store.root)
    check_saved(reopened, saved)
    assert {t for t, _, _ in saved} == set(tile_ids[:2])
    # The store still works: the next save numbers on from whatever the child committed.
    tile = reopened.tile(tile_ids[0])
    latest = reopened.latest(tile.tile_id).revision
    assert latest >= max(r for t, r, _ in saved if t == tile.tile_id)
    rev = reopened.save_mask(
        tile.tile_id, np.zeros((64, 64), np.uint8), annotator="after", base_revision=latest
    )
    assert rev.revision == latest + 1


def test_two_processes_saving_at_once_lose_nothing(store, tile_ids):
    shared, own_a, own_b = tile_ids[0], tile_ids[1], tile_ids[2]
    k = 5
    with (
        child(store.root, "a", k, [shared, own_a]) as a,
        child(store.root, "b", k, [shared, own_b]) as b,
    ):
        start([a, b])
        saved = {"a": [parse(read_line(a)) for _ in range(2 * k)]}
        saved["b"] = [parse(read_line(b)) for _ in range(2 * k)]
        assert a.wait() == 0 and b.wait() == 0
    reopened = Store.open(store.root)
    check_saved(reopened, saved["a"] + saved["b"])
    on_shared = sorted(r for who in saved.values() for t, r, _ in who if t == shared)
    assert on_shared == list(range(1, 2 * k + 1))  # 1..2K, no gaps, no duplicates
    history = reopened.history(shared)
    assert sorted(r.annotator for r in history) == ["a"] * k + ["b"] * k
    for tile, name in ((own_a, "a"), (own_b, "b")):
        assert [r.revision for r in reopened.history(tile)] == list(range(1, k + 1))
        assert {r.annotator for r in reopened.history(tile)} == {name}
