"""Progression forecast: known slopes come back, crossings are dated, left-out visits stay out."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from training.diagnosis.criteria import MeasurementError
from training.diagnosis.forecast import (
    DAYS_PER_YEAR,
    NEEDS_VISITS,
    Forecast,
    VisitPoint,
    fit_line,
    forecast,
    forecast_figure,
    forecast_thresholds,
)

START = dt.date(2015, 3, 1)


def _days(years: float) -> dt.timedelta:
    return dt.timedelta(days=round(years * DAYS_PER_YEAR))


def _visits(years, hba1c=None, fpg=None, **flags) -> list[VisitPoint]:
    """Visits at ``years`` after START with values from callables of the exact time in years."""
    out = []
    for y in years:
        when = START + _days(y)
        t = (when - START).days / DAYS_PER_YEAR
        out.append(
            VisitPoint(
                when,
                hba1c_percent=None if hba1c is None else hba1c(t),
                fpg_mmol=None if fpg is None else fpg(t),
                **flags,
            )
        )
    return out


def test_exact_line_gives_its_slope_and_crossing_dates() -> None:
    visits = _visits([0, 1, 2], hba1c=lambda t: 5.0 + 0.2 * t, fpg=lambda t: 5.0 + 0.05 * t)
    result = forecast(visits, today=START + _days(2))
    fit = result.hba1c.fit
    assert fit is not None
    assert fit.slope_per_year == pytest.approx(0.2, abs=1e-12)
    assert fit.intercept == pytest.approx(5.0, abs=1e-12)
    assert fit.residual_sd == pytest.approx(0.0, abs=1e-12)
    assert fit.n == 3
    pre, dia = result.hba1c.crossing("prediabetes"), result.hba1c.crossing("diabetes")
    # ADA 5.7 % at 3.5 years, 6.5 % at 7.5 years after the first visit.
    assert (pre.threshold, pre.status, pre.date) == (5.7, "projected", START + _days(3.5))
    assert (dia.threshold, dia.status, dia.date) == (6.5, "projected", START + _days(7.5))
    # With no scatter there is no spread to give a range from: it says so, never a zero width.
    assert (pre.earliest, pre.latest, pre.spread) == (None, None, False)
    assert pre.range_text.startswith("cannot be estimated")
    assert pre.to_json()["range"] == pre.range_text
    # Fasting glucose: 5.6 mmol/L at 12 years, 10 years after today: beyond the horizon.
    assert result.fpg.fit.slope_per_year == pytest.approx(0.05, abs=1e-12)
    assert result.fpg.crossing("prediabetes").status == "not within 10 years"
    longer = forecast(visits, today=START + _days(2), horizon_years=10.5)
    assert longer.fpg.crossing("prediabetes").date == START + _days(12)


def test_noisy_visits_recover_a_known_slope() -> None:
    rng = np.random.default_rng(7)
    years = np.sort(rng.uniform(0, 6, size=14))
    noise = iter(rng.normal(0, 0.12, size=14))
    visits = _visits(years, hba1c=lambda t: 5.2 + 0.15 * t + next(noise))
    fit = forecast(visits, today=START + _days(6)).hba1c.fit
    assert fit is not None
    reference = stats.linregress(
        fit.years([v.date for v in visits]), [v.hba1c_percent for v in visits]
    )
    assert fit.slope_per_year == pytest.approx(reference.slope, rel=1e-9)
    assert fit.intercept == pytest.approx(reference.intercept, rel=1e-9)
    # The true slope lies within 3 standard errors of the estimate, and the noise is recovered.
    assert abs(fit.slope_per_year - 0.15) < 3 * reference.stderr
    assert abs(fit.slope_per_year - 0.15) < 0.05
    assert 0.06 < fit.residual_sd < 0.2


def test_prediction_interval_covers_95_percent_of_new_measurements() -> None:
    rng = np.random.default_rng(11)
    dates = [START + _days(y) for y in (0, 0.5, 1.5, 2, 3)]
    future = START + _days(4)
    t = np.array([(d - START).days for d in [*dates, future]]) / DAYS_PER_YEAR
    hits = 0
    trials = 1500
    for _ in range(trials):
        y = 5.4 + 0.1 * t + rng.normal(0, 0.2, size=t.size)
        band = fit_line(dates, y[:-1]).predict([future])
        hits += bool(band.lower[0] <= y[-1] <= band.upper[0])
    # Binomial sd at n = 1500 is 0.0056; 0.95 ± 0.02 is beyond 3.5 sd.
    assert abs(hits / trials - 0.95) < 0.02


def test_visits_in_pregnancy_or_on_treatment_are_left_out() -> None:
    visits = _visits([0, 1, 2, 3], hba1c=lambda t: 5.0 + 0.1 * t)
    visits += [
        VisitPoint(START + _days(1.5), hba1c_percent=7.9, pregnant=True),
        VisitPoint(START + _days(2.5), hba1c_percent=4.1, treated=True),
        VisitPoint(START + _days(2.7), hba1c_percent=8.5, treated=True, pregnant=True),
    ]
    series = forecast(visits, today=START + _days(3)).hba1c
    assert series.fit.slope_per_year == pytest.approx(0.1, abs=1e-12)
    assert len(series.points) == 4
    assert [r for _, _, r in series.left_out] == ["pregnant", "treated", "pregnant and treated"]


def test_fewer_than_three_visit_dates_need_more_visits() -> None:
    two = forecast(_visits([0, 1], hba1c=lambda t: 6.0), today=START + _days(1))
    assert two.hba1c.status == NEEDS_VISITS
    assert two.hba1c.fit is None
    assert [c.status for c in two.hba1c.crossings] == [NEEDS_VISITS, NEEDS_VISITS]
    same_day = [VisitPoint(START, hba1c_percent=5.5), *_visits([0, 1], hba1c=lambda t: 5.6)]
    assert forecast(same_day, today=START).hba1c.status == NEEDS_VISITS
    # Three visits, one in pregnancy: only two count.
    visits = _visits([0, 1], hba1c=lambda t: 5.5) + _visits([2], hba1c=lambda t: 5.6, pregnant=True)
    assert forecast(visits, today=START).hba1c.status == NEEDS_VISITS
    # No fasting glucose at all.
    assert forecast(visits, today=START).fpg.points == ()
    assert forecast(visits, today=START).fpg.status == NEEDS_VISITS


def test_already_above_and_falling_trends() -> None:
    rising = forecast(_visits([0, 1, 2], hba1c=lambda t: 6.6 + 0.1 * t), today=START + _days(2))
    assert [c.status for c in rising.hba1c.crossings] == ["already above", "already above"]
    falling = forecast(_visits([0, 1, 2], hba1c=lambda t: 5.6 - 0.1 * t), today=START + _days(2))
    assert [c.status for c in falling.hba1c.crossings] == ["not within 10 years"] * 2
    flat = forecast(
        _visits([0, 1, 2], hba1c=lambda t: 5.5), today=START + _days(2), horizon_years=5
    )
    assert flat.hba1c.crossing("diabetes").status == "not within 5 years"


def test_noisy_projection_is_bracketed_by_the_interval() -> None:
    values = iter([5.1, 5.35, 5.3, 5.55, 5.5])
    visits = _visits([0, 1, 2, 3, 4], hba1c=lambda t: next(values))
    diabetes = forecast(visits, today=START + _days(4)).hba1c.crossing("diabetes")
    assert diabetes.status == "projected"
    assert diabetes.earliest is not None and diabetes.earliest < diabetes.date
    assert diabetes.latest is None or diabetes.latest > diabetes.date


def test_thresholds_come_from_the_guideline_table() -> None:
    ada = forecast_thresholds()
    assert (ada.hba1c_prediabetes, ada.hba1c_diabetes) == (5.7, 6.5)
    assert (ada.fpg_prediabetes, ada.fpg_diabetes) == (5.6, 7.0)
    assert any("ADA" in s for s in ada.sources)
    who = forecast_thresholds("WHO")
    assert (who.hba1c_prediabetes, who.fpg_prediabetes) == (None, 6.1)
    nice = forecast_thresholds("NICE")
    assert (nice.hba1c_prediabetes, nice.fpg_prediabetes) == (6.0, 5.5)
    with pytest.raises(ValueError, match="WHO, ADA, NICE"):
        forecast_thresholds("EASD")
    visits = _visits([0, 1, 2], hba1c=lambda t: 5.0 + 0.2 * t)
    result = forecast(visits, today=START + _days(2), thresholds=who)
    assert result.hba1c.crossing("prediabetes").status == "no threshold"
    assert result.hba1c.crossing("diabetes").status == "projected"


def test_visit_values_that_cannot_be_real_are_refused() -> None:
    with pytest.raises(MeasurementError, match="hba1c_percent") as info:
        VisitPoint(START, hba1c_percent=48)
    assert info.value.field == "hba1c_percent"
    with pytest.raises(MeasurementError, match="fpg_mmol"):
        VisitPoint(START, fpg_mmol=-2.0)
    with pytest.raises(TypeError, match="date"):
        VisitPoint("2020-01-01", hba1c_percent=5.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="horizon_years"):
        forecast([], today=START, horizon_years=0)


def test_to_json_is_plain_json() -> None:
    visits = _visits([0, 1, 2, 3], hba1c=lambda t: 5.0 + 0.2 * t, fpg=lambda t: 5.0)
    visits.append(VisitPoint(START + _days(0.5), fpg_mmol=6.0, treated=True))
    out = forecast(visits, today=START + _days(3)).to_json()
    assert json.loads(json.dumps(out)) == out
    assert out["guideline"] == "ADA"
    assert out["thresholds"] == {
        "hba1c": {"prediabetes": 5.7, "diabetes": 6.5},
        "fpg": {"prediabetes": 5.6, "diabetes": 7.0},
    }
    hba1c = out["series"]["hba1c"]
    assert hba1c["slope_per_year"] == pytest.approx(0.2)
    assert hba1c["n_points"] == 4
    assert hba1c["crossings"]["diabetes"]["status"] == "projected"
    assert hba1c["crossings"]["diabetes"]["date"] == (START + _days(7.5)).isoformat()
    assert hba1c["today"]["lower"] <= hba1c["today"]["fit"] <= hba1c["today"]["upper"]
    assert out["series"]["fpg"]["left_out"] == [
        {"date": (START + _days(0.5)).isoformat(), "value": 6.0, "reason": "treated"}
    ]
    empty = forecast([], today=START).to_json()
    assert empty["series"]["fpg"]["slope_per_year"] is None


def test_figure_draws_thresholds_band_and_points() -> None:
    values = iter([5.1, 5.35, 5.3, 5.55, 5.5])
    visits = _visits([0, 1, 2, 3, 4], hba1c=lambda t: next(values))
    result: Forecast = forecast(visits, today=START + _days(4))
    fig = forecast_figure(result)
    hba1c_ax, fpg_ax = fig.axes[:2]
    horizontal = {round(line.get_ydata()[0], 3) for line in hba1c_ax.get_lines()}
    assert {5.7, 6.5} <= horizontal
    assert hba1c_ax.collections, "prediction band missing"
    assert any("needs at least 3 visits" in t.get_text() for t in fpg_ax.texts)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    assert buffer.getvalue().startswith(b"\x89PNG")


def test_importing_forecast_leaves_matplotlib_and_streamlit_out() -> None:
    code = (
        "import sys, training.diagnosis.forecast;"
        "print('matplotlib' in sys.modules, 'streamlit' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.split() == ["False", "False"]
