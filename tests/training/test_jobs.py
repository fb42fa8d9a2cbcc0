"""Tests for the job runner: states, progress, failures, cancel, one-at-a-time, zoo safety.

Targets live in tests/training/_job_targets.py and run in real child processes; every wait
polls the status file with a deadline.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dataset.roles import Actor
from model_zoo import ModelCard, Zoo
from training.cli import main as training_cli
from training.jobs import JobError, JobRunner, JobState, UnknownJobError

ROOT = Path(__file__).resolve().parents[2]
T = "tests.training._job_targets"
TIMEOUT = 60


@pytest.fixture
def runner(tmp_path: Path) -> JobRunner:
    return JobRunner(tmp_path / "ws")


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live, non-zombie process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def group_alive(pgid: int) -> bool:
    """Whether any live process is in process group ``pgid``."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def test_job_runs_to_done_with_progress_and_result(runner: JobRunner) -> None:
    job = runner.submit("test", f"{T}:count", {"epochs": 3})
    assert job.state == JobState.QUEUED
    seen = []
    final = runner.wait(job.job_id, on_progress=seen.append, timeout=TIMEOUT)
    assert final.state == JobState.DONE, final.log_tail
    assert final.result is not None
    assert final.result["answer"] == 42
    assert final.progress == {"epoch": 2, "loss": pytest.approx(1 / 3), "val_iou": 0.2}
    assert [point["epoch"] for point in final.history] == [0, 1, 2]
    assert all("t" in point for point in final.history)
    assert any(line.endswith("epoch 2 done") for line in final.log_tail)
    assert final.exit_code == 0
    assert final.error is None
    assert final.started_at <= final.finished_at
    assert seen[-1] == final
    assert [s.job_id for s in runner.list()] == [job.job_id]
    assert runner.log(job.job_id)[-1].endswith("job done")


def test_exception_fails_with_traceback_in_log(runner: JobRunner) -> None:
    job = runner.submit("test", f"{T}:boom")
    final = runner.wait(job.job_id, timeout=TIMEOUT)
    assert final.state == JobState.FAILED
    assert final.error == "ValueError: learning rate must be positive"
    log = "\n".join(final.log_tail)
    assert "Traceback (most recent call last)" in log
    assert "in boom" in log
    assert final.progress == {"step": 1}
    assert final.result is None


def test_killed_process_fails(runner: JobRunner) -> None:
    job = runner.submit("test", f"{T}:self_kill")
    final = runner.wait(job.job_id, timeout=TIMEOUT)
    assert final.state == JobState.FAILED
    assert "SIGKILL" in final.error
    assert final.exit_code == -9
    assert any("about to be killed" in line for line in final.log_tail)


def test_nan_loss_fails(runner: JobRunner) -> None:
    job = runner.submit("test", f"{T}:nan_loss")
    final = runner.wait(job.job_id, timeout=TIMEOUT)
    assert final.state == JobState.FAILED
    assert final.error.startswith("FloatingPointError: loss became nan")
    assert final.result is None
    assert final.progress["step"] == 1  # the diverged point is refused, the last good one kept


def test_non_dict_result_fails(runner: JobRunner) -> None:
    final = runner.wait(runner.submit("test", f"{T}:bad_result").job_id, timeout=TIMEOUT)
    assert final.state == JobState.FAILED
    assert "returned list" in final.error


def test_missing_target_fails_with_its_name(runner: JobRunner) -> None:
    final = runner.wait(runner.submit("test", f"{T}:no_such").job_id, timeout=TIMEOUT)
    assert final.state == JobState.FAILED
    assert "no_such" in final.error


