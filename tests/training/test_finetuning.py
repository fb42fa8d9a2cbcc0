"""Fine-tuning from a trained model: the start model's check, the update's settings, lineage on
the card, and ``python -m training segment --from`` (training.service.finetuning)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dataset.roles import Actor
from model_zoo import Zoo
from tests._segfixtures import TINY_CONFIG, JobCtx, make_workspace, train_tiny
from training import cli as training_cli
from training.jobs import JobRunner
from training.service import (
    UPDATE_BUDGET_MIN,
    StartModelError,
    resolve_start,
    segment_job,
    submit_training,
    submit_update,
    update_settings,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def parented(tmp_path_factory) -> Path:
    """A labelled workspace with a tiny current model."""
    ws = make_workspace(tmp_path_factory.mktemp("ft") / "ws")
    train_tiny(ws)
    return ws


@pytest.fixture
def ws(parented: Path, tmp_path: Path, monkeypatch) -> Path:
    """A fresh copy of it; no job worker is ever started."""
    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)
    monkeypatch.delenv("SMEARLAB_DEVICE", raising=False)
    return Path(shutil.copytree(parented, tmp_path / "ws"))


def _other_classes_model(ws: Path) -> str:
    """A copy of the current model whose card lists other classes."""
    zoo = Zoo(ws)
    current = zoo.current("segmentation")
    staging = zoo.staging_dir("segmentation")
    for name in ("config.json", "model.safetensors"):
        (staging / name).write_bytes((zoo.path(current.model_id) / name).read_bytes())
    update = {"model_id": "", "classes": ["background", "platelet"]}
    return zoo.add("segmentation", staging, current.model_copy(update=update)).model_id


def test_current_becomes_the_current_models_id_and_its_architecture(ws: Path) -> None:
    current = Zoo(ws).current("segmentation")
    resolved = resolve_start(ws, {"init_from": "current", "lr": 1e-4})
    assert resolved["init_from"] == current.model_id
    assert (resolved["encoder"], resolved["encoder_depth"]) == ("mobilenet_v2", 3)
    assert resolved["decoder_channels"] == (128, 64, 32)  # the tiny model's, from its config
    assert resolved["lr"] == 1e-4
    assert resolve_start(ws, {"lr": 1e-4}) == {"lr": 1e-4}


def test_a_start_model_that_does_not_fit_is_refused_with_the_reason(ws: Path, tmp_path) -> None:
    current = Zoo(ws).current("segmentation").model_id
    with pytest.raises(StartModelError, match="model seg-nope: no model with id 'seg-nope'"):
        resolve_start(ws, {"init_from": "seg-nope"})
    other = _other_classes_model(ws)
    with pytest.raises(
        StartModelError,
        match=f"model {other}: it predicts background, platelet but the workspace classes are "
        "background, leukocyte",
    ):
        resolve_start(ws, {"init_from": other})
    with pytest.raises(StartModelError, match=f"{current}: it was trained with encoder "):
        resolve_start(ws, {"init_from": "current", "encoder": "resnet18"})
    with pytest.raises(StartModelError, match="encoder_depth 3, not 5"):
        resolve_start(ws, {"init_from": current, "encoder_depth": 5})
    with pytest.raises(StartModelError, match=r"decoder_channels \(128, 64, 32\), not \(256"):
        resolve_start(ws, {"init_from": current, "decoder_channels": [256, 128, 64, 32, 16]})
    same = resolve_start(ws, {"init_from": current, "decoder_channels": [128, 64, 32, 16, 8]})
    assert same["decoder_channels"] == (128, 64, 32)  # the stages past the depth are unused
    empty = make_workspace(tmp_path / "empty", splits=("train", "validation"))
    with pytest.raises(
        StartModelError, match="the current model: there is no current segmentation"
    ):
        resolve_start(empty, {"init_from": "current"})


def test_a_refused_start_model_queues_nothing(ws: Path) -> None:
    other = _other_classes_model(ws)
    with pytest.raises(StartModelError):
        submit_training(ws, {"init_from": other}, actor=Actor("tester", "admin"))
    assert JobRunner(ws).list() == []


def test_an_update_is_the_parents_recipe_from_its_weights_for_a_short_budget(ws: Path) -> None:
    current = Zoo(ws).current("segmentation")
    settings = update_settings(ws)
    assert settings["init_from"] == current.model_id
    assert settings["time_budget_min"] == UPDATE_BUDGET_MIN == 3.0
    for key in ("patch_size", "batch_size", "steps_per_epoch", "seed", "encoder_depth"):
        assert settings[key] == TINY_CONFIG[key], key
    job_id = submit_update(ws, actor=Actor("tester", "admin"))
    spec = json.loads((ws / "jobs" / job_id / "spec.json").read_text())
    assert spec["params"]["config"]["init_from"] == current.model_id
    assert spec["params"]["config"]["time_budget_min"] == UPDATE_BUDGET_MIN


def test_the_job_trains_from_the_parent_and_its_card_names_it(ws: Path) -> None:
    """Weights: one step at a vanishing learning rate keeps the parent's parameters."""
    from training.model import load_segmentation_model

    zoo = Zoo(ws)
    parent = zoo.current("segmentation")
    config = {**update_settings(ws), "lr": 1e-12, "weight_decay": 0.0, "steps_per_epoch": 1}
    ctx = JobCtx(ws)
    segment_job(ctx, {"config": config, "rescore": False})
    (_, staging, card) = ctx.models[0]
    assert card.parent == parent.model_id
    assert card.settings["init_from"] == parent.model_id
    child = Zoo(ws).add("segmentation", staging, card, make_current=False)
    tuned, _ = load_segmentation_model(zoo, child.model_id)
    theirs, _ = load_segmentation_model(zoo, parent.model_id)
    ours = dict(tuned.named_parameters())
    assert all(torch.allclose(ours[k], p, atol=1e-6) for k, p in theirs.named_parameters())


