"""Training a U-Net on labelled tiles held in memory.

The promise of this module: :func:`train_segmentation` takes plain data (train and
validation :class:`Sample` lists, the class names, one :class:`SegTrainConfig`) and returns a
:class:`TrainResult` holding the weights of the epoch with the best validation mean IoU, the
per-class IoU/Dice of that epoch and the whole history. A class with no labelled pixel in the
validation tiles has no IoU, is left out of the mean IoU that picks the best epoch, and is named
in ``metrics.absent`` (and in each validation's progress as ``val_absent``). It never sees
the test split (the caller passes only train and validation), refuses a smear that sits in
both, stops early when validation stops improving or the time budget runs out, and raises
:class:`NonFiniteLossError` rather than saving a model whose loss went NaN.

A run starts from random weights, or, fine-tuning, from a ``start`` model (the checkpoint
``config.init_from`` names, loaded by :func:`training.model.load_segmentation_model`): its
weights are loaded strictly into the model the config builds, so a start model with other
classes or another architecture is refused with the reason before the first step.

With the same seed, data, thread count and machine, two runs give the same weights.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataset.schema import UNLABELLED
from training.augment import AugmentConfig, augment, sample_crop
from training.inference import InferenceConfig, iter_proba
from training.losses import SegLoss, class_weights
from training.metrics import SegMetrics, confusion_matrix, metrics_from_confusion
from training.model import (
    SegModel,
    build_model,
    input_multiple,
    model_classes_count,
    seed_everything,
    to_model_input,
)

__all__ = [
    "MIN_STEPS_PER_EPOCH",
    "EpochRecord",
    "NonFiniteLossError",
    "Sample",
    "SegTrainConfig",
    "TrainResult",
    "TrainingCancelled",
    "evaluate",
    "train_segmentation",
]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; no checkpoint was written."""


class TrainingCancelled(RuntimeError):
    """Training was asked to stop before any epoch finished, so there is no model to keep."""


@dataclass(frozen=True, eq=False)
class Sample:
    """One labelled tile.

    Attributes:
        image: uint8 RGB pixels.
        mask: uint8 class indices, 255 = unlabelled.
        tile_id: Store id of the tile (used in error messages and reports).
        smear_id: Smear the tile was cut from (a smear never spans two splits).

    Shape:
        image: (H, W, 3); mask: (H, W).
    """

    image: np.ndarray
    mask: np.ndarray
    tile_id: str
    smear_id: str

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(
                f"Tile {self.tile_id}: image is {self.image.dtype} {self.image.shape}, "
                "expected uint8 RGB (H, W, 3)."
            )
        if self.mask.shape != self.image.shape[:2] or self.mask.dtype != np.uint8:
            raise ValueError(
                f"Tile {self.tile_id}: mask is {self.mask.dtype} {self.mask.shape}, expected "
                f"uint8 {self.image.shape[:2]} like its image."
            )


# With a few dozen labelled tiles one pass is 3 batches: validating (and counting patience)
# after every 3 steps stopped the demo's first run after 27 steps, still predicting background
# only. At least this many steps make an epoch.
MIN_STEPS_PER_EPOCH = 20


