"""Whole-image prediction by batched sliding window, one function for every use.

The promise of this module: :func:`iter_proba` turns uint8 RGB images of any size into
per-class probability maps of exactly their size. Pre-fill, active-learning scores,
validation and smear analysis all call it, so they see the same numbers.

- A side shorter than the window is reflect-padded (bottom/right) up to the next multiple of
  the model's output stride and cropped back afterwards; an image no bigger than one window
  is therefore a single forward pass of the padded image.
- Larger images are covered by overlapping windows whose probabilities are blended with a
  smooth weight that favours window centres, where the network sees the most context.
- Windows of many images share batches; results come back in input order as soon as each
  image is complete, so scoring thousands of tiles never holds more than a batch in flight.
- Gradients are off (``torch.inference_mode``); bf16 autocast and channels_last are opt-in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from dataset.schema import UNLABELLED
from training.augment import pad_to_size
from training.model import SegModel, input_multiple, to_model_input

__all__ = [
    "InferenceConfig",
    "iter_proba",
    "padded_size",
    "predict_mask",
    "predict_masks",
    "predict_proba",
    "probs_to_mask",
]


class InferenceConfig(BaseModel):
    """How to cut an image into windows and run them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(256, ge=32, description="window side in pixels, a multiple of 32")
    overlap: float = Field(0.25, ge=0.0, lt=0.95, description="fraction shared by neighbours")
    batch_size: int = Field(8, ge=1)
    bf16: bool = Field(False, description="bfloat16 autocast; faster on recent CPUs/GPUs")
    channels_last: bool = Field(False, description="NHWC memory layout for convolutions")


