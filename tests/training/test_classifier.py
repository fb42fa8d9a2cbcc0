"""Diagnosis classifier: learning, calibration, fold hygiene, checkpoints and explanations.

All data is synthetic and small; configs are cut down so the whole file runs in seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from training.diagnosis import crossval
from training.diagnosis.calibration import expected_calibration_error, fit_calibration
from training.diagnosis.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    card_fields,
    load_classifier,
    save_classifier,
)
from training.diagnosis.classifier import (
    ClassifierConfig,
    FittedClassifier,
    fit_classifier,
    stratified_kfold,
)
from training.diagnosis.crossval import (
    CVReport,
    classification_metrics,
    cross_validate,
    roc_auc,
)
from training.diagnosis.explain import explain, plot_explanation
from training.diagnosis.features import Preprocessor, TabularData, type_distinction_warning

FAST = {"max_epochs": 300, "patience": 30, "lr": 0.03, "inner_folds": 2}
NAMES = ("signal_a", "signal_b", "noise_c", "noise_d")
CLASSES = ("no diabetes", "diabetes")


def synthetic(n: int, seed: int, missing: float = 0.1) -> TabularData:
    """A linear-plus-interaction rule on two features, two pure-noise features, some NaNs."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    score = 2.0 * X[:, 0] - 1.5 * X[:, 1] + 0.8 * X[:, 0] * X[:, 1]
    y = (score + 0.3 * rng.normal(size=n) > 0).astype(np.int64)
    X[:, 2:][rng.random((n, 2)) < missing] = np.nan
    return TabularData(X=X, y=y, feature_names=NAMES, classes=CLASSES, source=f"synthetic {seed}")


@pytest.fixture(scope="module")
def train() -> TabularData:
    return synthetic(300, seed=1)


@pytest.fixture(scope="module")
def test_rows() -> TabularData:
    return synthetic(400, seed=2)


@pytest.fixture(scope="module")
def fitted(train: TabularData) -> dict[str, FittedClassifier]:
    return {
        model: fit_classifier(
            train.X, train.y, NAMES, CLASSES, ClassifierConfig(model=model, **FAST)
        )
        for model in ("mlp", "logreg")
    }


@pytest.mark.parametrize("model", ["mlp", "logreg"])
def test_learns_a_synthetic_rule_far_above_chance(
    fitted: dict[str, FittedClassifier], test_rows: TabularData, model: str
) -> None:
    proba = fitted[model].predict_proba(test_rows.X)
    metrics = classification_metrics(proba, test_rows.y)

    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert metrics["roc_auc"] > 0.95
    assert metrics["accuracy"] > 0.85  # chance is about 0.5 on this rule


def test_multiclass_softmax_beats_chance() -> None:
    rng = np.random.default_rng(3)
    centres = np.array([[0, 0], [3, 0], [0, 3]], dtype=float)
    y = rng.integers(0, 3, size=240)
    X = centres[y] + rng.normal(size=(240, 2))
    classes = ("healthy", "type 1 diabetes", "type 2 diabetes")
    model = fit_classifier(X[:180], y[:180], ("x", "z"), classes, ClassifierConfig(**FAST))
    proba = model.predict_proba(X[180:])

    assert proba.shape == (60, 3)
    assert np.mean(proba.argmax(axis=1) == y[180:]) > 0.8  # chance is 1/3
    assert model.calibration.bias.shape == (3,)


def test_same_seed_same_model(train: TabularData, test_rows: TabularData) -> None:
    config = ClassifierConfig(seed=7, **FAST)
    a = fit_classifier(train.X, train.y, NAMES, CLASSES, config)
    b = fit_classifier(train.X, train.y, NAMES, CLASSES, config)
    np.testing.assert_array_equal(a.predict_proba(test_rows.X), b.predict_proba(test_rows.X))


def test_too_few_rows_of_a_class_is_refused() -> None:
    X = np.arange(10, dtype=float)[:, None]
    y = np.array([0] * 9 + [1])
    with pytest.raises(ValueError, match=r"\['diabetes'\] have fewer than"):
        fit_classifier(X, y, ("x",), CLASSES, ClassifierConfig(**FAST))


@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_calibration_lowers_ece_of_overconfident_logits(method: str) -> None:
    rng = np.random.default_rng(4)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        true_logit = rng.normal(scale=1.5, size=n)
        y = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(np.int64)
        # Overconfident and shifted: the network's logits are 4x too large and biased.
        return np.stack([np.zeros(n), 4.0 * true_logit + 1.0], axis=1), y

    fit_logits, fit_y = sample(2000)
    test_logits, test_y = sample(4000)
    params = fit_calibration(fit_logits, fit_y, method)

    def proba(logits: np.ndarray) -> np.ndarray:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    calibrated = params.apply(torch.from_numpy(test_logits)).numpy()
    before = expected_calibration_error(proba(test_logits), test_y)
    after = expected_calibration_error(proba(calibrated), test_y)
    assert before > 0.1
    assert after < 0.04
    assert after < before / 3


