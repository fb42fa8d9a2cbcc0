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

The learning rate warms up over the first steps, then falls on a cosine over the whole run:
over ``epochs`` x steps per epoch, or, with a time budget, over the budget, whichever ends
first, so a budgeted run finishes its schedule instead of stopping at the top of it. Without
a budget the run validates after every epoch; with one, at 70 % and 100 % of it, and the
last validation fits inside the budget. An "epoch" in the history is the stretch between two
validations.

A run starts from random weights, or, fine-tuning, from a ``start`` model (the checkpoint
``config.init_from`` names, loaded by :func:`training.model.load_segmentation_model`): its
weights are loaded strictly into the model the config builds, so a start model with other
classes or another architecture is refused with the reason before the first step.

Without a time budget, the same seed, data, thread count and machine give the same weights
(a budget makes the number of steps depend on the machine's speed).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dataset.schema import UNLABELLED
from training.augment import AugmentConfig, LabelledPixels, augment, sample_crop
from training.inference import InferenceConfig, iter_proba
from training.losses import SegLoss, class_weights
from training.metrics import SegMetrics, confusion_matrix, metrics_from_confusion
from training.model import (
    DECODER_CHANNELS,
    LIGHT_DECODER,
    SegModel,
    build_model,
    decoder_stages,
    input_multiple,
    model_classes_count,
    seed_everything,
    to_model_input,
)

__all__ = [
    "BUDGET_CHECKPOINTS",
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
    """One labelled tile, or a region of a smear holding several labelled tiles.

    Attributes:
        image: uint8 RGB pixels.
        mask: uint8 class indices, 255 = unlabelled.
        tile_id: Store id of the tile, or a name for the region (error messages, reports).
        smear_id: Smear the tile was cut from (a smear never spans two splits).
        tile_ids: The labelled tiles a region is made of; empty for a single tile.

    Shape:
        image: (H, W, 3); mask: (H, W).
    """

    image: np.ndarray
    mask: np.ndarray
    tile_id: str
    smear_id: str
    tile_ids: tuple[str, ...] = ()

    @property
    def tiles(self) -> tuple[str, ...]:
        """The store tiles behind this sample."""
        return self.tile_ids or (self.tile_id,)

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
    # Half as wide as smp's decoder: on 2 cores a step takes about 0.6 of the time, so an
    # 8-minute run takes ~1.6x the steps, and on the BCCD white cells it scored higher in the
    # same minutes (issue 11 note). DECODER_CHANNELS is smp's, for a lab with a GPU.
    decoder_channels: tuple[int, ...] = Field(
        LIGHT_DECODER,
        min_length=3,
        max_length=5,
        description="U-Net decoder widths, widest first; the first encoder_depth are used "
        f"(smp's standard decoder is {DECODER_CHANNELS})",
    )
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
    # Unweighted by default: the Dice term already gives every class an equal say and half the
    # crops are centred on a uniformly drawn class. Weighting cross-entropy on top
    # (inverse_sqrt) grew the white cells' cytoplasm past its border: on the BCCD test smears,
    # seed 0, 8 minutes, cytoplasm IoU 0.617 against the plain script's 0.695.
    class_weights: Literal["none", "inverse", "inverse_sqrt"] = "none"
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
    channels_last: bool = Field(
        True,
        description="NHWC memory layout for the model and batches: a training step of the "
        "default U-Net took 1.52 s instead of 1.90 s on 2 cores (bench in the issue 11 note)",
    )
    bf16: bool = Field(
        False,
        description="bf16 autocast for the forward pass (a GPU, or a CPU with native bf16: "
        "training.service.native_bf16); off until compared with fp32 on a real run",
    )
    ema_decay: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="keep an exponential moving average of the weights with this decay "
        "(e.g. 0.99) and validate and keep the average; None: the weights as trained",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="data-parallel training processes (DistributedDataParallel); more than "
        "one needs Ray (the ray_address setting)",
    )
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

    @model_validator(mode="after")
    def _a_decoder_stage_per_encoder_stage(self) -> SegTrainConfig:
        decoder_stages(self.decoder_channels, self.encoder_depth)  # refused before a run queues
        return self


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
    # Data-parallel runs: each rank's final parameter digest (parameter_digest), rank order.
    replicas: tuple[str, ...] = ()

    def build_model(self) -> SegModel:
        """A fresh model carrying the best weights, in eval mode."""
        c = self.config
        model = build_model(len(self.classes), c.encoder, None, c.encoder_depth, c.decoder_channels)
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
            f"{config.encoder} encoder at depth {config.encoder_depth} and decoder "
            f"{list(config.decoder_channels[: config.encoder_depth])} ({len(missing)} missing, "
            f"{len(extra)} extra, {len(wrong)} of another shape, e.g. {example}); fine-tune "
            "with the parent's encoder, depth and decoder, or train from scratch."
        )
    model.load_state_dict({k: v.detach().to("cpu") for k, v in theirs.items()}, strict=True)


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel run (``torch.distributed`` is initialised).

    Rank 0 takes every decision that depends on a clock or a file (cancel, time budget), and
    every decision after a validation (which only rank 0 runs); :meth:`agree` gives all ranks
    its values before each step, so no rank stops on its own clock and leaves the others
    waiting in an all-reduce.
    """

    rank: int
    world: int

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def agree(self, values: Sequence[float]) -> list[float]:
        """Rank 0's ``values``, on every rank."""
        import torch.distributed as dist

        tensor = torch.tensor(list(values), dtype=torch.float64)
        dist.broadcast(tensor, src=0)
        return tensor.tolist()

    def gather(self, value: object) -> list:
        """Every rank's ``value``, in rank order, on every rank."""
        import torch.distributed as dist

        out: list = [None] * self.world
        dist.all_gather_object(out, value)
        return out


