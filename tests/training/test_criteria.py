"""Guideline criteria: every boundary, both sides, every guideline, both unit systems.

The boundary table below is written from the guidelines themselves (and the issue's tables),
not generated from ``guidelines.csv``, so a wrong row in the CSV fails here.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from training.diagnosis import criteria
from training.diagnosis.criteria import (
    ANAEMIA_NOTE,
    DISCORDANT_NOTE,
    NICE_GDM_NOTE,
    PREGNANCY_HBA1C_NOTE,
    REPEAT_NOTE,
    TREATED_NOTE,
    GuidelineTableError,
    MeasurementError,
    Measurements,
    evaluate_rules,
    load_guidelines,
)
from training.diagnosis.units import convert, quantity_of, round_half_up, symbol

GUIDELINES = ("WHO", "ADA", "NICE")
NORMAL, INSUFFICIENT, PRE, DIA = "normal", "insufficient data", "prediabetes", "diabetes"
GDM, DIP = "gestational diabetes", "diabetes in pregnancy"
# A complete, normal 75 g OGTT in pregnancy under every guideline, in each glucose unit; a
# pregnancy case varies one of these values.
NORMAL_OGTT = {
    "mmol/L": {"fpg": 4.5, "ogtt_1h": 7.0, "ogtt_2h": 7.0},
    "mg/dL": {"fpg": 81.0, "ogtt_1h": 126.0, "ogtt_2h": 126.0},
}


@dataclass(frozen=True)
class Boundary:
    guideline: str
    pregnant: bool
    field: str
    unit: str
    below: float
    below_verdict: str
    at: float
    at_verdict: str
    symptoms: bool = False

    def measurements(self, value: float) -> Measurements:
        values: dict[str, float] = {}
        if self.pregnant:
            glucose_unit = "mg/dL" if self.unit == "mg/dL" else "mmol/L"
            values.update(NORMAL_OGTT[glucose_unit])
        values[self.field] = value
        units = {"hba1c_unit": self.unit} if self.field == "hba1c" else {"glucose_unit": self.unit}
        return Measurements(**values, **units, pregnant=self.pregnant, symptoms=self.symptoms)


def _np(g, field, unit, below, below_v, at, at_v, symptoms=False):
    return Boundary(g, False, field, unit, below, below_v, at, at_v, symptoms)


def _p(g, field, unit, below, below_v, at, at_v, symptoms=False):
    return Boundary(g, True, field, unit, below, below_v, at, at_v, symptoms)


BOUNDARIES = [
    # WHO outside pregnancy: HbA1c only diagnoses diabetes (WHO 2011).
    _np("WHO", "hba1c", "percent", 6.49, INSUFFICIENT, 6.5, DIA),
    _np("WHO", "hba1c", "mmol/mol", 47.9, INSUFFICIENT, 48, DIA),
    _np("WHO", "fpg", "mmol/L", 6.09, NORMAL, 6.1, PRE),
    _np("WHO", "fpg", "mmol/L", 6.99, PRE, 7.0, DIA),
    _np("WHO", "fpg", "mg/dL", 109.9, NORMAL, 110, PRE),
    _np("WHO", "fpg", "mg/dL", 125.9, PRE, 126, DIA),
    _np("WHO", "ogtt_2h", "mmol/L", 7.79, NORMAL, 7.8, PRE),
    _np("WHO", "ogtt_2h", "mmol/L", 11.09, PRE, 11.1, DIA),
    _np("WHO", "ogtt_2h", "mg/dL", 139.9, NORMAL, 140, PRE),
    _np("WHO", "ogtt_2h", "mg/dL", 199.9, PRE, 200, DIA),
    _np("WHO", "random_glucose", "mmol/L", 11.09, INSUFFICIENT, 11.1, DIA, symptoms=True),
    _np("WHO", "random_glucose", "mg/dL", 199.9, INSUFFICIENT, 200, DIA, symptoms=True),
    # ADA Standards of Care 2025, section 2.
    _np("ADA", "hba1c", "percent", 5.69, NORMAL, 5.7, PRE),
    _np("ADA", "hba1c", "percent", 6.49, PRE, 6.5, DIA),
    _np("ADA", "hba1c", "mmol/mol", 38.9, NORMAL, 39, PRE),
    _np("ADA", "hba1c", "mmol/mol", 47.9, PRE, 48, DIA),
    _np("ADA", "fpg", "mmol/L", 5.59, NORMAL, 5.6, PRE),
    _np("ADA", "fpg", "mmol/L", 6.99, PRE, 7.0, DIA),
    _np("ADA", "fpg", "mg/dL", 99.9, NORMAL, 100, PRE),
    _np("ADA", "fpg", "mg/dL", 125.9, PRE, 126, DIA),
    _np("ADA", "ogtt_2h", "mmol/L", 7.79, NORMAL, 7.8, PRE),
    _np("ADA", "ogtt_2h", "mmol/L", 11.09, PRE, 11.1, DIA),
    _np("ADA", "ogtt_2h", "mg/dL", 139.9, NORMAL, 140, PRE),
    _np("ADA", "ogtt_2h", "mg/dL", 199.9, PRE, 200, DIA),
    _np("ADA", "random_glucose", "mmol/L", 11.09, INSUFFICIENT, 11.1, DIA, symptoms=True),
    _np("ADA", "random_glucose", "mg/dL", 199.9, INSUFFICIENT, 200, DIA, symptoms=True),
    # NICE PH38 publishes mmol/L only: mg/dL is converted and rounded to 0.1 first, so the
    # mg/dL boundaries are where the rounded value reaches the threshold (x / 18.016 ≥ t − 0.05).
    _np("NICE", "hba1c", "percent", 5.99, NORMAL, 6.0, PRE),
    _np("NICE", "hba1c", "percent", 6.49, PRE, 6.5, DIA),
    _np("NICE", "hba1c", "mmol/mol", 41.9, NORMAL, 42, PRE),
    _np("NICE", "hba1c", "mmol/mol", 47.9, PRE, 48, DIA),
    _np("NICE", "fpg", "mmol/L", 5.49, NORMAL, 5.5, PRE),
    _np("NICE", "fpg", "mmol/L", 6.99, PRE, 7.0, DIA),
    _np("NICE", "fpg", "mg/dL", 98.1, NORMAL, 98.2, PRE),
    _np("NICE", "fpg", "mg/dL", 125.2, PRE, 125.3, DIA),
    _np("NICE", "ogtt_2h", "mmol/L", 7.79, NORMAL, 7.8, PRE),
    _np("NICE", "ogtt_2h", "mmol/L", 11.09, PRE, 11.1, DIA),
    _np("NICE", "ogtt_2h", "mg/dL", 139.6, NORMAL, 139.7, PRE),
    _np("NICE", "ogtt_2h", "mg/dL", 199.0, PRE, 199.1, DIA),
    _np("NICE", "random_glucose", "mmol/L", 11.09, INSUFFICIENT, 11.1, DIA, symptoms=True),
    _np("NICE", "random_glucose", "mg/dL", 199.0, INSUFFICIENT, 199.1, DIA, symptoms=True),
    # Pregnancy, WHO 2013 and ADA's one-step test (IADPSG 2010): the same thresholds.
    *(
        case
        for g in ("WHO", "ADA")
        for case in (
            _p(g, "fpg", "mmol/L", 5.09, NORMAL, 5.1, GDM),
            _p(g, "fpg", "mmol/L", 6.99, GDM, 7.0, DIP),
            _p(g, "fpg", "mg/dL", 91.9, NORMAL, 92, GDM),
            _p(g, "fpg", "mg/dL", 125.9, GDM, 126, DIP),
            _p(g, "ogtt_1h", "mmol/L", 9.99, NORMAL, 10.0, GDM),
            _p(g, "ogtt_1h", "mg/dL", 179.9, NORMAL, 180, GDM),
            _p(g, "ogtt_2h", "mmol/L", 8.49, NORMAL, 8.5, GDM),
            _p(g, "ogtt_2h", "mmol/L", 11.09, GDM, 11.1, DIP),
            _p(g, "ogtt_2h", "mg/dL", 152.9, NORMAL, 153, GDM),
            _p(g, "ogtt_2h", "mg/dL", 199.9, GDM, 200, DIP),
        )
    ),
    # WHO 2013 also counts a random glucose ≥ 11.1 with symptoms as diabetes in pregnancy.
    _p("WHO", "random_glucose", "mmol/L", 11.09, NORMAL, 11.1, DIP, symptoms=True),
    _p("WHO", "random_glucose", "mg/dL", 199.9, NORMAL, 200, DIP, symptoms=True),
    # NICE NG3 publishes mmol/L only.
    _p("NICE", "fpg", "mmol/L", 5.59, NORMAL, 5.6, GDM),
    _p("NICE", "fpg", "mg/dL", 99.9, NORMAL, 100, GDM),
    _p("NICE", "ogtt_2h", "mmol/L", 7.79, NORMAL, 7.8, GDM),
    _p("NICE", "ogtt_2h", "mg/dL", 139.6, NORMAL, 139.7, GDM),
]


def _id(b: Boundary) -> str:
    where = "pregnant" if b.pregnant else "not-pregnant"
    return f"{b.guideline}-{where}-{b.field}-{b.unit}-{b.at:g}"


@pytest.mark.parametrize("case", BOUNDARIES, ids=_id)
def test_boundary_both_sides(case: Boundary) -> None:
    below = evaluate_rules(case.measurements(case.below))[case.guideline]
    at = evaluate_rules(case.measurements(case.at))[case.guideline]
    assert below.verdict == case.below_verdict, below.notes
    assert at.verdict == case.at_verdict, at.notes
    assert case.field in [f.measurement for f in at.fired if f.category == case.at_verdict]


def test_every_threshold_row_has_a_boundary_case_in_both_unit_systems() -> None:
    table = load_guidelines()
    for row in table.rows:
        pregnant = row.context == "pregnant"
        units = ("percent", "mmol/mol") if row.measurement == "hba1c" else ("mmol/L", "mg/dL")
        for unit in units:
            cases = [
                b
                for b in BOUNDARIES
                if (b.guideline, b.pregnant, b.field, b.unit, b.at_verdict)
                == (row.guideline, pregnant, row.measurement, unit, row.category)
            ]
            assert cases, f"no boundary test for {row} in {unit}"
            if unit == row.unit:
                # The case sits exactly on the published lower end.
                assert Decimal(repr(float(cases[0].at))) == row.low, row


def test_126_mg_dl_is_diabetes_under_every_guideline() -> None:
    results = evaluate_rules(Measurements(fpg=126, glucose_unit="mg/dL"))
    assert {g: r.verdict for g, r in results.items()} == dict.fromkeys(GUIDELINES, DIA)


def test_converted_value_is_rounded_to_published_precision_before_comparing() -> None:
    results = evaluate_rules(Measurements(fpg=125.9, glucose_unit="mg/dL"))
    # ADA and WHO publish mg/dL: compared as entered, 125.9 < 126.
    assert results["ADA"].verdict == PRE
    assert results["WHO"].verdict == PRE
    # NICE publishes mmol/L only: 125.9 / 18.016 = 6.988 → 7.0.
    nice = results["NICE"]
    assert nice.verdict == DIA
    assert (nice.fired[0].value, nice.fired[0].unit) == (7.0, "mmol/L")
    assert any("compared as 7.0 mmol/L" in n and "18.016" in n for n in nice.notes)
    assert not any("compared as" in n for n in results["ADA"].notes)


def test_values_in_the_published_unit_are_not_rounded() -> None:
    # Half-open: 6.95 mmol/L is below 7.0, so still in 6.1–6.9.
    assert evaluate_rules(Measurements(fpg=6.95))["WHO"].verdict == PRE


def test_who_does_not_call_hba1c_below_6_5_normal() -> None:
    results = evaluate_rules(Measurements(hba1c=5.0))
    assert results["WHO"].verdict == INSUFFICIENT
    assert any("only to diagnose diabetes" in n for n in results["WHO"].notes)
    assert results["ADA"].verdict == NORMAL
    assert results["NICE"].verdict == NORMAL
    with_fpg = evaluate_rules(Measurements(hba1c=5.0, fpg=5.0))["WHO"]
    assert with_fpg.verdict == NORMAL


def test_nothing_given_is_insufficient_data_everywhere() -> None:
    for pregnant in (False, True):
        results = evaluate_rules(Measurements(pregnant=pregnant))
        assert [r.verdict for r in results.values()] == [INSUFFICIENT] * 3


def test_most_severe_category_wins_and_is_listed_first() -> None:
    result = evaluate_rules(Measurements(hba1c=6.0, fpg=7.3))["ADA"]
    assert result.verdict == DIA
    assert [(f.measurement, f.category) for f in result.fired] == [("fpg", DIA), ("hba1c", PRE)]
    assert DISCORDANT_NOTE in result.notes
    pregnant = evaluate_rules(Measurements(fpg=5.3, ogtt_1h=8.0, ogtt_2h=11.5, pregnant=True))
    assert pregnant["WHO"].verdict == DIP
    assert [f.category for f in pregnant["WHO"].fired] == [DIP, GDM]


def test_single_abnormal_result_without_symptoms_needs_a_repeat() -> None:
    single = evaluate_rules(Measurements(fpg=7.5))
    assert all(REPEAT_NOTE in r.notes for r in single.values())
    two = evaluate_rules(Measurements(fpg=7.5, hba1c=6.8))
    assert all(REPEAT_NOTE not in r.notes for r in two.values())
    symptomatic = evaluate_rules(Measurements(fpg=7.5, symptoms=True))
    assert all(REPEAT_NOTE not in r.notes for r in symptomatic.values())
    prediabetes = evaluate_rules(Measurements(fpg=6.5))
    assert all(REPEAT_NOTE not in r.notes for r in prediabetes.values())


def test_random_glucose_without_symptoms_does_not_diagnose() -> None:
    results = evaluate_rules(Measurements(random_glucose=12.0))
    for result in results.values():
        assert result.verdict == INSUFFICIENT
        assert result.fired == ()
        assert any("without classic symptoms" in n for n in result.notes)
    assert evaluate_rules(Measurements(random_glucose=12.0, symptoms=True))["ADA"].verdict == DIA
    # A random value never makes a result normal, with or without symptoms.
    low = evaluate_rules(Measurements(random_glucose=5.0, symptoms=True))["ADA"]
    assert low.verdict == INSUFFICIENT


def test_treated_keeps_the_verdict_and_says_criteria_do_not_apply() -> None:
    for g, result in evaluate_rules(Measurements(fpg=7.5, treated=True)).items():
        assert result.verdict == DIA, g
        assert result.notes[0] == TREATED_NOTE
    assert TREATED_NOTE not in evaluate_rules(Measurements(fpg=7.5))["ADA"].notes


def test_anaemia_leaves_hba1c_out() -> None:
    alone = evaluate_rules(Measurements(hba1c=7.0, anaemia_or_hb_disorder=True))
    for result in alone.values():
        assert result.verdict == INSUFFICIENT
        assert ANAEMIA_NOTE in result.notes
    with_fpg = evaluate_rules(Measurements(hba1c=7.0, fpg=5.0, anaemia_or_hb_disorder=True))
    assert with_fpg["ADA"].verdict == NORMAL
    assert [f.measurement for f in with_fpg["ADA"].fired] == []


def test_pregnancy_hba1c_is_not_used_and_says_so() -> None:
    results = evaluate_rules(Measurements(hba1c=7.0, **NORMAL_OGTT["mmol/L"], pregnant=True))
    for result in results.values():
        assert result.verdict == NORMAL
        assert PREGNANCY_HBA1C_NOTE in result.notes


def test_pregnancy_has_no_prediabetes_and_needs_the_whole_ogtt_to_be_normal() -> None:
    partial = evaluate_rules(Measurements(fpg=4.5, pregnant=True))
    for g, result in partial.items():
        assert result.verdict == INSUFFICIENT, g
        assert any("cannot be excluded" in n for n in result.notes)
    # NICE uses fasting and 2-hour only; WHO and ADA also need the 1-hour value.
    no_1h = evaluate_rules(Measurements(fpg=4.5, ogtt_2h=7.0, pregnant=True))
    assert {g: r.verdict for g, r in no_1h.items()} == {
        "WHO": INSUFFICIENT,
        "ADA": INSUFFICIENT,
        "NICE": NORMAL,
    }
    verdicts = {
        r.verdict for r in evaluate_rules(Measurements(fpg=6.5, ogtt_2h=10, pregnant=True)).values()
    }
    assert PRE not in verdicts


def test_nice_ng3_has_no_diabetes_in_pregnancy_category() -> None:
    results = evaluate_rules(Measurements(fpg=7.5, pregnant=True))
    assert results["NICE"].verdict == GDM
    assert NICE_GDM_NOTE in results["NICE"].notes
    assert results["WHO"].verdict == DIP
    assert results["ADA"].verdict == DIP


def test_measurement_a_guideline_does_not_use_is_left_out_with_a_note() -> None:
    result = evaluate_rules(Measurements(ogtt_1h=12.0, fpg=5.0))["ADA"]
    assert result.verdict == NORMAL
    assert any(n.startswith("1-hour OGTT glucose left out") for n in result.notes)


@pytest.mark.parametrize(
    ("kwargs", "field", "hint"),
    [
        ({"fpg": -1.0}, "fpg", "above zero"),
        ({"fpg": 0.0}, "fpg", "above zero"),
        ({"hba1c": -5.0}, "hba1c", "above zero"),
        ({"ogtt_2h": math.nan}, "ogtt_2h", "finite"),
        ({"random_glucose": "high"}, "random_glucose", "not a number"),
        ({"hba1c": 20.1}, "hba1c", "at most 20 %"),
        ({"hba1c": 48}, "hba1c", "set hba1c_unit to 'mmol/mol'"),
        ({"hba1c": 196, "hba1c_unit": "mmol/mol"}, "hba1c", "at most 20 %"),
        ({"fpg": 100.1}, "fpg", "at most 100 mmol/L"),
        ({"fpg": 126}, "fpg", "set glucose_unit to 'mg/dL'"),
        ({"ogtt_1h": 1802, "glucose_unit": "mg/dL"}, "ogtt_1h", "at most 100 mmol/L"),
        ({"glucose_unit": "mg/dl"}, "glucose_unit", "mg/dL"),
        ({"hba1c_unit": "%"}, "hba1c_unit", "percent"),
        ({"pregnant": "yes"}, "pregnant", "true or false"),
    ],
)
def test_impossible_values_are_refused_naming_the_field(kwargs, field, hint) -> None:
    with pytest.raises(MeasurementError) as info:
        Measurements(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert hint in str(info.value)
    assert isinstance(info.value, ValueError)


def test_largest_possible_values_are_accepted() -> None:
    Measurements(hba1c=20.0, fpg=100.0)
    Measurements(hba1c=195, hba1c_unit="mmol/mol", fpg=1801, glucose_unit="mg/dL")


@pytest.mark.parametrize(
    ("value", "unit", "critical"),
    [(33.3, "mmol/L", False), (33.4, "mmol/L", True), (599, "mg/dL", False), (600, "mg/dL", True)],
)
def test_critical_glucose_is_accepted_with_a_warning(value, unit, critical) -> None:
    results = evaluate_rules(Measurements(fpg=value, glucose_unit=unit))
    for result in results.values():
        assert result.verdict == DIA
        assert any(n.startswith("Critical value") for n in result.notes) is critical


def test_to_json_has_exactly_the_agreed_shape() -> None:
    out = evaluate_rules(Measurements(hba1c=6.0, fpg=6.2)).to_json()
    assert list(out) == ["WHO", "ADA", "NICE"]
    for result in out.values():
        assert set(result) == {"verdict", "fired", "notes"}
        assert result["fired"]
        for fired in result["fired"]:
            assert set(fired) == {"measurement", "value", "unit", "range", "source"}
    assert out["WHO"] == {
        "verdict": PRE,
        "fired": [
            {
                "measurement": "fpg",
                "value": 6.2,
                "unit": "mmol/L",
                "range": "6.1–6.9 mmol/L",
                "source": out["WHO"]["fired"][0]["source"],
            }
        ],
        "notes": [
            "WHO uses HbA1c only to diagnose diabetes (≥ 6.5 %); a lower value does not exclude it."
        ],
    }
    assert "WHO/IDF 2006" in out["WHO"]["fired"][0]["source"]
    assert json.loads(json.dumps(out)) == out


def test_shipped_table_cites_a_source_and_year_on_every_row() -> None:
    table = load_guidelines()
    assert table.guidelines == GUIDELINES
    for row in table.rows:
        assert 2006 <= row.year <= 2025, row
        assert str(row.year) in row.source, row
    sources = " ".join(r.source for r in table.rows)
    for citation in ("WHO/IDF 2006", "WHO 2011", "2025, section 2", "PH38", "WHO 2013"):
        assert citation in sources
    assert "IADPSG 2010" in sources
    assert "NG3" in sources


def test_a_local_variant_table_changes_the_verdict(tmp_path: Path) -> None:
    text = criteria.DEFAULT_TABLE.read_text(encoding="utf-8")
    local = text.replace(
        "NICE,not pregnant,fpg,prediabetes,5.5,6.9", "NICE,not pregnant,fpg,prediabetes,6.1,6.9"
    )
    assert local != text
    path = tmp_path / "local.csv"
    path.write_text(local, encoding="utf-8")
    m = Measurements(fpg=5.8)
    assert evaluate_rules(m)["NICE"].verdict == PRE
    assert evaluate_rules(m, load_guidelines(path))["NICE"].verdict == NORMAL


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace(",decimals,", ",places,"), "lacks column(s) decimals"),
        (lambda t: t.replace("6.1,6.9,mmol/L", "6.1,6.9,mmol/l", 1), "unit 'mmol/l'"),
        (lambda t: t.replace("6.1,6.9,mmol/L", "6.1,5.9,mmol/L", 1), "below low"),
        (lambda t: t.replace("6.1,6.9,mmol/L", "six,6.9,mmol/L", 1), "'low' must be a number"),
        (lambda t: t.replace("prediabetes,5.5,6.9", "gestational diabetes,5.5,6.9"), "not valid"),
        (lambda t: t + t.splitlines()[-1] + "\n", "keep one"),
    ],
)
def test_broken_tables_are_refused_with_the_place(tmp_path: Path, edit, message) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(edit(criteria.DEFAULT_TABLE.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(GuidelineTableError) as info:
        load_guidelines(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_broken_row_error_names_its_line(tmp_path: Path) -> None:
    lines = criteria.DEFAULT_TABLE.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("ADA,not pregnant,fpg"))
    lines[index] = lines[index].replace(",no,", ",maybe,")
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(GuidelineTableError, match=f"line {index + 1}: needs_symptoms"):
        load_guidelines(path)


def test_describe_gives_readable_lines() -> None:
    lines = list(criteria.describe(evaluate_rules(Measurements(fpg=7.5))))
    assert lines[0] == "WHO: diabetes"
    assert "  fasting plasma glucose 7.5 mmol/L in ≥ 7.0 mmol/L" in lines


def test_units() -> None:
    assert convert(7.0, "mmol/L", "mg/dL") == pytest.approx(126.112)
    assert convert(126, "mg/dL", "mmol/L") == pytest.approx(6.99378, abs=1e-5)
    assert convert(6.5, "percent", "mmol/mol") == pytest.approx(47.54, abs=0.01)
    assert convert(convert(6.5, "percent", "mmol/mol"), "mmol/mol", "percent") == pytest.approx(6.5)
    assert round_half_up(6.95, 1) == Decimal("7.0")
    assert round_half_up(6.949999, 1) == Decimal("6.9")
    assert round_half_up(47.5, 0) == Decimal("48")
    assert symbol("percent") == "%"
    with pytest.raises(ValueError, match="mmol/L, mg/dL, percent, mmol/mol"):
        quantity_of("mg")
    with pytest.raises(ValueError, match="different things"):
        convert(5.0, "percent", "mmol/L")


def test_importing_criteria_pulls_in_no_ui_or_plotting() -> None:
    code = (
        "import sys, training.diagnosis.criteria, training.diagnosis.units;"
        "print('streamlit' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.split() == ["False", "False"]
