"""Wiring of the Diagnosis page through AppTest: disclaimer, pseudonyms, visit, confirmation,
and the classifier's probabilities once a model exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dataset.registry import Registry
from tests.training._diagnosis_data import FAST, fill_registry
from training.diagnosis.service import TrainRequest, train

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(root))
    return root


def _open() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state["annotator"] = "dr-page"
    at.run()
    at.switch_page("pages/diagnosis.py").run()
    assert not at.exception, at.exception
    return at


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
    Registry.open(workspace).add_patient("P-5", sex="male", birth_year=1960)
    at = _open()
    at.number_input(key="dx_v_a1c").set_value(6.8)
    at.number_input(key="dx_v_fpg").set_value(7.4)
    at.button(key="dx_add_visit").click().run()
    assert not at.exception, at.exception
    registry = Registry.open(workspace)
    [visit] = registry.visits("P-5")
    assert visit.hba1c_percent == 6.8
    verdicts = at.dataframe[1].value  # the visits table comes first, the guidelines second
    assert list(verdicts["verdict"]) == ["diabetes", "diabetes", "diabetes"]
    assert any("No diagnosis model yet" in i.value for i in at.info)

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
    assert _says_decision_support(at)


def test_probabilities_and_type_caveat_with_a_model(workspace: Path) -> None:
    import torch

    fill_registry(workspace, 6, ("type 1", "type 2"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(workspace, TrainRequest(target="multiclass", folds=0, classifier=FAST))
    finally:
        torch.set_num_threads(threads)
    at = _open()
    assert not at.exception, at.exception
    assert any("cannot tell type 1 from type 2" in w.value for w in at.warning)
    assert any("most probable" in c.value for c in at.caption)
