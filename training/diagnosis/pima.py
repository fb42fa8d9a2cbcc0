"""Loader for the Pima Indians Diabetes data (NIDDK; Smith et al. 1988).

The promise: :func:`load_pima` returns the eight measurements with the zeros that mean "not
measured" turned into ``NaN`` (Glucose, BloodPressure, SkinThickness, Insulin, BMI only;
zero past pregnancies is a real count), and refuses a malformed file naming the line.

What the outcome means matters: it is diabetes found at an examination within about five years
of the measurements, not a diagnosis made at that visit. Use the data to train and evaluate the
classifier through a CSV, never as the registry's confirmed diagnoses. All subjects are Pima
women aged 21 or over, so a model trained on it is not a general-population model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.diagnosis.features import TabularData
from training.diagnosis.numbers import first_bad, read_number_table

__all__ = [
    "PIMA_CLASSES",
    "PIMA_FEATURES",
    "PIMA_NOTE",
    "PIMA_ZERO_IS_MISSING",
    "load_pima",
]

PIMA_FEATURES: tuple[str, ...] = (
    "Pregnancies",
    "Glucose",
    "BloodPressure",
    "SkinThickness",
    "Insulin",
    "BMI",
    "DiabetesPedigreeFunction",
    "Age",
)
PIMA_ZERO_IS_MISSING: tuple[str, ...] = (
    "Glucose",
    "BloodPressure",
    "SkinThickness",
    "Insulin",
    "BMI",
)
PIMA_CLASSES: tuple[str, ...] = ("no diabetes", "diabetes")
PIMA_NOTE = (
    "Pima Indians Diabetes data (NIDDK; Smith et al. 1988). Outcome: diabetes found at an "
    "examination within about five years of the measurements, not a diagnosis made at that "
    "visit. All subjects are Pima women aged 21 or over: not a general-population model."
)

_N_COLUMNS = len(PIMA_FEATURES) + 1


def load_pima(path: Path) -> TabularData:
    """Read the Pima CSV: no header, nine numeric columns, the last one the 0/1 outcome.

    A header line naming the columns (as some redistributions add) is accepted and skipped.

    Args:
        path: The CSV file.

    Returns:
        Rows with classes ``("no diabetes", "diabetes")`` and ``NaN`` where a zero means
        "not measured".

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Naming the file and line of the first malformed row.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No Pima CSV at {path}; pass the file with --csv")
    lines: list[tuple[int, str, list[str]]] = []
    with path.open(encoding="utf-8-sig") as handle:
        for line_no, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            cells = [c.strip() for c in text.split(",")]
            if line_no == 1 and _is_header(cells):
                continue
            if len(cells) != _N_COLUMNS:
                raise ValueError(
                    f"{path}, line {line_no}: expected {_N_COLUMNS} comma-separated numbers "
                    f"({', '.join(PIMA_FEATURES)}, Outcome), found {len(cells)}"
                )
            lines.append((line_no, text, cells))
    if not lines:
        raise ValueError(f"{path}: no data rows")
    # No cell may be missing here: a zero is how this file says "not measured".
    table, bad = read_number_table(
        [cells for _, _, cells in lines],
        [n for n, _, _ in lines],
        range(_N_COLUMNS),
        [*PIMA_FEATURES, "Outcome"],
        missing=(),
    )
    text_of = {n: text for n, text, _ in lines}
    if bad:
        first = first_bad(bad, [*PIMA_FEATURES, "Outcome"])
        rule = (
            "values must be finite and not negative"
            if first.infinite
            else "every cell must be a number"
        )
        raise ValueError(f"{path}, line {first.row}: {rule}, got {text_of[first.row]!r}")
    for (line_no, text, cells), values in zip(lines, table, strict=True):
        if values.min() < 0:
            raise ValueError(
                f"{path}, line {line_no}: values must be finite and not negative, got {text!r}"
            )
        if values[-1] not in (0.0, 1.0):
            raise ValueError(f"{path}, line {line_no}: Outcome must be 0 or 1, got {cells[-1]!r}")
    X = table[:, :-1].copy()
    for name in PIMA_ZERO_IS_MISSING:
        col = PIMA_FEATURES.index(name)
        X[X[:, col] == 0, col] = np.nan
    return TabularData(
        X=X,
        y=table[:, -1].astype(np.int64),
        feature_names=PIMA_FEATURES,
        classes=PIMA_CLASSES,
        source=str(path),
    )


def _is_header(cells: list[str]) -> bool:
    names = [c.lower() for c in cells]
    return names[: len(PIMA_FEATURES)] == [n.lower() for n in PIMA_FEATURES]
