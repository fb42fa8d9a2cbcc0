"""One command-line convention (issue #10): the ``smearlab`` console script hands off to the
package CLIs, which share one exit-code table and report errors as JSON under ``--json``."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dataset import cli as dataset_cli
from dataset import cliutil
from training import console
from training.jobs import JobRunner

ROOT = Path(__file__).resolve().parents[1]
# What setuptools writes as the console script (see an installed .venv/bin/smearlab).
SCRIPT = "import sys\nfrom training.console import main\nsys.exit(main())\n"


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """Jobs stay queued: no worker process is ever started by these tests."""
    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)


def test_pyproject_names_the_console_entry_function() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["smearlab"] == "training.console:main"
    assert "setuptools" in project["build-system"]["build-backend"]


def test_every_cli_answers_with_the_one_exit_code_table(tmp_path: Path, capsys) -> None:
    assert cliutil.EXIT_CODES == {0: "success", 1: "input refused", 2: "usage error", 3: "conflict"}
    ws = str(tmp_path / "ws")
    usage = [["dataset", "frobnicate"], ["training", "frobnicate"], ["model_zoo", "frobnicate"]]
    usage.append(["training", "diagnosis", "frobnicate"])
    refused = [
        ["dataset", "skip", "no-such-tile"],
        ["training", "promote", "seg-nope"],
        ["model_zoo", "show", "seg-nope"],
        ["training", "diagnosis", "show", "P-0001"],
    ]
    for argv in usage:
        assert console.main([*argv, "--workspace", ws]) == cliutil.EXIT_USAGE, argv
    for argv in refused:
        assert console.main([*argv, "--workspace", ws]) == cliutil.EXIT_REFUSED, argv
    for argv in refused:  # under --json the error is one JSON document on stderr
        assert console.main([*argv, "--workspace", ws, "--json"]) == cliutil.EXIT_REFUSED
        error = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert error["exit_code"] == 1 and error["error"], argv


def test_smearlab_dispatches_to_each_package(tmp_path: Path, capsys) -> None:
    ws = str(tmp_path / "ws")
    assert console.main(["dataset", "stats", "--json", "--workspace", ws]) == 0
    assert json.loads(capsys.readouterr().out)["smears"] == 0
    assert console.main(["model_zoo", "list", "--json", "--workspace", ws]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert console.main(["model-zoo", "promote", "m", "--workspace", ws]) == 2
    assert "python -m training promote" in capsys.readouterr().err
    assert console.main(["training", "segment", "--epochs", "1", "--workspace", ws]) == 0
    assert console.main(["training", "segment", "--workspace", ws, "--json"]) == 3
    error = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert error["exit_code"] == 3 and "one training run at a time" in error["error"]
    assert console.main(["training", "frobnicate"]) == 2  # argparse's usage error
    capsys.readouterr()


def test_smearlab_refuses_an_unknown_package_with_the_list(capsys) -> None:
    assert console.main(["labels", "--json"]) == 2
    error = json.loads(capsys.readouterr().err)
    assert error == {
        "error": "unknown command 'labels'; choose from dataset, training, model_zoo",
        "exit_code": 2,
    }
    assert console.main([]) == 2
    assert "usage: smearlab" in capsys.readouterr().err


def test_errors_are_json_on_stderr_under_json(tmp_path: Path, capsys) -> None:
    ws = str(tmp_path / "ws")
    assert dataset_cli.main(["skip", "no-such-tile", "--workspace", ws, "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and json.loads(err)["exit_code"] == 1
    assert dataset_cli.main(["skip", "no-such-tile", "--workspace", ws]) == 1
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.parametrize("run", [1, 2])
def test_the_console_script_runs_as_a_process(tmp_path: Path, run: int) -> None:
    smearlab = ROOT / ".venv" / "bin" / "smearlab"
    command = [str(smearlab)] if smearlab.exists() else [sys.executable, "-c", SCRIPT]
    done = subprocess.run(
        [*command, "dataset", "stats", "--json", "--workspace", str(tmp_path / "ws")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tiles"] == 0


@pytest.mark.parametrize("place", ["before", "after"])
def test_workspace_and_json_are_taken_before_or_after_the_command(
    tmp_path: Path, place: str, capsys, monkeypatch
) -> None:
    """Every CLI (and ``smearlab`` in front of them) reads ``--workspace`` and ``--json`` on
    either side of the command; the settings' default workspace is never touched."""
    decoy = tmp_path / "default-ws"
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(decoy))
    ws = tmp_path / "ws"
    flags = ["--workspace", str(ws), "--json"]

    def run(*words: str, group: int = 1) -> object:
        """``words[:group]`` name the command (package and group), the rest its arguments."""
        head, tail = list(words[:group]), list(words[group:])
        argv = [*head, *flags, *tail] if place == "before" else [*head, *tail, *flags]
        code = console.main(argv)
        out, err = capsys.readouterr()
        assert code == 0, (argv, err)
        return json.loads(out)

    assert run("dataset", "stats")["workspace"] == str(ws)
    assert run("model_zoo", "list") == []
    assert JobRunner(ws).list() == []
    job = run("training", "segment", "--epochs", "1")["job_id"]
    assert [j["job_id"] for j in run("training", "jobs")] == [job]
    added = run("training", "diagnosis", "add-patient", "P-0001", group=2)
    assert added["patient"] == "P-0001"
    shown = run("training", "diagnosis", "show", "P-0001", group=2)
    assert "P-0001" in json.dumps(shown)
    # smearlab itself takes them before the package name and hands them on.
    assert console.main([*flags, "dataset", "stats"]) == 0
    assert json.loads(capsys.readouterr().out)["smears"] == 0
    assert not decoy.exists()