@pytest.mark.parametrize("ignore_term", [False, True], ids=["sigterm", "sigkill-after-grace"])
def test_cancel_running_job_kills_its_process_group(runner: JobRunner, ignore_term: bool) -> None:
    # A long grace when SIGTERM suffices, so a slow machine never escalates to SIGKILL.
    grace = 0.3 if ignore_term else 30
    job = runner.submit(
        "test", f"{T}:loop_forever", {"ignore_term": ignore_term}, cancel_grace_s=grace
    )
    running = runner.wait(job.job_id, until=lambda s: "grandchild" in s.progress, timeout=TIMEOUT)
    grandchild, pgid = running.progress["grandchild"], running.progress["pgid"]
    assert running.state == JobState.RUNNING
    assert pgid == running.pid == running.pgid
    assert alive(grandchild)

    requested = runner.cancel(job.job_id, actor=Actor("tester", "admin"))
    assert requested.cancel_requested
    final = runner.wait(job.job_id, timeout=TIMEOUT)
    assert final.state == JobState.CANCELLED
    assert final.exit_code == (-9 if ignore_term else 128 + 15)
    assert not alive(grandchild)
    assert not group_alive(pgid)
    assert final.progress["step"] >= running.progress["step"]
    assert any("stopped by cancel" in line for line in final.log_tail) != ignore_term


@pytest.mark.parametrize("ignore_term", [False, True], ids=["sigterm", "sigkill-after-grace"])
def test_cancel_kills_a_grandchild_that_left_the_process_group(
    runner: JobRunner, ignore_term: bool
) -> None:
    grace = 0.3 if ignore_term else 30
    job = runner.submit(
        "test", f"{T}:detach_grandchild", {"ignore_term": ignore_term}, cancel_grace_s=grace
    )
    running = runner.wait(job.job_id, until=lambda s: "grandchild" in s.progress, timeout=TIMEOUT)
    grandchild = running.progress["grandchild"]
    assert running.progress["grandchild_pgid"] != running.pgid  # a killpg would miss it
    assert alive(grandchild)
    runner.cancel(job.job_id, actor=Actor("tester", "admin"))
    final = runner.wait(job.job_id, timeout=TIMEOUT)
    assert final.state == JobState.CANCELLED
    assert not alive(grandchild)


def test_job_that_ends_leaves_no_grandchild_outside_its_group(runner: JobRunner) -> None:
    job = runner.submit("test", f"{T}:detach_grandchild", {"return_now": True})
    final = runner.wait(job.job_id, timeout=TIMEOUT)
    assert final.state == JobState.DONE, final.log_tail
    assert final.result["grandchild_pgid"] != final.pgid
    assert not alive(final.result["grandchild"])


def test_cancel_queued_job_never_runs(runner: JobRunner) -> None:
    queued = runner.submit("test", f"{T}:count", start_worker=False)
    cancelled = runner.cancel(queued.job_id, actor=Actor("tester", "admin"))
    assert cancelled.state == JobState.CANCELLED
    assert cancelled.finished_at is not None
    later = runner.submit("test", f"{T}:count")
    assert runner.wait(later.job_id, timeout=TIMEOUT).state == JobState.DONE
    final = runner.get(queued.job_id)
    assert final.state == JobState.CANCELLED
    assert final.started_at is None
    # Cancelling a finished job changes nothing.
    assert runner.cancel(later.job_id, actor=Actor("tester", "admin")).state == JobState.DONE


