"""What ``python -m training jobs`` and ``python -m training cancel`` print and return.

Promises:

* The one command-line front of the job runner is ``python -m training`` (:mod:`training.cli`);
  these functions are what its ``jobs`` and ``cancel`` commands call.
* Exit codes and errors follow :mod:`dataset.cliutil`: 0 success, 1 refused (an unknown job,
  one already finished, a wait that timed out); under ``--json`` errors are JSON on stderr.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dataset.cliutil import EXIT_OK, EXIT_REFUSED, report_error
from dataset.roles import COMMAND_LINE
from training.jobs.runner import JobRunner
from training.jobs.spec import JobError, JobState, JobStatus

__all__ = ["cli_cancel", "cli_jobs", "format_jobs"]


def format_jobs(statuses: Sequence[JobStatus]) -> str:
    """A text table of jobs: id, kind, state, duration, latest progress, error."""
    if not statuses:
        return "no jobs yet"
    rows = [["job_id", "kind", "state", "time", "progress"]]
    for status in statuses:
        duration = status.duration_s
        progress = ", ".join(f"{k}={_short(v)}" for k, v in list(status.progress.items())[:5])
        if status.cancel_requested and status.state == JobState.RUNNING:
            progress = f"cancelling; {progress}"
        if status.error:
            progress = f"{progress}  error: {status.error}".strip()
        rows.append(
            [
                status.job_id,
                status.kind,
                str(status.state),
                "-" if duration is None else f"{duration:.0f}s",
                progress,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)), row[4]]).rstrip()
        for row in rows
    )


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def cli_jobs(
    workspace: Path | str | None,
    as_json: bool = False,
    limit: int = 20,
    *,
    job_id: str | None = None,
) -> int:
    """Print recent jobs, or one job with its log tail; returns the exit status.

    Args:
        workspace: The workspace (None: ``SMEARLAB_WORKSPACE``, else ``./workspace``).
        as_json: One JSON document (a list of jobs, or one job) instead of a table.
        limit: At most this many jobs.
        job_id: Show only this job, with the last lines of its log.
    """
    runner = JobRunner(_workspace(workspace))
    if job_id is None:
        statuses = runner.list(limit=limit)
        if as_json:
            print(json.dumps([s.model_dump(mode="json", exclude={"history"}) for s in statuses]))
        else:
            print(format_jobs(statuses))
        return EXIT_OK
    try:
        status = runner.get(job_id)
    except JobError as exc:
        return report_error(exc, EXIT_REFUSED, as_json)
    if as_json:
        print(status.model_dump_json(exclude={"history"}))
    else:
        print(format_jobs([status]))
        print("\n".join(status.log_tail[-40:]))
    return EXIT_OK


def cli_cancel(
    workspace: Path | str | None, job_id: str, *, wait_s: float | None = None, as_json: bool = False
) -> int:
    """Cancel a job; returns the exit status.

    Exit status 0 when the job is cancelled or cancelling, 1 when it is unknown, had already
    finished, or (with ``wait_s``) did not stop within that many seconds.
    """
    runner = JobRunner(_workspace(workspace))
    try:
        before = runner.get(job_id)
        if before.finished:
            message = f"job {job_id} already {before.state}; nothing to cancel"
            return report_error(message, EXIT_REFUSED, as_json)
        status = runner.cancel(job_id, actor=COMMAND_LINE)
        if wait_s:
            status = runner.wait(job_id, timeout=wait_s)
    except (JobError, TimeoutError) as exc:
        return report_error(exc, EXIT_REFUSED, as_json)
    state = "cancelling" if status.state == JobState.RUNNING else str(status.state)
    if as_json:
        print(json.dumps({"job_id": job_id, "state": state}))
    else:
        print(f"job {job_id}: {state}")
    return EXIT_OK


def _workspace(workspace: Path | str | None) -> Path:
    if workspace is not None:
        return Path(workspace)
    from dataset.settings import get_settings  # lazy: reading settings opens the workspace

    return get_settings().workspace
