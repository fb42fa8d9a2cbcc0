"""Guideline criteria for diabetes: measurements in, one verdict per guideline out.

Promises:
    * The thresholds are data, not code: ``guidelines.csv`` beside this module holds one row per
      published threshold with its source and year; a lab may pass its own copy as a local variant
      (:func:`load_guidelines`).
    * :func:`evaluate_rules` returns, for each guideline of the table (WHO, ADA, NICE), a verdict
      from :data:`VERDICTS`, the measurements that fired (most severe first) and notes for the
      clinician. The most severe category that fired wins.
    * Ranges are half-open at the top: a published ``6.1–6.9`` means ``6.1 ≤ x < 7.0``.
    * Units: where the guideline publishes a threshold in the unit the value was entered in, the
      value is compared as entered (``125.9 mg/dL < 126 mg/dL``: ADA prediabetes). Where it
      publishes only another unit, the value is converted (mg/dL = mmol/L × 18.016; mmol/mol =
      (% − 2.15) × 10.929) and rounded half-up to the published precision first, the way a
      clinician reads a converted result against a printed table (``125.9 mg/dL`` → 6.988 →
      ``7.0 mmol/L``: NICE diabetes; ``126 mg/dL`` is diabetes under every guideline). A note
      says when a value was converted.
    * Values that cannot be real (not above zero, HbA1c above 20 % / 195 mmol/mol, glucose above
      100 mmol/L / 1801.6 mg/dL) raise :class:`MeasurementError` naming the field. Glucose above
      33.3 mmol/L is accepted and every guideline gets a critical-value warning.

Clinical choices (each is stated in the notes of the result it affects):
    * ``normal`` needs a test the guideline grades below diabetes. WHO uses HbA1c only to diagnose
      diabetes (WHO 2011), so HbA1c below 6.5 % alone is ``insufficient data`` under WHO. A random
      glucose only ever diagnoses (with classic symptoms), so it never makes a result normal.
    * In pregnancy, ``normal`` needs every OGTT value the guideline uses (WHO/ADA: fasting, 1-hour
      and 2-hour; NICE: fasting and 2-hour): a part of the test cannot exclude gestational
      diabetes. HbA1c is not used in pregnancy. NICE NG3 has no ``diabetes in pregnancy``
      category: a fasting value of 7.0 or more is gestational diabetes under NICE.
    * A random glucose in the diabetic range without symptoms does not diagnose; a note asks for
      a confirming test.
    * ``treated``: the verdict is still computed from the values (so a result in the diabetic
      range under treatment is not hidden), and the first note says the criteria do not apply:
      glucose-lowering treatment lowers the values, so a result below a threshold rules nothing
      out.
    * ``anaemia_or_hb_disorder``: HbA1c is left out of the verdict (ADA 2025, WHO 2011 advise
      plasma glucose only) and a note says so.
    * Diabetes resting on a single abnormal result in a person without symptoms gets a note that
      a repeat test is needed to confirm (ADA 2025; WHO 2006/2011); discordant tests get ADA's
      advice to repeat the test in the diabetic range.
"""

from __future__ import annotations

import csv
import functools
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from training.diagnosis.units import (
    GLUCOSE_UNITS,
    HBA1C_UNITS,
    convert,
    exact,
    quantity_of,
    round_half_up,
    symbol,
)

Verdict = Literal[
    "normal",
    "prediabetes",
    "diabetes",
    "gestational diabetes",
    "diabetes in pregnancy",
    "insufficient data",
]
VERDICTS: tuple[Verdict, ...] = (
    "normal",
    "prediabetes",
    "diabetes",
    "gestational diabetes",
    "diabetes in pregnancy",
    "insufficient data",
)
Context = Literal["not pregnant", "pregnant"]
# The categories a guideline row may carry, least severe first, per context.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "not pregnant": ("prediabetes", "diabetes"),
    "pregnant": ("gestational diabetes", "diabetes in pregnancy"),
}
MEASUREMENTS: tuple[str, ...] = ("hba1c", "fpg", "ogtt_1h", "ogtt_2h", "random_glucose")
LABELS: dict[str, str] = {
    "hba1c": "HbA1c",
    "fpg": "fasting plasma glucose",
    "ogtt_1h": "1-hour OGTT glucose",
    "ogtt_2h": "2-hour OGTT glucose",
    "random_glucose": "random glucose",
}
DEFAULT_TABLE = Path(__file__).with_name("guidelines.csv")

