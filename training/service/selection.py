"""Whether a freshly trained segmentation model earns its place as the current model.

Promises:
- After each run the new model, the current one and the colour rules are scored on the run's
  validation tiles: mean IoU over the classes with labelled pixels, a pixel left unlabelled
  counting as wrong (:func:`validation_metrics`).
- The new model replaces the current model (the colour rules while no model is current) only
  when its mean IoU is higher; a tie keeps what is there (:func:`choose`, pure).
- A current model that cannot be scored here (other classes, weights that do not load) is
  set aside with the reason, and the new model is compared with the colour rules instead.
- The same predictions also say what correcting the new model's pre-fill would cost an
  annotator on those tiles, against painting them from an empty canvas and against the colour
  rules (:class:`PrefillEffort`, simulated with :mod:`training.effort`), so the Dataset page
  can show the current model's expected saving beside the measured lead times.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from dataset.schema import UNLABELLED
from training.service._figures import fmt
from training.service.models import load_model

__all__ = [
    "EFFORT_MIN_REGION_PX",
    "RULES",
    "PrefillEffort",
    "Selection",
    "choose",
    "expected_saving",
    "prefill_effort",
    "select_model",
    "validation_metrics",
]

RULES = "rules"
# Wrong patches smaller than this are speckle a person would not fix one by one: they count as
# pixels to change but not as regions (strokes) to fix.
EFFORT_MIN_REGION_PX = 16


class PrefillEffort(BaseModel):
    """What an annotator must change to reach the validation masks, by starting point.

    Pixels: labelled pixels whose start differs from the truth. Regions: 4-connected wrong
    patches of one true class of at least ``min_region_px`` pixels, about one brush stroke,
    polygon or wand click each (:func:`training.effort.correction_effort`).
    """

    model_config = ConfigDict(frozen=True)

    tiles: int
    min_region_px: int
    empty_pixels: int
    empty_regions: int
    model_pixels: int
    model_regions: int
    rules_pixels: int
    rules_regions: int

    def share(self, start: str, unit: str) -> float | None:
        """``start`` ("model" or "rules") as a share of the empty canvas, in ``unit``
        ("pixels" or "regions"); None when the empty canvas needs none."""
        empty = getattr(self, f"empty_{unit}")
        return getattr(self, f"{start}_{unit}") / empty if empty else None


def prefill_effort(
    model_masks: Sequence[np.ndarray], rules_masks: Sequence[np.ndarray], samples: Sequence
) -> PrefillEffort:
    """Correction effort from an empty canvas, the colour rules and a model, on ``samples``."""
    from training.effort import correction_effort, total_effort

    def total(starts) -> tuple[int, int]:
        effort = total_effort(
            correction_effort(m, s.mask, min_region_px=EFFORT_MIN_REGION_PX)
            for m, s in zip(starts, samples, strict=True)
        )
        return effort.pixels, effort.regions

    empty = total(np.full_like(s.mask, UNLABELLED) for s in samples)
    model, rules = total(model_masks), total(rules_masks)
    return PrefillEffort(
        tiles=sum(len(s.tiles) for s in samples),
        min_region_px=EFFORT_MIN_REGION_PX,
        empty_pixels=empty[0],
        empty_regions=empty[1],
        model_pixels=model[0],
        model_regions=model[1],
        rules_pixels=rules[0],
        rules_regions=rules[1],
    )


class Selection(BaseModel):
    """How a finished run was compared with what it would replace (``card.metrics["selection"]``).

    Attributes:
        model_id: The new model.
        baseline: What it was compared with: the current model's id, or ``"rules"`` (the
            colour-rule pre-fill) when no model was current or the current one cannot be
            scored on this workspace's classes.
        tiles: Validation tiles scored.
        classes_scored: Classes with labelled pixels in those tiles (the mean runs over these).
        absent_classes: Classes without a labelled pixel there, left out of the mean.
        new_miou, baseline_miou, rules_miou: Mean IoU of each contender.
        per_class: Contender (model id or ``"rules"``) to class to IoU (None: not scored).
        winner: The model id that is current when the run ends, or ``"rules"``.
        beats_rules: Whether the new model scored above the colour rules.
        reason: One paragraph saying who won and why, for the Train page and the job log.
        effort: What correcting the new model's pre-fill costs on those tiles (None for cards
            written before it was recorded).
    """

    model_config = ConfigDict(frozen=True)

    model_id: str
    baseline: str
    tiles: int
    classes_scored: list[str]
    absent_classes: list[str]
    new_miou: float | None
    baseline_miou: float | None
    rules_miou: float | None
    per_class: dict[str, dict[str, float | None]]
    winner: str
    beats_rules: bool
    reason: str
    effort: PrefillEffort | None = None


def expected_saving(card) -> str | None:
    """What correcting ``card``'s pre-fill is expected to cost against painting from scratch,
    in one sentence, from the effort recorded when its run was selected; None for a card
    without one (trained before it was recorded) or without labelled validation pixels."""
    data = ((card.metrics or {}).get("selection") or {}).get("effort")
    if not data:
        return None
    effort = PrefillEffort(**data)
    pixels = effort.share("model", "pixels")
    if pixels is None:
        return None
    rules = effort.share("rules", "pixels")

    def regions(n: int) -> str:
        return f"{n} region{'' if n == 1 else 's'}"

    return (
        f"Simulated on the {effort.tiles} validation tiles of its run, correcting model "
        f"{card.model_id}'s pre-fill means changing {pixels:.0%} of the pixels that painting "
        f"from an empty canvas needs, and fixing {regions(effort.model_regions)} where the "
        f"empty canvas needs {effort.empty_regions} painted; starting from the colour rules: "
        f"{rules:.0%} of the pixels, {regions(effort.rules_regions)}. A region is about one "
        f"brush stroke, polygon or wand click (patches under {effort.min_region_px} px are "
        "counted as pixels only)."
    )


def validation_metrics(
    predictions: Iterable[np.ndarray], samples: Sequence, classes: Sequence[str]
):
    """Scores of masks predicted for ``samples``: mean IoU over the classes with labelled pixels,
    a predicted 255 (left unlabelled) counting as wrong.

    Shape:
        predictions: one (H, W) uint8 mask per sample, like ``sample.mask``.
    """
    from training.metrics import confusion_matrix, metrics_from_confusion

    n = len(classes)
    cm = np.zeros((n, n + 1), dtype=np.int64)
    for pred, sample in zip(predictions, samples, strict=True):
        cm += confusion_matrix(pred, sample.mask, n, unlabelled_pred=True)
    return metrics_from_confusion(cm, classes)


def _model_masks(model, samples: Sequence, inference) -> Iterator[np.ndarray]:
    from training.inference import iter_proba, probs_to_mask

    for probs in iter_proba(model, (s.image for s in samples), inference):
        yield probs_to_mask(probs)


def _rules_masks(samples: Sequence, classes: Sequence[str]) -> Iterator[np.ndarray]:
    from training.prefill import prefill_mask

    for s in samples:
        yield prefill_mask(s.image, classes)


def select_model(
    workspace: Path,
    model_id: str,
    model,
    inference,
    samples: Sequence,
    classes: Sequence[str],
    current,
) -> Selection:
    """Score a freshly trained model, the current model and the colour rules on ``samples``
    (the run's validation tiles) and say which should be current (:func:`choose`).

    Args:
        model_id: The id the new model will get.
        model: The new model (eval mode) and ``inference`` its inference settings.
        classes: The workspace's classes, which the new model predicts.
        current: The current model's card, or None while no model is current.
    """
    from model_zoo import ZooError

    classes = list(classes)
    new_masks = list(_model_masks(model, samples, inference))
    rules_masks = list(_rules_masks(samples, classes))
    new = validation_metrics(new_masks, samples, classes)
    rules = validation_metrics(rules_masks, samples, classes)
    baseline, unusable = None, None
    if current is not None:
        if list(current.classes) != classes:
            unusable = (
                f"it predicts {', '.join(current.classes)}, the workspace labels "
                f"{', '.join(classes)}"
            )
        else:
            try:
                loaded = load_model(workspace, current.model_id)
            except (ZooError, OSError, ValueError) as exc:
                unusable = f"it cannot be loaded: {exc}"
            else:
                masks = _model_masks(loaded.model, samples, loaded.inference_config())
                baseline = (current.model_id, validation_metrics(masks, samples, classes))
    why = None if unusable is None else (current.model_id, unusable)
    tiles = sum(len(s.tiles) for s in samples)
    selection = choose(model_id, new, rules, baseline, tiles, unusable=why)
    effort = prefill_effort(new_masks, rules_masks, samples)
    return selection.model_copy(update={"effort": effort})


def choose(
    model_id: str,
    new,
    rules,
    current: tuple[str, Any] | None,
    tiles: int,
    *,
    unusable: tuple[str, str] | None = None,
) -> Selection:
    """The rule itself: the new model replaces the current model, or the colour rules while no
    model is current, only when its mean IoU on the same tiles is higher; a tie keeps what is
    there. Pure: it takes the three sets of scores (:class:`training.metrics.SegMetrics`).

    Args:
        current: ``(model id, scores)`` of the current model, or None (compare with the rules).
        unusable: ``(model id, why)`` of a current model that could not be scored; the new
            model is then compared with the rules.
    """
    baseline_id, baseline = current if current is not None else (RULES, rules)
    score = new.miou if new.miou is not None else float("-inf")
    bar = baseline.miou if baseline.miou is not None else float("-inf")
    rules_bar = rules.miou if rules.miou is not None else float("-inf")
    wins = score > bar
    on = f"on the {tiles} validation tile{'s' if tiles != 1 else ''}"
    if baseline_id == RULES:
        against = (
            f"the colour rules' {fmt(baseline.miou)} (pixels they leave unlabelled count as wrong)"
        )
    else:
        against = f"{fmt(baseline.miou)} for the current model {baseline_id} on the same tiles"
    if wins:
        reason = (
            f"{model_id} scored mean IoU {fmt(new.miou)} {on}, above {against}, so it "
            "becomes the current model."
        )
    elif baseline_id == RULES:
        reason = (
            f"{model_id} scored mean IoU {fmt(new.miou)} {on}, not above {against}, so the "
            f"colour rules keep pre-filling and {model_id} stays in the zoo (promote it by "
            "hand to use it anyway)."
        )
    else:
        reason = (
            f"{model_id} scored mean IoU {fmt(new.miou)} {on}, not above {against}, so "
            f"{baseline_id} stays current and {model_id} stays in the zoo."
        )
    if unusable is not None:
        reason = (
            f"The current model {unusable[0]} cannot be scored here ({unusable[1]}), so "
            f"{model_id} was compared with the colour rules. " + reason
        )
    scored = [c for c in new.classes if c not in new.absent]
    reason += f" Classes scored: {', '.join(scored)}."
    if new.absent:
        reason += " " + new.absent_note()
    contenders = {model_id: new, baseline_id: baseline, RULES: rules}
    return Selection(
        model_id=model_id,
        baseline=baseline_id,
        tiles=tiles,
        classes_scored=scored,
        absent_classes=list(new.absent),
        new_miou=new.miou,
        baseline_miou=baseline.miou,
        rules_miou=rules.miou,
        per_class={
            name: dict(zip(m.classes, m.iou, strict=True)) for name, m in contenders.items()
        },
        winner=model_id if wins else baseline_id,
        beats_rules=score > rules_bar,
        reason=reason,
    )
