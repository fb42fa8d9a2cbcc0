"""The state every part of :class:`dataset.store.Store` shares: the tables and the caches.

Promises:
- One instance serves every browser session of the app: the revision cache and the memo of
  per-version reads are guarded by locks.
- A memoised read is rebuilt when a version of a table it depends on changes, never before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from dataset._delta import DeltaTables
from dataset.store.records import Revision


def front_first(order: Sequence[str], front: Iterable[str]) -> list[str]:
    """``order`` with the tiles of ``front`` that it holds moved to its start, in ``front``'s
    order; the other tiles keep their order."""
    known = set(order)
    first = [t for t in front if t in known]
    moved = set(first)
    return first + [t for t in order if t not in moved]


class StoreBase:
    """The workspace folder, its Delta tables and the caches the parts of the store share."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tables = DeltaTables(self.root)
        # The latest-revision cache of :mod:`dataset.store.revisions`.
        self._latest: dict[str, Revision] = {}
        self._latest_files: set[str] = set()
        # One Store serves every browser session of the app: guard the revision cache.
        self._latest_lock = threading.RLock()
        # Decoded smears of :mod:`dataset.store.smears`: tile_image() cuts every tile from them.
        self._image_cache = lru_cache(maxsize=8)(self._load_smear_image)
        self._memos: dict[str, tuple[tuple[int, ...], object]] = {}
        self._memo_lock = threading.RLock()

    def _memo(self, key: str, tables: tuple[str, ...], build):
        """``build()`` once per version of ``tables``: reads that run on every save (schema,
        tile index, skips) cost a version check, not a table scan, until something changes."""
        versions = tuple(self.tables.version(t) for t in tables)
        with self._memo_lock:
            hit = self._memos.get(key)
            if hit is not None and hit[0] == versions:
                return hit[1]
        value = build()
        with self._memo_lock:
            self._memos[key] = (versions, value)
        return value
