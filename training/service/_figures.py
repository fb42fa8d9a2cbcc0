"""How the service writes and averages scores in its messages and cards (private helpers)."""

from __future__ import annotations

import numpy as np


def fmt(value: float | None) -> str:
    """A score with three decimals, ``-`` when there is none."""
    return "-" if value is None else f"{value:.3f}"


def mean(values: tuple[float | None, ...]) -> float | None:
    """The mean of the scored values (None: not scored), or None when none is."""
    scored = [v for v in values if v is not None]
    return float(np.mean(scored)) if scored else None
