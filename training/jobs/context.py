"""Inside a job's process: the :class:`JobContext` a target gets, and the run of the target.

Promises:

* The target of a job is a function ``"package.module:function"`` called as
  ``function(ctx: JobContext, params: dict) -> dict | None``; its return value is the result.
* :meth:`JobContext.progress` appends one row to ``progress.jsonl``
  (:mod:`training.jobs.progress`) and refuses a NaN or infinite loss. ``status.json`` gets
  a summary of the latest values when a field is reported for the first time, at most every
  :data:`SNAPSHOT_INTERVAL_S` seconds besides, and when the job ends; never once per report.
* A job that fails (exception, NaN loss, non-zero exit, killed by a signal) or is cancelled
  never changes the zoo: models handed to :meth:`JobContext.add_model` are registered only
  after the target has returned, under the job lock, and only when no cancel was requested.
* SIGTERM (a cancel) raises :class:`JobCancelled` in the target, except while a finished job
  is being recorded as done.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.jobs.folder import (
    CANCEL_MARKER,
    job_lock,
    read_spec,
    read_status,
    tail,
    update_status,
    write_status,
)
from training.jobs.process import kill_descendants
from training.jobs.progress import PROGRESS_FILE, ProgressLog
from training.jobs.spec import JobCancelled, JobError, JobSpec, JobState, JobStatus

if TYPE_CHECKING:
    from model_zoo.card import ModelCard

__all__ = ["EXIT_CANCELLED", "SNAPSHOT_INTERVAL_S", "JobContext", "run_in_child"]

SNAPSHOT_INTERVAL_S = 5.0  # latest progress copied into status.json at most this often
EXIT_CANCELLED = 128 + signal.SIGTERM
# Set while a finished job is being recorded as done: a SIGTERM then no longer cancels it.
_finishing = threading.Event()


class JobContext:
    """Handed to a job's target: report progress, log lines, and register models safely.

    Attributes:
        job_id: This job's id.
        kind: The kind given at submit.
        workspace: The workspace the job belongs to.
        job_dir: This job's folder (a place for scratch files that should be kept with it).

    Args:
        job_dir: The job's folder.
        spec: Its spec.
        snapshot_s: Seconds between copies of the latest progress into ``status.json``.
    """

    def __init__(
        self, job_dir: Path, spec: JobSpec, *, snapshot_s: float = SNAPSHOT_INTERVAL_S
    ) -> None:
        self.job_dir = job_dir
        self.job_id = spec.job_id
        self.kind = spec.kind
        self.workspace = job_dir.resolve().parents[1]
        self._started = time.monotonic()
        self._latest: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._progress_log = ProgressLog(job_dir / PROGRESS_FILE)
        self._snapshot_s = snapshot_s
        self._last_snapshot = self._started
        self._models: list[tuple[str, Path, ModelCard, dict[str, Any]]] = []

    def progress(self, **fields: Any) -> None:
        """Record progress, e.g. ``ctx.progress(epoch=3, step=120, loss=0.41, val_iou=0.62)``.

        Values must be JSON numbers, text, lists or dicts (tensor and numpy scalars are
        converted). Each call appends one line to the progress log at once, whatever the
        number of reports before it.

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
        with self._lock:
            # A field seen for the first time goes into the summary at once: readers take the
            # latest values from the summary plus the log's last rows, which may not hold it.
            new_field = not fields.keys() <= self._latest.keys()
            self._latest.update(fields)
            self._progress_log.append({"t": round(time.monotonic() - self._started, 3), **fields})
        if new_field or time.monotonic() - self._last_snapshot >= self._snapshot_s:
            self.flush()

    def log(self, message: str) -> None:
        """Add a line to the job log (readers see it in the status's ``log_tail``)."""
        for line in str(message).splitlines() or [""]:
            print(f"{datetime.now():%H:%M:%S} {line}", flush=True)

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
        return (self.job_dir / CANCEL_MARKER).exists()

    def flush(self) -> None:
        """Copy the latest progress into ``status.json`` now (the log has every row already)."""
        with self._lock:
            latest = dict(self._latest)
            self._last_snapshot = time.monotonic()
        update_status(self.job_dir, lambda status: setattr(status, "progress", latest))

    def _close(self) -> None:
        self._progress_log.close()
        self.flush()

    def _discard_staged(self) -> None:
        for _, staging, _, _ in self._models:
            if staging.parent.name == ".staging":
                shutil.rmtree(staging, ignore_errors=True)


