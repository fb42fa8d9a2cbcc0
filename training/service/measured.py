"""The active-learning measurement shipped with SmearLab, and the default strategy it earns.

``bench/al_smears.py`` measures each strategy (random, entropy, margin, each with and without
``per_smear`` diversity) on whole BCCD smears and exports a small summary as package data,
``training/data/active_learning.json`` (``--export-package-data``), because ``bench/results/``
is not shipped.

Promises:
- :func:`choose_default` is the one rule: the arm with the best mean held-out mIoU over the
  rounds after the shared start becomes the default only when it is not random and beats random
  (the same diversity, paired per seed) beyond the seed spread, i.e. the mean of its per-seed
  differences exceeds their standard deviation. Otherwise the default is random with
  ``per_smear`` diversity, and the verdict says why.
- :func:`measured_default` never raises: without the file (or with an unreadable one) it says
  plainly that no measurement has been shipped and defaults to random with ``per_smear``.
- Nothing is claimed that the file does not hold: the verdict quotes its figures only.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "FALLBACK_DIVERSITY",
    "FALLBACK_STRATEGY",
    "MEASUREMENT_PATH",
    "ArmResult",
    "MeasuredDefault",
    "Measurement",
    "beats_random",
    "choose_default",
    "load_measurement",
    "measured_default",
    "write_measurement",
]

MEASUREMENT_PATH = Path(__file__).resolve().parents[1] / "data" / "active_learning.json"
FALLBACK_STRATEGY = "random"
FALLBACK_DIVERSITY = "per_smear"


class ArmResult(BaseModel):
    """One strategy with or without diversity, over the rounds of the benchmark.

    Attributes:
        arm: ``strategy`` or ``strategy+diversity``, e.g. ``entropy+per_smear``.
        miou_mean, miou_std: Held-out mIoU per labelled-set size (``Measurement.n_labelled``),
            mean and standard deviation over seeds.
        tiles_for_95pct: Smallest labelled-set size whose mean mIoU reaches 95 % of the
            all-pool model; None when no size did.
        white_cell_share: Share of the tiles it picked (after the shared start) that hold a
            white-cell pixel.
        minus_random_per_seed: Per seed, the mean over the later rounds of its mIoU minus
            random's (same diversity, same seed); empty for the random arms.
    """

    model_config = ConfigDict(extra="forbid")

    arm: str
    strategy: str
    diversity: str | None
    miou_mean: list[float]
    miou_std: list[float]
    tiles_for_95pct: int | None
    white_cell_share: float | None
    minus_random_per_seed: list[float] = Field(default_factory=list)

    @property
    def later_mean(self) -> float:
        """Mean held-out mIoU over the rounds after the shared start (the ranking figure)."""
        later = self.miou_mean[1:] or self.miou_mean
        return sum(later) / len(later)


class Measurement(BaseModel):
    """What ``training/data/active_learning.json`` holds (written by bench/al_smears.py)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    n_labelled: list[int]
    seeds: int
    pool_tiles: int
    pool_white_cell_share: float
    heldout: str
    reference_miou: float
    reference: str
    precision: str
    protocol: str
    command: str
    measured_at: str
    arms: list[ArmResult]


def beats_random(arm: ArmResult) -> bool:
    """Whether ``arm`` beats random beyond the seed spread: the mean of its per-seed paired
    differences is positive and larger than their standard deviation (two seeds at least)."""
    d = arm.minus_random_per_seed
    if arm.strategy == "random" or len(d) < 2:
        return False
    return statistics.fmean(d) > statistics.stdev(d)


