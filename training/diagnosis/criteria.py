"""Guideline criteria for diabetes: measurements as entered in, one verdict per guideline out.

Promises:
    * The thresholds are data, not code: the guideline table (:mod:`training.diagnosis.guidelines`,
      ``guidelines.csv``) holds one row per published threshold with its source and year; a
      lab may pass its own copy as a local variant (:func:`load_guidelines`).
    * :func:`evaluate_rules` returns, for each guideline of the table (WHO, ADA, NICE), a verdict
      from :data:`VERDICTS`, whether a repeat test is needed (:data:`REPEAT_TEST`), the
      measurements that fired (most severe first) and notes for the clinician. The most severe
      category that fired wins.
    * Ranges are half-open at the top: a published ``6.1–6.9`` means ``6.1 ≤ x < 7.0``.
    * One rule for units and precision, whatever the unit: a value is compared in the unit it
      was entered in with the threshold as the guideline publishes it in that unit (ADA: 126
      mg/dL and 7.0 mmol/L), after rounding half-up to the precision the guideline publishes
      (``6.96 mmol/L`` → ``7.0``; ``125.5 mg/dL`` → ``126``). Where the guideline does not publish
      the entered unit, the value is converted (mg/dL = mmol/L × 18.016; mmol/mol = (% − 2.15) ×
      10.929) and rounded the same way; a note says so. Where a guideline's two units disagree at
      published precision, the table's ``unit_disagreement`` column names it.
    * The input is a :class:`~training.diagnosis.measurements.Measurements`, which assumes no
      unit and refuses values that cannot be real (:func:`check_possible`). A value stored
      before units were kept (unit ``unknown``) is compared in the unit it was stored in, and
      every verdict says the entered unit was not kept.
    * Glucose below 3.9 mmol/L (70 mg/dL) is ``hypoglycaemia``, never normal; below 3.0 mmol/L
      (54 mg/dL) it is flagged as critically low; above 33.3 as a critical value.
    * The names of :mod:`training.diagnosis.measurements` and :mod:`training.diagnosis.guidelines`
      that callers used to import from here are re-exported (``__all__``).

Clinical choices (each is stated in the notes of the result it affects):
    * ``normal`` needs a test the guideline grades below diabetes. WHO uses HbA1c only to diagnose
      diabetes (WHO 2011), so HbA1c below 6.5 % alone is ``insufficient data`` under WHO. A random
      glucose only ever diagnoses (with classic symptoms), so it never makes a result normal.
    * In pregnancy, ``normal`` needs a complete test: every value of the one-step 75 g OGTT the
      guideline uses (WHO/ADA: fasting, 1 and 2 hours; NICE: fasting and 2 hours), all four
      values of ADA's 100 g 3-hour OGTT, or a negative 50 g screen (ADA two-step; the cut-off,
      130, 135 or 140 mg/dL, is the workspace setting ``gdm_screen_cutoff_mgdl``). Rows with a
      ``group`` count together: the 100 g OGTT diagnoses gestational diabetes when at least
      ``at_least`` (2) of its values meet the group's thresholds (Carpenter–Coustan or NDDG).
    * ``treated``: glucose-lowering treatment lowers the values, so the verdict is ``not
      applicable``; what fired is still listed, so a value in the diabetic range is not hidden.
    * ``anaemia_or_hb_disorder``: HbA1c is left out (ADA 2025, WHO 2011) and the advice names the
      glucose tests to use instead.
    * ``repeat_test`` follows each guideline's rule (see :func:`_repeat_test`); an earlier
      diagnostic-range result within :data:`REPEAT_WINDOW_DAYS` counts as the second sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from training.diagnosis.guidelines import (
    CATEGORIES,
    DEFAULT_TABLE,
    Context,
    GuidelineTable,
    GuidelineTableError,
    Threshold,
    load_guidelines,
)
from training.diagnosis.measurements import (
    CANONICAL_UNITS,
    GLUCOSE_CONFIRM_HIGH,
    GLUCOSE_MEASUREMENTS,
    LABELS,
    MEASUREMENTS,
    UNKNOWN_UNIT,
    MeasurementError,
    Measurements,
    as_decimal,
    check_possible,
    unit_field,
)
from training.diagnosis.units import round_half_up, symbol

__all__ = [
    "ANAEMIA_NOTE",
    "ANAEMIA_SOURCES",
    "CANONICAL_UNITS",
    "CATEGORIES",
    "DEFAULT_SCREEN_CUTOFF_MGDL",
    "DEFAULT_TABLE",
    "DIABETES_CATEGORIES",
    "DISCORDANT_NOTE",
    "GLUCOSE_MEASUREMENTS",
    "LABELS",
    "MEASUREMENTS",
    "NICE_GDM_NOTE",
    "PREGNANCY_HBA1C_NOTES",
    "REPEAT_TEST",
    "REPEAT_WINDOW_DAYS",
    "SCREEN_CUTOFFS",
    "TREATED_NOTE",
    "UNKNOWN_UNIT",
    "VERDICTS",
    "Context",
    "EarlierResult",
    "Fired",
    "GuidelineResult",
    "GuidelineTable",
    "GuidelineTableError",
    "MeasurementError",
    "Measurements",
    "RepeatTest",
    "RuleResults",
    "Threshold",
    "Verdict",
    "check_possible",
    "describe",
    "diagnostic_measurements",
    "evaluate_rules",
    "load_guidelines",
    "unit_field",
]

Verdict = Literal[
    "normal",
    "prediabetes",
    "diabetes",
    "gestational diabetes",
    "diabetes in pregnancy",
    "hypoglycaemia",
    "not applicable",
    "insufficient data",
]
VERDICTS: tuple[Verdict, ...] = (
    "normal",
    "prediabetes",
    "diabetes",
    "gestational diabetes",
    "diabetes in pregnancy",
    "hypoglycaemia",
    "not applicable",
    "insufficient data",
)
RepeatTest = Literal["not needed", "needed", "not applicable"]
REPEAT_TEST: tuple[RepeatTest, ...] = ("not needed", "needed", "not applicable")
DIABETES_CATEGORIES = frozenset({"diabetes", "diabetes in pregnancy"})
GLUCOSE_HYPO = {"mmol/L": Decimal("3.9"), "mg/dL": Decimal("70")}
GLUCOSE_CRITICAL_LOW = {"mmol/L": Decimal("3.0"), "mg/dL": Decimal("54")}
GLUCOSE_DECIMALS = {"mmol/L": 1, "mg/dL": 0}
# ADA's 50 g screen cut-offs as ADA publishes them in both units.
SCREEN_CUTOFFS: dict[int, Decimal] = {130: Decimal("7.2"), 135: Decimal("7.5"), 140: Decimal("7.8")}
DEFAULT_SCREEN_CUTOFF_MGDL = 140
# An earlier diagnostic-range result counts as the second sample within this many days.
REPEAT_WINDOW_DAYS = 90

ADA_SOURCE = (
    "ADA Standards of Care in Diabetes—2025, section 2: Diagnosis and classification of "
    "diabetes (Diabetes Care 48, Suppl 1)"
)
HYPO_SOURCE = (
    "International Hypoglycaemia Study Group 2017 (Diabetes Care 40:155–157), as adopted by "
    "ADA 2025 "
    "section 6: level 1 hypoglycaemia < 3.9 mmol/L (70 mg/dL), level 2 < 3.0 mmol/L (54 mg/dL)"
)
SCREEN_SOURCE = (
    "ADA Standards of Care—2025, section 2, two-step approach: 50 g 1-hour screen, cut-off "
    "130, 135 or 140 mg/dL (7.2, 7.5 or 7.8 mmol/L), then the 100 g 3-hour OGTT"
)
REPEAT_WINDOW_SOURCE = (
    f"{REPEAT_WINDOW_DAYS} days: ADA asks for the second sample 'without delay', and HbA1c "
    "reflects the glycaemia of the previous 2–3 months (ADA 2025, sections 2 and 6), so an older "
    "result describes another period"
)

_SEVERITY = {"prediabetes": 1, "gestational diabetes": 2, "diabetes in pregnancy": 3, "diabetes": 3}

TREATED_NOTE = (
    "Not applicable: on glucose-lowering treatment. These thresholds diagnose untreated people; "
    "treatment lowers the values, so a value below a threshold rules nothing out. What fired is "
    "still listed."
)
DISCORDANT_NOTE = (
    "Tests disagree: repeat the test that is in the diabetic range; if it is again, diabetes is "
    "confirmed (ADA 2025)."
)
ANAEMIA_NOTE = (
    "HbA1c left out: it is unreliable with anaemia or a haemoglobin disorder. Use plasma glucose "
    "criteria instead: fasting plasma glucose or a 75 g OGTT ({source})."
)
ANAEMIA_SOURCES = {"ADA": "ADA 2025", "WHO": "WHO 2011", "NICE": "WHO 2011, which NICE follows"}
UNKNOWN_UNIT_NOTE = (
    "The entered unit of {what} was not kept (stored before units were recorded): the stored "
    "value was compared in {unit}. Check the original lab report."
)
NICE_GDM_NOTE = (
    "NICE NG3 has no separate category for diabetes first found in pregnancy; it advises an "
    "HbA1c at diagnosis of gestational diabetes to look for pre-existing type 2 diabetes."
)
PREGNANCY_HBA1C_NOTES: dict[str, str] = {
    "WHO": (
        "HbA1c left out: WHO 2013 diagnoses hyperglycaemia first detected in pregnancy by "
        "plasma glucose only."
    ),
    "NICE": (
        "HbA1c left out: NICE NG3 (1.2.4) advises against HbA1c to assess gestational "
        "diabetes; it diagnoses by the 75 g OGTT."
    ),
}
PREGNANCY_HBA1C_NOTE = "HbA1c left out: {guideline} does not use it to diagnose in pregnancy."
GDM_REPEAT_NOTE = "One diagnostic OGTT diagnoses gestational diabetes; no repeat is asked for."


@dataclass(frozen=True)
class Fired:
    """A measurement inside a guideline's range: the value as compared, in the unit compared."""

    measurement: str
    value: float
    unit: str
    range: str
    source: str
    category: str
    entered: str = ""

    def to_json(self) -> dict[str, Any]:
        """``{"measurement", "entered", "value", "unit", "range", "source"}``."""
        return {
            "measurement": self.measurement,
            "entered": self.entered,
            "value": self.value,
            "unit": self.unit,
            "range": self.range,
            "source": self.source,
        }


