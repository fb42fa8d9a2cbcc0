"""Loading the real white-cell sets for the segmentation benchmarks.

The promise of this module: :func:`load_zheng` and :func:`load_bccd_wbc` turn the public
white-cell sets under ``../shared/data`` into :class:`training.segment.Sample` lists with the
class indices 0 background, 1 cytoplasm, 2 nucleus, and :func:`fixed_split` cuts ids into
train pool / validation / test by one seeded permutation, so every benchmark that names the
same seed sees the same split. Every image is its own smear (the sets carry no smear ids).

Nothing here is imported by the project; the benchmarks only.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from training.segment import Sample  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
ZHENG_DIR = DATA / "zheng-wbc" / "dataset1"
BCCD_IMAGES = DATA / "bccd" / "JPEGImages"
BCCD_MASKS = DATA / "bccd-wbc-masks"
RESULTS = ROOT / "bench" / "results"
CLASSES = ("background", "cytoplasm", "nucleus")


def _missing(path: Path, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what} not found at {path}. The benchmarks read the shared data folder "
        "(../shared/data from the project root); see its README.md."
    )


def load_zheng(root: Path = ZHENG_DIR) -> list[Sample]:
    """The 300 Zheng crops (``NNN.bmp``) with their masks (0/128/255 -> 0/1/2), in id order."""
    images = sorted(root.glob("*.bmp"))
    if not images:
        raise _missing(root, "Zheng dataset1 (NNN.bmp + NNN.png)")
    samples = []
    for path in images:
        mask_path = path.with_suffix(".png")
        if not mask_path.is_file():
            raise _missing(mask_path, f"Mask of {path.name}")
        image = np.asarray(Image.open(path).convert("RGB"))
        # digitize, not a lookup of exact values: some masks carry a few in-between greys.
        mask = np.digitize(np.asarray(Image.open(mask_path).convert("L")), [64, 192])
        samples.append(Sample(image, mask.astype(np.uint8), path.stem, f"zheng-{path.stem}"))
    return samples


def load_bccd_wbc(images: Path = BCCD_IMAGES, masks: Path = BCCD_MASKS) -> list[Sample]:
    """The BCCD photos that have a white-cell mask (about 155 -> cytoplasm, 255 -> nucleus)."""
    mask_paths = sorted(masks.glob("BloodImage_Mask_*.png"))
    if not mask_paths:
        raise _missing(masks, "BCCD white-cell masks")
    samples = []
    for mask_path in mask_paths:
        ident = mask_path.stem.removeprefix("BloodImage_Mask_")
        image_path = images / f"BloodImage_{ident}.jpg"
        if not image_path.is_file():
            raise _missing(image_path, f"BCCD photo for mask {mask_path.name}")
        image = np.asarray(Image.open(image_path).convert("RGB"))
        mask = np.digitize(np.asarray(Image.open(mask_path).convert("L")), [78, 205])
        if mask.shape != image.shape[:2]:
            raise ValueError(f"{mask_path.name} is {mask.shape}, its photo {image.shape[:2]}.")
        samples.append(Sample(image, mask.astype(np.uint8), ident, f"bccd-{ident}"))
    return samples


def fixed_split(
    samples: Sequence[Sample], sizes: tuple[int, int, int], seed: int = 0
) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """Train pool, validation and test by one seeded permutation of the sample order.

    ``sizes`` are (pool, validation, test); their sum may be less than ``len(samples)``.
    """
    if sum(sizes) > len(samples):
        raise ValueError(f"Split sizes {sizes} need {sum(sizes)} samples, got {len(samples)}.")
    order = np.random.default_rng(seed).permutation(len(samples))
    a, b = sizes[0], sizes[0] + sizes[1]
    pick = lambda idx: [samples[i] for i in idx]  # noqa: E731
    return pick(order[:a]), pick(order[a:b]), pick(order[b : b + sizes[2]])


def machine() -> dict:
    """What the figures were measured on."""
    import os

    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write_json(path: Path, data: dict) -> None:
    """Atomic write (temp file + rename), so a partial run always leaves readable JSON."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
