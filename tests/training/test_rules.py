"""Rules the Train page and ``python -m training`` share (issue #10): which device a run
uses, and one training run at a time."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from dataset.roles import Actor
from training import cli
from training.jobs import JobRunner, JobSpec
from training.kinds import JOB_KINDS, SCORE, TRAIN_SEGMENTATION
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
    JobRunner(tmp_path).cancel(job_id, actor=Actor("tester", "admin"))
    code = cli.main(["segment", "--device", "cpu", "--workspace", str(tmp_path), "--json"])
    assert code == 0
    assert queued_device(tmp_path, json.loads(capsys.readouterr().out)["job_id"]) == "cpu"


def test_a_second_training_run_is_refused_while_one_is_queued(tmp_path: Path, capsys) -> None:
    first = submit_training(tmp_path, {"epochs": 1}, actor=Actor("tester", "admin"))
    with pytest.raises(RunConflictError, match=f"{first} is already queued"):
        submit_training(tmp_path, {"epochs": 1}, actor=Actor("tester", "admin"))
    assert cli.main(["segment", "--workspace", str(tmp_path)]) == 3
    assert "one training run at a time" in capsys.readouterr().err
    assert [j.job_id for j in JobRunner(tmp_path).list()] == [first]
    JobRunner(tmp_path).cancel(
        first, actor=Actor("tester", "admin")
    )  # a cancelled run frees the slot
    second = submit_training(tmp_path, {"epochs": 1}, actor=Actor("tester", "admin"))
    assert second != first


def test_two_runs_submitted_at_the_same_moment_queue_one(tmp_path: Path, monkeypatch) -> None:
    """The slot check and the submit are one step: a second submit that checks while the
    first is between its check and its submit must wait, then find the slot taken."""
    import threading

    from training.service import runs

    check = runs.active_training
    first_checked, second_checked = threading.Event(), threading.Event()

    def racing_check(workspace):
        found = check(workspace)
        if threading.current_thread().name == "first":
            first_checked.set()
            second_checked.wait(timeout=1.0)  # without the lock the second checks meanwhile
        else:
            second_checked.set()
        return found

    monkeypatch.setattr(runs, "active_training", racing_check)
    outcomes: dict[str, object] = {}

    def submit(name: str) -> None:
        try:
            outcomes[name] = submit_training(
                tmp_path, {"epochs": 1}, actor=Actor("tester", "admin")
            )
        except RunConflictError as exc:
            outcomes[name] = exc

    first = threading.Thread(target=submit, args=("first",), name="first")
    first.start()
    assert first_checked.wait(timeout=30)
    second = threading.Thread(target=submit, args=("second",), name="second")
    second.start()
    first.join(timeout=60)
    second.join(timeout=60)
    assert isinstance(outcomes["first"], str)
    assert isinstance(outcomes["second"], RunConflictError)
    assert [j.job_id for j in JobRunner(tmp_path).list()] == [outcomes["first"]]


def test_every_job_kind_names_a_target_that_exists() -> None:
    import importlib

    from training.kinds import target_of

    for kind, target in JOB_KINDS.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), kind
    with pytest.raises(KeyError, match="the kinds are: train-segmentation, score"):
        target_of("train")


def _kind_literals(path: Path, kinds: set[str], targets: set[str]) -> list[str]:
    """Job kinds and ``module:function`` targets spelled as literals in one file.

    ``score`` is also a column name, so that kind counts only where a kind is meant: compared
    with a ``.kind`` or passed as the kind of ``submit(...)``.
    """
    functions = "|".join(sorted({t.split(":")[1] for t in targets}))
    # Any spelling of a target's module (an old one too) with one of the targets' functions.
    spelled = re.compile(rf"training(\.\w+)+:({functions})")
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if (text in kinds and text != SCORE) or spelled.fullmatch(text):
                found.append(f"line {node.lineno}: {text!r}")
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Attribute) and s.attr == "kind" for s in sides) and any(
                isinstance(s, ast.Constant) and s.value in kinds for s in sides
            ):
                found.append(f"line {node.lineno}: .kind compared with a literal")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "submit"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in kinds
        ):
            found.append(f"line {node.lineno}: submit({node.args[0].value!r}, ...)")
    return found


def test_job_kinds_are_spelled_only_in_the_table() -> None:
    """A kind or a job target written as a literal anywhere but the table (the code, the pages,
    the benchmarks and the tests) would drift from it."""
    root = Path(__file__).resolve().parents[2]
    files = [root / "app.py"] + [
        path
        for folder in ("training", "pages", "dataset", "model_zoo", "bench", "tests")
        for path in sorted((root / folder).rglob("*.py"))
        if path.name != "kinds.py"
    ]
    found = [
        f"{path.relative_to(root)} {hit}"
        for path in files
        for hit in _kind_literals(path, set(JOB_KINDS), set(JOB_KINDS.values()))
    ]
    assert found == []


def test_the_kind_literal_finder_sees_each_way_of_spelling_a_kind(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "a = 'train-segmentation'\n"
        "b = 'training.service:segment_job'\n"
        "c = status.kind == 'score'\n"
        "runner.submit('score', target)\n"
        "d = row['score']\n"
        "e = 'the training.service:segment_job target'\n"
    )
    hits = _kind_literals(module, {TRAIN_SEGMENTATION, SCORE}, {JOB_KINDS[TRAIN_SEGMENTATION]})
    assert sorted(h.split(":")[0] for h in hits) == ["line 1", "line 2", "line 3", "line 4"]


def test_submitted_jobs_use_the_tables_targets(tmp_path: Path) -> None:
    from training.service import submit_scoring

    for job_id in (
        submit_training(tmp_path, {"epochs": 1}, actor=Actor("tester", "admin")),
        submit_scoring(tmp_path, "random"),
    ):
        spec = JobSpec.model_validate_json((tmp_path / "jobs" / job_id / "spec.json").read_text())
        assert spec.kind in (TRAIN_SEGMENTATION, SCORE)
        assert spec.target == JOB_KINDS[spec.kind]