HBA1C_MAX_PERCENT = 20.0
GLUCOSE_MAX_MMOL = 100.0
GLUCOSE_CRITICAL_MMOL = 33.3

_SEVERITY = {"prediabetes": 1, "gestational diabetes": 2, "diabetes in pregnancy": 3, "diabetes": 3}
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

TREATED_NOTE = (
    "Criteria not applicable: the person takes glucose-lowering treatment, and these thresholds "
    "diagnose untreated people. The verdict shows where the values fall; a value below a "
    "threshold does not rule diabetes out."
)
REPEAT_NOTE = (
    "A single abnormal result in a person without symptoms needs a repeat test, on another day "
    "or a second test from the same sample, to confirm diabetes (ADA 2025; WHO 2006/2011)."
)
DISCORDANT_NOTE = (
    "Tests disagree: repeat the test that is in the diabetic range; if it is again, diabetes is "
    "confirmed (ADA 2025)."
)
ANAEMIA_NOTE = (
    "HbA1c left out: it is unreliable with anaemia or a haemoglobin disorder; use plasma glucose "
    "criteria (ADA 2025; WHO 2011)."
)
PREGNANCY_HBA1C_NOTE = (
    "HbA1c left out: it is not used to diagnose hyperglycaemia in pregnancy (WHO 2013; "
    "IADPSG 2010; NICE NG3)."
)
NICE_GDM_NOTE = (
    "NICE NG3 has no separate category for diabetes first found in pregnancy; it advises an "
    "HbA1c at diagnosis of gestational diabetes to look for pre-existing type 2 diabetes."
)


