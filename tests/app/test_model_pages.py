"""Wiring of the Train, Suggestions and Analysis pages (AppTest; the logic has its own tests).

Each page must run without an exception on an empty workspace and on one with a tiny trained
model; Start must queue a training job; the buttons must reach the job runner and the zoo.
Pages run through ``app.py``'s navigation (``switch_page``) as in the app: AppTest would put
``pages/`` first on ``sys.path`` for a page file run alone, where ``pages/dataset.py``
shadows the ``dataset`` package. Job workers are never started: ``ensure_worker`` is stubbed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dataset.images import encode_png_lossless, smear_id_for
from dataset.roles import Actor
from dataset.store import NewSmear, Store
from model_zoo import Zoo
from tests._accounts import open_page
from tests._segfixtures import CLASSES, disc_smear, make_workspace, train_tiny
from training.jobs import JobRunner, JobState
from training.kinds import JOB_KINDS, SCORE, TRAIN_SEGMENTATION

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("pages/train.py", "pages/suggestions.py", "pages/analysis.py")


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A workspace with a tiny current model (64x64 tiles, encoder depth 3, one epoch)."""
    ws = make_workspace(tmp_path_factory.mktemp("trained"))
    train_tiny(ws)
    return ws


@pytest.fixture
def trained_ws(trained: Path, tmp_path: Path) -> Path:
    """A fresh copy of the trained workspace, so pages' writes never leak between tests."""
    return Path(shutil.copytree(trained, tmp_path / "trained_ws"))


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """Jobs stay queued: no worker process is ever started by a test."""
    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)


def page(workspace: Path, path: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(workspace))
    return open_page(path, timeout=120)


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("error", "warning", "info", "success") for e in getattr(at, kind)]
    parts += [e.value for e in at.markdown] + [e.value for e in at.caption]
    return "\n".join(str(p) for p in parts)


# ------------------------------------------------------------------------------ empty
@pytest.mark.parametrize("path", PAGES)
def test_pages_run_on_an_empty_workspace(tmp_path: Path, path: str, monkeypatch) -> None:
    at = page(tmp_path / "ws", path, monkeypatch)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_train_refuses_without_train_or_validation_tiles(tmp_path: Path, monkeypatch) -> None:
    ws = make_workspace(tmp_path / "ws", splits=("train", "test"))
    at = page(ws, "pages/train.py", monkeypatch)
    assert not at.exception
    assert any("validation split" in e.value for e in at.warning)
    start = next(b for b in at.button if b.label == "Train from scratch")
    assert start.disabled
    assert [m.value for m in at.metric] == ["3", "0", "3"]


def test_suggestions_without_a_model_offer_random_only(tmp_path: Path, monkeypatch) -> None:
    ws = make_workspace(tmp_path / "ws")
    at = page(ws, "pages/suggestions.py", monkeypatch)
    assert not at.exception
    assert at.selectbox(key="sugg_strategy").options == ["random: " + _random_description()]
    assert "need a trained segmentation model" in texts(at)


def test_analysis_without_a_model_counts_saved_labels(tmp_path: Path, monkeypatch) -> None:
    ws = make_workspace(tmp_path / "ws")
    at = page(ws, "pages/analysis.py", monkeypatch)
    assert not at.exception
    assert "No trained model yet" in texts(at)
    assert "glucose is not visible" in texts(at)
    table = at.dataframe[0].value
    assert list(table["class"]) == CLASSES
    assert table.loc[1, "cells"] > 0
    assert at.get("download_button")


def _random_description() -> str:
    from training.strategies import STRATEGIES

    return STRATEGIES["random"].description


