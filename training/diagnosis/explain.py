"""Per-patient explanation: how much each feature moved the predicted probability.

The promise: :func:`explain` returns integrated-gradients attributions of one class's
calibrated probability, taken along the straight path from the mean training patient (in the
model's preprocessed space) to the patient. The contributions of a feature and of its
"was missing" indicator are added together, and all contributions sum, up to the reported
``convergence_delta``, to the patient's probability minus the mean patient's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from training.diagnosis.classifier import FittedClassifier

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Explanation", "explain", "plot_explanation"]


@dataclass(frozen=True)
class Explanation:
    """Feature contributions to one patient's predicted probability of one class.

    Attributes:
        feature_names: The model's raw features.
        values: The patient's values, ``NaN`` where not measured.
        imputed: The values the model used (training medians in place of missing ones).
        contributions: Each feature's share of ``probability - baseline_probability``.
        target: The class explained.
        probability: The patient's calibrated probability of ``target``.
        baseline_probability: The same for the mean training patient.
        convergence_delta: ``sum(contributions) - (probability - baseline_probability)``;
            near zero when the integral was approximated well enough.

    Shape:
        values, imputed, contributions: (n_features,).
    """

    feature_names: tuple[str, ...]
    values: np.ndarray
    imputed: np.ndarray
    contributions: np.ndarray
    target: str
    probability: float
    baseline_probability: float
    convergence_delta: float

    def ranked(self) -> list[tuple[str, float]]:
        """(feature, contribution) pairs, largest effect first."""
        order = np.argsort(-np.abs(self.contributions), kind="stable")
        return [(self.feature_names[i], float(self.contributions[i])) for i in order]


def explain(
    model: FittedClassifier, x: np.ndarray, target: int | str | None = None, steps: int = 64
) -> Explanation:
    """Integrated gradients of one patient's calibrated probability against the training mean.

    Args:
        model: A fitted classifier.
        x: The patient's raw feature values, ``NaN`` where not measured.
        target: Class index or name to explain; the predicted class when left out.
        steps: Points of the midpoint rule along the path.

    Shape:
        x: (n_features,).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if target is None:
        target_index = int(model.predict_proba(x[None, :])[0].argmax())
    elif isinstance(target, str):
        if target not in model.classes:
            raise ValueError(f"unknown class {target!r}; the model's classes are {model.classes}")
        target_index = model.classes.index(target)
    else:
        target_index = int(target)
    preprocessor = model.preprocessor
    model.network.eval()
    # Tensors are made inside the block so a caller under inference_mode still gets gradients.
    with torch.inference_mode(False), torch.enable_grad():
        z = torch.from_numpy(preprocessor.transform(x[None, :]))
        z0 = torch.from_numpy(preprocessor.training_mean)[None, :]
        alphas = ((torch.arange(steps, dtype=torch.float32) + 0.5) / steps)[:, None]
        path = (z0 + alphas * (z - z0)).detach().requires_grad_(True)
        probability = model.calibrated_proba(path)[:, target_index]
        (grads,) = torch.autograd.grad(probability.sum(), path)
        with torch.no_grad():
            ends = model.calibrated_proba(torch.cat([z0, z]))[:, target_index].double()
            per_column = ((z - z0)[0] * grads.mean(dim=0)).double().numpy()
    contributions = np.zeros(len(model.feature_names))
    np.add.at(contributions, preprocessor.output_source, per_column)
    p0, p1 = float(ends[0]), float(ends[1])
    return Explanation(
        feature_names=model.feature_names,
        values=x,
        imputed=preprocessor.impute(x[None, :])[0],
        contributions=contributions,
        target=model.classes[target_index],
        probability=p1,
        baseline_probability=p0,
        convergence_delta=float(contributions.sum() - (p1 - p0)),
    )


def plot_explanation(explanation: Explanation, ax: Axes | None = None) -> Figure:
    """Horizontal bars of the contributions, largest on top (matplotlib imported here).

    Args:
        explanation: What :func:`explain` returned.
        ax: Axes to draw into; a new figure when left out.
    """
    # A bare Figure, not pyplot: no global figure registry to leak from a long-lived server.
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(6, 0.35 * len(explanation.feature_names) + 1.2))
        ax = fig.subplots()
    else:
        fig = ax.figure
    order = np.argsort(np.abs(explanation.contributions), kind="stable")
    labels = []
    for i in order:
        name, value = explanation.feature_names[i], explanation.values[i]
        if np.isnan(value):
            labels.append(f"{name} = not measured (used {explanation.imputed[i]:.4g})")
        else:
            labels.append(f"{name} = {value:.4g}")
    shares = explanation.contributions[order]
    ax.barh(labels, shares, color=["#c0392b" if s > 0 else "#2471a3" for s in shares])
    ax.axvline(0.0, color="#555555", linewidth=0.8)
    ax.set_xlabel(f"change in P({explanation.target})")
    ax.set_title(
        f"P({explanation.target}) = {explanation.probability:.2f}; "
        f"mean training patient {explanation.baseline_probability:.2f}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
