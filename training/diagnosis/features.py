"""Tabular inputs of the diagnosis classifier and the preprocessing fitted on training rows.

The promise of this module: a :class:`Preprocessor` learns everything it knows (medians,
means, standard deviations, which features get a "was missing" indicator) from the rows passed
to :meth:`Preprocessor.fit` and from nothing else, so cross-validation can fit one per training
fold and the validation fold never leaks into imputation or scaling.

Missing values are ``NaN`` in every feature matrix this package handles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.diagnosis.numbers import (
    BadNumber,
    first_bad,
    read_csv_cells,
    read_number_table,
    read_numbers,
)

__all__ = [
    "Preprocessor",
    "TabularData",
    "load_csv",
    "type_distinction_warning",
]

MISSING_SUFFIX = " missing"


@dataclass(frozen=True)
class TabularData:
    """Feature rows and their class labels.

    Attributes:
        X: Feature values, float64, ``NaN`` where a value was not measured.
        y: Class index of each row into ``classes``, int64.
        feature_names: One name per column of ``X``.
        classes: Class names; ``y == i`` means ``classes[i]``.
        source: Where the rows came from (a file path or a registry description).

    Shape:
        X: (n_rows, n_features); y: (n_rows,).
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    classes: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if self.X.ndim != 2 or self.X.shape[1] != len(self.feature_names):
            raise ValueError(
                f"{self.source or 'data'}: X has shape {self.X.shape} but "
                f"{len(self.feature_names)} feature names were given"
            )
        if self.y.shape != (self.X.shape[0],):
            raise ValueError(
                f"{self.source or 'data'}: {self.X.shape[0]} feature rows but {self.y.shape} labels"
            )
        if len(self.y) and (self.y.min() < 0 or self.y.max() >= len(self.classes)):
            raise ValueError(
                f"{self.source or 'data'}: labels must index the {len(self.classes)} classes "
                f"{list(self.classes)}"
            )

    @property
    def class_counts(self) -> dict[str, int]:
        """Number of rows of each class, in class order."""
        counts = np.bincount(self.y, minlength=len(self.classes))
        return {name: int(c) for name, c in zip(self.classes, counts, strict=True)}


@dataclass(frozen=True)
class Preprocessor:
    """Median imputation, "was missing" indicators and standardisation, fitted on training rows.

    Only features with at least one missing value among the training rows get an indicator
    column; a feature that never was missing in training is simply imputed if it ever is.

    Attributes:
        feature_names: Names of the raw input columns.
        medians: Training-row median of each feature (0 when a feature was never measured).
        means: Mean of each imputed feature over the training rows.
        stds: Standard deviation of each imputed feature (1 where it was constant).
        indicator_features: Indices of the features that get a "was missing" column.
        missing_rates: Share of training rows missing each of those features.

    Shape:
        medians, means, stds: (n_features,); indicator_features, missing_rates:
        (n_indicators,).
    """

    feature_names: tuple[str, ...]
    medians: np.ndarray
    means: np.ndarray
    stds: np.ndarray
    indicator_features: np.ndarray
    missing_rates: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, feature_names: Sequence[str]) -> Preprocessor:
        """Learn imputation and scaling from training rows only.

        Args:
            X: Training rows, ``NaN`` where missing.
            feature_names: One name per column.

        Shape:
            X: (n_rows, n_features).
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(feature_names) or X.shape[0] == 0:
            raise ValueError(
                f"Preprocessor.fit needs a non-empty (rows, {len(feature_names)}) matrix, "
                f"got shape {X.shape}"
            )
        missing = np.isnan(X)
        all_missing = missing.all(axis=0)
        with np.errstate(all="ignore"):
            medians = np.where(all_missing, 0.0, np.nanmedian(np.where(all_missing, 0.0, X), 0))
        imputed = np.where(missing, medians, X)
        means = imputed.mean(axis=0)
        stds = imputed.std(axis=0)
        stds = np.where(stds > 1e-12, stds, 1.0)
        indicator_features = np.flatnonzero(missing.any(axis=0))
        return cls(
            feature_names=tuple(feature_names),
            medians=medians,
            means=means,
            stds=stds,
            indicator_features=indicator_features,
            missing_rates=missing[:, indicator_features].mean(axis=0),
        )

    @property
    def output_names(self) -> tuple[str, ...]:
        """Names of the transformed columns: the features, then their missing indicators."""
        return self.feature_names + tuple(
            self.feature_names[i] + MISSING_SUFFIX for i in self.indicator_features
        )

    @property
    def output_source(self) -> np.ndarray:
        """For each transformed column, the index of the raw feature it comes from."""
        return np.concatenate([np.arange(len(self.feature_names)), self.indicator_features])

    @property
    def training_mean(self) -> np.ndarray:
        """Mean of the transformed training rows: 0 for scaled features, missing rates after.

        Shape:
            (n_features + n_indicators,), float32.
        """
        return np.concatenate([np.zeros(len(self.feature_names)), self.missing_rates]).astype(
            np.float32
        )

    def impute(self, X: np.ndarray) -> np.ndarray:
        """Replace missing values by the training medians.

        Shape:
            X: (n_rows, n_features) -> (n_rows, n_features).
        """
        X = self._check(X)
        return np.where(np.isnan(X), self.medians, X)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Impute, standardise and append the missing indicators.

        Shape:
            X: (n_rows, n_features) -> (n_rows, n_features + n_indicators), float32.
        """
        X = self._check(X)
        scaled = (np.where(np.isnan(X), self.medians, X) - self.means) / self.stds
        indicators = np.isnan(X[:, self.indicator_features]).astype(np.float64)
        return np.concatenate([scaled, indicators], axis=1).astype(np.float32)

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected rows of {len(self.feature_names)} features "
                f"({', '.join(self.feature_names)}), got shape {X.shape}"
            )
        return X


