"""Cutting a smear into tiles and putting tile masks back together.

Promises: every pixel of a smear lies in at least one tile; tiles never reach past the
image (edge tiles shift inward instead of padding); an image smaller than a tile is one tile
of its own size; tile ids are ``{smear_id}_x{x:04d}_y{y:04d}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dataset.schema import UNLABELLED


@dataclass(frozen=True)
class TileBox:
    """Where a tile sits in its smear (pixels, top-left origin)."""

    x: int
    y: int
    w: int
    h: int


def _starts(length: int, tile: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)  # shift the last tile inward so it ends at the edge
    return starts


def tile_grid(width: int, height: int, tile_size: int) -> list[TileBox]:
    """Tiles covering a ``width`` x ``height`` image, row by row."""
    if width <= 0 or height <= 0:
        raise ValueError(f"Cannot tile an image of {width}x{height} pixels.")
    tw, th = min(tile_size, width), min(tile_size, height)
    return [
        TileBox(x, y, tw, th) for y in _starts(height, tile_size) for x in _starts(width, tile_size)
    ]


def tile_id(smear_id: str, x: int, y: int) -> str:
    """Stable id of the tile at ``(x, y)`` of a smear."""
    return f"{smear_id}_x{x:04d}_y{y:04d}"


def assemble(width: int, height: int, pieces: Iterable[tuple[TileBox, np.ndarray]]) -> np.ndarray:
    """Whole-smear mask from tile masks given oldest save first.

    Where tiles overlap, a later piece's labelled pixels win; its unlabelled pixels leave
    what is already there, so a scribble on one tile never erases its neighbour's labels.

    Shape:
        pieces: (h, w) uint8 each; returns (height, width) uint8, 255 where nobody labelled.
    """
    out = np.full((height, width), UNLABELLED, dtype=np.uint8)
    for box, mask in pieces:
        if mask.shape != (box.h, box.w):
            raise ValueError(f"Mask of shape {mask.shape} does not fit tile {box}.")
        region = out[box.y : box.y + box.h, box.x : box.x + box.w]
        labelled = mask != UNLABELLED
        region[labelled] = mask[labelled]
    return out