# ------------------------------------------------------------------------------ start
def test_start_queues_a_training_job(tmp_path: Path, monkeypatch) -> None:
    ws = make_workspace(tmp_path / "ws")
    at = page(ws, "pages/train.py", monkeypatch)
    assert not at.exception and not at.error
    at.number_input[0].set_value(2)  # epochs
    next(b for b in at.button if b.label == "Train from scratch").click()
    at.run()
    assert not at.exception, at.exception
    jobs = JobRunner(ws).list()
    assert [j.kind for j in jobs] == [TRAIN_SEGMENTATION]
    assert jobs[0].state == JobState.QUEUED
    assert at.session_state["train_job_id"] == jobs[0].job_id
    spec = (ws / "jobs" / jobs[0].job_id / "spec.json").read_text()
    assert '"epochs": 2' in spec
    # The running job blocks a second start, and the panel offers Cancel.
    assert next(b for b in at.button if b.label == "Train from scratch").disabled
    next(b for b in at.button if b.label == "Cancel").click()
    at.run()
    assert JobRunner(ws).get(jobs[0].job_id).state == JobState.CANCELLED


def test_start_shows_the_refusal_when_another_run_was_queued_meanwhile(
    tmp_path: Path, monkeypatch
) -> None:
    """One run at a time is the service's rule: with a run queued from another tab or the
    command line after the page was drawn, Start queues nothing and the page gives the
    service's reason."""
    from training.service import submit_training

    ws = make_workspace(tmp_path / "ws")
    at = page(ws, "pages/train.py", monkeypatch)
    other = submit_training(
        ws, {"epochs": 1}, actor=Actor("tester", "admin")
    )  # e.g. python -m training segment
    next(b for b in at.button if b.label == "Train from scratch").click()
    at.run()
    assert not at.exception, at.exception
    shown = " ".join(e.value for e in at.error) + " ".join(i.value for i in at.info)
    assert f"{other} is already queued; one training run at a time" in shown, shown
    assert [j.job_id for j in JobRunner(ws).list()] == [other]


def test_update_is_disabled_with_the_reason_while_no_model_is_current(
    tmp_path: Path, monkeypatch
) -> None:
    ws = make_workspace(tmp_path / "ws")
    at = page(ws, "pages/train.py", monkeypatch)
    assert not at.exception, at.exception
    assert at.button(key="train_update").disabled
    assert "there is no current segmentation model yet" in texts(at)
    assert not next(b for b in at.button if b.label == "Train from scratch").disabled


def test_update_queues_a_fine_tune_of_the_current_model(trained_ws: Path, monkeypatch) -> None:
    from training.service import UPDATE_BUDGET_MIN

    current = Zoo(trained_ws).current("segmentation").model_id
    at = page(trained_ws, "pages/train.py", monkeypatch)
    assert not at.exception, at.exception
    assert f"Fine-tunes model {current}" in texts(at)
    table = at.dataframe[0].value
    assert table.loc[table["model"] == current, "parent"].tolist() == ["-"]
    at.button(key="train_update").click()
    at.run()
    assert not at.exception, at.exception
    (job,) = JobRunner(trained_ws).list()
    assert job.kind == TRAIN_SEGMENTATION and at.session_state["train_job_id"] == job.job_id
    spec = (trained_ws / "jobs" / job.job_id / "spec.json").read_text()
    assert f'"init_from": "{current}"' in spec
    assert f'"time_budget_min": {UPDATE_BUDGET_MIN}' in spec
    # One run at a time holds for both buttons.
    assert at.button(key="train_update").disabled
    assert next(b for b in at.button if b.label == "Train from scratch").disabled
    assert f"{job.job_id} is already queued" in texts(at)


def test_update_shows_the_refusal_when_a_run_was_queued_meanwhile(
    trained_ws: Path, monkeypatch
) -> None:
    from training.service import submit_training

    at = page(trained_ws, "pages/train.py", monkeypatch)
    other = submit_training(trained_ws, {"epochs": 1}, actor=Actor("tester", "admin"))
    at.button(key="train_update").click()
    at.run()
    assert not at.exception, at.exception
    assert f"{other} is already queued; one training run at a time" in texts(at)
    assert at.button(key="train_update").disabled
    assert [j.job_id for j in JobRunner(trained_ws).list()] == [other]


