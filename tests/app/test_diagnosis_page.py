"""Wiring of the Diagnosis page through AppTest: disclaimer, pseudonyms, visit, confirmation,
and the classifier's probabilities once a model exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dataset.roles import Actor
from tests._accounts import open_page
from tests.training._diagnosis_data import FAST, fill_registry
from training.diagnosis.registry import Registry
from training.diagnosis.service import TrainRequest, train

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60


TESTER = Actor("tester", "clinician")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(root))
    return root


def _open() -> AppTest:
    return open_page("pages/diagnosis.py", "dr-page", "clinician", timeout=TIMEOUT)


def _says_decision_support(at: AppTest) -> bool:
    return any("not a diagnosis" in w.value for w in at.warning)


def test_a_name_is_refused_and_a_pseudonym_is_kept(workspace: Path) -> None:
    at = _open()
    assert _says_decision_support(at)
    at.text_input(key="dx_new_id").input("Jane Doe")
    at.button(key="dx_add_patient").click().run()
    assert any("pseudonym" in e.value for e in at.error)
    assert Registry.open(workspace).patients() == []

    at.text_input(key="dx_new_id").input("P-77")
    at.button(key="dx_add_patient").click().run()
    assert not at.exception, at.exception
    assert [p.patient_id for p in Registry.open(workspace).patients()] == ["P-77"]
    assert at.session_state["dx_patient"] == "P-77"


def test_visit_shows_guidelines_and_the_diagnosis_can_be_confirmed(workspace: Path) -> None:
    Registry.open(workspace).add_patient("P-5", sex="male", birth_year=1960, actor=TESTER)
    at = _open()
    assert at.selectbox(key="dx_v_gu").value is None  # no unit is assumed
    at.number_input(key="dx_v_a1c").set_value(48.0)
    at.number_input(key="dx_v_fpg").set_value(126.0)
    at.button(key="dx_add_visit").click().run()
    assert any("has no unit" in e.value for e in at.error)
    registry = Registry.open(workspace)
    assert registry.visits("P-5") == []
    at.selectbox(key="dx_v_au").set_value("mmol/mol")
    at.selectbox(key="dx_v_gu").set_value("mg/dL")
    at.button(key="dx_add_visit").click().run()
    assert not at.exception, at.exception
    [visit] = registry.visits("P-5")
    assert [(r.value, r.unit) for r in visit.entered] == [(48.0, "mmol/mol"), (126.0, "mg/dL")]
    visits_table = at.dataframe[0].value
    assert "HbA1c 48 mmol/mol" in visits_table["values as entered"][0]
    verdicts = at.dataframe[1].value  # the visits table comes first, the guidelines second
    assert list(verdicts["verdict"]) == ["diabetes", "diabetes", "diabetes"]
    assert list(verdicts["repeat test"]) == ["needed", "not needed", "needed"]
    assert "48 mmol/mol" in verdicts["fired"][0] and "6.54" not in verdicts["fired"][0]
    notes = [c.value for c in at.caption]
    assert not any(n.startswith(("WHO:", "NICE:")) and "(ADA" in n for n in notes)
    assert any("No diagnosis model yet" in i.value and "tab at the top" in i.value for i in at.info)
    # The confirmation starts blank: one click cannot record a diagnosis.
    assert at.selectbox(key="dx_c_diag").value is None
    at.button(key="dx_confirm").click().run()
    assert any("Choose the diagnosis" in e.value for e in at.error)
    assert registry.diagnosis(visit.visit_id) is None

    at.selectbox(key="dx_c_diag").set_value("type 2")
    at.button(key="dx_confirm").click().run()
    assert not at.exception, at.exception
    confirmed = registry.diagnosis(visit.visit_id)
    assert confirmed is not None
    assert (confirmed.diagnosis, confirmed.confirmed_by) == ("type 2", "dr-page")
    at.selectbox(key="dx_c_diag").set_value("other")
    at.button(key="dx_confirm").click().run()
    assert [c.diagnosis for c in registry.diagnosis_history(visit.visit_id)] == [
        "type 2",
        "other",
    ]
    said = registry.diagnosis(visit.visit_id).guideline_verdicts()
    assert said["ADA"] == {"verdict": "diabetes", "repeat_test": "not needed"}
    assert any("Guidelines then: WHO diabetes (repeat test needed)" in c.value for c in at.caption)
    assert _says_decision_support(at)


def test_probabilities_and_type_caveat_with_a_model(workspace: Path) -> None:
    import torch

    fill_registry(workspace, 6, ("type 1", "type 2"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(
            workspace,
            TrainRequest(target="multiclass", folds=0, classifier=FAST),
            actor=Actor("tester", "admin"),
        )
    finally:
        torch.set_num_threads(threads)
    at = _open()
    assert not at.exception, at.exception
    # Once beside the prediction and once on the model panel, not again in the card's notes.
    assert sum("cannot tell type 1 from type 2" in w.value for w in at.warning) == 2
    assert not any("cannot tell type 1 from type 2" in c.value for c in at.caption)
    assert any("most probable" in c.value for c in at.caption)


def _disclaimers(at: AppTest) -> int:
    texts = [w.value for w in at.warning] + [c.value for c in at.caption]
    return sum("not a diagnosis" in t for t in texts)


def test_disclaimer_once_and_train_disabled_without_confirmations(workspace: Path) -> None:
    at = _open()
    assert _disclaimers(at) == 1
    train = at.button(key="dx_train_go")
    assert train.disabled
    assert any("Confirm diagnoses first" in c.value and "Patient" in c.value for c in at.caption)


def test_lab_units_come_from_the_workspace_settings(workspace: Path) -> None:
    from dataset.settings import set_workspace_setting

    Registry.open(workspace).add_patient("P-6", actor=TESTER)
    set_workspace_setting(workspace, "glucose_unit", "mg/dL")
    at = _open()
    assert at.selectbox(key="dx_v_gu").value == "mg/dL"
    assert at.selectbox(key="dx_v_au").value is None
    assert any("glucose_unit = mg/dL" in c.value for c in at.caption)
    # A glucose above 600 mg/dL is kept only with the unit confirmed.
    at.number_input(key="dx_v_rnd").set_value(650.0)
    at.button(key="dx_add_visit").click().run()
    assert any("confirm the unit" in e.value for e in at.error)
    at.checkbox(key="dx_v_confirm").check()
    at.button(key="dx_add_visit").click().run()
    assert not at.exception, at.exception
    [visit] = Registry.open(workspace).visits("P-6")
    assert visit.unit_confirmed and visit.entered[0].value == 650.0


def test_import_maps_columns_in_a_form_with_a_preview(workspace: Path) -> None:
    at = _open()
    text = "PatientID,VisitDate,FPG,Unit\nP-1,2022-05-03,126,mg/dL\nP-2,2022-05-03,6.9,mmol/L\n"
    at.file_uploader(key="dx_imp_file").set_value([("v.csv", text.encode(), "text/csv")]).run()
    assert not at.exception, at.exception
    at.selectbox(key="dx_imp_col_patient").set_value("PatientID")
    at.selectbox(key="dx_imp_col_date").set_value("VisitDate")
    at.selectbox(key="dx_imp_col_fpg").set_value("FPG").run()
    assert any("give the unit of fpg" in i.value for i in at.info)
    at.selectbox(key="dx_imp_unit_glucose").set_value("a column of the file").run()
    at.selectbox(key="dx_imp_ucol_glucose").set_value("Unit").run()
    assert not at.exception, at.exception
    assert any("2 new" in m.value for m in at.markdown)
    at.button(key="dx_imp_go").click().run()
    assert not at.exception, at.exception
    stored = {v.patient_id: v.entered[0] for v in Registry.open(workspace).visits()}
    assert (stored["P-1"].value, stored["P-1"].unit) == (126.0, "mg/dL")
    assert (stored["P-2"].value, stored["P-2"].unit) == (6.9, "mmol/L")


def test_settings_page_shows_sources_and_saves_workspace_values(workspace: Path) -> None:
    at = open_page("pages/settings.py", timeout=TIMEOUT)
    table = at.dataframe[0].value
    assert "glucose_unit" in list(table["setting"])
    row = table[table["setting"] == "workspace"].iloc[0]
    assert row["from"] == "SMEARLAB_ environment variable"
    at.selectbox(key="set_key").set_value("hba1c_unit")
    at.text_input(key="set_value").input("%")
    at.button(key="set_go").click().run()
    assert any("not a valid hba1c_unit" in e.value for e in at.error)
    at.text_input(key="set_value").input("mmol/mol")
    at.button(key="set_go").click().run()
    assert not at.exception, at.exception
    from dataset.settings import get_settings

    assert get_settings().hba1c_unit == "mmol/mol"
    table = at.dataframe[0].value
    assert table[table["setting"] == "hba1c_unit"].iloc[0]["from"] == "this workspace"


def test_the_page_audits_what_it_does_as_the_signed_in_name(workspace: Path) -> None:
    """Opening a patient is recorded once per patient shown, not on every rerun; adding a
    patient and a visit and confirming are recorded by the package functions as the page's
    user."""
    from dataset import audit

    Registry.open(workspace).add_patient("P-5", sex="male", birth_year=1960, actor=TESTER)
    at = _open()
    at.selectbox(key="dx_v_au").set_value("mmol/mol")
    at.number_input(key="dx_v_a1c").set_value(48.0)
    at.button(key="dx_add_visit").click().run()
    assert not at.exception, at.exception
    [visit] = Registry.open(workspace).visits("P-5")
    at.selectbox(key="dx_c_diag").set_value("type 2")
    at.button(key="dx_confirm").click().run()
    at.text_input(key="dx_new_id").input("P-6")
    at.button(key="dx_add_patient").click().run()
    assert not at.exception, at.exception
    signing_in = {"user_add", "sign_in", "sign_in_failed", "sign_out"}
    got = [(r.actor, r.action, r.object_id) for r in audit.read(workspace)]
    got = [row for row in got if row[1] not in signing_in]
    assert got == [
        ("tester", "patient_add", "P-5"),
        ("dr-page", "patient_open", "P-5"),
        ("dr-page", "visit_add", visit.visit_id),
        ("dr-page", "diagnosis_confirm", visit.visit_id),
        ("dr-page", "patient_add", "P-6"),
        ("dr-page", "patient_open", "P-6"),
    ]
