"""The Pima loader: which zeros are missing, and refusing malformed files with file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.diagnosis.features import load_csv
from training.diagnosis.pima import PIMA_CLASSES, PIMA_FEATURES, load_pima

# Made-up rows in the Pima layout: Pregnancies, Glucose, BloodPressure, SkinThickness, Insulin,
# BMI, DiabetesPedigreeFunction, Age, Outcome.
ROWS = [
    "0,148,72,35,0,33.6,0.627,50,1",
    "1,0,66,29,94,0,0.351,31,0",
    "3,183,0,0,0,23.3,0.672,32,1",
    "2,89,66,23,94,28.1,0.167,21,0",
]


def write(tmp_path: Path, lines: list[str], name: str = "pima.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def column(data, name: str) -> np.ndarray:
    return data.X[:, data.feature_names.index(name)]


def test_zeros_become_missing_only_where_they_mean_not_measured(tmp_path: Path) -> None:
    data = load_pima(write(tmp_path, ROWS))

    assert data.feature_names == PIMA_FEATURES
    assert data.classes == PIMA_CLASSES == ("no diabetes", "diabetes")
    assert data.y.tolist() == [1, 0, 1, 0]
    # Zero past pregnancies is a real count.
    assert column(data, "Pregnancies").tolist() == [0, 1, 3, 2]
    assert np.isnan(column(data, "Glucose")).tolist() == [False, True, False, False]
    assert np.isnan(column(data, "BloodPressure")).tolist() == [False, False, True, False]
    assert np.isnan(column(data, "SkinThickness")).tolist() == [False, False, True, False]
    assert np.isnan(column(data, "Insulin")).tolist() == [True, False, True, False]
    assert np.isnan(column(data, "BMI")).tolist() == [False, True, False, False]
    assert not np.isnan(column(data, "DiabetesPedigreeFunction")).any()
    assert column(data, "Glucose")[0] == 148


def test_a_header_line_naming_the_columns_is_skipped(tmp_path: Path) -> None:
    header = ",".join([*PIMA_FEATURES, "Outcome"])
    data = load_pima(write(tmp_path, [header, *ROWS]))
    assert len(data.y) == len(ROWS)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("1,85,66,29,0,26.6,0.351,31", "expected 9"),
        ("1,85,66,29,0,26.6,0.351,31,0,7", "expected 9"),
        ("1,85,sixty,29,0,26.6,0.351,31,0", "must be a number"),
        ("1,85,66,29,0,26.6,0.351,31,2", "Outcome must be 0 or 1"),
        ("1,85,-66,29,0,26.6,0.351,31,0", "not negative"),
    ],
)
def test_a_malformed_row_is_refused_naming_file_and_line(
    tmp_path: Path, bad: str, message: str
) -> None:
    path = write(tmp_path, [*ROWS[:2], bad, *ROWS[2:]])
    with pytest.raises(ValueError, match=message) as err:
        load_pima(path)
    assert f"{path}, line 3" in str(err.value)


def test_a_missing_or_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--csv"):
        load_pima(tmp_path / "absent.csv")
    with pytest.raises(ValueError, match="no data rows"):
        load_pima(write(tmp_path, [""]))


def test_load_csv_reads_named_columns_and_outcome(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ["id,glucose,bmi,outcome", "a,100,,healthy", "b,0,31.5,diabetes", "c,140,NA,diabetes"],
        name="mapped.csv",
    )
    data = load_csv(
        path, outcome="outcome", features=["glucose", "bmi"], zero_is_missing=["glucose"]
    )

    assert data.feature_names == ("glucose", "bmi")
    assert data.classes == ("diabetes", "healthy")
    assert data.y.tolist() == [1, 0, 0]
    np.testing.assert_array_equal(np.isnan(data.X), [[False, True], [True, False], [False, True]])

    with pytest.raises(ValueError, match="no outcome column 'label'"):
        load_csv(path, outcome="label")
    bad = write(tmp_path, ["glucose,outcome", "100,no", "high,yes"], name="bad.csv")
    with pytest.raises(ValueError, match=r"line 3: column 'glucose' holds 'high'"):
        load_csv(bad, outcome="outcome")
