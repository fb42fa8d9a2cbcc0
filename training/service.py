"""Segmentation as the workspace sees it: training jobs, pre-fill, scoring, analysis, evaluation.

This module joins the store (labelled tiles, split assignment), the model zoo (checkpoints,
the current model) and the job runner to the plain-data functions of :mod:`training.segment`,
:mod:`training.inference`, :mod:`training.strategies` and :mod:`training.analysis`. The CLI
and the pages call these functions; nothing here imports Streamlit.

Promises:
- Training reads only the train split and selects on validation; test tiles are never read.
- A run registers its checkpoint only when it ends ``done`` (the job runner's ``add_model``),
  so a failed or cancelled run never changes the current model.
- A model earns its place (:func:`select_model`): after each run the new model and the current
  one (the colour rules while no model is current) are scored on the run's validation tiles,
  mean IoU over the classes with labelled pixels, a pixel left unlabelled counting as wrong.
  The winner is current when the run ends; the loser stays in the zoo. The comparison is
  saved on the new card as ``metrics["selection"]``, and ``metrics["beats_rules"]`` says
  whether the model beat the colour rules on those tiles.
- Scores are cached per (checkpoint, strategy, tile) in the ``scores`` table and analyses per
  (checkpoint, smear) in the ``analyses`` table, both append-only Delta tables.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from dataset._delta import TS
from dataset.masks import decode_mask_png
from dataset.store import Store, StoreError
from training.kinds import SCORE, TRAIN_SEGMENTATION, target_of

SEGMENT_TARGET = target_of(TRAIN_SEGMENTATION)
SCORE_TARGET = target_of(SCORE)

_SCORES = pa.schema(
    [
        ("model_id", pa.string()),
        ("strategy", pa.string()),
        ("tile_id", pa.string()),
        ("smear_id", pa.string()),
        ("score", pa.float64()),
        ("features", pa.list_(pa.float32())),
        ("created_at", TS),
    ]
)
_ANALYSES = pa.schema(
    [
        ("smear_id", pa.string()),
        ("model_id", pa.string()),
        ("created_at", TS),
        ("rows_json", pa.string()),
        ("features_json", pa.string()),
    ]
)


def _register_tables(store: Store) -> None:
    store.tables.register("scores", _SCORES)
    store.tables.register("analyses", _ANALYSES)


# --------------------------------------------------------------------------- data
def load_samples(store: Store, split: str) -> list:
    """Labelled tiles of one split as training samples (latest revision of each).

    Args:
        split: ``train`` or ``validation``; the test split is refused, so no model ever
            trains or selects on it.
    """
    from training.segment import Sample

    if split not in ("train", "validation"):
        raise ValueError(f"Training reads the train and validation splits only, not {split!r}.")
    ids = store.labelled_tile_ids(split)
    tiles = {t.tile_id: t for t in store.tiles()}
    out = []
    for tile_id, _, png in store.iter_latest_masks(ids):
        t = tiles[tile_id]
        out.append(
            Sample(
                image=np.ascontiguousarray(store.tile_image(tile_id)),
                mask=decode_mask_png(png),
                tile_id=tile_id,
                smear_id=t.smear_id,
            )
        )
    return sorted(out, key=lambda s: s.tile_id)


def split_counts(store: Store) -> dict[str, int]:
    """Labelled tiles per split (for the Train page and the refusal message)."""
    ids = store.labelled_tile_ids()
    tiles = {t.tile_id: t.smear_id for t in store.tiles()}
    splits = store.splits_of({tiles[t] for t in ids if t in tiles})
    counts = {"train": 0, "validation": 0, "test": 0}
    for t in ids:
        if t in tiles:
            counts[splits[tiles[t]]] += 1
    return counts


# --------------------------------------------------------------------------- training
TRAIN_KIND = TRAIN_SEGMENTATION


class RunConflictError(Exception):
    """A run was refused because another one is queued or running (CLI exit status 3)."""


def training_device(explicit: str | None = None) -> str:
    """The torch device a training run uses: the ``--device`` flag (or a page's explicit
    choice) when given, else the ``SMEARLAB_DEVICE`` setting (environment, then the
    workspace's settings table), else ``cpu``."""
    if explicit:
        return explicit
    from dataset.settings import get_settings

    return get_settings().device


def active_training(workspace: Path):
    """The training job that is queued or running, or None (one run at a time)."""
    from training.jobs import JobRunner, JobState

    for status in JobRunner(workspace).list(states=[JobState.QUEUED, JobState.RUNNING]):
        if status.kind == TRAIN_KIND:
            return status
    return None


def conflict_message(busy) -> str:
    """Why a new run cannot start while ``busy`` (a training job's status) is live."""
    return (
        f"Training job {busy.job_id} is already {busy.state}; one training run at a time. "
        f"Wait for it to end or cancel it (python -m training cancel {busy.job_id})."
    )


def submit_training(workspace: Path, settings: dict[str, Any]) -> str:
    """Queue a segmentation training run; returns the job id.

    Args:
        settings: Fields of :class:`training.segment.SegTrainConfig` (validated here so a
            bad value is refused before anything is queued). Without ``device`` the run
            uses :func:`training_device`.

    Raises:
        RunConflictError: A training run is already queued or running; only one runs at a
            time, so the second is refused rather than queued behind it.
    """
    from training.jobs import JobRunner
    from training.segment import SegTrainConfig

    config = SegTrainConfig(**{**settings, "device": training_device(settings.get("device"))})
    busy = active_training(workspace)
    if busy is not None:
        raise RunConflictError(conflict_message(busy))
    status = JobRunner(workspace).submit(
        TRAIN_KIND, SEGMENT_TARGET, {"config": config.model_dump(mode="json")}
    )
    return status.job_id


# --------------------------------------------------------------------------- promotion
@dataclass(frozen=True)
class PointerChange:
    """What a promotion or a roll-back did.

    Attributes:
        card: The model that is now current.
        previous: The model id that was current before, or None.
        rescoring: The scoring job queued for the new current model; None when one was
            already pending or the kind is not ranked by scores (diagnosis).
    """

    card: Any
    previous: str | None
    rescoring: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.card.kind,
            "current": self.card.model_id,
            "previous": self.previous,
            "rescoring_job": self.rescoring,
        }


