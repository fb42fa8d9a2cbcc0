"""A tiny labelled workspace and a tiny trained U-Net, shared by the service and page tests.

Smears are 128x128 pink fields with dark discs (class 1 = leukocyte on a disc, 0 = background),
cut into 64x64 tiles; one smear per requested split, chosen through the patient's group key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dataset.images import encode_png_lossless, smear_id_for
from dataset.store import NewSmear, Store, split_for_group

CLASSES = ["background", "leukocyte"]
TINY_CONFIG = {
    "epochs": 1,
    "patch_size": 64,
    "batch_size": 4,
    "encoder_depth": 3,
    "seed": 1,
    "steps_per_epoch": 2,
}


def patient_in(split: str) -> str:
    """A patient pseudonym whose group lands in ``split`` under the default seed."""
    return next(
        p for p in (f"P{i}" for i in range(1000)) if split_for_group(f"patient:{p}", 0) == split
    )


def disc_smear(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A pink field with dark discs and its exact mask.

    Shape:
        returns (128, 128, 3) uint8 pixels and a (128, 128) uint8 mask.
    """
    rng = np.random.default_rng(seed)
    img = np.full((128, 128, 3), (230, 200, 210), np.uint8)
    mask = np.zeros((128, 128), np.uint8)
    yy, xx = np.mgrid[:128, :128]
    for _ in range(6):
        cy, cx = rng.integers(10, 118, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 64
        img[disc] = (120, 40, 140)
        mask[disc] = 1
    return img, mask


def make_workspace(ws: Path, splits=("train", "train", "validation", "test")) -> Path:
    """One smear per entry of ``splits``, three tiles of each labelled."""
    store = Store.open(ws)
    store.init(CLASSES, tile_size=64)
    for i, split in enumerate(splits):
        img, mask = disc_smear(i)
        sid = smear_id_for(img)
        store.add_smear(
            NewSmear(
                sid,
                encode_png_lossless(img),
                128,
                128,
                label=f"smear {i}",
                patient=patient_in(split),
            )
        )
        for t in store.tiles(sid)[:3]:
            store.save_mask(t.tile_id, mask[t.y : t.y + t.h, t.x : t.x + t.w], annotator="t")
    return ws


class JobCtx:
    """The part of the job runner's context the training target uses, recorded for tests."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.models: list = []
        self.choices: list[dict] = []
        self.progressed = 0
        self.cancelled = False

    def progress(self, **fields) -> None:
        self.progressed += 1

    def log(self, message: str) -> None:
        pass

    def add_model(self, kind, staging, card, **choice) -> None:
        self.models.append((kind, staging, card))
        self.choices.append(choice)


def train_tiny(ws: Path, *, as_chosen: bool = False, **config) -> JobCtx:
    """Run the training target on ``ws`` and register its model.

    Args:
        as_chosen: Register it as the job runner would, current only if it won the run's
            comparison; by default it is current when no model is (so a test that needs a
            current model has one whatever a one-epoch model scores).
        config: Overrides of :data:`TINY_CONFIG`.
    """
    from model_zoo import Zoo
    from training.service import segment_job

    ctx = JobCtx(ws)
    segment_job(ctx, {"config": {**TINY_CONFIG, **config}, "rescore": False})
    (kind, staging, card) = ctx.models[0]
    Zoo(ws).add(kind, staging, card, **(ctx.choices[0] if as_chosen else {}))
    return ctx
