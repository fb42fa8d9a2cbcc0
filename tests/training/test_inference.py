"""Sliding-window inference: exact sizes, exact single windows, blending, batching, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dataset.schema import UNLABELLED
from training.augment import pad_to_size
from training.inference import (
    InferenceConfig,
    iter_proba,
    padded_size,
    predict_mask,
    predict_proba,
    probs_to_mask,
)
from training.model import build_model, to_model_input


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return build_model(3, "mobilenet_v2").eval()


class PixelModel(torch.nn.Module):
    """A 1x1 convolution: every pixel's output depends on that pixel only."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * 3


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_single_window_equals_direct_forward_of_padded_image(unet):
    image = _image(88, 100)
    config = InferenceConfig(window=128)
    h, w = padded_size(88, 100, 128, 32)
    assert (h, w) == (96, 128)
    padded, _ = pad_to_size(image, None, h, w)
    with torch.inference_mode():
        direct = unet(to_model_input(padded)).softmax(dim=1)[0, :, :88, :100].numpy()
    np.testing.assert_allclose(predict_proba(unet, image, config), direct, atol=1e-6)


@pytest.mark.parametrize("size", [(88, 100), (120, 120), (33, 47), (130, 70), (64, 200)])
def test_odd_sizes_come_back_at_their_size(unet, size):
    probs = predict_proba(unet, _image(*size), InferenceConfig(window=64, overlap=0.5))
    assert probs.shape == (3, *size) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    assert predict_mask(unet, _image(*size), InferenceConfig(window=64)).shape == size


def test_overlapping_windows_blend_to_the_whole_image_result():
    model = PixelModel().eval()
    image = _image(100, 150, seed=2)
    with torch.inference_mode():
        whole = model(to_model_input(image)).softmax(dim=1)[0].numpy()
    for overlap in (0.0, 0.25, 0.5):
        probs = predict_proba(model, image, InferenceConfig(window=32, overlap=overlap))
        np.testing.assert_allclose(probs, whole, atol=1e-5)


def test_many_images_keep_their_order_across_shared_batches(unet):
    images = [_image(*s, seed=i) for i, s in enumerate([(64, 64), (40, 90), (64, 64), (130, 70)])]
    config = InferenceConfig(window=64, batch_size=3)
    together = list(iter_proba(unet, iter(images), config))
    assert [p.shape[1:] for p in together] == [im.shape[:2] for im in images]
    for image, probs in zip(images, together, strict=True):
        np.testing.assert_allclose(probs, predict_proba(unet, image, config), atol=1e-5)


def test_bf16_and_channels_last_are_options_that_agree(unet):
    image = _image(64, 96)
    base = predict_proba(unet, image, InferenceConfig(window=64))
    model = build_model(3).eval()
    model.load_state_dict(unet.state_dict())
    last = predict_proba(model, image, InferenceConfig(window=64, channels_last=True))
    np.testing.assert_allclose(last, base, atol=1e-4)
    half = predict_proba(unet, image, InferenceConfig(window=64, bf16=True))
    assert half.dtype == np.float32 and np.abs(half - base).max() < 0.1


def test_no_gradients_are_recorded(unet):
    before = [p.grad for p in unet.parameters()]
    predict_proba(unet, _image(64, 64))
    assert torch.is_grad_enabled()  # the mode does not leak out of the generator
    assert all(g is None for g in before) and all(p.grad is None for p in unet.parameters())


def test_window_must_suit_the_model(unet):
    with pytest.raises(ValueError, match="multiple of 32"):
        predict_proba(unet, _image(64, 64), InferenceConfig(window=48))
    with pytest.raises(ValueError, match="uint8 RGB"):
        predict_proba(unet, np.zeros((64, 64), np.uint8))


def test_unsure_pixels_become_unlabelled():
    probs = np.array([[[0.9, 0.4]], [[0.1, 0.35]], [[0.0, 0.25]]], dtype=np.float32)
    assert probs_to_mask(probs).tolist() == [[0, 0]]
    assert probs_to_mask(probs, min_confidence=0.5).tolist() == [[0, UNLABELLED]]
