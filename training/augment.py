"""Training crops and augmentation for (image, mask) pairs, in plain NumPy.

The promise of this module: every random choice comes from the ``numpy.random.Generator``
passed in, so a seed fixes the whole sequence of crops and jitters; geometric changes are
applied identically to image and mask; colour changes touch the image only; and padding
never invents labels (padded mask pixels are unlabelled, 255).

Colour jitter (brightness, contrast, saturation, hue) helps a model trained on one lab's
stain survive another's (Giemsa and Wright smears vary mostly in hue and intensity). It costs
quality in a short run on one lab's smears, so it is off unless asked for (:data:`STAIN_JITTER`).

Class-balanced crops are drawn here from in-memory masks rather than with petroscope's
balancer, which reads images from disk and keeps a pickled cache (SmearLab loads no pickle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dataset.schema import UNLABELLED

__all__ = [
    "STAIN_JITTER",
    "AugmentConfig",
    "LabelledPixels",
    "augment",
    "pad_to_size",
    "sample_crop",
]

# RGB <-> YIQ: hue is a rotation of the (I, Q) chroma plane, luminance Y stays put.
_RGB2YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=np.float32
)
_YIQ2RGB = np.linalg.inv(_RGB2YIQ).astype(np.float32)


class AugmentConfig(BaseModel):
    """Which augmentations to apply and how strong the colour jitter is.

    Colour jitter is off by default: on the BCCD white cells (one stain, one microscope) a
    280-step run scored a held-out mIoU of 0.861 without it and 0.849 with the strengths of
    :data:`STAIN_JITTER` (seed 0, cytoplasm IoU 0.704 against 0.679; issue 11 note). A lab
    whose smears come from several stains or microscopes should turn it on
    (``{"augment": STAIN_JITTER}`` in the training settings) and check the held-out score.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    flips: bool = True
    rotate90: bool = True
    brightness: float = Field(0.0, ge=0, le=1, description="max +- shift, fraction of 255")
    contrast: float = Field(0.0, ge=0, le=1, description="max +- relative contrast change")
    saturation: float = Field(0.0, ge=0, le=1, description="max +- relative chroma change")
    hue_deg: float = Field(0.0, ge=0, le=180, description="max +- hue rotation in degrees")


# Colour jitter for smears of mixed stains: Giemsa and Wright vary mostly in hue and intensity.
STAIN_JITTER = AugmentConfig(brightness=0.15, contrast=0.15, saturation=0.15, hue_deg=10.0)


