"""Tests for training.diagnosis.registry: pseudonyms, visits, confirmations, CSV import."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset.roles import Actor, PermissionDenied
from dataset.store import NewSmear
from training.diagnosis.registry import (
    DIAGNOSES,
    NewVisit,
    Reading,
    Registry,
    RegistryError,
    VisitMapping,
    parse_diagnosis,
    parse_visits_csv,
)

DAY = dt.date(2022, 5, 3)
MAPPING = {
    "columns": {
        "patient": "PatientID",
        "date": "VisitDate",
        "sex": "Sex",
        "birth_year": "Born",
        "hba1c": "A1c",
        "fpg": "FPG",
        "ogtt_2h": "OGTT2h",
    },
    "units": {"glucose": "mg/dL", "hba1c": "mmol/mol"},
    "date_format": "%d.%m.%Y",
}
CSV = (
    "PatientID,VisitDate,Sex,Born,A1c,FPG,OGTT2h\n"
    "P-01,03.05.2022,F,1970,48,126,\n"  # row 2: good
    "P-02,03.05.2022,M,1960,250,99,140\n"  # row 3: HbA1c cannot be real
    "P-03,2022-05-03,F,1980,40,100,\n"  # row 4: wrong date format
    "P-04,04.05.2022,M,1950,39,-5,\n"  # row 5: glucose not above zero
    "P-01,04.06.2022,F,1970,50,,200\n"  # row 6: good, second visit of P-01
    "Jane Doe,04.06.2022,F,1970,50,,\n"  # row 7: a name, not a pseudonym
)


DR_A = Actor("dr-a", "clinician")
DR_B = Actor("dr-b", "clinician")
TECH = Actor("tech", "clinician")
TESTER = Actor("tester", "clinician")


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry.open(tmp_path / "ws")


def mapping(**changes: object) -> VisitMapping:
    return VisitMapping.model_validate(MAPPING | changes)


def test_patients_are_pseudonyms_only(registry: Registry) -> None:
    for name in ("Jane Doe", "JaneDoe", "", "P 1", "x"):
        with pytest.raises(RegistryError, match="pseudonym"):
            registry.add_patient(name, actor=TESTER)
    fresh = registry.add_patient(sex="F", birth_year=1980, actor=TESTER)
    assert any(c.isdigit() for c in fresh.patient_id)
    assert (fresh.sex, fresh.birth_year) == ("female", 1980)
    registry.add_patient("P-0042", actor=TESTER)
    with pytest.raises(RegistryError, match="exists already"):
        registry.add_patient("P-0042", actor=TESTER)
    assert [p.patient_id for p in registry.find_patients("0042")] == ["P-0042"]
    with pytest.raises(RegistryError, match="No patient"):
        registry.patient("P-9999")


def test_visit_is_stored_once_and_refuses_impossible_values(registry: Registry) -> None:
    registry.add_patient("P-1", sex="male", birth_year=1960, actor=TESTER)
    visit = NewVisit(date=DAY, hba1c_percent=6.1, fpg_mmol=6.3, bmi=31.0)
    first = registry.add_visit("P-1", visit, actor=TESTER)
    again = registry.add_visit("P-1", visit, actor=TESTER)
    assert first.visit_id == again.visit_id
    assert [v.visit_id for v in registry.visits("P-1")] == [first.visit_id]
    assert registry.visit(first.visit_id).hba1c_percent == 6.1

    cases = {
        "hba1c": NewVisit(date=DAY, hba1c_percent=21.0),
        "fpg": NewVisit(date=DAY, fpg_mmol=0.0),
        "ogtt_2h": NewVisit(date=DAY, entered=(Reading("ogtt_2h", 40.0, "mmol/L"),)),
        "bmi": NewVisit(date=DAY, bmi=3.0),
        "date": NewVisit(date=dt.date.today() + dt.timedelta(days=2)),
        "pregnant": NewVisit(date=DAY, pregnant=True),  # the patient is male
        "diastolic_bp": NewVisit(date=DAY, systolic_bp=80.0, diastolic_bp=120.0),
    }
    for field, bad in cases.items():
        with pytest.raises(RegistryError, match=field):
            registry.add_visit("P-1", bad, actor=TESTER)
    assert len(registry.visits()) == 1
    with pytest.raises(RegistryError, match="No patient"):
        registry.add_visit("P-2", visit, actor=TESTER)


def test_confirmations_are_append_only_and_the_latest_wins(registry: Registry) -> None:
    registry.add_patient("P-1", actor=TESTER)
    visit = registry.add_visit("P-1", NewVisit(date=DAY, hba1c_percent=7.1), actor=TESTER)
    assert registry.diagnosis(visit.visit_id) is None
    registry.confirm(visit.visit_id, "T2DM", actor=DR_A)
    registry.confirm(visit.visit_id, "type 1", actor=DR_B, note="GAD came back positive")
    latest = registry.diagnosis(visit.visit_id)
    assert latest is not None
    assert (latest.diagnosis, latest.confirmed_by, latest.revision) == ("type 1", "dr-b", 2)
    history = registry.diagnosis_history(visit.visit_id)
    assert [(c.diagnosis, c.confirmed_by) for c in history] == [
        ("type 2", "dr-a"),
        ("type 1", "dr-b"),
    ]
    assert history[0].confirmed_at <= history[1].confirmed_at
    assert registry.confirmed()[visit.visit_id].diagnosis == "type 1"
    # A new Registry on the same workspace reads the same history.
    reopened = Registry.open(registry.store.root)
    assert [c.diagnosis for c in reopened.diagnosis_history(visit.visit_id)] == [
        "type 2",
        "type 1",
    ]


def test_confirm_refuses_what_cannot_be_a_confirmation(registry: Registry) -> None:
    registry.add_patient("P-1", sex="female", actor=TESTER)
    visit = registry.add_visit("P-1", NewVisit(date=DAY, fpg_mmol=7.4), actor=TESTER)
    with pytest.raises(PermissionDenied, match="may not confirm diagnoses"):
        registry.confirm(visit.visit_id, "type 2", actor=Actor("ann", "annotator"))
    with pytest.raises(RegistryError, match=", ".join(DIAGNOSES)):
        registry.confirm(visit.visit_id, "diabetes-ish", actor=DR_A)
    with pytest.raises(RegistryError, match="pregnan"):
        registry.confirm(visit.visit_id, "gestational", actor=DR_A)
    pregnant = registry.add_visit(
        "P-1",
        NewVisit(date=DAY, pregnant=True, pregnancy_week=26, ogtt_2h_mmol=9.0),
        actor=TESTER,
    )
    assert registry.confirm(pregnant.visit_id, "GDM", actor=DR_A).diagnosis == "gestational"
    with pytest.raises(RegistryError, match="No visit"):
        registry.confirm("Vnothing", "normal", actor=DR_A)
    assert len(registry.confirmed()) == 1


def test_parse_diagnosis_accepts_common_spellings() -> None:
    assert parse_diagnosis("Type 2 diabetes") == "type 2"
    assert parse_diagnosis("T1DM") == "type 1"
    assert parse_diagnosis("pre-diabetes") == "prediabetes"
    with pytest.raises(RegistryError):
        parse_diagnosis("diabetes")


def test_import_refuses_impossible_rows_and_stores_the_good_ones(
    registry: Registry, tmp_path: Path
) -> None:
    path = tmp_path / "visits.csv"
    path.write_text(CSV, encoding="utf-8")
    report = registry.import_visits(path, mapping(), actor=TESTER)
    errors = {(e.row, e.column) for e in report.errors}
    assert errors == {(3, "A1c"), (4, "VisitDate"), (5, "FPG"), (7, "PatientID")}
    assert "cannot be real" in next(e.message for e in report.errors if e.row == 3)
    assert len(report.added) == 2 and report.patients_added == ("P-01",)
    visits = registry.visits("P-01")
    assert [v.date for v in visits] == [dt.date(2022, 5, 3), dt.date(2022, 6, 4)]
    # Stored as entered, with the canonical value beside it for models.
    assert visits[0].entered == (
        Reading("hba1c", 48.0, "mmol/mol"),
        Reading("fpg", 126.0, "mg/dL"),
    )
    assert visits[0].hba1c_percent == pytest.approx(48 / 10.929 + 2.15)
    assert visits[0].fpg_mmol == pytest.approx(126 / 18.016)
    assert visits[1].reading("ogtt_2h") == Reading("ogtt_2h", 200.0, "mg/dL")
    assert visits[0].source == "import"
    assert registry.patient("P-01").sex == "female"
    assert [p.patient_id for p in registry.patients()] == ["P-01"]

    again = registry.import_visits(path, mapping(), actor=TESTER)
    assert again.added == () and len(again.duplicates) == 2
    assert len(registry.visits()) == 2


def test_preview_stores_nothing_and_marks_stored_rows(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "visits.csv"
    path.write_text(CSV, encoding="utf-8")
    before = registry.table_versions()
    preview = registry.preview_import(path, mapping())
    assert registry.table_versions() == before
    assert [r.row for r in preview.rows] == [2, 6]
    assert preview.refused_rows == [3, 4, 5, 7]
    assert {r.status for r in preview.rows} == {"new"}
    registry.import_visits(path, mapping(), actor=TESTER)
    assert {r.status for r in registry.preview_import(path, mapping()).rows} == {"duplicate"}
    # The same parse from bytes (an upload) without a registry at all.
    parsed = parse_visits_csv(CSV.encode(), mapping())
    assert parsed.source == "upload" and len(parsed.rows) == 2


def test_import_checks_patients_against_the_registry(registry: Registry) -> None:
    registry.add_patient("P-01", sex="male", birth_year=1970, actor=TESTER)
    report = registry.import_visits(CSV.encode(), mapping(), actor=TESTER)
    assert (2, "Sex") in {(e.row, e.column) for e in report.errors}
    assert registry.visits("P-01") == []


def test_diagnosis_column_needs_the_confirming_clinician(registry: Registry) -> None:
    text = "PatientID,VisitDate,FPG,Dx\nP-1,01.02.2022,140,T2DM\nP-2,01.02.2022,90,normal\n"
    columns = {"patient": "PatientID", "date": "VisitDate", "fpg": "FPG", "diagnosis": "Dx"}
    unconfirmed = mapping(columns=columns)
    report = registry.import_visits(text.encode(), unconfirmed, actor=TESTER)
    assert {e.column for e in report.errors} == {"Dx"} and not report.added
    confirmed = mapping(columns=columns, confirmed_by="dr-a")
    report = registry.import_visits(text.encode(), confirmed, actor=TESTER)
    assert report.diagnoses_added == 2
    labels = {c.patient_id: (c.diagnosis, c.confirmed_by) for c in registry.confirmed().values()}
    assert labels == {"P-1": ("type 2", "dr-a"), "P-2": ("normal", "dr-a")}
    # Importing the same file again adds no confirmation rows.
    assert registry.import_visits(text.encode(), confirmed, actor=TESTER).diagnoses_added == 0


def test_mapping_errors_name_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown field"):
        VisitMapping.model_validate({"columns": {"patient": "a", "date": "b", "glucose": "c"}})
    with pytest.raises(ValueError, match="required"):
        VisitMapping.model_validate({"columns": {"patient": "a"}})
    with pytest.raises(ValueError, match="not a glucose unit"):
        VisitMapping.model_validate(MAPPING | {"units": {"glucose": "mmol/mol"}})
    with pytest.raises(RegistryError, match="no column"):
        parse_visits_csv(b"PatientID,Date\nP-1,2022-01-01\n", mapping())
    bad = tmp_path / "map.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(RegistryError, match="not valid"):
        VisitMapping.load(bad)


def test_linking_smears_adds_a_revision_and_keeps_the_id(registry: Registry) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    registry.store.add_smear(NewSmear("smear-1", buf.getvalue(), 8, 8))
    registry.add_patient("P-1", actor=TESTER)
    visit = registry.add_visit("P-1", NewVisit(date=DAY, hba1c_percent=6.0), actor=TESTER)
    with pytest.raises(RegistryError, match="ingest"):
        registry.link_smears(visit.visit_id, ["smear-unknown"], actor=TESTER)
    linked = registry.link_smears(visit.visit_id, ["smear-1"], actor=TECH)
    assert (linked.visit_id, linked.revision, linked.smear_ids) == (visit.visit_id, 2, ("smear-1",))
    assert registry.visits("P-1") == [linked]
    assert registry.link_smears(visit.visit_id, ["smear-1"], actor=TESTER).revision == 2


def test_a_visit_keeps_each_value_as_entered(registry: Registry) -> None:
    registry.add_patient("P-1", actor=TESTER)
    visit = NewVisit(
        date=DAY,
        entered=(Reading("fpg", 126.0, "mg/dL"), Reading("hba1c", 48.0, "mmol/mol")),
    )
    stored = registry.visit(registry.add_visit("P-1", visit, actor=TESTER).visit_id)
    assert stored.entered == (Reading("hba1c", 48.0, "mmol/mol"), Reading("fpg", 126.0, "mg/dL"))
    assert str(stored.reading("hba1c")) == "48 mmol/mol"
    assert stored.fpg_mmol == pytest.approx(126 / 18.016)
    # A visit built from canonical fields was entered in those fields' units.
    plain = NewVisit(date=DAY, fpg_mmol=7.1)
    assert plain.entered == (Reading("fpg", 7.1, "mmol/L"),)


def test_rare_glucose_needs_the_unit_confirmed(registry: Registry) -> None:
    registry.add_patient("P-1", actor=TESTER)
    low = NewVisit(date=DAY, entered=(Reading("fpg", 0.8, "mmol/L"),))
    with pytest.raises(RegistryError, match=r"fpg: 0\.8 mmol/L is below 1\.0 mmol/L"):
        registry.add_visit("P-1", low, actor=TESTER)
    kept = registry.add_visit(
        "P-1", NewVisit(date=DAY, entered=low.entered, unit_confirmed=True), actor=TESTER
    )
    assert registry.visit(kept.visit_id).unit_confirmed is True


def test_rows_stored_before_units_were_kept_read_as_unknown_and_keep_their_ids(
    tmp_path: Path,
) -> None:
    """A registry written by the old schema (canonical columns only) reads with unit unknown."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from dataset._delta import TS

    root = tmp_path / "ws"
    floats = ("hba1c_percent", "fpg_mmol", "ogtt_1h_mmol", "ogtt_2h_mmol", "random_glucose_mmol")
    old = pa.schema(
        [
            ("visit_id", pa.string()),
            ("revision", pa.int32()),
            ("patient_id", pa.string()),
            ("date", pa.date32()),
            ("pregnant", pa.bool_()),
            ("pregnancy_week", pa.int32()),
            ("treated", pa.bool_()),
            ("treatment", pa.string()),
            *((name, pa.float64()) for name in floats),
            ("symptoms", pa.bool_()),
            ("bmi", pa.float64()),
            ("systolic_bp", pa.float64()),
            ("diastolic_bp", pa.float64()),
            ("insulin_uu_ml", pa.float64()),
            ("c_peptide_nmol", pa.float64()),
            ("gad_positive", pa.bool_()),
            ("smear_ids", pa.list_(pa.string())),
            ("source", pa.string()),
            ("entered_by", pa.string()),
            ("created_at", TS),
        ]
    )
    row = dict.fromkeys(old.names)
    row |= {
        "visit_id": "V0123456789ab",
        "revision": 1,
        "patient_id": "P-1",
        "date": DAY,
        "pregnant": False,
        "treated": False,
        "fpg_mmol": 126 / 18.016,  # entered as 126 mg/dL, stored converted and unrounded
        "symptoms": False,
        "smear_ids": [],
        "source": "manual",
        "entered_by": "",
        "created_at": dt.datetime(2022, 5, 3, tzinfo=dt.UTC),
    }
    write_deltalake(str(root / "tables" / "registry_visits"), pa.Table.from_pylist([row], old))
    registry = Registry.open(root)
    registry.add_patient("P-1", actor=TESTER)
    [visit] = registry.visits("P-1")
    assert visit.visit_id == "V0123456789ab"
    assert visit.entered == (Reading("fpg", 126 / 18.016, "unknown"),)
    assert "entered unit unknown" in str(visit.reading("fpg"))
    assert visit.anaemia_or_hb_disorder is False  # a column added later reads as not recorded
    # A new visit appends under the new schema; the old row still reads the same.
    registry.add_visit(
        "P-1", NewVisit(date=DAY, entered=(Reading("fpg", 5.0, "mmol/L"),)), actor=TESTER
    )
    units = {v.visit_id: v.entered[0].unit for v in registry.visits("P-1")}
    assert units["V0123456789ab"] == "unknown"
    assert sorted(units.values()) == ["mmol/L", "unknown"]


