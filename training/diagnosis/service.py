"""The diagnosis workflows the page, the command line and the job runner share.

Promises:
    * Training data comes from the registry's confirmed diagnoses (the clinician's judgement,
      never the guideline thresholds) or from a CSV's outcome column; Pima data is read from
      its file only and never stored as confirmed diagnoses.
    * From the registry, one row per patient (the latest confirmed visit) by default, so
      cross-validation never has the same person on both sides of a fold. The target is
      diabetes / no diabetes, or the confirmed diagnoses themselves when every one of them has
      enough visits (``target="auto"``); the card says which and why.
    * A trained classifier is a model-zoo checkpoint of kind ``"diagnosis"`` (safetensors,
      config, card with target, features, cross-validated metrics and training data); the zoo
      makes it current when there is none.
    * A model asked to tell type 1 from type 2 diabetes without C-peptide, islet antibodies or
      the age at onset carries a warning in its card and in every prediction.
    * Everything is decision support for a clinician, for research use: :data:`DISCLAIMER`.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dataset.store import Store
from training.diagnosis import DISCLAIMER
from training.diagnosis.criteria import (
    LABELS,
    MEASUREMENTS,
    REPEAT_WINDOW_DAYS,
    EarlierResult,
    MeasurementError,
    Measurements,
    RuleResults,
    diagnostic_measurements,
    evaluate_rules,
    load_guidelines,
)
from training.diagnosis.features import (
    TabularData,
    load_csv,
    parse_number,
    type_distinction_warning,
)
from training.diagnosis.forecast import Forecast, VisitPoint, forecast, forecast_thresholds
from training.diagnosis.registry import (
    DIABETES_DIAGNOSES,
    DIAGNOSES,
    Confirmation,
    NewVisit,
    ParsedRow,
    Reading,
    Registry,
    RowError,
    Visit,
    VisitMapping,
    parse_visits_csv,
)
from training.kinds import TRAIN_DIAGNOSIS, target_of

if TYPE_CHECKING:
    from model_zoo.card import ModelCard
    from training.diagnosis.classifier import FittedClassifier
    from training.diagnosis.crossval import CVReport
    from training.diagnosis.explain import Explanation
    from training.jobs import JobContext, JobStatus

__all__ = [
    "BINARY_CLASSES",
    "DISCLAIMER",
    "REGISTRY_FEATURES",
    "TRAIN_JOB_TARGET",
    "DataSource",
    "DiagnosisError",
    "PredictionReport",
    "StagedModel",
    "TrainRequest",
    "TrainingSet",
    "VisitPrediction",
    "confirm_visit",
    "csv_training_set",
    "earlier_results",
    "evaluate",
    "fit_and_stage",
    "load_model",
    "model_warnings",
    "patient_forecast",
    "patient_summary",
    "predict_file",
    "predict_visit",
    "registry_training_set",
    "smear_features",
    "submit_training",
    "train",
    "train_job",
    "training_set",
    "visit_features",
    "visit_from_entry",
    "visit_measurements",
    "visit_rules",
    "visit_summary",
]

BINARY_CLASSES: tuple[str, str] = ("no diabetes", "diabetes")
TRAIN_JOB_KIND = TRAIN_DIAGNOSIS
TRAIN_JOB_TARGET = target_of(TRAIN_DIAGNOSIS)
# Several classes need this many confirmed rows each; fewer and ``auto`` trains binary.
MIN_ROWS_PER_CLASS = 10

# Features of a registry visit, in column order. Treatment is left out on purpose: a model
# that learns "treated, so diabetic" tells the clinician nothing new.
REGISTRY_FEATURES: tuple[str, ...] = (
    "age (years)",
    "female",
    "pregnant",
    "pregnancy week",
    "HbA1c (%)",
    "fasting glucose (mmol/L)",
    "1-hour OGTT glucose (mmol/L)",
    "2-hour OGTT glucose (mmol/L)",
    "random glucose (mmol/L)",
    "symptoms",
    "BMI (kg/m²)",
    "systolic BP (mmHg)",
    "diastolic BP (mmHg)",
    "insulin (µU/mL)",
    "C-peptide (nmol/L)",
    "GAD antibodies",
)
Target = Literal["auto", "binary", "multiclass"]
CsvFormat = Literal["pima", "table", "mapped"]


class DiagnosisError(ValueError):
    """A diagnosis request that cannot be carried out; the message says what to do."""


# ---------------------------------------------------------------------------- visit helpers
def visit_measurements(visit: NewVisit, *, anaemia_or_hb_disorder: bool = False) -> Measurements:
    """The guideline engine's input for a visit: each measurement in the unit it was entered in.

    A value stored before units were kept has the unit ``unknown`` (compared as stored, in %
    or mmol/L, with a note on every verdict).
    """
    values = {r.measurement: r.value for r in visit.entered}
    units = tuple((r.measurement, r.unit) for r in visit.entered)
    return Measurements(
        **values,
        units=units,
        symptoms=visit.symptoms,
        pregnant=visit.pregnant,
        treated=visit.treated,
        anaemia_or_hb_disorder=anaemia_or_hb_disorder,
        unit_confirmed=visit.unit_confirmed,
    )


def visit_from_entry(
    date: dt.date,
    *,
    hba1c_unit: str | None = None,
    glucose_unit: str | None = None,
    unit_confirmed: bool = False,
    **fields_: Any,
) -> NewVisit:
    """A visit from values as entered, each kept with its unit (no unit is assumed).

    ``fields_`` are measurements by name (``hba1c``, ``fpg``, ``ogtt_1h``, ``ogtt_2h``,
    ``random_glucose``, ``gct_1h``, ``ogtt100_0h`` … ``ogtt100_3h``) and the remaining
    :class:`~training.diagnosis.registry.NewVisit` fields (``symptoms``, ``pregnant``, ``bmi``,
    ...).

    Raises:
        MeasurementError: a value without its unit, an unknown unit, or a value that cannot
            be real or needs its unit confirmed, in the unit entered.
    """
    readings = {n: fields_.pop(n) for n in MEASUREMENTS if n in fields_}
    readings = {n: v for n, v in readings.items() if v is not None}
    # The engine checks every value in its unit and refuses a value without one.
    Measurements(
        **readings,
        hba1c_unit=hba1c_unit,
        glucose_unit=glucose_unit,
        unit_confirmed=unit_confirmed,
    )
    entered = tuple(
        Reading(n, float(v), hba1c_unit if n == "hba1c" else glucose_unit)  # type: ignore[arg-type]
        for n, v in readings.items()
    )
    return NewVisit(date=date, entered=entered, unit_confirmed=unit_confirmed, **fields_)


def _rules_settings(workspace: Path | str | None) -> int:
    """The 50 g screen cut-off of the workspace's settings."""
    from dataset.settings import get_settings

    overrides = {} if workspace is None else {"workspace": Path(workspace)}
    return get_settings(**overrides).gdm_screen_cutoff_mgdl


