"""A visit as the guideline engine sees it: its measurements, each in the unit entered, and
the WHO, ADA and NICE verdicts, counting earlier results of the same patient.

Promises:
    * No unit is ever assumed: :func:`visit_from_entry` refuses a value without its unit.
    * An earlier visit in the diagnostic range counts as the second sample only when it is of
      the same patient, not on treatment, dated on or before the visit (entered earlier on
      the same day) and at most :data:`REPEAT_WINDOW_DAYS` before it (:func:`earlier_results`).
    * A stored value today's checks refuse is shown with the reason, never fatal to the page
      (:func:`visit_summary`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.diagnosis.criteria import (
    REPEAT_WINDOW_DAYS,
    EarlierResult,
    RuleResults,
    diagnostic_measurements,
    evaluate_rules,
)
from training.diagnosis.guidelines import load_guidelines
from training.diagnosis.measurements import LABELS, MEASUREMENTS, MeasurementError, Measurements
from training.diagnosis.registry import Confirmation, NewVisit, Reading, Registry, Visit

__all__ = [
    "earlier_results",
    "visit_from_entry",
    "visit_measurements",
    "visit_rules",
    "visit_summary",
]


def visit_measurements(visit: NewVisit, *, anaemia_or_hb_disorder: bool = False) -> Measurements:
    """The guideline engine's input for a visit: each measurement in the unit it was entered in.

    A value stored before units were kept has the unit ``unknown`` (compared as stored, in %
    or mmol/L, with a note on every verdict). HbA1c is left out when the visit records anaemia
    or a haemoglobin disorder, or when ``anaemia_or_hb_disorder`` says so for this reading.
    """
    values = {r.measurement: r.value for r in visit.entered}
    units = tuple((r.measurement, r.unit) for r in visit.entered)
    return Measurements(
        **values,
        units=units,
        symptoms=visit.symptoms,
        pregnant=visit.pregnant,
        treated=visit.treated,
        anaemia_or_hb_disorder=anaemia_or_hb_disorder or visit.anaemia_or_hb_disorder,
        unit_confirmed=visit.unit_confirmed,
    )


def visit_from_entry(
    date: dt.date,
    *,
    hba1c_unit: str | None = None,
    glucose_unit: str | None = None,
    unit_confirmed: bool = False,
    **fields_: Any,
) -> NewVisit:
    """A visit from values as entered, each kept with its unit (no unit is assumed).

    ``fields_`` are measurements by name (``hba1c``, ``fpg``, ``ogtt_1h``, ``ogtt_2h``,
    ``random_glucose``, ``gct_1h``, ``ogtt100_0h`` … ``ogtt100_3h``) and the remaining
    :class:`~training.diagnosis.registry.NewVisit` fields (``symptoms``, ``pregnant``, ``bmi``,
    ...).

    Raises:
        MeasurementError: a value without its unit, an unknown unit, or a value that cannot
            be real or needs its unit confirmed, in the unit entered.
    """
    readings = {n: fields_.pop(n) for n in MEASUREMENTS if n in fields_}
    readings = {n: v for n, v in readings.items() if v is not None}
    # The engine checks every value in its unit and refuses a value without one.
    Measurements(
        **readings,
        hba1c_unit=hba1c_unit,
        glucose_unit=glucose_unit,
        unit_confirmed=unit_confirmed,
    )
    entered = tuple(
        Reading(n, float(v), hba1c_unit if n == "hba1c" else glucose_unit)  # type: ignore[arg-type]
        for n, v in readings.items()
    )
    return NewVisit(date=date, entered=entered, unit_confirmed=unit_confirmed, **fields_)


def _rules_settings(workspace: Path | str | None) -> int:
    """The 50 g screen cut-off of the workspace's settings."""
    from dataset.settings import get_settings

    overrides = {} if workspace is None else {"workspace": Path(workspace)}
    return get_settings(**overrides).gdm_screen_cutoff_mgdl


