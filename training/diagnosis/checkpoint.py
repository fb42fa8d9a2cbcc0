"""A fitted diagnosis classifier as a checkpoint folder, and the fields of its model card.

The promise: :func:`save_classifier` writes ``config.json`` (what to build: the classifier
config, features, classes, which features have missing indicators) and ``model.safetensors``
(network weights plus the fitted medians, means, standard deviations, missing rates and
calibration as tensors); :func:`load_classifier` rebuilds a classifier that predicts exactly
what the saved one did. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from safetensors.torch import load_file, save_file

from training.diagnosis.calibration import CalibrationParams
from training.diagnosis.classifier import (
    ClassifierConfig,
    FittedClassifier,
    TrainingHistory,
    build_network,
)
from training.diagnosis.crossval import CVReport
from training.diagnosis.features import Preprocessor, TabularData, type_distinction_warning

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "card_fields", "load_classifier", "save_classifier"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_FORMAT = "smearlab-diagnosis-classifier"
_NET = "network."
_PRE = "preprocess."
_CAL = "calibration."


class ClassifierFile(BaseModel):
    """The ``config.json`` of a diagnosis checkpoint."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["smearlab-diagnosis-classifier"] = _FORMAT
    version: Literal[1] = 1
    config: ClassifierConfig
    feature_names: list[str]
    classes: list[str]
    n_inputs: int
    indicator_features: list[int]
    calibration: str
    history: dict[str, Any]


def save_classifier(model: FittedClassifier, folder: Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created if missing).

    Args:
        model: The fitted classifier.
        folder: Checkpoint folder, e.g. a model zoo staging folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pre = model.preprocessor
    tensors = {
        _NET + k: v.detach().cpu().contiguous() for k, v in model.network.state_dict().items()
    }
    for name in ("medians", "means", "stds", "missing_rates"):
        tensors[_PRE + name] = torch.from_numpy(np.asarray(getattr(pre, name), dtype=np.float64))
    tensors[_CAL + "scale"] = torch.from_numpy(np.asarray(model.calibration.scale, np.float64))
    tensors[_CAL + "bias"] = torch.from_numpy(np.asarray(model.calibration.bias, np.float64))
    meta = ClassifierFile(
        config=model.config,
        feature_names=list(model.feature_names),
        classes=list(model.classes),
        n_inputs=len(pre.output_names),
        indicator_features=[int(i) for i in pre.indicator_features],
        calibration=model.calibration.method,
        history=_history_dict(model.history),
    )
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": _FORMAT})
    (folder / CONFIG_FILE).write_text(meta.model_dump_json(indent=2), encoding="utf-8")


def load_classifier(folder: Path) -> FittedClassifier:
    """Rebuild a classifier saved by :func:`save_classifier`.

    Raises:
        FileNotFoundError: When ``config.json`` or ``model.safetensors`` is missing.
        ValueError: When the files are not a diagnosis checkpoint or do not fit together.
    """
    folder = Path(folder)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a diagnosis checkpoint: {name} is missing")
    try:
        meta = ClassifierFile.model_validate_json((folder / CONFIG_FILE).read_text("utf-8"))
    except ValidationError as err:
        raise ValueError(
            f"{folder / CONFIG_FILE} is not a diagnosis classifier config: {err}"
        ) from None
    tensors = load_file(str(folder / WEIGHTS_FILE))
    try:
        pre = Preprocessor(
            feature_names=tuple(meta.feature_names),
            medians=tensors[_PRE + "medians"].numpy(),
            means=tensors[_PRE + "means"].numpy(),
            stds=tensors[_PRE + "stds"].numpy(),
            indicator_features=np.asarray(meta.indicator_features, dtype=np.int64),
            missing_rates=tensors[_PRE + "missing_rates"].numpy(),
        )
        calibration = CalibrationParams(
            scale=tensors[_CAL + "scale"].numpy(),
            bias=tensors[_CAL + "bias"].numpy(),
            method=meta.calibration,
        )
    except KeyError as err:
        raise ValueError(f"{folder / WEIGHTS_FILE} lacks tensor {err}; save it again") from None
    n_features, n_classes = len(meta.feature_names), len(meta.classes)
    if (
        any(len(a) != n_features for a in (pre.medians, pre.means, pre.stds))
        or len(pre.missing_rates) != len(pre.indicator_features)
        or len(pre.output_names) != meta.n_inputs
        or calibration.scale.shape != (n_classes,)
        or calibration.bias.shape != (n_classes,)
    ):
        raise ValueError(f"{folder}: the saved preprocessing does not match config.json")
    network = build_network(meta.config, meta.n_inputs, n_classes)
    state = {k[len(_NET) :]: v for k, v in tensors.items() if k.startswith(_NET)}
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"{folder}: the weights do not fit the configured network: {err}"
        ) from None
    network.eval()
    return FittedClassifier(
        config=meta.config,
        feature_names=tuple(meta.feature_names),
        classes=tuple(meta.classes),
        preprocessor=pre,
        network=network,
        calibration=calibration,
        history=TrainingHistory(**meta.history),
    )


def _history_dict(history: TrainingHistory) -> dict[str, Any]:
    return {
        "best_epoch": history.best_epoch,
        "epochs_run": history.epochs_run,
        "best_val_loss": history.best_val_loss,
        "n_fit": history.n_fit,
        "n_val": history.n_val,
        "class_weights": list(history.class_weights),
        "seconds": history.seconds,
    }


def data_fingerprint(data: TabularData) -> str:
    """SHA-256 of the rows, labels, feature and class names (to tell training sets apart)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(data.X, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(data.y, dtype=np.int64).tobytes())
    digest.update("\x1f".join(data.feature_names).encode())
    digest.update("\x1e".join(data.classes).encode())
    return digest.hexdigest()


def card_fields(
    model: FittedClassifier,
    data: TabularData,
    target: str,
    report: CVReport | None = None,
    notes: str = "",
) -> dict[str, Any]:
    """Model-card fields for ``model_zoo`` (``classes, metrics, settings, data, seed, notes``).

    Args:
        model: The classifier trained on ``data``.
        data: All rows it was trained on.
        target: What the classes mean, e.g. "registry confirmed diagnosis" or
            "CSV column Outcome (diabetes within about five years)".
        report: Cross-validation of the same recipe on the same data, if it was run.
        notes: Caveats of the data (e.g. the Pima note); the type 1 / type 2 warning is added
            when it applies.
    """
    metrics: dict[str, Any] = {}
    if report is not None:
        metrics = {
            "cross_validation": {
                "folds": report.folds,
                "repeats": report.repeats,
                "seed": report.seed,
            },
            **{
                name: {m: {"mean": s.mean, "sd": s.sd} for m, s in r.metrics.items()}
                for name, r in report.models.items()
            },
        }
    warning = type_distinction_warning(model.classes, model.feature_names)
    return {
        "classes": list(model.classes),
        "metrics": metrics,
        "settings": {
            "target": target,
            "features": list(model.feature_names),
            "missing_indicators": [
                model.feature_names[i] for i in model.preprocessor.indicator_features
            ],
            "classifier": model.config.model_dump(mode="json"),
            "calibration": {
                "method": model.calibration.method,
                "scale": model.calibration.scale.tolist(),
                "bias": model.calibration.bias.tolist(),
            },
            "training": _history_dict(model.history),
        },
        "data": {
            "source": data.source,
            "n_rows": len(data.y),
            "class_counts": data.class_counts,
            "sha256": data_fingerprint(data),
        },
        "seed": model.config.seed,
        "notes": " ".join(part for part in (notes, warning or "") if part),
    }