def workspace_classes(workspace: Path) -> list[str] | None:
    """The workspace's class names, or None while it has no class list (no check then)."""
    try:
        return list(Store.open(workspace).schema().names)
    except StoreError:
        return None


def promote_model(workspace: Path, model_id: str) -> PointerChange:
    """Make ``model_id`` current: refused when its classes differ from the workspace's or (for
    segmentation) its weights do not load and run (:func:`training.model.promotion_check`);
    a new current segmentation model queues re-scoring of the unlabelled tiles.

    Raises:
        model_zoo.ZooError: Unknown id, class mismatch, or weights that do not load.
    """
    from model_zoo import Zoo
    from training.model import promotion_check

    zoo = Zoo(workspace)
    card = zoo.get(model_id)  # unknown ids fail before the workspace is touched
    before = zoo.current(card.kind)
    card = zoo.promote(
        card.model_id, classes=workspace_classes(workspace), verify=promotion_check(card)
    )
    return PointerChange(card, before.model_id if before else None, _rescore(workspace, card))


def rollback_model(workspace: Path, kind: str = "segmentation") -> PointerChange:
    """Return ``kind`` to the model that was current before; segmentation queues re-scoring.

    Raises:
        model_zoo.ZooError: Nothing to roll back to.
    """
    from model_zoo import Zoo

    zoo = Zoo(workspace)
    before = zoo.current(kind)
    card = zoo.rollback(kind)
    return PointerChange(card, before.model_id if before else None, _rescore(workspace, card))


def _rescore(workspace: Path, card) -> str | None:
    return queue_rescoring(workspace) if card.kind == "segmentation" else None


