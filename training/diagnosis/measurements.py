"""Measurements as entered: the guideline engine's input record and the checks that refuse
a value that cannot be real.

Promises:
    * No unit is ever assumed: a value without a unit raises :class:`MeasurementError` naming the
      unit field. A value stored before units were kept has unit ``unknown``: it is compared in
      the unit it was stored in (%, mmol/L) and every verdict says the entered unit was not kept.
    * Plausibility (:func:`check_possible`): glucose ≤ 0, HbA1c below 3 % (9 mmol/mol) or above
      20 % (195 mmol/mol) and glucose above 100 mmol/L are refused; glucose below 1.0 mmol/L
      (18 mg/dL) or above 33.3 mmol/L (600 mg/dL) is refused unless the unit is confirmed
      (``unit_confirmed``). A value that looks like the other unit is refused naming that unit.
    * Limits are compared exactly (:func:`as_decimal`), in the unit the value was entered in.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from decimal import Decimal

from training.diagnosis.units import GLUCOSE_UNITS, HBA1C_UNITS, quantity_of, symbol

__all__ = [
    "CANONICAL_UNITS",
    "GLUCOSE_CONFIRM_HIGH",
    "GLUCOSE_MEASUREMENTS",
    "LABELS",
    "MEASUREMENTS",
    "UNKNOWN_UNIT",
    "MeasurementError",
    "Measurements",
    "as_decimal",
    "check_possible",
    "unit_field",
]

MEASUREMENTS: tuple[str, ...] = (
    "hba1c",
    "fpg",
    "ogtt_1h",
    "ogtt_2h",
    "random_glucose",
    "gct_1h",
    "ogtt100_0h",
    "ogtt100_1h",
    "ogtt100_2h",
    "ogtt100_3h",
)
GLUCOSE_MEASUREMENTS: tuple[str, ...] = MEASUREMENTS[1:]
LABELS: dict[str, str] = {
    "hba1c": "HbA1c",
    "fpg": "fasting plasma glucose",
    "ogtt_1h": "1-hour 75 g OGTT glucose",
    "ogtt_2h": "2-hour 75 g OGTT glucose",
    "random_glucose": "random glucose",
    "gct_1h": "50 g 1-hour glucose challenge",
    "ogtt100_0h": "fasting glucose of the 100 g OGTT",
    "ogtt100_1h": "1-hour 100 g OGTT glucose",
    "ogtt100_2h": "2-hour 100 g OGTT glucose",
    "ogtt100_3h": "3-hour 100 g OGTT glucose",
}
UNKNOWN_UNIT = "unknown"
# The unit a value of unknown entered unit was stored in (the registry's canonical units).
CANONICAL_UNITS: dict[str, str] = {
    "hba1c": "percent",
    **dict.fromkeys(GLUCOSE_MEASUREMENTS, "mmol/L"),
}

# Plausibility limits, each in both units as published, compared in the entered unit.
HBA1C_MIN = {"percent": Decimal("3"), "mmol/mol": Decimal("9")}
HBA1C_MAX = {"percent": Decimal("20"), "mmol/mol": Decimal("195")}
GLUCOSE_MAX = {"mmol/L": Decimal("100"), "mg/dL": Decimal("1801.6")}
GLUCOSE_CONFIRM_LOW = {"mmol/L": Decimal("1.0"), "mg/dL": Decimal("18")}
GLUCOSE_CONFIRM_HIGH = {"mmol/L": Decimal("33.3"), "mg/dL": Decimal("600")}
HBA1C_FLOOR_SOURCE = (
    "RCPA Manual, HbA1c: the lowest reference interval in use starts at 3.5 % (15 mmol/mol)"
)


class MeasurementError(ValueError):
    """A measurement that cannot be real, an unknown or missing unit; ``field`` names the input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def unit_field(name: str) -> str:
    """The field that gives the unit of measurement ``name`` (``hba1c_unit``/``glucose_unit``)."""
    return "hba1c_unit" if name == "hba1c" else "glucose_unit"


