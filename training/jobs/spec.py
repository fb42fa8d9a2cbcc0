"""What a job is: its spec, its states, its status record and the errors of the job runner.

Promises:

* States go ``queued -> running -> done | failed | cancelled`` and never leave a final state.
* :class:`JobSpec` is written once as ``spec.json``; :class:`JobStatus` is ``status.json``, a
  pydantic model so every reader validates what it reads.
* ``status.json`` written before the progress log existed carries ``history`` inside it; it
  still reads (see :mod:`training.jobs.progress` for where progress lives now).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "DEFAULT_CANCEL_GRACE_S",
    "FINAL_STATES",
    "HISTORY_LIMIT",
    "LOG_TAIL_LINES",
    "JobCancelled",
    "JobError",
    "JobSpec",
    "JobState",
    "JobStatus",
    "UnknownJobError",
]

HISTORY_LIMIT = 2000
LOG_TAIL_LINES = 200
DEFAULT_CANCEL_GRACE_S = 10.0


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


class JobState(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})


class JobError(Exception):
    """A job request that cannot be carried out; the message says why."""


class UnknownJobError(JobError, KeyError):
    """No job has the requested id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class JobCancelled(BaseException):
    """Raised inside a job's process when its cancel signal (SIGTERM) arrives.

    A BaseException so that a target's ``except Exception`` does not swallow it.
    """


class JobSpec(BaseModel):
    """What a job runs; written once as ``spec.json``."""

    job_id: str
    kind: str
    target: str
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    cancel_grace_s: float = DEFAULT_CANCEL_GRACE_S


class JobStatus(BaseModel):
    """The state of a job: ``status.json``, completed from the job's logs when read.

    Attributes:
        progress: The latest value of every field reported with :meth:`JobContext.progress`.
        history: Every progress report (with ``t``, seconds since start), the last
            :data:`HISTORY_LIMIT` kept, for loss and metric curves. Read from
            ``progress.jsonl`` by :meth:`JobRunner.get`; empty in :meth:`JobRunner.list`.
        result: What the target returned (plus ``model_ids`` registered through the context).
        outcome: ``done`` or ``failed`` as reported by the job process just before it exits.
            ``state`` follows once the worker has seen the whole process group gone, so a
            final state always means no process of the job is left.
        error: Why the job failed, in one line; the traceback is in ``log_tail``.
        pid: The job process, which leads its own process group ``pgid``.
        cancel_requested: Set by :meth:`JobRunner.cancel` while the job runs.
        log_tail: The last :data:`LOG_TAIL_LINES` lines of ``log.txt``.
    """

    job_id: str
    kind: str
    target: str
    state: JobState = JobState.QUEUED
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: dict[str, Any] = Field(default_factory=dict)
    history: list[dict[str, Any]] = Field(default_factory=list)
    result: dict[str, Any] | None = None
    outcome: JobState | None = None
    error: str | None = None
    pid: int | None = None
    pgid: int | None = None
    exit_code: int | None = None
    cancel_requested: bool = False
    log_tail: list[str] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Whether the job reached a final state."""
        return self.state in FINAL_STATES

    @property
    def duration_s(self) -> float | None:
        """Seconds spent running so far (or in total once finished); None before it starts."""
        if self.started_at is None:
            return None
        end = self.finished_at or now()
        return max(0.0, (end - self.started_at).total_seconds())
