"""Checkpoint registry for SmearLab: model cards, current model per kind, promote, roll back, load.

Never imports Streamlit or torch at import time; :func:`load_segmentation_model` imports torch
when called.
"""

from model_zoo.card import KINDS, ModelCard, describe_machine, flat_metrics, new_model_id
from model_zoo.zoo import (
    ClassMismatchError,
    NothingToRollBackError,
    PointerEvent,
    UnknownModelError,
    Zoo,
    ZooError,
    default_workspace,
    load_segmentation_model,
    metric_columns,
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
    "describe_machine",
    "flat_metrics",
    "load_segmentation_model",
    "metric_columns",
    "new_model_id",
]
