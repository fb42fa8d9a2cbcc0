"""Tiny synthetic data for the diagnosis service and CLI tests (no real patients, no network).

Values are drawn around typical figures of each diagnosis so a small classifier can learn
them; every draw is seeded, so the files are the same on every run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dataset.roles import Actor
from training.diagnosis.registry import Registry, VisitMapping

# Fast classifier settings: a few dozen full-batch epochs on a few dozen rows.
FAST = {"max_epochs": 40, "patience": 10, "inner_folds": 2, "hidden": (8,)}

# diagnosis -> (HbA1c %, fasting glucose mmol/L, C-peptide nmol/L, GAD, birth year)
_PROFILES = {
    "normal": (5.1, 4.9, 0.6, "neg", 1975),
    "prediabetes": (6.0, 6.2, 0.8, "neg", 1965),
    "type 1": (8.4, 9.5, 0.05, "pos", 1995),
    "type 2": (7.6, 8.4, 1.2, "neg", 1958),
}
VISIT_COLUMNS = {
    "patient": "PatientID",
    "date": "VisitDate",
    "sex": "Sex",
    "birth_year": "Born",
    "hba1c": "A1c",
    "fpg": "FPG",
    "bmi": "BMI",
    "diagnosis": "Dx",
}


TESTER = Actor("tester", "clinician")


def visits_csv(
    path: Path,
    per_class: int,
    diagnoses: tuple[str, ...] = ("normal", "type 2"),
    *,
    type_features: bool = False,
    seed: int = 0,
) -> Path:
    """Write one visit per patient (glucose in mg/dL), ``per_class`` patients per diagnosis.

    With ``type_features`` the file also has C-peptide and GAD antibody columns.
    """
    rng = np.random.default_rng(seed)
    header = ["PatientID", "VisitDate", "Sex", "Born", "A1c", "FPG", "BMI", "Dx"]
    if type_features:
        header += ["CPep", "GAD"]
    lines = [",".join(header)]
    n = 0
    for dx in diagnoses:
        a1c, fpg, cpep, gad, born = _PROFILES[dx]
        for _ in range(per_class):
            n += 1
            cells = [
                f"S-{n:03d}",
                "2021-03-01",
                "F" if n % 2 else "M",
                str(born + int(rng.integers(-5, 6))),
                f"{a1c + rng.normal(0, 0.2):.1f}",
                f"{(fpg + rng.normal(0, 0.3)) * 18.016:.0f}",
                f"{26 + rng.normal(0, 3):.1f}",
                dx,
            ]
            if type_features:
                cells += [f"{max(0.01, cpep + rng.normal(0, 0.05)):.2f}", gad]
            lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def visits_mapping(*, type_features: bool = False, confirmed_by: str | None = "dr-test") -> dict:
    """The mapping of :func:`visits_csv` files (glucose in mg/dL)."""
    columns = dict(VISIT_COLUMNS)
    if type_features:
        columns |= {"c_peptide": "CPep", "gad_antibodies": "GAD"}
    return {
        "columns": columns,
        "units": {"glucose": "mg/dL", "hba1c": "percent", "c_peptide": "nmol/L"},
        "date_format": "%Y-%m-%d",
        "confirmed_by": confirmed_by,
    }


def a1c_diagnosis_mapping() -> VisitMapping:
    """The mapping of a CSV with PatientID, VisitDate, A1c (%) and Diagnosis columns, the
    diagnoses confirmed by dr-a."""
    return VisitMapping.model_validate(
        {
            "columns": {"patient": "PatientID", "date": "VisitDate", "hba1c": "A1c",
                        "diagnosis": "Diagnosis"},
            "units": {"hba1c": "percent"},
            "confirmed_by": "dr-a",
        }
    )  # fmt: skip


def write_mapping(path: Path, **kwargs: object) -> Path:
    path.write_text(json.dumps(visits_mapping(**kwargs)), encoding="utf-8")  # type: ignore[arg-type]
    return path


def fill_registry(
    workspace: Path,
    per_class: int,
    diagnoses: tuple[str, ...] = ("normal", "type 2"),
    *,
    type_features: bool = False,
) -> Registry:
    """A registry with one confirmed visit per synthetic patient (two commits in all)."""
    registry = Registry.open(workspace)
    csv = visits_csv(
        workspace.parent / f"{workspace.name}-visits.csv",
        per_class,
        diagnoses,
        type_features=type_features,
    )
    report = registry.import_visits(
        csv,
        VisitMapping.model_validate(visits_mapping(type_features=type_features)),
        actor=TESTER,
    )
    assert not report.errors, report.errors
    return registry


def pima_csv(path: Path, rows: int = 60, seed: int = 0) -> Path:
    """A headerless file in the Pima layout (zeros meaning not measured included)."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(rows):
        sick = i % 3 == 0
        glucose = rng.normal(150 if sick else 105, 15)
        cells = [
            int(rng.integers(0, 6)),
            0 if i % 17 == 5 else round(glucose),
            round(rng.normal(72, 8)),
            0 if i % 4 == 0 else max(5, round(rng.normal(28, 6))),
            0 if i % 2 == 0 else max(10, round(rng.normal(120, 40))),
            round(rng.normal(34 if sick else 30, 4), 1),
            round(rng.uniform(0.1, 1.2), 3),
            int(rng.integers(21, 60)),
            int(sick),
        ]
        lines.append(",".join(str(c) for c in cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