def load_csv(
    path: Path,
    outcome: str,
    features: Sequence[str] | None = None,
    zero_is_missing: Sequence[str] = (),
    classes: Sequence[str] | None = None,
) -> TabularData:
    """Read a CSV with a header row: feature columns and one outcome column.

    Empty cells and ``NA``/``NaN`` mean "not measured". Outcome values become the classes, in
    sorted order unless ``classes`` gives them (then every outcome value must be one of them).

    Args:
        path: The CSV file.
        outcome: Name of the outcome column.
        features: Feature columns to use; all other columns when left out.
        zero_is_missing: Feature columns in which 0 means "not measured".
        classes: Class names in the order the model should use.

    Raises:
        ValueError: Naming the file and line when a column is absent or a cell is not a number.
    """
    path = Path(path)
    table = read_csv_cells(path)
    header, cells, lines = table.header, table.rows, table.lines
    if outcome not in header:
        raise ValueError(f"{path}: no outcome column {outcome!r}; columns are {header}")
    names = list(features) if features is not None else [h for h in header if h != outcome]
    unknown = [n for n in [*names, *zero_is_missing] if n not in header]
    if unknown:
        raise ValueError(f"{path}: no column(s) {unknown}; columns are {header}")
    columns = [header.index(n) for n in names]
    if not cells:
        raise ValueError(f"{path}: no data rows below the header")
    X, bad = read_number_table(cells, lines, columns, names)
    if bad:
        first = first_bad(bad, names)
        raise ValueError(f"{path}, line {first.row}: column {first.column!r} holds {_what(first)}")
    labels = [row[header.index(outcome)].strip() for row in cells]
    class_names = tuple(classes) if classes is not None else tuple(sorted(set(labels)))
    stray = sorted(set(labels) - set(class_names))
    if stray:
        raise ValueError(f"{path}: outcome values {stray} are not among classes {class_names}")
    for name in zero_is_missing:
        col = names.index(name)
        X[X[:, col] == 0, col] = np.nan
    y = np.asarray([class_names.index(v) for v in labels], dtype=np.int64)
    return TabularData(X=X, y=y, feature_names=tuple(names), classes=class_names, source=str(path))


def parse_number(text: str, where: str, column: str) -> float:
    """One CSV cell as a float, read as :func:`training.diagnosis.numbers.read_numbers` reads
    a column; empty, ``na``, ``nan`` or ``null`` mean missing (NaN). For a whole file use
    :func:`training.diagnosis.numbers.read_number_table`: pandas costs little per column and
    much per cell.

    Args:
        where: The cell's place for messages, e.g. ``"pima.csv, line 12"``.

    Raises:
        ValueError: the cell is neither a finite number nor a missing-value mark.
    """
    values, bad = read_numbers(pd.Series([text], dtype=object), column=column)
    if bad:
        raise ValueError(f"{where}: column {column!r} holds {_what(bad[0])}")
    return float(values.iloc[0])


def _what(bad: BadNumber) -> str:
    return f"{bad.text!r}, not a {'finite number' if bad.infinite else 'number'}"


_TYPE1 = re.compile(r"(type\s*[-_]?\s*(1|i)\b|\bt1d?m?\b|\biddm\b|\bjuvenile\b|\blada\b)")
_TYPE2 = re.compile(r"(type\s*[-_]?\s*(2|ii)\b|\bt2d?m?\b|\bniddm\b)")
# Long keys match anywhere in the squashed name ("C-peptide (nmol/L)" -> "cpeptidenmoll");
# short ones only as a whole word, optionally with digits ("GAD65"), to avoid chance hits.
_TYPE_FEATURES_LONG = (
    "cpeptide",
    "antibod",
    "znt8",
    "ageatonset",
    "ageofonset",
    "onsetage",
    "ageatdiagnosis",
    "ageofdiagnosis",
    "diagnosisage",
)
_TYPE_FEATURES_SHORT = re.compile(r"(gad|ia2|iaa|ica|gada)\d*")


def type_distinction_warning(classes: Sequence[str], feature_names: Sequence[str]) -> str | None:
    """Say when a model is asked to tell type 1 from type 2 diabetes without the features to.

    Glucose, BMI and the like do not separate the types; C-peptide, islet autoantibodies (GAD
    and others) or the age at onset do.

    Args:
        classes: Target class names.
        feature_names: Names of the model's input features.

    Returns:
        A sentence for the page, or ``None`` when no such warning applies.
    """
    lowered = [c.lower() for c in classes]
    has_t1 = any(_TYPE1.search(c) for c in lowered)
    has_t2 = any(_TYPE2.search(c) for c in lowered)
    if not (has_t1 and has_t2):
        return None
    for name in feature_names:
        words = re.findall(r"[a-z0-9]+", name.lower())
        squashed = "".join(words)
        if any(key in squashed for key in _TYPE_FEATURES_LONG) or any(
            _TYPE_FEATURES_SHORT.fullmatch(w) for w in words
        ):
            return None
    return (
        "This model cannot tell type 1 from type 2 diabetes apart: that needs C-peptide, islet "
        "autoantibodies (such as GAD) or the age at onset, and none of the features "
        f"({', '.join(feature_names)}) is one of those."
    )