@dataclass(frozen=True)
class EarlierResult:
    """A diagnostic-range result of one guideline at an earlier visit (a possible 2nd sample)."""

    guideline: str
    date: str
    days_before: int
    measurements: tuple[str, ...]


@dataclass(frozen=True)
class GuidelineResult:
    """One guideline's verdict, whether a repeat test is needed, what fired and notes."""

    guideline: str
    verdict: Verdict
    fired: tuple[Fired, ...] = ()
    notes: tuple[str, ...] = ()
    repeat_test: RepeatTest = "not applicable"

    def to_json(self) -> dict[str, Any]:
        """``{"verdict", "repeat_test", "fired": [...], "notes": [...]}``."""
        return {
            "verdict": self.verdict,
            "repeat_test": self.repeat_test,
            "fired": [f.to_json() for f in self.fired],
            "notes": list(self.notes),
        }


class RuleResults(dict[str, GuidelineResult]):
    """Results keyed by guideline name (``"WHO"``, ``"ADA"``, ``"NICE"``), in table order."""

    def to_json(self) -> dict[str, dict[str, Any]]:
        """``{"WHO": {"verdict", "repeat_test", "fired", "notes"}, "ADA": {...}, ...}``."""
        return {name: result.to_json() for name, result in self.items()}


def evaluate_rules(
    measurements: Measurements,
    table: GuidelineTable | None = None,
    *,
    screen_cutoff_mgdl: int = DEFAULT_SCREEN_CUTOFF_MGDL,
    earlier: Sequence[EarlierResult] = (),
) -> RuleResults:
    """Apply every guideline of ``table`` (default: the shipped one) to ``measurements``.

    Args:
        measurements: what is known; absent values are simply not used.
        table: a local variant from :func:`load_guidelines`; None uses the shipped table.
        screen_cutoff_mgdl: ADA's 50 g screen cut-off, 130, 135 or 140 mg/dL (the workspace
            setting ``gdm_screen_cutoff_mgdl``).
        earlier: diagnostic-range results of earlier visits (:func:`earlier_results`); one
            within :data:`REPEAT_WINDOW_DAYS` counts as the second sample.

    Returns:
        One :class:`GuidelineResult` per guideline, keyed by its name.

    Raises:
        ValueError: ``screen_cutoff_mgdl`` is not one ADA allows.
    """
    if screen_cutoff_mgdl not in SCREEN_CUTOFFS:
        raise ValueError(
            f"The 50 g screen cut-off {screen_cutoff_mgdl!r} mg/dL is not one ADA allows; use "
            f"one of {', '.join(map(str, SCREEN_CUTOFFS))}."
        )
    table = table or load_guidelines()
    return RuleResults(
        (g, _evaluate(g, measurements, table, screen_cutoff_mgdl, earlier))
        for g in table.guidelines
    )


