"""What a background job's status means to the person waiting for it.

Promises:
- :func:`report` turns a :class:`training.jobs.JobStatus` into one :class:`JobReport`: a tone
  (``info`` queued, ``progress`` running, ``success`` done, ``warning`` cancelled, ``error``
  failed), one sentence, the progress bar's value, whether Cancel is offered and what it keeps,
  notes, a comparison table and the live curves. The Train, Suggestions and Diagnosis pages
  draw it with one panel (``pages/_jobs_panel.py``); ``python -m training segment --wait``
  prints the same sentences.
- What each job kind says is one entry of :data:`KIND_REPORTS` (kind → :class:`KindReport`),
  keyed by the kinds of :mod:`training.kinds`; a kind without an entry still gets a plain
  report, so a job of any kind can be shown.
- Which job a page shows is :func:`job_to_show`: the one the session remembers while it
  exists, else the newest job of the page's kind.

Only job statuses, the zoo's current pointer and plain Python are read here; nothing draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from training.jobs import JobRunner, JobState, JobStatus, UnknownJobError
from training.kinds import SCORE, TRAIN_DIAGNOSIS, TRAIN_SEGMENTATION
from training.metrics import absent_note

__all__ = [
    "KIND_REPORTS",
    "TRAIN_SERIES",
    "Curve",
    "JobReport",
    "KindReport",
    "Note",
    "active_job",
    "duration_text",
    "iou_curve",
    "job_to_show",
    "loss_curve",
    "report",
    "selection_rows",
]

Tone = Literal["info", "progress", "success", "warning", "error"]
TRAIN_SERIES = "training (per step)"


@dataclass(frozen=True)
class Note:
    """A sentence shown under the report's message, in its own tone."""

    tone: Tone
    text: str


@dataclass(frozen=True)
class Curve:
    """A live curve: long-form points (``x``, ``y``, ``group`` keys), drawn one line per group.

    Attributes:
        empty: What to say while there is no point yet.
        note: A sentence under the chart (e.g. classes without validation pixels), or "".
        unit_range: Whether the y axis is fixed to 0..1 (IoU), else it starts at zero.
    """

    title: str
    x: str
    y: str
    group: str
    points: tuple[dict[str, Any], ...]
    empty: str
    note: str = ""
    unit_range: bool = False


@dataclass(frozen=True)
class JobReport:
    """One job as the person waiting for it should see it.

    Attributes:
        title: What the job is, e.g. "Training run".
        tone: ``info`` queued, ``progress`` running, ``success`` done, ``warning`` cancelled,
            ``error`` failed.
        message: One sentence: where the job is, or how it ended.
        fraction: The progress bar's value (0..1) while the job runs, else None.
        can_cancel: Whether Cancel is offered (the job is unfinished and no cancel is pending);
            ``cancel_label`` and ``cancel_help`` say what pressing it does and keeps.
        notes: Sentences under the message (why a model is or is not current, ...).
        table: Rows of a comparison to show under the notes (may be empty).
        curves: Live curves drawn from the job's progress history.
        log_open: Whether the log should be shown opened (the job failed).
    """

    job_id: str
    kind: str
    title: str
    state: JobState
    tone: Tone
    message: str
    fraction: float | None = None
    can_cancel: bool = False
    cancel_label: str = "Cancel"
    cancel_help: str = ""
    notes: tuple[Note, ...] = ()
    table: tuple[dict[str, Any], ...] = ()
    curves: tuple[Curve, ...] = ()
    log_tail: tuple[str, ...] = ()
    log_open: bool = False

    @property
    def live(self) -> bool:
        """Whether the job may still change (queued or running)."""
        return self.state in (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True)
class Ending:
    """How a finished job of some kind is told: the message, notes and table of ``done``."""

    message: str
    notes: tuple[Note, ...] = ()
    table: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class KindReport:
    """What the jobs of one kind say; subclass and register in :data:`KIND_REPORTS`.

    Attributes:
        title: The job's name in a sentence ("Training run", "Scoring").
        cancel_help: What a cancel keeps, shown on the Cancel button.
        cancelled: The sentence for a cancelled job.
    """

    title: str = "Job"
    cancel_help: str = "Stop the job."
    cancelled: str = "Cancelled."
    log_lines: int = field(default=40)

    def running(self, progress: dict[str, Any]) -> tuple[float, str]:
        """The progress bar's value and text from the latest progress fields."""
        done, total = progress.get("done") or progress.get("step"), progress.get("total")
        if isinstance(done, int | float) and isinstance(total, int | float) and total > 0:
            return min(1.0, max(0.0, done / total)), f"{self.title}: {done:g} of {total:g}"
        return 0.0, f"{self.title}: starting…"

    def done(self, workspace: Path, status: JobStatus) -> Ending:
        """How a job that ended ``done`` is told."""
        return Ending(f"{self.title} finished in {duration_text(status.duration_s)}.")

    def curves(self, status: JobStatus) -> tuple[Curve, ...]:
        """Live curves of the job (none by default)."""
        return ()


