"""Segmentation training runs: which may start, on which device, and the job that runs one.

This joins the store (labelled tiles, split assignment), the model zoo and the job runner to
the plain-data trainer of :mod:`training.segment`.

Promises:
- Only a role that may ``train`` (:mod:`dataset.roles`) starts a run; the check is made here,
  whoever calls.
- One training run at a time: :func:`submit_training` refuses a run while another is queued
  or running (:class:`RunConflictError`, CLI exit status 3), for the pages and the CLI alike.
- A run may start from a trained model (``init_from``, :mod:`training.service.finetuning`):
  the start model is checked before anything is queued and again when the job starts, and the
  new model's card names it as ``parent``.
- The device is the explicit choice, else the ``SMEARLAB_DEVICE`` setting, else ``cpu``
  (:func:`training_device`).
- Training reads only the train split and selects on validation; test tiles are never read.
- A run registers its checkpoint only when it ends ``done`` (the job runner's ``add_model``),
  so a failed or cancelled run never changes the current model. The run becomes current only
  when it wins :func:`training.service.selection.select_model`; the comparison is saved on
  its card as ``metrics["selection"]``, and ``metrics["beats_rules"]`` says whether it beat
  the colour rules on those tiles.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from dataset import audit
from dataset.durable import locked
from dataset.png import decode_mask
from dataset.roles import Actor
from dataset.store import Store, StoreError
from training.kinds import TRAIN_SEGMENTATION, target_of
from training.service._figures import mean
from training.service.finetuning import resolve_start, start_note
from training.service.scoring import queue_rescoring
from training.service.selection import select_model

SEGMENT_TARGET = target_of(TRAIN_SEGMENTATION)

__all__ = [
    "SEGMENT_TARGET",
    "TRAIN_KIND",
    "RunConflictError",
    "active_training",
    "conflict_message",
    "load_samples",
    "segment_job",
    "split_counts",
    "submit_training",
    "training_device",
]


# Image context kept around a smear's labelled tiles: a training crop centred near their edge
# sees the real neighbouring cells rather than mirrored padding.
REGION_MARGIN = 128


def load_samples(
    store: Store, split: str, *, regions: bool = True, tile_ids: Iterable[str] | None = None
) -> list:
    """Labelled tiles of one split as training samples (latest revision of each).

    With ``regions`` (the default) the labelled tiles of each smear become one sample: the
    smear's pixels over the bounding box of those tiles plus :data:`REGION_MARGIN`, and their
    masks put back in place (``dataset.tiling.assemble``; pixels of no labelled tile are
    unlabelled). Training crops can then be centred on any cell, also one cut by a tile
    border, and validation scores whole cells as the test does. Without ``regions`` each
    tile is a sample of its own.

    Args:
        split: ``train`` or ``validation``; the test split is refused, so no model ever
            trains or selects on it.
        tile_ids: Only these of the split's labelled tiles (benchmarks that grow a labelled
            set); None for all of them.
    """
    from training.segment import Sample

    if split not in ("train", "validation"):
        raise ValueError(f"Training reads the train and validation splits only, not {split!r}.")
    ids = store.labelled_tile_ids(split)
    if tile_ids is not None:
        wanted = set(tile_ids)
        ids = [t for t in ids if t in wanted]
    tiles = {t.tile_id: t for t in store.tiles()}
    masks = {}
    for tile_id, revision, png in store.iter_latest_masks(ids):
        masks[tile_id] = (revision.created_at, decode_mask(png))
    if not regions:
        out = [
            Sample(
                image=np.ascontiguousarray(store.tile_image(tile_id)),
                mask=mask,
                tile_id=tile_id,
                smear_id=tiles[tile_id].smear_id,
            )
            for tile_id, (_, mask) in masks.items()
        ]
        return sorted(out, key=lambda s: s.tile_id)
    by_smear: dict[str, list[str]] = {}
    for tile_id in sorted(masks):
        by_smear.setdefault(tiles[tile_id].smear_id, []).append(tile_id)
    return [
        _region(smear_id, image, [tiles[t] for t in by_smear[smear_id]], masks)
        for smear_id, image in store.iter_smear_images(sorted(by_smear))
    ]


def _region(smear_id: str, image: np.ndarray, members: list, masks: dict) -> Any:
    from dataset.tiling import TileBox, assemble
    from training.segment import Sample

    height, width = image.shape[:2]
    x0 = max(0, min(t.x for t in members) - REGION_MARGIN)
    y0 = max(0, min(t.y for t in members) - REGION_MARGIN)
    x1 = min(width, max(t.x + t.w for t in members) + REGION_MARGIN)
    y1 = min(height, max(t.y + t.h for t in members) + REGION_MARGIN)
    # Oldest save first, so where tiles overlap the latest labelled pixel wins.
    ordered = sorted(members, key=lambda t: (masks[t.tile_id][0], t.tile_id))
    mask = assemble(
        x1 - x0,
        y1 - y0,
        ((TileBox(t.x - x0, t.y - y0, t.w, t.h), masks[t.tile_id][1]) for t in ordered),
    )
    ids = tuple(t.tile_id for t in members)
    return Sample(
        image=np.ascontiguousarray(image[y0:y1, x0:x1]),
        mask=mask,
        tile_id=ids[0] if len(ids) == 1 else f"{smear_id}:{len(ids)}-tiles",
        smear_id=smear_id,
        tile_ids=ids,
    )


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


def submit_training(workspace: Path, settings: dict[str, Any], *, actor: Actor) -> str:
    """Queue a segmentation training run; returns the job id.

    Args:
        settings: Fields of :class:`training.segment.SegTrainConfig` (validated here so a
            bad value is refused before anything is queued). Without ``device`` the run
            uses :func:`training_device`.

            With ``init_from`` ("current" or a model id) the run fine-tunes that model; it is
            checked and made concrete by :func:`training.service.finetuning.resolve_start`.
        actor: Who starts it (:data:`dataset.roles.SYSTEM` for an automatic update): the
            role must allow ``train``; the audit trail gets a ``train_start`` row.

    Raises:
        dataset.roles.PermissionDenied: The actor's role may not train (nothing is queued).
        RunConflictError: A training run is already queued or running; only one runs at a
            time, so the second is refused rather than queued behind it.
        training.service.finetuning.StartModelError: The start model cannot be fine-tuned.
        training.cluster.WorkersNeedRay: More than one worker, and ``ray_address`` is unset.
    """
    from training.cluster import check_workers
    from training.jobs import JobRunner
    from training.segment import SegTrainConfig

    name = audit.authorise(actor, "train", "train_start")
    settings = resolve_start(Path(workspace), settings)
    config = SegTrainConfig(**{**settings, "device": training_device(settings.get("device"))})
    check_workers(Path(workspace), config.workers)
    jobs = Path(workspace) / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    # The check and the submit under one lock: two presses (two browsers, a page and the
    # command line) at the same moment must not both find the slot free.
    with locked(jobs / ".training-submit.lock"):
        busy = active_training(workspace)
        if busy is not None:
            raise RunConflictError(conflict_message(busy))
        status = JobRunner(workspace).submit(
            TRAIN_KIND, SEGMENT_TARGET, {"config": config.model_dump(mode="json")}
        )
    audit.record(
        workspace,
        actor=name,
        action="train_start",
        object_id=status.job_id,
        detail={
            "kind": TRAIN_KIND,
            "init_from": config.init_from,
            "encoder": config.encoder,
            "epochs": config.epochs,
            "time_budget_min": config.time_budget_min,
        },
    )
    return status.job_id


def segment_job(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """Job target: train on the workspace's train split, stage the best checkpoint, and make it
    current if it beats the current model (or the colour rules) on the validation tiles."""
    from model_zoo import ModelCard, Zoo
    from model_zoo.card import new_model_id
    from training.cluster import check_workers
    from training.model import describe_machine, load_segmentation_model
    from training.segment import SegTrainConfig, train_segmentation

    config = SegTrainConfig(**params.get("config", {}))
    start = None
    if config.init_from is not None:
        # Checked again: the schema may have changed since the run was queued.
        config = SegTrainConfig(**resolve_start(ctx.workspace, config.model_dump()))
        start, _ = load_segmentation_model(Zoo(ctx.workspace), config.init_from)
        ctx.log(start_note(config))
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
        f"Training {config.encoder} on {sum(len(s.tiles) for s in train)} train / "
        f"{sum(len(s.tiles) for s in val)} validation tiles of {len(train)} / {len(val)} smears, "
        f"classes {', '.join(schema.names)}"
    )
    zoo = Zoo(ctx.workspace)
    staging = zoo.staging_dir("segmentation")

    def on_progress(fields: dict) -> None:
        ctx.progress(**fields)

    address = check_workers(ctx.workspace, config.workers)
    machine = describe_machine(config.device)
    engine: dict[str, Any] = {"engine": "local", "workers": 1, "devices": [machine]}
    if address is None:
        result = train_segmentation(
            train,
            val,
            schema.names,
            config,
            on_progress=on_progress,
            should_stop=lambda: ctx.cancelled,
            out_dir=staging,
            start=start,
        )
    else:
        from training.cluster.train import train_on_ray

        ctx.log(f"Training on Ray at {address} with {config.workers} worker(s)")
        on_ray = train_on_ray(
            train,
            val,
            schema.names,
            config,
            address=address,
            storage=ctx.job_dir / "ray",
            on_progress=on_progress,
            should_stop=lambda: ctx.cancelled,
            out_dir=staging,
            start=start,
        )
        result = on_ray.result
        machine = f"ray ({address}), {on_ray.workers} worker(s): " + " | ".join(on_ray.devices)
        engine = on_ray.engine()
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
    metrics["mean_dice"] = mean(result.metrics.dice)
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
            "train_tiles": sorted(t for s in train for t in s.tiles),
            "validation_tiles": sorted(t for s in val for t in s.tiles),
        },
        seed=config.seed,
        duration_s=result.duration_s,
        machine=machine,
        parent=config.init_from,
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
        "engine": engine,
    }