def diagnostic_measurements(result: GuidelineResult) -> tuple[str, ...]:
    """The measurements of ``result`` in a diabetes category (what a later visit may confirm)."""
    return tuple(
        dict.fromkeys(f.measurement for f in result.fired if f.category in DIABETES_CATEGORIES)
    )


@dataclass
class _Evaluation:
    fired: list[Fired] = field(default_factory=list)
    used: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hypo: list[str] = field(default_factory=list)
    complete_groups: list[str] = field(default_factory=list)
    screen: str | None = None


def _evaluate(
    guideline: str,
    m: Measurements,
    table: GuidelineTable,
    cutoff: int,
    earlier: Sequence[EarlierResult],
) -> GuidelineResult:
    context: Context = "pregnant" if m.pregnant else "not pregnant"
    ev = _Evaluation()
    _flag_glucose(m, ev)
    grouped = table.groups(guideline, context)
    for name in m.present():
        if m.entered_unit(name) == UNKNOWN_UNIT:
            ev.notes.append(
                UNKNOWN_UNIT_NOTE.format(what=LABELS[name], unit=symbol(CANONICAL_UNITS[name]))
            )
        if name == "hba1c" and m.anaemia_or_hb_disorder:
            ev.notes.append(ANAEMIA_NOTE.format(source=ANAEMIA_SOURCES.get(guideline, "WHO 2011")))
            continue
        single = table.select(guideline, context, name)
        in_group = any(r.measurement == name for rows in grouped.values() for r in rows)
        if single:
            _assess(guideline, context, name, m, single, ev)
        elif name == "gct_1h" and grouped:
            _screen(m, cutoff, ev)
        elif not in_group:
            ev.notes.append(_left_out(guideline, name, m.pregnant))
    for group, rows in grouped.items():
        _assess_group(guideline, group, rows, m, ev)

    fired = sorted(
        ev.fired, key=lambda f: (-_SEVERITY[f.category], MEASUREMENTS.index(f.measurement))
    )
    if fired:
        verdict: Verdict = fired[0].category  # type: ignore[assignment]
    elif ev.hypo:
        verdict = "hypoglycaemia"
    else:
        verdict = _unfired_verdict(guideline, context, m, table, ev)
    notes = ev.notes
    if m.treated and verdict != "hypoglycaemia":
        verdict = "not applicable"
        notes = [TREATED_NOTE, *notes]
    repeat, why = _repeat_test(guideline, verdict, fired, m, ev, earlier)
    if why:
        notes.append(why)
    if guideline == "NICE" and verdict == "gestational diabetes":
        notes.append(NICE_GDM_NOTE)
    return GuidelineResult(guideline, verdict, tuple(fired), tuple(dict.fromkeys(notes)), repeat)