@dataclass(frozen=True)
class MeasuredDefault:
    """The Suggestions page's default and why.

    Attributes:
        strategy, diversity: The default strategy and diversity rule (None: no spreading).
        verdict: One or two sentences a lab can read: what was measured and what it showed.
        shipped: Whether a measurement file was found and read.
        rows: The curve, one dict per (arm, labelled tiles): ``arm``, ``tiles``, ``miou``,
            ``low``, ``high`` (mean and mean ± sd), for a chart.
        best_beats_random: Whether the default came from the measurement (not the fallback).
    """

    strategy: str
    diversity: str | None
    verdict: str
    shipped: bool
    rows: list[dict] = field(default_factory=list)
    best_beats_random: bool = False


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def choose_default(measurement: Measurement) -> MeasuredDefault:
    """The default strategy the measurement earns (see the module's promises) and its verdict."""
    rows = [
        {
            "arm": arm.arm,
            "tiles": n,
            "miou": round(mean, 4),
            "low": round(mean - sd, 4),
            "high": round(mean + sd, 4),
        }
        for arm in measurement.arms
        for n, mean, sd in zip(measurement.n_labelled, arm.miou_mean, arm.miou_std, strict=True)
    ]
    if not measurement.arms:
        return _fallback("The shipped active-learning measurement holds no strategy.", rows)
    best = max(measurement.arms, key=lambda a: a.later_mean)
    sizes = "/".join(str(n) for n in measurement.n_labelled)
    where = (
        f"Measured on {measurement.dataset} ({measurement.pool_tiles} pool tiles, "
        f"{_pct(measurement.pool_white_cell_share)} with a white cell; {measurement.seeds} "
        f"seeds; {sizes} labelled tiles; held-out {measurement.heldout})."
    )
    if beats_random(best):
        d = best.minus_random_per_seed
        need = best.tiles_for_95pct
        reach = (
            f" It reached 95 % of the all-pool model with {need} labelled tiles."
            if need is not None
            else ""
        )
        verdict = (
            f"{where} {best.arm} scored best and beat random by "
            f"{100 * statistics.fmean(d):+.1f} mIoU points on average, more than the seed "
            f"spread ({100 * statistics.stdev(d):.1f}); {_pct(best.white_cell_share or 0)} of "
            f"the tiles it picked hold a white cell.{reach}"
        )
        return MeasuredDefault(
            best.strategy, best.diversity, verdict, True, rows, best_beats_random=True
        )
    winners = [a.arm for a in measurement.arms if beats_random(a)]
    if best.strategy == "random":
        why = f"random ({best.arm}) itself scored best"
    else:
        why = f"the best, {best.arm}, did not beat random beyond the seed spread"
    also = (
        f" ({', '.join(winners)} beat random of the same diversity, but scored lower overall.)"
        if winners
        else ""
    )
    verdict = (
        f"{where} No strategy earned the default: {why}, so the page starts with random "
        f"tiles spread over smears.{also}"
    )
    return MeasuredDefault(FALLBACK_STRATEGY, FALLBACK_DIVERSITY, verdict, True, rows)


def _fallback(verdict: str, rows: list[dict] | None = None) -> MeasuredDefault:
    return MeasuredDefault(FALLBACK_STRATEGY, FALLBACK_DIVERSITY, verdict, False, rows or [])


def load_measurement(path: Path | None = None) -> Measurement | None:
    """The shipped measurement, or None when there is no file.

    Raises:
        ValueError: The file exists but is not a measurement (names the file).
    """
    path = Path(path or MEASUREMENT_PATH)
    if not path.is_file():
        return None
    try:
        return Measurement.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError, OSError) as exc:
        raise ValueError(
            f"{path} is not an active-learning measurement ({exc.__class__.__name__}); "
            "re-export it with bench/al_smears.py --export-package-data."
        ) from exc


def measured_default(path: Path | None = None) -> MeasuredDefault:
    """The Suggestions page's default strategy, from the shipped measurement if there is one."""
    try:
        measurement = load_measurement(path)
    except ValueError as exc:
        return _fallback(f"The shipped active-learning measurement cannot be read: {exc}")
    if measurement is None:
        return _fallback(
            "No active-learning measurement has been shipped with this version yet, so no "
            "strategy has shown that it beats random here: the page starts with random tiles "
            "spread over smears."
        )
    from training.strategies import DIVERSITY, STRATEGIES

    chosen = choose_default(measurement)
    if chosen.strategy not in STRATEGIES or (
        chosen.diversity is not None and chosen.diversity not in DIVERSITY
    ):
        return _fallback(
            f"The shipped measurement recommends {chosen.strategy} with {chosen.diversity}, "
            "which this version does not offer; starting with random tiles spread over smears.",
            chosen.rows,
        )
    return chosen


def write_measurement(measurement: Measurement, path: Path | None = None) -> Path:
    """Write ``measurement`` as JSON (staged, then renamed in); returns the path."""
    path = Path(path or MEASUREMENT_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(
        json.dumps(measurement.model_dump(mode="json"), indent=1) + "\n", encoding="utf-8"
    )
    os.replace(staged, path)
    return path
