"""Shared fixtures: a temporary workspace and tiny synthetic smears, built in memory.

Everything is deterministic (seeded), offline and small (about 100 × 100 pixels), so any
part's tests can use them without slowing the suite.

* ``workspace``: an empty folder path for a workspace (not created).
* ``store``: a :class:`dataset.store.Store` in ``workspace`` with the default classes and
  64-pixel tiles.
* ``make_smear(width, height, seed)``: a synthetic Giemsa-like smear and its exact mask
  (``SyntheticSmear``: ``rgb`` (H, W, 3) uint8, ``mask`` (H, W) uint8 with the default
  classes 0 background, 1 erythrocyte, 2 leukocyte, 3 platelet).
* ``encode_image(rgb_or_grey, fmt="PNG", **params)``: bytes of an image file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

# Ray's own opt-out of its token authentication, so a test's Ray writes no token to the home
# folder (job processes inherit it).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

TEST_TILE_SIZE = 64

_PLASMA = (232, 214, 220)
_RED_CELL = (205, 120, 130)
_WHITE_CYTOPLASM = (190, 170, 215)
_WHITE_NUCLEUS = (95, 60, 150)
_PLATELET = (140, 90, 170)


class SyntheticSmear(NamedTuple):
    """A synthetic smear and the mask it was drawn from.

    Shape:
        rgb: (H, W, 3) uint8; mask: (H, W) uint8 class indices (no unlabelled pixels).
    """

    rgb: np.ndarray
    mask: np.ndarray


def synthetic_smear(width: int = 96, height: int = 80, seed: int = 0) -> SyntheticSmear:
    """Red discs, one white cell and a few platelets on plasma, with mild pixel noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), dtype=np.uint8)
    scale = min(width, height)
    for _ in range(max(3, width * height // 900)):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.07, 0.11) * scale
        mask[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = 1
    for _ in range(3):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = max(1.5, 0.02 * scale)
        mask[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = 3
    cx, cy, r = width * rng.uniform(0.3, 0.7), height * rng.uniform(0.3, 0.7), 0.16 * scale
    mask[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = 2
    nucleus = (xx - cx) ** 2 + (yy - cy) ** 2 <= (0.6 * r) ** 2
    colours = np.array([_PLASMA, _RED_CELL, _WHITE_CYTOPLASM, _PLATELET], dtype=np.int16)
    rgb = colours[mask]
    rgb[nucleus] = _WHITE_NUCLEUS
    rgb = rgb + rng.integers(-6, 7, size=rgb.shape)
    return SyntheticSmear(np.clip(rgb, 0, 255).astype(np.uint8), mask)


def encode(pixels: np.ndarray, fmt: str = "PNG", **params: object) -> bytes:
    """Encode an array with Pillow (``fmt`` as Pillow names it: PNG, JPEG, TIFF, BMP)."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(out, format=fmt, **params)
    return out.getvalue()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """Path of a workspace folder that does not exist yet."""
    return tmp_path / "workspace"


@pytest.fixture
def store(workspace: Path):
    """A fresh store with the default classes and 64-pixel tiles."""
    from dataset.store import Store

    s = Store.open(workspace)
    s.init(tile_size=TEST_TILE_SIZE)
    return s


@pytest.fixture
def make_smear() -> Callable[..., SyntheticSmear]:
    """Factory: ``make_smear(width=96, height=80, seed=0)``."""
    return synthetic_smear


@pytest.fixture
def encode_image() -> Callable[..., bytes]:
    """Factory: ``encode_image(pixels, fmt="PNG", **pillow_params)``."""
    return encode
