"""Visits from a CSV file: the column mapping (:class:`VisitMapping`), unit words, and the
row-by-row parse that names the row and column of every refusal. Number cells are read
column by column through :mod:`training.diagnosis.numbers`, as every diagnosis CSV is."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from training.diagnosis.criteria import (
    GLUCOSE_MEASUREMENTS,
    MEASUREMENTS,
    MeasurementError,
    check_possible,
)
from training.diagnosis.numbers import BadNumber, read_numbers
from training.diagnosis.registry.records import (
    _SEX,
    NewVisit,
    Reading,
    RegistryError,
    _visit_id,
    check_pseudonym,
    check_visit,
    parse_diagnosis,
)
from training.diagnosis.units import GLUCOSE_UNITS, HBA1C_UNITS

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
    "anaemia": "yes / no: anaemia or a haemoglobin disorder (HbA1c is then not used)",
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
    lines = [(n, cells) for n, cells in enumerate(reader, start=2) if any(c.strip() for c in cells)]
    numbers = _read_number_columns(lines, index, mapping)
    rows: list[ParsedRow] = []
    errors: list[RowError] = []
    for row_no, cells in lines:
        parsed, row_errors = _parse_row(cells, row_no, index, mapping, numbers)
        if row_errors:
            errors.extend(row_errors)
        elif parsed is not None:
            rows.append(parsed)
    return ImportPreview(label, tuple(rows), tuple(errors), len(lines))


# Fields read as numbers (whole numbers among them are checked to be whole per row).
_NUMBER_FIELDS = (
    "birth_year",
    "age",
    "pregnancy_week",
    *MEASUREMENTS,
    "c_peptide",
    "insulin",
    "bmi",
    "systolic_bp",
    "diastolic_bp",
)


def _read_number_columns(
    lines: list[tuple[int, list[str]]], index: dict[str, int], mapping: VisitMapping
) -> dict[str, dict[int, float | BadNumber]]:
    """Each mapped number field's cells, read column by column: row -> value or bad cell.

    A file whose cells are separated by something other than commas may write a decimal
    comma (``6,1``).
    """
    decimal = "." if mapping.delimiter == "," else ","
    out: dict[str, dict[int, float | BadNumber]] = {}
    for name in _NUMBER_FIELDS:
        if name not in index:
            continue
        i = index[name]
        cells = pd.Series(
            [c[i] if i < len(c) else "" for _, c in lines],
            index=[n for n, _ in lines],
            dtype=object,
        )
        values, bad = read_numbers(
            cells, column=mapping.columns[name], decimal=decimal, missing=mapping.missing_values
        )
        column: dict[int, float | BadNumber] = {
            row: float(v) for row, v in values.items() if not math.isnan(v)
        }
        column.update((b.row, b) for b in bad)
        out[name] = column
    return out


def _parse_row(
    cells: list[str],
    row: int,
    index: dict[str, int],
    mapping: VisitMapping,
    numbers: dict[str, dict[int, float | BadNumber]],
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
        value = numbers.get(name, {}).get(row)
        if isinstance(value, BadNumber):
            fail(name, value.reason)
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
    anaemia = flag("anaemia")
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
        anaemia_or_hb_disorder=bool(anaemia),
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