@dataclass(frozen=True)
class Measurements:
    """What is known about one person at one time; every value is optional, no unit is assumed.

    Glucose values share ``glucose_unit`` and HbA1c has ``hba1c_unit`` unless ``units`` gives
    one measurement its own unit (``(("fpg", "mg/dL"),)``; ``"unknown"`` marks a value stored in
    its canonical unit, %, mmol/L, whose entered unit was not kept). ``symptoms`` means classic
    symptoms of hyperglycaemia (polyuria, polydipsia, unexplained weight loss) or a
    hyperglycaemic crisis. ``unit_confirmed`` keeps glucose below 1.0 or above 33.3 mmol/L.

    Raises:
        MeasurementError: a unit is unknown or missing, a flag is not a bool, or a value cannot
            be real.
    """

    hba1c: float | None = None
    fpg: float | None = None
    ogtt_1h: float | None = None
    ogtt_2h: float | None = None
    random_glucose: float | None = None
    gct_1h: float | None = None
    ogtt100_0h: float | None = None
    ogtt100_1h: float | None = None
    ogtt100_2h: float | None = None
    ogtt100_3h: float | None = None
    hba1c_unit: str | None = None
    glucose_unit: str | None = None
    units: tuple[tuple[str, str], ...] = ()
    symptoms: bool = False
    pregnant: bool = False
    treated: bool = False
    anaemia_or_hb_disorder: bool = False
    unit_confirmed: bool = False

    def __post_init__(self) -> None:
        if self.hba1c_unit is not None and self.hba1c_unit not in HBA1C_UNITS:
            raise MeasurementError(
                "hba1c_unit", f"{self.hba1c_unit!r} is not an HbA1c unit; use one of {HBA1C_UNITS}."
            )
        if self.glucose_unit is not None and self.glucose_unit not in GLUCOSE_UNITS:
            raise MeasurementError(
                "glucose_unit",
                f"{self.glucose_unit!r} is not a glucose unit; use one of {GLUCOSE_UNITS}.",
            )
        for name, unit in self.units:
            if name not in MEASUREMENTS:
                raise MeasurementError("units", f"{name!r} is not one of {MEASUREMENTS}.")
            valid = HBA1C_UNITS if name == "hba1c" else GLUCOSE_UNITS
            if unit != UNKNOWN_UNIT and unit not in valid:
                raise MeasurementError(
                    f"{name} unit", f"{unit!r} is not a unit of {LABELS[name]}; use one of {valid}."
                )
        for flag in ("symptoms", "pregnant", "treated", "anaemia_or_hb_disorder", "unit_confirmed"):
            if not isinstance(getattr(self, flag), bool):
                raise MeasurementError(flag, f"must be true or false, not {getattr(self, flag)!r}.")
        for name in MEASUREMENTS:
            value = getattr(self, name)
            if value is None:
                continue
            if self.entered_unit(name) is None:
                raise MeasurementError(
                    unit_field(name),
                    f"{LABELS[name]} {value!r} has no unit; give {unit_field(name)} "
                    f"({' or '.join(HBA1C_UNITS if name == 'hba1c' else GLUCOSE_UNITS)}). "
                    "No unit is assumed.",
                )
            # A value stored before units were kept passed the checks of its day.
            confirmed = self.unit_confirmed or self.entered_unit(name) == UNKNOWN_UNIT
            check_possible(name, value, self.unit_of(name), confirmed=confirmed)

    def entered_unit(self, name: str) -> str | None:
        """The unit ``name`` was entered in; ``"unknown"`` when it was not kept; None: not given."""
        own = dict(self.units).get(name)
        if own is not None:
            return own
        return self.hba1c_unit if name == "hba1c" else self.glucose_unit

    def unit_of(self, name: str) -> str:
        """The unit the value of ``name`` is in (the canonical one when the entered is unknown)."""
        unit = self.entered_unit(name)
        if unit is None:
            raise MeasurementError(unit_field(name), f"{LABELS[name]} has no unit.")
        return CANONICAL_UNITS[name] if unit == UNKNOWN_UNIT else unit

    def present(self) -> tuple[str, ...]:
        """Names of the measurements given, in :data:`MEASUREMENTS` order."""
        return tuple(n for n in MEASUREMENTS if getattr(self, n) is not None)

    def shown(self, name: str) -> str:
        """The value as entered, with its unit (``126 mg/dL``; ``6.99 (unit unknown)``)."""
        value = getattr(self, name)
        if self.entered_unit(name) == UNKNOWN_UNIT:
            return f"{value:g} {symbol(self.unit_of(name))} (entered unit unknown)"
        return _show(value, self.unit_of(name))


