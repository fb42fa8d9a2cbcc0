"""The boundary cases of every threshold, written from the guidelines (not from guidelines.csv).

Each :class:`Point` is one value on one side of one threshold, with the verdict one guideline
must give. Published-unit thresholds give four points each: one step below and at the published
lower end, and the two values that round (half up, at the published precision) to them
(``6.94``/``6.95`` mmol/L around ``7.0``, ``125.4``/``125.5`` mg/dL around ``126``). Where a
guideline does not publish the unit (NICE mg/dL), the points are where the converted value,
rounded to 0.1 mmol/L, reaches the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

NORMAL, INSUFFICIENT, PRE, DIA = "normal", "insufficient data", "prediabetes", "diabetes"
GDM, DIP, HYPO = "gestational diabetes", "diabetes in pregnancy", "hypoglycaemia"
# A complete, normal 75 g OGTT in pregnancy under every guideline, in each glucose unit; a
# pregnancy case varies one of these values.
NORMAL_OGTT = {
    "mmol/L": {"fpg": 4.5, "ogtt_1h": 7.0, "ogtt_2h": 7.0},
    "mg/dL": {"fpg": 81.0, "ogtt_1h": 126.0, "ogtt_2h": 126.0},
}
# All four values of a 100 g OGTT below every threshold, and a partner value that meets
# Carpenter–Coustan but not NDDG (so one more met value makes 2 of 4 under CC only).
BELOW_100G = {
    "mg/dL": {"ogtt100_0h": 80.0, "ogtt100_1h": 150.0, "ogtt100_2h": 130.0, "ogtt100_3h": 110.0},
    "mmol/L": {"ogtt100_0h": 4.4, "ogtt100_1h": 8.3, "ogtt100_2h": 7.2, "ogtt100_3h": 6.1},
}
CC_PARTNER = {
    "mg/dL": {"ogtt100_1h": 185.0, "ogtt100_0h": 100.0},
    "mmol/L": {"ogtt100_1h": 10.2, "ogtt100_0h": 5.5},
}


@dataclass(frozen=True)
class Point:
    guideline: str
    pregnant: bool
    field: str
    unit: str
    value: float
    verdict: str
    symptoms: bool = False
    base: tuple[tuple[str, float], ...] = ()
    label: str = field(default="", compare=False)

    def values(self) -> dict[str, float]:
        return {**dict(self.base), self.field: self.value}

    def key(self) -> tuple:
        """Points with one key are one visit (its verdicts under every guideline)."""
        return (self.pregnant, self.unit, self.symptoms, tuple(sorted(self.values().items())))

    def units(self) -> dict[str, str]:
        """``hba1c_unit`` / ``glucose_unit`` of the visit (base OGTT values in mmol/L)."""
        if self.field == "hba1c":
            return {"hba1c_unit": self.unit, **({"glucose_unit": "mmol/L"} if self.base else {})}
        return {"glucose_unit": self.unit}


def _base(pregnant: bool, field: str, unit: str) -> tuple[tuple[str, float], ...]:
    if field.startswith("ogtt100"):
        base = dict(BELOW_100G[unit])
        partner = "ogtt100_0h" if field == "ogtt100_1h" else "ogtt100_1h"
        base[partner] = CC_PARTNER[unit][partner]
        base.pop(field)
        return tuple(base.items())
    if pregnant and field not in ("gct_1h",):
        glucose = "mg/dL" if unit == "mg/dL" else "mmol/L"
        return tuple((k, v) for k, v in NORMAL_OGTT[glucose].items() if k != field)
    return ()


def pub(g, pregnant, field, unit, low, below_v, at_v, *, symptoms=False) -> list[Point]:
    """Four points around a threshold published in ``unit`` (see the module docstring)."""
    low = Decimal(str(low))
    decimals = max(0, -low.as_tuple().exponent)
    step = Decimal(1).scaleb(-decimals)
    half = step / 2
    base = _base(pregnant, field, unit)
    out = []
    for value, verdict in (
        (low - step, below_v),
        (low, at_v),
        (low - half - step / 10, below_v),
        (low - half, at_v),
    ):
        out.append(Point(g, pregnant, field, unit, float(value), verdict, symptoms, base, f"{low}"))
    return out


def conv(g, pregnant, field, unit, below, below_v, at, at_v, *, symptoms=False) -> list[Point]:
    """Two explicit points (a threshold the guideline publishes in the other unit only)."""
    base = _base(pregnant, field, unit)
    return [
        Point(g, pregnant, field, unit, float(below), below_v, symptoms, base, f"{at}"),
        Point(g, pregnant, field, unit, float(at), at_v, symptoms, base, f"{at}"),
    ]


POINTS: list[Point] = [
    # WHO outside pregnancy: HbA1c only diagnoses diabetes (WHO 2011).
    *pub("WHO", False, "hba1c", "percent", "6.5", INSUFFICIENT, DIA),
    *pub("WHO", False, "hba1c", "mmol/mol", "48", INSUFFICIENT, DIA),
    *pub("WHO", False, "fpg", "mmol/L", "6.1", NORMAL, PRE),
    *pub("WHO", False, "fpg", "mmol/L", "7.0", PRE, DIA),
    *pub("WHO", False, "fpg", "mg/dL", "110", NORMAL, PRE),
    *pub("WHO", False, "fpg", "mg/dL", "126", PRE, DIA),
    *pub("WHO", False, "ogtt_2h", "mmol/L", "7.8", NORMAL, PRE),
    *pub("WHO", False, "ogtt_2h", "mmol/L", "11.1", PRE, DIA),
    *pub("WHO", False, "ogtt_2h", "mg/dL", "140", NORMAL, PRE),
    *pub("WHO", False, "ogtt_2h", "mg/dL", "200", PRE, DIA),
    *pub("WHO", False, "random_glucose", "mmol/L", "11.1", INSUFFICIENT, DIA, symptoms=True),
    *pub("WHO", False, "random_glucose", "mg/dL", "200", INSUFFICIENT, DIA, symptoms=True),
    # ADA Standards of Care 2025, section 2.
    *pub("ADA", False, "hba1c", "percent", "5.7", NORMAL, PRE),
    *pub("ADA", False, "hba1c", "percent", "6.5", PRE, DIA),
    *pub("ADA", False, "hba1c", "mmol/mol", "39", NORMAL, PRE),
    *pub("ADA", False, "hba1c", "mmol/mol", "48", PRE, DIA),
    *pub("ADA", False, "fpg", "mmol/L", "5.6", NORMAL, PRE),
    *pub("ADA", False, "fpg", "mmol/L", "7.0", PRE, DIA),
    *pub("ADA", False, "fpg", "mg/dL", "100", NORMAL, PRE),
    *pub("ADA", False, "fpg", "mg/dL", "126", PRE, DIA),
    *pub("ADA", False, "ogtt_2h", "mmol/L", "7.8", NORMAL, PRE),
    *pub("ADA", False, "ogtt_2h", "mmol/L", "11.1", PRE, DIA),
    *pub("ADA", False, "ogtt_2h", "mg/dL", "140", NORMAL, PRE),
    *pub("ADA", False, "ogtt_2h", "mg/dL", "200", PRE, DIA),
    *pub("ADA", False, "random_glucose", "mmol/L", "11.1", INSUFFICIENT, DIA, symptoms=True),
    *pub("ADA", False, "random_glucose", "mg/dL", "200", INSUFFICIENT, DIA, symptoms=True),
    # NICE PH38 (mmol/L and the HbA1c units; mg/dL converted and rounded to 0.1 first).
    *pub("NICE", False, "hba1c", "percent", "6.0", NORMAL, PRE),
    *pub("NICE", False, "hba1c", "percent", "6.5", PRE, DIA),
    *pub("NICE", False, "hba1c", "mmol/mol", "42", NORMAL, PRE),
    *pub("NICE", False, "hba1c", "mmol/mol", "48", PRE, DIA),
    *pub("NICE", False, "fpg", "mmol/L", "5.5", NORMAL, PRE),
    *pub("NICE", False, "fpg", "mmol/L", "7.0", PRE, DIA),
    *pub("NICE", False, "ogtt_2h", "mmol/L", "7.8", NORMAL, PRE),
    *pub("NICE", False, "ogtt_2h", "mmol/L", "11.1", PRE, DIA),
    *pub("NICE", False, "random_glucose", "mmol/L", "11.1", INSUFFICIENT, DIA, symptoms=True),
    *conv("NICE", False, "fpg", "mg/dL", "98.1", NORMAL, "98.2", PRE),
    *conv("NICE", False, "fpg", "mg/dL", "98", NORMAL, "99", PRE),
    *conv("NICE", False, "fpg", "mg/dL", "125.2", PRE, "125.3", DIA),
    *conv("NICE", False, "fpg", "mg/dL", "125", PRE, "126", DIA),
    *conv("NICE", False, "ogtt_2h", "mg/dL", "139.6", NORMAL, "139.7", PRE),
    *conv("NICE", False, "ogtt_2h", "mg/dL", "199.0", PRE, "199.1", DIA),
    *conv(
        "NICE", False, "random_glucose", "mg/dL", "199.0", INSUFFICIENT, "199.1", DIA, symptoms=True
    ),
    # Hypoglycaemia (ADA 2025 section 6: < 3.9 mmol/L, < 70 mg/dL) is never normal.
    *(
        p
        for g in ("WHO", "ADA", "NICE")
        for p in (
            *pub(g, False, "fpg", "mmol/L", "3.9", HYPO, NORMAL),
            *pub(g, False, "fpg", "mg/dL", "70", HYPO, NORMAL),
        )
    ),
    # Pregnancy, WHO 2013 and ADA's one-step test (IADPSG 2010 thresholds).
    *(
        p
        for g in ("WHO", "ADA")
        for p in (
            *pub(g, True, "fpg", "mmol/L", "5.1", NORMAL, GDM),
            *pub(g, True, "fpg", "mmol/L", "7.0", GDM, DIP),
            *pub(g, True, "fpg", "mg/dL", "92", NORMAL, GDM),
            *pub(g, True, "fpg", "mg/dL", "126", GDM, DIP),
            *pub(g, True, "ogtt_1h", "mmol/L", "10.0", NORMAL, GDM),
            *pub(g, True, "ogtt_1h", "mg/dL", "180", NORMAL, GDM),
            *pub(g, True, "ogtt_2h", "mmol/L", "8.5", NORMAL, GDM),
            *pub(g, True, "ogtt_2h", "mmol/L", "11.1", GDM, DIP),
            *pub(g, True, "ogtt_2h", "mg/dL", "153", NORMAL, GDM),
            *pub(g, True, "ogtt_2h", "mg/dL", "200", GDM, DIP),
            *pub(g, True, "random_glucose", "mmol/L", "11.1", NORMAL, DIP, symptoms=True),
            *pub(g, True, "random_glucose", "mg/dL", "200", NORMAL, DIP, symptoms=True),
        )
    ),
    # ADA in pregnancy: HbA1c ≥ 6.5 % (48 mmol/mol) is diabetes in pregnancy (IADPSG 2010).
    *pub("ADA", True, "hba1c", "percent", "6.5", NORMAL, DIP),
    *pub("ADA", True, "hba1c", "mmol/mol", "48", NORMAL, DIP),
    # ADA two-step: the 100 g 3-hour OGTT, Carpenter–Coustan, 2 of 4 (one partner value met).
    *pub("ADA", True, "ogtt100_0h", "mg/dL", "95", NORMAL, GDM),
    *pub("ADA", True, "ogtt100_1h", "mg/dL", "180", NORMAL, GDM),
    *pub("ADA", True, "ogtt100_2h", "mg/dL", "155", NORMAL, GDM),
    *pub("ADA", True, "ogtt100_3h", "mg/dL", "140", NORMAL, GDM),
    *pub("ADA", True, "ogtt100_0h", "mmol/L", "5.3", NORMAL, GDM),
    *pub("ADA", True, "ogtt100_1h", "mmol/L", "10.0", NORMAL, GDM),
    *pub("ADA", True, "ogtt100_2h", "mmol/L", "8.6", NORMAL, GDM),
    *pub("ADA", True, "ogtt100_3h", "mmol/L", "7.8", NORMAL, GDM),
    # ADA two-step: the 50 g screen at the default cut-off, 140 mg/dL (7.8 mmol/L).
    *pub("ADA", True, "gct_1h", "mg/dL", "140", NORMAL, INSUFFICIENT),
    *pub("ADA", True, "gct_1h", "mmol/L", "7.8", NORMAL, INSUFFICIENT),
    # NICE NG3 publishes mmol/L only.
    *pub("NICE", True, "fpg", "mmol/L", "5.6", NORMAL, GDM),
    *pub("NICE", True, "ogtt_2h", "mmol/L", "7.8", NORMAL, GDM),
    *conv("NICE", True, "fpg", "mg/dL", "99.9", NORMAL, "100", GDM),
    *conv("NICE", True, "ogtt_2h", "mg/dL", "139.6", NORMAL, "139.7", GDM),
]


def point_id(p: Point) -> str:
    where = "pregnant" if p.pregnant else "not-pregnant"
    return f"{p.guideline}-{where}-{p.field}-{p.value:g}{p.unit}-{p.verdict.replace(' ', '_')}"


def visits() -> dict[tuple, list[Point]]:
    """The points grouped by visit: one visit's verdicts answer every guideline's point."""
    out: dict[tuple, list[Point]] = {}
    for p in POINTS:
        out.setdefault(p.key(), []).append(p)
    return out