def _left_out(guideline: str, name: str, pregnant: bool) -> str:
    if name == "hba1c" and pregnant:
        return PREGNANCY_HBA1C_NOTES.get(
            guideline, PREGNANCY_HBA1C_NOTE.format(guideline=guideline)
        )
    where = "in pregnancy" if pregnant else "outside pregnancy"
    return f"{_label(name)} left out: {guideline} does not use it {where}."


def _flag_glucose(m: Measurements, ev: _Evaluation) -> None:
    """Hypoglycaemia (never normal), critically low and critically high glucose."""
    for name in m.present():
        if name == "hba1c":
            continue
        value, unit = getattr(m, name), m.unit_of(name)
        if as_decimal(value) > GLUCOSE_CONFIRM_HIGH[unit]:
            ev.notes.append(
                f"Critical value: {LABELS[name]} {m.shown(name)} is above 33.3 mmol/L "
                "(600 mg/dL). Act now: check for a hyperglycaemic emergency."
            )
        read = round_half_up(value, GLUCOSE_DECIMALS[unit])
        if read < GLUCOSE_CRITICAL_LOW[unit]:
            ev.hypo.append(name)
            ev.notes.append(
                f"Critically low: {LABELS[name]} {m.shown(name)} is below 3.0 mmol/L (54 mg/dL), "
                f"level 2 hypoglycaemia ({HYPO_SOURCE}). Act now: treat and find the cause."
            )
        elif read < GLUCOSE_HYPO[unit]:
            ev.hypo.append(name)
            ev.notes.append(
                f"Hypoglycaemia: {LABELS[name]} {m.shown(name)} is below 3.9 mmol/L (70 mg/dL) "
                f"({HYPO_SOURCE}); it is not a normal result."
            )


