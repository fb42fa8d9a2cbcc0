"""The model card: what a checkpoint is, what it learned from, and how well it did.

A card is written as ``card.json`` beside ``config.json`` and ``model.safetensors`` in every
checkpoint folder. It is enough on its own to answer "which data, which classes, which split,
which settings, how good" without loading the weights.

Metrics convention (so that lists and comparisons line up across runs):

* scalar metrics sit at the top level of ``metrics``: ``{"mean_iou": 0.71, "loss": 0.2}``;
* per-class metrics are one dict per metric, keyed by class name:
  ``{"iou": {"rbc": 0.8, "wbc": 0.6}}``.
"""

from __future__ import annotations

import math
import re
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "CARD_VERSION",
    "KINDS",
    "Kind",
    "ModelCard",
    "flat_metrics",
    "new_model_id",
]

CARD_VERSION = 1
Kind = Literal["segmentation", "diagnosis"]
KINDS: tuple[str, ...] = ("segmentation", "diagnosis")

_ID_PREFIX = {"segmentation": "seg", "diagnosis": "dx"}
# Model ids become folder names: keep them to a safe, portable alphabet.
MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _now() -> datetime:
    return datetime.now(UTC)


class ModelCard(BaseModel):
    """Everything worth knowing about one trained model, saved as ``card.json``.

    Attributes:
        model_id: Unique across kinds; also the checkpoint folder name. Left empty, the zoo
            assigns one when the checkpoint is added.
        kind: ``"segmentation"`` or ``"diagnosis"``; each kind has its own current model.
        created_at: When training finished (UTC).
        classes: Class names in label-index order, as the model was trained.
        schema_version: Version of the class schema the classes came from.
        metrics: Validation metrics; see the module docstring for the layout.
        settings: Training settings (encoder, epochs, learning rate, tile size, ...).
        data: What it trained on: ``table_versions`` of the store, ``release`` when trained
            from a release, ``splits`` (split assignment), counts.
        seed: Random seed of the run.
        duration_s: Wall-clock training time in seconds.
        machine: Where it trained, e.g. ``"cuda: NVIDIA H100 80GB HBM3; torch 2.14"``.
        notes: Free text from the user.
        parent: The model this one was fine-tuned from (its lineage), or None when it was
            trained from scratch. Cards written before lineage was recorded have none.
        card_version: Version of this card layout.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    model_id: str = ""
    kind: Kind
    created_at: datetime = Field(default_factory=_now)
    classes: list[str]
    schema_version: int = 0
    metrics: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    duration_s: float = 0.0
    machine: str = ""
    notes: str = ""
    parent: str | None = None
    card_version: int = CARD_VERSION

    @field_validator("model_id")
    @classmethod
    def _safe_model_id(cls, value: str) -> str:
        if value and not MODEL_ID_RE.match(value):
            raise ValueError(
                f"model_id {value!r} is not usable as a folder name; use letters, digits, "
                "'.', '_' and '-' only (at most 128 characters)"
            )
        return value

    @field_validator("classes")
    @classmethod
    def _non_empty_classes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("a model card needs the list of classes the model predicts")
        return value


def new_model_id(kind: str, when: datetime | None = None) -> str:
    """Make a fresh, time-sortable model id such as ``seg-20250101-120000-3fa2``."""
    when = when or _now()
    prefix = _ID_PREFIX.get(kind, kind[:8])
    return f"{prefix}-{when:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Flatten a card's metrics into ``{"mean_iou": .., "iou/rbc": ..}`` for side-by-side tables.

    Non-numeric entries are dropped; nested dicts become ``"metric/class"`` keys.
    """
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                if _is_number(sub_value):
                    flat[f"{key}/{sub}"] = float(sub_value)
        elif _is_number(value):
            flat[key] = float(value)
    return flat


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )
