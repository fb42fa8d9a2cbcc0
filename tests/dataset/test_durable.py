"""Tests for dataset.durable's locks: one holder at a time, across processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dataset.durable import locked, try_locked

ROOT = Path(__file__).resolve().parents[2]


def _held_elsewhere(lock: Path) -> bool:
    """Whether another process finds ``lock`` held (it tries once, without waiting)."""
    code = (
        "import sys; from pathlib import Path; from dataset.durable import try_locked\n"
        "with try_locked(Path(sys.argv[1])) as held: print(held)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(lock)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip() == "False"


def test_try_locked_takes_a_free_lock_and_releases_it(tmp_path: Path) -> None:
    lock = tmp_path / "sub" / "worker.lock"
    with try_locked(lock) as held:
        assert held
        assert _held_elsewhere(lock)
    assert not _held_elsewhere(lock)


def test_try_locked_gives_up_while_another_holds_it(tmp_path: Path) -> None:
    lock = tmp_path / "worker.lock"
    with locked(lock), try_locked(lock, wait_s=0.05) as held:
        assert not held  # each call opens its own descriptor, so threads exclude too
    with try_locked(lock, wait_s=0.05) as held:
        assert held