def _on_sigterm(signum: int, frame: object) -> None:
    if not _finishing.is_set():
        raise JobCancelled()


def run_in_child(job_dir: Path) -> int:
    """Run the job in ``job_dir`` in this process (its own process group); the exit code."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    spec = read_spec(job_dir)
    ctx = JobContext(job_dir, spec)
    try:
        try:
            target = resolve_target(spec.target)
            result = _check_result(spec.target, target(ctx, dict(spec.params)))
        except Exception as exc:
            traceback.print_exc()
            sys.stderr.flush()
            ctx._close()
            ctx._discard_staged()
            error = f"{type(exc).__name__}: {exc}"

            def failed(status: JobStatus) -> None:
                status.log_tail = tail(job_dir / "log.txt")
                if status.state == JobState.RUNNING and not status.cancel_requested:
                    status.outcome, status.error = JobState.FAILED, error

            update_status(job_dir, failed)
            return 1
        ctx._close()
        return _finish_done(ctx, result)
    except JobCancelled:
        # Stopping already; a repeated SIGTERM (cancel and worker both send one) must not cut
        # the clean-up short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("[job] stopped by cancel", flush=True)
        ctx._discard_staged()
        ctx._close()  # keep the last progress for the page
        return EXIT_CANCELLED
    finally:
        # Its descendants are still this process's tree now; once it exits, the ones that
        # left its process group would be out of the worker's reach.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        kill_descendants()


def _finish_done(ctx: JobContext, result: dict[str, Any]) -> int:
    # Cancel takes the same job lock and refuses once an outcome is recorded, so it either
    # lands before this (and nothing is registered) or not at all; a SIGTERM from elsewhere is
    # ignored meanwhile so a registration is never cut in half.
    _finishing.set()
    try:
        with job_lock(ctx.job_dir):
            status = read_status(ctx.job_dir)
            status.log_tail = tail(ctx.job_dir / "log.txt")
            if status.cancel_requested:
                ctx._discard_staged()
                return EXIT_CANCELLED
            try:
                if ctx._models:
                    from model_zoo.zoo import Zoo  # lazy: only jobs that make models need it

                    zoo = Zoo(ctx.workspace)
                    ids = []
                    for kind, path, card, options in ctx._models:
                        before = zoo.current(kind)
                        ids.append(zoo.add(kind, path, card, **options).model_id)
                        _audit_current(ctx, zoo, kind, ids[-1], before)
                    result = {**result, "model_ids": ids}
            except Exception as exc:
                traceback.print_exc()
                sys.stderr.flush()
                status.outcome = JobState.FAILED
                status.error = f"{type(exc).__name__}: {exc}"
                write_status(ctx.job_dir, status)
                return 1
            status.result = result
            status.outcome = JobState.DONE
            write_status(ctx.job_dir, status)
            return 0
    finally:
        _finishing.clear()


def _audit_current(ctx: JobContext, zoo, kind: str, model_id: str, before) -> None:
    """A model that became current as its job ended did so automatically: audit it as the
    account ``system`` (a failure here fails the job, so a missing row is never silent)."""
    now = zoo.current(kind)
    if now is None or now.model_id != model_id:
        return
    from dataset import audit  # lazy: most jobs make no model

    audit.record(
        ctx.workspace,
        actor=audit.SYSTEM,
        action="promote",
        object_id=model_id,
        before=None if before is None else before.model_id,
        after=model_id,
        detail={"kind": kind, "automatic": True, "job_id": ctx.job_id},
    )


def resolve_target(target: str) -> Callable[..., Any]:
    """The function a job target ``"package.module:function"`` names (imported here)."""
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
