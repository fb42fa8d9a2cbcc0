"""Smear analysis as the workspace sees it: cell counts and class shares of a smear from the
model's segmentation (or its saved labels), and how far the model's figures can be trusted.

Promises:
- Every analysis is stored in the append-only ``analyses`` table per (checkpoint, smear); the
  diagnosis classifier reads the newest one of each smear (:func:`latest_smear_features`).
- A model whose classes differ from the workspace's is refused, never used to count.
- :func:`model_quality` warns about a class IoU below :data:`POOR_IOU` and about a model that
  did not (or was never shown to) beat the colour rules.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc

from dataset.store import Store
from training.service._figures import fmt
from training.service.models import LoadedModel, check_classes
from training.service.tables import register_tables

__all__ = ["POOR_IOU", "ModelQuality", "analyze_smear", "latest_smear_features", "model_quality"]

POOR_IOU = 0.5


@dataclass(frozen=True)
class ModelQuality:
    """A model's validation figures, read from its card, and what is wrong with them.

    Attributes:
        iou: Class to validation IoU (None: no labelled pixels of it in validation).
        beats_rules: Whether it beat the colour rules on its validation tiles; None when the
            card predates that comparison.
        warnings: Sentences for the person reading counts made by this model: a class IoU
            below :data:`POOR_IOU`, or a model that did not (or was never shown to) beat the
            colour rules.
        note: Which classes could not be scored, if any.
    """

    model_id: str
    miou: float | None
    iou: dict[str, float | None]
    absent: list[str]
    rules_miou: float | None
    beats_rules: bool | None
    warnings: list[str]
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "mean_iou": self.miou,
            "iou": self.iou,
            "absent_classes": self.absent,
            "rules_mean_iou": self.rules_miou,
            "beats_rules": self.beats_rules,
            "warnings": self.warnings,
            "note": self.note,
        }


def model_quality(card) -> ModelQuality:
    """The validation figures on ``card`` (a segmentation model card) and warnings when poor."""
    from training.metrics import absent_note

    metrics = card.metrics
    iou = {c: metrics.get("iou", {}).get(c) for c in card.classes}
    absent = list(metrics.get("absent_classes") or [])
    selection = metrics.get("selection") or {}
    beats = metrics.get("beats_rules")
    miou = metrics.get("mean_iou")
    warnings = []
    poor = [(c, v) for c, v in iou.items() if v is not None and v < POOR_IOU]
    if poor:
        listed = ", ".join(f"{c} {v:.2f}" for c, v in poor)
        warnings.append(
            f"Validation IoU below {POOR_IOU} for {listed}: this model's counts and shares of "
            f"{'that class' if len(poor) == 1 else 'those classes'} are unreliable."
        )
    if beats is False:
        warnings.append(
            f"Model {card.model_id} did not beat the colour rules on its validation tiles "
            f"(mean IoU {fmt(miou)} against {fmt(selection.get('rules_miou'))}): its "
            "segmentation is no better than the rule-based pre-fill."
        )
    elif beats is None:
        warnings.append(
            f"Model {card.model_id} was never compared with the colour rules (it was trained "
            "before that check), so nothing shows it segments better than they do."
        )
    return ModelQuality(
        model_id=card.model_id,
        miou=miou,
        iou=iou,
        absent=absent,
        rules_miou=selection.get("rules_miou"),
        beats_rules=beats,
        warnings=warnings,
        note=absent_note(absent, "its validation tiles") if absent else None,
    )


def analyze_smear(store: Store, smear_id: str, loaded: LoadedModel | None = None):
    """Cell counts and class shares of one smear, from the model's segmentation.

    Without a model, the smear's saved labels are analysed instead (``model_id`` None).

    Returns:
        ``(analysis, mask, model_id)``; the result is also stored in the ``analyses`` table.
    """
    from training.analysis import analyse_image, analyse_mask

    info = store.smear(smear_id)
    names = store.schema().names
    if loaded is not None:
        check_classes(store, loaded)
        image = np.ascontiguousarray(store.smear_image(smear_id))
        analysis, mask = analyse_image(
            loaded.model, image, names, loaded.inference_config(), um_per_px=info.um_per_px
        )
        model_id = loaded.model_id
    else:
        mask = store.smear_mask(smear_id)
        analysis = analyse_mask(mask, names, um_per_px=info.um_per_px)
        model_id = None
    register_tables(store)
    store.tables.append(
        "analyses",
        [
            {
                "smear_id": smear_id,
                "model_id": model_id,
                "created_at": dt.datetime.now(dt.UTC),
                "rows_json": json.dumps(analysis.to_rows()),
                "features_json": json.dumps(
                    {k: (None if v != v else v) for k, v in analysis.features().items()}
                ),
            }
        ],
    )
    return analysis, mask, model_id


def latest_smear_features(store: Store, smear_ids: Iterable[str]) -> dict[str, dict[str, float]]:
    """Newest stored analysis features of each smear that has one (for the classifier)."""
    register_tables(store)
    ids = list(smear_ids)
    if not ids:
        return {}
    t = store.tables.read(
        "analyses", ["smear_id", "created_at", "features_json"], pc.field("smear_id").isin(ids)
    )
    out: dict[str, dict[str, float]] = {}
    for r in sorted(t.to_pylist(), key=lambda r: r["created_at"]):
        feats = json.loads(r["features_json"])
        out[r["smear_id"]] = {k: float("nan") if v is None else v for k, v in feats.items()}
    return out
