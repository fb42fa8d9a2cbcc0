"""The patient registry: pseudonymous patients, their visits, and clinicians' confirmed diagnoses.

Promises:
- Patients are stored under a pseudonym only: a study code with at least one digit
  (``P-0042``), never a name. Only sex and birth year are kept about the person.
- A glucose or HbA1c measurement is stored as entered, value and unit (``{name}_entered``,
  ``{name}_unit``), with its value in the canonical unit beside it for models and trends
  (glucose in mmol/L, HbA1c in %). Visits stored before units were kept read with unit
  ``unknown`` (their ids unchanged), and every verdict on them says so. C-peptide is stored in
  nmol/L, insulin in µU/mL, blood pressure in mmHg, BMI in kg/m². A value that cannot be real,
  or a glucose outside 1.0–33.3 mmol/L whose unit was not confirmed (``unit_confirmed``), is
  refused naming the field (:func:`training.diagnosis.criteria.check_possible`).
- No unit is assumed: a CSV mapping gives every mapped measurement's unit, or a column holding
  it (:class:`VisitMapping`).
- A visit's id is a hash of its patient, date and values, so the same visit entered or
  imported twice is stored once. Linking smears to a visit appends a new revision of it.
- A confirmed diagnosis is a clinician's judgement (one of :data:`DIAGNOSES`), with who
  confirmed it and when. Confirmations are append-only: a correction is a new row, the latest
  one wins, and the history is kept. These are the labels the diagnosis classifier learns.
- A CSV import parses every row first (:meth:`Registry.preview_import` stores nothing), refuses
  the rows with an impossible or unreadable value (row number and CSV column in each error),
  and stores every good row even when others are bad.

The tables live in the workspace's Delta store (``registry_patients``, ``registry_visits``,
``registry_diagnoses``) and are append-only, like every other table of the store.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataset._delta import TS
from dataset.store import Store, StoreError
from training.diagnosis.criteria import (
    CANONICAL_UNITS,
    GLUCOSE_MEASUREMENTS,
    LABELS,
    MEASUREMENTS,
    UNKNOWN_UNIT,
    MeasurementError,
    check_possible,
)
from training.diagnosis.units import GLUCOSE_UNITS, HBA1C_UNITS, convert

__all__ = [
    "CANONICAL_FIELDS",
    "DIABETES_DIAGNOSES",
    "DIAGNOSES",
    "DIAGNOSIS_LABELS",
    "MAPPING_FIELDS",
    "PSEUDONYM_RULE",
    "QUANTITY_OF",
    "SEXES",
    "UNIT_ALIASES",
    "UNIT_CHOICES",
    "Confirmation",
    "ImportPreview",
    "ImportReport",
    "NewVisit",
    "ParsedRow",
    "Patient",
    "Reading",
    "Registry",
    "RegistryError",
    "RowError",
    "Visit",
    "VisitMapping",
    "check_visit",
    "parse_diagnosis",
    "parse_visits_csv",
]

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
    ``symptoms`` means classic symptoms of hyperglycaemia; ``gad_positive`` is the GAD
    antibody result (None: not tested).
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


# ---------------------------------------------------------------------------- CSV mapping
MAPPING_FIELDS: dict[str, str] = {
    "patient": "the patient's pseudonym (required)",
    "date": "the visit date (required; see date_format)",
    "sex": "female / male / other (F, M, W accepted)",
    "birth_year": "year of birth",
    "age": "age in years at the visit (gives the birth year when birth_year is absent)",
    "pregnant": "yes / no",
    "pregnancy_week": "week of pregnancy",
    "treated": "yes / no: takes glucose-lowering treatment",
    "treatment": "which treatment (any text other than none/no also means treated)",
    "hba1c": "HbA1c (units: hba1c)",
    "fpg": "fasting plasma glucose (units: glucose)",
    "ogtt_1h": "1-hour 75 g OGTT glucose (units: glucose)",
    "ogtt_2h": "2-hour 75 g OGTT glucose (units: glucose)",
    "random_glucose": "random plasma glucose (units: glucose)",
    "gct_1h": "50 g 1-hour glucose challenge, in pregnancy (units: glucose)",
    "ogtt100_0h": "fasting glucose of the 100 g 3-hour OGTT (units: glucose)",
    "ogtt100_1h": "1-hour glucose of the 100 g OGTT (units: glucose)",
    "ogtt100_2h": "2-hour glucose of the 100 g OGTT (units: glucose)",
    "ogtt100_3h": "3-hour glucose of the 100 g OGTT (units: glucose)",
    "symptoms": "yes / no: classic symptoms of hyperglycaemia",
    "bmi": "body-mass index, kg/m²",
    "systolic_bp": "systolic blood pressure, mmHg",
    "diastolic_bp": "diastolic blood pressure, mmHg",
    "insulin": "fasting insulin (units: insulin)",
    "c_peptide": "C-peptide (units: c_peptide)",
    "gad_antibodies": "GAD antibodies: positive / negative",
    "smears": "smear ids of the store, separated by ';'",
    "unit_confirmed": "yes / no: the unit of a glucose below 1.0 or above 33.3 mmol/L is right",
    "diagnosis": "a confirmed diagnosis (needs confirmed_by in the mapping)",
}
UNIT_CHOICES: dict[str, tuple[str, ...]] = {
    "glucose": GLUCOSE_UNITS,
    "hba1c": HBA1C_UNITS,
    "c_peptide": ("nmol/L", "pmol/L", "ng/mL"),
    "insulin": ("uU/mL", "pmol/L"),
}
# Unit spellings accepted in a unit column of a CSV (case-insensitive).
UNIT_ALIASES: dict[str, str] = {
    "mmol/l": "mmol/L",
    "mmol/liter": "mmol/L",
    "mg/dl": "mg/dL",
    "%": "percent",
    "percent": "percent",
    "ngsp": "percent",
    "dcct": "percent",
    "mmol/mol": "mmol/mol",
    "ifcc": "mmol/mol",
    "nmol/l": "nmol/L",
    "pmol/l": "pmol/L",
    "ng/ml": "ng/mL",
    "uu/ml": "uU/mL",
    "µu/ml": "uU/mL",
    "mu/l": "uU/mL",
}
# The quantity each mapped field is measured in (its units come from ``units`` or
# ``unit_columns``, by field or by quantity).
QUANTITY_OF: dict[str, str] = {
    "hba1c": "hba1c",
    **dict.fromkeys(GLUCOSE_MEASUREMENTS, "glucose"),
    "insulin": "insulin",
    "c_peptide": "c_peptide",
}
# To the canonical unit (the first of each UNIT_CHOICES entry): C-peptide 1 ng/mL = 0.331
# nmol/L (3 020 Da), insulin 1 µU/mL = 6 pmol/L (the factor most assays use).
_FACTORS: dict[tuple[str, str], float] = {
    ("c_peptide", "nmol/L"): 1.0,
    ("c_peptide", "pmol/L"): 1e-3,
    ("c_peptide", "ng/mL"): 0.331,
    ("insulin", "uU/mL"): 1.0,
    ("insulin", "pmol/L"): 1 / 6.0,
}
_TRUE = {"yes", "y", "true", "t", "1", "positive", "pos", "+", "ja"}
_FALSE = {"no", "n", "false", "f", "0", "negative", "neg", "-", "nein"}
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


class VisitMapping(BaseModel):
    """How a CSV's columns map onto visits (the ``--mapping`` JSON).

    Example: ``{"columns": {"patient": "PatientID", "date": "VisitDate", "hba1c": "A1c"},
    "units": {"glucose": "mg/dL", "hba1c": "percent"}, "date_format": "%Y-%m-%d"}``.

    No unit is assumed: each mapped measurement needs its unit, in ``units`` (by field, e.g.
    ``"fpg"``, or by quantity: ``glucose``, ``hba1c``, ``insulin``, ``c_peptide``) or in
    ``unit_columns`` (a CSV column holding each row's unit, by field or quantity).
    """

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str] = Field(description="registry field -> CSV column")
    units: dict[str, str] = Field(
        default_factory=dict, description="field or quantity -> unit of the whole file"
    )
    unit_columns: dict[str, str] = Field(
        default_factory=dict, description="field or quantity -> CSV column holding the unit"
    )
    date_format: str = Field("%Y-%m-%d", description="strptime format of the date column")
    missing_values: list[str] = Field(
        default_factory=lambda: ["", "na", "n/a", "nan", "null", "none", "."],
        description="cell texts meaning 'not measured' (case-insensitive)",
    )
    confirmed_by: str | None = Field(None, description="clinician who confirmed the diagnoses")
    units_confirmed: bool = Field(
        False, description="the units of glucose below 1.0 or above 33.3 mmol/L are right"
    )
    delimiter: str = Field(",", min_length=1, max_length=1)

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(MAPPING_FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; map any of: {', '.join(MAPPING_FIELDS)}")
        missing = [f for f in ("patient", "date") if f not in value]
        if missing:
            raise ValueError(f"map the required field(s) {missing} to a CSV column")
        return value

    @field_validator("units")
    @classmethod
    def _known_units(cls, value: dict[str, str]) -> dict[str, str]:
        for key, unit in value.items():
            quantity = QUANTITY_OF.get(key, key)
            if quantity not in UNIT_CHOICES:
                raise ValueError(
                    f"no unit to set for {key!r}; units apply to {', '.join(UNIT_CHOICES)} or "
                    f"a measured field ({', '.join(QUANTITY_OF)})"
                )
            if unit not in UNIT_CHOICES[quantity]:
                raise ValueError(
                    f"{unit!r} is not a {quantity} unit; use one of {UNIT_CHOICES[quantity]}"
                )
        return value

    @field_validator("unit_columns")
    @classmethod
    def _known_unit_columns(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = [k for k in value if QUANTITY_OF.get(k, k) not in UNIT_CHOICES]
        if unknown:
            raise ValueError(
                f"no unit column for {unknown}; unit columns apply to {', '.join(UNIT_CHOICES)} "
                f"or a measured field ({', '.join(QUANTITY_OF)})"
            )
        return value

    @model_validator(mode="after")
    def _lowercase_missing(self) -> VisitMapping:
        self.missing_values = [m.strip().lower() for m in self.missing_values]
        lacking = [
            f
            for f in self.columns
            if f in QUANTITY_OF
            and not any(
                k in d for k in (f, QUANTITY_OF[f]) for d in (self.units, self.unit_columns)
            )
        ]
        if lacking:
            raise ValueError(
                f"give the unit of {', '.join(lacking)}: no unit is assumed. Add it to units "
                f'(e.g. "units": {{"{QUANTITY_OF[lacking[0]]}": '
                f'"{UNIT_CHOICES[QUANTITY_OF[lacking[0]]][0]}"}}) or name a column holding '
                "it in unit_columns"
            )
        return self

    def unit_source(self, name: str) -> tuple[str, str]:
        """Where the unit of field ``name`` comes from: ``("unit", U)`` or ``("column", C)``.

        A field's own entry wins over its quantity's; a fixed unit over a column.

        Raises:
            ValueError: the mapping gives no unit for ``name``.
        """
        for key in (name, QUANTITY_OF.get(name, name)):
            if key in self.units:
                return "unit", self.units[key]
            if key in self.unit_columns:
                return "column", self.unit_columns[key]
        raise ValueError(f"the mapping gives no unit for {name}")

    @classmethod
    def load(cls, path: Path | str) -> VisitMapping:
        """Read a mapping JSON file.

        Raises:
            RegistryError: the file is missing or not a valid mapping (the message says why).
        """
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise RegistryError(f"Cannot read mapping {path}: {err.strerror}.") from None
        except ValueError as err:
            raise RegistryError(f"Mapping {path} is not valid: {err}") from None


@dataclass(frozen=True)
class RowError:
    """Why one CSV row was refused: its row number (the header is row 1) and CSV column."""

    row: int
    column: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}: {self.message}"


@dataclass(frozen=True)
class ParsedRow:
    """One good CSV row: the patient, the visit in canonical units, a diagnosis if mapped."""

    row: int
    patient_id: str
    sex: str | None
    birth_year: int | None
    visit: NewVisit
    diagnosis: str | None = None
    status: str = "new"  # "new" or "duplicate" (already stored), set by a registry preview

    @property
    def visit_id(self) -> str:
        return _visit_id(self.patient_id, self.visit)

    def to_json(self) -> dict[str, Any]:
        values = self.visit.values()
        values["date"] = self.visit.date.isoformat()
        return {
            "row": self.row,
            "status": self.status,
            "patient": self.patient_id,
            "sex": self.sex,
            "birth_year": self.birth_year,
            "visit_id": self.visit_id,
            "diagnosis": self.diagnosis,
            **values,
        }


@dataclass(frozen=True)
class ImportPreview:
    """A parsed CSV: the good rows and the errors of the refused ones."""

    source: str
    rows: tuple[ParsedRow, ...]
    errors: tuple[RowError, ...]
    n_rows: int

    @property
    def refused_rows(self) -> list[int]:
        return sorted({e.row for e in self.errors})

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "n_rows": self.n_rows,
            "good": len(self.rows),
            "refused": len(self.refused_rows),
            "rows": [r.to_json() for r in self.rows],
            "errors": [e.to_json() for e in self.errors],
        }


@dataclass(frozen=True)
class ImportReport:
    """What an import stored: new visits, duplicates skipped, patients and diagnoses added."""

    source: str
    n_rows: int
    added: tuple[str, ...]
    duplicates: tuple[str, ...]
    patients_added: tuple[str, ...]
    diagnoses_added: int
    errors: tuple[RowError, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "n_rows": self.n_rows,
            "added": len(self.added),
            "duplicates": len(self.duplicates),
            "patients_added": len(self.patients_added),
            "diagnoses_added": self.diagnoses_added,
            "refused": len({e.row for e in self.errors}),
            "visit_ids": list(self.added),
            "errors": [e.to_json() for e in self.errors],
        }


def parse_visits_csv(
    source: Path | str | bytes, mapping: VisitMapping, name: str | None = None
) -> ImportPreview:
    """Parse a CSV of visits without storing anything.

    Args:
        source: A path, or the file's bytes (an upload).
        mapping: Which column is which field, and the units.
        name: Label of the source in messages (default: the path, or ``upload``).

    Raises:
        RegistryError: the file cannot be read or lacks a mapped column (nothing is parsed).
    """
    if isinstance(source, bytes):
        raw, label = source, name or "upload"
    else:
        path = Path(source)
        label = name or str(path)
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise RegistryError(f"Cannot read {path}: {err.strerror}.") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RegistryError(f"{label} is not UTF-8 text; save it as UTF-8 CSV.") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=mapping.delimiter)
    header = [h.strip() for h in next(reader, [])]
    absent = [
        c
        for c in dict.fromkeys([*mapping.columns.values(), *mapping.unit_columns.values()])
        if c not in header
    ]
    if absent:
        raise RegistryError(
            f"{label} has no column(s) {absent}; its columns are {header}. Fix the mapping."
        )
    index = {f: header.index(c) for f, c in mapping.columns.items()}
    index |= {f"unit:{c}": header.index(c) for c in mapping.unit_columns.values()}
    rows: list[ParsedRow] = []
    errors: list[RowError] = []
    n_rows = 0
    for row_no, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        n_rows += 1
        parsed, row_errors = _parse_row(cells, row_no, index, mapping)
        if row_errors:
            errors.extend(row_errors)
        elif parsed is not None:
            rows.append(parsed)
    return ImportPreview(label, tuple(rows), tuple(errors), n_rows)


def _parse_row(
    cells: list[str], row: int, index: dict[str, int], mapping: VisitMapping
) -> tuple[ParsedRow | None, list[RowError]]:
    errors: list[RowError] = []
    column_of = mapping.columns

    def cell(name: str) -> str | None:
        if name not in index:
            return None
        i = index[name]
        text = cells[i].strip() if i < len(cells) else ""
        return None if text.lower() in mapping.missing_values else text

    def fail(name: str, message: str) -> None:
        errors.append(RowError(row, column_of.get(name, name), message))

    def number(name: str) -> float | None:
        text = cell(name)
        if text is None:
            return None
        try:
            value = float(text.replace(",", ".") if mapping.delimiter != "," else text)
        except ValueError:
            fail(name, f"{text!r} is not a number.")
            return None
        if not math.isfinite(value):
            fail(name, f"{text!r} is not a finite number.")
            return None
        return value

    def flag(name: str) -> bool | None:
        text = cell(name)
        if text is None:
            return None
        key = text.lower()
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
        fail(name, f"{text!r} is neither yes nor no.")
        return None

    def whole(name: str) -> int | None:
        value = number(name)
        if value is not None and value != int(value):
            fail(name, f"{value:g} is not a whole number.")
            return None
        return None if value is None else int(value)

    patient = cell("patient")
    if patient is None:
        fail("patient", "the patient id is empty.")
    else:
        try:
            patient = check_pseudonym(patient)
        except RegistryError as err:
            fail("patient", str(err))
    date: dt.date | None = None
    date_text = cell("date")
    if date_text is None:
        fail("date", "the date is empty.")
    else:
        try:
            date = dt.datetime.strptime(date_text, mapping.date_format).date()
        except ValueError:
            fail("date", f"{date_text!r} does not match the date format {mapping.date_format!r}.")
    sex = cell("sex")
    if sex is not None:
        if sex.lower() not in _SEX:
            fail("sex", f"{sex!r} is not a sex; use female, male or other.")
        sex = _SEX.get(sex.lower())
    birth_year = whole("birth_year")
    age = number("age")
    if birth_year is not None and not 1880 <= birth_year <= dt.date.today().year:
        fail("birth_year", f"{birth_year} cannot be a birth year.")
    if age is not None:
        if not 0 <= age <= 125:
            fail("age", f"{age:g} years cannot be real; expected 0 to 125.")
        elif birth_year is None and date is not None:
            birth_year = date.year - int(age)

    def unit_of(name: str) -> str | None:
        """The unit of field ``name`` in this row, from the mapping or the row's unit column."""
        kind, where = mapping.unit_source(name)
        if kind == "unit":
            return where
        i = index[f"unit:{where}"]
        text = cells[i].strip() if i < len(cells) else ""
        quantity = QUANTITY_OF[name]
        unit = UNIT_ALIASES.get(text.lower())
        if unit not in UNIT_CHOICES[quantity]:
            errors.append(
                RowError(
                    row,
                    where,
                    f"{text!r} is not a {quantity} unit (the unit of {name}); use one of "
                    f"{', '.join(UNIT_CHOICES[quantity])}. No unit is assumed.",
                )
            )
            return None
        return unit

    # Values are checked in the unit they were entered in, so messages show them as written.
    values: dict[str, Any] = {}
    confirmed = bool(flag("unit_confirmed")) or mapping.units_confirmed
    entered: list[Reading] = []
    for name in MEASUREMENTS:
        value = number(name)
        if value is None:
            continue
        unit = unit_of(name)
        if unit is None:
            continue
        try:
            check_possible(name, value, unit, confirmed=confirmed)
        except MeasurementError as err:
            fail(name, err.reason)
            continue
        entered.append(Reading(name, value, unit))
    for name, target in (("c_peptide", "c_peptide_nmol"), ("insulin", "insulin_uu_ml")):
        value = number(name)
        if value is not None:
            unit = unit_of(name)
            if unit is not None:
                values[target] = value * _FACTORS[(name, unit)]
    for name in ("bmi", "systolic_bp", "diastolic_bp"):
        value = number(name)
        if value is not None:
            values[name] = value
    week = whole("pregnancy_week")
    pregnant = flag("pregnant")
    treated = flag("treated")
    treatment = cell("treatment")
    if treated is None and treatment is not None:
        treated = treatment.lower() not in _FALSE
    symptoms = flag("symptoms")
    gad_positive = flag("gad_antibodies")
    smears = tuple(s.strip() for s in (cell("smears") or "").split(";") if s.strip())
    diagnosis = None
    if cell("diagnosis") is not None:
        try:
            diagnosis = parse_diagnosis(cell("diagnosis") or "")
        except RegistryError as err:
            fail("diagnosis", str(err))
    if errors or patient is None or date is None:
        return None, errors
    visit = NewVisit(
        date=date,
        # A pregnancy week without a pregnancy column says the visit was in pregnancy.
        pregnant=bool(pregnant) or (pregnant is None and week is not None),
        pregnancy_week=week,
        treated=bool(treated),
        treatment=treatment,
        symptoms=bool(symptoms),
        gad_positive=gad_positive,
        smear_ids=smears,
        entered=tuple(entered),
        unit_confirmed=confirmed,
        **values,
    )
    for name, message in check_visit(visit, sex=sex, birth_year=birth_year):
        fail(_FIELD_TO_MAPPING.get(name, name), message)
    if errors:
        return None, errors
    return ParsedRow(row, patient, sex, birth_year, visit, diagnosis), []


_FIELD_TO_MAPPING = {
    "hba1c_percent": "hba1c",
    "fpg_mmol": "fpg",
    "ogtt_1h_mmol": "ogtt_1h",
    "ogtt_2h_mmol": "ogtt_2h",
    "random_glucose_mmol": "random_glucose",
    "insulin_uu_ml": "insulin",
    "c_peptide_nmol": "c_peptide",
}


# ---------------------------------------------------------------------------- the registry
class Registry:
    """Patients, visits and confirmed diagnoses of one workspace (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.tables = store.tables
        for name, schema in TABLES.items():
            self.tables.register(name, schema)

    @classmethod
    def open(cls, workspace: Path | str | None = None) -> Registry:
        """The registry of ``workspace`` (default: the settings' workspace)."""
        return cls(Store.open(workspace))

    def table_versions(self) -> dict[str, int]:
        """Version of each registry table (recorded in the cards of models trained on it)."""
        return {name: self.tables.version(name) for name in TABLES}

    # ------------------------------------------------------------------ patients
    def add_patient(
        self,
        patient_id: str | None = None,
        *,
        sex: str | None = None,
        birth_year: int | None = None,
    ) -> Patient:
        """Store a new patient under a pseudonym (a fresh one such as ``P-482913`` when None).

        Raises:
            RegistryError: the pseudonym is not one (see :data:`PSEUDONYM_RULE`), is taken,
                or sex / birth year are invalid.
        """
        sex = _check_sex(sex)
        birth_year = _check_birth_year(birth_year)
        with self.tables.lock("registry_patients"):
            known = self._patients()
            if patient_id is None:
                patient_id = _fresh_pseudonym(set(known))
            patient_id = check_pseudonym(patient_id)
            if patient_id in known:
                raise RegistryError(
                    f"Patient {patient_id} exists already; open it, or choose another pseudonym."
                )
            patient = Patient(patient_id, sex, birth_year, _now())
            self.tables.append("registry_patients", [asdict(patient)])
        return patient

    def patient(self, patient_id: str) -> Patient:
        """The patient with this pseudonym.

        Raises:
            RegistryError: no such patient.
        """
        patients = self._patients()
        if patient_id not in patients:
            raise RegistryError(
                f"No patient {patient_id!r} in the registry of {self.store.root}; "
                "add the patient first."
            )
        return patients[patient_id]

    def patients(self) -> list[Patient]:
        """All patients, by pseudonym."""
        return sorted(self._patients().values(), key=lambda p: p.patient_id)

    def find_patients(self, text: str) -> list[Patient]:
        """Patients whose pseudonym contains ``text`` (case-insensitive)."""
        needle = text.strip().lower()
        return [p for p in self.patients() if needle in p.patient_id.lower()]

    def _patients(self) -> dict[str, Patient]:
        rows = self.tables.read("registry_patients").to_pylist()
        out: dict[str, Patient] = {}
        for row in sorted(rows, key=lambda r: r["created_at"]):
            out.setdefault(row["patient_id"], Patient(**row))
        return out

    # ------------------------------------------------------------------ visits
    def add_visit(
        self, patient_id: str, visit: NewVisit, *, entered_by: str = "", source: str = "manual"
    ) -> Visit:
        """Store a visit of a known patient; the same visit stored before is returned as is.

        Raises:
            RegistryError: unknown patient, unknown smear, or values that cannot be real
                (every problem named by field).
        """
        patient = self.patient(patient_id)
        problems = check_visit(visit, sex=patient.sex, birth_year=patient.birth_year)
        if problems:
            raise RegistryError("; ".join(f"{name}: {message}" for name, message in problems))
        self._check_smears(visit.smear_ids)
        added, _ = self._store_visits([(patient.patient_id, visit)], entered_by, source)
        return self.visit(_visit_id(patient.patient_id, visit)) if not added else added[0]

    def visit(self, visit_id: str) -> Visit:
        """The latest revision of a visit.

        Raises:
            RegistryError: no such visit.
        """
        rows = self.tables.read(
            "registry_visits", None, pc.field("visit_id") == visit_id
        ).to_pylist()
        if not rows:
            raise RegistryError(f"No visit {visit_id!r} in the registry of {self.store.root}.")
        return _visit_from_row(max(rows, key=lambda r: r["revision"]))

    def visits(self, patient_id: str | None = None) -> list[Visit]:
        """Latest revision of every visit (of one patient), oldest visit first."""
        flt = None if patient_id is None else pc.field("patient_id") == patient_id
        latest: dict[str, dict] = {}
        for row in self.tables.read("registry_visits", None, flt).to_pylist():
            cur = latest.get(row["visit_id"])
            if cur is None or row["revision"] > cur["revision"]:
                latest[row["visit_id"]] = row
        visits = [_visit_from_row(r) for r in latest.values()]
        return sorted(visits, key=lambda v: (v.patient_id, v.date, v.created_at, v.visit_id))

    def link_smears(
        self, visit_id: str, smear_ids: Iterable[str], *, entered_by: str = ""
    ) -> Visit:
        """Link stored smears to a visit (a new revision of the visit; the id stays).

        Raises:
            RegistryError: unknown visit or smear.
        """
        wanted = tuple(dict.fromkeys(s.strip() for s in smear_ids if s.strip()))
        self._check_smears(wanted)
        with self.tables.lock("registry_visits"):
            current = self.visit(visit_id)
            merged = tuple(dict.fromkeys((*current.smear_ids, *wanted)))
            if merged == current.smear_ids:
                return current
            updated = replace(
                current,
                smear_ids=merged,
                revision=current.revision + 1,
                entered_by=entered_by,
                created_at=_now(),
            )
            self.tables.append("registry_visits", [_visit_row(updated)])
        return updated

    def _check_smears(self, smear_ids: Iterable[str]) -> None:
        ids = list(smear_ids)
        if not ids:
            return
        known = {s.smear_id for s in self.store.smears()}
        missing = [s for s in ids if s not in known]
        if missing:
            raise RegistryError(
                f"No smear(s) {missing} in workspace {self.store.root}; ingest them first."
            )

    def _store_visits(
        self, items: list[tuple[str, NewVisit]], entered_by: str, source: str
    ) -> tuple[list[Visit], list[str]]:
        """Append the visits not stored yet in one commit; returns (added, duplicate ids)."""
        now = _now()
        with self.tables.lock("registry_visits"):
            stored = set(self.tables.read("registry_visits", ["visit_id"])["visit_id"].to_pylist())
            added: list[Visit] = []
            duplicates: list[str] = []
            for patient_id, new in items:
                vid = _visit_id(patient_id, new)
                if vid in stored:
                    duplicates.append(vid)
                    continue
                stored.add(vid)
                added.append(
                    Visit(
                        **{f.name: getattr(new, f.name) for f in fields(NewVisit)},
                        visit_id=vid,
                        patient_id=patient_id,
                        source=source,
                        entered_by=entered_by,
                        created_at=now,
                    )
                )
            if added:
                self.tables.append("registry_visits", [_visit_row(v) for v in added])
        return added, duplicates

    # ------------------------------------------------------------------ diagnoses
    def confirm(
        self,
        visit_id: str,
        diagnosis: str,
        *,
        by: str,
        note: str = "",
        guidelines: dict[str, dict[str, str]] | None = None,
    ) -> Confirmation:
        """Record a clinician's confirmed diagnosis of a visit (a correction is a new call).

        ``guidelines`` is what each guideline said at that moment (``{"ADA": {"verdict",
        "repeat_test"}, ...}``), kept in the history beside the clinician's judgement.

        Raises:
            RegistryError: unknown visit or diagnosis, no clinician named, or gestational
                diabetes at a visit not in pregnancy.
        """
        if not (by or "").strip():
            raise RegistryError("Say who confirms the diagnosis (the clinician's name or id).")
        diagnosis = parse_diagnosis(diagnosis)
        visit = self.visit(visit_id)
        _check_gestational(diagnosis, visit)
        with self.tables.lock("registry_diagnoses"):
            history = self.diagnosis_history(visit_id)
            confirmation = Confirmation(
                visit_id=visit_id,
                patient_id=visit.patient_id,
                diagnosis=diagnosis,
                confirmed_by=by.strip(),
                confirmed_at=_now(),
                revision=len(history) + 1,
                note=note,
                guidelines=None if guidelines is None else json.dumps(guidelines),
            )
            self.tables.append("registry_diagnoses", [asdict(confirmation)])
        return confirmation

    def diagnosis(self, visit_id: str) -> Confirmation | None:
        """The visit's latest confirmed diagnosis, or None when none was confirmed."""
        history = self.diagnosis_history(visit_id)
        return history[-1] if history else None

    def diagnosis_history(self, visit_id: str) -> list[Confirmation]:
        """Every confirmation of the visit, oldest first."""
        rows = self.tables.read(
            "registry_diagnoses", None, pc.field("visit_id") == visit_id
        ).to_pylist()
        return sorted((Confirmation(**r) for r in rows), key=lambda c: c.revision)

    def histories(self, patient_id: str | None = None) -> dict[str, list[Confirmation]]:
        """Every visit's confirmations (of one patient), oldest first, in one read."""
        flt = None if patient_id is None else pc.field("patient_id") == patient_id
        out: dict[str, list[Confirmation]] = {}
        for row in self.tables.read("registry_diagnoses", None, flt).to_pylist():
            out.setdefault(row["visit_id"], []).append(Confirmation(**row))
        return {k: sorted(v, key=lambda c: c.revision) for k, v in out.items()}

    def confirmed(self) -> dict[str, Confirmation]:
        """The latest confirmation of every visit that has one."""
        latest: dict[str, Confirmation] = {}
        for row in self.tables.read("registry_diagnoses").to_pylist():
            c = Confirmation(**row)
            if c.visit_id not in latest or c.revision > latest[c.visit_id].revision:
                latest[c.visit_id] = c
        return latest

    # ------------------------------------------------------------------ CSV import
    def preview_import(
        self, source: Path | str | bytes, mapping: VisitMapping, name: str | None = None
    ) -> ImportPreview:
        """Parse a CSV as :meth:`import_visits` would, marking rows stored already; stores nothing.

        Rows that disagree with a stored patient (sex, birth year) or name an unknown smear
        become errors here too.
        """
        preview = parse_visits_csv(source, mapping, name)
        patients = self._patients()
        smears = {s.smear_id for s in self.store.smears()}
        stored = set(self.tables.read("registry_visits", ["visit_id"])["visit_id"].to_pylist())
        rows: list[ParsedRow] = []
        errors = list(preview.errors)
        seen: dict[str, ParsedRow] = {}
        for r in preview.rows:
            problems = _conflicts(r, patients.get(r.patient_id) or seen.get(r.patient_id))
            problems += [
                ("smears", f"no smear {s!r} in this workspace; ingest it first.")
                for s in r.visit.smear_ids
                if s not in smears
            ]
            if r.diagnosis is not None:
                if not (mapping.confirmed_by or "").strip():
                    problems.append(
                        (
                            "diagnosis",
                            "a diagnosis column needs confirmed_by in the mapping: the "
                            "clinician who confirmed these diagnoses.",
                        )
                    )
                try:
                    _check_gestational(r.diagnosis, r.visit)
                except RegistryError as err:
                    problems.append(("diagnosis", str(err)))
            if problems:
                errors += [RowError(r.row, mapping.columns.get(f, f), m) for f, m in problems]
                continue
            seen.setdefault(r.patient_id, r)
            status = "duplicate" if r.visit_id in stored else "new"
            rows.append(replace(r, status=status))
        errors.sort(key=lambda e: e.row)
        return ImportPreview(preview.source, tuple(rows), tuple(errors), preview.n_rows)

    def import_visits(
        self,
        source: Path | str | bytes,
        mapping: VisitMapping,
        *,
        entered_by: str = "",
        name: str | None = None,
    ) -> ImportReport:
        """Store every good row of a CSV of visits; refused rows are reported, not stored.

        New patients are created from their first good row. Visits stored before are skipped
        as duplicates. A mapped diagnosis column is stored as confirmations by
        ``mapping.confirmed_by`` (a visit already confirmed the same way gets no new row).
        """
        preview = self.preview_import(source, mapping, name)
        with self.tables.lock("registry_patients"):
            known = self._patients()
            new_patients: dict[str, Patient] = {}
            now = _now()
            for r in preview.rows:
                if r.patient_id not in known and r.patient_id not in new_patients:
                    new_patients[r.patient_id] = Patient(r.patient_id, r.sex, r.birth_year, now)
            if new_patients:
                self.tables.append("registry_patients", [asdict(p) for p in new_patients.values()])
        added, duplicates = self._store_visits(
            [(r.patient_id, r.visit) for r in preview.rows], entered_by, "import"
        )
        n_confirmed = 0
        by = (mapping.confirmed_by or "").strip()
        labelled = [r for r in preview.rows if r.diagnosis is not None]
        if labelled:
            with self.tables.lock("registry_diagnoses"):
                latest = self.confirmed()
                rows = []
                for r in labelled:
                    current = latest.get(r.visit_id)
                    if current is not None and current.diagnosis == r.diagnosis:
                        continue
                    c = Confirmation(
                        visit_id=r.visit_id,
                        patient_id=r.patient_id,
                        diagnosis=r.diagnosis or "",
                        confirmed_by=by,
                        confirmed_at=_now(),
                        revision=(current.revision if current else 0) + 1,
                        note=f"imported from {preview.source}, row {r.row}",
                    )
                    latest[r.visit_id] = c
                    rows.append(asdict(c))
                if rows:
                    self.tables.append("registry_diagnoses", rows)
                n_confirmed = len(rows)
        return ImportReport(
            source=preview.source,
            n_rows=preview.n_rows,
            added=tuple(v.visit_id for v in added),
            duplicates=tuple(duplicates),
            patients_added=tuple(new_patients),
            diagnoses_added=n_confirmed,
            errors=preview.errors,
        )


def _conflicts(row: ParsedRow, known: Patient | ParsedRow | None) -> list[tuple[str, str]]:
    if known is None:
        return []
    problems = []
    if row.sex is not None and known.sex is not None and row.sex != known.sex:
        problems.append(("sex", f"patient {row.patient_id} is recorded as {known.sex}."))
    if (
        row.birth_year is not None
        and known.birth_year is not None
        and abs(row.birth_year - known.birth_year) > 1
    ):
        problems.append(
            ("birth_year", f"patient {row.patient_id} is recorded as born {known.birth_year}.")
        )
    if row.visit.pregnant and known.sex == "male":
        problems.append(("pregnant", f"patient {row.patient_id} is recorded as male."))
    return problems


def _check_gestational(diagnosis: str, visit: NewVisit) -> None:
    if diagnosis == "gestational" and not visit.pregnant:
        raise RegistryError(
            "Gestational diabetes is diagnosed in pregnancy, and this visit is not marked "
            "pregnant; correct the visit or choose another diagnosis."
        )


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


def _fresh_pseudonym(taken: set[str]) -> str:
    while True:
        candidate = f"P-{secrets.randbelow(1_000_000):06d}"
        if candidate not in taken:
            return candidate


def _visit_row(visit: Visit) -> dict[str, Any]:
    row = {f.name: getattr(visit, f.name) for f in fields(Visit) if f.name != "entered"}
    row["smear_ids"] = list(visit.smear_ids)
    for reading in visit.entered:
        row[f"{reading.measurement}_entered"] = reading.value
        row[f"{reading.measurement}_unit"] = reading.unit
    return row


def _visit_from_row(row: dict[str, Any]) -> Visit:
    """A stored row as a visit; a value stored before units were kept reads as ``unknown``."""
    entered = []
    for name, column in CANONICAL_FIELDS.items():
        unit = row.get(f"{name}_unit")
        if unit is not None and row.get(f"{name}_entered") is not None:
            entered.append(Reading(name, row[f"{name}_entered"], unit))
        elif row.get(column) is not None:
            entered.append(Reading(name, row[column], UNKNOWN_UNIT))
    known = {f.name for f in fields(Visit)} - {"entered"}
    values = {k: v for k, v in row.items() if k in known}
    values["smear_ids"] = tuple(row.get("smear_ids") or ())
    for name in ("pregnant", "treated", "symptoms", "unit_confirmed"):
        values[name] = bool(values.get(name))
    return Visit(**values, entered=tuple(entered))
