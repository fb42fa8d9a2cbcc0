"""Ray as a second engine (training/cluster): the address setting and its probe, and scoring
as a Ray Data job that agrees with the local scores.

One Ray instance serves the module (``ray.init(num_cpus=2)``, about 3 s to start); a job
process started by the job runner starts a Ray of its own, as it would for a lab.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from dataset.images import encode_png_lossless, smear_id_for
from dataset.roles import Actor
from dataset.settings import SettingsError, get_settings, set_workspace_setting
from dataset.store import NewSmear, Store
from tests._segfixtures import disc_smear, make_workspace, patient_in, train_tiny
from training.jobs import JobRunner, JobState
from training.jobs.process import pid_alive, session_members
from training.jobs.spec import JobCancelled
from training.kinds import SCORE
from training.service.models import load_model
from training.service.scoring import SCORE_TARGET, cached_scores, score_unlabelled

ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")

from training.cluster import (  # noqa: E402  (after the skip: these need Ray at run time)
    PROBE_TIMEOUT_S,
    ClusterUnreachable,
    RayUnavailable,
    probe,
    ray_session,
    stream_with_cancel,
)
from training.cluster.scoring import score_on_ray, tile_files  # noqa: E402

EXTRA_SMEARS = 8  # unlabelled smears of 4 tiles each, besides the fixture's


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def scored_workspace(tmp_path_factory) -> Path:
    """The tiny labelled workspace, a trained tiny model, and 32 more unlabelled tiles."""
    ws = make_workspace(tmp_path_factory.mktemp("cluster") / "ws")
    store = Store.open(ws)
    for i in range(EXTRA_SMEARS):
        img, _ = disc_smear(100 + i)
        store.add_smear(
            NewSmear(
                smear_id_for(img),
                encode_png_lossless(img),
                128,
                128,
                label=f"extra {i}",
                patient=patient_in("train"),
            )
        )
    train_tiny(ws)
    return ws


def _copy(ws: Path, tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(ws, tmp_path / name))


# --- the setting --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["local", "auto", "10.0.0.5:6379", "head.lab:6379"])
def test_ray_address_takes_local_auto_and_host_port(value: str, tmp_path: Path) -> None:
    assert set_workspace_setting(tmp_path, "ray_address", value) == value
    assert get_settings(workspace=tmp_path).ray_address == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("ray://head:10001", "Ray Client"),
        ("head", "not local, auto or host:port"),
        ("head:port", "not local, auto or host:port"),
        ("head:70000", "not local, auto or host:port"),
    ],
)
def test_ray_address_refuses_the_rest_with_the_reason(
    value: str, reason: str, tmp_path: Path
) -> None:
    with pytest.raises(SettingsError, match=reason):
        set_workspace_setting(tmp_path, "ray_address", value)
    assert get_settings(workspace=tmp_path).ray_address is None


def test_without_ray_the_setting_is_refused_with_the_install_command(
    tmp_path: Path, monkeypatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    with pytest.raises(SettingsError, match=r"pip install -r requirements-ray\.txt"):
        set_workspace_setting(tmp_path, "ray_address", "local")
    # Unsetting needs nothing installed.
    assert set_workspace_setting(tmp_path, "ray_address", None) is None
    # Set in the environment instead, the job refuses before it starts anything.
    with (
        pytest.raises(RayUnavailable, match=r"pip install -r requirements-ray\.txt"),
        ray_session("local"),
    ):
        pass


# --- the probe ----------------------------------------------------------------------------


def test_probe_fails_at_once_on_a_port_nobody_listens_on() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        started = time.monotonic()
        with pytest.raises(ClusterUnreachable, match=re.escape(f"{address} does not answer")):
            probe(address)
    assert time.monotonic() - started < 5


def test_probe_gives_up_after_five_seconds_on_an_address_that_never_answers() -> None:
    with socket.socket() as head, socket.socket() as first:
        head.bind(("127.0.0.1", 0))
        head.listen(0)  # one connection waits in the backlog; the next SYN is dropped
        address = f"127.0.0.1:{head.getsockname()[1]}"
        first.connect(head.getsockname())
        started = time.monotonic()
        with pytest.raises(ClusterUnreachable, match=re.escape(f"{address} does not answer")):
            probe(address)
        assert PROBE_TIMEOUT_S == 5
        assert 4.5 <= time.monotonic() - started < 10


def test_probe_passes_a_running_head_and_auto_finds_it(cluster) -> None:
    gcs = ray.get_runtime_context().gcs_address
    assert probe(gcs) == gcs
    assert probe("local") == "local"
    port = probe("auto").rpartition(":")[2]
    assert int(port) == int(gcs.rpartition(":")[2])


def test_a_scoring_job_with_an_unreachable_address_fails_with_the_reason(
    scored_workspace: Path, tmp_path: Path
) -> None:
    ws = _copy(scored_workspace, tmp_path, "ws")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
        set_workspace_setting(ws, "ray_address", address)
        runner = JobRunner(ws)
        job = runner.submit(SCORE, SCORE_TARGET, {"strategy": "entropy"})
        final = runner.wait(job.job_id, timeout=120)
    assert final.state == JobState.FAILED
    assert f"{address} does not answer" in final.error
    assert cached_scores(Store.open(ws), load_model(ws).model_id, "entropy") == {}


# --- scoring ------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["entropy", "margin"])
def test_ray_scores_equal_the_local_ones_and_rank_the_same(
    cluster, scored_workspace: Path, tmp_path: Path, strategy: str
) -> None:
    here, there = (
        _copy(scored_workspace, tmp_path, "here"),
        _copy(scored_workspace, tmp_path, "ray"),
    )
    n_here = score_unlabelled(Store.open(here), strategy, load_model(here))
    n_ray = score_unlabelled(Store.open(there), strategy, load_model(there), ray_address="local")
    assert n_here == n_ray >= 4 * EXTRA_SMEARS
    model_id = load_model(here).model_id
    local = cached_scores(Store.open(here), model_id, strategy)
    remote = cached_scores(Store.open(there), model_id, strategy)
    assert local.keys() == remote.keys()
    for tile_id, (smear, score, features) in local.items():
        assert remote[tile_id][0] == smear
        assert abs(remote[tile_id][1] - score) <= 1e-5
        np.testing.assert_allclose(remote[tile_id][2], features, atol=1e-5)

    def order(scores: dict) -> list[str]:
        return sorted(scores, key=lambda t: (-round(scores[t][1], 5), t))

    assert order(remote) == order(local)
    # Scored once: a second run finds every tile in the cache and asks Ray for nothing.
    assert (
        score_unlabelled(Store.open(there), strategy, load_model(there), ray_address="local") == 0
    )


def _every_tile_on_two_actors(ws: Path, **options) -> list:
    """Scores of every tile of ``ws`` from a pool of 2 actors; a run past 120 s (a deadlock)
    ends as a failure."""
    store = Store.open(ws)
    wanted = [t.tile_id for t in store.tiles()]
    deadline = time.monotonic() + 120
    return list(
        score_on_ray(
            store,
            "entropy",
            load_model(ws).model_id,
            tile_files(store, wanted)[0],
            wanted,
            actors=2,
            should_stop=lambda: time.monotonic() > deadline,
            **options,
        )
    )


def test_a_two_actor_pool_scores_every_tile_within_two_minutes(
    cluster, scored_workspace: Path
) -> None:
    store = Store.open(scored_workspace)
    wanted = [t.tile_id for t in store.tiles()]
    assert not tile_files(store, wanted)[1]  # every tile has its pixels stored
    scores = _every_tile_on_two_actors(scored_workspace)
    assert sorted(s.tile_id for s in scores) == sorted(wanted)
    assert all(0.0 <= s.score <= 1.0 for s in scores)


def test_a_cancel_marker_stops_the_wait_on_ray_within_one_poll() -> None:
    def never_ends():
        while True:
            time.sleep(0.05)
            yield from ()

    asked = time.monotonic() + 0.3
    started = time.monotonic()
    with pytest.raises(JobCancelled):
        list(stream_with_cancel(never_ends(), lambda: time.monotonic() > asked, poll_s=0.1))
    assert time.monotonic() - started < 2


def _scoring_job_on_local_ray(scored_workspace: Path, tmp_path: Path):
    """A copy of the workspace with ray_address=local, its runner and a queued scoring job."""
    ws = _copy(scored_workspace, tmp_path, "ws")
    set_workspace_setting(ws, "ray_address", "local")
    runner = JobRunner(ws)
    return ws, runner, runner.submit(SCORE, SCORE_TARGET, {"strategy": "entropy"})


def test_a_scoring_job_on_ray_reports_and_writes_like_a_local_one(
    scored_workspace: Path, tmp_path: Path
) -> None:
    ws, runner, job = _scoring_job_on_local_ray(scored_workspace, tmp_path)
    final = runner.wait(job.job_id, timeout=180)
    assert final.state == JobState.DONE, final.log_tail
    assert final.result["engine"] == "ray (local)"
    assert final.progress["step"] == final.progress["total"] == final.result["scored"]
    scored = cached_scores(Store.open(ws), load_model(ws).model_id, "entropy")
    assert len(scored) == final.result["scored"] >= 4 * EXTRA_SMEARS
    assert not session_members(final.pgid)  # Ray's processes ended with the job


def test_cancelling_a_scoring_job_on_ray_leaves_no_process_behind(
    scored_workspace: Path, tmp_path: Path
) -> None:
    _, runner, job = _scoring_job_on_local_ray(scored_workspace, tmp_path)
    running = runner.wait(
        job.job_id, until=lambda s: "Scoring on Ray" in "".join(s.log_tail or []), timeout=120
    )
    assert running.state == JobState.RUNNING
    deadline = time.monotonic() + 60
    while len(session_members(running.pgid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # Ray has started its first process beside the job's own
    seen = session_members(running.pgid)
    assert len(seen) >= 2, "Ray did not start its processes"
    runner.cancel(job.job_id, actor=Actor("tester", "admin"))
    final = runner.wait(job.job_id, timeout=120)
    assert final.state == JobState.CANCELLED
    assert not session_members(final.pgid)
    assert not any(pid_alive(p.pid) for p in seen)


def test_a_scoring_actor_that_dies_mid_run_is_replaced_and_the_scores_are_complete(
    cluster, scored_workspace: Path, tmp_path: Path
) -> None:
    from tests.training._ray_faults import DiesOnce

    ws = _copy(scored_workspace, tmp_path, "ws")
    store = Store.open(ws)
    loaded = load_model(ws)
    wanted = [t.tile_id for t in store.tiles()]
    scores = _every_tile_on_two_actors(ws, batch_size=2, scorer=DiesOnce)
    died = int((ws / "scorer-died").read_text())
    assert not pid_alive(died)
    assert sorted(s.tile_id for s in scores) == sorted(wanted)
    # Correct as well as complete: the same scores as the local path's.
    from training.service.scoring import _candidates, scoring_inference
    from training.strategies import iter_scores

    local = {
        s.tile_id: s.score
        for s in iter_scores(
            _candidates(store, wanted), "entropy", loaded.model, scoring_inference(loaded)
        )
    }
    assert all(abs(s.score - local[s.tile_id]) <= 1e-5 for s in scores)


# --- training -----------------------------------------------------------------------------


def _samples(ws: Path):
    from training.service import load_samples

    store = Store.open(ws)
    return load_samples(store, "train"), load_samples(store, "validation"), store.schema().names


def test_one_ray_worker_trains_exactly_as_this_process(
    cluster, scored_workspace: Path, tmp_path: Path
) -> None:
    import torch

    from tests._segfixtures import TINY_CONFIG
    from training.cluster.train import train_on_ray
    from training.segment import SegTrainConfig, train_segmentation

    train, val, classes = _samples(scored_workspace)
    config = SegTrainConfig(**{**TINY_CONFIG, "epochs": 2, "num_threads": 1})
    here = train_segmentation(train, val, classes, config)
    rows: list[dict] = []
    there = train_on_ray(
        train, val, classes, config, address="local", storage=tmp_path / "ray",
        on_progress=rows.append, out_dir=tmp_path / "model",
    )  # fmt: skip
    assert here.state_dict.keys() == there.result.state_dict.keys()
    assert all(torch.equal(here.state_dict[k], there.result.state_dict[k]) for k in here.state_dict)
    assert [r.val_miou for r in here.history] == [r.val_miou for r in there.result.history]
    # Rank 0's progress came back here, step by step and each validation.
    assert [r["phase"] for r in rows].count("validate") == len(here.history)
    assert sum(r["phase"] == "train" for r in rows) == sum(r.steps for r in here.history)
    assert (tmp_path / "model" / "model.safetensors").exists()
    assert there.workers == 1 and len(there.devices) == 1 and "cpu" in there.devices[0]


def test_two_ray_workers_end_with_the_same_weights(
    cluster, scored_workspace: Path, tmp_path: Path
) -> None:
    from tests._segfixtures import TINY_CONFIG
    from training.cluster.train import train_on_ray
    from training.segment import SegTrainConfig

    train, val, classes = _samples(scored_workspace)
    assert len(train) >= 2
    config = SegTrainConfig(**{**TINY_CONFIG, "workers": 2, "num_threads": 1})
    there = train_on_ray(train, val, classes, config, address="local", storage=tmp_path / "ray")
    assert there.workers == 2 and len(there.devices) == 2
    digests = there.result.replicas
    assert len(digests) == 2 and digests[0] == digests[1]
    assert there.result.n_train == sum(len(s.tiles) for s in train)  # both shards counted
    assert there.engine() == {
        "engine": "ray",
        "ray_address": "local",
        "workers": 2,
        "devices": list(there.devices),
    }


LONG_RUN = {"epochs": 100_000, "time_budget_min": 1.5, "patience": None}


def _train_job(ws: Path, **config) -> tuple[JobRunner, str]:
    from tests._segfixtures import TINY_CONFIG
    from training.service import submit_training

    set_workspace_setting(ws, "ray_address", "local")
    settings = {**TINY_CONFIG, "num_threads": 1, **config}
    job_id = submit_training(ws, settings, actor=Actor("tester", "admin"))
    return JobRunner(ws), job_id


def _zoo_ids(ws: Path) -> list[str]:
    from model_zoo import Zoo

    return [c.model_id for c in Zoo(ws).list("segmentation")]


def test_more_than_one_worker_without_ray_address_is_refused_before_queueing(
    tmp_path: Path,
) -> None:
    from training.cluster import WorkersNeedRay
    from training.service import submit_training

    ws = make_workspace(tmp_path / "ws")
    with pytest.raises(WorkersNeedRay, match="2 workers train on Ray, and ray_address is not set"):
        submit_training(ws, {"workers": 2}, actor=Actor("tester", "admin"))
    assert not (ws / "jobs").exists() or not any((ws / "jobs").iterdir())


def test_a_training_job_on_two_ray_workers_adds_a_model_that_names_them(
    scored_workspace: Path, tmp_path: Path
) -> None:
    ws = _copy(scored_workspace, tmp_path, "ws")
    before = _zoo_ids(ws)
    runner, job_id = _train_job(ws, workers=2)
    final = runner.wait(job_id, timeout=300)
    assert final.state == JobState.DONE, final.log_tail
    engine = final.result["engine"]
    assert engine["engine"] == "ray" and engine["workers"] == 2 and len(engine["devices"]) == 2
    assert final.progress["phase"] == "validate"  # rank 0's progress reached the job
    added = [m for m in _zoo_ids(ws) if m not in before]
    assert len(added) == 1
    from model_zoo import Zoo

    card = Zoo(ws).get(added[0])
    assert card.machine.startswith("ray (local), 2 worker(s): ")
    assert card.settings["workers"] == 2
    assert not session_members(final.pgid)


def _long_training_under_way(scored_workspace: Path, tmp_path: Path):
    """A copy of the workspace, its zoo's ids, and a 2-worker Ray training job 3 steps in."""
    ws = _copy(scored_workspace, tmp_path, "ws")
    before = _zoo_ids(ws)
    runner, job_id = _train_job(ws, workers=2, **LONG_RUN)
    running = runner.wait(job_id, until=lambda s: s.progress.get("run_step", 0) >= 3, timeout=240)
    assert running.state == JobState.RUNNING, running.log_tail
    return ws, before, runner, job_id, running