class SegmentationTraining(KindReport):
    """A segmentation training run: epochs and steps, loss and IoU curves, who won."""

    def __init__(self) -> None:
        super().__init__(
            title="Training run",
            cancel_help="Stop the run. A cancelled run keeps no model.",
            cancelled="Cancelled. No model was kept; the current model is unchanged.",
        )

    def running(self, progress: dict[str, Any]) -> tuple[float, str]:
        epoch, epochs = progress.get("epoch"), progress.get("epochs")
        step, steps = progress.get("step"), progress.get("steps")
        if not epoch or not epochs:
            return 0.0, "Preparing the data and the model…"
        done = (epoch - 1 + (step or 0) / max(1, steps or 1)) / epochs
        if isinstance(progress.get("fraction"), int | float):
            done = progress["fraction"]  # of the steps or of the time budget, as the run counts
        budget = progress.get("budget_s")
        if isinstance(budget, int | float):
            # A budgeted run validates a few times, late: its share of the budget says more.
            where = f"{done:.0%} of the {duration_text(budget)} budget"
            if progress.get("phase") == "validate":
                where += f": validation {epoch} of {epochs}"
            elif progress.get("run_step"):
                where += f", step {progress['run_step']}"
        elif progress.get("phase") == "validate":
            done = epoch / epochs
            where = f"Epoch {epoch} of {epochs}: validated"
        else:
            where = f"Epoch {epoch} of {epochs}, step {step} of {steps}"
        parts = [where]
        if isinstance(progress.get("loss"), int | float):
            parts.append(f"loss {progress['loss']:.3f}")
        if isinstance(progress.get("best_miou"), int | float):
            best = f"best mean IoU {progress['best_miou']:.3f}"
            if progress.get("best_epoch"):
                best += f" (epoch {progress['best_epoch']})"
            parts.append(best)
        if isinstance(progress.get("elapsed_s"), int | float):
            parts.append(duration_text(progress["elapsed_s"]))
        return min(1.0, max(0.0, done)), " · ".join(parts)

    def done(self, workspace: Path, status: JobStatus) -> Ending:
        from model_zoo import Zoo

        result = status.result or {}
        ids = result.get("model_ids", [])
        current = Zoo(workspace).current("segmentation")
        is_current = current is not None and current.model_id in ids
        message = (
            f"Finished in {duration_text(status.duration_s)}: model {', '.join(ids) or '-'}, "
            f"best validation mean IoU {_num(result.get('mean_iou'))} (epoch "
            f"{result.get('best_epoch', '-')}). "
            + (
                "It is the current model."
                if is_current
                else "It is not the current model; compare it under Runs below and promote it "
                "to use it anyway."
            )
        )
        selection = result.get("selection")
        if selection:
            why = Note("info" if is_current else "warning", f"Why: {selection['reason']}")
            return Ending(message, (why,), tuple(selection_rows(selection)))
        if result.get("absent_classes"):
            return Ending(message, (Note("info", absent_note(result["absent_classes"])),))
        return Ending(message)

    def curves(self, status: JobStatus) -> tuple[Curve, ...]:
        absent = status.progress.get("val_absent")
        return (
            Curve(
                "Loss",
                "epoch",
                "loss",
                "series",
                tuple(loss_curve(status.history)),
                "Appears after the first training step.",
            ),
            Curve(
                "Validation IoU per class",
                "epoch",
                "IoU",
                "class",
                tuple(iou_curve(status.history)),
                "Appears after the first epoch's validation.",
                absent_note(absent) if absent else "",
                unit_range=True,
            ),
        )


class Scoring(KindReport):
    """Bulk scoring of unlabelled tiles for the suggestions."""

    def __init__(self) -> None:
        super().__init__(
            title="Scoring",
            cancel_help="Stop scoring. The tiles scored so far keep their scores.",
            cancelled="Scoring was cancelled; the tiles scored before that are kept.",
        )

    def running(self, progress: dict[str, Any]) -> tuple[float, str]:
        step, total = progress.get("step"), progress.get("total")
        if step and total:
            return min(1.0, step / total), f"Scoring tiles: {step} of {total}"
        return 0.0, "Scoring: loading the model and the tiles…"

    def done(self, workspace: Path, status: JobStatus) -> Ending:
        result = status.result or {}
        return Ending(
            f"Scored {result.get('scored', 0)} new tiles in {result.get('seconds', 0):.0f} s."
        )


class DiagnosisTraining(KindReport):
    """Training the diagnosis classifier: cross-validation folds, then the final fit."""

    def __init__(self) -> None:
        super().__init__(
            title="Diagnosis training",
            cancel_help="Stop training. A cancelled run keeps no model.",
            cancelled="Training was cancelled; no model was kept.",
        )

    def running(self, progress: dict[str, Any]) -> tuple[float, str]:
        total = progress.get("total") or 1
        done = progress.get("done") or 0
        stage = progress.get("stage", "starting")
        return min(1.0, done / total), f"Training: {stage} {done}/{total}"

    def done(self, workspace: Path, status: JobStatus) -> Ending:
        ids = (status.result or {}).get("model_ids") or ["-"]
        return Ending(
            f"Training finished in {duration_text(status.duration_s)}: model {', '.join(ids)}."
        )


