"""The client side of the job runner: submit, list, watch and cancel jobs of a workspace.

Promises:

* Submitting builds the job folder aside and renames it in, so the worker never sees half a
  job, then starts the worker when none runs (:mod:`training.jobs.supervisor`).
* Nothing here blocks for long except :meth:`JobRunner.wait`; pages poll :meth:`JobRunner.get`.
* A running job whose process and worker both vanished is settled as failed by whoever looks
  at it first, so no job stays "running" forever.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dataset.durable import atomic_write_text, try_locked
from dataset.roles import Actor
from training.jobs.folder import (
    CANCEL_MARKER,
    WORKER_LOCK,
    append_log,
    job_dirs,
    load_status,
    tail,
    update_status,
)
from training.jobs.process import PROJECT_ROOT, child_env, pid_alive, signal_group
from training.jobs.spec import (
    DEFAULT_CANCEL_GRACE_S,
    LOG_TAIL_LINES,
    JobError,
    JobSpec,
    JobState,
    JobStatus,
    UnknownJobError,
    now,
)
from training.jobs.supervisor import settle_orphan
from training.kinds import TRAIN_DIAGNOSIS, TRAIN_SEGMENTATION, cancel_right

__all__ = ["JobRunner"]

LIVE = (JobState.QUEUED, JobState.RUNNING)
_TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class JobRunner:
    """Submit, list, watch and cancel jobs of one workspace.

    Cheap to construct; holds no process or open file. Safe to use from several processes.

    Args:
        workspace: The SmearLab workspace; jobs live under ``<workspace>/jobs``.
        python: Interpreter for the worker and job processes.
    """

    def __init__(self, workspace: Path | str, *, python: str = sys.executable) -> None:
        self.workspace = Path(workspace).expanduser().resolve()
        self.root = self.workspace / "jobs"
        self.python = python

    def submit(
        self,
        kind: str,
        target: str,
        params: dict[str, Any] | None = None,
        *,
        cancel_grace_s: float = DEFAULT_CANCEL_GRACE_S,
        start_worker: bool = True,
    ) -> JobStatus:
        """Queue a job and make sure a worker will run it.

        Args:
            kind: What the job is (one of :data:`training.kinds.JOB_KINDS`); shown in lists.
            target: ``"package.module:function"``, called as ``function(ctx, params)`` in the
                job process. It is imported only there, so heavy imports stay out of the caller.
            params: JSON-serialisable parameters for the target.
            cancel_grace_s: Seconds between SIGTERM and SIGKILL when the job is cancelled.
            start_worker: Start the worker if none runs (tests and batch scripts may defer).

        Returns:
            The queued job's status.

        Raises:
            JobError: The target is not ``module:function`` or params are not JSON.
        """
        if not _TARGET_RE.match(target):
            raise JobError(
                f"job target {target!r} must look like 'package.module:function', "
                "e.g. 'training.service.runs:segment_job'"
            )
        created = now()
        slug = re.sub(r"[^A-Za-z0-9]+", "-", kind).strip("-")[:32] or "job"
        job_id = f"{created:%Y%m%d-%H%M%S}-{slug}-{secrets.token_hex(3)}"
        spec = JobSpec(
            job_id=job_id,
            kind=kind,
            target=target,
            params=dict(params or {}),
            created_at=created,
            cancel_grace_s=cancel_grace_s,
        )
        try:
            json.dumps(spec.params, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise JobError(
                f"job params must be plain JSON values (numbers, text, lists, dicts): {exc}"
            ) from exc
        spec_json = spec.model_dump_json(indent=2)
        status = JobStatus(job_id=job_id, kind=kind, target=target, created_at=created)

        # Build the folder aside and rename it in, so the worker never sees half a job.
        incoming = self.root / ".incoming" / job_id
        incoming.mkdir(parents=True)
        (incoming / "spec.json").write_text(spec_json, encoding="utf-8")
        (incoming / "log.txt").touch()
        atomic_write_text(incoming / "status.json", status.model_dump_json())
        os.rename(incoming, self.root / job_id)
        if start_worker:
            self.ensure_worker()
        return status

    def get(self, job_id: str) -> JobStatus:
        """The status of ``job_id`` with its progress history and log tail.

        A running job whose process and worker vanished is failed.

        Raises:
            UnknownJobError: No such job; the message lists recent ids.
        """
        job_dir = self._job_dir(job_id)
        if job_dir is None:
            recent = [s.job_id for s in self.list(limit=10)]
            listing = ", ".join(recent) if recent else "none yet"
            raise UnknownJobError(f"no job with id {job_id!r}; recent jobs: {listing}")
        status = load_status(job_dir, history=True)
        if self._check_stale(job_dir, status) is status:
            return status
        return load_status(job_dir, history=True)  # settled just now

    def list(
        self, *, states: Sequence[str] | None = None, limit: int | None = None
    ) -> list[JobStatus]:
        """Jobs newest first, optionally only those in ``states`` and at most ``limit``.

        Their ``history`` is left empty (read one job's with :meth:`get`).
        """
        wanted = {JobState(s) for s in states} if states else None
        found = []
        for job_dir in job_dirs(self.root):
            try:
                status = load_status(job_dir, history=False)
            except (OSError, ValidationError):
                continue  # a job folder being deleted by hand
            if wanted is None or status.state in wanted or status.state == JobState.RUNNING:
                found.append((job_dir, status))
        found.sort(key=lambda item: (item[1].created_at, item[1].job_id), reverse=True)
        checked = []
        for job_dir, status in found:
            status = self._check_stale(job_dir, status)
            if wanted is None or status.state in wanted:
                checked.append(status)
        return checked[:limit] if limit is not None else checked

    def active(self) -> JobStatus | None:
        """The running job, if any."""
        running = self.list(states=[JobState.RUNNING], limit=1)
        return running[0] if running else None

    def cancel(self, job_id: str, *, actor: Actor) -> JobStatus:
        """Cancel a job without waiting for it to stop.

        A queued job is cancelled at once. A running job is marked, its process group gets
        SIGTERM, and the worker sends SIGKILL after the grace period and sets ``cancelled`` once
        the group is gone. A finished job, or one that has already reported its outcome (and
        may have registered its model), is left as it is.

        A cancel that takes effect is recorded in the audit trail as ``actor``'s
        (``train_cancel`` for a training job, ``job_cancel`` for another kind); a request
        that changes nothing (the job had ended) is not.

        Args:
            actor: Who cancels; the role must allow what starting the job needs
                (:func:`training.kinds.cancel_right`).

        Returns:
            The job's status after the request (poll :meth:`get` or :meth:`wait` to see it end).

        Raises:
            UnknownJobError: No such job.
            dataset.roles.PermissionDenied: The actor's role may not cancel this kind of job
                (nothing changes).
        """
        from dataset import audit  # lazy: job processes import this module and need no Delta

        kind = self.get(job_id).kind
        name = audit.authorise(actor, cancel_right(kind), _cancel_action(kind))
        status, before = self._request_cancel(job_id)
        if before is not None:  # the request took effect: its row follows it
            self._audit_cancel(status, before, name)
        return status

    def _request_cancel(self, job_id: str) -> tuple[JobStatus, JobState | None]:
        """The cancel itself; returns the status and, when it took effect, the state before."""
        job_dir = self._job_dir(job_id)
        if job_dir is None:
            self.get(job_id)  # raises UnknownJobError with the listing
            raise AssertionError("unreachable")

        def request(status: JobStatus) -> None:
            if status.state == JobState.QUEUED:
                status.state = JobState.CANCELLED
                status.finished_at = now()
            elif status.state == JobState.RUNNING and status.outcome is None:
                status.cancel_requested = True

        state_before: list[JobState] = []

        def request_and_note(status: JobStatus) -> None:
            state_before.append(status.state)
            request(status)

        status = update_status(job_dir, request_and_note)
        took = status.state == JobState.CANCELLED or status.cancel_requested
        before = state_before[0] if took and state_before[0] in LIVE else None
        if status.state != JobState.RUNNING or not status.cancel_requested:
            return status, before
        (job_dir / CANCEL_MARKER).touch()
        append_log(job_dir, "[runner] cancel requested")
        if status.pid is not None and pid_alive(status.pid):
            signal_group(status.pid, status.pgid, signal.SIGTERM)
        if not self._worker_alive():
            if status.pid is not None and pid_alive(status.pid):
                self.ensure_worker()  # a fresh worker adopts the job and escalates to SIGKILL
            else:
                status = settle_orphan(job_dir, status)
        return status, before

    def _audit_cancel(self, status: JobStatus, before: JobState, actor: str) -> None:
        from dataset import audit  # lazy: job processes import this module and need no Delta

        audit.record(
            self.workspace,
            actor=actor,
            action=_cancel_action(status.kind),
            object_id=status.job_id,
            before=str(before),
            after="cancelling" if status.state in LIVE else str(status.state),
            detail={"kind": status.kind},
        )

    def wait(
        self,
        job_id: str,
        on_progress: Callable[[JobStatus], None] | None = None,
        timeout: float | None = None,
        *,
        until: Callable[[JobStatus], bool] | None = None,
        poll_s: float = 0.1,
    ) -> JobStatus:
        """Poll ``job_id`` until it finishes (or ``until(status)`` holds).

        Not for Streamlit scripts: pages poll :meth:`get` from a fragment instead.

        Args:
            job_id: The job to watch.
            on_progress: Called with each status that differs from the previous one.
            timeout: Give up after this many seconds.
            until: Return early once this is true of the status.
            poll_s: Seconds between polls.

        Raises:
            TimeoutError: The job is still not finished after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last: JobStatus | None = None
        while True:
            status = self.get(job_id)
            if on_progress is not None and status != last:
                on_progress(status)
            last = status
            if status.finished or (until is not None and until(status)):
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {job_id} is still {status.state} after {timeout:g} s; "
                    f"progress: {status.progress}"
                )
            time.sleep(poll_s)

    def log(self, job_id: str, lines: int = LOG_TAIL_LINES) -> list[str]:
        """The last ``lines`` lines the job printed."""
        job_dir = self._job_dir(job_id)
        if job_dir is None:
            self.get(job_id)
            return []
        return tail(job_dir / "log.txt", lines)

    def ensure_worker(self) -> bool:
        """Start the worker unless one is running.

        Returns:
            True when a worker process was started.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        # Waiting briefly tells a real worker (holds the lock for its life) from another
        # process merely probing the lock for a moment.
        with try_locked(self.root / WORKER_LOCK, wait_s=0.5) as free:
            if not free:
                return False  # the running worker checks the queue again before it exits
        argv = ["worker", "--workspace", str(self.workspace)]
        with open(self.root / "worker.log", "ab") as log:
            proc = subprocess.Popen(
                [self.python, "-m", "training.jobs._child", *argv],
                cwd=PROJECT_ROOT,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the caller; a Ctrl-C there does not reach it
            )
        # Reap it when it exits so a long-lived caller (Streamlit) collects no zombies.
        threading.Thread(target=proc.wait, name="smearlab-worker-reaper", daemon=True).start()
        return True

    # ------------------------------------------------------------------ internals

    def _worker_alive(self) -> bool:
        lock = self.root / WORKER_LOCK
        if not lock.exists():
            return False
        with try_locked(lock) as free:
            return not free

    def _job_dir(self, job_id: str) -> Path | None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", job_id):
            return None
        job_dir = self.root / job_id
        return job_dir if (job_dir / "status.json").is_file() else None

    def _check_stale(self, job_dir: Path, status: JobStatus) -> JobStatus:
        if status.state != JobState.RUNNING:
            return status
        if status.pid is not None and pid_alive(status.pid):
            return status
        if self._worker_alive():
            return status  # the worker is about to record how the job ended
        return settle_orphan(job_dir, status)


def _cancel_action(kind: str) -> str:
    """The audit action of cancelling a ``kind`` job."""
    return "train_cancel" if kind in (TRAIN_SEGMENTATION, TRAIN_DIAGNOSIS) else "job_cancel"
