"""Crops and augmentation keep image and mask aligned and never invent labels."""

from __future__ import annotations

import numpy as np
import pytest

from dataset.schema import UNLABELLED
from training.augment import (
    CENTRE_SAMPLE,
    STAIN_JITTER,
    AugmentConfig,
    LabelledPixels,
    augment,
    pad_to_size,
    sample_crop,
)

NO_COLOUR = AugmentConfig(brightness=0, contrast=0, saturation=0, hue_deg=0)


def _encoded(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    mask = np.random.default_rng(seed).integers(0, 4, (h, w)).astype(np.uint8)
    image = np.repeat((mask * 50)[..., None], 3, axis=2).astype(np.uint8)
    return image, mask


def test_geometry_moves_image_and_mask_together():
    image, mask = _encoded(32, 32)
    rng = np.random.default_rng(1)
    for _ in range(20):
        out_image, out_mask = augment(image, mask, rng, NO_COLOUR)
        assert (out_image[..., 0] == out_mask * 50).all()
        assert out_image.flags.c_contiguous and out_mask.flags.c_contiguous


def test_colour_jitter_touches_the_image_only():
    image, mask = _encoded(16, 16)
    config = AugmentConfig(flips=False, rotate90=False, brightness=0.3, hue_deg=30)
    out_image, out_mask = augment(image, mask, np.random.default_rng(2), config)
    assert (out_mask == mask).all() and out_image.dtype == np.uint8
    assert not (out_image == image).all()


def test_small_tiles_are_padded_with_unlabelled_mask():
    image, mask = _encoded(20, 30)
    padded, padded_mask = pad_to_size(image, mask, 32, 32)
    assert padded.shape == (32, 32, 3) and padded_mask.shape == (32, 32)
    assert (padded_mask[20:] == UNLABELLED).all() and (padded_mask[:, 30:] == UNLABELLED).all()
    assert (padded[:20, :30] == image).all()
    crop, crop_mask = sample_crop(image, mask, 64, np.random.default_rng(0))
    assert crop.shape == (64, 64, 3) and (crop_mask == UNLABELLED).sum() == 64 * 64 - 20 * 30


@pytest.mark.parametrize("found_once", [False, True], ids=["found per crop", "LabelledPixels"])
def test_balanced_crops_find_a_rare_class(found_once: bool):
    mask = np.zeros((256, 256), np.uint8)
    mask[200:204, 10:14] = 3
    image = np.zeros((256, 256, 3), np.uint8)
    pixels = LabelledPixels.of(mask, np.random.default_rng(9)) if found_once else None

    def hits(balanced: float) -> int:
        rng = np.random.default_rng(0)
        crops = (sample_crop(image, mask, 32, rng, balanced, pixels)[1] for _ in range(100))
        return sum((c == 3).any() for c in crops)

    # Classes are drawn uniformly among those present (here 0 and 3): about half the crops.
    assert hits(1.0) > 35 and hits(0.0) < 10


def test_same_seed_same_crops():
    image, mask = _encoded(64, 64)

    def run(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        crop = sample_crop(image, mask, 32, rng, 0.5)
        return augment(*crop, rng, STAIN_JITTER)[0]

    assert (run(5) == run(5)).all() and not (run(5) == run(6)).all()


@pytest.mark.parametrize("found_once", [False, True], ids=["found per crop", "LabelledPixels"])
def test_crops_of_a_region_always_hold_labelled_pixels(found_once: bool):
    """A smear region is mostly unlabelled context: no crop may miss the labelled tile."""
    mask = np.full((512, 512), 255, np.uint8)
    mask[300:364, 100:164] = 0
    mask[320:330, 120:130] = 1
    image = np.zeros((512, 512, 3), np.uint8)
    pixels = LabelledPixels.of(mask, np.random.default_rng(9)) if found_once else None
    rng = np.random.default_rng(0)
    for balanced in (0.0, 1.0):
        crops = [sample_crop(image, mask, 96, rng, balanced, pixels)[1] for _ in range(200)]
        assert all((c != 255).any() for c in crops)
    # Uncentred crops still vary in where the labelled square falls.
    rng = np.random.default_rng(1)
    corners = {
        tuple(np.argwhere(sample_crop(image, mask, 96, rng, 0.0, pixels)[1] != 255)[0])
        for _ in range(50)
    }
    assert len(corners) > 20


def test_labelled_pixels_sample_each_class_and_cap_the_count():
    mask = np.full((300, 300), 255, np.uint8)
    mask[:100] = 0  # 30,000 pixels: sampled down
    mask[150:160, 150:160] = 2  # 100 pixels: all kept
    pixels = LabelledPixels.of(mask, np.random.default_rng(0))
    assert sorted(pixels.by_class) == [0, 2]
    assert len(pixels.by_class[0]) == CENTRE_SAMPLE == len(pixels.labelled)
    assert len(pixels.by_class[2]) == 100
    for cls, rows in pixels.by_class.items():
        assert (mask[rows[:, 0], rows[:, 1]] == cls).all()
        assert len({tuple(r) for r in rows}) == len(rows)  # drawn without replacement
    assert (mask[pixels.labelled[:, 0], pixels.labelled[:, 1]] != 255).all()
