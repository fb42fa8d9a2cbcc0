"""What a trained diagnosis classifier says about a registry visit or the rows of a file.

Promises:
    * Probabilities are calibrated, each visit's explained feature by feature; features the
      model uses but the data lacks are filled with the training medians, and the result
      says which.
    * Every prediction carries the model's caveats (:func:`model_warnings`): a binary model
      does not tell the types of diabetes apart, and one trained to tell type 1 from type 2
      without C-peptide, islet antibodies or the age at onset says so.
    * Data sharing no feature with the model is refused, not predicted.
    * A file with an outcome gets ROC AUC, accuracy and more; a mapped row with an impossible
      value is not predicted and is listed in ``errors``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.diagnosis.features import load_csv, type_distinction_warning
from training.diagnosis.numbers import first_bad, read_csv_cells, read_number_table
from training.diagnosis.registry import (
    DIABETES_DIAGNOSES,
    DIAGNOSES,
    Registry,
    Visit,
    parse_visits_csv,
)
from training.diagnosis.service.feature_rows import REGISTRY_FEATURES, row_features, visit_features
from training.diagnosis.service.training_data import (
    BINARY_CLASSES,
    CsvFormat,
    DiagnosisError,
    load_mapping,
)

if TYPE_CHECKING:
    from model_zoo.card import ModelCard
    from training.diagnosis.classifier import FittedClassifier
    from training.diagnosis.explain import Explanation

__all__ = [
    "PredictionReport",
    "VisitPrediction",
    "load_model",
    "model_warnings",
    "predict_file",
    "predict_visit",
]


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
            preview = parse_visits_csv(path, load_mapping(mapping))
            errors = [e.to_json() for e in preview.errors]
            feats = [row_features(r) for r in preview.rows]
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
    try:
        table = read_csv_cells(path)
    except ValueError as err:
        raise DiagnosisError(f"{err}.") from None
    names, rows, numbers = table.header, table.rows, table.lines
    if not names:
        raise DiagnosisError(f"{path} is empty; it needs a header row.")
    X, bad = read_number_table(rows, numbers, range(len(names)), names)
    if bad:
        raise DiagnosisError(f"{path}, {first_bad(bad, names)}")
    return X, names, numbers, None


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