def test_a_mapping_must_give_every_measurements_unit() -> None:
    columns = {"patient": "P", "date": "D", "fpg": "FPG", "hba1c": "A1c"}
    with pytest.raises(ValueError, match="give the unit of fpg, hba1c: no unit is assumed"):
        VisitMapping.model_validate({"columns": columns})
    with pytest.raises(ValueError, match="give the unit of hba1c"):
        VisitMapping.model_validate({"columns": columns, "units": {"glucose": "mg/dL"}})
    VisitMapping.model_validate(
        {"columns": columns, "units": {"fpg": "mg/dL"}, "unit_columns": {"hba1c": "A1cUnit"}}
    )


def test_unit_columns_give_each_rows_unit(registry: Registry) -> None:
    text = (
        "P,D,FPG,GU\n"
        "P-1,2022-05-03,126,mg/dl\n"
        "P-2,2022-05-03,7.0,mmol/L\n"
        "P-3,2022-05-03,95,\n"  # no unit: refused, never assumed
        "P-4,2022-05-03,5.0,mol\n"
    )
    m = VisitMapping.model_validate(
        {"columns": {"patient": "P", "date": "D", "fpg": "FPG"}, "unit_columns": {"glucose": "GU"}}
    )
    report = registry.import_visits(text.encode(), m, actor=TESTER)
    assert {(e.row, e.column) for e in report.errors} == {(4, "GU"), (5, "GU")}
    assert "No unit is assumed" in report.errors[0].message
    stored = {v.patient_id: v.entered for v in registry.visits()}
    assert stored == {
        "P-1": (Reading("fpg", 126.0, "mg/dL"),),
        "P-2": (Reading("fpg", 7.0, "mmol/L"),),
    }