def test_the_job_checks_the_start_model_again(ws: Path) -> None:
    """Queued earlier, started now: a start model that no longer fits is refused by the job."""
    other = _other_classes_model(ws)
    with pytest.raises(StartModelError, match=f"model {other}: it predicts background, platelet"):
        segment_job(JobCtx(ws), {"config": {**TINY_CONFIG, "init_from": other}})


# ------------------------------------------------------------------------------ CLI
def test_segment_from_queues_the_update_and_refuses_with_the_reason(ws: Path, capsys) -> None:
    current = Zoo(ws).current("segmentation").model_id

    def run(*argv: str) -> tuple[int, str]:
        code = training_cli.main(["segment", "--workspace", str(ws), *argv])
        return code, capsys.readouterr().err

    code, err = run("--from", "seg-nope")
    assert code == 1 and "Cannot fine-tune from model seg-nope: no model" in err, err
    code, err = run("--from", "current", "--encoder", "resnet18")
    assert code == 1 and f"model {current}: it was trained with encoder mobilenet_v2" in err
    code, err = run("--from", "")
    assert code == 2 and "--from" in err
    assert JobRunner(ws).list() == []
    assert training_cli.main(["segment", "--workspace", str(ws), "--from", "current",
                              "--time-budget-min", "1"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert (
        f"Fine-tuning model {current}, with its architecture (mobilenet_v2 encoder, depth 3, "
        "decoder [128, 64, 32])" in out
    )
    (job,) = JobRunner(ws).list()
    config = json.loads((ws / "jobs" / job.job_id / "spec.json").read_text())["params"]["config"]
    assert (config["init_from"], config["time_budget_min"]) == (current, 1.0)
    code, err = run("--from", current)
    assert code == 3 and "one training run at a time" in err


def test_segment_from_current_runs_as_a_command_and_records_the_parent(
    parented: Path, tmp_path: Path
) -> None:
    ws = Path(shutil.copytree(parented, tmp_path / "ws"))
    parent = Zoo(ws).current("segmentation").model_id
    argv = [sys.executable, "-m", "training", "segment", "--workspace", str(ws)]
    refused = subprocess.run(
        [*argv, "--from", "seg-nope"], capture_output=True, text=True, timeout=300
    )
    assert refused.returncode == 1, refused.stderr
    assert "model seg-nope" in refused.stderr
    done = subprocess.run(
        [*argv, "--from", "current", "--wait", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (model_id,) = json.loads(done.stdout)["result"]["model_ids"]
    assert Zoo(ws).get(model_id).parent == parent


# ------------------------------------------------------------------------------ automatic
def test_an_update_is_queued_after_every_n_new_labelled_tiles_when_on(ws: Path, capsys) -> None:
    import numpy as np

    from dataset.settings import set_workspace_setting
    from dataset.store import Store
    from training.service import auto_update

    store = Store.open(ws)
    off = auto_update(ws)
    assert (off.job_id, off.new_tiles) == (None, 0) and "off" in off.reason
    set_workspace_setting(ws, "auto_update_every", 2)
    labelled = set(store.labelled_tile_ids())
    fresh = [
        t
        for t in store.tiles()
        if t.tile_id not in labelled and store.split_of(t.smear_id) == "train"
    ]
    store.save_mask(fresh[0].tile_id, np.zeros((64, 64), np.uint8), annotator="t")
    early = auto_update(ws)
    assert (early.job_id, early.new_tiles, early.reason) == (
        None,
        1,
        "1 of 2 new labelled tiles so far",
    )
    store.save_mask(fresh[1].tile_id, np.zeros((64, 64), np.uint8), annotator="t")
    assert training_cli.main(["auto-update", "--workspace", str(ws), "--json"]) == 0
    queued = json.loads(capsys.readouterr().out)
    (job,) = JobRunner(ws).list()
    assert queued["job_id"] == job.job_id and queued["new_tiles"] == 2
    spec = json.loads((ws / "jobs" / job.job_id / "spec.json").read_text())
    assert spec["params"]["config"]["init_from"] == Zoo(ws).current("segmentation").model_id
    again = auto_update(ws)
    assert again.job_id is None and "one training run at a time" in again.reason
    assert len(JobRunner(ws).list()) == 1