def test_cancelling_a_training_job_on_ray_keeps_the_zoo_and_leaves_no_process(
    scored_workspace: Path, tmp_path: Path
) -> None:
    ws, before, runner, job_id, running = _long_training_under_way(scored_workspace, tmp_path)
    seen = session_members(running.pgid)
    runner.cancel(job_id, actor=Actor("tester", "admin"))
    final = runner.wait(job_id, timeout=120)
    assert final.state == JobState.CANCELLED
    assert _zoo_ids(ws) == before
    assert not session_members(final.pgid)
    assert not any(pid_alive(p.pid) for p in seen)


def test_a_training_worker_killed_mid_run_fails_the_job_with_the_reason(
    scored_workspace: Path, tmp_path: Path
) -> None:
    import os
    import signal

    ws, before, runner, job_id, running = _long_training_under_way(scored_workspace, tmp_path)
    workers = [
        p for p in session_members(running.pgid) if "RayTrainWorker" in " ".join(p.cmdline())
    ]
    assert len(workers) == 2, [" ".join(p.cmdline())[:80] for p in session_members(running.pgid)]
    os.kill(workers[1].pid, signal.SIGKILL)
    final = runner.wait(job_id, timeout=180)
    assert final.state == JobState.FAILED
    assert "Training on Ray failed: worker 1 stopped answering" in final.error
    assert _zoo_ids(ws) == before
    assert not session_members(final.pgid)


def test_a_worker_never_asks_for_more_cpus_than_one_node_has() -> None:
    from training.cluster import RaySession
    from training.cluster.train import worker_threads
    from training.segment import SegTrainConfig

    two_nodes = RaySession("head:6379", cpus=32, gpus=0, owned=True, node_cpus=16)
    assert worker_threads(SegTrainConfig(workers=1), two_nodes) == 16
    assert worker_threads(SegTrainConfig(workers=4), two_nodes) == 8
    assert worker_threads(SegTrainConfig(workers=64), two_nodes) == 1
    assert worker_threads(SegTrainConfig(workers=2, num_threads=12), two_nodes) == 12
    with pytest.raises(ValueError, match="largest node of the Ray cluster at head:6379 has 16"):
        worker_threads(SegTrainConfig(num_threads=20), two_nodes)
