"""Tests for job progress as an append-only log (training/jobs/progress.py) and how readers
see it: one appended line per report, a torn last line skipped, old status files still read.

The job context runs in this process on a job folder made by ``submit`` (no worker starts).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from training.jobs import HISTORY_LIMIT, JobContext, JobRunner, JobState
from training.jobs.folder import read_spec, update_status
from training.jobs.progress import PROGRESS_FILE, ProgressLog, latest, read_rows

T = "tests.training._job_targets"


def running_job(runner: JobRunner) -> Path:
    """A job folder marked running by this (live) process, as if a worker had started it."""
    job = runner.submit("test", f"{T}:count", start_worker=False)
    job_dir = runner.root / job.job_id

    def start(status) -> None:
        status.state, status.pid, status.pgid = JobState.RUNNING, os.getpid(), os.getpgid(0)

    update_status(job_dir, start)
    return job_dir


def test_each_report_appends_one_line_and_never_rewrites_the_status(tmp_path: Path) -> None:
    runner = JobRunner(tmp_path / "ws")
    job_dir = running_job(runner)
    ctx = JobContext(job_dir, read_spec(job_dir), snapshot_s=3600)
    status_file, log = job_dir / "status.json", job_dir / PROGRESS_FILE

    ctx.progress(step=0, loss=1.0, note="first")  # new fields: the summary learns of them once
    assert json.loads(status_file.read_text())["progress"] == {
        "step": 0,
        "loss": 1.0,
        "note": "first",
    }
    before = status_file.stat()
    first = log.read_bytes()
    ino = log.stat().st_ino
    n = HISTORY_LIMIT + 500
    for step in range(1, n):
        ctx.progress(step=step, loss=1.0 / (step + 1))
        if step % 500 == 0:  # appended in place: same file, earlier bytes untouched
            assert log.stat().st_ino == ino
            assert log.read_bytes().startswith(first)

    after = status_file.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    assert len(log.read_bytes().splitlines()) == n

    seen = runner.get(job_dir.name)
    assert seen.state == JobState.RUNNING
    assert [row["step"] for row in seen.history] == list(range(n - HISTORY_LIMIT, n))
    assert seen.progress == {"step": n - 1, "loss": pytest.approx(1 / n), "note": "first"}

    ctx.flush()  # the throttled summary: written once, when asked
    summary = json.loads(status_file.read_text())
    assert summary["progress"]["step"] == n - 1
    assert summary["history"] == []  # rows live in the log only


def test_a_line_torn_by_a_crash_is_skipped(tmp_path: Path) -> None:
    runner = JobRunner(tmp_path / "ws")
    job_dir = running_job(runner)
    ctx = JobContext(job_dir, read_spec(job_dir), snapshot_s=3600)
    for step in range(3):
        ctx.progress(step=step, loss=0.5)
    with open(job_dir / PROGRESS_FILE, "a", encoding="utf-8") as handle:
        handle.write('{"t": 9.5, "step": 3, "lo')  # the process died mid-write

    assert [row["step"] for row in read_rows(job_dir / PROGRESS_FILE)] == [0, 1, 2]
    seen = runner.get(job_dir.name)
    assert [row["step"] for row in seen.history] == [0, 1, 2]
    assert seen.progress["step"] == 2


def test_read_rows_reads_the_end_of_a_long_log(tmp_path: Path) -> None:
    path = tmp_path / PROGRESS_FILE
    log = ProgressLog(path)
    for i in range(5000):
        log.append({"t": i, "i": i, "pad": "x" * 40, "bad": float("nan")})
    log.close()
    rows = read_rows(path, limit=10)
    assert [row["i"] for row in rows] == list(range(4990, 5000))
    assert rows[0]["bad"] is None  # non-finite numbers read back as null, as before
    assert read_rows(tmp_path / "missing.jsonl") == []
    # A field last reported long ago keeps its value from the summary.
    assert latest({"stage": "fit", "i": 0}, rows) == {
        "stage": "fit",
        "i": 4999,
        "pad": "x" * 40,
        "bad": None,
    }


def test_a_job_written_before_the_progress_log_still_reads(tmp_path: Path) -> None:
    runner = JobRunner(tmp_path / "ws")
    job = runner.submit("test", f"{T}:count", start_worker=False)
    history = [{"t": 0.1 * i, "epoch": i, "loss": 1.0 / (i + 1)} for i in range(3)]

    def old_style(status) -> None:  # status.json as the job runner wrote it before the log
        status.state, status.history, status.progress = JobState.DONE, history, history[-1]

    update_status(runner.root / job.job_id, old_style)
    assert not (runner.root / job.job_id / PROGRESS_FILE).exists()
    seen = runner.get(job.job_id)
    assert seen.history == history
    assert seen.progress == history[-1]
    assert runner.list()[0].history == []  # listings carry no curves