def earlier_results(visit: Visit, visits: Sequence[Visit]) -> list[EarlierResult]:
    """Diagnostic-range results of the patient's earlier visits, per guideline.

    A visit counts when it is of the same patient, dated on or before ``visit`` (entered
    earlier when on the same day), not on treatment, and at most :data:`REPEAT_WINDOW_DAYS`
    before it; a later visit never confirms an earlier one.
    """
    out: list[EarlierResult] = []
    for other in visits:
        if other.visit_id == visit.visit_id or other.patient_id != visit.patient_id:
            continue
        days = (visit.date - other.date).days
        if days < 0 or days > REPEAT_WINDOW_DAYS or other.treated:
            continue
        if days == 0 and other.created_at >= visit.created_at:
            continue
        try:
            results = evaluate_rules(visit_measurements(other))
        except MeasurementError:
            continue  # a stored value today's checks refuse confirms nothing
        for name, result in results.items():
            found = diagnostic_measurements(result)
            if found:
                out.append(EarlierResult(name, other.date.isoformat(), days, found))
    return out


def visit_rules(
    visit: Visit,
    registry: Registry | None = None,
    *,
    screen_cutoff_mgdl: int | None = None,
    anaemia_or_hb_disorder: bool = False,
) -> RuleResults:
    """WHO, ADA and NICE verdicts for a stored visit, each with ``repeat_test``.

    With ``registry``, an earlier visit of the patient in the diagnostic range (see
    :func:`earlier_results`) counts as the second sample; the 50 g screen cut-off comes from
    the workspace settings unless given.
    """
    earlier: list[EarlierResult] = []
    workspace = None
    if registry is not None:
        earlier = earlier_results(visit, registry.visits(visit.patient_id))
        workspace = registry.store.root
    cutoff = screen_cutoff_mgdl or _rules_settings(workspace)
    return evaluate_rules(
        visit_measurements(visit, anaemia_or_hb_disorder=anaemia_or_hb_disorder),
        screen_cutoff_mgdl=cutoff,
        earlier=earlier,
    )


def visit_summary(
    registry: Registry,
    visit: Visit,
    confirmed: Confirmation | None,
    history: Sequence[Confirmation] = (),
) -> dict:
    """One visit as the page and ``diagnosis show`` present it (JSON-ready).

    ``measurements`` lists each value as entered (value, unit; ``unknown`` for a unit not
    kept); ``guidelines`` gives each guideline's verdict, ``repeat_test`` and notes;
    ``history`` the clinician's confirmations, each with what the guidelines said then.
    """
    try:
        guidelines = visit_rules(visit, registry).to_json()
    except MeasurementError as err:
        # A value stored under older, looser checks: say why instead of failing the page.
        note = f"Cannot be judged: {err}. Correct the value and enter the visit again."
        guidelines = {
            name: {
                "verdict": "insufficient data",
                "repeat_test": "not applicable",
                "fired": [],
                "notes": [note],
            }
            for name in load_guidelines().guidelines
        }
    return {
        "visit_id": visit.visit_id,
        "date": visit.date.isoformat(),
        "pregnant": visit.pregnant,
        "pregnancy_week": visit.pregnancy_week,
        "treated": visit.treated,
        "treatment": visit.treatment,
        "symptoms": visit.symptoms,
        "unit_confirmed": visit.unit_confirmed,
        "measurements": [
            {**r.to_json(), "shown": str(r), "label": LABELS[r.measurement]} for r in visit.entered
        ],
        "other": {
            k: getattr(visit, k)
            for k in (
                "bmi",
                "systolic_bp",
                "diastolic_bp",
                "insulin_uu_ml",
                "c_peptide_nmol",
                "gad_positive",
            )
            if getattr(visit, k) is not None
        },
        "smear_ids": list(visit.smear_ids),
        "guidelines": guidelines,
        "diagnosis": None if confirmed is None else confirmed.diagnosis,
        "confirmed_by": None if confirmed is None else confirmed.confirmed_by,
        "history": [
            {
                "revision": c.revision,
                "diagnosis": c.diagnosis,
                "confirmed_by": c.confirmed_by,
                "confirmed_at": c.confirmed_at.isoformat(),
                "note": c.note,
                "guidelines": c.guideline_verdicts(),
            }
            for c in history
        ],
    }


