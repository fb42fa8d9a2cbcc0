"""Checkpoint registry for SmearLab: model cards, the current model per kind, its history.

The zoo stores files, cards and the current pointer; it imports no model library (torch,
segmentation_models_pytorch). Loading a model is :func:`training.model.load_segmentation_model`;
promote and roll back as the pages and CLIs ask them (weights checked, re-scoring queued) are
:func:`training.service.promote_model` and :func:`training.service.rollback_model`.
"""

from model_zoo.card import KINDS, ModelCard, flat_metrics, new_model_id
from model_zoo.zoo import (
    ClassMismatchError,
    NothingToRollBackError,
    PointerEvent,
    UnknownModelError,
    Zoo,
    ZooError,
    default_workspace,
    metric_columns,
    summary_rows,
)

__all__ = [
    "KINDS",
    "ClassMismatchError",
    "ModelCard",
    "NothingToRollBackError",
    "PointerEvent",
    "UnknownModelError",
    "Zoo",
    "ZooError",
    "default_workspace",
    "flat_metrics",
    "metric_columns",
    "new_model_id",
    "summary_rows",
]
