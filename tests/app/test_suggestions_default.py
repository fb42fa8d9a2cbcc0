"""The Suggestions page starts at the strategy the shipped active-learning measurement earned.

The measurement file is replaced by a fixture (``MEASUREMENT_PATH`` patched): one where margin
without diversity beat random beyond the seed spread, and a missing one. The page runs through
``app.py``'s navigation as in the app (see tests/app/test_model_pages.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests._accounts import open_page
from tests._segfixtures import make_workspace, train_tiny
from training.jobs import JobRunner
from training.service import measured
from training.service.measured import ArmResult, Measurement, write_measurement

ROOT = Path(__file__).resolve().parents[2]
SIZES = [20, 40, 80, 160]


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)


def _arm(name: str, curve: list[float], diffs: list[float]) -> ArmResult:
    strategy, _, diversity = name.partition("+")
    return ArmResult(
        arm=name,
        strategy=strategy,
        diversity=diversity or None,
        miou_mean=curve,
        miou_std=[0.01] * len(curve),
        tiles_for_95pct=80,
        white_cell_share=0.5,
        minus_random_per_seed=diffs,
    )


@pytest.fixture
def margin_wins(tmp_path: Path, monkeypatch) -> Path:
    path = write_measurement(
        Measurement(
            dataset="fixture smears",
            n_labelled=SIZES,
            seeds=4,
            pool_tiles=100,
            pool_white_cell_share=0.2,
            heldout="3 smears",
            reference_miou=0.8,
            reference="all pool",
            precision="fp32",
            protocol="fixture",
            command="none",
            measured_at="2026-12-01",
            arms=[
                _arm("random", [0.5, 0.6, 0.65, 0.7], []),
                _arm("random+per_smear", [0.5, 0.6, 0.66, 0.7], []),
                _arm("margin", [0.5, 0.7, 0.76, 0.78], [0.09, 0.1, 0.08, 0.09]),
            ],
        ),
        tmp_path / "active_learning.json",
    )
    monkeypatch.setattr(measured, "MEASUREMENT_PATH", path)
    return path


@pytest.fixture
def nothing_shipped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(measured, "MEASUREMENT_PATH", tmp_path / "absent.json")


def page(workspace: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(workspace))
    return open_page("pages/suggestions.py", "tester", "annotator", timeout=180)


def markdown(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.markdown)


def test_the_page_shows_the_measured_curve_and_why(tmp_path, margin_wins, monkeypatch) -> None:
    at = page(make_workspace(tmp_path / "ws"), monkeypatch)
    assert not at.exception, at.exception
    assert at.expander[0].label == "Why the default is margin"
    assert "margin scored best and beat random by +9.0 mIoU points" in markdown(at)
    assert len(at.get("vega_lite_chart")) == 1
    # Margin was measured without spreading, so the toggle starts off.
    assert at.toggle(key="sugg_spread").value is False


def test_without_a_measurement_the_page_says_so(tmp_path, nothing_shipped, monkeypatch) -> None:
    at = page(make_workspace(tmp_path / "ws"), monkeypatch)
    assert not at.exception, at.exception
    assert at.expander[0].label == "Why the default is random spread over smears"
    assert "No active-learning measurement has been shipped" in markdown(at)
    assert not at.get("vega_lite_chart")
    assert at.toggle(key="sugg_spread").value is True


@pytest.mark.slow
def test_with_a_model_the_strategy_starts_at_the_measured_one(
    tmp_path, margin_wins, monkeypatch
) -> None:
    ws = make_workspace(tmp_path / "ws")
    train_tiny(ws)
    at = page(ws, monkeypatch)
    assert not at.exception, at.exception
    assert at.selectbox(key="sugg_strategy").value == "margin"
    assert "The default, margin, is what the shipped measurement supports" in (
        at.selectbox(key="sugg_strategy").help
    )


@pytest.mark.slow
def test_with_a_model_and_no_measurement_random_comes_first(
    tmp_path, nothing_shipped, monkeypatch
) -> None:
    ws = make_workspace(tmp_path / "ws")
    train_tiny(ws)
    at = page(ws, monkeypatch)
    assert not at.exception, at.exception
    assert at.selectbox(key="sugg_strategy").value == "random"
    assert at.toggle(key="sugg_spread").value is True