def segment_job(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """Job target: train on the workspace's train split, stage the best checkpoint, and make it
    current if it beats the current model (or the colour rules) on the validation tiles."""
    from model_zoo import ModelCard, Zoo
    from model_zoo.card import new_model_id
    from training.model import describe_machine
    from training.segment import SegTrainConfig, train_segmentation

    config = SegTrainConfig(**params.get("config", {}))
    store = Store.open(ctx.workspace)
    schema = store.schema()
    versions = store.table_versions()
    train = load_samples(store, "train")
    val = load_samples(store, "validation")
    counts = split_counts(store)
    if not train or not val:
        raise StoreError(
            "Training needs labelled tiles in both the train and the validation split; "
            f"labelled tiles now: {counts['train']} train, {counts['validation']} validation, "
            f"{counts['test']} test. Label tiles of more smears (the Dataset page shows each "
            "smear's split)."
        )
    ctx.log(
        f"Training {config.encoder} on {len(train)} train / {len(val)} validation tiles, "
        f"classes {', '.join(schema.names)}"
    )
    zoo = Zoo(ctx.workspace)
    staging = zoo.staging_dir("segmentation")

    def on_progress(fields: dict) -> None:
        ctx.progress(**fields)

    result = train_segmentation(
        train,
        val,
        schema.names,
        config,
        on_progress=on_progress,
        should_stop=lambda: ctx.cancelled,
        out_dir=staging,
    )
    note = result.metrics.absent_note()
    if note:
        ctx.log(note)
    model_id = new_model_id("segmentation")
    ctx.log("Comparing the new model with the current one on the validation tiles…")
    current = zoo.current("segmentation")
    selection = select_model(
        ctx.workspace, model_id, result.build_model(), config.inference, val, schema.names, current
    )
    ctx.log(selection.reason)
    metrics = result.card_metrics()
    # The zoo lists compare runs by these names (model_zoo.card's metric convention).
    metrics["mean_iou"] = result.metrics.miou
    metrics["mean_dice"] = _mean(result.metrics.dice)
    metrics["selection"] = selection.model_dump(mode="json")
    metrics["beats_rules"] = selection.beats_rules
    card = ModelCard(
        model_id=model_id,
        kind="segmentation",
        classes=list(schema.names),
        schema_version=schema.version,
        metrics=metrics,
        settings=config.model_dump(mode="json"),
        data={
            "table_versions": versions,
            "release": None,
            "splits": store.split_assignment(),
            "train_tiles": sorted(s.tile_id for s in train),
            "validation_tiles": sorted(s.tile_id for s in val),
        },
        seed=config.seed,
        duration_s=result.duration_s,
        machine=describe_machine(config.device),
    )
    wins = selection.winner == model_id
    ctx.add_model(
        "segmentation",
        staging,
        card,
        make_current=wins,
        compared_with=current.model_id if current else None,
    )
    if params.get("rescore", True) and wins:
        # This run becomes the current model when it ends: rank tiles with it next.
        queue_rescoring(ctx.workspace)
    ctx.log(f"Best validation mIoU {result.metrics.miou} at epoch {result.best_epoch}")
    return {
        "mean_iou": result.metrics.miou,
        "best_epoch": result.best_epoch,
        "absent_classes": list(result.metrics.absent),
        "selection": metrics["selection"],
    }


# --------------------------------------------------------------------------- selection
RULES = "rules"


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
    new = validation_metrics(_model_masks(model, samples, inference), samples, classes)
    rules = validation_metrics(_rules_masks(samples, classes), samples, classes)
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
    return choose(model_id, new, rules, baseline, len(samples), unusable=why)


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
            f"the colour rules' {_fmt(baseline.miou)} (pixels they leave unlabelled count as wrong)"
        )
    else:
        against = f"{_fmt(baseline.miou)} for the current model {baseline_id} on the same tiles"
    if wins:
        reason = (
            f"{model_id} scored mean IoU {_fmt(new.miou)} {on}, above {against}, so it "
            "becomes the current model."
        )
    elif baseline_id == RULES:
        reason = (
            f"{model_id} scored mean IoU {_fmt(new.miou)} {on}, not above {against}, so the "
            f"colour rules keep pre-filling and {model_id} stays in the zoo (promote it by "
            "hand to use it anyway)."
        )
    else:
        reason = (
            f"{model_id} scored mean IoU {_fmt(new.miou)} {on}, not above {against}, so "
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


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# --------------------------------------------------------------------------- models
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


def _check_classes(store: Store, loaded: LoadedModel) -> None:
    names = list(store.schema().names)
    if list(loaded.card.classes) != names:
        raise StoreError(
            f"Model {loaded.model_id} predicts {', '.join(loaded.card.classes)} but the "
            f"workspace classes are {', '.join(names)}; promote a model trained on this schema."
        )


# --------------------------------------------------------------------------- pre-fill
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

        _check_classes(store, loaded)
        mask = predict_mask(loaded.model, image, loaded.inference_config())
        return Prefill(mask, "model", loaded.model_id)
    from training.prefill import prefill_mask

    return Prefill(prefill_mask(image, store.schema().names), "rules", None)


# --------------------------------------------------------------------------- scoring
def unlabelled_tile_ids(store: Store) -> list[str]:
    """Tiles worth suggesting: not labelled, not skipped, and not in the test split."""
    labelled = set(store.labelled_tile_ids())
    skipped = store.skipped_tile_ids()
    tiles = [t for t in store.tiles() if t.tile_id not in labelled and t.tile_id not in skipped]
    splits = store.splits_of({t.smear_id for t in tiles}) if tiles else {}
    return [t.tile_id for t in tiles if splits[t.smear_id] != "test"]


def _candidates(store: Store, tile_ids: Iterable[str]) -> Iterator:
    from training.strategies import Candidate

    tiles = {t.tile_id: t for t in store.tiles()}
    for tile_id in tile_ids:
        yield Candidate(
            tile_id, tiles[tile_id].smear_id, np.ascontiguousarray(store.tile_image(tile_id))
        )


def cached_scores(store: Store, model_id: str, strategy: str) -> dict[str, tuple]:
    """Stored scores of one (checkpoint, strategy): tile → (smear, score, features)."""
    _register_tables(store)
    flt = (pc.field("model_id") == model_id) & (pc.field("strategy") == strategy)
    t = store.tables.read("scores", ["tile_id", "smear_id", "score", "features"], flt)
    return {r["tile_id"]: (r["smear_id"], r["score"], r["features"]) for r in t.to_pylist()}


def score_unlabelled(
    store: Store,
    strategy: str,
    loaded: LoadedModel | None,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    batch: int = 64,
) -> int:
    """Score every unlabelled tile not yet scored by this checkpoint and strategy.

    Returns:
        The number of tiles newly scored (cached tiles are skipped).
    """
    from training.strategies import get_strategy, iter_scores

    get_strategy(strategy)  # unknown names fail here, with the list of valid ones
    _register_tables(store)
    model_id = loaded.model_id if loaded else "none"
    if loaded is not None:
        _check_classes(store, loaded)
    done = cached_scores(store, model_id, strategy)
    todo = [t for t in unlabelled_tile_ids(store) if t not in done]
    model = loaded.model if loaded else None
    inference = scoring_inference(loaded) if loaded else None
    rows: list[dict] = []
    for n, s in enumerate(iter_scores(_candidates(store, todo), strategy, model, inference), 1):
        rows.append(
            {
                "model_id": model_id,
                "strategy": strategy,
                "tile_id": s.tile_id,
                "smear_id": s.smear_id,
                "score": float(s.score),
                "features": None if s.features is None else s.features.astype(np.float32),
                "created_at": dt.datetime.now(dt.UTC),
            }
        )
        if len(rows) >= batch or n == len(todo):
            store.tables.append("scores", rows)
            rows = []
        if on_progress:
            on_progress(n, len(todo))
    return len(todo)


def submit_scoring(workspace: Path, strategy: str) -> str:
    """Queue a scoring job for the current model; returns the job id."""
    from training.jobs import JobRunner
    from training.strategies import get_strategy

    get_strategy(strategy)
    return JobRunner(workspace).submit(SCORE, SCORE_TARGET, {"strategy": strategy}).job_id


DEFAULT_STRATEGY = "entropy"


@lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where autocast pays."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def scoring_inference(loaded: LoadedModel):
    """Inference settings for ranking tiles: bf16 autocast where the CPU has native bf16.

    Measured here (bench/segmentation_speed.py, 2 cores): scoring 25 -> 51 tiles/s, and on the
    trained Zheng checkpoint 99.93 % of pixels keep their fp32 class. A ranking tolerates that;
    pre-fill and smear analysis, which become labels and counts, stay in fp32.
    """
    config = loaded.inference_config()
    return config.model_copy(update={"bf16": True}) if native_bf16() else config


def queue_rescoring(workspace: Path, strategy: str = DEFAULT_STRATEGY) -> str | None:
    """Queue scoring for the current model unless a scoring job is already waiting or running.

    Called when the current model changes (a first model, a promotion, a roll-back), so the
    Suggestions page and the Label page's suggested order follow the new model. Tiles the
    model already scored are skipped by the job, so an unneeded run ends at once.

    Returns:
        The new job id, or None when a scoring job was already pending.
    """
    from training.jobs import JobRunner, JobState

    runner = JobRunner(workspace)
    pending = runner.list(states=[JobState.QUEUED, JobState.RUNNING])
    if any(j.kind == SCORE for j in pending):
        return None
    return submit_scoring(workspace, strategy)


def score_job(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """Job target: score unlabelled tiles with the current model (cached per checkpoint)."""
    store = Store.open(ctx.workspace)
    strategy = params.get("strategy", "entropy")
    loaded = load_model(ctx.workspace) if strategy != "random" else None
    started = time.monotonic()
    n = score_unlabelled(
        store, strategy, loaded, on_progress=lambda i, total: ctx.progress(step=i, total=total)
    )
    seconds = time.monotonic() - started
    ctx.log(f"Scored {n} tiles with {strategy} in {seconds:.1f} s")
    return {"scored": n, "seconds": seconds, "model_id": loaded.model_id if loaded else None}


@dataclass(frozen=True)
class Suggestion:
    tile_id: str
    smear_id: str
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"tile_id": self.tile_id, "smear_id": self.smear_id, "score": self.score}


# Scores "do not separate tiles" when the best FLAT_TOP lie within FLAT_TOLERANCE of the best.
FLAT_TOP = 20
FLAT_TOLERANCE = 0.01


@dataclass(frozen=True)
class Suggestions:
    """The next tiles to label and the order that ranked them.

    Attributes:
        tiles: Best first.
        strategy: The strategy asked for.
        order: The order that ranked ``tiles``: ``strategy``, or ``"random"`` (spread over
            smears) when its scores did not separate the tiles.
        note: Why ``order`` differs from ``strategy``; None when it does not.
    """

    tiles: list[Suggestion]
    strategy: str
    order: str
    note: str | None = None

    def __iter__(self) -> Iterator[Suggestion]:
        return iter(self.tiles)

    def __len__(self) -> int:
        return len(self.tiles)

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "order": self.order,
            "note": self.note,
            "tiles": [t.to_json() for t in self.tiles],
        }


