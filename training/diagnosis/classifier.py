"""The diagnosis classifier: a small multilayer perceptron and a logistic-regression baseline.

The promise: :func:`fit_classifier` sees only the rows it is given. Within them it fits the
imputation and scaling (:class:`~training.diagnosis.features.Preprocessor`), holds out a
stratified inner split, trains full-batch with class weights and early stopping on that split,
then calibrates the logits on the same split. The same seed gives the same model.

Both models are plain PyTorch modules; no scikit-learn estimator is involved.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from training.diagnosis.calibration import (
    CalibrationMethod,
    CalibrationParams,
    fit_calibration,
)
from training.diagnosis.features import Preprocessor

__all__ = [
    "MLP",
    "NETWORKS",
    "ClassifierConfig",
    "Ensemble",
    "FittedClassifier",
    "TrainingHistory",
    "build_network",
    "fit_classifier",
    "stratified_holdout",
    "stratified_kfold",
]


class ClassifierConfig(BaseModel):
    """How to build and train one classifier; saved beside every checkpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: Literal["mlp", "logreg"] = Field("mlp", description="Network: mlp or logreg")
    hidden: tuple[int, ...] = Field((32,), description="MLP hidden layer widths")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="MLP dropout after each hidden layer")
    weight_decay: float = Field(1e-3, ge=0.0, description="L2 penalty on weights (not biases)")
    lr: float = Field(1e-2, gt=0.0, description="Adam learning rate")
    max_epochs: int = Field(1000, ge=1, description="Full-batch epochs at most")
    patience: int = Field(100, ge=1, description="Epochs without validation gain before stopping")
    inner_folds: int = Field(
        5,
        ge=1,
        description="1: one inner hold-out split; k > 1: k cross-fitted members averaged",
    )
    inner_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="Share held out when inner_folds is 1"
    )
    class_weights: bool = Field(True, description="Weight the loss by inverse class frequency")
    calibration: CalibrationMethod = Field("temperature", description="temperature, platt or none")
    seed: int = Field(0, description="Seed of the inner split, initialisation and dropout")


