"""Repeated stratified k-fold cross-validation of the diagnosis classifiers, side by side.

The promise: every model is fitted by :func:`~training.diagnosis.classifier.fit_classifier` on
the training folds alone (imputation, scaling, early stopping and calibration included), and
scored on the rows it never saw. Out-of-fold predictions of one repeat are pooled before the
metrics are computed; the spread reported is the standard deviation across repeats. All
models see the same folds, so their per-repeat figures can be compared pairwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.stats import rankdata

from training.diagnosis.calibration import expected_calibration_error, reliability_bins
from training.diagnosis.classifier import ClassifierConfig, fit_classifier, stratified_kfold
from training.diagnosis.features import TabularData

__all__ = [
    "METRICS",
    "CVReport",
    "MetricSummary",
    "ModelReport",
    "ReliabilityBin",
    "classification_metrics",
    "confusion_matrix",
    "cross_validate",
    "default_configs",
    "roc_auc",
    "stratified_kfold",
]

METRICS = ("roc_auc", "accuracy", "balanced_accuracy", "brier", "ece")


def roc_auc(proba: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); macro one-vs-rest for several classes.

    Classes absent from ``y`` are skipped; ``NaN`` when no class can be scored.

    Shape:
        proba: (n_rows, n_classes); y: (n_rows,).
    """
    n_classes = proba.shape[1]
    columns = [1] if n_classes == 2 else range(n_classes)
    aucs = []
    for c in columns:
        positive = y == c
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = rankdata(proba[:, c])
        aucs.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else float("nan")


