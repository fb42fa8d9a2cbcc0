"""The registry's records and the rules they obey: pseudonyms, readings with their units,
visits, confirmed diagnoses, the table schemas, and the checks every write passes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

import pyarrow as pa

from dataset._delta import TS
from dataset.store import StoreError
from training.diagnosis.measurements import (
    CANONICAL_UNITS,
    GLUCOSE_MEASUREMENTS,
    LABELS,
    MEASUREMENTS,
    UNKNOWN_UNIT,
    MeasurementError,
    check_possible,
)
from training.diagnosis.units import GLUCOSE_UNITS, HBA1C_UNITS, convert

SEXES: tuple[str, ...] = ("female", "male", "other")
DIAGNOSES: tuple[str, ...] = ("normal", "prediabetes", "type 1", "type 2", "gestational", "other")
DIAGNOSIS_LABELS: dict[str, str] = {
    "normal": "no diabetes, no prediabetes",
    "prediabetes": "prediabetes (impaired fasting glucose, impaired glucose tolerance or HbA1c)",
    "type 1": "type 1 diabetes",
    "type 2": "type 2 diabetes",
    "gestational": "gestational diabetes (first found in pregnancy)",
    "other": "another specific type of diabetes (e.g. monogenic, pancreatic, drug-induced)",
}
DIABETES_DIAGNOSES: frozenset[str] = frozenset({"type 1", "type 2", "gestational", "other"})
PSEUDONYM_RULE = (
    "Patients are stored under a pseudonym only, never a name: use a study code of 2–64 "
    "letters, digits, '.', '_' or '-' with at least one digit, e.g. P-0042."
)
_PSEUDONYM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")

TABLES: dict[str, pa.Schema] = {
    "registry_patients": pa.schema(
        [
            ("patient_id", pa.string()),
            ("sex", pa.string()),
            ("birth_year", pa.int32()),
            ("created_at", TS),
        ]
    ),
    "registry_visits": pa.schema(
        [
            ("visit_id", pa.string()),
            ("revision", pa.int32()),
            ("patient_id", pa.string()),
            ("date", pa.date32()),
            ("pregnant", pa.bool_()),
            ("pregnancy_week", pa.int32()),
            ("treated", pa.bool_()),
            ("treatment", pa.string()),
            ("hba1c_percent", pa.float64()),
            ("fpg_mmol", pa.float64()),
            ("ogtt_1h_mmol", pa.float64()),
            ("ogtt_2h_mmol", pa.float64()),
            ("random_glucose_mmol", pa.float64()),
            ("gct_1h_mmol", pa.float64()),
            ("ogtt100_0h_mmol", pa.float64()),
            ("ogtt100_1h_mmol", pa.float64()),
            ("ogtt100_2h_mmol", pa.float64()),
            ("ogtt100_3h_mmol", pa.float64()),
            # Each measurement as entered: the value and its unit (null unit: stored before
            # units were kept, read as "unknown").
            *(
                (f"{name}_{part}", pa.float64() if part == "entered" else pa.string())
                for name in MEASUREMENTS
                for part in ("entered", "unit")
            ),
            ("unit_confirmed", pa.bool_()),
            ("symptoms", pa.bool_()),
            # Added after the first releases: older rows lack it and read as False.
            ("anaemia_or_hb_disorder", pa.bool_()),
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
    ),
    "registry_diagnoses": pa.schema(
        [
            ("visit_id", pa.string()),
            ("revision", pa.int32()),
            ("patient_id", pa.string()),
            ("diagnosis", pa.string()),
            ("confirmed_by", pa.string()),
            ("confirmed_at", TS),
            ("note", pa.string()),
            # What each guideline said when the clinician confirmed: JSON of
            # {guideline: {"verdict", "repeat_test"}}; null when not recorded (imports, old rows).
            ("guidelines", pa.string()),
        ]
    ),
}

# Plausibility limits of the fields check_possible does not cover: (low, high, unit shown).
_LIMITS: dict[str, tuple[float, float, str]] = {
    "bmi": (8.0, 150.0, "kg/m²"),
    "systolic_bp": (40.0, 300.0, "mmHg"),
    "diastolic_bp": (20.0, 200.0, "mmHg"),
    "insulin_uu_ml": (0.0, 5000.0, "µU/mL"),
    "c_peptide_nmol": (0.0, 30.0, "nmol/L"),
}
# The canonical column of each measurement (glucose in mmol/L, HbA1c in %).
CANONICAL_FIELDS: dict[str, str] = {
    "hba1c": "hba1c_percent",
    **{name: f"{name}_mmol" for name in GLUCOSE_MEASUREMENTS},
}


class RegistryError(StoreError):
    """A registry request refused, with what to do instead."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Patient:
    """A pseudonymous patient: the pseudonym, sex and birth year (each may be unknown)."""

    patient_id: str
    sex: str | None
    birth_year: int | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Reading:
    """One measurement as entered: its value and unit (``unknown`` when the unit was not kept)."""

    measurement: str
    value: float
    unit: str

    def canonical(self) -> float:
        """The value in the canonical unit (%, mmol/L)."""
        if self.unit == UNKNOWN_UNIT:
            return float(self.value)
        return convert(self.value, self.unit, CANONICAL_UNITS[self.measurement])

    def to_json(self) -> dict[str, Any]:
        return {"measurement": self.measurement, "value": self.value, "unit": self.unit}

    def __str__(self) -> str:
        from training.diagnosis.units import symbol

        if self.unit == UNKNOWN_UNIT:
            unit = symbol(CANONICAL_UNITS[self.measurement])
            return f"{self.value:g} {unit} (entered unit unknown)"
        return f"{self.value:g} {symbol(self.unit)}"


