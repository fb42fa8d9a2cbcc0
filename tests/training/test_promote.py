"""Promote and roll back are rules of the training service (issue #10): the weights are loaded
and run before the pointer moves (issue #9), and a new current segmentation model queues
re-scoring, whether asked from the Train page or from ``python -m training``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataset.store import Store
from model_zoo import ModelCard, Zoo
from training import cli
from training.jobs import JobRunner
from training.kinds import SCORE
from training.model import build_model, check_checkpoint

CLASSES = ["background", "rbc", "wbc"]


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """Jobs stay queued: no worker process is ever started by these tests."""
    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)


def add_tiny(zoo: Zoo, classes: list[str] = CLASSES) -> ModelCard:
    staging = zoo.staging_dir("segmentation")
    build_model(len(classes), encoder="resnet18", encoder_depth=3).save_pretrained(str(staging))
    return zoo.add("segmentation", staging, ModelCard(kind="segmentation", classes=classes))


def scoring_jobs(workspace: Path) -> list[str]:
    return [j.job_id for j in JobRunner(workspace).list() if j.kind == SCORE]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_checkpoint_accepts_a_model_and_names_what_is_wrong(tmp_path: Path) -> None:
    zoo = Zoo(tmp_path / "ws")
    good = zoo.path(add_tiny(zoo).model_id)
    check_checkpoint(good, n_classes=3)
    with pytest.raises(ValueError, match=r"output of shape \(1, 3, \d+, \d+\) .* 4 classes"):
        check_checkpoint(good, n_classes=4)
    (good / "model.safetensors").write_bytes(b"\x00" * 100)  # truncated / overwritten
    with pytest.raises(ValueError, match=r"cannot be loaded \(SafetensorError"):
        check_checkpoint(good, n_classes=3)


def test_cli_promote_refuses_weights_that_do_not_load_and_keeps_the_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zoo = Zoo(tmp_path / "ws")
    ws = str(zoo.workspace)
    first = add_tiny(zoo)  # current: the first model of its kind
    broken = add_tiny(zoo)
    weights = zoo.path(broken.model_id) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, _, err = run_cli(capsys, "promote", broken.model_id, "--workspace", ws)
    err = err.splitlines()[-1]
    assert code == 1 and err.startswith("error: ") and "Traceback" not in err
    assert f"model {broken.model_id} was not promoted" in err and "cannot be loaded" in err
    assert zoo.current("segmentation").model_id == first.model_id
    assert scoring_jobs(zoo.workspace) == []  # a refused promotion queues nothing

    good = add_tiny(zoo)
    code, out, _ = run_cli(capsys, "promote", good.model_id, "--workspace", ws, "--json")
    assert code == 0
    assert zoo.current("segmentation").model_id == good.model_id
    payload = json.loads(out)
    assert payload["current"] == good.model_id and payload["previous"] == first.model_id
    assert scoring_jobs(zoo.workspace) == [payload["rescoring_job"]]


def test_cli_rollback_queues_rescoring_and_says_when_nothing_is_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zoo = Zoo(tmp_path / "ws")
    ws = str(zoo.workspace)
    first, second = add_tiny(zoo), add_tiny(zoo)
    zoo.promote(second.model_id)  # straight on the zoo: nothing queued yet
    assert scoring_jobs(zoo.workspace) == []
    code, out, _ = run_cli(capsys, "rollback", "--workspace", ws)
    assert code == 0 and f"{first.model_id} is current again" in out
    assert zoo.current("segmentation").model_id == first.model_id
    assert len(scoring_jobs(zoo.workspace)) == 1
    code, _, err = run_cli(capsys, "rollback", "--workspace", ws)
    assert code == 1 and "no earlier segmentation model" in err


def test_cli_promote_checks_the_workspace_class_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zoo = Zoo(tmp_path / "ws")
    Store.open(zoo.workspace).init(classes=CLASSES)
    add_tiny(zoo)
    other = add_tiny(zoo, ["background", "rbc"])
    code, _, err = run_cli(capsys, "promote", other.model_id, "--workspace", str(zoo.workspace))
    assert code == 1
    assert "['background', 'rbc', 'wbc']" in err and "['background', 'rbc']" in err
    code, _, err = run_cli(capsys, "promote", "seg-nope", "--workspace", str(zoo.workspace))
    assert code == 1 and "seg-nope" in err