class SegTrainConfig(BaseModel):
    """Everything that decides a training run; saved on the model card as its settings."""

    model_config = ConfigDict(extra="forbid")

    encoder: str = "mobilenet_v2"
    encoder_weights: str | None = Field(
        None, description="None (random start), a local .safetensors file, or an smp name"
    )
    encoder_depth: int = Field(5, ge=3, le=5)
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(8, ge=1)
    patch_size: int = Field(256, ge=32, description="training crop side, a multiple of 32")
    steps_per_epoch: int | None = Field(
        None,
        ge=1,
        description="default: enough batches to see every tile once, and at least "
        f"{MIN_STEPS_PER_EPOCH}",
    )
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    ce_weight: float = Field(1.0, ge=0)
    dice_weight: float = Field(1.0, ge=0)
    class_weights: Literal["none", "inverse", "inverse_sqrt"] = "inverse_sqrt"
    balanced_crops: float = Field(
        0.5, ge=0, le=1, description="share of crops centred on a uniformly drawn class"
    )
    augment: AugmentConfig = AugmentConfig()
    inference: InferenceConfig = InferenceConfig()
    time_budget_min: float | None = Field(None, gt=0)
    patience: int | None = Field(8, ge=1, description="epochs without a better val mIoU")
    seed: int = 0
    num_threads: int | None = Field(None, ge=1)
    device: str = "cpu"
    init_from: str | None = Field(
        None,
        min_length=1,
        description="fine-tune: the zoo model id to start from, or 'current' (resolved to an "
        "id by training.service before the run is queued); None: random start",
    )

    @field_validator("patch_size")
    @classmethod
    def _multiple_of_32(cls, v: int) -> int:
        if v % 32:
            raise ValueError(f"patch_size must be a multiple of 32, e.g. {max(32, v // 32 * 32)}")
        return v


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of training and its validation."""

    epoch: int
    train_loss: float
    val_loss: float
    val_miou: float | None
    val_iou: tuple[float | None, ...]
    steps: int
    lr: float
    seconds: float


@dataclass(frozen=True, eq=False)
class TrainResult:
    """Outcome of a run; ``state_dict`` holds the best epoch's weights (CPU tensors)."""

    classes: tuple[str, ...]
    metrics: SegMetrics
    best_epoch: int
    history: tuple[EpochRecord, ...]
    epochs_run: int
    duration_s: float
    stopped: Literal["epochs", "early_stop", "time_budget", "cancelled"]
    state_dict: dict[str, torch.Tensor]
    config: SegTrainConfig
    n_train: int
    n_val: int
    class_weights: tuple[float, ...] | None
    checkpoint_dir: Path | None

    def build_model(self) -> SegModel:
        """A fresh model carrying the best weights, in eval mode."""
        model = build_model(len(self.classes), self.config.encoder, None, self.config.encoder_depth)
        model.load_state_dict(self.state_dict)
        return model.eval()

    def card_metrics(self) -> dict:
        """JSON-ready metrics for a model card."""
        return {
            **self.metrics.to_dict(),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "stopped": self.stopped,
            "n_train_tiles": self.n_train,
            "n_val_tiles": self.n_val,
            "history": [
                {
                    "epoch": r.epoch,
                    "train_loss": r.train_loss,
                    "val_loss": r.val_loss,
                    "val_miou": r.val_miou,
                }
                for r in self.history
            ],
        }


def evaluate(
    model: SegModel,
    samples: Sequence[Sample],
    classes: Sequence[str],
    config: InferenceConfig | None = None,
) -> tuple[SegMetrics, float]:
    """Per-class scores and mean negative log-likelihood on the labelled pixels of ``samples``.

    Uses the same sliding-window prediction as everything else (:func:`iter_proba`).
    """
    n = len(classes)
    cm = np.zeros((n, n), dtype=np.int64)
    nll, count = 0.0, 0
    for sample, probs in zip(
        samples, iter_proba(model, (s.image for s in samples), config), strict=True
    ):
        cm += confusion_matrix(probs.argmax(axis=0), sample.mask, n)
        valid = sample.mask != UNLABELLED
        if valid.any():
            target = sample.mask[valid].astype(np.int64)
            p = probs[:, valid][target, np.arange(target.size)]
            nll += float(-np.log(np.clip(p, 1e-7, 1.0)).sum())
            count += target.size
    return metrics_from_confusion(cm, classes), nll / max(count, 1)


def _checked(samples: Sequence[Sample], n_classes: int, split: str) -> list[Sample]:
    kept = []
    for s in samples:
        labelled = s.mask[s.mask != UNLABELLED]
        if labelled.size == 0:
            continue
        if int(labelled.max()) >= n_classes:
            raise ValueError(
                f"Tile {s.tile_id} ({split}) has class index {int(labelled.max())} but only "
                f"{n_classes} classes were given; re-save its mask under the current schema."
            )
        kept.append(s)
    if not kept:
        raise ValueError(
            f"No {split} tile has a labelled pixel. Label some tiles of a {split} smear first."
        )
    return kept


