"""Progression forecast: where one person's HbA1c and fasting glucose are heading.

Promises:
    * Per series (HbA1c in %, fasting plasma glucose in mmol/L) an ordinary least-squares line
      over the visits, time in years (365.25 days) since the first visit used, with its residual
      standard deviation and a 95 % prediction interval for a single future measurement
      (Student t with n − 2 degrees of freedom), which is what a clinician compares the next
      result with. Wide intervals are reported and drawn as they are, never clipped.
    * Visits in pregnancy or on glucose-lowering treatment are left out (both change glycaemia
      for reasons other than progression) and listed with the reason.
    * For the prediabetes and the diabetes threshold of one guideline (default ADA: 5.7 % and
      6.5 %, 5.6 and 7.0 mmol/L; read from the guideline table, so a local variant applies),
      each series gives one status: ``projected`` with the date the fitted line reaches the
      threshold, ``already above`` (the fitted line is at or above it today), ``not within N
      years`` (N = ``horizon_years``; also when the line is flat or falling), ``needs at least 3
      visits`` (fewer than three visit dates left), or ``no threshold`` (the guideline has none,
      e.g. WHO for HbA1c prediabetes). ``earliest`` and ``latest`` bracket the date with the
      prediction interval: the first day the upper, and the lower, 95 % bound reach it.
    * Pure: no store, no clock except ``today=None`` meaning the computer's date. Plotting
      (:func:`forecast_figure`) imports matplotlib only when called.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from training.diagnosis.guidelines import GuidelineTable, load_guidelines
from training.diagnosis.measurements import check_possible
from training.diagnosis.units import convert, symbol

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DAYS_PER_YEAR = 365.25
MIN_VISITS = 3
LEVEL = 0.95
NEEDS_VISITS = f"needs at least {MIN_VISITS} visits"
ZERO_SPREAD = (
    "cannot be estimated: the visits lie exactly on a line, so there is no residual spread to "
    "give a range from"
)
# (series name, unit, VisitPoint attribute, label)
SERIES: tuple[tuple[str, str, str, str], ...] = (
    ("hba1c", "percent", "hba1c_percent", "HbA1c"),
    ("fpg", "mmol/L", "fpg_mmol", "Fasting plasma glucose"),
)
CATEGORIES = ("prediabetes", "diabetes")


@dataclass(frozen=True)
class VisitPoint:
    """One visit: the date, what was measured, and whether it counts toward the trend.

    Raises:
        MeasurementError: a value cannot be real (see :mod:`training.diagnosis.criteria`).
    """

    date: dt.date
    hba1c_percent: float | None = None
    fpg_mmol: float | None = None
    pregnant: bool = False
    treated: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.date, dt.date):
            raise TypeError(f"VisitPoint.date must be a date, not {self.date!r}.")
        if self.hba1c_percent is not None:
            check_possible("hba1c_percent", self.hba1c_percent, "percent", confirmed=True)
        if self.fpg_mmol is not None:
            check_possible("fpg_mmol", self.fpg_mmol, "mmol/L", confirmed=True)

    @property
    def left_out_because(self) -> str | None:
        """Why this visit is not part of the trend, or None when it is."""
        reasons = [r for r, on in (("pregnant", self.pregnant), ("treated", self.treated)) if on]
        return " and ".join(reasons) or None


@dataclass(frozen=True)
class ForecastThresholds:
    """The thresholds a forecast projects to, and where they come from.

    HbA1c values are in %, fasting glucose in mmol/L; None where the guideline has no such
    threshold.
    """

    guideline: str
    hba1c_prediabetes: float | None
    hba1c_diabetes: float | None
    fpg_prediabetes: float | None
    fpg_diabetes: float | None
    sources: tuple[str, ...]

    def of(self, series: str, category: str) -> float | None:
        """Threshold of ``series`` (``hba1c``/``fpg``) for ``category``."""
        return getattr(self, f"{series}_{category}")


def forecast_thresholds(
    guideline: str = "ADA", table: GuidelineTable | None = None
) -> ForecastThresholds:
    """The non-pregnant lower ends of ``guideline``'s prediabetes and diabetes ranges.

    Raises:
        ValueError: the table has no such guideline; the message lists those it has.
    """
    table = table or load_guidelines()
    if guideline not in table.guidelines:
        raise ValueError(
            f"Unknown guideline {guideline!r}; the table has: {', '.join(table.guidelines)}."
        )
    values: dict[str, float | None] = {}
    sources: list[str] = []
    for name, unit, _, _ in SERIES:
        rows = table.select(guideline, "not pregnant", name)
        for category in CATEGORIES:
            candidates = [r for r in rows if r.category == category and not r.needs_symptoms]
            row = next((r for r in candidates if r.unit == unit), None) or next(
                iter(candidates), None
            )
            values[f"{name}_{category}"] = (
                None if row is None else round(convert(float(row.low), row.unit, unit), 2)
            )
            if row is not None:
                sources.append(row.source)
    return ForecastThresholds(guideline, **values, sources=tuple(dict.fromkeys(sources)))


@dataclass(frozen=True)
class Prediction:
    """Fitted values and the prediction interval at some dates.

    Shape:
        each array: (n_dates,)
    """

    dates: tuple[dt.date, ...]
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True)
class LineFit:
    """``value = intercept + slope_per_year × years since origin``, fitted by least squares."""

    origin: dt.date
    intercept: float
    slope_per_year: float
    residual_sd: float
    n: int
    mean_years: float
    sxx: float
    level: float = LEVEL

    def years(self, dates: Sequence[dt.date]) -> np.ndarray:
        """Years since ``origin`` of each date."""
        return np.array([(d - self.origin).days for d in dates], dtype=float) / DAYS_PER_YEAR

    def at(self, years: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fitted value and prediction-interval half-width at ``years`` since origin."""
        years = np.asarray(years, dtype=float)
        t = stats.t.ppf(0.5 + self.level / 2, self.n - 2)
        spread = np.sqrt(1 + 1 / self.n + (years - self.mean_years) ** 2 / self.sxx)
        return self.intercept + self.slope_per_year * years, t * self.residual_sd * spread

    def predict(self, dates: Sequence[dt.date]) -> Prediction:
        """Fitted value with the prediction interval for one new measurement at each date."""
        mean, half = self.at(self.years(dates))
        return Prediction(tuple(dates), mean, mean - half, mean + half)

    def date_at(self, years: float) -> dt.date:
        """The calendar day ``years`` after origin."""
        return self.origin + dt.timedelta(days=round(years * DAYS_PER_YEAR))


