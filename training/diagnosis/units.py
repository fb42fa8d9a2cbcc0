"""Units of glucose and HbA1c, their conversions, and the rounding the guideline engine uses.

Promises:
    * Glucose: ``mg/dL = mmol/L × 18.016`` (the molar mass of glucose, 180.16 g/mol).
    * HbA1c: ``mmol/mol = (% − 2.15) × 10.929`` (the IFCC–NGSP master equation).
    * :func:`round_half_up` rounds the way a published table is read (6.95 → 7.0, never to even),
      on the decimal text of a number, so binary floating point never moves a value across a
      threshold.
    * Unit names are exactly ``"mmol/L"``, ``"mg/dL"``, ``"percent"`` and ``"mmol/mol"``;
      anything else is refused with the list of valid names.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

GlucoseUnit = Literal["mmol/L", "mg/dL"]
Hba1cUnit = Literal["percent", "mmol/mol"]
GLUCOSE_UNITS: tuple[str, ...] = ("mmol/L", "mg/dL")
HBA1C_UNITS: tuple[str, ...] = ("percent", "mmol/mol")

MGDL_PER_MMOL = 18.016
IFCC_PER_NGSP = 10.929
NGSP_OFFSET = 2.15

_SYMBOLS = {"percent": "%", "mmol/mol": "mmol/mol", "mmol/L": "mmol/L", "mg/dL": "mg/dL"}


def quantity_of(unit: str) -> Literal["glucose", "hba1c"]:
    """The quantity a unit measures.

    Raises:
        ValueError: ``unit`` is none of the four known units.
    """
    if unit in GLUCOSE_UNITS:
        return "glucose"
    if unit in HBA1C_UNITS:
        return "hba1c"
    valid = ", ".join((*GLUCOSE_UNITS, *HBA1C_UNITS))
    raise ValueError(f"Unknown unit {unit!r}; the units are: {valid}.")


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (unrounded).

    Raises:
        ValueError: a unit is unknown, or the two units measure different quantities.
    """
    if quantity_of(from_unit) != quantity_of(to_unit):
        raise ValueError(f"Cannot convert {from_unit} to {to_unit}: they measure different things.")
    if from_unit == to_unit:
        return float(value)
    if from_unit == "mmol/L":
        return value * MGDL_PER_MMOL
    if from_unit == "mg/dL":
        return value / MGDL_PER_MMOL
    if from_unit == "percent":
        return (value - NGSP_OFFSET) * IFCC_PER_NGSP
    return value / IFCC_PER_NGSP + NGSP_OFFSET


def exact(value: float) -> Decimal:
    """The decimal a person typed for ``value`` (``6.1`` → ``Decimal('6.1')``, not its binary)."""
    return Decimal(repr(float(value)))


def round_half_up(value: float, decimals: int) -> Decimal:
    """``value`` rounded to ``decimals`` places, halves away from zero (6.95 → 7.0)."""
    return exact(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def symbol(unit: str) -> str:
    """How a unit is printed beside a number (``percent`` → ``%``)."""
    quantity_of(unit)
    return _SYMBOLS[unit]
