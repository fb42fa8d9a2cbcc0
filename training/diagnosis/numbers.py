"""Numbers in CSV cells: the one way every diagnosis CSV reader turns cell text into floats.

Promises:

* :func:`read_numbers` and :func:`parse_numbers` read a column of cell texts with
  ``pandas.to_numeric``: surrounding spaces are ignored, a blank cell or a missing-value mark
  (``na``, ``nan``, ``null`` by default; any case) gives NaN, and scientific notation
  (``1e3``) is read.
* ``decimal=","`` reads a decimal comma (``6,1`` is 6.1) as files written with ``;`` between
  cells have it; a decimal point still reads as one. Thousands separators are never guessed:
  with the default ``decimal="."``, ``1,234`` is refused, not read as 1234.
* :func:`read_csv_cells` is the one way those readers split a CSV file into its header and
  data rows: blank rows are skipped, and a row whose cell count differs from the header's is
  refused with its line number.
* A cell that is no finite number is never read as NaN: it comes back as a :class:`BadNumber`
  naming its row and column, or :func:`parse_numbers` raises :class:`NumberError` with the
  first of them. Rows are the index of the cells given (callers pass CSV row numbers).
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "MISSING",
    "BadNumber",
    "CsvCells",
    "NumberError",
    "first_bad",
    "parse_numbers",
    "read_csv_cells",
    "read_number_table",
    "read_numbers",
]

MISSING: tuple[str, ...] = ("", "na", "nan", "null")


@dataclass(frozen=True)
class BadNumber:
    """A cell that should hold a number and does not."""

    row: int
    column: str
    text: str
    infinite: bool = False  # a number, but not a finite one (``inf``)

    @property
    def reason(self) -> str:
        return f"{self.text!r} is not a {'finite number' if self.infinite else 'number'}."

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}: {self.reason}"


class NumberError(ValueError):
    """Cells of a column that are no numbers; the message names the first one's row."""

    def __init__(self, bad: Collection[BadNumber]) -> None:
        self.bad = tuple(bad)
        first, more = self.bad[0], len(self.bad) - 1
        also = f" So {'is' if more == 1 else 'are'} {more} more cell(s) below it." if more else ""
        super().__init__(f"{first}{also} Correct it, or leave it empty if not measured.")


def read_numbers(
    cells: pd.Series,
    *,
    column: str,
    decimal: str = ".",
    missing: Collection[str] = MISSING,
) -> tuple[pd.Series, list[BadNumber]]:
    """A column of cell texts as floats, and the cells that are no number.

    Args:
        cells: Cell texts (``None`` counts as blank), indexed by row number.
        column: The column's name in the file, for messages.
        decimal: ``"."`` or ``","``: the decimal mark of the file.
        missing: Cell texts meaning "not measured" (compared without case or spaces).

    Returns:
        float64 values on the same index (NaN where missing or bad), and the bad cells in
        row order.

    Raises:
        ValueError: ``decimal`` is neither ``"."`` nor ``","``.
    """
    if decimal not in (".", ","):
        raise ValueError(f"decimal must be '.' or ',', got {decimal!r}.")
    marks = {m.strip().lower() for m in missing}
    texts = ["" if c is None or c is pd.NA or c != c else str(c).strip() for c in cells]
    absent = np.array([t.lower() in marks for t in texts], dtype=bool)
    given = [
        None if a else t.replace(",", ".") if decimal == "," else t
        for t, a in zip(texts, absent, strict=True)
    ]
    values = pd.to_numeric(np.array(given, dtype=object), errors="coerce").astype(np.float64)
    unreadable = ~absent & np.isnan(values)
    infinite = np.isinf(values)
    values[unreadable | infinite] = np.nan
    bad = [
        BadNumber(int(cells.index[i]), column, texts[i], infinite=bool(infinite[i]))
        for i in np.flatnonzero(unreadable | infinite)
    ]
    return pd.Series(values, index=cells.index, dtype=np.float64), bad


def parse_numbers(
    cells: pd.Series,
    *,
    column: str,
    decimal: str = ".",
    missing: Collection[str] = MISSING,
) -> pd.Series:
    """A column of cell texts as floats, NaN where not measured; see :func:`read_numbers`.

    Raises:
        NumberError: A cell is neither a finite number nor a missing-value mark; the message
            names its row and ``column``.
    """
    values, bad = read_numbers(cells, column=column, decimal=decimal, missing=missing)
    if bad:
        raise NumberError(bad)
    return values


def read_number_table(
    rows: Sequence[Sequence[str]],
    row_numbers: Sequence[int],
    columns: Sequence[int],
    names: Sequence[str],
    *,
    missing: Collection[str] = MISSING,
) -> tuple[np.ndarray, list[BadNumber]]:
    """Columns of a CSV's rows as a float matrix, each column read by :func:`read_numbers`.

    Args:
        rows: The cells of each data row (as ``csv.reader`` gives them).
        row_numbers: Each row's number in the file, for messages.
        columns: Which cell of a row holds each column.
        names: Each column's name, for messages.
        missing: As for :func:`read_numbers`.

    Returns:
        The values (NaN where not measured or bad) and the bad cells, column by column.

    Shape:
        return: (len(rows), len(columns)), float64.
    """
    out = np.empty((len(rows), len(columns)), dtype=np.float64)
    bad: list[BadNumber] = []
    for j, (col, name) in enumerate(zip(columns, names, strict=True)):
        texts = pd.Series([r[col] if col < len(r) else "" for r in rows], index=row_numbers)
        values, wrong = read_numbers(texts, column=name, missing=missing)
        out[:, j] = values.to_numpy()
        bad.extend(wrong)
    return out, bad


def first_bad(bad: Sequence[BadNumber], names: Sequence[str]) -> BadNumber:
    """The bad cell a person reading the file finds first: by row, then by column order."""
    return min(bad, key=lambda b: (b.row, list(names).index(b.column)))


@dataclass(frozen=True)
class CsvCells:
    """A CSV file's header and its non-blank data rows, with each row's line number."""

    header: list[str]
    rows: list[list[str]]
    lines: list[int]


def read_csv_cells(path: Path) -> CsvCells:
    """The header (stripped) and data rows of a UTF-8 CSV file (a BOM is allowed).

    Raises:
        ValueError: a data row has more or fewer cells than the header, naming the file and
            the line.
        OSError: the file cannot be read.
    """
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        rows: list[list[str]] = []
        lines: list[int] = []
        for line_no, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise ValueError(
                    f"{path}, line {line_no}: {len(cells)} cells but the header has {len(header)}"
                )
            rows.append(cells)
            lines.append(line_no)
    return CsvCells(header, rows, lines)