def confusion_matrix(y: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts with true classes in rows and predicted classes in columns.

    Shape:
        y, predicted: (n_rows,) -> (n_classes, n_classes), int64.
    """
    return np.bincount(y * n_classes + predicted, minlength=n_classes**2).reshape(
        n_classes, n_classes
    )


def classification_metrics(proba: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """ROC AUC, accuracy, balanced accuracy, Brier score and ECE (10 equal-width bins).

    The Brier score is the mean squared error of P(second class) for two classes, and the
    mean over rows of the summed squared error of all class probabilities otherwise.

    Shape:
        proba: (n_rows, n_classes); y: (n_rows,).
    """
    n_classes = proba.shape[1]
    predicted = proba.argmax(axis=1)
    matrix = confusion_matrix(y, predicted, n_classes)
    present = matrix.sum(axis=1) > 0
    recalls = np.diag(matrix)[present] / matrix.sum(axis=1)[present]
    if n_classes == 2:
        brier = float(np.mean((proba[:, 1] - (y == 1)) ** 2))
    else:
        brier = float(np.mean(np.sum((proba - np.eye(n_classes)[y]) ** 2, axis=1)))
    return {
        "roc_auc": roc_auc(proba, y),
        "accuracy": float(np.mean(predicted == y)),
        "balanced_accuracy": float(np.mean(recalls)),
        "brier": brier,
        "ece": expected_calibration_error(proba, y, n_bins=10),
    }


class MetricSummary(BaseModel):
    """One metric across repeats: mean, sample standard deviation and each repeat's value."""

    model_config = ConfigDict(frozen=True)

    mean: float
    sd: float
    per_repeat: list[float]


class ReliabilityBin(BaseModel):
    """One equal-width bin of predicted probability, pooled over all repeats."""

    model_config = ConfigDict(frozen=True)

    lower: float
    mean_predicted: float
    observed: float
    count: int


class ModelReport(BaseModel):
    """Cross-validated figures of one model."""

    model_config = ConfigDict(frozen=True)

    config: ClassifierConfig
    metrics: dict[str, MetricSummary]
    confusion_matrix: list[list[float]]
    reliability: list[ReliabilityBin]
    mean_best_epoch: float
    seconds: float


class CVReport(BaseModel):
    """Repeated stratified k-fold results of several models on the same folds."""

    model_config = ConfigDict(frozen=True)

    source: str
    feature_names: list[str]
    classes: list[str]
    class_counts: dict[str, int]
    n_rows: int
    folds: int
    repeats: int
    seed: int
    seconds: float
    models: dict[str, ModelReport]

    def table(self) -> str:
        """The models side by side, one metric a row, as ``mean ± sd`` across repeats."""
        names = list(self.models)
        width = max(18, *(len(n) + 2 for n in names))
        lines = [f"{'metric':<20}" + "".join(f"{n:>{width}}" for n in names)]
        for metric in METRICS:
            cells = []
            for n in names:
                s = self.models[n].metrics[metric]
                cells.append(f"{s.mean:.3f} ± {s.sd:.3f}".rjust(width))
            lines.append(f"{metric:<20}" + "".join(cells))
        lines.append(
            f"{'seconds':<20}" + "".join(f"{self.models[n].seconds:>{width}.1f}" for n in names)
        )
        for n in names:
            lines.append(
                f"confusion matrix of {n} (rows true, columns predicted; mean per repeat):"
            )
            for cls, row in zip(self.classes, self.models[n].confusion_matrix, strict=True):
                lines.append(f"  {cls:<18}" + "".join(f"{v:>10.1f}" for v in row))
        return "\n".join(lines)


def default_configs(seed: int = 0) -> dict[str, ClassifierConfig]:
    """The MLP and its logistic-regression baseline, trained the same way."""
    return {
        "mlp": ClassifierConfig(model="mlp", seed=seed),
        "logreg": ClassifierConfig(model="logreg", seed=seed),
    }


def cross_validate(
    data: TabularData,
    configs: Mapping[str, ClassifierConfig] | None = None,
    folds: int = 10,
    repeats: int = 5,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
) -> CVReport:
    """Repeated stratified k-fold cross-validation of each config on the same folds.

    Args:
        data: Rows, labels, feature and class names.
        configs: Models to compare by name (default: :func:`default_configs`).
        folds: Folds per repeat.
        repeats: Independent reshuffles into folds.
        seed: Seed of the fold assignment; fold ``f`` of repeat ``r`` trains each model with
            seed ``config.seed + 1000 * r + f``.
        on_progress: Called with ``(fits done, fits in total)`` after each fit.

    Raises:
        ValueError: When a class has fewer rows than there are folds.
    """
    configs = dict(configs or default_configs(seed))
    counts = np.bincount(data.y, minlength=len(data.classes))
    if folds < 2 or repeats < 1:
        raise ValueError(
            f"need at least 2 folds and 1 repeat, got {folds} folds, {repeats} repeats"
        )
    if counts.min() < folds:
        rare = data.classes[int(counts.argmin())]
        raise ValueError(
            f"class {rare!r} has only {counts.min()} rows, fewer than the {folds} folds; "
            f"use at most {counts.min()} folds or add rows"
        )
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_classes = len(data.classes)
    total, done = len(configs) * folds * repeats, 0
    per_repeat: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    matrices = {name: np.zeros((n_classes, n_classes)) for name in configs}
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in configs}
    epochs: dict[str, list[int]] = {name: [] for name in configs}
    seconds = dict.fromkeys(configs, 0.0)
    for repeat in range(repeats):
        assignment = stratified_kfold(data.y, folds, rng)
        oof = {name: np.zeros((len(data.y), n_classes)) for name in configs}
        for fold in range(folds):
            train, test = assignment != fold, assignment == fold
            for name, config in configs.items():
                fold_config = config.model_copy(update={"seed": config.seed + 1000 * repeat + fold})
                model = fit_classifier(
                    data.X[train], data.y[train], data.feature_names, data.classes, fold_config
                )
                oof[name][test] = model.predict_proba(data.X[test])
                epochs[name].append(model.history.best_epoch)
                seconds[name] += model.history.seconds
                done += 1
                if on_progress is not None:
                    on_progress(done, total)
        for name in configs:
            per_repeat[name].append(classification_metrics(oof[name], data.y))
            matrices[name] += confusion_matrix(data.y, oof[name].argmax(axis=1), n_classes)
            pooled[name].append((oof[name], data.y))
    models = {}
    for name, config in configs.items():
        summaries = {}
        for metric in METRICS:
            values = [r[metric] for r in per_repeat[name]]
            sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            summaries[metric] = MetricSummary(mean=float(np.mean(values)), sd=sd, per_repeat=values)
        proba = np.concatenate([p for p, _ in pooled[name]])
        labels = np.concatenate([t for _, t in pooled[name]])
        models[name] = ModelReport(
            config=config,
            metrics=summaries,
            confusion_matrix=(matrices[name] / repeats).tolist(),
            reliability=[
                ReliabilityBin(lower=lo, mean_predicted=p, observed=o, count=n)
                for lo, p, o, n in reliability_bins(proba, labels, 10)
            ],
            mean_best_epoch=float(np.mean(epochs[name])),
            seconds=seconds[name],
        )
    return CVReport(
        source=data.source,
        feature_names=list(data.feature_names),
        classes=list(data.classes),
        class_counts=data.class_counts,
        n_rows=len(data.y),
        folds=folds,
        repeats=repeats,
        seed=seed,
        seconds=time.perf_counter() - started,
        models=models,
    )