def as_decimal(value: float) -> Decimal:
    """``value`` as the exact decimal of its shortest repr (``6.95`` stays ``6.95``)."""
    return Decimal(repr(float(value)))


def check_possible(name: str, value: object, unit: str, *, confirmed: bool = False) -> None:
    """Refuse a value that cannot be real or needs its unit confirmed; ``name`` is the field.

    Args:
        name: The field, named in the error (``fpg``, ``hba1c_percent``, ...).
        value: The value as entered.
        unit: Its unit (``mmol/L``, ``mg/dL``, ``percent``, ``mmol/mol``).
        confirmed: The person entering confirmed the unit of a glucose below 1.0 mmol/L
            (18 mg/dL) or above 33.3 mmol/L (600 mg/dL).

    Raises:
        MeasurementError: naming ``name``, with what is wrong and what to do.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MeasurementError(name, f"{value!r} is not a number.")
    if not math.isfinite(value):
        raise MeasurementError(name, f"{value!r} is not a finite number.")
    shown = _show(float(value), unit)
    exact = as_decimal(float(value))
    if value <= 0:
        raise MeasurementError(name, f"{shown} cannot be real: a measured value is above zero.")
    if quantity_of(unit) == "hba1c":
        other = "mmol/mol" if unit == "percent" else "percent"
        if exact > HBA1C_MAX[unit]:
            hint = (
                f" It looks like {symbol(other)}: if it is, give the unit {other!r}."
                if unit == "percent" and exact <= HBA1C_MAX[other]
                else " Check the value and its unit."
            )
            raise MeasurementError(
                name, f"{shown} cannot be real: HbA1c is at most 20 % (195 mmol/mol).{hint}"
            )
        if exact < HBA1C_MIN[unit]:
            hint = (
                f" It looks like {symbol(other)}: if it is, give the unit {other!r}."
                if unit == "mmol/mol" and HBA1C_MIN[other] <= exact <= HBA1C_MAX[other]
                else " Check the value and its unit."
            )
            raise MeasurementError(
                name,
                f"{shown} cannot be real: HbA1c below 3 % (9 mmol/mol) is not seen in a living "
                f"person; even shortened red-cell survival leaves it higher ({HBA1C_FLOOR_SOURCE})."
                f"{hint}",
            )
        return
    other = "mg/dL" if unit == "mmol/L" else "mmol/L"
    if exact > GLUCOSE_MAX[unit]:
        hint = (
            f" It looks like {other}: if it is, give the unit {other!r}."
            if unit == "mmol/L" and exact <= GLUCOSE_MAX[other]
            else " Check the value and its unit."
        )
        raise MeasurementError(
            name, f"{shown} cannot be real: glucose is at most 100 mmol/L (1801.6 mg/dL).{hint}"
        )
    if confirmed:
        return
    if exact > GLUCOSE_CONFIRM_HIGH[unit]:
        hint = (
            " It is usually a mg/dL value typed as mmol/L: if it is mg/dL, give the unit 'mg/dL'."
            if unit == "mmol/L"
            else ""
        )
        raise MeasurementError(
            name,
            f"{shown} is above 33.3 mmol/L (600 mg/dL): real but rare.{hint} If the value and "
            "its unit are right, confirm the unit (--confirm-unit, or the page's checkbox).",
        )
    if exact < GLUCOSE_CONFIRM_LOW[unit]:
        hint = (
            " It looks like mmol/L: if it is, give the unit 'mmol/L'."
            if unit == "mg/dL" and exact >= GLUCOSE_CONFIRM_LOW["mmol/L"]
            else " Check the value."
        )
        raise MeasurementError(
            name,
            f"{shown} is below 1.0 mmol/L (18 mg/dL).{hint} Insulinoma or an insulin overdose "
            "can give such a value: if the value and its unit are right, confirm the unit "
            "(--confirm-unit, or the page's checkbox).",
        )


def _show(value: float, unit: str) -> str:
    return f"{value:g} {symbol(unit)}"
