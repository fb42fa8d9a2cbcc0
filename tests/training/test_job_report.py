"""What a job's status means (:mod:`training.job_report`): one report per state and kind, the
same the pages' job panel draws and ``python -m training segment --wait`` prints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dataset.roles import Actor
from training.job_report import KIND_REPORTS, active_job, job_to_show, report, selection_rows
from training.jobs import JobRunner, JobState, JobStatus
from training.kinds import JOB_KINDS, SCORE, TRAIN_DIAGNOSIS, TRAIN_SEGMENTATION

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def status(kind: str, state: JobState, **fields) -> JobStatus:
    started = {} if state == JobState.QUEUED else {"started_at": T0}
    finished = (
        {"finished_at": T0 + timedelta(seconds=75)}
        if state not in (JobState.QUEUED, JobState.RUNNING)
        else {}
    )
    return JobStatus(
        job_id="job-1",
        kind=kind,
        target=JOB_KINDS.get(kind, "x.y:z"),
        state=state,
        created_at=T0,
        **started,
        **finished,
        **fields,
    )


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)


def test_every_job_kind_has_its_own_words() -> None:
    assert set(KIND_REPORTS) == set(JOB_KINDS)
    titles = {k: r.title for k, r in KIND_REPORTS.items()}
    assert len(set(titles.values())) == len(titles), titles


@pytest.mark.parametrize("kind", [*JOB_KINDS, "some-other-kind"])
def test_each_state_has_one_tone_and_cancel_only_while_unfinished(kind: str, tmp_path) -> None:
    tones = {}
    for state in JobState:
        shown = report(tmp_path, status(kind, state, error="disk full"))
        tones[state] = shown.tone
        assert shown.message
        assert shown.can_cancel == (state in (JobState.QUEUED, JobState.RUNNING))
        assert shown.live == (state in (JobState.QUEUED, JobState.RUNNING))
        assert shown.log_open == (state == JobState.FAILED)
        assert (shown.fraction is not None) == (state == JobState.RUNNING)
    assert tones == {
        JobState.QUEUED: "info",
        JobState.RUNNING: "progress",
        JobState.DONE: "success",
        JobState.CANCELLED: "warning",
        JobState.FAILED: "error",
    }
    failed = report(tmp_path, status(kind, JobState.FAILED, error="disk full"))
    assert failed.message.endswith("failed: disk full")
    assert "no reason was recorded" in report(tmp_path, status(kind, JobState.FAILED)).message


def test_a_cancel_pending_is_told_and_not_offered_again(tmp_path: Path) -> None:
    shown = report(tmp_path, status(SCORE, JobState.RUNNING, cancel_requested=True))
    assert shown.message.startswith("Cancelling…")
    assert (shown.can_cancel, shown.cancel_label) == (False, "Cancelling…")


def test_a_queued_job_names_the_job_it_waits_for(tmp_path: Path, monkeypatch) -> None:
    waiting = JobRunner(tmp_path).submit(SCORE, JOB_KINDS[SCORE], {})
    assert report(tmp_path, waiting).message == "Queued: the background worker is starting…"
    running = status(TRAIN_SEGMENTATION, JobState.RUNNING).model_copy(update={"job_id": "other"})
    monkeypatch.setattr(JobRunner, "active", lambda self: running)  # a worker on another job
    assert (
        report(tmp_path, waiting).message
        == "Queued: waiting for the running train-segmentation job to finish."
    )


def test_progress_per_kind(tmp_path: Path) -> None:
    seg = {"phase": "train", "epoch": 2, "epochs": 4, "step": 1, "steps": 2, "loss": 0.5}
    shown = report(tmp_path, status(TRAIN_SEGMENTATION, JobState.RUNNING, progress=seg))
    assert shown.fraction == pytest.approx(1.5 / 4)
    assert shown.message == "Epoch 2 of 4, step 1 of 2 · loss 0.500"
    timed = {**seg, "fraction": 0.62, "budget_s": 480.0, "run_step": 310}
    shown = report(tmp_path, status(TRAIN_SEGMENTATION, JobState.RUNNING, progress=timed))
    assert shown.fraction == pytest.approx(0.62)
    assert shown.message == "62% of the 8 min 00 s budget, step 310 · loss 0.500"
    shown = report(tmp_path, status(SCORE, JobState.RUNNING, progress={"step": 3, "total": 12}))
    assert (shown.fraction, shown.message) == (0.25, "Scoring tiles: 3 of 12")
    dx = {"stage": "cross-validation", "done": 2, "total": 8}
    shown = report(tmp_path, status(TRAIN_DIAGNOSIS, JobState.RUNNING, progress=dx))
    assert (shown.fraction, shown.message) == (0.25, "Training: cross-validation 2/8")
    assert report(tmp_path, status(SCORE, JobState.RUNNING)).fraction == 0.0


def test_done_messages_say_what_was_made(tmp_path: Path) -> None:
    scored = status(SCORE, JobState.DONE, result={"scored": 7, "seconds": 3.2})
    assert report(tmp_path, scored).message == "Scored 7 new tiles in 3 s."
    dx = status(TRAIN_DIAGNOSIS, JobState.DONE, result={"model_ids": ["dx-1"]})
    assert report(tmp_path, dx).message == "Training finished in 1 min 15 s: model dx-1."
    seg = status(
        TRAIN_SEGMENTATION,
        JobState.DONE,
        result={"model_ids": ["seg-1"], "mean_iou": 0.5, "best_epoch": 2},
    )
    text = report(tmp_path, seg).message  # no zoo: seg-1 is not current
    assert text.startswith("Finished in 1 min 15 s: model seg-1, best validation mean IoU 0.500")
    assert "It is not the current model" in text


def test_a_finished_run_tells_why_its_model_lost_with_the_comparison(tmp_path: Path) -> None:
    selection = {
        "model_id": "seg-1",
        "baseline": "rules",
        "new_miou": 0.4,
        "baseline_miou": 0.6,
        "rules_miou": 0.6,
        "per_class": {"seg-1": {"a": 0.4, "b": None}, "rules": {"a": 0.6, "b": None}},
        "winner": "rules",
        "reason": "seg-1 scored below the colour rules",
    }
    seg = status(
        TRAIN_SEGMENTATION, JobState.DONE, result={"model_ids": ["seg-1"], "selection": selection}
    )
    shown = report(tmp_path, seg)
    assert [(n.tone, n.text) for n in shown.notes] == [
        ("warning", "Why: seg-1 scored below the colour rules")
    ]
    assert list(shown.table) == selection_rows(selection)
    assert [r[""] for r in shown.table] == ["new model", "✔ colour rules"]
    assert shown.table[0]["b"] == "-"


def test_training_curves_come_from_the_history(tmp_path: Path) -> None:
    history = [
        {"phase": "train", "epoch": 1, "epochs": 1, "step": 1, "steps": 2, "loss": 0.9},
        {"phase": "validate", "epoch": 1, "val_loss": 0.8, "val_miou": 0.5,
         "val_iou": {"a": 0.5, "b": None}},
    ]  # fmt: skip
    running = status(
        TRAIN_SEGMENTATION,
        JobState.RUNNING,
        history=history,
        progress={**history[-1], "val_absent": ["b"]},
    )
    loss, iou = report(tmp_path, running).curves
    assert [(p["epoch"], p["series"]) for p in loss.points] == [
        (0.5, "training (per step)"),
        (1.0, "validation"),
    ]
    assert [(p["class"], p["IoU"]) for p in iou.points] == [("a", 0.5), ("mean", 0.5)]
    assert "No labelled pixels of b" in iou.note and iou.unit_range
    assert report(tmp_path, status(SCORE, JobState.RUNNING)).curves == ()


def test_which_job_a_page_shows(tmp_path: Path) -> None:
    runner = JobRunner(tmp_path)
    assert job_to_show(tmp_path, SCORE, None) is None
    first = runner.submit(SCORE, JOB_KINDS[SCORE], {}).job_id
    train = runner.submit(TRAIN_SEGMENTATION, JOB_KINDS[TRAIN_SEGMENTATION], {}).job_id
    assert job_to_show(tmp_path, SCORE, None).job_id == first
    assert job_to_show(tmp_path, SCORE, "gone-job").job_id == first
    assert job_to_show(tmp_path, SCORE, train).job_id == train  # the session's, whatever kind
    assert active_job(tmp_path, SCORE).job_id == first
    runner.cancel(first, actor=Actor("tester", "admin"))
    assert active_job(tmp_path, SCORE) is None
    assert job_to_show(tmp_path, SCORE, None).state == JobState.CANCELLED