@dataclass(frozen=True, kw_only=True)
class NewVisit:
    """What was found at one visit; every measurement is optional.

    ``entered`` holds each glucose and HbA1c measurement as entered (:class:`Reading`); the
    canonical fields (``hba1c_percent``, ``fpg_mmol``, ...) are derived from it. A visit built
    from canonical fields only was entered in those units (the field names them).
    ``unit_confirmed``: the person entering confirmed the unit of a glucose below 1.0 or above
    33.3 mmol/L. ``treated`` means glucose-lowering treatment (``treatment`` says which);
    ``symptoms`` means classic symptoms of hyperglycaemia; ``anaemia_or_hb_disorder`` means
    anaemia or a haemoglobin disorder, which leaves HbA1c out of every verdict (ADA 2025,
    WHO 2011); ``gad_positive`` is the GAD antibody result (None: not tested).
    """

    date: dt.date
    pregnant: bool = False
    pregnancy_week: int | None = None
    treated: bool = False
    treatment: str | None = None
    hba1c_percent: float | None = None
    fpg_mmol: float | None = None
    ogtt_1h_mmol: float | None = None
    ogtt_2h_mmol: float | None = None
    random_glucose_mmol: float | None = None
    gct_1h_mmol: float | None = None
    ogtt100_0h_mmol: float | None = None
    ogtt100_1h_mmol: float | None = None
    ogtt100_2h_mmol: float | None = None
    ogtt100_3h_mmol: float | None = None
    entered: tuple[Reading, ...] = ()
    unit_confirmed: bool = False
    symptoms: bool = False
    anaemia_or_hb_disorder: bool = False
    bmi: float | None = None
    systolic_bp: float | None = None
    diastolic_bp: float | None = None
    insulin_uu_ml: float | None = None
    c_peptide_nmol: float | None = None
    gad_positive: bool | None = None
    smear_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        given = {r.measurement for r in self.entered}
        entered = list(self.entered)
        for name, column in CANONICAL_FIELDS.items():
            value = getattr(self, column)
            if value is not None and name not in given:
                entered.append(Reading(name, value, CANONICAL_UNITS[name]))
        entered.sort(key=lambda r: MEASUREMENTS.index(r.measurement))
        object.__setattr__(self, "entered", tuple(entered))
        for reading in entered:
            if getattr(self, CANONICAL_FIELDS[reading.measurement]) is None:
                try:
                    canonical = reading.canonical()
                except (TypeError, ValueError):
                    continue  # check_visit names the bad value or unit
                object.__setattr__(self, CANONICAL_FIELDS[reading.measurement], canonical)

    def reading(self, name: str) -> Reading | None:
        """Measurement ``name`` as entered, or None when not measured."""
        return next((r for r in self.entered if r.measurement == name), None)

    def values(self) -> dict[str, Any]:
        """The visit's fields as plain values (dates stay dates, smears a list)."""
        out = {f.name: getattr(self, f.name) for f in fields(NewVisit)}
        out["smear_ids"] = list(self.smear_ids)
        out["entered"] = [r.to_json() for r in self.entered]
        return out


