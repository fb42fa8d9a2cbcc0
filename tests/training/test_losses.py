"""The loss ignores unlabelled pixels entirely and never returns NaN for empty batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dataset.schema import UNLABELLED
from training.losses import SegLoss, class_weights


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    target[:, :4] = UNLABELLED
    return logits, target


@pytest.mark.parametrize("dice_weight", [0.0, 1.0])
def test_unlabelled_pixels_neither_count_nor_get_gradient(dice_weight):
    logits, target = _batch()
    loss_fn = SegLoss(dice_weight=dice_weight)
    loss = loss_fn(logits, target)
    loss.backward()
    assert (logits.grad[:, :, :4] == 0).all() and logits.grad[:, :, 4:].abs().sum() > 0
    changed = logits.detach().clone()
    changed[:, :, :4] = 50.0
    assert loss_fn(changed, target).item() == pytest.approx(loss.item(), abs=1e-6)


def test_an_unlabelled_batch_gives_zero_loss_that_backpropagates():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = SegLoss()(logits, torch.full((1, 4, 4), UNLABELLED))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None


def test_confident_right_answers_cost_almost_nothing():
    target = torch.randint(0, 3, (1, 8, 8))
    logits = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 30
    assert SegLoss()(logits, target).item() < 1e-3
    assert SegLoss()(-logits, target).item() > 1.0


def test_class_weights_favour_rare_classes():
    mask = np.zeros((10, 10), np.uint8)
    mask[0, :4] = 1
    mask[9] = UNLABELLED
    w = class_weights([mask], 3, "inverse_sqrt")
    assert w[1] > w[0] and w[2] == 1.0 and w[:2].mean() == pytest.approx(1.0)
    assert class_weights([mask], 3, "inverse")[1] > w[1]
    with pytest.raises(ValueError, match="class index 1"):
        class_weights([mask], 1)
