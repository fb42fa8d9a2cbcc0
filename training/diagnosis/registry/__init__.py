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
- Every write takes the acting account (:class:`dataset.roles.Actor`) and checks its role
  before it stores anything: patients, visits, smear links and imports need ``patients``,
  confirming needs ``confirm_diagnosis``. The account's name is recorded with the row
  (``entered_by``, ``confirmed_by``) and in the audit trail.

The tables live in the workspace's Delta store (``registry_patients``, ``registry_visits``,
``registry_diagnoses``) and are append-only, like every other table of the store.

Modules: ``records`` (records, table schemas, validation), ``csv_import`` (the CSV mapping
and row parser), ``repository`` (:class:`Registry`, the tables in the workspace store).
"""

from training.diagnosis.registry.csv_import import (
    MAPPING_FIELDS,
    QUANTITY_OF,
    UNIT_ALIASES,
    UNIT_CHOICES,
    ImportPreview,
    ImportReport,
    ParsedRow,
    RowError,
    VisitMapping,
    parse_visits_csv,
)
from training.diagnosis.registry.records import (
    CANONICAL_FIELDS,
    DIABETES_DIAGNOSES,
    DIAGNOSES,
    DIAGNOSIS_LABELS,
    PSEUDONYM_RULE,
    SEXES,
    Confirmation,
    NewVisit,
    Patient,
    Reading,
    RegistryError,
    Visit,
    check_visit,
    parse_diagnosis,
)
from training.diagnosis.registry.repository import (
    Registry,
)

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