KIND_REPORTS: dict[str, KindReport] = {
    TRAIN_SEGMENTATION: SegmentationTraining(),
    SCORE: Scoring(),
    TRAIN_DIAGNOSIS: DiagnosisTraining(),
}


def report(workspace: Path | str, status: JobStatus) -> JobReport:
    """The report of one job.

    Args:
        workspace: The job's workspace (a queued job names the running job it waits for; a
            finished training run says whether its model is the current one).
    """
    workspace = Path(workspace)
    kind = KIND_REPORTS.get(status.kind, KindReport())
    base = {
        "job_id": status.job_id,
        "kind": status.kind,
        "title": kind.title,
        "state": status.state,
        "cancel_help": kind.cancel_help,
        "curves": kind.curves(status),
        "log_tail": tuple(status.log_tail[-kind.log_lines :]),
    }
    if status.state == JobState.QUEUED:
        active = JobRunner(workspace).active()
        if active is not None and active.job_id != status.job_id:
            text = f"Queued: waiting for the running {active.kind} job to finish."
        else:
            text = "Queued: the background worker is starting…"
        return JobReport(**base, tone="info", message=text, can_cancel=True)
    if status.state == JobState.RUNNING:
        fraction, text = kind.running(status.progress)
        if status.cancel_requested:
            return JobReport(
                **base,
                tone="progress",
                message=f"Cancelling… {text}",
                fraction=fraction,
                cancel_label="Cancelling…",
            )
        return JobReport(**base, tone="progress", message=text, fraction=fraction, can_cancel=True)
    if status.state == JobState.DONE:
        ending = kind.done(workspace, status)
        return JobReport(
            **base, tone="success", message=ending.message, notes=ending.notes, table=ending.table
        )
    if status.state == JobState.CANCELLED:
        return JobReport(**base, tone="warning", message=kind.cancelled)
    return JobReport(
        **base,
        tone="error",
        message=f"{kind.title} failed: {status.error or 'no reason was recorded'}",
        log_open=True,
    )


def job_to_show(workspace: Path | str, kind: str, remembered: str | None) -> JobStatus | None:
    """The job a page of ``kind`` shows: ``remembered`` (the session's) while it exists, else
    the newest job of ``kind`` (so a reload, another tab or the CLI's job is seen too)."""
    runner = JobRunner(Path(workspace))
    if remembered:
        try:
            return runner.get(remembered)
        except UnknownJobError:
            pass
    return next((s for s in runner.list() if s.kind == kind), None)


def active_job(workspace: Path | str, kind: str) -> JobStatus | None:
    """The queued or running job of ``kind``, if any."""
    runner = JobRunner(Path(workspace))
    live = runner.list(states=[JobState.QUEUED, JobState.RUNNING])
    return next((s for s in live if s.kind == kind), None)


# ------------------------------------------------------------------------------ training
def loss_curve(history: Sequence[dict]) -> list[dict[str, Any]]:
    """Long-form loss points: training loss per step, validation loss per epoch.

    The x axis is in epochs (a step inside epoch 3 of 10 steps sits at 2.1 .. 3.0), so both
    series share it.
    """
    rows = []
    for h in history:
        if h.get("phase") == "train" and isinstance(h.get("loss"), int | float):
            x = h["epoch"] - 1 + h["step"] / max(1, h.get("steps") or 1)
            rows.append({"epoch": x, "loss": h["loss"], "series": TRAIN_SERIES})
        elif h.get("phase") == "validate" and isinstance(h.get("val_loss"), int | float):
            rows.append({"epoch": float(h["epoch"]), "loss": h["val_loss"], "series": "validation"})
    return rows


def iou_curve(history: Sequence[dict]) -> list[dict[str, Any]]:
    """Long-form validation IoU per class (and the mean) at the end of every epoch."""
    rows = []
    for h in history:
        if h.get("phase") != "validate":
            continue
        for name, iou in (h.get("val_iou") or {}).items():
            if isinstance(iou, int | float):
                rows.append({"epoch": h["epoch"], "IoU": iou, "class": name})
        if isinstance(h.get("val_miou"), int | float):
            rows.append({"epoch": h["epoch"], "IoU": h["val_miou"], "class": "mean"})
    return rows


def selection_rows(selection: dict) -> list[dict[str, str]]:
    """A run's comparison: one row per contender (new model, current model or colour rules),
    its mean IoU and IoU per class on the validation tiles; "-" where a class has no pixels."""
    rows = []
    for name in selection["per_class"]:
        if name == selection["model_id"]:
            role = "new model"
        elif name == "rules":
            role = "colour rules"
        else:
            role = "current model"
        miou = {
            selection["model_id"]: selection["new_miou"],
            selection["baseline"]: selection["baseline_miou"],
            "rules": selection["rules_miou"],
        }[name]
        row = {
            "": ("✔ " if name == selection["winner"] else "") + role,
            "model": name,
            "mean IoU": _num(miou),
        }
        row.update({c: _num(v) for c, v in selection["per_class"][name].items()})
        rows.append(row)
    return rows


def duration_text(seconds: float | None) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``; "-" for None."""
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _num(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"
