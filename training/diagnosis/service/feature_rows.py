"""A visit as the classifier's feature row: the registry's measurements in a fixed order,
then the class shares and counts of the visit's analysed smears.

Promises:
    * The first columns are :data:`REGISTRY_FEATURES`, in that order; a value not measured is
      ``NaN`` (imputed later, with a "was missing" indicator).
    * Treatment is never a feature: a model that learns "treated, so diabetic" tells the
      clinician nothing new.
    * Smear features are the mean over the visit's smears of the newest stored analysis of
      each (:func:`training.service.latest_smear_features`); smears never analysed add nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dataset.store import Store
from training.diagnosis.registry import NewVisit, ParsedRow

__all__ = ["REGISTRY_FEATURES", "row_features", "smear_features", "visit_features"]

# Features of a registry visit, in column order. Treatment is left out on purpose: a model
# that learns "treated, so diabetic" tells the clinician nothing new.
REGISTRY_FEATURES: tuple[str, ...] = (
    "age (years)",
    "female",
    "pregnant",
    "pregnancy week",
    "HbA1c (%)",
    "fasting glucose (mmol/L)",
    "1-hour OGTT glucose (mmol/L)",
    "2-hour OGTT glucose (mmol/L)",
    "random glucose (mmol/L)",
    "symptoms",
    "BMI (kg/m²)",
    "systolic BP (mmHg)",
    "diastolic BP (mmHg)",
    "insulin (µU/mL)",
    "C-peptide (nmol/L)",
    "GAD antibodies",
)


def smear_features(store: Store, smear_ids: Sequence[str]) -> dict[str, float]:
    """Class shares and counts of the linked smears, as classifier features.

    Reads the newest stored analysis of each smear (``python -m training analyze`` or the
    Analysis page store one per run) and averages each figure over the visit's analysed
    smears. Smears never analysed contribute nothing; with none analysed this returns ``{}``
    and the visit's smear features stay missing (imputed, with a "was missing" indicator).
    """
    from training.service.smear_analysis import latest_smear_features

    per_smear = list(latest_smear_features(store, smear_ids).values())
    names = dict.fromkeys(name for feats in per_smear for name in feats)
    out: dict[str, float] = {}
    for name in names:
        values = [f[name] for f in per_smear if name in f and not math.isnan(f[name])]
        out[f"smear: {name}"] = float(np.mean(values)) if values else math.nan
    return out


def visit_features(
    visit: NewVisit,
    *,
    sex: str | None = None,
    birth_year: int | None = None,
    store: Store | None = None,
) -> dict[str, float]:
    """One visit as named feature values (``NaN`` where not measured).

    Args:
        visit: The visit (stored or parsed from a CSV).
        sex: The patient's sex; birth_year: the patient's birth year (for the age).
        store: The workspace store, to read smear features of linked smears.

    Returns:
        The :data:`REGISTRY_FEATURES` in order, then any smear features of linked smears.
    """
    nan = float("nan")

    def num(value: float | None) -> float:
        return nan if value is None else float(value)

    values = (
        nan if birth_year is None else float(visit.date.year - birth_year),
        nan if sex is None else float(sex == "female"),
        float(visit.pregnant),
        num(visit.pregnancy_week),
        num(visit.hba1c_percent),
        num(visit.fpg_mmol),
        num(visit.ogtt_1h_mmol),
        num(visit.ogtt_2h_mmol),
        num(visit.random_glucose_mmol),
        float(visit.symptoms),
        num(visit.bmi),
        num(visit.systolic_bp),
        num(visit.diastolic_bp),
        num(visit.insulin_uu_ml),
        num(visit.c_peptide_nmol),
        nan if visit.gad_positive is None else float(visit.gad_positive),
    )
    out = dict(zip(REGISTRY_FEATURES, values, strict=True))
    if store is not None and visit.smear_ids:
        out.update(smear_features(store, visit.smear_ids))
    return out


def row_features(row: ParsedRow) -> dict[str, float]:
    """The feature row of a parsed visits-CSV row (no smears: a CSV links none)."""
    return visit_features(row.visit, sex=row.sex, birth_year=row.birth_year)