def flat_note(strategy: str, scores: Sequence[float]) -> str | None:
    """Why ``scores`` (best first) cannot rank tiles, or None when they can.

    They cannot when the best :data:`FLAT_TOP` (or all, if fewer, at least two) lie within
    :data:`FLAT_TOLERANCE` (1 %) of the best score, as with a model that is equally sure, or
    equally unsure, everywhere.
    """
    head = list(scores[:FLAT_TOP])
    if len(head) < 2 or head[0] - head[-1] > FLAT_TOLERANCE * abs(head[0]):
        return None
    return (
        f"The {strategy} scores do not separate the tiles: the top {len(head)} lie within "
        f"{FLAT_TOLERANCE:.0%} of each other ({head[-1]:.3f} to {head[0]:.3f}), so the model's "
        "uncertainty says nothing about which tile to label first. Showing a random order "
        "spread over smears instead; label some of these and retrain for a ranking that means "
        "something."
    )


def suggest(
    store: Store,
    strategy: str = "entropy",
    top: int = 10,
    *,
    loaded: LoadedModel | None = None,
    diversity: str | None = "per_smear",
    score_missing: bool = True,
) -> Suggestions:
    """The next tiles to label, best first, spread over smears by ``diversity``.

    Scores come from the cache; tiles not yet scored by this checkpoint are scored first
    when ``score_missing`` (the CLI), or left out (the page, which queues a scoring job).
    When the scores do not separate the tiles (:func:`flat_note`), every open tile is put in
    the random order with ``per_smear`` diversity instead, and the result says so.
    """
    from training.strategies import RandomStrategy, TileScore, get_diversity

    if strategy != "random" and loaded is None:
        raise StoreError(
            f"The {strategy!r} strategy needs a segmentation model; train one first, "
            "or use --strategy random."
        )
    model_id = loaded.model_id if loaded and strategy != "random" else "none"
    if score_missing:
        score_unlabelled(store, strategy, loaded if strategy != "random" else None)
    cached = cached_scores(store, model_id, strategy)
    open_ids = set(unlabelled_tile_ids(store))
    ranked = sorted(
        (
            TileScore(t, smear, score, None, None if f is None else np.asarray(f, np.float32))
            for t, (smear, score, f) in cached.items()
            if t in open_ids
        ),
        key=lambda s: (-s.score, s.tile_id),
    )
    order = strategy
    note = flat_note(strategy, [s.score for s in ranked]) if strategy != "random" else None
    if note is not None:
        smear_of = {t.tile_id: t.smear_id for t in store.tiles()}
        ranked = sorted(
            (TileScore(t, smear_of[t], RandomStrategy.key(t)) for t in open_ids),
            key=lambda s: (-s.score, s.tile_id),
        )
        order, diversity = "random", "per_smear"
    if diversity:
        ranked = get_diversity(diversity).order(ranked, top)
    tiles = [Suggestion(s.tile_id, s.smear_id, float(s.score)) for s in ranked[:top]]
    return Suggestions(tiles, strategy, order, note)