def test_preprocessor_learns_from_training_rows_only() -> None:
    train = np.array([[1.0, np.nan], [3.0, 10.0], [5.0, 30.0], [np.nan, 20.0]])
    pre = Preprocessor.fit(train, ("a", "b"))
    np.testing.assert_array_equal(pre.medians, [3.0, 20.0])
    assert pre.output_names == ("a", "b", "a missing", "b missing")
    np.testing.assert_allclose(pre.missing_rates, [0.25, 0.25])

    # A far-out validation row changes nothing that was fitted, and is imputed by training medians.
    out = pre.transform(np.array([[np.nan, 1e6]]))
    np.testing.assert_allclose(out[0, 0], (3.0 - pre.means[0]) / pre.stds[0], rtol=1e-6)
    np.testing.assert_array_equal(out[0, 2:], [1.0, 0.0])


def test_cross_validation_fits_preprocessing_on_training_folds_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = synthetic(60, seed=5, missing=0.2)
    # Column 3 becomes a row id so each recorded matrix tells which rows it held.
    X = data.X.copy()
    X[:, 3] = np.arange(60) + 1000.0
    data = TabularData(X=X, y=data.y, feature_names=NAMES, classes=CLASSES)

    fitted_on: dict[int, set[int]] = {}
    scored: list[tuple[int, set[int]]] = []
    # Keep every preprocessor alive: a collected object's id() can be handed to a new one.
    keep_alive: list[Preprocessor] = []
    real_fit = Preprocessor.fit.__func__
    real_predict = FittedClassifier.predict_proba

    def spy_fit(cls, X, feature_names):
        pre = real_fit(cls, X, feature_names)
        rows = X[:, 3].astype(int) - 1000
        keep_alive.append(pre)
        fitted_on[id(pre)] = set(rows.tolist())
        # The medians are those of exactly these rows.
        np.testing.assert_array_equal(pre.medians[3], np.median(X[:, 3]))
        return pre

    def spy_predict(self, X):
        scored.append((id(self.preprocessor), set((X[:, 3].astype(int) - 1000).tolist())))
        return real_predict(self, X)

    monkeypatch.setattr(Preprocessor, "fit", classmethod(spy_fit))
    monkeypatch.setattr(FittedClassifier, "predict_proba", spy_predict)
    configs = {
        "mlp": ClassifierConfig(**{**FAST, "max_epochs": 20}),
        "logreg": ClassifierConfig(model="logreg", **{**FAST, "max_epochs": 20}),
    }
    report = cross_validate(data, configs, folds=3, repeats=2, seed=0)

    assert len(scored) == 2 * 3 * 2
    for pre_id, test_rows in scored:
        train_rows = fitted_on[pre_id]
        assert not train_rows & test_rows
        assert train_rows | test_rows == set(range(60))
    assert report.models["mlp"].metrics["roc_auc"].sd >= 0.0


def test_cross_validation_report() -> None:
    data = synthetic(90, seed=8)
    short = {**FAST, "max_epochs": 60}
    configs = {
        "mlp": ClassifierConfig(**short),
        "logreg": ClassifierConfig(model="logreg", **short),
    }
    report = cross_validate(data, configs, folds=3, repeats=2, seed=1)

    for name in ("mlp", "logreg"):
        model = report.models[name]
        assert set(model.metrics) == set(crossval.METRICS)
        assert len(model.metrics["roc_auc"].per_repeat) == 2
        assert model.metrics["roc_auc"].mean > 0.85
        assert np.isclose(np.sum(model.confusion_matrix), len(data.y))
        assert sum(b.count for b in model.reliability) == 2 * len(data.y)
    assert "± " in report.table()
    again = CVReport.model_validate_json(report.model_dump_json())
    assert again.models["mlp"].config == configs["mlp"]


def test_cross_validation_refuses_more_folds_than_rows_of_a_class() -> None:
    data = synthetic(40, seed=6)
    y = data.y.copy()
    y[:] = 0
    y[:3] = 1
    data = TabularData(X=data.X, y=y, feature_names=NAMES, classes=CLASSES)
    with pytest.raises(ValueError, match="'diabetes' has only 3 rows"):
        cross_validate(data, folds=5, repeats=1)


def test_metrics_on_known_cases() -> None:
    y = np.array([0, 0, 1, 1])
    perfect = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    assert roc_auc(perfect, y) == 1.0
    assert roc_auc(perfect[::-1], y) == 0.0
    assert roc_auc(np.full((4, 2), 0.5), y) == 0.5
    metrics = classification_metrics(perfect, y)
    assert metrics["accuracy"] == metrics["balanced_accuracy"] == 1.0
    np.testing.assert_allclose(metrics["brier"], np.mean([0.01, 0.04, 0.09, 0.01]))

    folds = stratified_kfold(np.array([0] * 20 + [1] * 10), 5, np.random.default_rng(0))
    for f in range(5):
        assert np.sum(folds[:20] == f) == 4 and np.sum(folds[20:] == f) == 2