def parameter_digest(model: torch.nn.Module) -> str:
    """A SHA-256 of a model's parameters (not its buffers), to compare replicas."""
    digest = hashlib.sha256()
    for p in model.parameters():
        digest.update(p.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_segmentation(
    train: Sequence[Sample],
    val: Sequence[Sample],
    classes: Sequence[str],
    config: SegTrainConfig | None = None,
    on_progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    out_dir: Path | None = None,
    start: SegModel | None = None,
    ranks: Ranks | None = None,
) -> TrainResult | None:
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
        ranks: In a data-parallel run (:mod:`training.cluster.train`), this process's rank:
            it trains on every ``world``-th train sample from its rank, DDP averages the
            gradients, and only rank 0 validates, reports, keeps the best weights and returns
            a result (the others return None). ``should_stop`` is asked on rank 0 only.

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
    if ranks is not None and len(train) < ranks.world:
        raise ValueError(
            f"{ranks.world} workers need at least {ranks.world} train samples (one per "
            f"worker); there are {len(train)}. Use fewer workers or label more smears."
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
            train, val, classes, config, on_progress, should_stop, out_dir, started, start, ranks
        )
    finally:
        torch.set_num_threads(previous_threads)


class WeightAverage:
    """An exponential moving average of a model's weights and buffers (Polyak averaging).

    A short run with small batches ends on weights that the last few batches pulled about; the
    average over the last ~``1 / (1 - decay)`` steps is smoother. The decay ramps up as
    ``(1 + n) / (10 + n)`` over the first updates, so the random start weighs little even in a
    run of a few hundred steps. Integer buffers (BatchNorm's batch count) are copied.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        self.model.requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        weight = 1.0 - self.current_decay()
        mine = [*self.model.parameters(), *self.model.buffers()]
        theirs = [*model.parameters(), *model.buffers()]
        floats = [
            (a, b.detach()) for a, b in zip(mine, theirs, strict=True) if a.is_floating_point()
        ]
        torch._foreach_lerp_([a for a, _ in floats], [b for _, b in floats], weight)
        for a, b in zip(mine, theirs, strict=True):
            if not a.is_floating_point():
                a.copy_(b)


# A run with a time budget validates when this share of it has passed (of its steps or of its
# time, whichever is further). On the BCCD white cells one validation costs about 25 s on 2
# cores, a twentieth of an 8-minute run: one at 70 % catches a run that goes wrong late, the
# one at the end keeps the fully annealed weights.
BUDGET_CHECKPOINTS = (0.7, 1.0)
# The learning rate rises over the first steps (AdamW from random weights jumps otherwise)
# and then follows a cosine down to this share of ``lr`` at the end of the run.
WARMUP_STEPS = 10
FINAL_LR_SHARE = 0.05
# What ends a run after a validation, as rank 0 tells the other ranks ("" = go on).
_OUTCOMES = ("", "time_budget", "epochs", "early_stop")
# The last validation comes after the cosine has annealed the weights; an earlier checkpoint is
# kept instead only when it scored more than this much higher (val mIoU), i.e. when the run
# went wrong late. Closer scores are noise: on the BCCD white cells the 70 % checkpoint of an
# 8-minute run won by 0.0027 on the 32 validation smears.
END_TOLERANCE = 0.01


class _Plan:
    """How far a run has got (0..1), its learning rate there, and when it validates.

    The share of the run done is the larger of steps done / ``epochs`` x steps per epoch and,
    with a time budget, time spent / time that training may take. So the learning-rate
    schedule ends with the run however the run ends, instead of stopping partway down a
    40-epoch cosine when the budget runs out. The last validation must fit in the budget too:
    training stops early by as long as the previous validation took.
    """

    def __init__(self, config: SegTrainConfig, steps_per_epoch: int, started: float) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = config.epochs * steps_per_epoch
        self.budget_s = None if config.time_budget_min is None else config.time_budget_min * 60
        self.started = started
        self.base_lr = config.lr
        if self.budget_s is None:
            self.checkpoints = tuple(k / config.epochs for k in range(1, config.epochs + 1))
        else:
            self.checkpoints = BUDGET_CHECKPOINTS
        self.next = 0
        self.reserve_s = 0.0
        self.step_s: float | None = None

    @property
    def rounds(self) -> int:
        return len(self.checkpoints)

    def _train_s(self) -> float:
        assert self.budget_s is not None
        return max(1e-6, self.budget_s - self.reserve_s)

    def fraction(self, step: int, now: float) -> float:
        done = step / self.total_steps
        if self.budget_s is not None:
            done = max(done, (now - self.started) / self._train_s())
        return done

    def timed_out(self, now: float) -> bool:
        return self.budget_s is not None and now - self.started >= self._train_s()

    def due(self, fraction: float) -> bool:
        return self.next < len(self.checkpoints) and fraction >= self.checkpoints[self.next] - 1e-9

    def validated(self, seconds: float, fraction: float) -> None:
        if self.budget_s is not None:
            self.reserve_s = seconds
        while self.due(fraction):
            self.next += 1

    def finished(self, step: int, fraction: float) -> bool:
        return self.next >= len(self.checkpoints) or step >= self.total_steps

    def lr(self, step: int, fraction: float) -> float:
        warm = min(1.0, (step + 1) / WARMUP_STEPS)
        done = min(max(fraction, 0.0), 1.0)
        cosine = FINAL_LR_SHARE + (1 - FINAL_LR_SHARE) * 0.5 * (1 + math.cos(math.pi * done))
        return self.base_lr * warm * cosine

    def stepped(self, seconds: float) -> None:
        self.step_s = seconds if self.step_s is None else 0.9 * self.step_s + 0.1 * seconds

    def steps_left_in_round(self, step: int, now: float) -> int:
        """Steps until the next validation (an estimate under a time budget)."""
        if self.next >= len(self.checkpoints):
            return 0
        target = self.checkpoints[self.next]
        left = max(0, math.ceil(target * self.total_steps - 1e-9) - step)
        if self.budget_s is not None and self.step_s:
            until = self.started + target * self._train_s() - now
            left = min(left, max(0, round(until / self.step_s)))
        return left


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
    ranks: Ranks | None = None,
) -> TrainResult | None:
    leader = ranks is None or ranks.leader
    seed_everything(config.seed)  # the same first weights on every rank
    # Rank 0 draws as a single process does, so one worker trains exactly as here.
    rng = np.random.default_rng(config.seed if leader else [config.seed, ranks.rank])
    device = torch.device(config.device)
    # Fine-tuning fetches no encoder weights: every weight comes from the start model.
    weights_name = None if start is not None else config.encoder_weights
    model = build_model(
        len(classes), config.encoder, weights_name, config.encoder_depth, config.decoder_channels
    )
    if start is not None:
        _load_start(model, start, classes, config)
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    # DDP averages the gradients of every rank's batch in backward; ``model`` stays the module
    # that is validated, averaged and saved.
    # static_graph: the same parameters take part in every step, and a shallow encoder leaves
    # some of its stages out of the graph, which DDP otherwise refuses.
    net = (
        model
        if ranks is None
        else torch.nn.parallel.DistributedDataParallel(model, static_graph=True)
    )
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
    # Each tile counts once per epoch: a smear region of 12 labelled tiles is drawn 12 times.
    # A rank draws from its shard: every ``world``-th sample from its rank.
    mine = range(len(train)) if ranks is None else range(ranks.rank, len(train), ranks.world)
    pool = [i for i in mine for _ in train[i].tiles]
    # Where each sample's labelled pixels lie, found the first time it is drawn.
    where: dict[int, LabelledPixels] = {}
    centre_rng = np.random.default_rng([config.seed, 1] if leader else [config.seed, 1, ranks.rank])
    # An epoch sees every tile once over all ranks; the same number of steps on each.
    world = 1 if ranks is None else ranks.world
    n_tiles = sum(len(s.tiles) for s in train)
    steps = config.steps_per_epoch or max(
        MIN_STEPS_PER_EPOCH, math.ceil(n_tiles / (config.batch_size * world))
    )
    plan = _Plan(config, steps, started)
    autocast = config.bf16 and device.type in ("cpu", "cuda")
    average = None if config.ema_decay is None else WeightAverage(model, config.ema_decay)
    # What is validated and kept: the weights as trained, or their moving average.
    kept = model if average is None else average.model

    def report(**fields) -> None:
        if on_progress is not None and leader:
            on_progress({**fields, "elapsed_s": round(time.monotonic() - started, 2)})

    history: list[EpochRecord] = []
    best: tuple[SegMetrics, int, dict[str, torch.Tensor]] | None = None
    stopped: str = "epochs"
    since_best = 0
    validations = 0  # on every rank (only rank 0 keeps a history)
    order: list[int] = []
    step = 0  # steps of the whole run
    losses: list[float] = []  # steps since the last validation
    round_start, round_lr = time.monotonic(), plan.lr(0, 0.0)
    model.train()
    while True:
        stop = leader and should_stop is not None and should_stop()
        now = time.monotonic()
        timed_out = plan.timed_out(now)
        fraction = plan.fraction(step, now)
        if ranks is not None:  # rank 0's clock and cancel decide for all
            agreed = ranks.agree([stop, timed_out, fraction])
            stop, timed_out, fraction = bool(agreed[0]), bool(agreed[1]), agreed[2]
        if stop:
            stopped = "cancelled"
            break
        if losses and (timed_out or plan.due(fraction)):
            validations += 1
            if not leader:
                plan.validated(0.0, fraction)
                outcome = _OUTCOMES[int(ranks.agree([0])[0])]
                if outcome:
                    stopped = outcome
                    break
                losses = []
                model.train()
                continue
            metrics, val_loss = evaluate(kept, val, classes, config.inference)
            plan.validated(time.monotonic() - now, fraction)
            epoch = len(history) + 1
            record = EpochRecord(
                epoch=epoch,
                train_loss=float(np.mean(losses)),
                val_loss=val_loss,
                val_miou=metrics.miou,
                val_iou=metrics.iou,
                steps=len(losses),
                lr=round_lr,
                seconds=time.monotonic() - round_start,
            )
            history.append(record)
            score, best_score = metrics.miou or 0.0, 0.0 if best is None else best[0].miou or 0.0
            last = timed_out or plan.finished(step, fraction)
            improved = best is None or score > best_score
            if last and not improved:
                improved = score >= best_score - END_TOLERANCE
            if improved:
                state = {
                    k: v.detach().to("cpu", copy=True).contiguous()
                    for k, v in kept.state_dict().items()
                }
                best = (metrics, epoch, state)
                since_best = 0
            else:
                since_best += 1
            report(
                phase="validate", epoch=epoch, epochs=plan.rounds, train_loss=record.train_loss,
                val_loss=val_loss, val_miou=metrics.miou, best_miou=best[0].miou,
                best_epoch=best[1], val_iou=dict(zip(classes, metrics.iou, strict=True)),
                val_absent=list(metrics.absent), fraction=round(min(fraction, 1.0), 4),
                budget_s=plan.budget_s,
            )  # fmt: skip
            outcome = ""
            if timed_out:
                outcome = "time_budget"
            elif plan.finished(step, fraction):
                outcome = "epochs"
            elif config.patience is not None and since_best >= config.patience:
                outcome = "early_stop"
            if ranks is not None:
                ranks.agree([_OUTCOMES.index(outcome)])
            if outcome:
                stopped = outcome
                break
            losses = []
            round_start, round_lr = time.monotonic(), plan.lr(step, fraction)
            model.train()
            continue
        # At least one step always runs, so even a tiny budget yields a model.
        if timed_out and validations:
            stopped = "time_budget"
            break
        batch = []
        # A batch is always full: with few tiles, the same tile gives several random crops.
        for _ in range(config.batch_size):
            if not order:
                order = rng.permutation(pool).tolist()
            batch.append(train[order.pop()])
        images, masks = [], []
        for sample in batch:
            key = id(sample)
            if key not in where:
                where[key] = LabelledPixels.of(sample.mask, centre_rng)
            image, mask = sample_crop(
                sample.image, sample.mask, crop, rng, config.balanced_crops, where[key]
            )
            image, mask = augment(image, mask, rng, config.augment)
            images.append(image)
            masks.append(mask)
        x = to_model_input(np.stack(images), device)
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(np.stack(masks)).long().to(device)
        lr = plan.lr(step, fraction)
        for group in optimiser.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = net(x)
        loss = loss_fn(logits.float(), y)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"The training loss became {loss.item()} at step {step + 1} "
                f"(tiles {', '.join(s.tile_id for s in batch)}). No model was saved; try a "
                f"lower learning rate than {config.lr:g} or check those tiles."
            )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if average is not None:
            average.update(model)
        step += 1
        losses.append(float(loss.item()))
        plan.stepped(time.monotonic() - now)
        report(
            phase="train", epoch=len(history) + 1, epochs=plan.rounds, step=len(losses),
            steps=len(losses) + plan.steps_left_in_round(step, time.monotonic()),
            loss=losses[-1], lr=lr, best_miou=None if best is None else best[0].miou,
            fraction=round(min(plan.fraction(step, time.monotonic()), 1.0), 4),
            budget_s=plan.budget_s, run_step=step,
        )  # fmt: skip
    replicas: tuple[str, ...] = ()
    if ranks is not None:
        # DDP keeps the replicas equal; a run whose ranks drifted apart has no model to keep.
        # Parameters only: each rank's BatchNorm statistics take in its own last batch.
        replicas = tuple(ranks.gather(parameter_digest(model)))
        if len(set(replicas)) != 1:
            shown = ", ".join(d[:8] for d in replicas)
            raise RuntimeError(
                f"The {ranks.world} workers ended with different weights ({shown}); the run "
                "is not kept. Train again, and report this if it recurs."
            )
    if not leader:
        return None
    if best is None:
        raise TrainingCancelled("Training was stopped before the first epoch finished.")

    metrics, best_epoch, state = best
    checkpoint_dir = None
    if out_dir is not None:
        model.load_state_dict(state)
        model.to("cpu", memory_format=torch.contiguous_format).save_pretrained(Path(out_dir))
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
        n_train=n_tiles,
        n_val=sum(len(s.tiles) for s in val),
        class_weights=None if weights is None else tuple(float(w) for w in weights),
        checkpoint_dir=checkpoint_dir,
        replicas=replicas,
    )