def test_train_panel_draws_curves_from_job_history(tmp_path: Path, monkeypatch) -> None:
    from training.jobs.folder import update_status as _update_status

    ws = make_workspace(tmp_path / "ws")
    runner = JobRunner(ws)
    job = runner.submit(TRAIN_SEGMENTATION, JOB_KINDS[TRAIN_SEGMENTATION], {})
    history = [
        {"t": 0.1, "phase": "train", "epoch": 1, "epochs": 2, "step": 1, "steps": 2, "loss": 0.9},
        {"t": 0.2, "phase": "train", "epoch": 1, "epochs": 2, "step": 2, "steps": 2, "loss": 0.7},
        {"t": 0.3, "phase": "validate", "epoch": 1, "epochs": 2, "val_loss": 0.8,
         "val_miou": 0.9, "best_miou": 0.9, "best_epoch": 1,
         "val_iou": {"background": 0.9, "leukocyte": None}, "val_absent": ["leukocyte"]},
    ]  # fmt: skip

    def failed(status) -> None:
        status.state, status.error, status.history = JobState.FAILED, "boom: disk full", history
        status.progress = history[-1]

    _update_status(ws / "jobs" / job.job_id, failed)
    at = page(ws, "pages/train.py", monkeypatch)
    assert not at.exception
    assert any("boom: disk full" in e.value for e in at.error)
    charts = at.get("vega_lite_chart")
    assert len(charts) == 2
    assert "No labelled pixels of leukocyte in the validation tiles" in texts(at)


def test_train_panel_says_why_the_run_did_not_become_current(tmp_path: Path, monkeypatch) -> None:
    from training.jobs.folder import update_status as _update_status
    from training.metrics import confusion_matrix, metrics_from_confusion
    from training.service import choose

    ws = make_workspace(tmp_path / "ws")
    runner = JobRunner(ws)
    job = runner.submit(TRAIN_SEGMENTATION, JOB_KINDS[TRAIN_SEGMENTATION], {})
    truth = np.array([[0, 0, 1, 1]], np.uint8)

    def scores(pred: list[int]):
        cm = confusion_matrix(np.array([pred], np.uint8), truth, 2, unlabelled_pred=True)
        return metrics_from_confusion(cm, CLASSES)

    selection = choose("seg-lost", scores([0, 1, 1, 0]), scores([0, 0, 1, 255]), None, 4)

    def done(status) -> None:
        status.state = status.outcome = JobState.DONE
        status.result = {
            "model_ids": ["seg-lost"],
            "mean_iou": selection.new_miou,
            "best_epoch": 1,
            "selection": selection.model_dump(mode="json"),
        }

    _update_status(ws / "jobs" / job.job_id, done)
    at = page(ws, "pages/train.py", monkeypatch)
    assert not at.exception, at.exception
    assert any("It is not the current model" in s.value for s in at.success)
    why = [w.value for w in at.warning if "Why:" in w.value]
    assert why and "colour rules keep pre-filling" in why[0]
    table = at.dataframe[0].value
    assert table["model"].tolist() == ["seg-lost", "rules"]
    assert table[""].tolist() == ["new model", "✔ colour rules"]


# ------------------------------------------------------------------------------ trained
@pytest.mark.slow
@pytest.mark.parametrize("path", PAGES)
def test_pages_run_with_a_trained_model(trained_ws: Path, path: str, monkeypatch) -> None:
    at = page(trained_ws, path, monkeypatch)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


@pytest.mark.slow
def test_runs_table_marks_the_current_model_and_promote_refuses_other_classes(
    trained_ws: Path, monkeypatch
) -> None:
    ws = trained_ws
    zoo = Zoo(ws)
    current = zoo.current("segmentation")
    at = page(ws, "pages/train.py", monkeypatch)
    table = at.dataframe[0].value
    assert table.loc[table["current"], "model"].tolist() == [current.model_id]
    assert "mean_iou" in table.columns and "iou/leukocyte" in table.columns
    assert set(table["beats rules"]) <= {"yes", "no"}
    assert not [c for c in table.columns if c.startswith("selection/")]
    # A second model trained on other classes is listed but cannot be promoted.
    staging = zoo.staging_dir("segmentation")
    for f in ("config.json", "model.safetensors"):
        (staging / f).write_bytes((zoo.path(current.model_id) / f).read_bytes())
    other = zoo.add(
        "segmentation",
        staging,
        current.model_copy(update={"model_id": "", "classes": ["background", "platelet"]}),
    )
    at.run()
    at.selectbox(key="train_model_pick").set_value(other.model_id).run()
    next(b for b in at.button if b.label == "Promote").click()
    at.run()
    assert not at.exception
    assert any("Not promoted" in e.value for e in at.error)
    assert zoo.current("segmentation").model_id == current.model_id
    next(b for b in at.button if b.label == "Roll back").click()
    at.run()
    assert any("Nothing rolled back" in e.value for e in at.warning)


