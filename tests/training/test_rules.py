"""Rules the Train page and ``python -m training`` share (issue #10): which device a run
uses, and one training run at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import cli
from training.jobs import JobRunner, JobSpec
from training.service import RunConflictError, submit_training, training_device


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """Jobs stay queued: no worker process is ever started by these tests."""
    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)


def queued_device(workspace: Path, job_id: str) -> str:
    spec = JobSpec.model_validate_json((workspace / "jobs" / job_id / "spec.json").read_text())
    return spec.params["config"]["device"]


def test_the_device_flag_wins_over_the_setting(monkeypatch) -> None:
    monkeypatch.setenv("SMEARLAB_DEVICE", "cuda")
    assert training_device() == "cuda"
    assert training_device("cpu") == "cpu"
    monkeypatch.delenv("SMEARLAB_DEVICE")
    assert training_device() == "cpu"


def test_cli_segment_trains_on_the_device_setting(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SMEARLAB_DEVICE", "cuda")
    code = cli.main(["segment", "--epochs", "1", "--workspace", str(tmp_path), "--json"])
    assert code == 0
    job_id = json.loads(capsys.readouterr().out)["job_id"]
    assert queued_device(tmp_path, job_id) == "cuda"
    JobRunner(tmp_path).cancel(job_id)
    code = cli.main(["segment", "--device", "cpu", "--workspace", str(tmp_path), "--json"])
    assert code == 0
    assert queued_device(tmp_path, json.loads(capsys.readouterr().out)["job_id"]) == "cpu"


def test_a_second_training_run_is_refused_while_one_is_queued(tmp_path: Path, capsys) -> None:
    first = submit_training(tmp_path, {"epochs": 1})
    with pytest.raises(RunConflictError, match=f"{first} is already queued"):
        submit_training(tmp_path, {"epochs": 1})
    assert cli.main(["segment", "--workspace", str(tmp_path)]) == 3
    assert "one training run at a time" in capsys.readouterr().err
    assert [j.job_id for j in JobRunner(tmp_path).list()] == [first]
    JobRunner(tmp_path).cancel(first)  # a cancelled run frees the slot
    second = submit_training(tmp_path, {"epochs": 1})
    assert second != first