def _reading(
    guideline: str, name: str, m: Measurements, row: Threshold, ev: _Evaluation
) -> Decimal:
    """The value as ``row`` reads it, with a note when it was converted or rounded."""
    value, unit = getattr(m, name), m.unit_of(name)
    compared = row.compared(value, unit)
    if row.unit != unit:
        ev.notes.append(
            f"{_label(name)} {m.shown(name)} compared as {compared} {symbol(row.unit)}: "
            f"{guideline} publishes this threshold in {symbol(row.unit)} only "
            f"({_conversion_text(unit, row.unit)}, {_rounding_text(row.decimals)}, half up)."
        )
    elif compared != as_decimal(value):
        ev.notes.append(
            f"{_label(name)} {m.shown(name)} read as {compared} {symbol(unit)}: {guideline} "
            f"publishes this threshold {_rounding_text(row.decimals)} (half up)."
        )
    return compared


def _assess(
    guideline: str,
    context: Context,
    name: str,
    m: Measurements,
    rows: tuple[Threshold, ...],
    ev: _Evaluation,
) -> None:
    """Compare one measurement with every category the guideline has for it."""
    unit = m.unit_of(name)
    ev.used.append(name)
    fired_here = held_back = False
    for category in CATEGORIES[context]:
        candidates = [r for r in rows if r.category == category]
        if not candidates:
            continue
        row = next((r for r in candidates if r.unit == unit), candidates[0])
        compared = _reading(guideline, name, m, row, ev)
        if not row.contains(compared):
            continue
        if row.needs_symptoms and not m.symptoms:
            ev.notes.append(
                f"{_label(name)} {m.shown(name)} is in the {category} range "
                f"({row.range_text()}) but does not diagnose without classic symptoms: confirm "
                "with fasting plasma glucose, HbA1c or an OGTT."
            )
            held_back = True
            continue
        fired_here = True
        ev.fired.append(
            Fired(
                name,
                float(compared),
                row.unit,
                row.range_text(),
                row.source,
                category,
                m.shown(name),
            )
        )
    lowest = CATEGORIES[context][0]
    grades = any(r.category == lowest and not r.needs_symptoms for r in rows)
    if not (fired_here or held_back or grades):
        top = next((r for r in rows if r.unit == unit), rows[0])
        ev.notes.append(
            f"{guideline} uses {LABELS[name]} only to diagnose {top.category} "
            f"({top.range_text()}{', with symptoms' if top.needs_symptoms else ''}); "
            "a lower value does not exclude it."
        )


