"""Post-hoc calibration of classifier logits, and the calibration error that judges it.

The promise: :func:`fit_calibration` learns an affine map of the logits (``logits * scale +
bias``) by minimising the negative log-likelihood on held-out rows, so the ranking of rows by
the network is kept while the probabilities move towards observed frequencies.

Methods:
    ``"temperature"``: one shared scale (1 / temperature) plus a bias per class. For two classes
        this is exactly Platt scaling of the logit margin.
    ``"platt"``: a scale and a bias per class (Platt scaling generalised to several classes,
        also called vector scaling).
    ``"none"``: the identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

__all__ = [
    "CalibrationMethod",
    "CalibrationParams",
    "expected_calibration_error",
    "fit_calibration",
    "reliability_bins",
]

CalibrationMethod = Literal["temperature", "platt", "none"]


@dataclass(frozen=True)
class CalibrationParams:
    """An affine map of logits: ``calibrated = logits * scale + bias``.

    Shape:
        scale, bias: (n_classes,), float64.
    """

    scale: np.ndarray
    bias: np.ndarray
    method: str = "none"

    @classmethod
    def identity(cls, n_classes: int) -> CalibrationParams:
        """The map that changes nothing."""
        return cls(scale=np.ones(n_classes), bias=np.zeros(n_classes), method="none")

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrate logits (differentiably, for explanations).

        Shape:
            logits: (n_rows, n_classes) -> (n_rows, n_classes).
        """
        scale = torch.as_tensor(self.scale, dtype=logits.dtype, device=logits.device)
        bias = torch.as_tensor(self.bias, dtype=logits.dtype, device=logits.device)
        return logits * scale + bias


def fit_calibration(
    logits: np.ndarray, y: np.ndarray, method: CalibrationMethod, max_iter: int = 200
) -> CalibrationParams:
    """Fit the calibration map on held-out rows by minimising the negative log-likelihood.

    Falls back to the identity when there are too few rows (fewer than two of some class)
    to fit anything without overfitting.

    Args:
        logits: Uncalibrated logits of held-out rows.
        y: Their class indices.
        method: ``"temperature"``, ``"platt"`` or ``"none"``.
        max_iter: L-BFGS iterations.

    Shape:
        logits: (n_rows, n_classes); y: (n_rows,).
    """
    n_classes = logits.shape[1]
    counts = np.bincount(y, minlength=n_classes)
    if method == "none" or counts.min() < 2:
        return CalibrationParams.identity(n_classes)
    if method not in ("temperature", "platt"):
        raise ValueError(f"unknown calibration {method!r}; choose temperature, platt or none")
    z = torch.as_tensor(logits, dtype=torch.float64)
    target = torch.as_tensor(y, dtype=torch.long)
    log_scale = torch.zeros(1 if method == "temperature" else n_classes, dtype=torch.float64)
    # Softmax ignores a shift shared by all classes, so the first bias stays at 0.
    free_bias = torch.zeros(n_classes - 1, dtype=torch.float64)
    log_scale.requires_grad_(True)
    free_bias.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [log_scale, free_bias], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe"
    )

    def params() -> tuple[torch.Tensor, torch.Tensor]:
        scale = log_scale.exp().expand(n_classes)
        bias = torch.cat([torch.zeros(1, dtype=torch.float64), free_bias])
        return scale, bias

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        scale, bias = params()
        loss = torch.nn.functional.cross_entropy(z * scale + bias, target)
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        scale, bias = params()
    scale_np, bias_np = scale.numpy().copy(), bias.numpy().copy()
    if not (np.isfinite(scale_np).all() and np.isfinite(bias_np).all()):
        return CalibrationParams.identity(n_classes)
    return CalibrationParams(scale=scale_np, bias=bias_np, method=method)


def _confidence(proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What is binned: P(positive) for two classes, the top-label confidence otherwise."""
    if proba.shape[1] == 2:
        return proba[:, 1], (y == 1).astype(np.float64)
    top = proba.argmax(axis=1)
    return proba.max(axis=1), (top == y).astype(np.float64)


def reliability_bins(
    proba: np.ndarray, y: np.ndarray, n_bins: int = 10
) -> list[tuple[float, float, float, int]]:
    """Equal-width bins of predicted probability against observed frequency.

    For two classes the binned quantity is the probability of the second class (the one a
    page shows, e.g. "diabetes"); for more classes it is the top-label confidence.

    Args:
        proba: Predicted class probabilities.
        y: True class indices.
        n_bins: Number of equal-width bins on [0, 1].

    Returns:
        ``(lower edge, mean predicted, observed frequency, count)`` for each non-empty bin.

    Shape:
        proba: (n_rows, n_classes); y: (n_rows,).
    """
    conf, hit = _confidence(np.asarray(proba, dtype=np.float64), np.asarray(y))
    index = np.clip((conf * n_bins).astype(int), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        mask = index == b
        if mask.any():
            out.append(
                (b / n_bins, float(conf[mask].mean()), float(hit[mask].mean()), int(mask.sum()))
            )
    return out


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error over equal-width bins (see :func:`reliability_bins`).

    The count-weighted mean of ``|mean predicted - observed frequency|`` over the bins.

    Shape:
        proba: (n_rows, n_classes); y: (n_rows,).
    """
    bins = reliability_bins(proba, y, n_bins)
    total = sum(count for *_, count in bins)
    return float(sum(count * abs(pred - obs) for _, pred, obs, count in bins) / total)