def test_jobs_submitted_together_run_one_at_a_time(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    ids: list[str] = []

    def submit() -> None:  # each submitter is its own runner, as separate pages would be
        job = JobRunner(workspace).submit("test", f"{T}:count", {"epochs": 1, "hold_s": 0.3})
        ids.append(job.job_id)

    threads = [threading.Thread(target=submit) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runner = JobRunner(workspace)
    finals = [runner.wait(job_id, timeout=TIMEOUT) for job_id in ids]
    assert [f.state for f in finals] == [JobState.DONE] * 3
    spans = sorted((f.result["started"], f.result["ended"]) for f in finals)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start
    # Oldest first.
    by_start = sorted(finals, key=lambda f: f.started_at)
    assert [f.job_id for f in by_start] == [f.job_id for f in sorted(finals, key=_created)]


def _created(status):
    return (status.created_at, status.job_id)


def test_failed_or_cancelled_jobs_never_touch_the_zoo(runner: JobRunner) -> None:
    zoo = Zoo(runner.workspace)
    staging = zoo.staging_dir("segmentation")
    (staging / "config.json").write_text("{}")
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w": np.ones(1, dtype=np.float32)}, str(staging / "model.safetensors"))
    first = zoo.add("segmentation", staging, ModelCard(kind="segmentation", classes=["a", "b"]))

    failed = runner.wait(
        runner.submit("t", f"{T}:train_and_register", {"end": "fail"}).job_id, timeout=TIMEOUT
    )
    assert failed.state == JobState.FAILED
    assert not Path(failed.progress["staged"]).exists()  # its staging folder is cleaned up

    direct = runner.wait(runner.submit("t", f"{T}:train_then_add_directly").job_id, timeout=60)
    assert direct.state == JobState.FAILED
    assert "loss became inf" in direct.error

    waiting = runner.submit("t", f"{T}:train_and_register", {"end": "wait"})
    runner.wait(waiting.job_id, until=lambda s: s.progress.get("waiting"), timeout=TIMEOUT)
    runner.cancel(waiting.job_id, actor=Actor("tester", "admin"))
    assert runner.wait(waiting.job_id, timeout=TIMEOUT).state == JobState.CANCELLED

    assert [c.model_id for c in zoo.list()] == [first.model_id]
    assert zoo.current("segmentation").model_id == first.model_id
    assert [e.action for e in zoo.history("segmentation")] == ["add"]

    # The same target registers its model when it ends well (so the checks above can fail).
    ok = runner.wait(runner.submit("t", f"{T}:train_and_register").job_id, timeout=TIMEOUT)
    assert ok.state == JobState.DONE, ok.log_tail
    (model_id,) = ok.result["model_ids"]
    assert [c.model_id for c in zoo.list()] == [first.model_id, model_id]
    assert zoo.current("segmentation").model_id == first.model_id


def test_target_that_stops_on_ctx_cancelled_ends_cancelled_without_a_model(
    runner: JobRunner,
) -> None:
    job = runner.submit("t", f"{T}:cooperative_stop", cancel_grace_s=30)
    running = runner.wait(job.job_id, until=lambda s: "staged" in s.progress, timeout=TIMEOUT)
    runner.cancel(job.job_id, actor=Actor("tester", "admin"))
    final = runner.wait(job.job_id, timeout=TIMEOUT)
    assert final.state == JobState.CANCELLED
    assert final.exit_code == 128 + 15  # returned on its own, long before the SIGKILL
    assert final.result is None
    assert Zoo(runner.workspace).list() == []
    assert not Path(running.progress["staged"]).exists()


def test_job_outliving_a_killed_worker_is_adopted_and_can_be_cancelled(
    runner: JobRunner,
) -> None:
    # It ignores SIGTERM, so only the adopting worker's SIGKILL ends it.
    job = runner.submit("test", f"{T}:loop_forever", {"ignore_term": True}, cancel_grace_s=0.3)
    running = runner.wait(job.job_id, until=lambda s: "grandchild" in s.progress, timeout=TIMEOUT)
    worker_pid = int((runner.root / "worker.pid").read_text())
    os.kill(worker_pid, signal.SIGKILL)
    runner.wait(job.job_id, until=lambda s: not alive(worker_pid), timeout=TIMEOUT)
    assert runner.get(job.job_id).state == JobState.RUNNING  # its process still runs
    runner.cancel(job.job_id, actor=Actor("tester", "admin"))  # starts a worker that adopts the job
    final = runner.wait(job.job_id, timeout=TIMEOUT)
    assert final.state == JobState.CANCELLED
    assert any("adopted" in line for line in final.log_tail)
    assert not group_alive(running.pgid)
    assert not alive(running.progress["grandchild"])


def test_running_job_whose_process_vanished_is_failed(runner: JobRunner) -> None:
    job = runner.submit("test", f"{T}:count", start_worker=False)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    status_file = runner.root / job.job_id / "status.json"
    status = json.loads(status_file.read_text())
    status.update(state="running", pid=gone.pid, pgid=gone.pid)
    status_file.write_text(json.dumps(status))
    final = runner.get(job.job_id)
    assert final.state == JobState.FAILED
    assert "vanished" in final.error


def test_bad_requests_are_refused(runner: JobRunner) -> None:
    with pytest.raises(JobError, match=r"package\.module:function"):
        runner.submit("test", "tests/training/_job_targets.py")
    with pytest.raises(JobError, match="JSON"):
        runner.submit("test", f"{T}:count", {"lr": float("nan")})
    with pytest.raises(JobError, match="JSON"):
        runner.submit("test", f"{T}:count", {"path": Path("/tmp")})
    known = runner.submit("test", f"{T}:count", start_worker=False)
    with pytest.raises(UnknownJobError, match=known.job_id):
        runner.get("20250101-000000-nope")
    assert runner.list() == [runner.get(known.job_id)]


def test_cli_lists_shows_and_cancels(runner: JobRunner, capsys) -> None:
    queued = runner.submit("test", f"{T}:count", start_worker=False)
    ws = str(runner.workspace)
    assert training_cli(["jobs", "--workspace", ws]) == 0
    out = capsys.readouterr().out
    assert queued.job_id in out
    assert "queued" in out
    assert training_cli(["jobs", "--json", "--workspace", ws]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["job_id"], row["state"]) == (queued.job_id, "queued")
    assert training_cli(["jobs", queued.job_id, "--json", "--workspace", ws]) == 0
    assert json.loads(capsys.readouterr().out)["job_id"] == queued.job_id
    assert training_cli(["cancel", queued.job_id, "--workspace", ws]) == 0
    assert "cancelled" in capsys.readouterr().out
    assert training_cli(["cancel", queued.job_id, "--workspace", ws]) == 1
    assert "already cancelled" in capsys.readouterr().err
    assert training_cli(["cancel", "nope", "--workspace", ws, "--json"]) == 1
    error = json.loads(capsys.readouterr().err)
    assert error["exit_code"] == 1
    assert queued.job_id in error["error"]
    assert training_cli(["jobs", "nope", "--workspace", ws]) == 1
    assert "no job with id 'nope'" in capsys.readouterr().err
    assert training_cli(["jobs", "--limit", "many"]) == 2


def test_training_jobs_is_no_longer_a_second_command_line(runner: JobRunner) -> None:
    runner.submit("test", f"{T}:count", start_worker=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ws = str(runner.workspace)
    for _ in range(2):  # the same answer each time
        listed = subprocess.run(
            [sys.executable, "-m", "training", "jobs", "--json", "--workspace", ws],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert listed.returncode == 0, listed.stderr
        assert len(json.loads(listed.stdout)) == 1
    old = subprocess.run(
        [sys.executable, "-m", "training.jobs", "list", "--workspace", ws],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert old.returncode != 0
    assert "cannot be directly executed" in old.stderr


def test_importing_jobs_leaves_torch_and_streamlit_out() -> None:
    code = "import sys, training.jobs; print('torch' in sys.modules, 'streamlit' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "False"]


def test_a_job_that_chose_its_model_makes_it_current_only_after_it_ends_done(
    runner: JobRunner,
) -> None:
    zoo = Zoo(runner.workspace)
    first = runner.wait(runner.submit("t", f"{T}:train_and_register").job_id, timeout=TIMEOUT)
    (first_id,) = first.result["model_ids"]
    assert zoo.current("segmentation").model_id == first_id

    chosen = {"make_current": True, "compared_with": first_id}
    failed = runner.wait(
        runner.submit("t", f"{T}:train_and_register", {**chosen, "end": "fail"}).job_id,
        timeout=TIMEOUT,
    )
    assert failed.state == JobState.FAILED
    assert zoo.current("segmentation").model_id == first_id

    ok = runner.wait(runner.submit("t", f"{T}:train_and_register", chosen).job_id, timeout=TIMEOUT)
    assert ok.state == JobState.DONE, ok.log_tail
    (winner,) = ok.result["model_ids"]
    assert zoo.current("segmentation").model_id == winner
    assert zoo.rollback("segmentation").model_id == first_id  # the loser can come back

    lost = runner.wait(
        runner.submit("t", f"{T}:train_and_register", {"make_current": False}).job_id,
        timeout=TIMEOUT,
    )
    assert lost.state == JobState.DONE
    assert zoo.current("segmentation").model_id == first_id
    assert len(zoo.list("segmentation")) == 3  # every model stays in the zoo