def _assess_group(
    guideline: str, group: str, rows: tuple[Threshold, ...], m: Measurements, ev: _Evaluation
) -> None:
    """A test read as a whole: it fires when at least ``at_least`` of its values are met."""
    members = tuple(dict.fromkeys(r.measurement for r in rows))
    present = [n for n in members if getattr(m, n) is not None]
    if not present:
        return
    met: list[tuple[str, Threshold, Decimal]] = []
    for name in present:
        candidates = [r for r in rows if r.measurement == name]
        row = next((r for r in candidates if r.unit == m.unit_of(name)), candidates[0])
        compared = _reading(guideline, name, m, row, ev)
        if row.contains(compared):
            met.append((name, row, compared))
    need = rows[0].at_least
    count = f"{len(met)} of {len(members)} values met (at least {need} needed)"
    shown = "; ".join(f"{LABELS[n]} {m.shown(n)} ≥ {r.low} {symbol(r.unit)}" for n, r, _ in met)
    if len(met) >= need:
        for name, row, compared in met:
            ev.fired.append(
                Fired(
                    name,
                    float(compared),
                    row.unit,
                    f"{row.range_text()} ({group}: {count})",
                    row.source,
                    row.category,
                    m.shown(name),
                )
            )
        ev.notes.append(f"{group}: {count}: {rows[0].category} ({shown}).")
        return
    missing = [n for n in members if n not in present]
    if missing:
        ev.notes.append(
            f"{group}: {count}{': ' + shown if shown else ''}; missing {_join(missing, 'and')}."
        )
    else:
        ev.complete_groups.append(group)
        ev.notes.append(f"{group}: {count}{': ' + shown if shown else ''}: not {rows[0].category}.")


def _screen(m: Measurements, cutoff: int, ev: _Evaluation) -> None:
    """ADA's 50 g screen: positive asks for the 100 g OGTT; negative completes the two-step."""
    unit = m.unit_of("gct_1h")
    limit = Decimal(cutoff) if unit == "mg/dL" else SCREEN_CUTOFFS[cutoff]
    read = round_half_up(m.gct_1h, GLUCOSE_DECIMALS[unit])  # type: ignore[arg-type]
    where = f"cut-off {limit} {symbol(unit)}, the workspace setting gdm_screen_cutoff_mgdl"
    if read >= limit:
        ev.screen = "positive"
        ev.notes.append(
            f"50 g screen positive: {m.shown('gct_1h')} ({where}; {SCREEN_SOURCE}). The screen "
            "does not diagnose: do the 100 g 3-hour OGTT."
        )
    else:
        ev.screen = "negative"
        ev.notes.append(
            f"50 g screen negative: {m.shown('gct_1h')} is below the {where} ({SCREEN_SOURCE}): "
            "no gestational diabetes by the two-step approach."
        )


def _unfired_verdict(
    guideline: str, context: Context, m: Measurements, table: GuidelineTable, ev: _Evaluation
) -> Verdict:
    graded = [n for n in ev.used if table.grades(guideline, context, n)]
    needed = [
        n
        for n in MEASUREMENTS
        if table.grades(guideline, context, n)
        and not (n == "hba1c" and m.anaemia_or_hb_disorder)  # the advice names glucose tests
    ]
    groups = table.groups(guideline, context)
    if not needed and not groups:
        where = "in pregnancy" if context == "pregnant" else "outside pregnancy"
        ev.notes.append(f"{guideline} has no thresholds {where} in this table.")
        return "insufficient data"
    if context == "pregnant":
        missing = [n for n in needed if n not in graded]
        if (needed and not missing) or ev.complete_groups or ev.screen == "negative":
            return "normal"
        text = (
            f"Gestational diabetes cannot be excluded under {guideline} without the whole 75 g "
            f"OGTT ({_join(needed, 'and')}); missing {_join(missing, 'and')}"
        )
        if groups:
            text += ", or ADA's two-step approach: a 50 g screen below the cut-off, or all four "
            text += "values of the 100 g 3-hour OGTT"
        ev.notes.append(text + ".")
        return "insufficient data"
    if graded:
        ev.notes.append(
            f"Normal by the tests given ({_join(graded, 'and')}); "
            "a test not done may still be abnormal."
        )
        return "normal"
    ev.notes.append(f"Not enough to decide under {guideline}: give {_join(needed, 'or')}.")
    return "insufficient data"