def _load_start(
    model: SegModel, start: SegModel, classes: tuple[str, ...], config: SegTrainConfig
) -> None:
    """Copy ``start``'s weights into ``model`` (built from ``config``), or say why they differ."""
    name = config.init_from or "the start model"
    if model_classes_count(start) != len(classes):
        raise ValueError(
            f"Cannot fine-tune from model {name}: it predicts {model_classes_count(start)} "
            f"classes, the workspace has {len(classes)} ({', '.join(classes)}); train from scratch."
        )
    own, theirs = model.state_dict(), start.state_dict()
    missing = sorted(own.keys() - theirs.keys())
    extra = sorted(theirs.keys() - own.keys())
    wrong = sorted(k for k in own.keys() & theirs.keys() if own[k].shape != theirs[k].shape)
    if missing or extra or wrong:
        example = (missing or extra or wrong)[0]
        raise ValueError(
            f"Cannot fine-tune from model {name}: its weights do not fit a U-Net with the "
            f"{config.encoder} encoder at depth {config.encoder_depth} ({len(missing)} missing, "
            f"{len(extra)} extra, {len(wrong)} of another shape, e.g. {example}); fine-tune "
            "with the parent's encoder and depth, or train from scratch."
        )
    model.load_state_dict({k: v.detach().to("cpu") for k, v in theirs.items()}, strict=True)