def confirm_visit(
    registry: Registry, visit_id: str, diagnosis: str, *, by: str, note: str = ""
) -> Confirmation:
    """Record a clinician's diagnosis with what each guideline said (verdict, repeat test).

    Raises:
        RegistryError: unknown visit or diagnosis, or no clinician named.
    """
    visit = registry.visit(visit_id)
    said = {
        name: {"verdict": r.verdict, "repeat_test": r.repeat_test}
        for name, r in visit_rules(visit, registry).items()
    }
    return registry.confirm(visit_id, diagnosis, by=by, note=note, guidelines=said)


def patient_summary(registry: Registry, patient_id: str) -> dict[str, Any]:
    """A patient and every visit (:func:`visit_summary`), oldest first, with the disclaimer.

    Raises:
        RegistryError: no such patient.
    """
    patient = registry.patient(patient_id)
    histories = registry.histories(patient.patient_id)
    return {
        "patient": patient.patient_id,
        "sex": patient.sex,
        "birth_year": patient.birth_year,
        "visits": [
            visit_summary(
                registry,
                v,
                (histories.get(v.visit_id) or [None])[-1],
                histories.get(v.visit_id, ()),
            )
            for v in registry.visits(patient.patient_id)
        ],
        "repeat_window_days": REPEAT_WINDOW_DAYS,
        "disclaimer": DISCLAIMER,
    }


def smear_features(store: Store, smear_ids: Sequence[str]) -> dict[str, float]:
    """Class shares and counts of the linked smears, as classifier features.

    Reads the newest stored analysis of each smear (``python -m training analyze`` or the
    Analysis page store one per run) and averages each figure over the visit's analysed
    smears. Smears never analysed contribute nothing; with none analysed this returns ``{}``
    and the visit's smear features stay missing (imputed, with a "was missing" indicator).
    """
    from training.service.smear_analysis import latest_smear_features

    per_smear = list(latest_smear_features(store, smear_ids).values())
    names = dict.fromkeys(name for feats in per_smear for name in feats)
    out: dict[str, float] = {}
    for name in names:
        values = [f[name] for f in per_smear if name in f and not math.isnan(f[name])]
        out[f"smear: {name}"] = float(np.mean(values)) if values else math.nan
    return out


def visit_features(
    visit: NewVisit,
    *,
    sex: str | None = None,
    birth_year: int | None = None,
    store: Store | None = None,
) -> dict[str, float]:
    """One visit as named feature values (``NaN`` where not measured).

    Args:
        visit: The visit (stored or parsed from a CSV).
        sex: The patient's sex; birth_year: the patient's birth year (for the age).
        store: The workspace store, to read smear features of linked smears.

    Returns:
        The :data:`REGISTRY_FEATURES` in order, then any smear features of linked smears.
    """
    nan = float("nan")

    def num(value: float | None) -> float:
        return nan if value is None else float(value)

    values = (
        nan if birth_year is None else float(visit.date.year - birth_year),
        nan if sex is None else float(sex == "female"),
        float(visit.pregnant),
        num(visit.pregnancy_week),
        num(visit.hba1c_percent),
        num(visit.fpg_mmol),
        num(visit.ogtt_1h_mmol),
        num(visit.ogtt_2h_mmol),
        num(visit.random_glucose_mmol),
        float(visit.symptoms),
        num(visit.bmi),
        num(visit.systolic_bp),
        num(visit.diastolic_bp),
        num(visit.insulin_uu_ml),
        num(visit.c_peptide_nmol),
        nan if visit.gad_positive is None else float(visit.gad_positive),
    )
    out = dict(zip(REGISTRY_FEATURES, values, strict=True))
    if store is not None and visit.smear_ids:
        out.update(smear_features(store, visit.smear_ids))
    return out


def patient_forecast(
    registry: Registry,
    patient_id: str,
    *,
    today: dt.date | None = None,
    guideline: str = "ADA",
    horizon_years: float = 10,
) -> Forecast:
    """HbA1c and fasting-glucose trend of a registry patient, with threshold crossings.

    Raises:
        RegistryError: no such patient.
    """
    registry.patient(patient_id)
    points = [
        VisitPoint(
            date=v.date,
            hba1c_percent=v.hba1c_percent,
            fpg_mmol=v.fpg_mmol,
            pregnant=v.pregnant,
            treated=v.treated,
        )
        for v in registry.visits(patient_id)
    ]
    return forecast(
        points,
        today=today,
        horizon_years=horizon_years,
        thresholds=forecast_thresholds(guideline),
    )