def _repeat_test(
    guideline: str,
    verdict: str,
    fired: list[Fired],
    m: Measurements,
    ev: _Evaluation,
    earlier: Sequence[EarlierResult],
) -> tuple[RepeatTest, str]:
    """Whether a repeat test is needed, by the guideline's own rule, and why.

    ADA: two different tests in the diabetic range (one sample or two), or a random glucose
    ≥ 11.1 mmol/L with classic symptoms, need no repeat; otherwise a second sample is needed
    (ADA 2025, section 2). WHO and NICE (which follows WHO): with classic symptoms one value is
    enough; otherwise repeat on another day (WHO 2006; WHO 2011). An earlier diagnostic-range
    result within :data:`REPEAT_WINDOW_DAYS` (another day for WHO/NICE) is the second sample.
    """
    if verdict == "gestational diabetes":
        return "not needed", GDM_REPEAT_NOTE
    if verdict not in DIABETES_CATEGORIES:
        return "not applicable", ""
    at_diabetes = list(
        dict.fromkeys(f.measurement for f in fired if f.category in DIABETES_CATEGORIES)
    )
    ada = guideline == "ADA"
    prior = [
        e
        for e in earlier
        if e.guideline == guideline
        and (0 if ada else 1) <= e.days_before <= REPEAT_WINDOW_DAYS
        and e.measurements
    ]
    if prior:
        first = max(prior, key=lambda e: -e.days_before)
        return "not needed", (
            f"Second sample: {_join(list(first.measurements), 'and')} in the diabetic range "
            f"on {first.date} ({first.days_before} days before), within the {REPEAT_WINDOW_SOURCE}."
        )
    if ada:
        if "random_glucose" in at_diabetes:
            return "not needed", (
                "Random glucose ≥ 11.1 mmol/L (200 mg/dL) with classic symptoms is unequivocal "
                "hyperglycaemia: no second test is needed (ADA 2025)."
            )
        if len(at_diabetes) >= 2:
            return "not needed", (
                f"Two different tests in the diabetic range ({_join(at_diabetes, 'and')}) "
                "confirm each other, from one sample or two (ADA 2025)."
            )
        below = [n for n in ev.used if n not in at_diabetes and n != "random_glucose"]
        if below:
            return "needed", DISCORDANT_NOTE
        return "needed", (
            f"One abnormal result ({_join(at_diabetes, 'and')}): ADA asks for a second abnormal "
            "result, the same or another test, from the same sample or a second one without "
            "delay. Symptoms waive it only with a random glucose ≥ 11.1 mmol/L (200 mg/dL) or a "
            "hyperglycaemic crisis (ADA 2025)."
        )
    if m.symptoms:
        return "not needed", (
            f"With classic symptoms a single diagnostic value is enough ({guideline}; WHO 2006, "
            "WHO 2011)."
        )
    return "needed", (
        f"Without classic symptoms {guideline} asks for a repeat test on another day to confirm "
        "diabetes (WHO 2006; WHO 2011)."
    )


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
        yield f"{name}: {result.verdict} (repeat test: {result.repeat_test})"
        for f in result.fired:
            yield f"  {LABELS[f.measurement]} {f.entered} in {f.range}"
            yield f"    source: {f.source}"
        for note in result.notes:
            yield f"  note: {note}"
