"""A job's progress as an append-only log: ``progress.jsonl`` in the job folder.

Promises:

* One JSON object per line, one line per :meth:`JobContext.progress` call: ``t`` (seconds
  since the job started) and the reported fields. Appending costs the same at the first row
  and at the millionth; nothing is ever rewritten.
* Each row is written whole in one call and flushed, so readers in other processes see it at
  once. A line cut short by a crash (or being written while read) is skipped by
  :func:`read_rows`; every whole line before it still reads.
* :func:`read_rows` reads only the end of the file: the last :data:`HISTORY_LIMIT` rows cost
  the same however long the job ran.
* Non-finite numbers are written as ``null``, as ``status.json`` always wrote them.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from training.jobs.spec import HISTORY_LIMIT

__all__ = ["PROGRESS_FILE", "ProgressLog", "latest", "read_rows"]

PROGRESS_FILE = "progress.jsonl"
_BLOCK = 64 * 1024


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class ProgressLog:
    """The writing end of a job's ``progress.jsonl`` (one per job process; thread-safe).

    Args:
        path: The log file; created on the first row.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None
        self._lock = threading.Lock()

    def append(self, row: dict[str, Any]) -> None:
        """Append ``row`` (plain JSON values) as one line and flush it to the file."""
        line = json.dumps(_finite(row), separators=(",", ":")) + "\n"
        with self._lock:
            if self._handle is None:
                self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
            self._handle.write(line)
            self._handle.flush()

    def close(self) -> None:
        """Close the file (a later :meth:`append` opens it again)."""
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


def read_rows(path: Path, limit: int | None = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The last ``limit`` whole rows of a progress log (all with None), oldest first; [] when
    there is none.

    Reads backwards from the end in blocks until ``limit`` lines are in hand, so the cost
    depends on ``limit``, not on the length of the log. Lines that are not a whole JSON
    object (the torn last line of a crashed job) are skipped.
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return []
    with handle:
        start = handle.seek(0, os.SEEK_END)
        data = b""
        while start > 0 and (limit is None or data.count(b"\n") <= limit):
            step = start if limit is None else min(start, _BLOCK)
            start -= step
            handle.seek(start)
            data = handle.read(step) + data
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first one is only the end of a line
    rows = []
    for raw in lines:
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    if limit is None:
        return rows
    return rows[-limit:] if limit else []


def latest(snapshot: dict[str, Any], rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The latest value of every field: ``snapshot`` (an earlier summary) updated row by row.

    A field last reported before ``rows`` begin keeps its value from ``snapshot``.
    """
    merged = dict(snapshot)
    for row in rows:
        merged.update((k, v) for k, v in row.items() if k != "t")
    return merged
