"""Comparing classifier recipes on the registry or a CSV by repeated stratified
cross-validation, without training a model for the zoo.

Promises:
    * The rows are those training would use (:func:`training_set`), so an evaluation and a
      training run on the same source see the same data.
    * Data that cannot be used, or a class with fewer rows than folds, raises
      :class:`DiagnosisError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.diagnosis.registry import Registry
from training.diagnosis.service.runs import classifier_config
from training.diagnosis.service.training_data import DataSource, DiagnosisError, training_set

if TYPE_CHECKING:
    from training.diagnosis.crossval import CVReport

__all__ = ["evaluate"]


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
    configs = {name: classifier_config(name, seed, classifier or {}) for name in models}
    try:
        return cross_validate(
            data, configs, folds=folds, repeats=repeats, seed=seed, on_progress=on_progress
        )
    except ValueError as err:
        raise DiagnosisError(str(err)) from None