def padded_size(height: int, width: int, window: int, multiple: int) -> tuple[int, int]:
    """Size an image is padded to before windowing: sides below ``window`` go up to a multiple."""

    def side(n: int) -> int:
        return n if n >= window else min(window, -(-n // multiple) * multiple)

    return side(height), side(width)


@dataclass
class _Pending:
    """Accumulators of one image whose windows are still being predicted."""

    height: int
    width: int
    remaining: int
    acc: np.ndarray | None = None
    weight: np.ndarray | None = None
    windows: list[tuple[int, int, np.ndarray]] = field(default_factory=list)


def _starts(length: int, win: int, stride: int) -> list[int]:
    if length <= win:
        return [0]
    starts = list(range(0, length - win, stride))
    return [*starts, length - win]


@cache
def _blend_weight(h: int, w: int) -> np.ndarray:
    # Separable bump: 1 in the middle, falling to ~0.1 at the edges; never 0, so a pixel seen
    # by one window only keeps that window's prediction exactly.
    def ramp(n: int) -> np.ndarray:
        x = (np.arange(n) + 0.5) / n
        return (0.1 + 0.9 * np.sin(np.pi * x) ** 2).astype(np.float32)

    weight = np.outer(ramp(h), ramp(w))
    weight.setflags(write=False)
    return weight


def _plan(image: np.ndarray, config: InferenceConfig, multiple: int) -> _Pending:
    h, w = image.shape[:2]
    ph, pw = padded_size(h, w, config.window, multiple)
    padded, _ = pad_to_size(image, None, ph, pw)
    wh, ww = min(config.window, ph), min(config.window, pw)
    stride_h = max(multiple, int(wh * (1 - config.overlap)))
    stride_w = max(multiple, int(ww * (1 - config.overlap)))
    pending = _Pending(height=h, width=w, remaining=0)
    for y in _starts(ph, wh, stride_h):
        for x in _starts(pw, ww, stride_w):
            pending.windows.append((y, x, padded[y : y + wh, x : x + ww]))
    pending.remaining = len(pending.windows)
    pending.weight = np.zeros((ph, pw), dtype=np.float32)
    return pending


def _device(model: SegModel) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _forward(model: SegModel, crops: np.ndarray, config: InferenceConfig) -> np.ndarray:
    device = _device(model)
    x = to_model_input(crops, device)
    if config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with (
        torch.inference_mode(),
        torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=config.bf16),
    ):
        logits = model(x)
    return logits.float().softmax(dim=1).cpu().numpy()


def iter_proba(
    model: SegModel, images: Iterable[np.ndarray], config: InferenceConfig | None = None
) -> Iterator[np.ndarray]:
    """Class probabilities of each image, in input order.

    Puts the model in eval mode (and in channels_last layout if asked).

    Args:
        model: An smp segmentation model returning logits.
        images: uint8 RGB images, any sizes.
        config: Window, overlap, batch size and numeric options.

    Yields:
        float32 probabilities summing to 1 over classes.

    Shape:
        each image: (H, W, 3); each result: (C, H, W).
    """
    config = config or InferenceConfig()
    multiple = input_multiple(model)
    if config.window % multiple:
        raise ValueError(
            f"Window {config.window} is not a multiple of {multiple}, the model's output stride."
        )
    model.eval()
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    states: dict[int, _Pending] = {}
    queues: dict[tuple[int, int], list[tuple[int, int, int, np.ndarray]]] = defaultdict(list)
    next_out = 0

    def run(key: tuple[int, int]) -> None:
        batch = queues.pop(key)
        probs = _forward(model, np.stack([crop for *_, crop in batch]), config)
        weight = _blend_weight(*key)
        for (idx, y, x, _), p in zip(batch, probs, strict=True):
            state = states[idx]
            if state.acc is None:
                state.acc = np.zeros((p.shape[0], *state.weight.shape), dtype=np.float32)
            state.acc[:, y : y + key[0], x : x + key[1]] += p * weight
            state.weight[y : y + key[0], x : x + key[1]] += weight
            state.remaining -= 1

    def finish(state: _Pending) -> np.ndarray:
        probs = (
            state.acc[:, : state.height, : state.width]
            / state.weight[: state.height, : state.width]
        )
        return np.ascontiguousarray(probs, dtype=np.float32)

    for idx, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"Image {idx} is {image.dtype} {image.shape}; expected uint8 RGB (H, W, 3)."
            )
        state = _plan(image, config, multiple)
        states[idx] = state
        for y, x, crop in state.windows:
            key = crop.shape[:2]
            queues[key].append((idx, y, x, crop))
            if len(queues[key]) >= config.batch_size:
                run(key)
        state.windows = []
        while next_out in states and states[next_out].remaining == 0:
            yield finish(states.pop(next_out))
            next_out += 1
    for key in list(queues):
        run(key)
    while next_out in states:
        yield finish(states.pop(next_out))
        next_out += 1


def predict_proba(
    model: SegModel, image: np.ndarray, config: InferenceConfig | None = None
) -> np.ndarray:
    """Class probabilities of one image.

    Shape:
        image: (H, W, 3) uint8; returns (C, H, W) float32.
    """
    return next(iter_proba(model, [image], config))


def probs_to_mask(probs: np.ndarray, min_confidence: float = 0.0) -> np.ndarray:
    """Most likely class per pixel; unlabelled (255) where its probability is below the bar.

    Shape:
        probs: (C, H, W); returns (H, W) uint8.
    """
    mask = probs.argmax(axis=0).astype(np.uint8)
    if min_confidence > 0:
        mask[probs.max(axis=0) < min_confidence] = UNLABELLED
    return mask


def predict_mask(
    model: SegModel,
    image: np.ndarray,
    config: InferenceConfig | None = None,
    min_confidence: float = 0.0,
) -> np.ndarray:
    """Predicted class mask of one image (see :func:`probs_to_mask`).

    Shape:
        image: (H, W, 3) uint8; returns (H, W) uint8.
    """
    return probs_to_mask(predict_proba(model, image, config), min_confidence)


def predict_masks(
    model: SegModel,
    images: Sequence[np.ndarray],
    config: InferenceConfig | None = None,
    min_confidence: float = 0.0,
) -> list[np.ndarray]:
    """Predicted class masks of many images, batched across images."""
    return [probs_to_mask(p, min_confidence) for p in iter_proba(model, images, config)]
