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


def test_every_job_kind_names_a_target_that_exists() -> None:
    import importlib

    from training.kinds import JOB_KINDS, target_of

    for kind, target in JOB_KINDS.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), kind
    with pytest.raises(KeyError, match="the kinds are: train-segmentation, score"):
        target_of("train")


def test_job_kinds_are_spelled_only_in_the_table() -> None:
    """A kind written as a literal elsewhere would drift from the table (``score`` is left out:
    it is also a column name)."""
    from training.kinds import JOB_KINDS

    root = Path(__file__).resolve().parents[2]
    found = [
        f"{path.relative_to(root)}: {kind}"
        for folder in ("training", "pages", "dataset", "model_zoo")
        for path in sorted((root / folder).rglob("*.py"))
        if path.name != "kinds.py"
        for kind in JOB_KINDS
        if f'"{kind}"' in path.read_text(encoding="utf-8") and kind != "score"
    ]
    assert found == []


def test_submitted_jobs_use_the_tables_targets(tmp_path: Path) -> None:
    from training.kinds import JOB_KINDS, SCORE, TRAIN_SEGMENTATION
    from training.service import submit_scoring

    for job_id in (submit_training(tmp_path, {"epochs": 1}), submit_scoring(tmp_path, "random")):
        spec = JobSpec.model_validate_json((tmp_path / "jobs" / job_id / "spec.json").read_text())
        assert spec.kind in (TRAIN_SEGMENTATION, SCORE)
        assert spec.target == JOB_KINDS[spec.kind]