@pytest.mark.slow
def test_promoting_a_model_that_lost_to_the_rules_works_with_a_warning(
    trained_ws: Path, monkeypatch
) -> None:
    ws = trained_ws
    zoo = Zoo(ws)
    current = zoo.current("segmentation")
    staging = zoo.staging_dir("segmentation")
    for f in ("config.json", "model.safetensors"):
        (staging / f).write_bytes((zoo.path(current.model_id) / f).read_bytes())
    metrics = {**current.metrics, "beats_rules": False}
    lost = zoo.add(
        "segmentation",
        staging,
        current.model_copy(update={"model_id": "", "metrics": metrics}),
        make_current=False,
    )
    at = page(ws, "pages/train.py", monkeypatch)
    table = at.dataframe[0].value
    assert table.loc[table["model"] == lost.model_id, "beats rules"].tolist() == ["no"]
    at.selectbox(key="train_model_pick").set_value(lost.model_id).run()
    next(b for b in at.button if b.label == "Promote").click()
    at.run()
    assert not at.exception, at.exception
    assert any("did not beat the colour rules" in w.value for w in at.warning)
    assert zoo.current("segmentation").model_id == lost.model_id


@pytest.mark.slow
def test_promote_button_refuses_weights_that_do_not_load(trained_ws: Path, monkeypatch) -> None:
    """The page asks the weights check of ``python -m training promote`` before moving."""
    ws = trained_ws
    zoo = Zoo(ws)
    current = zoo.current("segmentation")
    staging = zoo.staging_dir("segmentation")
    (staging / "config.json").write_bytes((zoo.path(current.model_id) / "config.json").read_bytes())
    weights = (zoo.path(current.model_id) / "model.safetensors").read_bytes()
    (staging / "model.safetensors").write_bytes(weights[: len(weights) // 2])  # truncated copy
    broken = zoo.add(
        "segmentation",
        staging,
        current.model_copy(update={"model_id": ""}),
        make_current=False,
    )
    at = page(ws, "pages/train.py", monkeypatch)
    at.selectbox(key="train_model_pick").set_value(broken.model_id).run()
    next(b for b in at.button if b.label == "Promote").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Not promoted" in e.value and "cannot be loaded" in e.value for e in at.error)
    assert zoo.current("segmentation").model_id == current.model_id


@pytest.mark.slow
def test_score_button_queues_scoring_and_label_this_opens_the_label_page(
    trained_ws: Path, monkeypatch
) -> None:
    ws = trained_ws
    at = page(ws, "pages/suggestions.py", monkeypatch)
    # The default follows the shipped measurement (tests/app/test_suggestions_default.py).
    at.selectbox(key="sugg_strategy").set_value("entropy").run()
    assert at.selectbox(key="sugg_strategy").value == "entropy"
    assert "press **Score unlabelled tiles**" in texts(at)
    before = {j.job_id for j in JobRunner(ws).list()}
    next(b for b in at.button if b.label == "Score unlabelled tiles").click()
    at.run()
    assert not at.exception, at.exception
    new = [j for j in JobRunner(ws).list() if j.job_id not in before]
    assert [(j.kind, j.state) for j in new] == [(SCORE, JobState.QUEUED)]
    JobRunner(ws).cancel(new[0].job_id, actor=Actor("tester", "admin"))

    # Scores written as the job would (spread apart: a one-epoch model's own entropy scores
    # are all alike, which the page answers with a random order), ranked with heat maps.
    _write_scores(Store.open(ws), Zoo(ws).current("segmentation").model_id, spread=True)
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    label = [b for b in at.button if b.label == "Label this"]
    assert label
    assert len(at.get("image")) == 2 * len(label)
    label[0].click()
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Label"]
    assert at.session_state["label_strategy"] == "entropy"
    assert at.session_state["label_tile_id"] in set(at.session_state["label_queue"][1])


def _write_scores(store: Store, model_id: str, *, spread: bool) -> None:
    """Entropy scores for every open tile, as a scoring job stores them: all 1.0, or spread."""
    import datetime as dt

    from training.service import register_tables, unlabelled_tile_ids

    register_tables(store)
    smear_of = {t.tile_id: t.smear_id for t in store.tiles()}
    store.tables.append(
        "scores",
        [
            {"model_id": model_id, "strategy": "entropy", "tile_id": t, "smear_id": smear_of[t],
             "score": 1.0 - 0.05 * i if spread else 1.0, "features": None,
             "created_at": dt.datetime.now(dt.UTC)}
            for i, t in enumerate(unlabelled_tile_ids(store))
        ],
    )  # fmt: skip


@pytest.mark.slow
def test_suggestions_say_when_scores_do_not_separate_tiles(trained_ws: Path, monkeypatch) -> None:
    ws = trained_ws
    _write_scores(Store.open(ws), Zoo(ws).current("segmentation").model_id, spread=False)
    at = page(ws, "pages/suggestions.py", monkeypatch)
    at.selectbox(key="sugg_strategy").set_value("entropy").run()
    assert not at.exception, at.exception
    assert any("do not separate the tiles" in w.value for w in at.warning)
    assert any("random order" in m.value for m in at.markdown)


@pytest.mark.slow
def test_analysis_segments_the_smear_with_the_current_model(trained_ws: Path, monkeypatch) -> None:
    ws = trained_ws
    model_id = Zoo(ws).current("segmentation").model_id
    at = page(ws, "pages/analysis.py", monkeypatch)
    assert not at.exception, at.exception
    assert at.radio(key="ana_source").value == f"Current model ({model_id})"
    assert list(at.dataframe[0].value["class"]) == CLASSES
    assert f"Segmented by model {model_id}." in texts(at)
    stored = Store.open(ws).tables.read("analyses").to_pylist()
    assert [r["model_id"] for r in stored] == [model_id]
    at.radio(key="ana_source").set_value("Saved labels").run()
    assert not at.exception
    assert "Counted from the saved labels" in texts(at)


@pytest.mark.slow
def test_analysis_warns_when_the_models_validation_figures_are_poor(
    trained_ws: Path, monkeypatch
) -> None:
    ws = trained_ws
    zoo = Zoo(ws)
    card = zoo.current("segmentation")
    metrics = {
        **card.metrics,
        "mean_iou": 0.6,
        "iou": {"background": 0.9, "leukocyte": 0.3},
        "beats_rules": False,
        "selection": {**card.metrics["selection"], "rules_miou": 0.7},
    }
    (zoo.path(card.model_id) / "card.json").write_text(
        card.model_copy(update={"metrics": metrics}).model_dump_json()
    )
    at = page(ws, "pages/analysis.py", monkeypatch)
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    assert any("below 0.5 for leukocyte 0.30" in w for w in warnings), warnings
    assert any("did not beat the colour rules" in w and "0.700" in w for w in warnings)
    assert f"Validation of model {card.model_id}: mean IoU 0.60" in texts(at)
    # Counted from the saved labels, the model's figures are beside the point.
    at.radio(key="ana_source").set_value("Saved labels").run()
    assert not [w for w in at.warning if "colour rules" in w.value]


# ------------------------------------------------------------------------------ Label pre-fill
def label_page(workspace: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(workspace))
    at = open_page("pages/label.py", timeout=120)
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.mark.slow
def test_label_page_starts_from_the_current_models_prediction(
    trained_ws: Path, monkeypatch
) -> None:
    from training.service import load_model, prefill

    ws = trained_ws
    model_id = Zoo(ws).current("segmentation").model_id
    at = label_page(ws, monkeypatch)
    assert f"prediction of model `{model_id}`" in texts(at)
    tile_id = at.session_state["label_tile_id"]
    store = Store.open(ws)
    assert store.latest(tile_id) is None, "unlabelled tiles come first"
    predicted = prefill(store, tile_id, load_model(ws))
    assert (predicted.source, predicted.model_id) == ("model", model_id)
    np.testing.assert_array_equal(at.session_state["lbl_editing"].mask, predicted.mask)
    assert f"pre-fill of model {model_id}" in texts(at)

    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception
    rev = store.latest(tile_id)
    assert (rev.source, rev.model_id, rev.annotator) == ("prefill", model_id, "tester")
    np.testing.assert_array_equal(store.mask(tile_id), predicted.mask)
    assert f"pre-filled by model {model_id}" in texts(at)


@pytest.mark.slow
def test_label_page_uses_the_colour_rules_when_the_model_has_other_classes(
    trained: Path, tmp_path: Path, monkeypatch
) -> None:
    from training.service import prefill

    ws = tmp_path / "other"
    store = Store.open(ws)
    store.init(["background", "leukocyte", "platelet"], tile_size=64)
    img, _ = disc_smear(0)
    store.add_smear(NewSmear(smear_id_for(img), encode_png_lossless(img), 128, 128))
    theirs = Zoo(trained).current("segmentation")
    added = Zoo(ws).add("segmentation", Zoo(trained).path(theirs.model_id), theirs)
    assert Zoo(ws).current("segmentation").model_id == added.model_id

    at = label_page(ws, monkeypatch)
    assert any(added.model_id in i.value and "colour rules" in i.value for i in at.info)
    tile_id = at.session_state["label_tile_id"]
    rules = prefill(store, tile_id).mask
    assert (rules != 255).any(), "the rules find the dark discs"
    np.testing.assert_array_equal(at.session_state["lbl_editing"].mask, rules)
    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception
    rev = store.latest(tile_id)
    assert (rev.source, rev.model_id) == ("prefill", "colour-rules")


@pytest.mark.slow
def test_a_save_that_reaches_auto_update_every_queues_an_update(
    trained_ws: Path, monkeypatch
) -> None:
    from dataset.settings import set_workspace_setting

    ws = trained_ws
    store = Store.open(ws)
    labelled = set(store.labelled_tile_ids())
    fresh = next(
        t
        for t in store.tiles()
        if t.tile_id not in labelled and store.split_of(t.smear_id) == "train"
    )
    set_workspace_setting(ws, "auto_update_every", 1)
    at = label_page(ws, monkeypatch)
    assert any("Automatic updates are on" in c.value for c in at.sidebar.caption)
    at.session_state["label_tile_id"] = fresh.tile_id
    at.run()
    at.button(key="lbl_save").click().run()
    assert not at.exception, at.exception
    assert store.latest(fresh.tile_id) is not None
    (job,) = JobRunner(ws).list()
    parent = Zoo(ws).current("segmentation").model_id
    assert job.kind == TRAIN_SEGMENTATION
    assert any(f"an update of it is queued (job {job.job_id}" in s.value for s in at.success)
    spec = (ws / "jobs" / job.job_id / "spec.json").read_text()
    assert f'"init_from":"{parent}"' in spec.replace(" ", "")


# ------------------------------------------------------------------------------ pre-fill saving
def test_dataset_page_shows_the_current_models_expected_saving(trained_ws, monkeypatch) -> None:
    card = Zoo(trained_ws).current("segmentation")
    effort = card.metrics["selection"]["effort"]
    at = page(trained_ws, "pages/dataset.py", monkeypatch)
    shown = texts(at)
    assert "Expected saving" in shown
    share = effort["model_pixels"] / effort["empty_pixels"]
    assert f"changing {share:.0%} of the pixels" in shown
    assert f"fixing {effort['model_regions']} region" in shown
