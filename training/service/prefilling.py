"""The starting mask the Label page paints over: the current model's prediction of the tile,
or the colour-rule pre-fill (:mod:`training.prefill`) while there is no model.

Promises:
- A model whose classes differ from the workspace's is refused (:func:`check_classes`), never
  used to pre-fill.
- The result says where the mask came from (``model`` or ``rules``) and which model made it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataset.store import Store
from training.service.models import LoadedModel, check_classes

__all__ = ["Prefill", "prefill"]


@dataclass(frozen=True)
class Prefill:
    """A starting mask for the Label page and where it came from."""

    mask: np.ndarray
    source: str  # "model" or "rules"
    model_id: str | None


def prefill(store: Store, tile_id: str, loaded: LoadedModel | None = None) -> Prefill:
    """The current model's prediction of a tile, or the colour-rule pre-fill without a model.

    Shape:
        mask: (h, w) uint8, 255 where the rules are unsure.
    """
    image = np.ascontiguousarray(store.tile_image(tile_id))
    if loaded is not None:
        from training.inference import predict_mask

        check_classes(store, loaded)
        mask = predict_mask(loaded.model, image, loaded.inference_config())
        return Prefill(mask, "model", loaded.model_id)
    from training.prefill import prefill_mask

    return Prefill(prefill_mask(image, store.schema().names), "rules", None)
