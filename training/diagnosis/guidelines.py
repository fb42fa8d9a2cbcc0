"""The guideline table: every published threshold as data, one row per range with its source
and year, read from ``guidelines.csv`` beside this module or from a lab's local variant.

Promises:
    * The thresholds are data, not code: a lab may pass its own copy (:func:`load_guidelines`);
      the shipped table is read once per process.
    * Ranges are half-open at the top: a published ``6.1–6.9`` means ``6.1 ≤ x < 7.0``
      (:meth:`Threshold.contains`), compared after converting to the row's unit and rounding
      half-up to its published precision (:meth:`Threshold.compared`).
    * A table that cannot be used raises :class:`GuidelineTableError` naming the file, the line
      and the column: a missing column, an invalid cell, two rows for one range, or a group
      whose rows disagree on ``at_least``.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from training.diagnosis.measurements import MEASUREMENTS
from training.diagnosis.units import (
    GLUCOSE_UNITS,
    HBA1C_UNITS,
    convert,
    quantity_of,
    round_half_up,
    symbol,
)

__all__ = [
    "CATEGORIES",
    "DEFAULT_TABLE",
    "Context",
    "GuidelineTable",
    "GuidelineTableError",
    "Threshold",
    "load_guidelines",
]

Context = Literal["not pregnant", "pregnant"]
# The categories a guideline row may carry, least severe first, per context.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "not pregnant": ("prediabetes", "diabetes"),
    "pregnant": ("gestational diabetes", "diabetes in pregnancy"),
}
DEFAULT_TABLE = Path(__file__).with_name("guidelines.csv")
_COLUMNS = (
    "guideline",
    "context",
    "measurement",
    "category",
    "low",
    "high",
    "unit",
    "decimals",
    "needs_symptoms",
    "source",
    "year",
)
# Columns added later; a local table without them reads as empty / 1.
_OPTIONAL_COLUMNS = ("group", "at_least", "unit_disagreement")


class GuidelineTableError(ValueError):
    """A guideline table that cannot be used, naming the file, line and column."""


@dataclass(frozen=True)
class Threshold:
    """One published range: ``low ≤ x < high + one step of the published precision``.

    Rows with the same ``group`` count together: the group fires when at least ``at_least``
    of its rows are met (ADA's 100 g OGTT: 2 of 4).
    """

    guideline: str
    context: Context
    measurement: str
    category: str
    low: Decimal
    high: Decimal | None
    unit: str
    decimals: int
    needs_symptoms: bool
    source: str
    year: int
    group: str = ""
    at_least: int = 1
    unit_disagreement: str = ""

    @property
    def below(self) -> Decimal | None:
        """Exclusive upper end (``6.9`` published at 1 decimal → ``7.0``); None when open."""
        return None if self.high is None else self.high + Decimal(1).scaleb(-self.decimals)

    def contains(self, value: Decimal) -> bool:
        """Whether ``value`` (in this row's unit, at its precision) falls in the range."""
        return value >= self.low and (self.below is None or value < self.below)

    def compared(self, value: float, unit: str) -> Decimal:
        """``value`` in ``unit`` as this row reads it: in the row's unit, rounded half-up."""
        return round_half_up(convert(value, unit, self.unit), self.decimals)

    def meets(self, value: float, unit: str) -> bool:
        """Whether ``value`` entered in ``unit`` falls in the range."""
        return self.contains(self.compared(value, unit))

    def range_text(self) -> str:
        """The range as published, e.g. ``5.7–6.4 %`` or ``≥ 126 mg/dL``."""
        unit = symbol(self.unit)
        if self.high is None:
            return f"≥ {self.low} {unit}"
        return f"{self.low}–{self.high} {unit}"


@dataclass(frozen=True)
class GuidelineTable:
    """All threshold rows of one table, in file order."""

    rows: tuple[Threshold, ...]
    path: Path | None = None

    @property
    def guidelines(self) -> tuple[str, ...]:
        """Guideline names in order of first appearance."""
        return tuple(dict.fromkeys(r.guideline for r in self.rows))

    def select(
        self, guideline: str, context: str, measurement: str, *, grouped: bool | None = False
    ) -> tuple[Threshold, ...]:
        """Rows of one guideline for one measurement in one context.

        ``grouped``: False (default) only single rows, True only rows of a group, None both.
        """
        return tuple(
            r
            for r in self.rows
            if r.guideline == guideline
            and r.context == context
            and r.measurement == measurement
            and (grouped is None or bool(r.group) == grouped)
        )

    def groups(self, guideline: str, context: str) -> dict[str, tuple[Threshold, ...]]:
        """Grouped rows of one guideline in one context, by group name, in file order."""
        out: dict[str, list[Threshold]] = {}
        for r in self.rows:
            if r.guideline == guideline and r.context == context and r.group:
                out.setdefault(r.group, []).append(r)
        return {name: tuple(rows) for name, rows in out.items()}

    def grades(self, guideline: str, context: str, measurement: str) -> bool:
        """Whether the guideline can call this measurement normal (it has a lowest-category row)."""
        lowest = CATEGORIES[context][0]
        return any(
            r.category == lowest and not r.needs_symptoms
            for r in self.select(guideline, context, measurement)
        )

    def disagreements(self) -> tuple[Threshold, ...]:
        """Rows whose two published units disagree at published precision (listed, with why)."""
        return tuple(r for r in self.rows if r.unit_disagreement)


def load_guidelines(path: Path | str | None = None) -> GuidelineTable:
    """Read a guideline table; ``None`` reads the shipped ``guidelines.csv``.

    Lines starting with ``#`` are comments. See the shipped file's header for the columns.

    Raises:
        GuidelineTableError: the file is missing, a column is missing, or a cell is invalid.
    """
    if path is None:
        return _default_table()
    return _read_table(Path(path))


@functools.cache
def _default_table() -> GuidelineTable:
    return _read_table(DEFAULT_TABLE)


def _read_table(path: Path) -> GuidelineTable:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GuidelineTableError(f"Cannot read guideline table {path}: {exc.strerror}.") from None
    numbered = [
        (i, line)
        for i, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    reader = csv.DictReader(line for _, line in numbered)
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise GuidelineTableError(f"{path}: the header lacks column(s) {', '.join(missing)}.")
    rows = []
    # DictReader yields one record per data line here: the table has no multi-line cells.
    for (lineno, _), record in zip(numbered[1:], reader, strict=False):
        if not any((v or "").strip() for v in record.values()):
            continue
        rows.append(_parse_row(record, f"{path}, line {lineno}"))
    if not rows:
        raise GuidelineTableError(f"{path} has no threshold rows.")
    _check_consistent(rows, path)
    return GuidelineTable(tuple(rows), path)


def _parse_row(record: dict[str, str], where: str) -> Threshold:
    def cell(column: str) -> str:
        return (record.get(column) or "").strip()

    def number(column: str) -> Decimal:
        try:
            value = Decimal(cell(column))
        except InvalidOperation:
            raise GuidelineTableError(
                f"{where}: column {column!r} must be a number, not {cell(column)!r}."
            ) from None
        if not value.is_finite():
            raise GuidelineTableError(f"{where}: column {column!r} must be finite.")
        return value

    context = cell("context")
    if context not in CATEGORIES:
        raise GuidelineTableError(f"{where}: context must be one of {tuple(CATEGORIES)}.")
    if cell("measurement") not in MEASUREMENTS:
        raise GuidelineTableError(f"{where}: measurement must be one of {MEASUREMENTS}.")
    if cell("category") not in CATEGORIES[context]:
        raise GuidelineTableError(
            f"{where}: category {cell('category')!r} is not valid when {context}; "
            f"use one of {CATEGORIES[context]}."
        )
    unit = cell("unit")
    expected = "hba1c" if cell("measurement") == "hba1c" else "glucose"
    if unit not in (*HBA1C_UNITS, *GLUCOSE_UNITS) or quantity_of(unit) != expected:
        valid = HBA1C_UNITS if expected == "hba1c" else GLUCOSE_UNITS
        raise GuidelineTableError(f"{where}: unit {unit!r} is not valid; use one of {valid}.")
    if not cell("decimals").isdigit():
        raise GuidelineTableError(f"{where}: decimals must be a whole number ≥ 0.")
    if cell("needs_symptoms") not in ("yes", "no"):
        raise GuidelineTableError(f"{where}: needs_symptoms must be yes or no.")
    if not cell("guideline") or not cell("source"):
        raise GuidelineTableError(f"{where}: guideline and source must not be empty.")
    if not cell("year").isdigit():
        raise GuidelineTableError(f"{where}: year must be a year, e.g. 2025.")
    at_least = cell("at_least") or "1"
    if not at_least.isdigit() or int(at_least) < 1:
        raise GuidelineTableError(f"{where}: at_least must be a whole number ≥ 1.")
    if int(at_least) > 1 and not cell("group"):
        raise GuidelineTableError(f"{where}: at_least above 1 needs a group name.")
    low = number("low")
    high = number("high") if cell("high") else None
    if high is not None and high < low:
        raise GuidelineTableError(f"{where}: high {high} is below low {low}.")
    return Threshold(
        guideline=cell("guideline"),
        context=context,  # type: ignore[arg-type]
        measurement=cell("measurement"),
        category=cell("category"),
        low=low,
        high=high,
        unit=unit,
        decimals=int(cell("decimals")),
        needs_symptoms=cell("needs_symptoms") == "yes",
        source=cell("source"),
        year=int(cell("year")),
        group=cell("group"),
        at_least=int(at_least),
        unit_disagreement=cell("unit_disagreement"),
    )


def _check_consistent(rows: list[Threshold], path: Path) -> None:
    seen: set[tuple[str, ...]] = set()
    for r in rows:
        key = (r.guideline, r.context, r.measurement, r.category, r.unit, r.group)
        if key in seen:
            raise GuidelineTableError(
                f"{path}: {r.guideline} has two {r.category} rows for {r.measurement} in "
                f"{r.unit} ({r.context}); keep one."
            )
        seen.add(key)
    needs: dict[tuple[str, str, str], int] = {}
    for r in rows:
        if (
            r.group
            and needs.setdefault((r.guideline, r.context, r.group), r.at_least) != r.at_least
        ):
            raise GuidelineTableError(
                f"{path}: group {r.group!r} of {r.guideline} has rows with different at_least; "
                "give every row of a group the same number."
            )
