"""Tests for training.diagnosis.numbers: the one reader of numbers in CSV cells, and the two
CSV readers that use it (visits for the registry, feature tables for the classifier)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.diagnosis.features import load_csv, parse_number
from training.diagnosis.numbers import BadNumber, NumberError, parse_numbers, read_numbers
from training.diagnosis.registry import VisitMapping, parse_visits_csv


def cells(*texts: str | None, first_row: int = 2) -> pd.Series:
    return pd.Series(list(texts), index=range(first_row, first_row + len(texts)), dtype=object)


def test_plain_numbers_spaces_and_scientific_notation() -> None:
    got = parse_numbers(cells("6.1", " 7 ", "-2", "+3", "1e3", ".5"), column="A1c")
    assert got.tolist() == [6.1, 7.0, -2.0, 3.0, 1000.0, 0.5]
    assert got.dtype == np.float64 and got.index.tolist() == [2, 3, 4, 5, 6, 7]


def test_blanks_and_missing_marks_are_nan_in_any_case() -> None:
    got = parse_numbers(cells("", "  ", None, "NA", "nan", "Null", "5"), column="BMI")
    assert [math.isnan(v) for v in got] == [True] * 6 + [False]
    custom = parse_numbers(cells("-", "n/a", "4"), column="BMI", missing=["-", "N/A"])
    assert math.isnan(custom[2]) and math.isnan(custom[3]) and custom[4] == 4.0


def test_decimal_comma() -> None:
    got = parse_numbers(cells("6,1", "48", "7.5"), column="A1c", decimal=",")
    assert got.tolist() == [6.1, 48.0, 7.5]  # a decimal point still reads as one
    with pytest.raises(NumberError, match=r"row 2, column 'A1c': '6,1' is not a number"):
        parse_numbers(cells("6,1"), column="A1c")  # a comma is no decimal mark by default
    with pytest.raises(ValueError, match="decimal must be"):
        parse_numbers(cells("6"), column="A1c", decimal=";")


def test_thousands_separators_are_refused_not_guessed() -> None:
    # Neither "1,234" nor "1 234" is read as 1234: a thousands separator and a decimal comma
    # look the same, and guessing would move a value a thousandfold.
    for text in ("1,234", "1 234", "1_234"):
        with pytest.raises(NumberError, match=f"'{text}' is not a number"):
            parse_numbers(cells(text), column="Insulin")


def test_junk_names_its_row_and_column_and_counts_the_rest() -> None:
    with pytest.raises(NumberError) as err:
        parse_numbers(cells("5", "high", "7", "??", "x", first_row=10), column="FPG")
    message = str(err.value)
    assert message.startswith("row 11, column 'FPG': 'high' is not a number.")
    assert "2 more" in message and "leave it empty" in message
    assert [b.row for b in err.value.bad] == [11, 13, 14]


def test_infinite_values_are_refused_as_not_finite() -> None:
    values, bad = read_numbers(cells("inf", "-Infinity", "3"), column="BMI")
    assert bad == [
        BadNumber(2, "BMI", "inf", infinite=True),
        BadNumber(3, "BMI", "-Infinity", infinite=True),
    ]
    assert bad[0].reason == "'inf' is not a finite number."
    assert math.isnan(values[2]) and values[4] == 3.0


def test_read_numbers_is_lenient_and_leaves_bad_cells_nan() -> None:
    values, bad = read_numbers(cells("1", "x", ""), column="C")
    assert values[2] == 1.0 and math.isnan(values[3]) and math.isnan(values[4])
    assert [str(b) for b in bad] == ["row 3, column 'C': 'x' is not a number."]


# --- the CSV readers that use it ----------------------------------------------------------
VISITS_MAPPING = {
    "columns": {"patient": "PatientID", "date": "Date", "hba1c": "A1c", "bmi": "BMI"},
    "units": {"hba1c": "percent"},
}


def test_visit_csv_with_semicolons_reads_decimal_commas() -> None:
    text = "PatientID;Date;A1c;BMI\nP-1;2022-01-02;6,1;31,5\nP-2;2022-01-02;5.4;NA\n"
    mapping = VisitMapping.model_validate(VISITS_MAPPING | {"delimiter": ";"})
    preview = parse_visits_csv(text.encode(), mapping)
    assert preview.errors == ()
    got = {r.patient_id: (r.visit.hba1c_percent, r.visit.bmi) for r in preview.rows}
    assert got["P-1"] == (6.1, 31.5)
    assert got["P-2"][0] == 5.4 and got["P-2"][1] is None


def test_visit_csv_reads_an_anaemia_column() -> None:
    text = "PatientID,Date,A1c,BMI,Anaemia\nP-1,2022-01-02,7.1,30,yes\nP-2,2022-01-02,7.1,30,no\n"
    mapping = dict(VISITS_MAPPING)
    mapping["columns"] = VISITS_MAPPING["columns"] | {"anaemia": "Anaemia"}
    preview = parse_visits_csv(text.encode(), VisitMapping.model_validate(mapping))
    assert preview.errors == ()
    assert {r.patient_id: r.visit.anaemia_or_hb_disorder for r in preview.rows} == {
        "P-1": True,
        "P-2": False,
    }


def test_visit_csv_refuses_junk_and_commas_by_row_and_column() -> None:
    text = "PatientID,Date,A1c,BMI\nP-1,2022-01-02,high,30\nP-2,2022-01-02,6.0,inf\n"
    preview = parse_visits_csv(text.encode(), VisitMapping.model_validate(VISITS_MAPPING))
    assert [(e.row, e.column, e.message) for e in preview.errors] == [
        (2, "A1c", "'high' is not a number."),
        (3, "BMI", "'inf' is not a finite number."),
    ]
    assert preview.rows == ()


def test_feature_csv_names_the_first_bad_cell_in_reading_order(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("a,b,outcome\n1,2,x\n3,oops,y\nnope,4,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 3: column 'b' holds 'oops', not a number"):
        load_csv(path, outcome="outcome")
    path.write_text("a,b,outcome\n1,,x\n3,NA,y\n", encoding="utf-8")
    data = load_csv(path, outcome="outcome")
    assert data.X[:, 0].tolist() == [1.0, 3.0] and np.isnan(data.X[:, 1]).all()
    with pytest.raises(ValueError, match=r"f.csv, row 5: column 'a' holds 'inf', not a finite"):
        parse_number("inf", "f.csv, row 5", "a")
    assert parse_number(" 2.5 ", "f.csv, row 5", "a") == 2.5


def test_pima_cells_are_read_by_the_same_reader_and_none_may_be_blank(tmp_path: Path) -> None:
    from training.diagnosis.pima import load_pima

    good = "1,85,66,29,0,26.6,0.351,31,0"
    path = tmp_path / "pima.csv"
    path.write_text(f"{good}\n1,85,66,29,0,26.6,0.351,1e1,1\n", encoding="utf-8")
    assert load_pima(path).X[1, -1] == 10.0
    for bad, rule in (
        ("1,85,,29,0,26.6,0.351,31,0", "every cell must be a number"),
        ("1,85,NA,29,0,26.6,0.351,31,0", "every cell must be a number"),
        ("1,85,66,29,0,inf,0.351,31,0", "values must be finite"),
        ("1,85,66,29,0,26;6,0.351,31,0", "every cell must be a number"),
    ):
        path.write_text(f"{good}\n{good}\n{bad}\n", encoding="utf-8")
        with pytest.raises(ValueError, match=f"line 3: {rule}"):
            load_pima(path)


def test_csv_cells_skip_blank_rows_and_name_the_line_of_a_ragged_one(tmp_path: Path) -> None:
    from training.diagnosis.numbers import read_csv_cells

    good = tmp_path / "good.csv"
    good.write_text("\ufeffglucose , bmi\n5.1,22\n\n , \n6.0,31\n", encoding="utf-8")
    table = read_csv_cells(good)
    assert table.header == ["glucose", "bmi"]
    assert (table.rows, table.lines) == ([["5.1", "22"], ["6.0", "31"]], [2, 5])
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("glucose,bmi\n5.1,22\n6.0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"ragged.csv, line 3: 1 cells but the header has 2"):
        read_csv_cells(ragged)


def test_the_prediction_table_reader_names_a_bad_cell(tmp_path: Path) -> None:
    from training.diagnosis.service.prediction import _read_table
    from training.diagnosis.service.training_data import DiagnosisError

    table = tmp_path / "visits.csv"
    table.write_text("glucose,bmi\n5.1,22\n6.0,thirty\n", encoding="utf-8")
    with pytest.raises(DiagnosisError, match=r"row 3.*bmi"):
        _read_table(table, None)
    table.write_text("glucose,bmi\n5.1,22\n6.0,31\n", encoding="utf-8")
    X, names, rows, labels = _read_table(table, None)
    assert X.tolist() == [[5.1, 22.0], [6.0, 31.0]] and names == ["glucose", "bmi"]
    assert (rows, labels) == ([2, 3], None)
