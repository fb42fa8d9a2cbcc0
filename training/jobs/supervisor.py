"""The worker: runs queued jobs one at a time and settles how each one ended.

Promises:

* Jobs run one at a time, oldest first, by a single detached worker
  (``python -m training.jobs._child worker``) that holds the ``worker.lock``
  (:func:`dataset.durable.try_locked`) while it lives. It exits when the queue is empty.
* Each job runs as its own child (``python -m training.jobs._child run JOB_DIR``) in a new
  process group. When it ends, for whatever reason, its whole tree is killed (the group and
  every descendant seen, :class:`training.jobs.process.JobProcess`), so no grandchild
  outlives its job. A cancel sends SIGTERM, then SIGKILL after the job's grace period.
* A job left running by a worker that died is adopted: watched until it ends, then settled.
* :func:`settle` gives the final state only once no process of the job is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import traceback
from pathlib import Path

from pydantic import ValidationError

from dataset.durable import try_locked
from training.jobs.folder import (
    CANCEL_MARKER,
    WORKER_LOCK,
    append_log,
    job_dirs,
    read_spec,
    read_status,
    settle_progress,
    tail,
    update_status,
)
from training.jobs.process import PROJECT_ROOT, JobProcess, child_env, kill_group
from training.jobs.spec import JobSpec, JobState, JobStatus, now

__all__ = ["Supervisor", "settle", "settle_orphan"]

_WATCH_INTERVAL_S = 0.1
_STATUS_REFRESH_S = 1.0  # how often the status file is read for a cancel the marker missed
_TREE_REFRESH_S = 0.5  # how often the job's descendants are looked up (a /proc scan)
_WORKER_LOCK_WAIT_S = 2.0
_LOST = (
    "the job process vanished without reporting a result (killed, or the machine restarted); "
    "no model was changed"
)


class Supervisor:
    """The worker process's main loop over one workspace's queue.

    Args:
        workspace: The SmearLab workspace; jobs live under ``<workspace>/jobs``.
        python: Interpreter for the job processes.
    """

    def __init__(self, workspace: Path, python: str) -> None:
        self.root = Path(workspace) / "jobs"
        self.python = python

    def run(self) -> None:
        """Run queued jobs oldest first until none is left."""
        while True:
            with try_locked(self.root / WORKER_LOCK, wait_s=_WORKER_LOCK_WAIT_S) as held:
                if not held:
                    return  # another worker is running
                (self.root / "worker.pid").write_text(str(os.getpid()))
                self._adopt_orphans()
                while (job_dir := self._next_queued()) is not None:
                    try:
                        self._run_job(job_dir)
                    except Exception:  # one broken job folder must not stall the queue
                        traceback.print_exc()
                        with contextlib.suppress(Exception):
                            update_status(job_dir, _give_up)
            # A job submitted while we held the lock saw a busy worker and started none.
            if self._next_queued() is None:
                return

    def _next_queued(self) -> Path | None:
        queued = []
        for job_dir in job_dirs(self.root):
            try:
                status = read_status(job_dir)
            except (OSError, ValidationError):
                continue
            if status.state == JobState.QUEUED:
                queued.append((status.created_at, status.job_id, job_dir))
        return min(queued)[2] if queued else None

    def _run_job(self, job_dir: Path) -> None:
        spec = read_spec(job_dir)

        def start(status: JobStatus) -> None:
            if status.state == JobState.QUEUED:
                status.state = JobState.RUNNING
                status.started_at = now()

        if update_status(job_dir, start).state != JobState.RUNNING:
            return  # cancelled while queued
        append_log(job_dir, f"[worker] running {spec.target} (job {spec.job_id})")
        try:
            with open(job_dir / "log.txt", "ab") as log:
                proc = subprocess.Popen(
                    [self.python, "-m", "training.jobs._child", "run", str(job_dir)],
                    cwd=PROJECT_ROOT,
                    env=child_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, killed as a whole
                )
        except OSError as exc:
            message = f"could not start the job process: {exc}"
            update_status(job_dir, lambda s: finish(s, JobState.FAILED, error=message))
            return

        def started(status: JobStatus) -> None:
            status.pid, status.pgid = proc.pid, proc.pid

        update_status(job_dir, started)
        # The child is not reaped before proc.wait() below, so its pid and group stay the job's.
        self._watch(job_dir, spec, JobProcess(proc.pid))
        self._finalize(job_dir, proc.wait())

    def _adopt_orphans(self) -> None:
        """Finish jobs left running by a worker that died; wait out ones still alive."""
        for job_dir in sorted(job_dirs(self.root)):
            status = read_status(job_dir)
            if status.state != JobState.RUNNING:
                continue
            if status.pid is not None:
                job = JobProcess(status.pid)
                if job.alive():
                    append_log(job_dir, "[worker] adopted a job whose worker died")
                    self._watch(job_dir, read_spec(job_dir), job)
            self._finalize(job_dir, None)

    def _watch(self, job_dir: Path, spec: JobSpec, job: JobProcess) -> None:
        """Follow the job process until it exits, relaying cancels; then kill what is left."""
        term_sent: float | None = None
        cancel_seen = False
        status_checked = tree_checked = 0.0
        while job.alive():
            moment = time.monotonic()
            if moment - tree_checked > _TREE_REFRESH_S:
                tree_checked = moment
                job.remember_descendants()
            # The marker is cheap to poll; the status file is read less often.
            cancel_seen = cancel_seen or (job_dir / CANCEL_MARKER).exists()
            if moment - status_checked > _STATUS_REFRESH_S:
                status_checked = moment
                cancel_seen = cancel_seen or read_status(job_dir).cancel_requested
            if cancel_seen:
                if term_sent is None:
                    job.signal(signal.SIGTERM)
                    term_sent = moment
                elif moment - term_sent > spec.cancel_grace_s:
                    job.signal(signal.SIGKILL)
            time.sleep(_WATCH_INTERVAL_S)
        # No grandchild outlives its job, whatever the job did.
        job.kill()

    def _finalize(self, job_dir: Path, exit_code: int | None) -> None:
        def done(status: JobStatus) -> None:
            status.exit_code = exit_code
            settle(status, exit_code)
            settle_progress(job_dir, status)
            # Logged before the state is written, so a reader of a final state sees it.
            append_log(job_dir, f"[worker] job {status.state}")
            status.log_tail = tail(job_dir / "log.txt")

        update_status(job_dir, done)


def settle_orphan(job_dir: Path, status: JobStatus) -> JobStatus:
    """Settle a running job whose process and worker are both gone (no one else will)."""
    if status.pgid is not None:
        kill_group(status.pgid, wait_s=1.0)  # grandchildren that ignored SIGTERM

    def done(current: JobStatus) -> None:
        settle(current, None)
        settle_progress(job_dir, current)
        current.log_tail = tail(job_dir / "log.txt")

    return update_status(job_dir, done)


def settle(status: JobStatus, exit_code: int | None) -> None:
    """Give a running job whose processes are all gone its final state.

    Args:
        status: The job's status, changed in place.
        exit_code: The job process's exit status, None when it is unknown (the process was not
            the caller's child, or vanished unseen).
    """
    if status.state != JobState.RUNNING:
        return
    if status.outcome == JobState.DONE:
        finish(status, JobState.DONE)
    elif status.outcome == JobState.FAILED:
        finish(status, JobState.FAILED, error=status.error or "the job reported a failure")
    elif status.cancel_requested:
        finish(status, JobState.CANCELLED)
    elif exit_code is None:
        finish(status, JobState.FAILED, error=status.error or _LOST)
    elif exit_code < 0:
        name = signal.Signals(-exit_code).name
        error = (
            f"the job process was killed by {name} (out of memory, or killed from outside); "
            "no model was changed"
        )
        finish(status, JobState.FAILED, error=error)
    else:
        error = status.error or f"the job process exited with code {exit_code} without a result"
        finish(status, JobState.FAILED, error=error)


def _give_up(status: JobStatus) -> None:
    if not status.finished:
        finish(status, JobState.FAILED, error="the worker could not run this job; see worker.log")


def finish(status: JobStatus, state: JobState, *, error: str | None = None) -> None:
    """Put ``status`` in the final ``state`` now (with ``error`` when given)."""
    status.state = state
    status.finished_at = now()
    if error is not None:
        status.error = error