def fit_line(dates: Sequence[dt.date], values: Sequence[float], level: float = LEVEL) -> LineFit:
    """Least-squares line of ``values`` over ``dates``.

    Raises:
        ValueError: fewer than three points, or fewer than two distinct dates.
    """
    if len(dates) != len(values) or len(dates) < MIN_VISITS or len(set(dates)) < 2:
        raise ValueError(
            f"A trend needs at least {MIN_VISITS} measurements on at least 2 dates; "
            f"got {len(values)} on {len(set(dates))}."
        )
    origin = min(dates)
    x = np.array([(d - origin).days for d in dates], dtype=float) / DAYS_PER_YEAR
    y = np.asarray(values, dtype=float)
    mean_x = float(x.mean())
    sxx = float(((x - mean_x) ** 2).sum())
    slope = float(((x - mean_x) * (y - y.mean())).sum() / sxx)
    intercept = float(y.mean() - slope * mean_x)
    residuals = y - (intercept + slope * x)
    sd = float(np.sqrt((residuals**2).sum() / (len(y) - 2)))
    return LineFit(origin, intercept, slope, sd, len(y), mean_x, sxx, level)


@dataclass(frozen=True)
class Crossing:
    """When one series reaches one threshold (see the module docstring for ``status``)."""

    category: str
    threshold: float | None
    status: str
    date: dt.date | None = None
    earliest: dt.date | None = None
    latest: dt.date | None = None
    spread: bool = True  # False: the visits lie exactly on a line, no interval can be given

    @property
    def range_text(self) -> str:
        """The 95 % range of the crossing date as text (``earliest to latest``)."""
        if not self.spread:
            return ZERO_SPREAD
        if self.earliest is None and self.latest is None:
            return "not within the horizon"
        beyond = "beyond the horizon"
        return f"{_iso(self.earliest) or beyond} to {_iso(self.latest) or beyond}"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types; dates as ISO strings; ``range`` the 95 % range as text."""
        return {
            "category": self.category,
            "threshold": self.threshold,
            "status": self.status,
            "date": _iso(self.date),
            "earliest": _iso(self.earliest),
            "latest": _iso(self.latest),
            "range": self.range_text,
        }


@dataclass(frozen=True)
class SeriesForecast:
    """One measurement's trend: points used, points left out, the line, and its crossings."""

    name: str
    label: str
    unit: str
    points: tuple[tuple[dt.date, float], ...]
    left_out: tuple[tuple[dt.date, float, str], ...]
    fit: LineFit | None
    crossings: tuple[Crossing, ...]

    @property
    def status(self) -> str:
        """``fitted`` or ``needs at least 3 visits``."""
        return "fitted" if self.fit is not None else NEEDS_VISITS

    def crossing(self, category: str) -> Crossing:
        """The crossing of ``category`` (``prediabetes`` or ``diabetes``)."""
        return next(c for c in self.crossings if c.category == category)

    def to_json(self, today: dt.date) -> dict[str, Any]:
        """Plain JSON types: the line, the interval today, points and crossings."""
        fit = self.fit
        out: dict[str, Any] = {
            "unit": self.unit,
            "status": self.status,
            "n_points": len(self.points),
            "points": [{"date": d.isoformat(), "value": v} for d, v in self.points],
            "left_out": [
                {"date": d.isoformat(), "value": v, "reason": r} for d, v, r in self.left_out
            ],
            "origin": None,
            "intercept": None,
            "slope_per_year": None,
            "residual_sd": None,
            "today": None,
            "crossings": {c.category: c.to_json() for c in self.crossings},
        }
        if fit is not None:
            now = fit.predict([today])
            out |= {
                "origin": fit.origin.isoformat(),
                "intercept": fit.intercept,
                "slope_per_year": fit.slope_per_year,
                "residual_sd": fit.residual_sd,
                "today": {
                    "fit": float(now.mean[0]),
                    "lower": float(now.lower[0]),
                    "upper": float(now.upper[0]),
                    "level": fit.level,
                },
            }
        return out