class MeasurementError(ValueError):
    """A measurement that cannot be real, or an unknown unit; ``field`` names the input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class GuidelineTableError(ValueError):
    """A guideline table that cannot be used, naming the file, line and column."""


@dataclass(frozen=True)
class Measurements:
    """What is known about one person at one time; every value is optional.

    Glucose values (``fpg``, ``ogtt_1h``, ``ogtt_2h``, ``random_glucose``) share ``glucose_unit``.
    ``symptoms`` means classic symptoms of hyperglycaemia (polyuria, polydipsia, unexplained
    weight loss) or hyperglycaemic crisis.

    Raises:
        MeasurementError: a unit is unknown, a flag is not a bool, or a value cannot be real.
    """

    hba1c: float | None = None
    hba1c_unit: str = "percent"
    fpg: float | None = None
    ogtt_1h: float | None = None
    ogtt_2h: float | None = None
    random_glucose: float | None = None
    glucose_unit: str = "mmol/L"
    symptoms: bool = False
    pregnant: bool = False
    treated: bool = False
    anaemia_or_hb_disorder: bool = False

    def __post_init__(self) -> None:
        if self.hba1c_unit not in HBA1C_UNITS:
            raise MeasurementError(
                "hba1c_unit", f"{self.hba1c_unit!r} is not an HbA1c unit; use one of {HBA1C_UNITS}."
            )
        if self.glucose_unit not in GLUCOSE_UNITS:
            raise MeasurementError(
                "glucose_unit",
                f"{self.glucose_unit!r} is not a glucose unit; use one of {GLUCOSE_UNITS}.",
            )
        for flag in ("symptoms", "pregnant", "treated", "anaemia_or_hb_disorder"):
            if not isinstance(getattr(self, flag), bool):
                raise MeasurementError(flag, f"must be true or false, not {getattr(self, flag)!r}.")
        for name in MEASUREMENTS:
            value = getattr(self, name)
            if value is not None:
                check_possible(name, value, self.unit_of(name))

    def unit_of(self, name: str) -> str:
        """The unit measurement ``name`` was entered in."""
        return self.hba1c_unit if name == "hba1c" else self.glucose_unit

    def present(self) -> tuple[str, ...]:
        """Names of the measurements given, in :data:`MEASUREMENTS` order."""
        return tuple(n for n in MEASUREMENTS if getattr(self, n) is not None)

    def critical(self) -> tuple[str, ...]:
        """Glucose measurements above the critical 33.3 mmol/L (600 mg/dL)."""
        return tuple(
            n
            for n in self.present()
            if n != "hba1c"
            and convert(getattr(self, n), self.glucose_unit, "mmol/L") > GLUCOSE_CRITICAL_MMOL
        )


def check_possible(name: str, value: object, unit: str) -> None:
    """Refuse a value that cannot be real (see the module docstring); ``name`` is the field.

    Raises:
        MeasurementError: naming ``name``, with what is wrong and what to do.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MeasurementError(name, f"{value!r} is not a number.")
    if not math.isfinite(value):
        raise MeasurementError(name, f"{value!r} is not a finite number.")
    shown = f"{value:g} {symbol(unit)}"
    if value <= 0:
        raise MeasurementError(name, f"{shown} cannot be real: a measured value is above zero.")
    if quantity_of(unit) == "hba1c":
        limit = convert(HBA1C_MAX_PERCENT, "percent", unit)
        if value > limit:
            hint = (
                " If it is in mmol/mol, set hba1c_unit to 'mmol/mol'."
                if unit == "percent" and value <= convert(HBA1C_MAX_PERCENT, "percent", "mmol/mol")
                else " Check the value and hba1c_unit."
            )
            raise MeasurementError(
                name,
                f"{shown} cannot be real: HbA1c is at most 20 % "
                f"({convert(HBA1C_MAX_PERCENT, 'percent', 'mmol/mol'):.0f} mmol/mol).{hint}",
            )
        return
    limit = convert(GLUCOSE_MAX_MMOL, "mmol/L", unit)
    if value > limit:
        hint = (
            " If it is in mg/dL, set glucose_unit to 'mg/dL'."
            if unit == "mmol/L" and value <= convert(GLUCOSE_MAX_MMOL, "mmol/L", "mg/dL")
            else " Check the value and glucose_unit."
        )
        raise MeasurementError(
            name,
            f"{shown} cannot be real: glucose is at most 100 mmol/L "
            f"({convert(GLUCOSE_MAX_MMOL, 'mmol/L', 'mg/dL'):g} mg/dL).{hint}",
        )


@dataclass(frozen=True)
class Threshold:
    """One published range: ``low ≤ x < high + one step of the published precision``."""

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

    @property
    def below(self) -> Decimal | None:
        """Exclusive upper end (``6.9`` published at 1 decimal → ``7.0``); None when open."""
        return None if self.high is None else self.high + Decimal(1).scaleb(-self.decimals)

    def contains(self, value: Decimal) -> bool:
        """Whether ``value`` (in this row's unit) falls in the range."""
        return value >= self.low and (self.below is None or value < self.below)

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

    def select(self, guideline: str, context: str, measurement: str) -> tuple[Threshold, ...]:
        """Rows of one guideline for one measurement in one context."""
        return tuple(
            r
            for r in self.rows
            if r.guideline == guideline and r.context == context and r.measurement == measurement
        )

    def grades(self, guideline: str, context: str, measurement: str) -> bool:
        """Whether the guideline can call this measurement normal (it has a lowest-category row)."""
        lowest = CATEGORIES[context][0]
        return any(
            r.category == lowest and not r.needs_symptoms
            for r in self.select(guideline, context, measurement)
        )


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
    )


def _check_consistent(rows: list[Threshold], path: Path) -> None:
    seen: set[tuple[str, str, str, str, str]] = set()
    for r in rows:
        key = (r.guideline, r.context, r.measurement, r.category, r.unit)
        if key in seen:
            raise GuidelineTableError(
                f"{path}: {r.guideline} has two {r.category} rows for {r.measurement} in "
                f"{r.unit} ({r.context}); keep one."
            )
        seen.add(key)


@dataclass(frozen=True)
class Fired:
    """A measurement inside a guideline's range: the value as compared, in the unit compared."""

    measurement: str
    value: float
    unit: str
    range: str
    source: str
    category: str

    def to_json(self) -> dict[str, Any]:
        """``{"measurement", "value", "unit", "range", "source"}``."""
        return {
            "measurement": self.measurement,
            "value": self.value,
            "unit": self.unit,
            "range": self.range,
            "source": self.source,
        }


