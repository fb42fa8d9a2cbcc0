"""The package functions check the role themselves (issue 12, item 2: "every action checks the
role on the server side"): a page or a command that forgot its own check, or a role changed
between drawing a button and pressing it, cannot release, export, promote, roll back, start or
cancel training, or open a patient record. A refusal changes nothing and records nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from dataset import accounts, audit
from dataset.ingest import ingest_files
from dataset.release import create_release, export_release, list_releases
from dataset.roles import COMMAND_LINE, ROLES, Actor, PermissionDenied, may
from dataset.store import Store
from model_zoo import ModelCard, Zoo
from tests.training._diagnosis_data import a1c_diagnosis_mapping
from training.diagnosis.registry import NewVisit, Registry
from training.diagnosis.service import TrainRequest, confirm_visit, open_patient
from training.diagnosis.service import submit_training as submit_diagnosis
from training.jobs import JobRunner, JobState
from training.service import (
    promote_model,
    rollback_model,
    submit_scoring,
    submit_training,
    submit_update,
)

ACTORS = {role: Actor(f"{role}-1", role) for role in ROLES}


CLARA = Actor("clara", "clinician")


def refused(action: str) -> list[Actor]:
    return [a for a in ACTORS.values() if not a.may(action)]


@pytest.fixture
def no_worker(monkeypatch):
    """Jobs stay queued: no worker process is started."""
    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)


@pytest.fixture
def labelled(store: Store, make_smear, encode_image) -> Store:
    [res] = ingest_files(store, [("s.png", encode_image(make_smear(96, 80).rgb))], actor="ana")
    for tile in store.tiles(res.smear_id):
        store.save_mask(tile.tile_id, np.ones((tile.h, tile.w), np.uint8), annotator="ana")
    return store


def _add(zoo: Zoo, kind: str = "diagnosis") -> ModelCard:
    staging = zoo.staging_dir(kind)
    (staging / "config.json").write_text(json.dumps({"kind": "fake"}))
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(staging / "model.safetensors"))
    return zoo.add(kind, staging, ModelCard(kind=kind, classes=["a", "b"], metrics={}))


def test_every_role_without_a_right_is_refused_somewhere() -> None:
    # The checks below mean something only if each action refuses at least one role.
    for action in ("release", "export", "promote", "train", "patients"):
        assert refused(action), action
    assert [a.role for a in refused("release")] == ["annotator", "clinician"]


# ------------------------------------------------------------------------------ releases
def test_release_and_export_refuse_a_role_without_the_right(labelled: Store, tmp_path) -> None:
    for who in refused("release"):
        with pytest.raises(PermissionDenied, match=f"{who.role}.*may not make releases"):
            create_release(labelled, "1.0.0", "first", actor=who)
    assert list_releases(labelled) == []
    assert audit.read(labelled, action="release") == []

    reviewer = ACTORS["reviewer"]
    create_release(labelled, "1.0.0", "first", actor=reviewer)
    assert [r.version for r in list_releases(labelled)] == ["1.0.0"]
    out = tmp_path / "out"
    for who in refused("export"):
        with pytest.raises(PermissionDenied, match="may not export releases"):
            export_release(labelled, "1.0.0", "zip", out, actor=who)
    assert not out.exists()
    assert audit.read(labelled, action="export") == []
    assert export_release(labelled, "1.0.0", "zip", out, actor=ACTORS["admin"]).is_file()


def test_a_bare_name_is_refused_before_anything_is_written(labelled: Store) -> None:
    with pytest.raises(TypeError, match="as an Actor"):
        create_release(labelled, "1.0.0", "first", actor="rita")  # type: ignore[arg-type]
    assert list_releases(labelled) == []


# ------------------------------------------------------------------------------ models
def test_promote_and_rollback_refuse_every_role_but_admin(tmp_path: Path) -> None:
    zoo = Zoo(tmp_path)
    a, b = _add(zoo), _add(zoo)  # a is current as the first of its kind
    assert [x.role for x in refused("promote")] == ["annotator", "reviewer", "clinician"]
    for who in refused("promote"):
        with pytest.raises(PermissionDenied, match="may not promote or roll back"):
            promote_model(tmp_path, b.model_id, actor=who)
        with pytest.raises(PermissionDenied, match="may not promote or roll back"):
            rollback_model(tmp_path, "diagnosis", actor=who)
    assert zoo.current("diagnosis").model_id == a.model_id
    assert audit.read(tmp_path) == []
    promote_model(tmp_path, b.model_id, actor=ACTORS["admin"])
    assert zoo.current("diagnosis").model_id == b.model_id


# ------------------------------------------------------------------------------ jobs
def test_training_starts_only_for_a_role_that_may_train(tmp_path: Path, no_worker) -> None:
    zoo = Zoo(tmp_path)
    _add(zoo, "segmentation")
    for who in refused("train"):
        with pytest.raises(PermissionDenied, match="may not train or stop training"):
            submit_training(tmp_path, {"epochs": 1}, actor=who)
        with pytest.raises(PermissionDenied, match="may not train or stop training"):
            submit_update(tmp_path, actor=who)
        with pytest.raises(PermissionDenied, match="may not train or stop training"):
            submit_diagnosis(tmp_path, TrainRequest(folds=0), actor=who)
    assert JobRunner(tmp_path).list() == []
    assert audit.read(tmp_path) == []


def test_cancelling_needs_the_right_that_starting_needs(tmp_path: Path, no_worker) -> None:
    runner = JobRunner(tmp_path)
    training = submit_training(tmp_path, {"epochs": 1}, actor=ACTORS["admin"])
    for who in refused("train"):
        with pytest.raises(PermissionDenied, match="may not train or stop training"):
            runner.cancel(training, actor=who)
    assert runner.get(training).state == JobState.QUEUED
    assert audit.read(tmp_path, action="train_cancel") == []
    # Scoring serves suggestions: whoever may use them may stop a scoring run.
    scoring = submit_scoring(tmp_path, "random")
    assert may("annotator", "suggest")
    assert runner.cancel(scoring, actor=ACTORS["annotator"]).state == JobState.CANCELLED
    with pytest.raises(PermissionDenied, match="may not use suggestions"):
        runner.cancel(scoring, actor=ACTORS["clinician"])


# ------------------------------------------------------------------------------ patients
def test_opening_a_patient_record_needs_the_patients_right(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "ws")
    registry.add_patient("P-1", actor=CLARA)
    for who in refused("patients"):
        with pytest.raises(PermissionDenied, match="may not see patient data"):
            open_patient(registry, "P-1", actor=who)
    assert audit.read(registry.store, action="patient_open") == []
    assert open_patient(registry, "P-1", actor=ACTORS["clinician"])["patient"] == "P-1"


def test_registry_writes_need_the_role_and_store_nothing_when_refused(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "ws")
    registry.add_patient("P-1", sex="female", actor=CLARA)
    visit = registry.add_visit("P-1", NewVisit(date=dt.date(2026, 3, 1), fpg_mmol=7.4), actor=CLARA)
    before = (registry.table_versions(), len(audit.read(registry.store)))
    csv = b"PatientID,VisitDate,A1c,Diagnosis\nP-9,2026-03-02,6.8,type 2\n"
    mapping = a1c_diagnosis_mapping()
    writes = {
        "patients": [
            lambda who: registry.add_patient("P-2", actor=who),
            lambda who: registry.add_visit(
                "P-1", NewVisit(date=dt.date(2026, 4, 1), fpg_mmol=5.0), actor=who
            ),
            lambda who: registry.link_smears(visit.visit_id, [], actor=who),
            lambda who: registry.import_visits(csv, mapping, actor=who),
        ],
        "confirm_diagnosis": [
            lambda who: registry.confirm(visit.visit_id, "type 2", actor=who),
            lambda who: confirm_visit(registry, visit.visit_id, "type 2", actor=who),
        ],
    }
    for right, calls in writes.items():
        for who in refused(right):
            for call in calls:
                with pytest.raises(PermissionDenied, match=f"{who.name} \\({who.role}\\) may not"):
                    call(who)
        for call in calls:
            with pytest.raises(TypeError, match="as an Actor"):
                call("clara")  # a bare name carries no role to check
    assert (registry.table_versions(), len(audit.read(registry.store))) == before

    # The roles that hold the right write, under their own names.
    clinician = ACTORS["clinician"]
    assert registry.import_visits(csv, mapping, actor=clinician).diagnoses_added == 1
    confirmed = confirm_visit(registry, visit.visit_id, "type 2", actor=ACTORS["admin"])
    assert confirmed.confirmed_by == "admin-1"
    rows = {(r.actor, r.action) for r in audit.read(registry.store)}
    assert {("clinician-1", "visit_add"), ("admin-1", "diagnosis_confirm")} <= rows
    # A CSV's diagnoses need the confirming right as well as the patients right.
    assert all(a.may("confirm_diagnosis") for a in ACTORS.values() if a.may("patients"))


# ------------------------------------------------------------------------------ command line
def test_the_command_line_acts_as_the_reserved_cli_account(workspace: Path) -> None:
    assert COMMAND_LINE.name == audit.CLI
    assert COMMAND_LINE.may("promote")  # the shell can change the workspace's files anyway
    with pytest.raises(accounts.AccountError, match="reserved for commands"):
        accounts.add_account(workspace, "cli", "admin", "a long password 1")
    with pytest.raises(accounts.AccountError, match="reserved for commands"):
        accounts.actor_for(workspace, "cli")


def test_every_refusal_says_in_words_what_may_not_be_done() -> None:
    from dataset.roles import ACTIONS

    for action in ACTIONS:
        for who in refused(action):
            with pytest.raises(PermissionDenied) as err:
                who.require(action)
            text = str(err.value)
            assert "_" not in text.split("may not ", 1)[1].split(":")[0], text
            assert "Ask an admin" in text