# --------------------------------------------------------------------------- model quality
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
            f"(mean IoU {_fmt(miou)} against {_fmt(selection.get('rules_miou'))}): its "
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


# --------------------------------------------------------------------------- analysis
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
        _check_classes(store, loaded)
        image = np.ascontiguousarray(store.smear_image(smear_id))
        analysis, mask = analyse_image(
            loaded.model, image, names, loaded.inference_config(), um_per_px=info.um_per_px
        )
        model_id = loaded.model_id
    else:
        mask = store.smear_mask(smear_id)
        analysis = analyse_mask(mask, names, um_per_px=info.um_per_px)
        model_id = None
    _register_tables(store)
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
    _register_tables(store)
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


# --------------------------------------------------------------------------- evaluation
def evaluate_pairs(
    pairs: list,
    levels: str,
    loaded: LoadedModel,
    *,
    tolerance: int | None = None,
    lenient: bool = False,
) -> dict[str, Any]:
    """IoU and Dice per class of the model on image/mask pairs outside the workspace.

    Masks are mapped to the model's classes by nearest grey level under the same rule as
    ``import-masks`` (:func:`dataset.masks.apply_levels`): a grey farther than ``tolerance``
    from every listed level refuses the mask, or, ``lenient``, is left out of the scores as
    unlabelled and counted per file in ``unmatched``.
    """
    from dataset.images import decode_image
    from dataset.masks import (
        DEFAULT_LEVEL_TOLERANCE,
        apply_levels,
        load_mask_file,
        parse_levels,
        unmatched_levels,
    )

    band = DEFAULT_LEVEL_TOLERANCE if tolerance is None else tolerance
    from training.inference import iter_proba, probs_to_mask
    from training.metrics import confusion_matrix, metrics_from_confusion

    classes = list(loaded.card.classes)
    level_map = parse_levels(levels, classes)
    images, masks = [], []
    unmatched: dict[str, dict[int, int]] = {}
    for p in pairs:
        rgb = decode_image(p.image_bytes, p.image_name).rgb
        grey = load_mask_file(p.mask_bytes, p.mask_name)
        mask = apply_levels(grey, level_map, name=p.mask_name, tolerance=band, lenient=lenient)
        if lenient:
            found = unmatched_levels(grey, level_map, band)
            if found:
                unmatched[p.mask_name] = found
        if mask.shape != rgb.shape[:2]:
            raise ValueError(
                f"Mask {p.mask_name} is {mask.shape[1]}x{mask.shape[0]} but image {p.image_name} "
                f"is {rgb.shape[1]}x{rgb.shape[0]}; pair each image with its own mask."
            )
        images.append(rgb)
        masks.append(mask)
    cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for probs, truth in zip(
        iter_proba(loaded.model, images, loaded.inference_config()), masks, strict=True
    ):
        cm += confusion_matrix(probs_to_mask(probs), truth, len(classes))
    metrics = metrics_from_confusion(cm, classes)
    return {
        "model_id": loaded.model_id,
        "images": len(images),
        "per_class": {
            c: {"iou": metrics.iou[i], "dice": metrics.dice[i]} for i, c in enumerate(classes)
        },
        "mean_iou": metrics.miou,
        "mean_dice": _mean(metrics.dice),
        "level_tolerance": band,
        "unmatched": {
            name: {str(k): v for k, v in found.items()} for name, found in unmatched.items()
        }
        if lenient
        else None,
    }


def _mean(values: tuple[float | None, ...]) -> float | None:
    scored = [v for v in values if v is not None]
    return float(np.mean(scored)) if scored else None
