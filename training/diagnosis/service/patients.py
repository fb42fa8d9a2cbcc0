"""A registry patient as the page and ``diagnosis show`` present them: every visit with its
verdicts and confirmations, and the HbA1c and fasting-glucose trend.

Promises:
    * Visits come oldest first, each as :func:`~training.diagnosis.service.visits.visit_summary`
      gives it, with the :data:`~training.diagnosis.DISCLAIMER`.
    * An unknown patient raises :class:`~training.diagnosis.registry.RegistryError`.
    * :func:`open_patient` is how a patient's record is shown to a person (the Diagnosis page,
      ``diagnosis show``): it records ``patient_open`` in the audit trail, with who opened it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dataset import audit
from dataset.roles import Actor
from training.diagnosis import DISCLAIMER
from training.diagnosis.criteria import REPEAT_WINDOW_DAYS
from training.diagnosis.forecast import Forecast, VisitPoint, forecast, forecast_thresholds
from training.diagnosis.registry import Registry
from training.diagnosis.service.visits import visit_summary

__all__ = ["open_patient", "patient_forecast", "patient_summary"]


def patient_summary(registry: Registry, patient_id: str) -> dict[str, Any]:
    """A patient and every visit (:func:`visit_summary`), oldest first, with the disclaimer.

    Raises:
        RegistryError: no such patient.
    """
    patient = registry.patient(patient_id)
    histories = registry.histories(patient.patient_id)
    return {
        "patient": patient.patient_id,
        "sex": patient.sex,
        "birth_year": patient.birth_year,
        "visits": [
            visit_summary(
                registry,
                v,
                (histories.get(v.visit_id) or [None])[-1],
                histories.get(v.visit_id, ()),
            )
            for v in registry.visits(patient.patient_id)
        ],
        "repeat_window_days": REPEAT_WINDOW_DAYS,
        "disclaimer": DISCLAIMER,
    }


def open_patient(registry: Registry, patient_id: str, *, actor: Actor) -> dict[str, Any]:
    """A patient's record (:func:`patient_summary`) as shown to ``actor``, whose role must
    allow ``patients``; the opening is recorded in the audit trail (``patient_open``) once
    the record has been read.

    Raises:
        dataset.roles.PermissionDenied: the actor's role may not see patient data (nothing
            is read).
        RegistryError: no such patient (nothing is recorded then).
    """
    name = audit.authorise(actor, "patients", "patient_open")
    summary = patient_summary(registry, patient_id)
    audit.record(
        registry.store,
        actor=name,
        action="patient_open",
        object_id=summary["patient"],
        detail={"visits": len(summary["visits"])},
    )
    return summary


def patient_forecast(
    registry: Registry,
    patient_id: str,
    *,
    today: dt.date | None = None,
    guideline: str = "ADA",
    horizon_years: float = 10,
) -> Forecast:
    """HbA1c and fasting-glucose trend of a registry patient, with threshold crossings.

    Raises:
        RegistryError: no such patient.
    """
    registry.patient(patient_id)
    points = [
        VisitPoint(
            date=v.date,
            hba1c_percent=v.hba1c_percent,
            fpg_mmol=v.fpg_mmol,
            pregnant=v.pregnant,
            treated=v.treated,
        )
        for v in registry.visits(patient_id)
    ]
    return forecast(
        points,
        today=today,
        horizon_years=horizon_years,
        thresholds=forecast_thresholds(guideline),
    )
