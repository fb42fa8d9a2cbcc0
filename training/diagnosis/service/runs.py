"""Diagnosis classifier training runs: cross-validate a recipe, fit it on every row, and stage
the checkpoint for the model zoo, in-process or as a job of the job runner.

Promises:
    * A trained classifier is a model-zoo checkpoint of kind ``"diagnosis"`` (safetensors,
      config, card with target, features, cross-validated metrics and training data); the zoo
      makes it current when there is none.
    * In a job (:func:`train_job`) the checkpoint is handed to the job context, which adds it
      to the zoo only when the job ends well.
    * A model asked to tell type 1 from type 2 diabetes without C-peptide, islet antibodies or
      the age at onset carries a warning in its card.
    * Settings or data that cannot be used raise
      :class:`~training.diagnosis.service.training_data.DiagnosisError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from dataset import audit
from dataset.roles import Actor
from training.diagnosis.registry import Registry
from training.diagnosis.service.training_data import (
    DataSource,
    DiagnosisError,
    TrainingSet,
    training_set,
)
from training.kinds import TRAIN_DIAGNOSIS, target_of

if TYPE_CHECKING:
    from model_zoo.card import ModelCard
    from training.diagnosis.classifier import FittedClassifier
    from training.diagnosis.crossval import CVReport
    from training.jobs import JobContext, JobStatus

__all__ = [
    "TRAIN_JOB_KIND",
    "TRAIN_JOB_TARGET",
    "StagedModel",
    "TrainRequest",
    "classifier_config",
    "fit_and_stage",
    "submit_training",
    "train",
    "train_job",
]

TRAIN_JOB_KIND = TRAIN_DIAGNOSIS
TRAIN_JOB_TARGET = target_of(TRAIN_DIAGNOSIS)


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


def classifier_config(model: str, seed: int, overrides: dict[str, Any]) -> Any:
    """The :class:`~training.diagnosis.classifier.ClassifierConfig` of a request, or a
    :class:`DiagnosisError` naming what is not valid."""
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
    config = classifier_config(request.model, request.seed, request.classifier)
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
    *,
    actor: Actor,
) -> ModelCard:
    """Train and add the classifier to the zoo (current when the kind has no current model).

    Args:
        actor: Who trains; the role must allow ``train``. The audit trail gets a
            ``train_start`` row as it starts, and a ``promote`` row by ``system`` when the
            new model becomes current by itself.

    Returns:
        The stored card, with its model id.

    Raises:
        dataset.roles.PermissionDenied: The actor's role may not train (nothing is trained).
    """
    from model_zoo.zoo import Zoo

    name = audit.authorise(actor, "train", "train_start")

    audit.record(
        workspace,
        actor=name,
        action="train_start",
        object_id=TRAIN_JOB_KIND,
        detail={"kind": TRAIN_JOB_KIND, "model": request.model, "background": False},
    )
    staged = fit_and_stage(workspace, request, on_progress)
    zoo = Zoo(workspace)
    before = zoo.current("diagnosis")
    card = zoo.add("diagnosis", staged.staging, staged.card)
    now = zoo.current("diagnosis")
    if now is not None and now.model_id == card.model_id:
        audit.record(
            workspace,
            actor=audit.SYSTEM,
            action="promote",
            object_id=card.model_id,
            before=None if before is None else before.model_id,
            after=card.model_id,
            detail={"kind": "diagnosis", "automatic": True},
        )
    return card


def train_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Job target (``training.diagnosis.service.runs:train_job``): train from ``params``.

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


def submit_training(workspace: Path | str, request: TrainRequest, *, actor: Actor) -> JobStatus:
    """Queue a training job (see :func:`train_job`); returns its status at once.

    ``actor`` (who queues it) must have a role that may ``train``; it is recorded in the audit
    trail as a ``train_start`` row.

    Raises:
        dataset.roles.PermissionDenied: The actor's role may not train (nothing is queued).
    """
    from training.jobs import JobRunner

    name = audit.authorise(actor, "train", "train_start")
    params = request.model_dump(mode="json")
    if request.csv is not None:
        # The job runs from the project root: a relative path would point elsewhere.
        params["csv"] = str(Path(request.csv).resolve())
    if isinstance(request.mapping, str):
        params["mapping"] = str(Path(request.mapping).resolve())
    status = JobRunner(workspace).submit(TRAIN_JOB_KIND, TRAIN_JOB_TARGET, params)
    audit.record(
        workspace,
        actor=name,
        action="train_start",
        object_id=status.job_id,
        detail={"kind": TRAIN_JOB_KIND, "model": request.model, "background": True},
    )
    return status


def _scalars(metrics: dict[str, Any]) -> list[tuple[str, float]]:
    return [
        (k, float(v))
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
