"""Background jobs: training and bulk scoring in a child process, one at a time.

Promises:

* A job lives in ``<workspace>/jobs/<job_id>/``: ``spec.json`` (what to run), ``status.json``
  (state, progress, history, result, error, last log lines) and ``log.txt`` (everything the job
  printed). Every status write is atomic (temp file + ``os.replace``) under a per-job ``fcntl``
  lock, so readers always see a whole file and writers never lose each other's updates.
* States go ``queued -> running -> done | failed | cancelled`` and never leave a final state.
* Jobs run one at a time, oldest first, by a single detached worker
  (``python -m training.jobs worker``) that holds an ``fcntl`` lock while it lives. Submitting
  starts it when none is running; it exits when the queue is empty.
* Each job runs as its own child (``python -m training.jobs run JOB_DIR``) in a new process
  group. When it ends, for whatever reason, the whole group is killed, so no grandchild outlives
  its job. Cancel sends SIGTERM to the group, then SIGKILL after a grace period.
* A job that fails (exception, NaN loss, non-zero exit, killed by a signal) or is cancelled never
  changes the zoo: models handed to :meth:`JobContext.add_model` are registered only after the
  target has returned, under the job lock, and only when no cancel was requested.
* Nothing here blocks for long except :meth:`JobRunner.wait`; pages poll :meth:`JobRunner.get`.

The target of a job is a function ``"package.module:function"`` called as
``function(ctx: JobContext, params: dict) -> dict | None``; its return value is the result.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from dataset.durable import atomic_write_text

if TYPE_CHECKING:
    from model_zoo.card import ModelCard

__all__ = [
    "DEFAULT_CANCEL_GRACE_S",
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
    "main",
]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HISTORY_LIMIT = 2000
LOG_TAIL_LINES = 200
DEFAULT_CANCEL_GRACE_S = 10.0
PROGRESS_INTERVAL_S = 0.25  # at most four status writes a second from progress()
_WATCH_INTERVAL_S = 0.1
_LOG_REFRESH_S = 1.0
_LOG_TAIL_BYTES = 64 * 1024
_MAX_LINE = 500
_WORKER_LOCK_WAIT_S = 2.0
_TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_EXIT_CANCELLED = 128 + signal.SIGTERM
_CANCEL_MARKER = "cancel-requested"
# Set while a finished job is being recorded as done: a SIGTERM then no longer cancels it.
_finishing = threading.Event()


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
    """The state of a job as written in ``status.json``.

    Attributes:
        progress: The latest value of every field reported with :meth:`JobContext.progress`.
        history: Every progress report (with ``t``, seconds since start), the last
            :data:`HISTORY_LIMIT` kept, for loss and metric curves.
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
        end = self.finished_at or _now()
        return max(0.0, (end - self.started_at).total_seconds())


