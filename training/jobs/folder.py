"""A job's folder on disk, ``<workspace>/jobs/<job_id>/``, and how it is read and written.

Promises:

* ``spec.json`` (what to run, written once), ``status.json`` (state, timestamps, outcome, a
  summary of progress), ``progress.jsonl`` (every progress report, appended), ``log.txt``
  (everything the job printed).
* Every ``status.json`` write is atomic (temp file + ``os.replace``) under the job's
  :func:`dataset.durable.locked` lock, so readers always see a whole file and writers never
  lose each other's updates. It is written when the state changes, not per progress report.
* :func:`load_status` gives the status as readers want it: the latest progress and the log
  tail of a job that is still going come from its logs, not from a stale summary.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

from dataset.durable import atomic_write_text, locked
from training.jobs.progress import PROGRESS_FILE, latest, read_rows
from training.jobs.spec import LOG_TAIL_LINES, JobSpec, JobStatus

__all__ = [
    "CANCEL_MARKER",
    "WORKER_LOCK",
    "append_log",
    "job_dirs",
    "job_lock",
    "load_status",
    "read_spec",
    "read_status",
    "settle_progress",
    "tail",
    "update_status",
    "write_status",
]

CANCEL_MARKER = "cancel-requested"
_LOG_TAIL_BYTES = 64 * 1024
_MAX_LINE = 500


def read_spec(job_dir: Path) -> JobSpec:
    """``spec.json`` of the job in ``job_dir``."""
    return JobSpec.model_validate_json((job_dir / "spec.json").read_text(encoding="utf-8"))


def read_status(job_dir: Path) -> JobStatus:
    """``status.json`` as written (see :func:`load_status` for what readers should show)."""
    return JobStatus.model_validate_json((job_dir / "status.json").read_text(encoding="utf-8"))


def write_status(job_dir: Path, status: JobStatus) -> None:
    """Replace ``status.json`` atomically (call under :func:`job_lock`)."""
    atomic_write_text(job_dir / "status.json", status.model_dump_json())


def job_lock(job_dir: Path) -> AbstractContextManager[None]:
    """The job's lock, held by every read-modify-write of its status."""
    return locked(job_dir / ".lock")


def update_status(job_dir: Path, change: Callable[[JobStatus], None]) -> JobStatus:
    """Read-modify-write ``status.json`` under the job lock; returns the new status."""
    with job_lock(job_dir):
        status = read_status(job_dir)
        change(status)
        write_status(job_dir, status)
        return status


def load_status(job_dir: Path, *, history: bool) -> JobStatus:
    """The status with what a reader expects of it.

    Args:
        job_dir: The job folder.
        history: Fill ``history`` with the last rows of the progress log; when False it is
            left empty (listings need no curves).

    A job still going gets its latest progress and log tail from its logs. A job written
    before the progress log existed keeps the ``history`` stored in its ``status.json``.
    """
    status = read_status(job_dir)
    log = job_dir / PROGRESS_FILE
    if log.exists() and (history or not status.finished):
        rows = read_rows(log)
        if not status.finished:
            status.progress = latest(status.progress, rows)
        status.history = rows
    if not history:
        status.history = []
    if not status.finished:
        status.log_tail = tail(job_dir / "log.txt")
    return status


def settle_progress(job_dir: Path, status: JobStatus) -> None:
    """Store the latest progress from the whole log in ``status`` (for the final write, once
    per job: a killed job had no chance to write its own summary)."""
    status.progress = latest(status.progress, read_rows(job_dir / PROGRESS_FILE, limit=None))


def append_log(job_dir: Path, line: str) -> None:
    """Add a time-stamped line to ``log.txt``."""
    with open(job_dir / "log.txt", "a", encoding="utf-8") as log:
        log.write(f"{datetime.now():%H:%M:%S} {line}\n")


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a text file (each cut to a readable length)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _LOG_TAIL_BYTES))
            data = handle.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace")
    found = text.splitlines()[-lines:]
    return [line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 3] + "..." for line in found]


WORKER_LOCK = "worker.lock"


def job_dirs(root: Path) -> Iterator[Path]:
    """Every job folder under ``root`` (``<workspace>/jobs``), in no particular order."""
    if not root.is_dir():
        return
    for item in root.iterdir():
        if not item.name.startswith(".") and (item / "status.json").is_file():
            yield item
