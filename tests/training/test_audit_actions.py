"""Audit rows of the training, model and patient-registry actions (issue 12, item 4): each
package function records its own row, so the Train and Diagnosis pages and ``python -m
training`` record alike. The table itself is tested in tests/dataset/test_audit.py."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file

from dataset import audit
from dataset.roles import COMMAND_LINE, SYSTEM, Actor
from dataset.store import NewSmear
from model_zoo import ModelCard, Zoo
from tests.training._diagnosis_data import a1c_diagnosis_mapping
from training import cli
from training.diagnosis.registry import NewVisit, Registry, RegistryError
from training.diagnosis.service import open_patient
from training.jobs import JobRunner, JobState
from training.kinds import TRAIN_SEGMENTATION
from training.service import (
    promote_model,
    rollback_model,
    submit_scoring,
    submit_training,
)

DAY = dt.date(2022, 5, 3)
T = "tests.training._job_targets"


CLARA = Actor("clara", "clinician")
DR_A = Actor("dr-a", "clinician")
DR_B = Actor("dr-b", "clinician")
TOM = Actor("tom", "clinician")


def key(row: audit.AuditRow) -> tuple:
    return (row.actor, row.action, row.object_id, row.before, row.after)


def rows(workspace: Path, action: str) -> list[tuple]:
    return [key(r) for r in audit.read(workspace, action=action)]


@pytest.fixture
def no_worker(monkeypatch):
    """Jobs stay queued: no worker process is started."""
    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)


# ------------------------------------------------------------------------------ training
def test_train_start_and_cancel_record_the_job_and_who(tmp_path: Path, no_worker) -> None:
    job_id = submit_training(tmp_path, {"epochs": 1}, actor=Actor("adam", "admin"))
    [row] = audit.read(tmp_path, action="train_start")
    assert key(row) == ("adam", "train_start", job_id, None, None)
    assert json.loads(row.detail)["kind"] == TRAIN_SEGMENTATION
    with pytest.raises(TypeError, match="as an Actor"):  # a bare name carries no role
        submit_training(tmp_path, {"epochs": 1}, actor="adam")
    runner = JobRunner(tmp_path)
    assert runner.cancel(job_id, actor=Actor("bea", "admin")).state == JobState.CANCELLED
    assert rows(tmp_path, "train_cancel") == [
        ("bea", "train_cancel", job_id, "queued", "cancelled")
    ]
    # Ended already: nothing changes, nothing is recorded.
    runner.cancel(job_id, actor=Actor("bea", "admin"))
    assert len(rows(tmp_path, "train_cancel")) == 1
    score = submit_scoring(tmp_path, "random")
    runner.cancel(score, actor=Actor("bea", "admin"))
    assert rows(tmp_path, "job_cancel") == [("bea", "job_cancel", score, "queued", "cancelled")]


def test_cli_segment_and_cancel_record_cli(tmp_path: Path, capsys, no_worker) -> None:
    assert cli.main(["segment", "--epochs", "1", "--workspace", str(tmp_path), "--json"]) == 0
    job_id = json.loads(capsys.readouterr().out)["job_id"]
    assert cli.main(["cancel", job_id, "--workspace", str(tmp_path)]) == 0
    assert [r[:3] for r in rows(tmp_path, "train_start")] == [("cli", "train_start", job_id)]
    assert [r[:3] for r in rows(tmp_path, "train_cancel")] == [("cli", "train_cancel", job_id)]


def test_an_automatic_update_starts_as_system(tmp_path: Path, monkeypatch) -> None:
    from training.service import finetuning

    asked: list[Actor] = []
    monkeypatch.setenv("SMEARLAB_AUTO_UPDATE_EVERY", "2")
    monkeypatch.setattr(finetuning, "new_labelled_tiles", lambda workspace: 3)
    monkeypatch.setattr(
        finetuning, "submit_update", lambda workspace, *, actor: asked.append(actor) or "job-1"
    )
    assert finetuning.auto_update(tmp_path).job_id == "job-1"
    assert asked == [SYSTEM] and SYSTEM.name == audit.SYSTEM


def test_an_automatic_update_is_audited_as_a_training_start_by_system(
    tmp_path: Path, monkeypatch, no_worker
) -> None:
    from training.service import finetuning

    monkeypatch.setenv("SMEARLAB_AUTO_UPDATE_EVERY", "2")
    monkeypatch.setattr(finetuning, "new_labelled_tiles", lambda workspace: 3)
    # What the current model's update would ask for; the queueing and its row are real.
    monkeypatch.setattr(finetuning, "update_settings", lambda workspace, parent: {"epochs": 1})
    update = finetuning.auto_update(tmp_path)
    assert update.job_id is not None, update
    assert rows(tmp_path, "train_start") == [("system", "train_start", update.job_id, None, None)]


# ------------------------------------------------------------------------------ models
def _add(zoo: Zoo, kind: str = "diagnosis") -> ModelCard:
    staging = zoo.staging_dir(kind)
    (staging / "config.json").write_text(json.dumps({"kind": "fake"}))
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(staging / "model.safetensors"))
    return zoo.add(kind, staging, ModelCard(kind=kind, classes=["a", "b"], metrics={}))


def test_promote_and_rollback_record_previous_and_new_current(tmp_path: Path, capsys) -> None:
    zoo = Zoo(tmp_path)
    a, b = _add(zoo), _add(zoo)  # a became current as the first of its kind
    promote_model(tmp_path, b.model_id, actor=Actor("adam", "admin"))
    rollback_model(tmp_path, "diagnosis", actor=Actor("adam", "admin"))
    assert rows(tmp_path, "promote") == [("adam", "promote", b.model_id, a.model_id, b.model_id)]
    assert rows(tmp_path, "rollback") == [("adam", "rollback", a.model_id, b.model_id, a.model_id)]
    # The command line records "cli"; a refused promotion records nothing.
    assert cli.main(["promote", b.model_id, "--workspace", str(tmp_path)]) == 0
    assert cli.main(["promote", "no-such-model", "--workspace", str(tmp_path)]) == 1
    assert cli.main(["rollback", "--kind", "diagnosis", "--workspace", str(tmp_path)]) == 0
    capsys.readouterr()
    assert rows(tmp_path, "promote")[1:] == [("cli", "promote", b.model_id, a.model_id, b.model_id)]
    assert rows(tmp_path, "rollback")[1:] == [
        ("cli", "rollback", a.model_id, b.model_id, a.model_id)
    ]


def test_what_a_new_current_model_triggers_is_audited_as_system(
    tmp_path: Path, no_worker, monkeypatch
) -> None:
    # These stand-in checkpoints hold no network: the weights check is tested in test_promote.
    monkeypatch.setattr("training.model.promotion_check", lambda card: None)
    zoo = Zoo(tmp_path)
    _add(zoo, "segmentation")
    b = _add(zoo, "segmentation")
    change = promote_model(tmp_path, b.model_id, actor=Actor("adam", "admin"))
    assert change.rescoring is not None
    [row] = audit.read(tmp_path, action="score_start")
    assert key(row) == ("system", "score_start", change.rescoring, None, None)
    assert json.loads(row.detail) == {"strategy": "entropy", "automatic": True}
    # A scoring job already waiting: nothing more is queued, and nothing recorded.
    rollback_model(tmp_path, "segmentation", actor=Actor("adam", "admin"))
    assert len(audit.read(tmp_path, action="score_start")) == 1


def test_a_model_that_becomes_current_as_its_job_ends_is_promoted_by_system(
    tmp_path: Path,
) -> None:
    runner = JobRunner(tmp_path / "ws")
    first = runner.wait(runner.submit("t", f"{T}:train_and_register").job_id, timeout=60)
    assert first.state == JobState.DONE, first.log_tail
    (first_id,) = first.result["model_ids"]
    second = runner.wait(runner.submit("t", f"{T}:train_and_register").job_id, timeout=60)
    (second_id,) = second.result["model_ids"]  # not current: the first one stays
    [row] = audit.read(runner.workspace, action="promote")
    assert key(row) == ("system", "promote", first_id, None, first_id)
    assert json.loads(row.detail) == {
        "automatic": True,
        "job_id": first.job_id,
        "kind": "segmentation",
    }
    assert second_id != first_id


def test_a_foreground_diagnosis_training_records_start_and_automatic_promotion(
    tmp_path: Path,
) -> None:
    from tests.training._diagnosis_data import FAST, fill_registry
    from training.diagnosis.service import TrainRequest, train

    workspace = tmp_path / "ws"
    fill_registry(workspace, 6)
    card = train(workspace, TrainRequest(folds=0, classifier=FAST), actor=Actor("adam", "admin"))
    assert [(r.actor, r.action) for r in audit.read(workspace)][-2:] == [
        ("adam", "train_start"),
        ("system", "promote"),
    ]
    assert rows(workspace, "promote") == [("system", "promote", card.model_id, None, card.model_id)]


# ------------------------------------------------------------------------------ registry
@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry.open(tmp_path / "ws")


def test_patient_visit_and_diagnosis_changes_are_recorded(registry: Registry) -> None:
    ws = registry.store.root
    with pytest.raises(TypeError, match="as an Actor"):  # a bare name carries no role
        registry.add_patient("P-1", actor="clara")  # type: ignore[arg-type]
    registry.add_patient("P-1", sex="female", actor=CLARA)
    assert rows(ws, "patient_add") == [("clara", "patient_add", "P-1", None, None)]

    visit = registry.add_visit("P-1", NewVisit(date=DAY, hba1c_percent=6.8), actor=TOM)
    registry.add_visit("P-1", NewVisit(date=DAY, hba1c_percent=6.8), actor=TOM)  # again
    assert rows(ws, "visit_add") == [("tom", "visit_add", visit.visit_id, None, "1")]

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    registry.store.add_smear(NewSmear("smear-1", buf.getvalue(), 8, 8))
    registry.link_smears(visit.visit_id, ["smear-1"], actor=TOM)
    registry.link_smears(visit.visit_id, ["smear-1"], actor=TOM)  # no change, no row
    assert rows(ws, "visit_change") == [("tom", "visit_change", visit.visit_id, "1", "2")]

    from training.diagnosis.service import confirm_visit

    confirm_visit(registry, visit.visit_id, "type 2", actor=DR_A)
    confirm_visit(registry, visit.visit_id, "normal", actor=DR_B)
    assert rows(ws, "diagnosis_confirm") == [
        ("dr-a", "diagnosis_confirm", visit.visit_id, None, "type 2"),
        ("dr-b", "diagnosis_confirm", visit.visit_id, "type 2", "normal"),
    ]


def test_a_csv_import_records_patients_visits_and_diagnoses(
    registry: Registry, tmp_path: Path
) -> None:
    csv = tmp_path / "v.csv"
    csv.write_text(
        "PatientID,VisitDate,A1c,Diagnosis\n"
        "P-01,2022-05-03,6.8,type 2\n"
        "P-02,2022-05-03,5.0,normal\n"
    )
    mapping = a1c_diagnosis_mapping()
    with pytest.raises(TypeError, match="as an Actor"):
        registry.import_visits(csv, mapping, actor="tom")  # type: ignore[arg-type]
    report = registry.import_visits(csv, mapping, actor=TOM)
    ws = registry.store.root
    assert rows(ws, "patient_add") == [
        ("tom", "patient_add", "P-01", None, None),
        ("tom", "patient_add", "P-02", None, None),
    ]
    assert sorted(r[2] for r in rows(ws, "visit_add")) == sorted(report.added)
    confirmations = audit.read(ws, action="diagnosis_confirm")
    assert {(r.actor, r.after) for r in confirmations} == {("tom", "type 2"), ("tom", "normal")}
    assert {json.loads(r.detail)["confirmed_by"] for r in confirmations} == {"dr-a"}


def test_opening_a_patient_record_is_recorded(registry: Registry, capsys) -> None:
    registry.add_patient("P-1", actor=CLARA)
    registry.add_visit("P-1", NewVisit(date=DAY, hba1c_percent=6.8), actor=TOM)
    summary = open_patient(registry, "P-1", actor=Actor("dr-a", "admin"))
    assert summary["patient"] == "P-1" and len(summary["visits"]) == 1
    with pytest.raises(RegistryError, match="No patient"):
        open_patient(registry, "P-9", actor=Actor("dr-a", "admin"))
    ws = registry.store.root
    assert cli.main(["diagnosis", "show", "P-1", "--workspace", str(ws), "--json"]) == 0
    capsys.readouterr()
    assert rows(ws, "patient_open") == [
        ("dr-a", "patient_open", "P-1", None, None),
        ("cli", "patient_open", "P-1", None, None),
    ]


def test_the_cli_actor_names_agree() -> None:
    from training.diagnosis import cli as diagnosis_cli
    from training.jobs import cli as jobs_cli

    assert COMMAND_LINE.name == audit.CLI
    assert diagnosis_cli.COMMAND_LINE is jobs_cli.COMMAND_LINE is COMMAND_LINE