@dataclass(frozen=True, kw_only=True)
class Visit(NewVisit):
    """A stored visit: its id, patient, revision and who entered it when."""

    visit_id: str
    patient_id: str
    revision: int = 1
    source: str = "manual"
    entered_by: str = ""
    created_at: dt.datetime = field(default_factory=_now)


@dataclass(frozen=True)
class Confirmation:
    """A clinician's confirmed diagnosis of one visit (``revision`` counts corrections)."""

    visit_id: str
    patient_id: str
    diagnosis: str
    confirmed_by: str
    confirmed_at: dt.datetime
    revision: int
    note: str = ""
    guidelines: str | None = None

    def guideline_verdicts(self) -> dict[str, dict[str, str]]:
        """What each guideline said at confirmation (verdict, repeat_test); {} if not kept."""
        return json.loads(self.guidelines) if self.guidelines else {}


# ---------------------------------------------------------------------------- validation
def check_pseudonym(patient_id: str) -> str:
    """The pseudonym stripped, or :class:`RegistryError` quoting :data:`PSEUDONYM_RULE`."""
    text = (patient_id or "").strip()
    if not _PSEUDONYM_RE.match(text) or not any(c.isdigit() for c in text):
        raise RegistryError(f"{text!r} is not a usable patient id. {PSEUDONYM_RULE}")
    return text


def check_visit(
    visit: NewVisit, *, sex: str | None = None, birth_year: int | None = None
) -> list[tuple[str, str]]:
    """Every problem of a visit as ``(field, message)``; empty when it can be stored.

    Args:
        visit: The visit in canonical units.
        sex: The patient's sex, to refuse a pregnancy of a male patient.
        birth_year: The patient's birth year, to refuse a visit before birth.
    """
    problems: list[tuple[str, str]] = []
    today = dt.date.today()
    if not isinstance(visit.date, dt.date):
        problems.append(("date", f"{visit.date!r} is not a date."))
    elif visit.date > today:
        problems.append(("date", f"{visit.date} is in the future; give the day of the visit."))
    elif birth_year is not None and visit.date.year < birth_year:
        problems.append(("date", f"{visit.date} is before the birth year {birth_year}."))
    for reading in visit.entered:
        if reading.measurement not in CANONICAL_FIELDS:
            problems.append(
                (reading.measurement, f"not a measurement; use one of {', '.join(MEASUREMENTS)}.")
            )
            continue
        valid = HBA1C_UNITS if reading.measurement == "hba1c" else GLUCOSE_UNITS
        if reading.unit not in (*valid, UNKNOWN_UNIT):
            problems.append(
                (
                    reading.measurement,
                    f"{reading.unit!r} is not a unit of {LABELS[reading.measurement]}; use one "
                    f"of {', '.join(valid)}.",
                )
            )
            continue
        unit = (
            CANONICAL_UNITS[reading.measurement] if reading.unit == UNKNOWN_UNIT else reading.unit
        )
        _collect(
            problems,
            reading.measurement,
            reading.value,
            unit,
            confirmed=visit.unit_confirmed or reading.unit == UNKNOWN_UNIT,
        )
    for name, (low, high, unit) in _LIMITS.items():
        value = getattr(visit, name)
        if value is None:
            continue
        if not _is_number(value) or not low <= value <= high:
            problems.append(
                (name, f"{value!r} {unit} cannot be real; expected {low:g} to {high:g} {unit}.")
            )
    if (
        _is_number(visit.systolic_bp)
        and _is_number(visit.diastolic_bp)
        and visit.diastolic_bp >= visit.systolic_bp
    ):
        problems.append(
            (
                "diastolic_bp",
                f"diastolic {visit.diastolic_bp:g} mmHg is not below systolic "
                f"{visit.systolic_bp:g} mmHg; are the columns swapped?",
            )
        )
    if visit.pregnancy_week is not None:
        if not visit.pregnant:
            problems.append(("pregnancy_week", "a pregnancy week is given but not pregnant."))
        elif not 1 <= visit.pregnancy_week <= 45:
            problems.append(
                ("pregnancy_week", f"week {visit.pregnancy_week} cannot be real; expected 1–45.")
            )
    if visit.pregnant and sex == "male":
        problems.append(("pregnant", "the patient is recorded as male."))
    return problems