# ---------------------------------------------------------------------------- training data
class DataSource(BaseModel):
    """Where training or evaluation rows come from: the registry (no ``csv``) or a CSV file.

    Formats: ``pima`` (the Pima Indians file), ``table`` (a header row, numeric feature
    columns and the ``outcome`` column), ``mapped`` (a visits CSV read with ``mapping``; its
    ``diagnosis`` column is the outcome).
    """

    model_config = ConfigDict(extra="forbid")

    csv: str | None = Field(None, description="CSV file; none: the registry")
    format: CsvFormat = Field("pima", description="pima, table or mapped")
    mapping: str | dict[str, Any] | None = Field(None, description="mapping JSON (mapped)")
    outcome: str | None = Field(None, description="outcome column (table)")
    target: Target = Field("auto", description="auto, binary or multiclass")
    all_visits: bool = Field(
        False, description="registry: every confirmed visit, not one per patient"
    )


@dataclass(frozen=True)
class TrainingSet:
    """Rows ready for the classifier and what to write about them in a model card.

    Attributes:
        data: Features, labels and class names.
        target: What the classes mean (for the card).
        notes: Caveats of the data (for the card and the page).
        card_data: Extra ``data`` fields of the card (table versions, file, format).
        row_ids: Visit ids (registry) or CSV row numbers, one per row of ``data``.
    """

    data: TabularData
    target: str
    notes: str
    card_data: dict[str, Any]
    row_ids: tuple[str, ...]


def training_set(source: DataSource, registry: Registry | None = None) -> TrainingSet:
    """The rows ``source`` describes.

    Raises:
        DiagnosisError: too few labelled rows, or a file that cannot be used.
    """
    if source.csv is None:
        if registry is None:
            raise DiagnosisError("Training from the registry needs the workspace's registry.")
        return registry_training_set(registry, source.target, all_visits=source.all_visits)
    return csv_training_set(source)


def _choose_classes(labels: list[str], target: Target) -> tuple[tuple[str, ...], str, str]:
    """(classes, target text, note) for confirmed diagnoses under ``target``."""
    counts = {d: labels.count(d) for d in DIAGNOSES if d in labels}
    binary_note = ""
    if target == "auto":
        rare = {d: n for d, n in counts.items() if n < MIN_ROWS_PER_CLASS}
        if len(counts) > 2 and not rare:
            target = "multiclass"
        else:
            target = "binary"
            if len(counts) > 2:
                shown = ", ".join(f"{d} {n}" for d, n in rare.items())
                binary_note = (
                    f"Trained diabetes / no diabetes: one class per diagnosis needs at least "
                    f"{MIN_ROWS_PER_CLASS} confirmed rows each ({shown})."
                )
    if target == "multiclass":
        classes = tuple(counts)
        if len(classes) < 2:
            raise DiagnosisError(
                f"Every confirmed diagnosis is {classes[0]!r}: confirm visits with other "
                "diagnoses before training."
            )
        return classes, "registry confirmed diagnosis (one class per diagnosis)", ""
    binary = ["diabetes" if d in DIABETES_DIAGNOSES else "no diabetes" for d in labels]
    if len(set(binary)) < 2:
        raise DiagnosisError(
            f"Every confirmed diagnosis is {binary[0]}: confirm visits of both kinds "
            "(with and without diabetes) before training."
        )
    return (
        BINARY_CLASSES,
        "registry confirmed diagnosis: diabetes (type 1, type 2, gestational, other) or not "
        "(normal, prediabetes)",
        binary_note,
    )


def registry_training_set(
    registry: Registry, target: Target = "auto", *, all_visits: bool = False
) -> TrainingSet:
    """Confirmed visits of the registry as training rows (latest confirmation wins).

    Args:
        registry: The workspace's registry.
        target: ``binary`` (diabetes or not), ``multiclass`` (one class per confirmed
            diagnosis) or ``auto`` (multiclass when each diagnosis has at least
            :data:`MIN_ROWS_PER_CLASS` rows).
        all_visits: Use every confirmed visit instead of each patient's latest one; then
            cross-validation can put one patient on both sides of a fold.

    Raises:
        DiagnosisError: no confirmed diagnoses, or only one class.
    """
    confirmed = registry.confirmed()
    if not confirmed:
        raise DiagnosisError(
            "No visit has a confirmed diagnosis yet: confirm diagnoses (page or "
            "`python -m training diagnosis confirm`) before training."
        )
    visits = {v.visit_id: v for v in registry.visits() if v.visit_id in confirmed}
    chosen = sorted(visits.values(), key=lambda v: (v.patient_id, v.date, v.created_at))
    if not all_visits:
        latest: dict[str, Visit] = {}
        for v in chosen:
            latest[v.patient_id] = v
        chosen = sorted(latest.values(), key=lambda v: (v.patient_id, v.date))
    labels = [confirmed[v.visit_id].diagnosis for v in chosen]
    classes, target_text, note = _choose_classes(labels, target)
    patients = {p.patient_id: p for p in registry.patients()}
    rows = [
        visit_features(
            v,
            sex=patients[v.patient_id].sex,
            birth_year=patients[v.patient_id].birth_year,
            store=registry.store,
        )
        for v in chosen
    ]
    names = list(dict.fromkeys(name for row in rows for name in row))
    X = np.array([[row.get(n, math.nan) for n in names] for row in rows], dtype=np.float64)
    # A feature nobody measured carries nothing and would only confuse the card.
    keep = ~np.isnan(X).all(axis=0)
    names = [n for n, k in zip(names, keep, strict=True) if k]
    X = X[:, keep]
    if classes == BINARY_CLASSES:
        y = [int(d in DIABETES_DIAGNOSES) for d in labels]
    else:
        y = [classes.index(d) for d in labels]
    notes = [note] if note else []
    if all_visits:
        notes.append("Several visits of one patient may be on both sides of a fold.")
    data = TabularData(
        X=X,
        y=np.asarray(y, dtype=np.int64),
        feature_names=tuple(names),
        classes=classes,
        source=f"registry of {registry.store.root}",
    )
    return TrainingSet(
        data=data,
        target=target_text,
        notes=" ".join(notes),
        card_data={
            "source": "registry",
            "table_versions": registry.table_versions(),
            "rows": "every confirmed visit" if all_visits else "latest confirmed visit per patient",
            "visit_ids": [v.visit_id for v in chosen],
        },
        row_ids=tuple(v.visit_id for v in chosen),
    )