@dataclass(frozen=True)
class Forecast:
    """Both series of one person, projected from ``today`` up to ``horizon_years`` ahead."""

    today: dt.date
    horizon_years: float
    thresholds: ForecastThresholds
    series: tuple[SeriesForecast, ...]

    @property
    def hba1c(self) -> SeriesForecast:
        return self.series[0]

    @property
    def fpg(self) -> SeriesForecast:
        return self.series[1]

    @property
    def horizon_end(self) -> dt.date:
        """The last day a crossing counts as projected."""
        return self.today + dt.timedelta(days=round(self.horizon_years * DAYS_PER_YEAR))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types for the CLI: thresholds with sources, then each series."""
        return {
            "today": self.today.isoformat(),
            "horizon_years": self.horizon_years,
            "guideline": self.thresholds.guideline,
            "thresholds": {
                s.name: {c: self.thresholds.of(s.name, c) for c in CATEGORIES} for s in self.series
            },
            "sources": list(self.thresholds.sources),
            "series": {s.name: s.to_json(self.today) for s in self.series},
        }


def forecast(
    visits: Sequence[VisitPoint],
    *,
    today: dt.date | None = None,
    horizon_years: float = 10,
    thresholds: ForecastThresholds | None = None,
) -> Forecast:
    """Trend and threshold crossings of HbA1c and fasting glucose over ``visits``.

    Args:
        visits: any order; visits in pregnancy or on treatment are left out of the trend.
        today: the date projections start from; None uses the computer's date.
        horizon_years: how far ahead a crossing counts (``not within N years`` beyond it).
        thresholds: from :func:`forecast_thresholds`; None uses ADA's.

    Returns:
        A :class:`Forecast` with one :class:`SeriesForecast` per measurement.
    """
    if horizon_years <= 0:
        raise ValueError(f"horizon_years must be above 0, not {horizon_years}.")
    today = today or dt.date.today()
    thresholds = thresholds or forecast_thresholds("ADA")
    ordered = sorted(visits, key=lambda v: v.date)
    series = []
    for name, unit, attribute, label in SERIES:
        measured = [
            (v, getattr(v, attribute)) for v in ordered if getattr(v, attribute) is not None
        ]
        points = tuple((v.date, float(x)) for v, x in measured if v.left_out_because is None)
        left_out = tuple(
            (v.date, float(x), v.left_out_because)
            for v, x in measured
            if v.left_out_because is not None
        )
        fit = None
        if len(points) >= MIN_VISITS and len({d for d, _ in points}) >= MIN_VISITS:
            fit = fit_line([d for d, _ in points], [x for _, x in points])
        crossings = tuple(
            _crossing(fit, c, thresholds.of(name, c), today, horizon_years) for c in CATEGORIES
        )
        series.append(SeriesForecast(name, label, unit, points, left_out, fit, crossings))
    return Forecast(today, horizon_years, thresholds, tuple(series))


def _crossing(
    fit: LineFit | None,
    category: str,
    threshold: float | None,
    today: dt.date,
    horizon_years: float,
) -> Crossing:
    if threshold is None:
        return Crossing(category, None, "no threshold")
    if fit is None:
        return Crossing(category, threshold, NEEDS_VISITS)
    now = float(fit.years([today])[0])
    end = now + horizon_years
    if fit.at(np.array([now]))[0][0] >= threshold:
        return Crossing(category, threshold, "already above")
    # The bounds are not straight lines, so they are searched day by day over the horizon.
    grid = now + np.arange(0, round(horizon_years * DAYS_PER_YEAR) + 1) / DAYS_PER_YEAR
    mean, half = fit.at(grid)
    # Rounding leaves ~1e-16 of spread on points exactly on a line: that is no spread.
    spread = bool(fit.residual_sd > 1e-9)
    earliest = _first_day(fit, grid, mean + half >= threshold) if spread else None
    latest = _first_day(fit, grid, mean - half >= threshold) if spread else None
    if fit.slope_per_year > 0:
        years = (threshold - fit.intercept) / fit.slope_per_year
        if years <= end:
            return Crossing(
                category, threshold, "projected", fit.date_at(years), earliest, latest, spread
            )
    return Crossing(
        category, threshold, f"not within {horizon_years:g} years", None, earliest, latest, spread
    )


def _first_day(fit: LineFit, grid: np.ndarray, reached: np.ndarray) -> dt.date | None:
    hits = np.flatnonzero(reached)
    return fit.date_at(float(grid[hits[0]])) if hits.size else None


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def forecast_figure(result: Forecast) -> Figure:
    """One panel per series: visits, the fitted line, its 95 % prediction band and thresholds.

    Left-out visits are drawn hollow; the band is drawn whatever its width; the x axis runs to
    the last projected crossing (at least two years past today, at most the horizon).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 6.5), layout="constrained")
    axes = fig.subplots(len(result.series), 1, sharex=True)
    projected = [
        c.date for s in result.series for c in s.crossings if c.status == "projected" and c.date
    ]
    end = max([result.today + dt.timedelta(days=round(2 * DAYS_PER_YEAR)), *projected])
    end = min(end + dt.timedelta(days=180), result.horizon_end)
    colors = {"prediabetes": "#f9a825", "diabetes": "#c62828"}
    for ax, series in zip(np.atleast_1d(axes), result.series, strict=True):
        unit = symbol(series.unit)
        if series.points:
            ax.plot(*zip(*series.points, strict=True), "o", color="#1565c0", label="visits used")
        if series.left_out:
            dates, values, _ = zip(*series.left_out, strict=True)
            ax.plot(
                dates, values, "o", mfc="none", color="#757575", label="left out (pregnant/treated)"
            )
        if series.fit is not None:
            days = (end - series.fit.origin).days
            span = [
                series.fit.origin + dt.timedelta(days=int(d)) for d in np.linspace(0, days, 200)
            ]
            band = series.fit.predict(span)
            ax.plot(span, band.mean, color="#1565c0", lw=1.5, label="least-squares line")
            ax.fill_between(
                span,
                band.lower,
                band.upper,
                color="#1565c0",
                alpha=0.15,
                lw=0,
                label=f"{series.fit.level:.0%} prediction interval",
            )
        else:
            ax.text(
                0.5,
                0.5,
                f"{series.label}: {NEEDS_VISITS} (not in pregnancy or on treatment)",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="#757575",
            )
        for crossing in series.crossings:
            if crossing.threshold is None:
                continue
            ax.axhline(
                crossing.threshold,
                ls="--",
                lw=1,
                color=colors[crossing.category],
                label=f"{result.thresholds.guideline} {crossing.category} "
                f"{crossing.threshold:.1f} {unit}",
            )
            if crossing.status == "projected" and crossing.date is not None:
                ax.plot([crossing.date], [crossing.threshold], "D", color=colors[crossing.category])
                ax.annotate(
                    crossing.date.isoformat(),
                    (crossing.date, crossing.threshold),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=8,
                )
        ax.axvline(result.today, color="#424242", lw=0.8, ls=":")
        ax.set_ylabel(f"{series.label} ({unit})")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[-1].set_xlabel("date (dotted line: today)")
    fig.suptitle(f"Progression forecast ({result.thresholds.guideline} thresholds)")
    return fig