@dataclass(frozen=True)
class GuidelineResult:
    """One guideline's verdict, what fired (most severe first) and notes for the clinician."""

    guideline: str
    verdict: Verdict
    fired: tuple[Fired, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{"verdict", "fired": [...], "notes": [...]}``."""
        return {
            "verdict": self.verdict,
            "fired": [f.to_json() for f in self.fired],
            "notes": list(self.notes),
        }


class RuleResults(dict[str, GuidelineResult]):
    """Results keyed by guideline name (``"WHO"``, ``"ADA"``, ``"NICE"``), in table order."""

    def to_json(self) -> dict[str, dict[str, Any]]:
        """``{"WHO": {"verdict", "fired", "notes"}, "ADA": {...}, "NICE": {...}}``."""
        return {name: result.to_json() for name, result in self.items()}


def evaluate_rules(measurements: Measurements, table: GuidelineTable | None = None) -> RuleResults:
    """Apply every guideline of ``table`` (default: the shipped one) to ``measurements``.

    Args:
        measurements: what is known; absent values are simply not used.
        table: a local variant from :func:`load_guidelines`; None uses the shipped table.

    Returns:
        One :class:`GuidelineResult` per guideline, keyed by its name.
    """
    table = table or load_guidelines()
    return RuleResults((g, _evaluate(g, measurements, table)) for g in table.guidelines)


@dataclass
class _Evaluation:
    fired: list[Fired] = field(default_factory=list)
    used: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _evaluate(guideline: str, m: Measurements, table: GuidelineTable) -> GuidelineResult:
    context: Context = "pregnant" if m.pregnant else "not pregnant"
    ev = _Evaluation()
    if m.treated:
        ev.notes.append(TREATED_NOTE)
    for name in m.critical():
        ev.notes.append(
            f"Critical value: {LABELS[name]} {_show(getattr(m, name), m.glucose_unit)} is above "
            "33.3 mmol/L (600 mg/dL). Act now: check for a hyperglycaemic emergency."
        )
    for name in m.present():
        _assess(guideline, context, name, m, table, ev)

    fired = sorted(
        ev.fired, key=lambda f: (-_SEVERITY[f.category], MEASUREMENTS.index(f.measurement))
    )
    if fired:
        verdict: Verdict = fired[0].category  # type: ignore[assignment]
    else:
        verdict = _unfired_verdict(guideline, context, m, table, ev)

    if verdict == "diabetes":
        at_diabetes = {f.measurement for f in fired if f.category == "diabetes"}
        # A random glucose below 11.1 says little about a fasting or OGTT value, so it does not
        # count as disagreeing.
        below = [n for n in ev.used if n not in at_diabetes and n != "random_glucose"]
        if below:
            ev.notes.append(DISCORDANT_NOTE)
        elif len(at_diabetes) == 1 and not m.symptoms:
            ev.notes.append(REPEAT_NOTE)
    if guideline == "NICE" and verdict == "gestational diabetes":
        ev.notes.append(NICE_GDM_NOTE)
    return GuidelineResult(guideline, verdict, tuple(fired), tuple(dict.fromkeys(ev.notes)))


def _assess(
    guideline: str,
    context: Context,
    name: str,
    m: Measurements,
    table: GuidelineTable,
    ev: _Evaluation,
) -> None:
    """Compare one measurement with every category the guideline has for it."""
    value, unit = getattr(m, name), m.unit_of(name)
    rows = table.select(guideline, context, name)
    if name == "hba1c" and m.pregnant and not rows:
        ev.notes.append(PREGNANCY_HBA1C_NOTE)
        return
    if not rows:
        where = "in pregnancy" if m.pregnant else "outside pregnancy"
        ev.notes.append(f"{_label(name)} left out: {guideline} does not use it {where}.")
        return
    if name == "hba1c" and m.anaemia_or_hb_disorder:
        ev.notes.append(ANAEMIA_NOTE)
        return
    ev.used.append(name)
    fired_here = held_back = False
    for category in CATEGORIES[context]:
        candidates = [r for r in rows if r.category == category]
        if not candidates:
            continue
        row = next((r for r in candidates if r.unit == unit), candidates[0])
        if row.unit == unit:
            compared = exact(value)
        else:
            compared = round_half_up(convert(value, unit, row.unit), row.decimals)
            ev.notes.append(
                f"{_label(name)} {_show(value, unit)} compared as {compared} {symbol(row.unit)}: "
                f"{guideline} publishes this threshold in {symbol(row.unit)} only "
                f"({_conversion_text(unit, row.unit)}, {_rounding_text(row.decimals)})."
            )
        if not row.contains(compared):
            continue
        if row.needs_symptoms and not m.symptoms:
            ev.notes.append(
                f"{_label(name)} {_show(value, unit)} is in the {category} range "
                f"({row.range_text()}) but does not diagnose without classic symptoms: confirm "
                "with fasting plasma glucose, HbA1c or an OGTT."
            )
            held_back = True
            continue
        fired_here = True
        ev.fired.append(
            Fired(name, float(compared), row.unit, row.range_text(), row.source, category)
        )
    if not (fired_here or held_back or table.grades(guideline, context, name)):
        top = next((r for r in rows if r.unit == unit), rows[0])
        ev.notes.append(
            f"{guideline} uses {LABELS[name]} only to diagnose {top.category} "
            f"({top.range_text()}{', with symptoms' if top.needs_symptoms else ''}); "
            "a lower value does not exclude it."
        )


def _unfired_verdict(
    guideline: str, context: Context, m: Measurements, table: GuidelineTable, ev: _Evaluation
) -> Verdict:
    graded = [n for n in ev.used if table.grades(guideline, context, n)]
    needed = [n for n in MEASUREMENTS if table.grades(guideline, context, n)]
    if not needed:
        where = "in pregnancy" if context == "pregnant" else "outside pregnancy"
        ev.notes.append(f"{guideline} has no thresholds {where} in this table.")
        return "insufficient data"
    if context == "pregnant":
        missing = [n for n in needed if n not in graded]
        if not missing:
            return "normal"
        ev.notes.append(
            f"Gestational diabetes cannot be excluded under {guideline} without the whole 75 g "
            f"OGTT ({_join(needed, 'and')}); missing {_join(missing, 'and')}."
        )
        return "insufficient data"
    if graded:
        ev.notes.append(
            f"Normal by the tests given ({_join(graded, 'and')}); "
            "a test not done may still be abnormal."
        )
        return "normal"
    ev.notes.append(f"Not enough to decide under {guideline}: give {_join(needed, 'or')}.")
    return "insufficient data"


def _show(value: float, unit: str) -> str:
    return f"{value:g} {symbol(unit)}"


def _label(name: str) -> str:
    """The measurement's label to start a sentence with."""
    label = LABELS[name]
    return label[0].upper() + label[1:]


def _join(names: list[str], word: str) -> str:
    labels = [LABELS[n] for n in names]
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} {word} {labels[-1]}"


def _rounding_text(decimals: int) -> str:
    if decimals == 0:
        return "rounded to a whole number"
    return f"rounded to {decimals} decimal{'s' if decimals > 1 else ''}"


def _conversion_text(from_unit: str, to_unit: str) -> str:
    return {
        ("mg/dL", "mmol/L"): "mg/dL ÷ 18.016",
        ("mmol/L", "mg/dL"): "mmol/L × 18.016",
        ("percent", "mmol/mol"): "(% − 2.15) × 10.929",
        ("mmol/mol", "percent"): "mmol/mol ÷ 10.929 + 2.15",
    }[(from_unit, to_unit)]


def describe(results: Mapping[str, GuidelineResult]) -> Iterable[str]:
    """Plain-text lines for a terminal: one verdict line per guideline, then its details."""
    for name, result in results.items():
        yield f"{name}: {result.verdict}"
        for f in result.fired:
            yield f"  {LABELS[f.measurement]} {f.value:g} {symbol(f.unit)} in {f.range}"
            yield f"    source: {f.source}"
        for note in result.notes:
            yield f"  note: {note}"