# ---------------------------------------------------------------------- the runner


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

    # ------------------------------------------------------------------ public

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
                "e.g. 'training.service:segment_job'"
            )
        now = _now()
        slug = re.sub(r"[^A-Za-z0-9]+", "-", kind).strip("-")[:32] or "job"
        job_id = f"{now:%Y%m%d-%H%M%S}-{slug}-{secrets.token_hex(3)}"
        spec = JobSpec(
            job_id=job_id,
            kind=kind,
            target=target,
            params=dict(params or {}),
            created_at=now,
            cancel_grace_s=cancel_grace_s,
        )
        try:
            json.dumps(spec.params, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise JobError(
                f"job params must be plain JSON values (numbers, text, lists, dicts): {exc}"
            ) from exc
        spec_json = spec.model_dump_json(indent=2)
        status = JobStatus(job_id=job_id, kind=kind, target=target, created_at=now)

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
        """The status of ``job_id``; a running job whose process and worker vanished is failed.

        Raises:
            UnknownJobError: No such job; the message lists recent ids.
        """
        job_dir = self._job_dir(job_id)
        if job_dir is None:
            recent = [s.job_id for s in self.list(limit=10)]
            listing = ", ".join(recent) if recent else "none yet"
            raise UnknownJobError(f"no job with id {job_id!r}; recent jobs: {listing}")
        return self._check_stale(job_dir, _read_status(job_dir))

    def list(
        self, *, states: Sequence[str] | None = None, limit: int | None = None
    ) -> list[JobStatus]:
        """Jobs newest first, optionally only those in ``states`` and at most ``limit``."""
        if not self.root.is_dir():
            return []
        wanted = {JobState(s) for s in states} if states else None
        found = []
        for job_dir in self._job_dirs():
            try:
                status = _read_status(job_dir)
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

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a job without waiting for it to stop.

        A queued job is cancelled at once. A running job is marked, its process group gets
        SIGTERM, and the worker sends SIGKILL after the grace period and sets ``cancelled`` once
        the group is gone. A finished job, or one that has already reported its outcome (and
        may have registered its model), is left as it is.

        Returns:
            The job's status after the request (poll :meth:`get` or :meth:`wait` to see it end).
        """
        job_dir = self._job_dir(job_id)
        if job_dir is None:
            self.get(job_id)  # raises UnknownJobError with the listing
            raise AssertionError("unreachable")

        def request(status: JobStatus) -> None:
            if status.state == JobState.QUEUED:
                status.state = JobState.CANCELLED
                status.finished_at = _now()
            elif status.state == JobState.RUNNING and status.outcome is None:
                status.cancel_requested = True

        status = _update_status(job_dir, request)
        if status.state != JobState.RUNNING or not status.cancel_requested:
            return status
        (job_dir / _CANCEL_MARKER).touch()
        _append_log(job_dir, "[runner] cancel requested")
        if status.pid is not None and _pid_alive(status.pid):
            _signal_group(status.pid, status.pgid, signal.SIGTERM)
        if not self._worker_alive():
            if status.pid is not None and _pid_alive(status.pid):
                self.ensure_worker()  # a fresh worker adopts the job and escalates to SIGKILL
            else:
                status = _settle_orphan(job_dir, status)
        return status

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
        return _tail(job_dir / "log.txt", lines)

    def ensure_worker(self) -> bool:
        """Start the worker unless one is running.

        Returns:
            True when a worker process was started.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        # Waiting briefly tells a real worker (holds the lock for its life) from another
        # process merely probing the lock for a moment.
        fd = _try_lock(self._worker_lock, wait_s=0.5)
        if fd is None:
            return False  # the running worker checks the queue again before it exits
        os.close(fd)
        with open(self.root / "worker.log", "ab") as log:
            proc = subprocess.Popen(
                [self.python, "-m", "training.jobs", "worker", "--workspace", str(self.workspace)],
                cwd=PROJECT_ROOT,
                env=_child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the caller; a Ctrl-C there does not reach it
            )
        # Reap it when it exits so a long-lived caller (Streamlit) collects no zombies.
        threading.Thread(target=proc.wait, name="smearlab-worker-reaper", daemon=True).start()
        return True

    # ------------------------------------------------------------------ worker side

    def run_worker(self) -> None:
        """Run queued jobs oldest first until none is left (the worker process's main loop)."""
        while True:
            fd = _try_lock(self._worker_lock, wait_s=_WORKER_LOCK_WAIT_S)
            if fd is None:
                return  # another worker is running
            try:
                (self.root / "worker.pid").write_text(str(os.getpid()))
                self._adopt_orphans()
                while (job_dir := self._next_queued()) is not None:
                    try:
                        self._run_job(job_dir)
                    except Exception:  # one broken job folder must not stall the queue
                        traceback.print_exc()
                        with contextlib.suppress(Exception):
                            _update_status(job_dir, _give_up)
            finally:
                os.close(fd)
            # A job submitted while we held the lock saw a busy worker and started none.
            if self._next_queued() is None:
                return

    def _run_job(self, job_dir: Path) -> None:
        spec = _read_spec(job_dir)

        def start(status: JobStatus) -> None:
            if status.state == JobState.QUEUED:
                status.state = JobState.RUNNING
                status.started_at = _now()

        if _update_status(job_dir, start).state != JobState.RUNNING:
            return  # cancelled while queued
        _append_log(job_dir, f"[worker] running {spec.target} (job {spec.job_id})")
        try:
            with open(job_dir / "log.txt", "ab") as log:
                proc = subprocess.Popen(
                    [self.python, "-m", "training.jobs", "run", str(job_dir)],
                    cwd=PROJECT_ROOT,
                    env=_child_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, killed as a whole
                )
        except OSError as exc:
            message = f"could not start the job process: {exc}"
            _update_status(job_dir, lambda s: _finish(s, JobState.FAILED, error=message))
            return

        def started(status: JobStatus) -> None:
            status.pid, status.pgid = proc.pid, proc.pid

        _update_status(job_dir, started)
        self._watch(job_dir, spec, proc.pid, exited=lambda: _child_exited(proc.pid))
        self._finalize(job_dir, proc.wait())

    def _adopt_orphans(self) -> None:
        """Finish jobs left running by a worker that died; wait out ones still alive."""
        for job_dir in sorted(self._job_dirs()):
            status = _read_status(job_dir)
            if status.state != JobState.RUNNING:
                continue
            if status.pid is not None and _pid_alive(status.pid):
                _append_log(job_dir, "[worker] adopted a job whose worker died")
                spec = _read_spec(job_dir)
                self._watch(
                    job_dir, spec, status.pid, exited=lambda p=status.pid: not _pid_alive(p)
                )
            self._finalize(job_dir, None)

    def _watch(self, job_dir: Path, spec: JobSpec, pid: int, exited: Callable[[], bool]) -> None:
        """Follow the job process until it exits, relaying cancels and refreshing the log tail."""
        term_sent: float | None = None
        cancel_seen = False
        log_checked = 0.0
        log_size = -1
        while not exited():
            now = time.monotonic()
            # The marker is cheap to poll; the status file (with its history) is read less often.
            cancel_seen = cancel_seen or (job_dir / _CANCEL_MARKER).exists()
            if now - log_checked > _LOG_REFRESH_S:
                log_checked = now
                cancel_seen = cancel_seen or _read_status(job_dir).cancel_requested
                size = (job_dir / "log.txt").stat().st_size
                if size != log_size:
                    log_size = size
                    tail = _tail(job_dir / "log.txt")
                    _update_status(job_dir, lambda s, t=tail: setattr(s, "log_tail", t))
            if cancel_seen:
                if term_sent is None:
                    _signal_group(pid, pid, signal.SIGTERM)
                    term_sent = now
                elif now - term_sent > spec.cancel_grace_s:
                    _signal_group(pid, pid, signal.SIGKILL)
            time.sleep(_WATCH_INTERVAL_S)
        # No grandchild outlives its job, whatever the job did.
        _kill_group(pid)

    def _finalize(self, job_dir: Path, exit_code: int | None) -> None:
        def finish(status: JobStatus) -> None:
            status.exit_code = exit_code
            _settle(status, exit_code)
            # Logged before the state is written, so a reader of a final state sees it.
            _append_log(job_dir, f"[worker] job {status.state}")
            status.log_tail = _tail(job_dir / "log.txt")

        _update_status(job_dir, finish)

    # ------------------------------------------------------------------ internals

    @property
    def _worker_lock(self) -> Path:
        return self.root / "worker.lock"

    def _worker_alive(self) -> bool:
        if not self._worker_lock.exists():
            return False
        fd = _try_lock(self._worker_lock, wait_s=0.0)
        if fd is None:
            return True
        os.close(fd)
        return False

    def _job_dirs(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for item in self.root.iterdir():
            if not item.name.startswith(".") and (item / "status.json").is_file():
                yield item

    def _job_dir(self, job_id: str) -> Path | None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", job_id):
            return None
        job_dir = self.root / job_id
        return job_dir if (job_dir / "status.json").is_file() else None

    def _next_queued(self) -> Path | None:
        queued = []
        for job_dir in self._job_dirs():
            try:
                status = _read_status(job_dir)
            except (OSError, ValidationError):
                continue
            if status.state == JobState.QUEUED:
                queued.append((status.created_at, status.job_id, job_dir))
        return min(queued)[2] if queued else None

    def _check_stale(self, job_dir: Path, status: JobStatus) -> JobStatus:
        if status.state != JobState.RUNNING:
            return status
        if status.pid is not None and _pid_alive(status.pid):
            return status
        if self._worker_alive():
            return status  # the worker is about to record how the job ended
        return _settle_orphan(job_dir, status)


_LOST = (
    "the job process vanished without reporting a result (killed, or the machine restarted); "
    "no model was changed"
)


def _settle_orphan(job_dir: Path, status: JobStatus) -> JobStatus:
    """Settle a running job whose process and worker are both gone (no one else will)."""
    if status.pgid is not None:
        _kill_group(status.pgid, wait_s=1.0)  # grandchildren that ignored SIGTERM
    return _update_status(job_dir, lambda s: _settle(s, None))


def _settle(status: JobStatus, exit_code: int | None) -> None:
    """Give a running job whose processes are all gone its final state.

    Args:
        status: The job's status, changed in place.
        exit_code: The job process's exit status, None when it is unknown (the process was not
            the caller's child, or vanished unseen).
    """
    if status.state != JobState.RUNNING:
        return
    if status.outcome == JobState.DONE:
        _finish(status, JobState.DONE)
    elif status.outcome == JobState.FAILED:
        _finish(status, JobState.FAILED, error=status.error or "the job reported a failure")
    elif status.cancel_requested:
        _finish(status, JobState.CANCELLED)
    elif exit_code is None:
        _finish(status, JobState.FAILED, error=status.error or _LOST)
    elif exit_code < 0:
        name = signal.Signals(-exit_code).name
        error = (
            f"the job process was killed by {name} (out of memory, or killed from outside); "
            "no model was changed"
        )
        _finish(status, JobState.FAILED, error=error)
    else:
        error = status.error or f"the job process exited with code {exit_code} without a result"
        _finish(status, JobState.FAILED, error=error)


def _give_up(status: JobStatus) -> None:
    if not status.finished:
        _finish(status, JobState.FAILED, error="the worker could not run this job; see worker.log")


def _finish(status: JobStatus, state: JobState, *, error: str | None = None) -> None:
    status.state = state
    status.finished_at = _now()
    if error is not None:
        status.error = error


# ---------------------------------------------------------------------- inside the job


class JobContext:
    """Handed to a job's target: report progress, log lines, and register models safely.

    Attributes:
        job_id: This job's id.
        kind: The kind given at submit.
        workspace: The workspace the job belongs to.
        job_dir: This job's folder (a place for scratch files that should be kept with it).
    """

    def __init__(self, job_dir: Path, spec: JobSpec) -> None:
        self.job_dir = job_dir
        self.job_id = spec.job_id
        self.kind = spec.kind
        self.workspace = job_dir.resolve().parents[1]
        self._started = time.monotonic()
        self._latest: dict[str, Any] = {}
        self._history: deque[dict[str, Any]] = deque(maxlen=HISTORY_LIMIT)
        self._dirty = False
        self._last_write = 0.0
        self._state_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._models: list[tuple[str, Path, ModelCard, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    def progress(self, **fields: Any) -> None:
        """Record progress, e.g. ``ctx.progress(epoch=3, step=120, loss=0.41, val_iou=0.62)``.

        Values must be JSON numbers, text, lists or dicts (tensor and numpy scalars are
        converted). Status writes are throttled to a few per second; nothing is lost, the
        latest values are written shortly after.

        Raises:
            FloatingPointError: A field named ``loss`` or ending in ``loss`` is NaN or infinite;
                the run has diverged and fails here rather than saving a broken model.
        """
        fields = {key: _plain(value) for key, value in fields.items()}
        for key, value in fields.items():
            if key.endswith("loss") and isinstance(value, float) and not math.isfinite(value):
                raise FloatingPointError(
                    f"{key} became {value} (progress: {fields}); the run diverged. Lower the "
                    "learning rate or check the data, then train again."
                )
        with self._state_lock:
            self._latest.update(fields)
            self._history.append({"t": round(time.monotonic() - self._started, 3), **fields})
            self._dirty = True
        if time.monotonic() - self._last_write >= PROGRESS_INTERVAL_S:
            self.flush()

    def log(self, message: str) -> None:
        """Add a line to the job log (shown in the status's ``log_tail``)."""
        for line in str(message).splitlines() or [""]:
            print(f"{datetime.now():%H:%M:%S} {line}", flush=True)
        with self._state_lock:
            self._dirty = True  # the next flush refreshes the status's log tail

    def add_model(
        self,
        kind: str,
        staging_dir: Path | str,
        card: ModelCard,
        *,
        make_current: bool | None = None,
        compared_with: str | None = None,
    ) -> None:
        """Register a checkpoint in the zoo once the target has returned successfully.

        The registration happens only if the job ends ``done`` (not on an exception, a cancel
        or a killed process); the new ids appear in the result as ``model_ids``. A staging
        folder of a failed or cancelled job is deleted.

        Args:
            kind: ``"segmentation"`` or ``"diagnosis"``.
            staging_dir: Folder from ``Zoo(ctx.workspace).staging_dir(kind)`` holding the files.
            card: The model card.
            make_current, compared_with: Passed to :meth:`model_zoo.Zoo.add` (None: current
                only when no model is).
        """
        options = {"make_current": make_current, "compared_with": compared_with}
        self._models.append((kind, Path(staging_dir), card, options))

    @property
    def cancelled(self) -> bool:
        """Whether a cancel was requested (the SIGTERM that follows stops the target anyway).

        Cheap enough to check every training step: it looks for a marker file.
        """
        return (self.job_dir / _CANCEL_MARKER).exists()

    def flush(self) -> None:
        """Write pending progress to the status file now."""
        with self._write_lock:
            with self._state_lock:
                if not self._dirty:
                    return
                latest, history = dict(self._latest), list(self._history)
                self._dirty = False
            self._last_write = time.monotonic()

            tail = _tail(self.job_dir / "log.txt")

            def apply(status: JobStatus) -> None:
                status.progress, status.history, status.log_tail = latest, history, tail

            _update_status(self.job_dir, apply)

    def _start_flusher(self) -> None:
        def loop() -> None:
            while not self._stop.wait(PROGRESS_INTERVAL_S):
                self.flush()

        self._flusher = threading.Thread(target=loop, name="job-progress", daemon=True)
        self._flusher.start()

    def _stop_flusher(self) -> None:
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush()

    def _discard_staged(self) -> None:
        for _, staging, _, _ in self._models:
            if staging.parent.name == ".staging":
                shutil.rmtree(staging, ignore_errors=True)


def _on_sigterm(signum: int, frame: object) -> None:
    if not _finishing.is_set():
        raise JobCancelled()


def _run_in_child(job_dir: Path) -> int:
    """Body of ``python -m training.jobs run JOB_DIR``; returns the exit code."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    spec = _read_spec(job_dir)
    ctx = JobContext(job_dir, spec)
    ctx._start_flusher()
    try:
        try:
            target = _resolve_target(spec.target)
            result = _check_result(spec.target, target(ctx, dict(spec.params)))
        except Exception as exc:
            traceback.print_exc()
            sys.stderr.flush()
            ctx._stop_flusher()
            ctx._discard_staged()
            error = f"{type(exc).__name__}: {exc}"

            def failed(status: JobStatus) -> None:
                status.log_tail = _tail(job_dir / "log.txt")
                if status.state == JobState.RUNNING and not status.cancel_requested:
                    status.outcome, status.error = JobState.FAILED, error

            _update_status(job_dir, failed)
            return 1
        ctx._stop_flusher()
        return _finish_done(ctx, result)
    except JobCancelled:
        # Stopping already; a repeated SIGTERM (cancel and worker both send one) must not cut
        # the clean-up short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("[job] stopped by cancel", flush=True)
        ctx._discard_staged()
        ctx._stop_flusher()  # keep the last progress for the page
        return _EXIT_CANCELLED


def _finish_done(ctx: JobContext, result: dict[str, Any]) -> int:
    # Cancel takes the same job lock and refuses once an outcome is recorded, so it either
    # lands before this (and nothing is registered) or not at all; a SIGTERM from elsewhere is
    # ignored meanwhile so a registration is never cut in half.
    _finishing.set()
    try:
        with _job_locked(ctx.job_dir):
            status = _read_status(ctx.job_dir)
            status.log_tail = _tail(ctx.job_dir / "log.txt")
            if status.cancel_requested:
                ctx._discard_staged()
                return _EXIT_CANCELLED
            try:
                if ctx._models:
                    from model_zoo.zoo import Zoo  # lazy: only jobs that make models need it

                    zoo = Zoo(ctx.workspace)
                    ids = [
                        zoo.add(kind, path, card, **options).model_id
                        for kind, path, card, options in ctx._models
                    ]
                    result = {**result, "model_ids": ids}
            except Exception as exc:
                traceback.print_exc()
                sys.stderr.flush()
                status.outcome = JobState.FAILED
                status.error = f"{type(exc).__name__}: {exc}"
                _write_status(ctx.job_dir, status)
                return 1
            status.result = result
            status.outcome = JobState.DONE
            _write_status(ctx.job_dir, status)
            return 0
    finally:
        _finishing.clear()


def _resolve_target(target: str) -> Callable[..., Any]:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    function = getattr(module, attr, None)
    if not callable(function):
        raise JobError(f"job target {target!r}: module {module_name} has no function {attr!r}")
    return function


def _check_result(target: str, result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise TypeError(
            f"job target {target} returned {type(result).__name__}; return a dict or None"
        )
    try:
        return json.loads(json.dumps(result, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"job target {target} returned values that are not JSON: {exc}") from exc


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)  # numpy and torch scalars
    if callable(item):
        with contextlib.suppress(Exception):
            return _plain(item())
    return str(value)


# ---------------------------------------------------------------------- files and processes


def _now() -> datetime:
    return datetime.now(UTC)


def _read_spec(job_dir: Path) -> JobSpec:
    return JobSpec.model_validate_json((job_dir / "spec.json").read_text(encoding="utf-8"))


def _read_status(job_dir: Path) -> JobStatus:
    return JobStatus.model_validate_json((job_dir / "status.json").read_text(encoding="utf-8"))


def _write_status(job_dir: Path, status: JobStatus) -> None:
    atomic_write_text(job_dir / "status.json", status.model_dump_json())


@contextlib.contextmanager
def _job_locked(job_dir: Path) -> Iterator[None]:
    fd = os.open(job_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _update_status(job_dir: Path, change: Callable[[JobStatus], None]) -> JobStatus:
    """Read-modify-write ``status.json`` under the job lock; returns the new status."""
    with _job_locked(job_dir):
        status = _read_status(job_dir)
        change(status)
        _write_status(job_dir, status)
        return status


def _append_log(job_dir: Path, line: str) -> None:
    with open(job_dir / "log.txt", "a", encoding="utf-8") as log:
        log.write(f"{datetime.now():%H:%M:%S} {line}\n")


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _LOG_TAIL_BYTES))
            data = handle.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace")
    tail = text.splitlines()[-lines:]
    return [line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 3] + "..." for line in tail]


def _try_lock(path: Path, wait_s: float) -> int | None:
    """Take an exclusive ``flock`` on ``path`` within ``wait_s`` seconds; the fd holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.02)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + path if path else "")
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach log.txt as they are printed
    return env


def _proc_state(pid: int) -> str | None:
    """The process state letter from /proc (``"Z"`` for a zombie), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return "?"
    return stat.rpartition(")")[2].split()[0]


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) not in (None, "Z")


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _signal_group(pid: int, pgid: int | None, signum: int) -> None:
    """Signal the job's process group, only while ``pid`` still leads it (pids get reused)."""
    if pgid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pgid:
            os.killpg(pgid, signum)


def _kill_group(pgid: int, wait_s: float = 5.0) -> None:
    """SIGKILL every process in ``pgid`` and wait until none is left alive."""
    deadline = time.monotonic() + wait_s
    while True:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        if not _group_members(pgid) or time.monotonic() > deadline:
            return
        time.sleep(0.02)


def _child_exited(pid: int) -> bool:
    """Whether our child ``pid`` exited, without reaping it (so its pid and group stay ours)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


# ---------------------------------------------------------------------- command line


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


def cli_jobs(workspace: Path | str | None = None, as_json: bool = False, limit: int = 20) -> int:
    """Print recent jobs (for ``python -m training jobs [--json]``); returns the exit status."""
    statuses = JobRunner(_workspace(workspace)).list(limit=limit)
    if as_json:
        print(json.dumps([s.model_dump(mode="json", exclude={"history"}) for s in statuses]))
    else:
        print(format_jobs(statuses))
    return 0


def cli_cancel(workspace: Path | str | None, job_id: str, *, wait_s: float | None = None) -> int:
    """Cancel a job (for ``python -m training cancel JOB_ID``); returns the exit status.

    Exit status 0 when the job is cancelled or cancelling, 1 when it is unknown or had already
    finished. With ``wait_s`` it waits that long for the job to stop.
    """
    runner = JobRunner(_workspace(workspace))
    try:
        before = runner.get(job_id)
        if before.finished:
            print(f"job {job_id} already {before.state}; nothing to cancel", file=sys.stderr)
            return 1
        status = runner.cancel(job_id)
        if wait_s:
            status = runner.wait(job_id, timeout=wait_s)
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"job {job_id}: {'cancelling' if status.state == JobState.RUNNING else status.state}")
    return 0


def _workspace(workspace: Path | str | None) -> Path:
    from model_zoo.zoo import default_workspace

    return default_workspace(workspace)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.jobs list|show|cancel|worker|run``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m training.jobs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="recent jobs")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--limit", type=int, default=20)
    show = commands.add_parser("show", help="one job's status and log tail")
    show.add_argument("job_id")
    show.add_argument("--json", action="store_true")
    cancel = commands.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("job_id")
    cancel.add_argument("--wait", type=float, default=None, metavar="SECONDS")
    commands.add_parser("worker", help="(internal) run queued jobs until none is left")
    run = commands.add_parser("run", help="(internal) run one job in this process")
    run.add_argument("job_dir", type=Path)
    for sub in (listing, show, cancel, commands.choices["worker"]):
        sub.add_argument("--workspace", default=None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)

    if args.command == "run":
        return _run_in_child(args.job_dir.resolve())
    if args.command == "worker":
        JobRunner(_workspace(args.workspace)).run_worker()
        return 0
    if args.command == "list":
        return cli_jobs(args.workspace, args.json, args.limit)
    if args.command == "cancel":
        return cli_cancel(args.workspace, args.job_id, wait_s=args.wait)
    try:
        status = JobRunner(_workspace(args.workspace)).get(args.job_id)
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(status.model_dump_json())
    else:
        print(format_jobs([status]))
        print("\n".join(status.log_tail[-40:]))
    return 0


if __name__ == "__main__":
    # Dispatch through the importable module so a target that imports training.jobs shares
    # its classes with the runner instead of getting a second copy from __main__.
    from training.jobs import main as _main

    sys.exit(_main())