def pad_to_size(
    image: np.ndarray, mask: np.ndarray | None, height: int, width: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Reflect-pad an image (and pad its mask with unlabelled) at the bottom/right.

    Sides already at least as large are left alone.

    Shape:
        image: (H, W, 3); mask: (H, W). Returns (max(H, height), max(W, width), ...).
    """
    h, w = image.shape[:2]
    ph, pw = max(0, height - h), max(0, width - w)
    if ph == 0 and pw == 0:
        return image, mask
    # NumPy's "symmetric" handles pads longer than the image by reflecting repeatedly,
    # and unlike "reflect" it is defined for 1-pixel images.
    image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="symmetric")
    if mask is not None:
        mask = np.pad(mask, ((0, ph), (0, pw)), constant_values=UNLABELLED)
    return image, mask


# Crop centres are drawn from at most this many pixels per class of a mask. Finding a class's
# pixels in a whole smear region on every crop took 10 ms of the 11 ms a crop costs, about 85 ms
# of a 1.5 s training step (batch 8, 2 cores); a random sample found once draws alike.
CENTRE_SAMPLE = 4096


@dataclass(frozen=True)
class LabelledPixels:
    """Where a mask's labelled pixels are: per class, and of any class, as (y, x) rows.

    Each array is every such pixel, or a uniform random sample of :data:`CENTRE_SAMPLE` of
    them when there are more; build it once per mask with :meth:`of`.
    """

    by_class: dict[int, np.ndarray]
    labelled: np.ndarray

    @classmethod
    def of(cls, mask: np.ndarray, rng: np.random.Generator) -> LabelledPixels:
        def sample(where: np.ndarray) -> np.ndarray:
            ys, xs = np.nonzero(where)
            keep = (
                rng.choice(ys.size, CENTRE_SAMPLE, replace=False)
                if ys.size > CENTRE_SAMPLE
                else slice(None)
            )
            return np.stack([ys[keep], xs[keep]], axis=1)

        present = [int(c) for c in np.unique(mask) if c != UNLABELLED]
        return cls(
            by_class={c: sample(mask == c) for c in present},
            labelled=sample(mask != UNLABELLED),
        )


def sample_crop(
    image: np.ndarray,
    mask: np.ndarray,
    size: int,
    rng: np.random.Generator,
    balanced: float = 0.0,
    pixels: LabelledPixels | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` crop that holds labelled pixels; small tiles are padded first.

    With probability ``balanced`` the crop is centred (within ``size // 4`` pixels, as far as
    the borders allow) on a random pixel of a class drawn uniformly from the labelled classes
    present, so rare classes such as white cells are seen about as often as red cells. Any
    other crop is placed uniformly among the positions that contain a randomly drawn labelled
    pixel, so a smear region with unlabelled context around its labelled tiles never yields a
    crop with nothing to learn from.

    ``pixels`` (:meth:`LabelledPixels.of` the same mask) saves finding the labelled pixels on
    every call; without it they are found here.

    Shape:
        image: (H, W, 3) uint8; mask: (H, W) uint8. Returns (size, size, 3) and (size, size).
    """
    image, mask = pad_to_size(image, mask, size, size)
    h, w = mask.shape

    def cut(top: int, left: int) -> tuple[np.ndarray, np.ndarray]:
        top, left = int(np.clip(top, 0, h - size)), int(np.clip(left, 0, w - size))
        return image[top : top + size, left : left + size], mask[
            top : top + size, left : left + size
        ]

    if h == size and w == size:
        return cut(0, 0)
    if balanced > 0 and rng.random() < balanced:
        if pixels is None:
            present = np.unique(mask)
            present = present[present != UNLABELLED]
            centres = None
        else:
            present = np.array(sorted(pixels.by_class))
        if present.size:
            cls = rng.choice(present)
            if pixels is None:
                ys, xs = np.nonzero(mask == cls)
                centres = np.stack([ys, xs], axis=1)
            else:
                centres = pixels.by_class[int(cls)]
            y, x = centres[rng.integers(len(centres))]
            jitter = size // 4
            dy, dx = rng.integers(-jitter, jitter + 1, 2)
            return cut(y + dy - size // 2, x + dx - size // 2)
    if pixels is None:
        ys, xs = np.nonzero(mask != UNLABELLED)
        anywhere = np.stack([ys, xs], axis=1)
    else:
        anywhere = pixels.labelled
    if len(anywhere):
        y, x = anywhere[rng.integers(len(anywhere))]
        return cut(y - int(rng.integers(size)), x - int(rng.integers(size)))
    return cut(int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1)))


def augment(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, config: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Random flips, 90-degree rotations and colour jitter.

    Rotations by 90 degrees are only applied to square inputs so the batch keeps its shape.

    Shape:
        image: (H, W, 3) uint8; mask: (H, W) uint8; same shapes out (contiguous copies).
    """
    if config.flips:
        if rng.random() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        if rng.random() < 0.5:
            image, mask = image[::-1], mask[::-1]
    if config.rotate90 and image.shape[0] == image.shape[1]:
        k = int(rng.integers(4))
        image, mask = np.rot90(image, k), np.rot90(mask, k)
    image = _jitter_colour(image, rng, config)
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def _jitter_colour(
    image: np.ndarray, rng: np.random.Generator, config: AugmentConfig
) -> np.ndarray:
    b = rng.uniform(-config.brightness, config.brightness) * 255.0
    c = 1.0 + rng.uniform(-config.contrast, config.contrast)
    s = 1.0 + rng.uniform(-config.saturation, config.saturation)
    angle = np.deg2rad(rng.uniform(-config.hue_deg, config.hue_deg))
    if b == 0 and c == 1 and s == 1 and angle == 0:
        return image
    cos, sin = np.cos(angle) * s, np.sin(angle) * s
    chroma = np.array([[1, 0, 0], [0, cos, -sin], [0, sin, cos]], dtype=np.float32)
    colour = _YIQ2RGB @ chroma @ _RGB2YIQ
    x = image.astype(np.float32) @ colour.T
    mean = x.mean()
    x = (x - mean) * c + mean + b
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)