class MLP(nn.Module):
    """Fully connected layers with ReLU and dropout.

    Shape:
        input: (n_rows, n_inputs) -> output logits: (n_rows, n_classes).
    """

    def __init__(self, n_inputs: int, n_classes: int, hidden: Sequence[int], dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_inputs
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Ensemble(nn.Module):
    """Members trained on different inner splits; the logits are averaged.

    Shape:
        input: (n_rows, n_inputs) -> output logits: (n_rows, n_classes).
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


def _build_mlp(config: ClassifierConfig, n_inputs: int, n_classes: int) -> nn.Module:
    return MLP(n_inputs, n_classes, config.hidden, config.dropout)


def _build_logreg(config: ClassifierConfig, n_inputs: int, n_classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_inputs, n_classes))


NETWORKS: dict[str, Callable[[ClassifierConfig, int, int], nn.Module]] = {
    "mlp": _build_mlp,
    "logreg": _build_logreg,
}


def build_network(config: ClassifierConfig, n_inputs: int, n_classes: int) -> nn.Module:
    """Instantiate the network a config names (weights are random until trained or loaded).

    With ``inner_folds > 1`` this is an :class:`Ensemble` of that many members.
    """
    try:
        builder = NETWORKS[config.model]
    except KeyError:
        raise ValueError(
            f"unknown model {config.model!r}; choose one of {sorted(NETWORKS)}"
        ) from None
    if config.inner_folds == 1:
        return builder(config, n_inputs, n_classes)
    return Ensemble([builder(config, n_inputs, n_classes) for _ in range(config.inner_folds)])


@dataclass(frozen=True)
class TrainingHistory:
    """What happened while fitting one classifier (means over ensemble members)."""

    best_epoch: float
    epochs_run: float
    best_val_loss: float
    n_fit: int
    n_val: int
    class_weights: tuple[float, ...]
    seconds: float


@dataclass(frozen=True)
class FittedClassifier:
    """A trained, calibrated classifier with the preprocessing it was trained behind.

    Attributes:
        config: How it was built and trained.
        feature_names: Raw input features, in column order.
        classes: Output classes, in logit order.
        preprocessor: Imputation and scaling fitted on the training rows.
        network: The torch module (kept in eval mode).
        calibration: Affine map applied to the logits.
        history: Training record.
    """

    config: ClassifierConfig
    feature_names: tuple[str, ...]
    classes: tuple[str, ...]
    preprocessor: Preprocessor
    network: nn.Module
    calibration: CalibrationParams
    history: TrainingHistory

    def calibrated_proba(self, z: torch.Tensor) -> torch.Tensor:
        """Calibrated probabilities from already-preprocessed inputs (differentiable).

        Shape:
            z: (n_rows, n_inputs) -> (n_rows, n_classes).
        """
        return torch.softmax(self.calibration.apply(self.network(z)), dim=1)

    def logits(self, X: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Logits for raw feature rows (``NaN`` = missing).

        Shape:
            X: (n_rows, n_features) -> (n_rows, n_classes).
        """
        z = torch.from_numpy(self.preprocessor.transform(X))
        self.network.eval()
        with torch.inference_mode():
            out = self.network(z)
            if calibrated:
                out = self.calibration.apply(out.double())
        return out.double().numpy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities for raw feature rows (``NaN`` = missing).

        Shape:
            X: (n_rows, n_features) -> (n_rows, n_classes).
        """
        logits = self.logits(X)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable class index for each row.

        Shape:
            X: (n_rows, n_features) -> (n_rows,).
        """
        return self.predict_proba(X).argmax(axis=1)


def stratified_kfold(y: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Assign each row a fold so every class is spread evenly over the folds.

    Shape:
        y: (n_rows,) -> fold index per row, (n_rows,) int64.
    """
    assignment = np.empty(len(y), dtype=np.int64)
    offset = 0
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        # Continuing the round-robin across classes keeps the fold sizes within one row.
        assignment[rows] = (offset + np.arange(len(rows))) % folds
        offset = (offset + len(rows)) % folds
    return assignment


def stratified_holdout(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into (fit, held-out), keeping each class's share in both.

    Every class with at least two rows puts at least one row on each side.

    Shape:
        y: (n_rows,) -> two sorted index arrays that partition ``arange(n_rows)``.
    """
    held: list[np.ndarray] = []
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        n = round(fraction * len(rows))
        n = min(max(n, 1), len(rows) - 1) if len(rows) >= 2 else 0
        held.append(rows[:n])
    val = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    fit = np.setdiff1d(np.arange(len(y)), val)
    return fit, val


def _weight_penalty(network: nn.Module) -> torch.Tensor:
    return sum(
        (p.pow(2).sum() for name, p in network.named_parameters() if name.endswith("weight")),
        torch.zeros(()),
    )


@dataclass(frozen=True)
class _Member:
    network: nn.Module
    best_epoch: int
    epochs_run: int
    best_val_loss: float


def _train_member(
    network: nn.Module,
    z_fit: torch.Tensor,
    y_fit: torch.Tensor,
    z_val: torch.Tensor,
    y_val: torch.Tensor,
    weight: torch.Tensor,
    config: ClassifierConfig,
) -> _Member:
    """Full-batch Adam with early stopping; returns the network at its best validation loss."""
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr)
    best_loss, best_epoch, best_state = float("inf"), 0, copy.deepcopy(network.state_dict())
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        network.train()
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(network(z_fit), y_fit, weight=weight)
        loss = loss + 0.5 * config.weight_decay * _weight_penalty(network)
        loss.backward()
        optimizer.step()
        network.eval()
        with torch.no_grad():
            val_loss = float(nn.functional.cross_entropy(network(z_val), y_val, weight=weight))
        if val_loss < best_loss - 1e-6:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(network.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    network.load_state_dict(best_state)
    network.eval()
    return _Member(network, best_epoch, epoch, best_loss)


def _class_weights(y: np.ndarray, n_classes: int, enabled: bool) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    if not enabled:
        return np.ones(n_classes)
    return len(y) / (n_classes * np.maximum(counts, 1.0))


def fit_classifier(
    X: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str],
    classes: Sequence[str],
    config: ClassifierConfig | None = None,
) -> FittedClassifier:
    """Fit preprocessing, network and calibration on these rows only.

    With ``config.inner_folds == 1`` one stratified inner split holds out
    ``inner_fraction`` of the rows for early stopping and calibration. With ``k > 1`` the rows
    are cut into ``k`` stratified inner folds; member ``i`` trains on the others and stops
    early on fold ``i``; the members' logits are averaged, and the calibration is fitted on
    every row's logits from the member that did not train on it.

    Args:
        X: Training rows, ``NaN`` where a value is missing.
        y: Class index of each row.
        feature_names: One name per column of ``X``.
        classes: Class names; ``y`` indexes them.
        config: Model and training settings (defaults: the MLP).

    Raises:
        ValueError: When some class has too few training rows to hold any out.

    Shape:
        X: (n_rows, n_features); y: (n_rows,).
    """
    config = config or ClassifierConfig()
    started = time.perf_counter()
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n_classes = len(classes)
    counts = np.bincount(y, minlength=n_classes)
    if len(counts) > n_classes:
        raise ValueError(f"labels go up to {y.max()} but only {n_classes} classes were named")
    needed = max(2, config.inner_folds)
    short = [classes[i] for i in range(n_classes) if counts[i] < needed]
    if short:
        raise ValueError(
            f"class(es) {short} have fewer than {needed} training rows; add examples, "
            "drop the class or lower inner_folds"
        )
    preprocessor = Preprocessor.fit(X, feature_names)
    z = torch.from_numpy(preprocessor.transform(X))
    target = torch.from_numpy(y)
    rng = np.random.default_rng(config.seed)
    if config.inner_folds == 1:
        fit_rows, val_rows = stratified_holdout(y, config.inner_fraction, rng)
        splits = [(fit_rows, val_rows)]
    else:
        inner = stratified_kfold(y, config.inner_folds, rng)
        splits = [
            (np.flatnonzero(inner != k), np.flatnonzero(inner == k))
            for k in range(config.inner_folds)
        ]
    weights = _class_weights(y, n_classes, config.class_weights)
    weight = torch.as_tensor(weights, dtype=torch.float32)

    members: list[_Member] = []
    held_logits = np.zeros((len(y), n_classes))
    held_rows = np.concatenate([val for _, val in splits])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network = build_network(config, z.shape[1], n_classes)
        parts = network.members if isinstance(network, Ensemble) else [network]
        for part, (fit_rows, val_rows) in zip(parts, splits, strict=True):
            member = _train_member(
                part, z[fit_rows], target[fit_rows], z[val_rows], target[val_rows], weight, config
            )
            members.append(member)
            with torch.inference_mode():
                held_logits[val_rows] = part(z[val_rows]).double().numpy()
    network.eval()
    calibration = fit_calibration(held_logits[held_rows], y[held_rows], config.calibration)
    history = TrainingHistory(
        best_epoch=float(np.mean([m.best_epoch for m in members])),
        epochs_run=float(np.mean([m.epochs_run for m in members])),
        best_val_loss=float(np.mean([m.best_val_loss for m in members])),
        n_fit=len(splits[0][0]),
        n_val=len(held_rows),
        class_weights=tuple(float(w) for w in weights),
        seconds=time.perf_counter() - started,
    )
    return FittedClassifier(
        config=config,
        feature_names=tuple(feature_names),
        classes=tuple(classes),
        preprocessor=preprocessor,
        network=network,
        calibration=calibration,
        history=history,
    )