def earlier_results(visit: Visit, visits: Sequence[Visit]) -> list[EarlierResult]:
    """Diagnostic-range results of the patient's earlier visits, per guideline.

    A visit counts when it is of the same patient, dated on or before ``visit`` (entered
    earlier when on the same day), not on treatment, and at most :data:`REPEAT_WINDOW_DAYS`
    before it; a later visit never confirms an earlier one.
    """
    out: list[EarlierResult] = []
    for other in visits:
        if other.visit_id == visit.visit_id or other.patient_id != visit.patient_id:
            continue
        days = (visit.date - other.date).days
        if days < 0 or days > REPEAT_WINDOW_DAYS or other.treated:
            continue
        if days == 0 and other.created_at >= visit.created_at:
            continue
        try:
            results = evaluate_rules(visit_measurements(other))
        except MeasurementError:
            continue  # a stored value today's checks refuse confirms nothing
        for name, result in results.items():
            found = diagnostic_measurements(result)
            if found:
                out.append(EarlierResult(name, other.date.isoformat(), days, found))
    return out


def visit_rules(
    visit: Visit,
    registry: Registry | None = None,
    *,
    screen_cutoff_mgdl: int | None = None,
    anaemia_or_hb_disorder: bool = False,
) -> RuleResults:
    """WHO, ADA and NICE verdicts for a stored visit, each with ``repeat_test``.

    With ``registry``, an earlier visit of the patient in the diagnostic range (see
    :func:`earlier_results`) counts as the second sample; the 50 g screen cut-off comes from
    the workspace settings unless given.
    """
    earlier: list[EarlierResult] = []
    workspace = None
    if registry is not None:
        earlier = earlier_results(visit, registry.visits(visit.patient_id))
        workspace = registry.store.root
    cutoff = screen_cutoff_mgdl or _rules_settings(workspace)
    return evaluate_rules(
        visit_measurements(visit, anaemia_or_hb_disorder=anaemia_or_hb_disorder),
        screen_cutoff_mgdl=cutoff,
        earlier=earlier,
    )


def visit_summary(
    registry: Registry,
    visit: Visit,
    confirmed: Confirmation | None,
    history: Sequence[Confirmation] = (),
) -> dict:
    """One visit as the page and ``diagnosis show`` present it (JSON-ready).

    ``measurements`` lists each value as entered (value, unit; ``unknown`` for a unit not
    kept); ``guidelines`` gives each guideline's verdict, ``repeat_test`` and notes;
    ``history`` the clinician's confirmations, each with what the guidelines said then.
    """
    try:
        guidelines = visit_rules(visit, registry).to_json()
    except MeasurementError as err:
        # A value stored under older, looser checks: say why instead of failing the page.
        note = f"Cannot be judged: {err}. Correct the value and enter the visit again."
        guidelines = {
            name: {
                "verdict": "insufficient data",
                "repeat_test": "not applicable",
                "fired": [],
                "notes": [note],
            }
            for name in load_guidelines().guidelines
        }
    return {
        "visit_id": visit.visit_id,
        "date": visit.date.isoformat(),
        "pregnant": visit.pregnant,
        "pregnancy_week": visit.pregnancy_week,
        "treated": visit.treated,
        "treatment": visit.treatment,
        "symptoms": visit.symptoms,
        "anaemia_or_hb_disorder": visit.anaemia_or_hb_disorder,
        "unit_confirmed": visit.unit_confirmed,
        "measurements": [
            {**r.to_json(), "shown": str(r), "label": LABELS[r.measurement]} for r in visit.entered
        ],
        "other": {
            k: getattr(visit, k)
            for k in (
                "bmi",
                "systolic_bp",
                "diastolic_bp",
                "insulin_uu_ml",
                "c_peptide_nmol",
                "gad_positive",
            )
            if getattr(visit, k) is not None
        },
        "smear_ids": list(visit.smear_ids),
        "guidelines": guidelines,
        "diagnosis": None if confirmed is None else confirmed.diagnosis,
        "confirmed_by": None if confirmed is None else confirmed.confirmed_by,
        "history": [
            {
                "revision": c.revision,
                "diagnosis": c.diagnosis,
                "confirmed_by": c.confirmed_by,
                "confirmed_at": c.confirmed_at.isoformat(),
                "note": c.note,
                "guidelines": c.guideline_verdicts(),
            }
            for c in history
        ],
    }
