"""Diabetes decision support: guideline criteria, a classifier of confirmed diagnoses, forecasts.

Modules:
    ``measurements`` / ``units``: values as entered, with their units, and what cannot be real.
    ``guidelines`` / ``guidelines.csv``: the published thresholds, as data.
    ``criteria``: WHO, ADA and NICE verdicts from measurements.
    ``registry``: pseudonymous patients, their visits and confirmed diagnoses (Delta tables).
    ``forecast``: HbA1c and fasting-glucose trends with dated threshold crossings.
    ``features`` / ``pima`` / ``classifier`` / ``calibration`` / ``crossval`` / ``explain`` /
    ``checkpoint``: the classifier, its evaluation, explanations and checkpoints.
    ``service``: the workflows the page, the CLI and the job runner share, one module each.
    ``cli``: the ``python -m training diagnosis ...`` commands.

Importing the package is light (no torch, no matplotlib): the criteria are imported here,
everything else when its module is imported. All of it is decision support for a clinician,
for research use, not a diagnosis.
"""

DISCLAIMER = (
    "Decision support for a clinician, for research use only: this is not a diagnosis. "
    "Patients are recorded under a pseudonym only, never a name."
)

from training.diagnosis.criteria import (  # noqa: E402  (after the constant other modules use)
    GuidelineResult,
    MeasurementError,
    Measurements,
    RuleResults,
    evaluate_rules,
)

__all__ = [
    "DISCLAIMER",
    "GuidelineResult",
    "MeasurementError",
    "Measurements",
    "RuleResults",
    "evaluate_rules",
]
