"""The Train and Suggestions pages show where jobs run (the ray_address setting), read-only,
and warn when the setting needs a Ray this machine does not have."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dataset.settings import set_workspace_setting
from tests._accounts import open_page
from tests._segfixtures import make_workspace
from training.jobs import JobRunner
from training.jobs.folder import read_spec

PAGES = [("pages/train.py", "admin"), ("pages/suggestions.py", "annotator")]


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)


def captions(at: AppTest) -> str:
    return "\n".join(str(c.value) for c in at.caption)


@pytest.mark.parametrize(("path", "role"), PAGES)
def test_without_ray_address_jobs_run_here(tmp_path: Path, monkeypatch, path, role) -> None:
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(make_workspace(tmp_path / "ws")))
    at = open_page(path, "tester", role, timeout=180)
    assert not at.exception, at.exception
    assert "Jobs run on this machine (ray_address is not set)." in captions(at)


@pytest.mark.parametrize(("path", "role"), PAGES)
def test_the_page_shows_the_workspace_ray_address(tmp_path: Path, monkeypatch, path, role):
    pytest.importorskip("ray")
    ws = make_workspace(tmp_path / "ws")
    set_workspace_setting(ws, "ray_address", "10.0.0.5:6379")
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(ws))
    at = open_page(path, "tester", role, timeout=180)
    assert not at.exception, at.exception
    assert "ray_address is 10.0.0.5:6379: training and scoring jobs hand their work" in captions(at)
    assert not any("requirements-ray" in str(w.value) for w in at.warning)


def test_an_address_without_ray_installed_is_a_warning(tmp_path: Path, monkeypatch) -> None:
    ws = make_workspace(tmp_path / "ws")
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(ws))
    monkeypatch.setenv("SMEARLAB_RAY_ADDRESS", "local")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    at = open_page("pages/suggestions.py", "tester", "annotator", timeout=180)
    assert not at.exception, at.exception
    assert "ray_address is local" in captions(at)
    assert any("pip install -r requirements-ray.txt" in str(w.value) for w in at.warning)


def test_the_train_page_asks_for_workers_only_where_jobs_go_to_ray(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    ws = make_workspace(tmp_path / "ws")
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(ws))
    at = open_page("pages/train.py", "tester", "admin", timeout=180)
    assert not at.exception, at.exception
    assert not [n for n in at.number_input if n.key == "train_workers"]
    set_workspace_setting(ws, "ray_address", "local")
    at = open_page("pages/train.py", "tester", "admin", timeout=180)
    assert at.number_input(key="train_workers").value == 1
    at.number_input(key="train_workers").set_value(2)
    next(b for b in at.button if b.label == "Train from scratch").click()
    at.run()
    assert not at.exception and not at.error, at.error
    (job,) = JobRunner(ws).list()
    assert read_spec(ws / "jobs" / job.job_id).params["config"]["workers"] == 2