@pytest.mark.parametrize("inner_folds", [1, 2])
def test_checkpoint_round_trip_predicts_the_same(
    tmp_path: Path, train: TabularData, test_rows: TabularData, inner_folds: int
) -> None:
    config = ClassifierConfig(**{**FAST, "inner_folds": inner_folds, "hidden": (8, 4)})
    model = fit_classifier(train.X, train.y, NAMES, CLASSES, config)
    save_classifier(model, tmp_path / "ckpt")
    loaded = load_classifier(tmp_path / "ckpt")

    assert (tmp_path / "ckpt" / WEIGHTS_FILE).is_file()
    meta = json.loads((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    assert meta["classes"] == list(CLASSES) and meta["config"]["hidden"] == [8, 4]
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded.preprocessor.medians, model.preprocessor.medians)
    np.testing.assert_array_equal(
        loaded.predict_proba(test_rows.X), model.predict_proba(test_rows.X)
    )


def test_load_refuses_what_is_not_a_checkpoint(tmp_path: Path, fitted) -> None:
    with pytest.raises(FileNotFoundError, match=r"config\.json is missing"):
        load_classifier(tmp_path)
    save_classifier(fitted["logreg"], tmp_path)
    meta = json.loads((tmp_path / CONFIG_FILE).read_text())
    meta["config"]["model"] = "mlp"  # the saved weights are a logistic regression
    (tmp_path / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not fit the configured network"):
        load_classifier(tmp_path)


def test_card_fields(fitted, train: TabularData) -> None:
    fields = card_fields(fitted["mlp"], train, target="synthetic rule", notes="Made-up data.")
    assert fields["classes"] == list(CLASSES)
    assert fields["settings"]["features"] == list(NAMES)
    assert fields["settings"]["target"] == "synthetic rule"
    assert fields["data"]["n_rows"] == 300 and len(fields["data"]["sha256"]) == 64
    assert fields["notes"] == "Made-up data."
    json.dumps(fields)


def test_explanation_sums_to_the_change_in_probability(fitted, test_rows: TabularData) -> None:
    model = fitted["mlp"]
    x = np.array([2.0, -2.0, 0.1, np.nan])
    expl = explain(model, x, target="diabetes")

    p = model.predict_proba(x[None, :])[0, 1]
    assert expl.probability == pytest.approx(p, abs=1e-5)
    assert expl.contributions.sum() == pytest.approx(
        expl.probability - expl.baseline_probability, abs=0.02
    )
    assert abs(expl.convergence_delta) < 0.02
    # The rule uses signal_a and signal_b; noise features must matter far less.
    ranked = [name for name, _ in expl.ranked()]
    assert set(ranked[:2]) == {"signal_a", "signal_b"}
    assert expl.contributions[0] > 0 and expl.contributions[1] > 0
    assert np.isnan(expl.values[3]) and expl.imputed[3] == model.preprocessor.medians[3]

    figure = plot_explanation(expl)
    assert len(figure.axes[0].patches) == len(NAMES)


def test_explain_works_under_inference_mode(fitted) -> None:
    with torch.inference_mode():
        expl = explain(fitted["logreg"], np.array([1.0, 0.0, 0.0, 0.0]))
    assert expl.target == "diabetes"


@pytest.mark.parametrize(
    ("classes", "features", "warns"),
    [
        (("no diabetes", "diabetes"), ("glucose",), False),
        (("healthy", "type 1 diabetes", "type 2 diabetes"), ("glucose", "BMI"), True),
        (("T1D", "T2D"), ("HbA1c",), True),
        (("Type I", "Type II"), ("glucose",), True),
        (("type 1", "type 2"), ("glucose", "C-peptide (nmol/L)"), False),
        (("type 1", "type 2"), ("GAD65",), False),
        (("type 1", "type 2"), ("Age at onset",), False),
        (("type 1", "type 2"), ("islet autoantibodies",), False),
    ],
)
def test_type_distinction_warning(classes, features, warns: bool) -> None:
    warning = type_distinction_warning(classes, features)
    assert (warning is not None) == warns
    if warns:
        assert "cannot tell type 1 from type 2" in warning


def test_importing_the_package_loads_neither_matplotlib_nor_streamlit() -> None:
    code = (
        "import sys; import training.diagnosis.checkpoint, training.diagnosis.explain, "
        "training.diagnosis.pima; "
        "print(sorted(m for m in ('matplotlib', 'streamlit') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"
