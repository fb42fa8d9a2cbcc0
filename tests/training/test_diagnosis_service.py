"""Tests for training.diagnosis.service: registry labels, training into the zoo, predictions."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dataset.roles import Actor
from model_zoo import Zoo
from tests.training._diagnosis_data import (
    FAST,
    fill_registry,
    pima_csv,
    visits_csv,
    visits_mapping,
)
from training.diagnosis.checkpoint import load_classifier
from training.diagnosis.registry import NewVisit, Registry
from training.diagnosis.service import (
    BINARY_CLASSES,
    DataSource,
    DiagnosisError,
    TrainRequest,
    evaluate,
    patient_forecast,
    predict_file,
    predict_visit,
    registry_training_set,
    train,
    train_job,
    visit_rules,
)

ROOT = Path(__file__).resolve().parents[2]
TYPE_WARNING = "cannot tell type 1 from type 2"


DR_A = Actor("dr-a", "clinician")
DR_B = Actor("dr-b", "clinician")
TESTER = Actor("tester", "clinician")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny full-batch fits run fastest on one thread, above all on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def request(**changes: object) -> TrainRequest:
    return TrainRequest.model_validate({"folds": 2, "classifier": FAST} | changes)


def test_confirmations_are_the_labels_and_the_latest_wins(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "ws")
    registry.add_patient("P-1", sex="female", birth_year=1970, actor=TESTER)
    registry.add_patient("P-2", sex="male", birth_year=1950, actor=TESTER)
    registry.add_patient("P-3", actor=TESTER)
    # P-1's values are in the diabetic range, but the clinician judged otherwise: the label
    # is the judgement, not the thresholds.
    early = registry.add_visit(
        "P-1", NewVisit(date=dt.date(2020, 1, 1), hba1c_percent=5.4), actor=TESTER
    )
    late = registry.add_visit(
        "P-1", NewVisit(date=dt.date(2021, 1, 1), hba1c_percent=6.8), actor=TESTER
    )
    other = registry.add_visit(
        "P-2", NewVisit(date=dt.date(2021, 1, 1), fpg_mmol=7.9), actor=TESTER
    )
    registry.add_visit(
        "P-3", NewVisit(date=dt.date(2021, 1, 1), fpg_mmol=9.9), actor=TESTER
    )  # unconfirmed
    registry.confirm(early.visit_id, "normal", actor=DR_A)
    registry.confirm(late.visit_id, "type 2", actor=DR_A)
    registry.confirm(late.visit_id, "prediabetes", actor=DR_B)  # the correction wins
    registry.confirm(other.visit_id, "type 2", actor=DR_A)

    rows = registry_training_set(registry, "binary")
    assert rows.row_ids == (late.visit_id, other.visit_id)  # latest visit per patient
    assert rows.data.classes == BINARY_CLASSES
    assert rows.data.y.tolist() == [0, 1]
    assert rows.card_data["table_versions"] == registry.table_versions()
    names = rows.data.feature_names
    assert "age (years)" in names and "HbA1c (%)" in names
    assert "C-peptide (nmol/L)" not in names  # nobody measured it
    assert rows.data.X[0, names.index("age (years)")] == 2021 - 1970

    every = registry_training_set(registry, "multiclass", all_visits=True)
    assert set(every.row_ids) == {early.visit_id, late.visit_id, other.visit_id}
    assert every.data.classes == ("normal", "prediabetes", "type 2")

    registry.confirm(other.visit_id, "normal", actor=DR_B)
    with pytest.raises(DiagnosisError, match="both kinds"):
        registry_training_set(registry, "binary")


def test_auto_target_says_why_it_falls_back_to_binary(tmp_path: Path) -> None:
    registry = fill_registry(tmp_path / "ws", 4, ("normal", "prediabetes", "type 2"))
    rows = registry_training_set(registry, "auto")
    assert rows.data.classes == BINARY_CLASSES
    assert "at least 10" in rows.notes


def test_trained_model_lands_in_the_zoo_and_is_current_when_none_is(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    registry = fill_registry(workspace, 8)
    zoo = Zoo(workspace)
    assert zoo.current("diagnosis") is None
    card = train(workspace, request(), actor=Actor("tester", "admin"))
    assert card.kind == "diagnosis" and card.classes == list(BINARY_CLASSES)
    assert zoo.current("diagnosis") == card
    assert zoo.current("segmentation") is None
    folder = zoo.path(card.model_id)
    assert {"config.json", "model.safetensors", "card.json"} <= {p.name for p in folder.iterdir()}
    assert card.settings["target"].startswith("registry confirmed diagnosis")
    assert "HbA1c (%)" in card.settings["features"]
    assert card.data["table_versions"] == registry.table_versions()
    assert card.data["n_rows"] == 16
    assert card.metrics["cross_validation"]["folds"] == 2
    assert 0.0 <= card.metrics["roc_auc"] <= 1.0
    model = load_classifier(folder)
    assert model.classes == BINARY_CLASSES

    second = train(workspace, request(model="logreg"), actor=Actor("tester", "admin"))
    assert zoo.current("diagnosis") == card
    assert second.settings["classifier"]["model"] == "logreg"


def test_type_warning_without_c_peptide_gad_or_onset_age(tmp_path: Path) -> None:
    types = ("type 1", "type 2")
    plain = tmp_path / "plain"
    fill_registry(plain, 6, types)
    card = train(plain, request(target="multiclass"), actor=Actor("tester", "admin"))
    assert card.classes == ["type 1", "type 2"]
    assert TYPE_WARNING in card.notes

    registry = Registry.open(plain)
    visit = registry.visits()[0]
    prediction = predict_visit(plain, registry, visit)
    assert any(TYPE_WARNING in w for w in prediction.warnings)
    assert set(prediction.probabilities) == {"type 1", "type 2"}
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
    assert prediction.predicted == prediction.explanation.target

    rich = tmp_path / "rich"
    fill_registry(rich, 6, types, type_features=True)
    card = train(rich, request(target="multiclass"), actor=Actor("tester", "admin"))
    assert "C-peptide (nmol/L)" in card.settings["features"]
    assert TYPE_WARNING not in card.notes
    registry = Registry.open(rich)
    warnings = predict_visit(rich, registry, registry.visits()[0]).warnings
    assert not any(TYPE_WARNING in w for w in warnings)


def test_pima_training_never_touches_the_registry(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    csv = pima_csv(tmp_path / "pima.csv")
    card = train(workspace, request(csv=str(csv), format="pima"), actor=Actor("tester", "admin"))
    assert card.classes == ["no diabetes", "diabetes"]
    assert "Pima" in card.notes and card.data["format"] == "pima"
    assert Registry.open(workspace).table_versions() == {
        "registry_patients": 0,
        "registry_visits": 0,
        "registry_diagnoses": 0,
    }


def test_predict_file_shape_and_metrics(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    csv = pima_csv(tmp_path / "pima.csv")
    train(workspace, request(csv=str(csv), format="pima", folds=0), actor=Actor("tester", "admin"))
    report = predict_file(workspace, csv, "pima").to_json()
    assert set(report) >= {"rows", "metrics"}
    assert len(report["rows"]) == 60
    for row in report["rows"]:
        assert set(row["probabilities"]) == {"no diabetes", "diabetes"}
        assert sum(row["probabilities"].values()) == pytest.approx(1.0)
        assert row["predicted"] == max(row["probabilities"], key=row["probabilities"].get)
    assert 0.5 < report["metrics"]["roc_auc"] <= 1.0
    assert 0.0 <= report["metrics"]["accuracy"] <= 1.0

    # The same features under their names, no outcome column: predictions, no metrics.
    table = tmp_path / "table.csv"
    names = "Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,Age"
    table.write_text(f"{names}\n1,150,70,30,,33.1,45\n2,95,,,,24.0,30\n", encoding="utf-8")
    report = predict_file(workspace, table, "table").to_json()
    assert report["metrics"] is None and [r["row"] for r in report["rows"]] == [2, 3]
    assert any("DiabetesPedigreeFunction" in w for w in report["warnings"])
    with pytest.raises(DiagnosisError, match="None of the model's features"):
        bad = tmp_path / "bad.csv"
        bad.write_text("a,b\n1,2\n", encoding="utf-8")
        predict_file(workspace, bad, "table")


def test_predict_mapped_file_scores_diagnoses_against_a_binary_model(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    fill_registry(workspace, 8)
    train(workspace, request(folds=0), actor=Actor("tester", "admin"))
    csv = visits_csv(tmp_path / "new.csv", 5, seed=7)
    report = predict_file(workspace, csv, "mapped", mapping=visits_mapping()).to_json()
    assert len(report["rows"]) == 10 and report["errors"] == []
    assert report["metrics"]["n_rows"] == 10
    assert report["metrics"]["accuracy"] >= 0.8


def test_no_model_yet_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DiagnosisError, match="No diagnosis model yet"):
        predict_file(tmp_path / "ws", pima_csv(tmp_path / "p.csv"), "pima")


def test_evaluate_cross_validates_both_models_on_a_csv(tmp_path: Path) -> None:
    csv = pima_csv(tmp_path / "pima.csv")
    report = evaluate(
        tmp_path / "ws",
        DataSource(csv=str(csv), format="pima"),
        folds=2,
        repeats=1,
        classifier=FAST,
    )
    assert set(report.models) == {"mlp", "logreg"}
    assert report.n_rows == 60 and report.folds == 2


def test_forecast_and_rules_of_a_registry_patient(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "ws")
    registry.add_patient("P-7", sex="female", birth_year=1980, actor=TESTER)
    for year, a1c in ((2019, 5.4), (2020, 5.6), (2021, 5.8), (2022, 6.0)):
        registry.add_visit(
            "P-7", NewVisit(date=dt.date(year, 6, 1), hba1c_percent=a1c), actor=TESTER
        )
    registry.add_visit(
        "P-7",
        NewVisit(date=dt.date(2021, 12, 1), hba1c_percent=5.0, pregnant=True),
        actor=TESTER,
    )
    result = patient_forecast(registry, "P-7", today=dt.date(2022, 6, 1))
    assert len(result.hba1c.points) == 4 and len(result.hba1c.left_out) == 1
    crossing = result.hba1c.crossing("diabetes")
    assert crossing.status == "projected"
    assert dt.date(2024, 1, 1) < crossing.date < dt.date(2026, 1, 1)

    visit = registry.visits("P-7")[-1]
    assert visit_rules(visit)["ADA"].verdict == "prediabetes"


def test_train_job_hands_the_model_to_the_context(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    fill_registry(workspace, 6)

    class Context:
        def __init__(self) -> None:
            self.workspace = workspace
            self.models: list = []
            self.reports: list[dict] = []

        def progress(self, **fields: object) -> None:
            self.reports.append(fields)

        def log(self, message: str) -> None:
            pass

        def add_model(self, kind, staging, card) -> None:
            self.models.append((kind, staging, card))

    ctx = Context()
    result = train_job(ctx, request().model_dump(mode="json"))
    assert [kind for kind, _, _ in ctx.models] == ["diagnosis"]
    assert Zoo(workspace).current("diagnosis") is None  # the job runner adds it, not the target
    assert result["classes"] == list(BINARY_CLASSES) and "roc_auc" in result["metrics"]
    assert {r["stage"] for r in ctx.reports} == {"cross-validation", "final fit"}


@pytest.mark.slow
def test_training_job_runs_in_the_job_runner(tmp_path: Path) -> None:
    from training.diagnosis.service import submit_training
    from training.jobs import JobRunner, JobState

    workspace = tmp_path / "ws"
    fill_registry(workspace, 6)
    status = submit_training(workspace, request(), actor=Actor("tester", "admin"))
    final = JobRunner(workspace).wait(status.job_id, timeout=300)
    assert final.state == JobState.DONE, final.error
    current = Zoo(workspace).current("diagnosis")
    assert current is not None and final.result["model_ids"] == [current.model_id]


def test_service_import_is_light() -> None:
    code = (
        "import sys, training.diagnosis.service, training.diagnosis.cli; "
        "print(sorted(m for m in ('torch', 'streamlit', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_registry_features_follow_the_visit() -> None:
    from training.diagnosis.service import REGISTRY_FEATURES, visit_features

    visit = NewVisit(date=dt.date(2020, 1, 1), fpg_mmol=6.0, gad_positive=True)
    feats = visit_features(visit, sex="male", birth_year=1990)
    assert list(feats) == list(REGISTRY_FEATURES)
    assert feats["age (years)"] == 30 and feats["female"] == 0.0
    assert feats["GAD antibodies"] == 1.0 and np.isnan(feats["HbA1c (%)"])


def test_a_stored_value_todays_checks_refuse_is_shown_not_fatal(tmp_path: Path) -> None:
    """An old row (unit unknown) with HbA1c 2.5 % passed the checks of its day."""
    from training.diagnosis.registry import Reading
    from training.diagnosis.service import patient_summary

    registry = Registry.open(tmp_path / "ws")
    registry.add_patient("P-1", actor=TESTER)
    old = NewVisit(date=dt.date(2020, 1, 1), entered=(Reading("hba1c", 2.5, "unknown"),))
    registry._store_visits([("P-1", old)], "", "manual")  # as an old registry holds it
    [visit] = patient_summary(registry, "P-1")["visits"]
    assert visit["measurements"][0]["unit"] == "unknown"
    for result in visit["guidelines"].values():
        assert result["verdict"] == "insufficient data"
        assert "Cannot be judged" in result["notes"][0] and "below 3 %" in result["notes"][0]