def _load_mapping(mapping: str | dict[str, Any] | None) -> VisitMapping:
    if mapping is None:
        raise DiagnosisError("The mapped format needs a mapping (--mapping MAP.json).")
    if isinstance(mapping, dict):
        try:
            return VisitMapping.model_validate(mapping)
        except ValueError as err:
            raise DiagnosisError(f"The mapping is not valid: {err}") from None
    return VisitMapping.load(mapping)


def csv_training_set(source: DataSource) -> TrainingSet:
    """Rows of a CSV file (see :class:`DataSource` for the formats).

    Raises:
        DiagnosisError: missing options, unreadable file, or rows that cannot be used.
    """
    if source.csv is None:
        raise DiagnosisError("No CSV file given.")
    path = Path(source.csv)
    card_data: dict[str, Any] = {"source": "csv", "file": str(path), "format": source.format}
    try:
        if source.format == "pima":
            from training.diagnosis.pima import PIMA_NOTE, load_pima

            data = load_pima(path)
            target = "CSV column Outcome: diabetes found within about five years (Pima)"
            return TrainingSet(data, target, PIMA_NOTE, card_data, _row_numbers(data, 1))
        if source.format == "table":
            if not source.outcome:
                raise DiagnosisError("The table format needs the outcome column (--outcome).")
            data = load_csv(path, source.outcome)
            target = f"CSV column {source.outcome}"
            return TrainingSet(data, target, "", card_data, _row_numbers(data, 2))
    except (OSError, ValueError) as err:
        if isinstance(err, DiagnosisError):
            raise
        raise DiagnosisError(str(err)) from None
    mapping = _load_mapping(source.mapping)
    if "diagnosis" not in mapping.columns:
        raise DiagnosisError(
            "Training on a mapped CSV needs its diagnosis column mapped (columns.diagnosis)."
        )
    preview = parse_visits_csv(path, mapping)
    problems = list(preview.errors) + [
        RowError(r.row, mapping.columns["diagnosis"], "no diagnosis given.")
        for r in preview.rows
        if r.diagnosis is None
    ]
    if problems:
        shown = "; ".join(str(e) for e in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise DiagnosisError(f"{path}: fix or remove these rows before training: {shown}{more}")
    labels = [r.diagnosis or "" for r in preview.rows]
    classes, _, note = _choose_classes(labels, source.target)
    rows = [_row_features(r) for r in preview.rows]
    names = [n for n in REGISTRY_FEATURES if any(not math.isnan(row[n]) for row in rows)]
    X = np.array([[row[n] for n in names] for row in rows], dtype=np.float64)
    y = [
        int(d in DIABETES_DIAGNOSES) if classes == BINARY_CLASSES else classes.index(d)
        for d in labels
    ]
    data = TabularData(X, np.asarray(y, dtype=np.int64), tuple(names), classes, str(path))
    target = f"CSV column {mapping.columns['diagnosis']} as " + (
        "diabetes or not" if classes == BINARY_CLASSES else "one class per diagnosis"
    )
    return TrainingSet(data, target, note, card_data, tuple(str(r.row) for r in preview.rows))


def _row_numbers(data: TabularData, first: int) -> tuple[str, ...]:
    return tuple(str(first + i) for i in range(len(data.y)))


def _row_features(row: ParsedRow) -> dict[str, float]:
    return visit_features(row.visit, sex=row.sex, birth_year=row.birth_year)


# ---------------------------------------------------------------------------- training
class TrainRequest(DataSource):
    """One training run: the data, the model, cross-validation and classifier settings.

    ``classifier`` overrides fields of :class:`~training.diagnosis.classifier.ClassifierConfig`
    (e.g. ``{"max_epochs": 50, "inner_folds": 2}``). ``folds=0`` skips cross-validation.
    This is also the job's ``params``.
    """

    model: Literal["mlp", "logreg"] = Field("mlp", description="mlp or logreg")
    folds: int = Field(5, ge=0, description="cross-validation folds (0: none)")
    repeats: int = Field(1, ge=1, description="cross-validation repeats")
    seed: int = Field(0, description="seed of folds and training")
    classifier: dict[str, Any] = Field(default_factory=dict)
    notes: str = Field("", description="free text for the card")


@dataclass(frozen=True)
class StagedModel:
    """A fitted classifier written to a zoo staging folder, with its card, not yet added."""

    staging: Path
    card: ModelCard
    model: FittedClassifier
    report: CVReport | None
    training: TrainingSet


def _classifier_config(model: str, seed: int, overrides: dict[str, Any]) -> Any:
    from training.diagnosis.classifier import ClassifierConfig

    try:
        return ClassifierConfig(**{"model": model, "seed": seed, **overrides})
    except ValueError as err:
        raise DiagnosisError(f"Classifier settings are not valid: {err}") from None


def fit_and_stage(
    workspace: Path | str,
    request: TrainRequest,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> StagedModel:
    """Cross-validate the recipe, fit it on all rows, and write the checkpoint to staging.

    Args:
        workspace: The workspace (its registry is the data unless ``request.csv`` is set).
        request: What to train.
        on_progress: Called with ``(stage, done, total)``; stages ``cross-validation`` and
            ``final fit``.

    Raises:
        DiagnosisError: the data or settings cannot be used.
    """
    from model_zoo.card import ModelCard
    from model_zoo.zoo import Zoo
    from training.diagnosis.checkpoint import card_fields, save_classifier
    from training.diagnosis.classifier import fit_classifier
    from training.diagnosis.crossval import cross_validate
    from training.model import describe_machine

    started = time.perf_counter()
    registry = Registry.open(workspace) if request.csv is None else None
    training = training_set(request, registry)
    data = training.data
    config = _classifier_config(request.model, request.seed, request.classifier)
    counts = np.bincount(data.y, minlength=len(data.classes))
    notes = [training.notes, request.notes]
    folds = min(request.folds, int(counts.min()))
    report = None
    if folds >= 2:

        def progress(done: int, total: int) -> None:
            if on_progress is not None:
                on_progress("cross-validation", done, total)

        try:
            report = cross_validate(
                data,
                {request.model: config},
                folds=folds,
                repeats=request.repeats,
                seed=request.seed,
                on_progress=progress,
            )
        except ValueError as err:
            raise DiagnosisError(f"Cross-validation failed: {err}") from None
        if folds < request.folds:
            notes.append(f"Cross-validated with {folds} folds: the rarest class has {folds} rows.")
    elif request.folds:
        notes.append("Not cross-validated: a class has fewer than 2 rows.")
    if on_progress is not None:
        on_progress("final fit", 0, 1)
    try:
        model = fit_classifier(data.X, data.y, data.feature_names, data.classes, config)
    except ValueError as err:
        raise DiagnosisError(f"Training failed: {err}") from None
    if on_progress is not None:
        on_progress("final fit", 1, 1)
    card_values = card_fields(
        model, data, training.target, report, " ".join(n for n in notes if n).strip()
    )
    if report is not None:
        # Top-level means of the trained recipe, so zoo listings can show them side by side.
        summary = report.models[request.model].metrics
        card_values["metrics"] |= {name: s.mean for name, s in summary.items()}
    card_values["data"] |= training.card_data
    card_values["settings"] |= {"request": request.model_dump(mode="json")}
    zoo = Zoo(workspace)
    staging = zoo.staging_dir("diagnosis")
    save_classifier(model, staging)
    card = ModelCard(
        kind="diagnosis",
        duration_s=time.perf_counter() - started,
        machine=describe_machine("cpu"),
        **card_values,
    )
    return StagedModel(staging, card, model, report, training)


def train(
    workspace: Path | str,
    request: TrainRequest,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> ModelCard:
    """Train and add the classifier to the zoo (current when the kind has no current model).

    Returns:
        The stored card, with its model id.
    """
    from model_zoo.zoo import Zoo

    staged = fit_and_stage(workspace, request, on_progress)
    return Zoo(workspace).add("diagnosis", staged.staging, staged.card)


def train_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Job target (``training.diagnosis.service:train_job``): train from ``params``.

    ``params`` is a :class:`TrainRequest`. The model is handed to the job context, which adds
    it to the zoo only when the job ends well.
    """
    request = TrainRequest.model_validate(params)

    def progress(stage: str, done: int, total: int) -> None:
        ctx.progress(stage=stage, done=done, total=total)

    ctx.log(f"training a {request.model} on {request.csv or 'the registry'}")
    staged = fit_and_stage(ctx.workspace, request, progress)
    ctx.add_model("diagnosis", staged.staging, staged.card)
    ctx.log("done: " + ", ".join(f"{k} {v:.3f}" for k, v in _scalars(staged.card.metrics)))
    return {
        "classes": staged.card.classes,
        "target": staged.card.settings.get("target"),
        "features": staged.card.settings.get("features"),
        "metrics": {k: v for k, v in _scalars(staged.card.metrics)},
        "notes": staged.card.notes,
    }


def submit_training(workspace: Path | str, request: TrainRequest) -> JobStatus:
    """Queue a training job (see :func:`train_job`); returns its status at once."""
    from training.jobs import JobRunner

    params = request.model_dump(mode="json")
    if request.csv is not None:
        # The job runs from the project root: a relative path would point elsewhere.
        params["csv"] = str(Path(request.csv).resolve())
    if isinstance(request.mapping, str):
        params["mapping"] = str(Path(request.mapping).resolve())
    return JobRunner(workspace).submit(TRAIN_JOB_KIND, TRAIN_JOB_TARGET, params)


def _scalars(metrics: dict[str, Any]) -> list[tuple[str, float]]:
    return [
        (k, float(v))
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]


def evaluate(
    workspace: Path | str,
    source: DataSource,
    *,
    folds: int = 10,
    repeats: int = 5,
    models: Sequence[str] = ("mlp", "logreg"),
    seed: int = 0,
    classifier: dict[str, Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> CVReport:
    """Repeated stratified cross-validation of the models on the registry or a CSV.

    Raises:
        DiagnosisError: the data cannot be used, or a class has fewer rows than folds.
    """
    from training.diagnosis.crossval import cross_validate

    registry = Registry.open(workspace) if source.csv is None else None
    data = training_set(source, registry).data
    configs = {name: _classifier_config(name, seed, classifier or {}) for name in models}
    try:
        return cross_validate(
            data, configs, folds=folds, repeats=repeats, seed=seed, on_progress=on_progress
        )
    except ValueError as err:
        raise DiagnosisError(str(err)) from None


# ---------------------------------------------------------------------------- prediction
def load_model(
    workspace: Path | str, model_id: str | None = None
) -> tuple[ModelCard, FittedClassifier]:
    """A diagnosis model of the zoo: ``model_id``, else the current one.

    Raises:
        DiagnosisError: no diagnosis model yet, or the id is not a diagnosis model.
    """
    from model_zoo.zoo import UnknownModelError, Zoo
    from training.diagnosis.checkpoint import load_classifier

    zoo = Zoo(workspace)
    if model_id is None:
        card = zoo.current("diagnosis")
        if card is None:
            raise DiagnosisError(
                "No diagnosis model yet: train one (`python -m training diagnosis train`)."
            )
    else:
        try:
            card = zoo.get(model_id)
        except UnknownModelError as err:
            raise DiagnosisError(str(err)) from None
        if card.kind != "diagnosis":
            raise DiagnosisError(f"Model {model_id} is a {card.kind} model, not a diagnosis one.")
    return card, load_classifier(zoo.path(card.model_id))


def model_warnings(model: FittedClassifier) -> list[str]:
    """What the page and the CLI must say about what this model can and cannot tell."""
    warnings = []
    types = type_distinction_warning(model.classes, model.feature_names)
    if types:
        warnings.append(types)
    elif tuple(model.classes) == BINARY_CLASSES:
        warnings.append(
            "This model tells diabetes from no diabetes only; it does not tell the types of "
            "diabetes apart."
        )
    return warnings


def _align(
    X: np.ndarray, names: Sequence[str], model: FittedClassifier
) -> tuple[np.ndarray, list[str]]:
    """Columns of ``X`` in the model's feature order; features the rows lack become NaN."""
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in model.feature_names if n not in index]
    if len(missing) == len(model.feature_names):
        raise DiagnosisError(
            f"None of the model's features ({', '.join(model.feature_names)}) is in the data "
            f"given ({', '.join(names)}): the model was trained on data of another kind. Use "
            "a model trained on data like this one."
        )
    out = np.full((X.shape[0], len(model.feature_names)), np.nan)
    for j, name in enumerate(model.feature_names):
        if name in index:
            out[:, j] = X[:, index[name]]
    return out, missing


@dataclass(frozen=True)
class VisitPrediction:
    """The classifier's view of one visit: probabilities, explanation and caveats."""

    model_id: str
    probabilities: dict[str, float]
    predicted: str
    explanation: Explanation
    warnings: tuple[str, ...]


def predict_visit(
    workspace: Path | str,
    registry: Registry,
    visit: Visit,
    model_id: str | None = None,
    *,
    loaded: tuple[ModelCard, FittedClassifier] | None = None,
) -> VisitPrediction:
    """Calibrated class probabilities of a registry visit, explained feature by feature.

    Args:
        workspace: The workspace whose zoo holds the model.
        registry: The workspace's registry (for the patient's sex and birth year).
        visit: The visit to predict.
        model_id: The model; None: the current diagnosis model.
        loaded: What :func:`load_model` returned, to reuse a model loaded once.

    Raises:
        DiagnosisError: no diagnosis model, or the visit shares no feature with the model.
    """
    from training.diagnosis.explain import explain

    card, model = loaded if loaded is not None else load_model(workspace, model_id)
    patient = registry.patient(visit.patient_id)
    feats = visit_features(
        visit, sex=patient.sex, birth_year=patient.birth_year, store=registry.store
    )
    names = list(feats)
    X, missing = _align(np.array([[feats[n] for n in names]]), names, model)
    proba = model.predict_proba(X)[0]
    predicted = model.classes[int(proba.argmax())]
    warnings = model_warnings(model)
    if missing:
        warnings.append(
            f"Features the model uses but a visit cannot give: {', '.join(missing)} "
            "(the training median was used)."
        )
    return VisitPrediction(
        model_id=card.model_id,
        probabilities={c: float(p) for c, p in zip(model.classes, proba, strict=True)},
        predicted=predicted,
        explanation=explain(model, X[0], target=predicted),
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class PredictionReport:
    """Predictions for the rows of a file, and metrics when the file has an outcome."""

    model_id: str
    classes: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    metrics: dict[str, float | None] | None
    warnings: tuple[str, ...]
    errors: tuple[dict[str, Any], ...]
    outcome: str = ""

    def to_json(self) -> dict[str, Any]:
        """``{"model_id", "outcome", "rows": [{"row", "probabilities", "predicted"}],
        "metrics", "warnings", "errors"}``; ``outcome`` is what the model's classes mean (from
        its card); ``metrics`` is null when the file has no outcome."""
        return {
            "model_id": self.model_id,
            "outcome": self.outcome,
            "rows": list(self.rows),
            "metrics": self.metrics,
            "warnings": list(self.warnings),
            "errors": list(self.errors),
        }


def predict_file(
    workspace: Path | str,
    path: Path | str,
    fmt: CsvFormat,
    *,
    mapping: str | dict[str, Any] | None = None,
    outcome: str | None = None,
    model_id: str | None = None,
) -> PredictionReport:
    """Predict every row of a CSV; ROC AUC, accuracy and more when it has an outcome.

    ``pima`` files always have their outcome; ``table`` files when ``outcome`` is given;
    ``mapped`` files when their diagnosis column is mapped. A mapped row with an impossible
    value is not predicted and is listed in ``errors``.

    Raises:
        DiagnosisError: no model, unreadable file, or no feature in common with the model.
    """
    from training.diagnosis.crossval import classification_metrics

    card, model = load_model(workspace, model_id)
    path = Path(path)
    errors: list[dict[str, Any]] = []
    labels: list[str] | None = None
    try:
        if fmt == "pima":
            from training.diagnosis.pima import load_pima

            data = load_pima(path)
            X, names = data.X, list(data.feature_names)
            row_numbers = list(range(1, len(data.y) + 1))
            labels = [data.classes[i] for i in data.y]
        elif fmt == "table":
            X, names, row_numbers, labels = _read_table(path, outcome)
        else:
            preview = parse_visits_csv(path, _load_mapping(mapping))
            errors = [e.to_json() for e in preview.errors]
            feats = [_row_features(r) for r in preview.rows]
            names = list(REGISTRY_FEATURES)
            X = np.array([[f[n] for n in names] for f in feats], dtype=np.float64).reshape(
                len(feats), len(names)
            )
            row_numbers = [r.row for r in preview.rows]
            if all(r.diagnosis is not None for r in preview.rows) and preview.rows:
                labels = [r.diagnosis or "" for r in preview.rows]
    except (OSError, ValueError) as err:
        if isinstance(err, DiagnosisError):
            raise
        raise DiagnosisError(str(err)) from None
    X, missing = _align(X, names, model)
    warnings = model_warnings(model)
    if missing:
        warnings.append(
            f"The file lacks features the model uses: {', '.join(missing)}; the training "
            "medians were used."
        )
    proba = model.predict_proba(X) if len(X) else np.zeros((0, len(model.classes)))
    rows = tuple(
        {
            "row": n,
            "probabilities": {c: float(p) for c, p in zip(model.classes, ps, strict=True)},
            "predicted": model.classes[int(ps.argmax())],
        }
        for n, ps in zip(row_numbers, proba, strict=True)
    )
    metrics = None
    if labels is not None and len(labels):
        y, why = _labels_to_classes(labels, model.classes)
        if y is None:
            warnings.append(f"No metrics: {why}")
        else:
            raw = classification_metrics(proba, y)
            metrics = {k: (None if math.isnan(v) else v) for k, v in raw.items()}
            metrics["n_rows"] = len(y)
    outcome = card.settings.get("target") or "not recorded in the model's card"
    return PredictionReport(
        card.model_id, model.classes, rows, metrics, tuple(warnings), tuple(errors), outcome
    )


def _read_table(
    path: Path, outcome: str | None
) -> tuple[np.ndarray, list[str], list[int], list[str] | None]:
    """Feature columns (and the outcome when named) of a CSV with a header row."""
    if outcome:
        data = load_csv(path, outcome)
        labels = [data.classes[i] for i in data.y]
        return data.X, list(data.feature_names), list(range(2, len(data.y) + 2)), labels
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        names = [h.strip() for h in next(reader, [])]
        rows, numbers = [], []
        for row_no, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(names):
                raise DiagnosisError(
                    f"{path}, row {row_no}: {len(cells)} cells but the header has {len(names)}."
                )
            rows.append([_number(c, path, row_no, n) for c, n in zip(cells, names, strict=True)])
            numbers.append(row_no)
    if not names:
        raise DiagnosisError(f"{path} is empty; it needs a header row.")
    X = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    return X, names, numbers, None


def _number(text: str, path: Path, row: int, column: str) -> float:
    try:
        return parse_number(text, f"{path}, row {row}", column)
    except ValueError as err:
        raise DiagnosisError(f"{err}.") from None


def _labels_to_classes(
    labels: Sequence[str], classes: Sequence[str]
) -> tuple[np.ndarray | None, str]:
    """Outcome values as indices of the model's classes (diagnoses fold into a binary model)."""
    out = []
    for value in labels:
        if value in classes:
            out.append(list(classes).index(value))
        elif tuple(classes) == BINARY_CLASSES and value in DIAGNOSES:
            out.append(int(value in DIABETES_DIAGNOSES))
        elif tuple(classes) == BINARY_CLASSES and value in ("0", "1"):
            out.append(int(value))
        else:
            return None, f"outcome value {value!r} is not one of the model's classes {classes}."
    return np.asarray(out, dtype=np.int64), ""