def _collect(
    problems: list[tuple[str, str]], name: str, value: object, unit: str, *, confirmed: bool
) -> None:
    try:
        check_possible(name, value, unit, confirmed=confirmed)
    except MeasurementError as err:
        problems.append((name, err.reason))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _visit_id(patient_id: str, visit: NewVisit) -> str:
    values = visit.values()
    values["date"] = visit.date.isoformat()
    text = json.dumps({"patient": patient_id, **values}, sort_keys=True, default=str)
    return "V" + hashlib.sha256(text.encode()).hexdigest()[:12]


def parse_diagnosis(text: str) -> str:
    """A diagnosis name from :data:`DIAGNOSES`, accepting common spellings (``T2DM``, ``GDM``).

    Raises:
        RegistryError: the text is none of them; the message lists the valid names.
    """
    key = re.sub(r"[\s_-]+", " ", (text or "").strip().lower())
    if key in DIAGNOSES:
        return key
    aliases = {
        "type 1 diabetes": "type 1",
        "t1": "type 1",
        "t1d": "type 1",
        "t1dm": "type 1",
        "type1": "type 1",
        "type 2 diabetes": "type 2",
        "t2": "type 2",
        "t2d": "type 2",
        "t2dm": "type 2",
        "type2": "type 2",
        "gestational diabetes": "gestational",
        "gdm": "gestational",
        "pre diabetes": "prediabetes",
        "no diabetes": "normal",
        "none": "normal",
        "healthy": "normal",
        "other diabetes": "other",
    }
    if key in aliases:
        return aliases[key]
    raise RegistryError(f"{text!r} is not a diagnosis; use one of: {', '.join(DIAGNOSES)}.")


def _check_gestational(diagnosis: str, visit: NewVisit) -> None:
    if diagnosis == "gestational" and not visit.pregnant:
        raise RegistryError(
            "Gestational diabetes is diagnosed in pregnancy, and this visit is not marked "
            "pregnant; correct the visit or choose another diagnosis."
        )


# Words for a sex, in the CSVs and forms the registry reads.
_SEX = {
    "female": "female",
    "f": "female",
    "w": "female",
    "woman": "female",
    "male": "male",
    "m": "male",
    "man": "male",
    "other": "other",
    "x": "other",
    "d": "other",
    "diverse": "other",
}


def _check_sex(sex: str | None) -> str | None:
    if sex is None or not sex.strip():
        return None
    key = sex.strip().lower()
    if key not in _SEX:
        raise RegistryError(f"{sex!r} is not a sex; use one of {', '.join(SEXES)}.")
    return _SEX[key]


def _check_birth_year(year: int | None) -> int | None:
    if year is None:
        return None
    if isinstance(year, bool) or not isinstance(year, int) or not 1880 <= year <= _now().year:
        raise RegistryError(f"{year!r} cannot be a birth year; give a year such as 1970.")
    return year
