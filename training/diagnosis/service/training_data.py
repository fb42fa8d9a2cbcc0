"""Where the classifier's rows come from: the registry's confirmed diagnoses or a CSV file.

Promises:
    * Labels are the clinician's confirmed diagnoses (never the guideline thresholds) or a
      CSV's outcome column; Pima data is read from its file only and never stored as
      confirmed diagnoses.
    * From the registry, one row per patient (the latest confirmed visit) by default, so
      cross-validation never has the same person on both sides of a fold.
    * The target is diabetes / no diabetes, or the confirmed diagnoses themselves when every
      one of them has at least :data:`MIN_ROWS_PER_CLASS` rows (``target="auto"``); the
      :class:`TrainingSet` says which and why, for the card.
    * Data that cannot be used raises :class:`DiagnosisError` saying what to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from training.diagnosis.features import TabularData, load_csv
from training.diagnosis.registry import (
    DIABETES_DIAGNOSES,
    DIAGNOSES,
    Registry,
    RowError,
    Visit,
    VisitMapping,
    parse_visits_csv,
)
from training.diagnosis.service.feature_rows import REGISTRY_FEATURES, row_features, visit_features

__all__ = [
    "BINARY_CLASSES",
    "MIN_ROWS_PER_CLASS",
    "CsvFormat",
    "DataSource",
    "DiagnosisError",
    "Target",
    "TrainingSet",
    "csv_training_set",
    "load_mapping",
    "registry_training_set",
    "training_set",
]

BINARY_CLASSES: tuple[str, str] = ("no diabetes", "diabetes")
# Several classes need this many confirmed rows each; fewer and ``auto`` trains binary.
MIN_ROWS_PER_CLASS = 10
Target = Literal["auto", "binary", "multiclass"]
CsvFormat = Literal["pima", "table", "mapped"]


class DiagnosisError(ValueError):
    """A diagnosis request that cannot be carried out; the message says what to do."""


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


def load_mapping(mapping: str | dict[str, Any] | None) -> VisitMapping:
    """The column mapping of a mapped CSV: a JSON file's path, or the mapping itself."""
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
    mapping = load_mapping(source.mapping)
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
    rows = [row_features(r) for r in preview.rows]
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
