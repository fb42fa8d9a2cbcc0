"""The one job panel (``pages/_jobs_panel.py``) on each page that runs jobs: Train,
Suggestions and Diagnosis (AppTest).

Each page shows its kind's job through the same panel: the report's message in its tone, a
progress bar while the job runs, Cancel while it may be cancelled (reaching the job runner),
the log opened when it failed. The statuses are served by a stand-in for the runner's
reading methods, so a test does not depend on how the runner stores them; what each state
says is tested in ``tests/training/test_job_report.py``.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests._accounts import open_page
from tests._segfixtures import make_workspace
from training.jobs import JobRunner, JobState, JobStatus, UnknownJobError
from training.kinds import JOB_KINDS, SCORE, TRAIN_DIAGNOSIS, TRAIN_SEGMENTATION

ROOT = Path(__file__).resolve().parents[2]
# page, its job kind, the session key of its job id, the running job's progress and bar text
PAGES = {
    "pages/train.py": (
        TRAIN_SEGMENTATION,
        "train_job_id",
        {"phase": "train", "epoch": 2, "epochs": 2, "step": 1, "steps": 2, "loss": 0.75},
        "Epoch 2 of 2, step 1 of 2 · loss 0.750",
    ),
    "pages/suggestions.py": (
        SCORE,
        "score_job_id",
        {"step": 3, "total": 4},
        "Scoring tiles: 3 of 4",
    ),
    "pages/diagnosis.py": (
        TRAIN_DIAGNOSIS,
        "dx_train_job",
        {"stage": "cross-validation", "done": 3, "total": 4},
        "Training: cross-validation 3/4",
    ),
}


class Jobs:
    """Stands in for :class:`JobRunner`'s reading and cancelling: one job, set by the test."""

    def __init__(self) -> None:
        self.status: JobStatus | None = None
        self.cancelled: list[str] = []

    def set(self, kind: str, state: JobState, **fields) -> JobStatus:
        now = datetime.now(UTC)
        self.status = JobStatus(
            job_id="job-42",
            kind=kind,
            target=JOB_KINDS[kind],
            state=state,
            created_at=now,
            started_at=None if state == JobState.QUEUED else now,
            **fields,
        )
        return self.status

    def get(self, runner, job_id: str) -> JobStatus:
        if self.status is None or job_id != self.status.job_id:
            raise UnknownJobError(f"no job with id {job_id!r}")
        return self.status

    def list(self, runner, *, states=None, limit=None) -> list[JobStatus]:
        found = [s for s in [self.status] if s is not None and (not states or s.state in states)]
        return found[:limit] if limit is not None else found

    def cancel(self, runner, job_id: str) -> JobStatus:
        self.cancelled.append(job_id)
        self.status = self.status.model_copy(update={"cancel_requested": True})
        return self.status


@pytest.fixture(scope="module")
def populated(tmp_path_factory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("panel"))


@pytest.fixture
def jobs(monkeypatch) -> Jobs:
    fake = Jobs()
    monkeypatch.setattr(JobRunner, "get", lambda self, job_id: fake.get(self, job_id))
    monkeypatch.setattr(JobRunner, "list", lambda self, **kw: fake.list(self, **kw))
    monkeypatch.setattr(JobRunner, "cancel", lambda self, job_id, actor: fake.cancel(self, job_id))
    monkeypatch.setattr(JobRunner, "active", lambda self: None)
    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)
    return fake


@pytest.mark.parametrize("path", list(PAGES))
def test_each_page_shows_its_job_through_the_one_panel(
    path: str, populated: Path, tmp_path: Path, jobs: Jobs, monkeypatch
) -> None:
    kind, key, progress, bar_text = PAGES[path]
    ws = Path(shutil.copytree(populated, tmp_path / "ws"))
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(ws))
    at = open_page(path, timeout=120)

    # Running: a progress bar with the report's words, and Cancel reaching the runner.
    jobs.set(kind, JobState.RUNNING, progress=progress, log_tail=["line one"])
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[key] == "job-42"
    assert [(p.value, p.text) for p in at.get("progress")] == [(75, bar_text)]
    assert any("`job-42`" in m.value for m in at.markdown)
    cancel = at.button(key=f"{key}_cancel")
    assert (cancel.label, cancel.disabled) == ("Cancel", False)
    cancel.click().run()
    assert not at.exception, at.exception
    assert jobs.cancelled == ["job-42"]
    assert at.get("progress")[0].text.startswith("Cancelling…")
    at.run()  # the next poll: the pending cancel is not offered again
    assert at.button(key=f"{key}_cancel").disabled

    # Failed: the reason as an error, the log opened, no Cancel.
    jobs.set(kind, JobState.FAILED, error="disk full", log_tail=["Traceback", "OSError"])
    at.run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error if "disk full" in e.value] == [
        next(e.value for e in at.error if e.value.endswith("failed: disk full"))
    ]
    log = next(x for x in at.expander if x.label == "Log")
    assert log.proto.expanded
    assert "Traceback\nOSError" in [c.value for c in log.code]
    assert not [b for b in at.button if b.key == f"{key}_cancel"]

    # Cancelled: the kind's own sentence as a warning.
    jobs.set(kind, JobState.CANCELLED)
    at.run()
    assert any("cancelled" in w.value.lower() for w in at.warning)
    assert not next(x for x in at.expander if x.label == "Log").proto.expanded


def test_the_panel_says_nothing_on_pages_without_a_job(
    populated: Path, tmp_path: Path, jobs: Jobs, monkeypatch
) -> None:
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(populated))
    at = open_page("pages/train.py", timeout=120)
    assert "No run yet." in [i.value[:11] for i in at.info]
    at.switch_page("pages/suggestions.py").run()
    assert not at.get("progress") and not [x for x in at.expander if x.label == "Log"]
    assert "score_job_id" not in at.session_state


def test_a_clinician_sees_the_classifier_run_but_may_not_cancel_it(
    populated: Path, tmp_path: Path, jobs: Jobs, monkeypatch
) -> None:
    # A clinician uses the Diagnosis page; training (and so stopping it) is for an admin.
    ws = Path(shutil.copytree(populated, tmp_path / "ws"))
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(ws))
    at = open_page("pages/diagnosis.py", "dr-c", "clinician", timeout=120)
    jobs.set(TRAIN_DIAGNOSIS, JobState.RUNNING, progress=PAGES["pages/diagnosis.py"][2])
    at.session_state["dx_train_job"] = "job-42"
    at.run()
    assert not at.exception, at.exception
    cancel = at.button(key="dx_train_job_cancel")
    assert cancel.disabled and "may not cancel" in cancel.help
