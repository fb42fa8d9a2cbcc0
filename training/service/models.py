"""The workspace's segmentation model, loaded for inference, and the check that it fits.

Promises:
- :func:`load_model` returns the current segmentation model (or the one asked for) with its
  card, or None while the workspace has no model yet.
- :func:`check_classes` refuses a model whose classes differ from the workspace's, naming both
  lists and what to do, before any tile is predicted with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataset.store import Store, StoreError

__all__ = ["LoadedModel", "check_classes", "load_model"]


@dataclass(frozen=True)
class LoadedModel:
    """A segmentation model ready for inference, with its card."""

    model: Any
    card: Any

    @property
    def model_id(self) -> str:
        return self.card.model_id

    def inference_config(self):
        from training.inference import InferenceConfig

        return InferenceConfig(**self.card.settings.get("inference", {}))


def load_model(workspace: Path, model_id: str | None = None) -> LoadedModel | None:
    """The current segmentation model (or ``model_id``); None when no model exists yet."""
    from model_zoo import Zoo
    from training.model import load_segmentation_model

    zoo = Zoo(workspace)
    if model_id is None and zoo.current("segmentation") is None:
        return None
    model, card = load_segmentation_model(zoo, model_id)
    return LoadedModel(model, card)


def check_classes(store: Store, loaded: LoadedModel) -> None:
    """Refuse ``loaded`` when it predicts other classes than the workspace labels.

    Raises:
        StoreError: The class lists differ; the message names both.
    """
    names = list(store.schema().names)
    if list(loaded.card.classes) != names:
        raise StoreError(
            f"Model {loaded.model_id} predicts {', '.join(loaded.card.classes)} but the "
            f"workspace classes are {', '.join(names)}; promote a model trained on this schema."
        )