def train_segmentation(
    train: Sequence[Sample],
    val: Sequence[Sample],
    classes: Sequence[str],
    config: SegTrainConfig | None = None,
    on_progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    out_dir: Path | None = None,
    start: SegModel | None = None,
) -> TrainResult:
    """Train a U-Net and keep the epoch with the best validation mean IoU.

    Args:
        train: Labelled training tiles (tiles without a labelled pixel are skipped).
        val: Labelled validation tiles, from smears not in ``train``.
        classes: Class names; mask value ``i`` is ``classes[i]``.
        config: Run settings; defaults to :class:`SegTrainConfig()`.
        on_progress: Called with a JSON-ready dict after every step
            (``phase="train"``) and every validation (``phase="validate"``).
        should_stop: Polled before every step; returning True ends the run early.
        out_dir: If given, the best model is written there with ``save_pretrained``
            (``config.json`` + ``model.safetensors``).
        start: The model to fine-tune (``config.init_from`` names it): its weights replace the
            random ones. Required when ``config.init_from`` is set.

    Raises:
        ValueError: Empty or inconsistent inputs, a smear in both splits, or a ``start``
            model whose classes or architecture differ from ``classes`` and the config.
        NonFiniteLossError: The loss became NaN/inf (try a lower ``lr``).
        TrainingCancelled: ``should_stop`` fired before the first epoch finished.
    """
    config = config or SegTrainConfig()
    classes = tuple(classes)
    started = time.monotonic()
    train = _checked(train, len(classes), "train")
    val = _checked(val, len(classes), "validation")
    shared = {s.smear_id for s in train} & {s.smear_id for s in val}
    if shared:
        raise ValueError(
            f"Smear(s) {', '.join(sorted(shared)[:5])} have tiles in both train and validation; "
            "a smear must sit in one split only, or validation scores are inflated."
        )
    if config.init_from is not None and start is None:
        raise ValueError(
            f"The config starts from model {config.init_from!r} but no start model was given; "
            "load it with training.model.load_segmentation_model and pass it as start."
        )
    previous_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        return _train(
            train, val, classes, config, on_progress, should_stop, out_dir, started, start
        )
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    train: list[Sample],
    val: list[Sample],
    classes: tuple[str, ...],
    config: SegTrainConfig,
    on_progress: Callable[[dict], None] | None,
    should_stop: Callable[[], bool] | None,
    out_dir: Path | None,
    started: float,
    start: SegModel | None = None,
) -> TrainResult:
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    device = torch.device(config.device)
    # Fine-tuning fetches no encoder weights: every weight comes from the start model.
    weights_name = None if start is not None else config.encoder_weights
    model = build_model(len(classes), config.encoder, weights_name, config.encoder_depth)
    if start is not None:
        _load_start(model, start, classes, config)
    model = model.to(device)
    multiple = input_multiple(model)
    largest = max(max(s.image.shape[:2]) for s in train)
    # Tiles smaller than the patch (e.g. 120 px crops) are padded only up to the next multiple.
    crop = min(config.patch_size, -(-largest // multiple) * multiple)

    weights = None
    if config.class_weights != "none":
        weights = class_weights((s.mask for s in train), len(classes), config.class_weights)
    loss_fn = SegLoss(
        None if weights is None else torch.from_numpy(weights),
        ce_weight=config.ce_weight,
        dice_weight=config.dice_weight,
    ).to(device)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, T_max=config.epochs, eta_min=config.lr * 0.05
    )
    steps = config.steps_per_epoch or max(
        MIN_STEPS_PER_EPOCH, math.ceil(len(train) / config.batch_size)
    )
    budget_s = None if config.time_budget_min is None else config.time_budget_min * 60.0

    def report(**fields) -> None:
        if on_progress is not None:
            on_progress({**fields, "elapsed_s": round(time.monotonic() - started, 2)})

    history: list[EpochRecord] = []
    best: tuple[SegMetrics, int, dict[str, torch.Tensor]] | None = None
    stopped: str = "epochs"
    since_best = 0
    order: list[int] = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        epoch_start = time.monotonic()
        lr = optimiser.param_groups[0]["lr"]
        losses: list[float] = []
        for step in range(1, steps + 1):
            if should_stop is not None and should_stop():
                stopped = "cancelled"
                break
            # At least one step always runs, so even a tiny budget yields a model.
            over_budget = budget_s is not None and time.monotonic() - started >= budget_s
            if over_budget and (history or losses):
                stopped = "time_budget"
                break
            batch = []
            # A batch is always full: with few tiles, the same tile gives several random crops.
            for _ in range(config.batch_size):
                if not order:
                    order = rng.permutation(len(train)).tolist()
                batch.append(train[order.pop()])
            images, masks = [], []
            for sample in batch:
                image, mask = sample_crop(
                    sample.image, sample.mask, crop, rng, config.balanced_crops
                )
                image, mask = augment(image, mask, rng, config.augment)
                images.append(image)
                masks.append(mask)
            x = to_model_input(np.stack(images), device)
            y = torch.from_numpy(np.stack(masks)).long().to(device)
            loss = loss_fn(model(x), y)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"The training loss became {loss.item()} at epoch {epoch}, step {step} "
                    f"(tiles {', '.join(s.tile_id for s in batch)}). No model was saved; try a "
                    f"lower learning rate than {config.lr:g} or check those tiles."
                )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(float(loss.item()))
            report(
                phase="train", epoch=epoch, epochs=config.epochs, step=step, steps=steps,
                loss=losses[-1], best_miou=None if best is None else best[0].miou,
            )  # fmt: skip
        if not losses or stopped == "cancelled":
            break
        scheduler.step()
        metrics, val_loss = evaluate(model, val, classes, config.inference)
        record = EpochRecord(
            epoch=epoch,
            train_loss=float(np.mean(losses)),
            val_loss=val_loss,
            val_miou=metrics.miou,
            val_iou=metrics.iou,
            steps=len(losses),
            lr=lr,
            seconds=time.monotonic() - epoch_start,
        )
        history.append(record)
        improved = best is None or (metrics.miou or 0.0) > (best[0].miou or 0.0)
        if improved:
            state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            best = (metrics, epoch, state)
            since_best = 0
        else:
            since_best += 1
        report(
            phase="validate", epoch=epoch, epochs=config.epochs, train_loss=record.train_loss,
            val_loss=val_loss, val_miou=metrics.miou, best_miou=best[0].miou,
            best_epoch=best[1], val_iou=dict(zip(classes, metrics.iou, strict=True)),
            val_absent=list(metrics.absent),
        )  # fmt: skip
        if stopped != "epochs":
            break
        if config.patience is not None and since_best >= config.patience:
            stopped = "early_stop"
            break
    if best is None:
        raise TrainingCancelled("Training was stopped before the first epoch finished.")

    metrics, best_epoch, state = best
    checkpoint_dir = None
    if out_dir is not None:
        model.load_state_dict(state)
        model.to("cpu").save_pretrained(Path(out_dir))
        checkpoint_dir = Path(out_dir)
    return TrainResult(
        classes=classes,
        metrics=metrics,
        best_epoch=best_epoch,
        history=tuple(history),
        epochs_run=len(history),
        duration_s=time.monotonic() - started,
        stopped=stopped,  # type: ignore[arg-type]
        state_dict=state,
        config=copy.deepcopy(config),
        n_train=len(train),
        n_val=len(val),
        class_weights=None if weights is None else tuple(float(w) for w in weights),
        checkpoint_dir=checkpoint_dir,
    )
