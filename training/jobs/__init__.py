"""Background jobs: training and bulk scoring in a child process, one at a time.

Promises:

* A job lives in ``<workspace>/jobs/<job_id>/``: ``spec.json`` (what to run), ``status.json``
  (state, timestamps, outcome, result, error, a summary of progress), ``progress.jsonl`` (every
  progress report, appended) and ``log.txt`` (everything the job printed)
  (:mod:`~training.jobs.folder`).
* States go ``queued -> running -> done | failed | cancelled`` and never leave a final state
  (:mod:`~training.jobs.spec`).
* Jobs run one at a time, oldest first, by a single detached worker; each in its own process
  group, whose whole tree is killed when it ends; a cancel sends SIGTERM, then SIGKILL after
  a grace period (:mod:`~training.jobs.supervisor`, :mod:`~training.jobs.process`).
* A job that fails or is cancelled never changes the zoo (:mod:`~training.jobs.context`).
* Nothing here blocks for long except :meth:`JobRunner.wait`; pages poll :meth:`JobRunner.get`
  (:mod:`~training.jobs.runner`). The command line is ``python -m training jobs|cancel``
  (:mod:`~training.jobs.cli`).

The target of a job is a function ``"package.module:function"`` called as
``function(ctx: JobContext, params: dict) -> dict | None``; its return value is the result.
Importing this package loads neither torch nor streamlit.
"""

from training.jobs.cli import cli_cancel, cli_jobs, format_jobs
from training.jobs.context import JobContext
from training.jobs.runner import JobRunner
from training.jobs.spec import (
    DEFAULT_CANCEL_GRACE_S,
    FINAL_STATES,
    HISTORY_LIMIT,
    LOG_TAIL_LINES,
    JobCancelled,
    JobError,
    JobSpec,
    JobState,
    JobStatus,
    UnknownJobError,
)

__all__ = [
    "DEFAULT_CANCEL_GRACE_S",
    "FINAL_STATES",
    "HISTORY_LIMIT",
    "LOG_TAIL_LINES",
    "JobCancelled",
    "JobContext",
    "JobError",
    "JobRunner",
    "JobSpec",
    "JobState",
    "JobStatus",
    "UnknownJobError",
    "cli_cancel",
    "cli_jobs",
    "format_jobs",
]
