"""The segmentation glue end to end on a tiny workspace: train job → zoo → prefill, suggest,
analyse, evaluate. Uses a tiny U-Net (64x64 tiles, encoder depth 3, one epoch)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dataset.images import encode_png_lossless, smear_id_for
from dataset.roles import Actor
from dataset.store import NewSmear, Store, StoreError
from model_zoo import Zoo
from tests._segfixtures import JobCtx, disc_smear, make_workspace, patient_in, train_tiny

pytestmark = pytest.mark.slow


TESTER = Actor("tester", "clinician")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("ws"))


def test_training_reads_train_and_validation_only(workspace: Path) -> None:
    from training.service import load_samples

    store = Store.open(workspace)
    train = load_samples(store, "train")
    val = load_samples(store, "validation")
    assert {store.split_of(s.smear_id) for s in train} == {"train"}
    assert {store.split_of(s.smear_id) for s in val} == {"validation"}
    with pytest.raises(ValueError, match="not 'test'"):
        load_samples(store, "test")


def test_a_smears_labelled_tiles_train_as_one_region_with_their_context(workspace: Path) -> None:
    """Crops may then be centred on a cell a tile border cuts; the unlabelled tile stays
    unlabelled, but its pixels are there as context."""
    from training.service import load_samples

    store = Store.open(workspace)
    regions = load_samples(store, "train")
    tiles = load_samples(store, "train", regions=False)
    assert len(tiles) == 6 and len(regions) == 2
    assert sorted(t for r in regions for t in r.tiles) == sorted(t.tile_id for t in tiles)
    for region in regions:
        smear = store.smear_image(region.smear_id)
        assert region.image.shape == smear.shape and (region.image == smear).all()
        index = next(i for i in range(4) if (disc_smear(i)[0] == smear).all())
        truth = disc_smear(index)[1]
        labelled = np.zeros(truth.shape, bool)
        for t in store.tiles(region.smear_id):
            if t.tile_id in region.tiles:
                labelled[t.y : t.y + t.h, t.x : t.x + t.w] = True
        assert (region.mask[labelled] == truth[labelled]).all()
        assert (region.mask[~labelled] == 255).all() and (~labelled).any()


def test_job_registers_a_current_model_with_a_card(workspace: Path) -> None:
    ctx = train_tiny(workspace)
    assert ctx.progressed > 0
    card = Zoo(workspace).current("segmentation")
    assert card is not None and card.classes == ["background", "leukocyte"]
    store = Store.open(workspace)
    test_tiles = {t.tile_id for t in store.tiles() if store.split_of(t.smear_id) == "test"}
    assert not test_tiles & set(card.data["train_tiles"] + card.data["validation_tiles"])
    assert card.data["table_versions"]["revisions"] > 0
    assert "mean_iou" in card.metrics


def test_prefill_suggest_analyse_use_the_current_model(workspace: Path) -> None:
    from training.service import analyze_smear, load_model, prefill, suggest

    if Zoo(workspace).current("segmentation") is None:
        train_tiny(workspace)
    store = Store.open(workspace)
    loaded = load_model(workspace)
    open_tile = next(t for t in store.tiles() if store.latest(t.tile_id) is None)
    pre = prefill(store, open_tile.tile_id, loaded)
    assert pre.source == "model" and pre.model_id == loaded.model_id
    assert pre.mask.shape == (64, 64) and set(np.unique(pre.mask)) <= {0, 1}

    first = suggest(store, "entropy", 3, loaded=loaded)
    assert first and all(store.latest(s.tile_id) is None for s in first)
    assert all(store.split_of(s.smear_id) != "test" for s in first)
    # A second call reads the cache: same ranking, nothing rescored.
    assert [s.tile_id for s in suggest(store, "entropy", 3, loaded=loaded)] == [
        s.tile_id for s in first
    ]

    smear_id = store.smears()[0].smear_id
    analysis, mask, model_id = analyze_smear(store, smear_id, loaded)
    assert model_id == loaded.model_id and mask.shape == (128, 128)
    assert analysis.row("leukocyte").pixels == int((mask == 1).sum())


def test_model_strategies_need_a_model(tmp_path: Path) -> None:
    from training.service import suggest

    store = Store.open(tmp_path)
    store.init()
    with pytest.raises(StoreError, match="needs a segmentation model"):
        suggest(store, "entropy", 5, loaded=None)


def test_training_refuses_without_validation_tiles(tmp_path: Path) -> None:
    from training.service import segment_job

    store = Store.open(tmp_path)
    store.init(["background", "leukocyte"], tile_size=64)
    img, mask = disc_smear(7)
    sid = smear_id_for(img)
    store.add_smear(NewSmear(sid, encode_png_lossless(img), 128, 128, patient=patient_in("train")))
    t = store.tiles(sid)[0]
    store.save_mask(t.tile_id, mask[:64, :64], annotator="t")
    with pytest.raises(StoreError, match="1 train, 0 validation"):
        segment_job(JobCtx(tmp_path), {"config": {"epochs": 1}})


def test_stored_smear_analysis_becomes_classifier_features(tmp_path: Path) -> None:
    import datetime as dt

    from training.diagnosis.registry import NewVisit, Registry
    from training.diagnosis.service import visit_features
    from training.service import analyze_smear

    store = Store.open(tmp_path)
    store.init(["background", "leukocyte"], tile_size=64)
    img, mask = disc_smear(11)
    sid = smear_id_for(img)
    store.add_smear(NewSmear(sid, encode_png_lossless(img), 128, 128))
    visit = NewVisit(date=dt.date(2026, 1, 5), hba1c_percent=5.9, smear_ids=(sid,))
    assert not any(k.startswith("smear: ") for k in visit_features(visit, store=store))

    for t in store.tiles(sid):
        store.save_mask(t.tile_id, mask[t.y : t.y + t.h, t.x : t.x + t.w], annotator="t")
    analysis, _, _ = analyze_smear(store, sid)  # no model: the saved labels are analysed
    registry = Registry(store)
    registry.add_patient("P-1", sex="female", birth_year=1970, actor=TESTER)
    registry.add_visit("P-1", visit, actor=TESTER)
    feats = visit_features(visit, store=store)
    share = analysis.row("leukocyte").pixel_share
    assert feats["smear: leukocyte pixel share"] == pytest.approx(share)
    assert feats["smear: leukocyte count"] == analysis.row("leukocyte").count


def test_a_new_current_model_queues_rescoring_once(tmp_path: Path, monkeypatch) -> None:
    from training.jobs import JobRunner
    from training.kinds import SCORE
    from training.service import queue_rescoring

    monkeypatch.setattr(JobRunner, "ensure_worker", lambda self: False)  # no real worker here
    Store.open(tmp_path).init()
    first = queue_rescoring(tmp_path)
    assert first is not None
    assert queue_rescoring(tmp_path) is None  # one pending scoring job is enough
    jobs = JobRunner(tmp_path).list()
    assert [(j.job_id, j.kind, j.state) for j in jobs] == [(first, SCORE, "queued")]


def test_scoring_uses_bf16_only_where_the_cpu_has_it(workspace: Path, monkeypatch) -> None:
    from training.service import load_model, scoring

    if Zoo(workspace).current("segmentation") is None:
        train_tiny(workspace)
    loaded = load_model(workspace)
    monkeypatch.setattr(scoring, "native_bf16", lambda: True)
    assert scoring.scoring_inference(loaded).bf16
    monkeypatch.setattr(scoring, "native_bf16", lambda: False)
    assert scoring.scoring_inference(loaded) == loaded.inference_config()
    assert not loaded.inference_config().bf16  # pre-fill and analysis stay fp32


def test_evaluate_command_scores_external_pairs(workspace: Path, tmp_path: Path, capsys) -> None:
    import json

    from PIL import Image

    from training.cli import main

    if Zoo(workspace).current("segmentation") is None:
        train_tiny(workspace)
    rows = ["image,mask"]
    for i in (20, 21):
        img, mask = disc_smear(i)
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(tmp_path / f"{i}_mask.png")
        rows.append(f"{i}.png,{i}_mask.png")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    argv = ["evaluate", "--workspace", str(workspace), "--pairs", str(tmp_path / "pairs.csv")]
    argv += ["--levels", "0=background,255=leukocyte", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 2 and set(report["per_class"]) == {"background", "leukocyte"}
    ious = [v["iou"] for v in report["per_class"].values()]
    assert all(0.0 <= v <= 1.0 for v in ious)
    assert report["mean_iou"] == pytest.approx(sum(ious) / 2)
    # A level map naming a class the model does not know is refused with exit 1.
    argv[-2] = "0=background,255=nucleus"
    assert main(argv) == 1
    assert "nucleus" in capsys.readouterr().err


def test_evaluate_refuses_a_grey_no_level_explains_unless_lenient(
    workspace: Path, tmp_path: Path, capsys
) -> None:
    """The strict level rule of import-masks holds for evaluate too (issue 9)."""
    import json

    from PIL import Image

    from training.cli import main

    if Zoo(workspace).current("segmentation") is None:
        train_tiny(workspace)
    img, mask = disc_smear(22)
    grey = (mask * 255).astype(np.uint8)
    grey[:3, :4] = 128  # 12 pixels of a level the map does not name
    Image.fromarray(img).save(tmp_path / "22.png")
    Image.fromarray(grey).save(tmp_path / "22_mask.png")
    (tmp_path / "pairs.csv").write_text("image,mask\n22.png,22_mask.png\n")
    argv = ["evaluate", "--workspace", str(workspace), "--pairs", str(tmp_path / "pairs.csv")]
    argv += ["--levels", "0=background,255=leukocyte", "--json"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "22_mask.png" in err and "128" in err and "12" in err
    assert main([*argv, "--levels-lenient"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unmatched"] == {"22_mask.png": {"128": 12}}
    assert report["level_tolerance"] == 40
    # A wider band explains the grey (nearest level wins): nothing is refused or left out.
    assert main([*argv, "--level-tolerance", "128"]) == 0
    assert json.loads(capsys.readouterr().out)["unmatched"] is None


# ------------------------------------------------------------------------------ selection
def _scores(truth: list[int], pred: list[int], classes=("background", "leukocyte")):
    from dataset.schema import UNLABELLED
    from training.metrics import confusion_matrix, metrics_from_confusion

    t = np.array([truth], np.uint8)
    p = np.array([[UNLABELLED if v is None else v for v in pred]], np.uint8)
    cm = confusion_matrix(p, t, len(classes), unlabelled_pred=True)
    return metrics_from_confusion(cm, classes)


def test_the_new_model_replaces_the_rules_only_when_it_scores_higher() -> None:
    from training.service import RULES, choose

    truth = [0, 0, 1, 1]
    good = _scores(truth, [0, 0, 1, 1])
    # The rules leave half the pixels unlabelled: those count as wrong, so they score 0.5.
    rules = _scores(truth, [0, None, 1, None])
    assert rules.miou == pytest.approx(0.5)

    won = choose("seg-new", good, rules, None, 4)
    assert (won.baseline, won.winner, won.beats_rules) == (RULES, "seg-new", True)
    assert (won.new_miou, won.baseline_miou, won.rules_miou) == (1.0, 0.5, 0.5)
    assert won.per_class["rules"] == {"background": 0.5, "leukocyte": 0.5}
    assert "becomes the current model" in won.reason and "colour rules" in won.reason

    tie = choose("seg-new", rules, rules, None, 4)
    assert (tie.winner, tie.beats_rules) == (RULES, False)
    assert "stays in the zoo" in tie.reason and "promote it by hand" in tie.reason


def test_against_a_current_model_the_winner_is_the_higher_score_and_rules_are_kept_apart() -> None:
    from training.service import choose

    truth = [0, 0, 1, 1]
    rules = _scores(truth, [0, None, 1, None])  # 0.5
    old = _scores(truth, [0, 0, 1, 0])
    worse = _scores(truth, [0, 1, 1, 0])
    lost = choose("seg-new", worse, rules, ("seg-old", old), 4)
    assert (lost.baseline, lost.winner) == ("seg-old", "seg-old")
    assert lost.new_miou < lost.baseline_miou
    assert lost.beats_rules is False and lost.new_miou < lost.rules_miou
    assert "seg-old stays current" in lost.reason
    assert set(lost.per_class) == {"seg-new", "seg-old", "rules"}

    won = choose("seg-new", _scores(truth, truth), rules, ("seg-old", old), 4)
    assert (won.winner, won.beats_rules) == ("seg-new", True)
    assert "current model seg-old" in won.reason


def test_classes_without_validation_pixels_are_named_and_left_out_of_the_choice() -> None:
    from training.service import choose

    classes = ("background", "leukocyte", "platelet")
    truth = [0, 0, 1, 1]
    new = _scores(truth, [0, 2, 1, 1], classes)
    rules = _scores(truth, [0, None, None, None], classes)
    sel = choose("seg-new", new, rules, None, 4)
    assert sel.classes_scored == ["background", "leukocyte"]
    assert sel.absent_classes == ["platelet"]
    assert sel.per_class["seg-new"]["platelet"] is None
    assert "No labelled pixels of platelet" in sel.reason


def test_a_run_that_loses_to_the_rules_is_kept_but_not_made_current(
    tmp_path: Path, monkeypatch
) -> None:
    from training.service import selection

    ws = make_workspace(tmp_path / "ws")
    # Rules that copy the ground truth cannot be beaten: the run must not become current.
    monkeypatch.setattr(
        selection, "_rules_masks", lambda samples, classes: (s.mask for s in samples)
    )
    ctx = train_tiny(ws, as_chosen=True)
    (_, _, card) = ctx.models[0]
    sel = card.metrics["selection"]
    assert sel["baseline"] == "rules" and sel["winner"] == "rules"
    assert sel["rules_miou"] == 1.0 and card.metrics["beats_rules"] is False
    assert sel["new_miou"] == pytest.approx(card.metrics["mean_iou"])
    assert ctx.choices[0] == {"make_current": False, "compared_with": None}
    zoo = Zoo(ws)
    assert zoo.current("segmentation") is None
    assert [c.model_id for c in zoo.list("segmentation")] == [card.model_id]

    # Rules that label nothing score 0: the next run beats them and becomes current.
    monkeypatch.setattr(
        selection, "_rules_masks", lambda samples, classes: (s.mask * 0 + 255 for s in samples)
    )
    ctx = train_tiny(ws, as_chosen=True, seed=2)
    (_, _, card) = ctx.models[0]
    assert card.metrics["beats_rules"] is True
    assert card.metrics["selection"]["winner"] == card.model_id
    assert zoo.current("segmentation").model_id == card.model_id


def test_a_second_run_is_compared_with_the_current_model_on_the_same_tiles(
    workspace: Path,
) -> None:
    from training.service import load_model, load_samples, validation_metrics

    if Zoo(workspace).current("segmentation") is None:
        train_tiny(workspace)
    current = Zoo(workspace).current("segmentation")
    ctx = train_tiny(workspace, as_chosen=True, seed=5)
    (_, _, card) = ctx.models[0]
    sel = card.metrics["selection"]
    assert sel["baseline"] == current.model_id
    store = Store.open(workspace)
    val = load_samples(store, "validation")
    assert sel["tiles"] == sum(len(s.tiles) for s in val) == len(card.data["validation_tiles"])
    loaded = load_model(workspace, current.model_id)
    from training.inference import predict_mask

    again = validation_metrics(
        (predict_mask(loaded.model, s.image, loaded.inference_config()) for s in val),
        val,
        list(store.schema().names),
    )
    assert sel["baseline_miou"] == pytest.approx(again.miou)
    assert set(sel["per_class"]) == {card.model_id, current.model_id, "rules"}
    wins = sel["new_miou"] > sel["baseline_miou"]
    assert sel["winner"] == (card.model_id if wins else current.model_id)
    assert ctx.choices[0] == {"make_current": wins, "compared_with": current.model_id}
    assert card.metrics["beats_rules"] == (sel["new_miou"] > sel["rules_miou"])
    expected = card.model_id if wins else current.model_id
    assert Zoo(workspace).current("segmentation").model_id == expected


# ------------------------------------------------------------------------------ suggestions
def test_flat_scores_are_recognised_within_one_percent_of_the_top_twenty() -> None:
    from training.service import flat_note

    assert flat_note("entropy", [1.0] * 30) is not None
    assert "do not separate" in flat_note("entropy", [0.5, 0.499, 0.498])
    # The 21st score may differ: only the top 20 are compared.
    assert flat_note("entropy", [0.8] * 20 + [0.1]) is not None
    assert flat_note("entropy", [0.8] * 19 + [0.7]) is None
    assert flat_note("entropy", [0.8]) is None  # one tile has nothing to separate
    assert flat_note("entropy", [0.0, 0.0]) is not None  # all equally sure


def test_flat_scores_fall_back_to_random_spread_over_smears(workspace: Path) -> None:
    from training.service import load_model, register_tables, suggest, unlabelled_tile_ids
    from training.strategies import RandomStrategy

    if Zoo(workspace).current("segmentation") is None:
        train_tiny(workspace)
    store = Store.open(workspace)
    loaded = load_model(workspace)
    register_tables(store)
    import datetime as dt

    open_ids = unlabelled_tile_ids(store)
    smear_of = {t.tile_id: t.smear_id for t in store.tiles()}
    # A model as useless as the demo's first one: every tile scores 1.000.
    store.tables.append(
        "scores",
        [
            {
                "model_id": "flat-model",
                "strategy": "entropy",
                "tile_id": t,
                "smear_id": smear_of[t],
                "score": 1.0,
                "features": None,
                "created_at": dt.datetime.now(dt.UTC),
            }
            for t in open_ids
        ],
    )
    flat = loaded.card.model_copy(update={"model_id": "flat-model"})
    found = suggest(
        store, "entropy", 4, loaded=type(loaded)(loaded.model, flat), score_missing=False
    )
    assert (found.strategy, found.order) == ("entropy", "random")
    assert "do not separate" in found.note
    ranked = sorted(open_ids, key=lambda t: (-RandomStrategy.key(t), t))
    capped = []
    for t in ranked:  # per_smear: at most two tiles of one smear at the top
        if sum(smear_of[c] == smear_of[t] for c in capped) < 2:
            capped.append(t)
    assert [s.tile_id for s in found] == capped[:4]


def test_suggest_command_reports_flat_scores(workspace: Path, capsys, monkeypatch) -> None:
    import json

    from training.cli import main
    from training.service import suggestions

    if Zoo(workspace).current("segmentation") is None:
        train_tiny(workspace)
    argv = ["suggest", "--workspace", str(workspace), "--top", "3", "--strategy", "entropy"]
    monkeypatch.setattr(suggestions, "flat_note", lambda strategy, scores: "all alike")
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["order"], out["note"]) == ("random", "all alike") and len(out["tiles"]) == 3
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("note: all alike")


def test_suggest_command_defaults_to_the_measured_strategy(workspace: Path, capsys, monkeypatch):
    """Without --strategy the command ranks as the Suggestions page does, not by a fixed rule."""
    import json

    from training import service
    from training.cli import main
    from training.service.measured import MeasuredDefault

    if Zoo(workspace).current("segmentation") is None:
        train_tiny(workspace)
    argv = ["suggest", "--workspace", str(workspace), "--top", "3", "--json"]
    for strategy, diversity in (("margin", None), ("random", "per_smear")):
        chosen = MeasuredDefault(strategy, diversity, verdict="measured", shipped=True)
        monkeypatch.setattr(service, "measured_default", lambda chosen=chosen: chosen)
        assert main(argv) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["strategy"] == strategy and len(out["tiles"]) == 3


# ------------------------------------------------------------------------------ model quality
def _card(**metrics):
    from model_zoo import ModelCard

    return ModelCard(
        model_id="seg-x", kind="segmentation", classes=["a", "b", "c"], metrics=metrics
    )


def test_model_quality_warns_on_poor_classes_and_on_losing_to_the_rules() -> None:
    from training.service import model_quality

    good = model_quality(
        _card(mean_iou=0.8, iou={"a": 0.9, "b": 0.7, "c": None}, absent_classes=["c"],
              beats_rules=True, selection={"rules_miou": 0.4})
    )  # fmt: skip
    assert good.warnings == [] and good.rules_miou == 0.4
    assert "No labelled pixels of c" in good.note

    poor = model_quality(
        _card(mean_iou=0.45, iou={"a": 0.8, "b": 0.1, "c": 0.49}, beats_rules=False,
              selection={"rules_miou": 0.5})
    )  # fmt: skip
    assert len(poor.warnings) == 2
    assert "below 0.5 for b 0.10, c 0.49" in poor.warnings[0]
    assert "did not beat the colour rules" in poor.warnings[1] and "0.500" in poor.warnings[1]
    assert poor.to_json()["beats_rules"] is False

    old = model_quality(_card(mean_iou=0.9, iou={"a": 0.9, "b": 0.9, "c": 0.9}))
    assert old.beats_rules is None and "never compared" in old.warnings[0]


def test_analyze_command_shows_the_models_validation_figures(workspace: Path, capsys) -> None:
    import json

    from training.cli import main

    if Zoo(workspace).current("segmentation") is None:
        train_tiny(workspace)
    card = Zoo(workspace).current("segmentation")
    smear_id = Store.open(workspace).smears()[0].smear_id
    argv = ["analyze", smear_id, "--workspace", str(workspace)]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["validation"]["model_id"] == card.model_id
    assert out["validation"]["mean_iou"] == card.metrics["mean_iou"]
    assert out["validation"]["beats_rules"] == card.metrics["beats_rules"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"validation of {card.model_id}: mean IoU" in text
    poor = any(v is not None and v < 0.5 for v in card.metrics["iou"].values())
    assert ("warning: Validation IoU below 0.5" in text) == poor
    assert main([*argv, "--labels", "--json"]) == 0
    assert "validation" not in json.loads(capsys.readouterr().out)


def test_segment_command_says_which_model_won_and_why(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    ws = make_workspace(tmp_path / "ws")
    argv = [sys.executable, "-m", "training", "segment", "--workspace", str(ws), "--epochs", "1"]
    argv += ["--patch-size", "64", "--batch-size", "4", "--wait"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert "scored mean IoU" in last and "Classes scored: background, leukocyte." in last
    again = subprocess.run([*argv, "--json"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    status = json.loads(again.stdout)
    selection = status["result"]["selection"]
    (model_id,) = status["result"]["model_ids"]
    assert selection["model_id"] == model_id
    first = Zoo(ws).list("segmentation")[0].model_id
    # The second run was compared with the first run's winner: the first model or the rules.
    assert selection["baseline"] in (first, "rules")
    current = Zoo(ws).current("segmentation")
    assert (current is not None and current.model_id == model_id) == (
        selection["winner"] == model_id
    )


def test_prefill_effort_against_a_hand_counted_case() -> None:
    """20 x 20 tile, left half class 0, right half class 1. The model misses one 4 x 5 block
    of class 1 (20 px, one region); the rules call everything class 0 (200 px, one region);
    an empty canvas needs all 400 px painted in two regions."""
    from training.segment import Sample
    from training.service import expected_saving
    from training.service.selection import prefill_effort

    truth = np.zeros((20, 20), np.uint8)
    truth[:, 10:] = 1
    sample = Sample(np.zeros((20, 20, 3), np.uint8), truth, "t", "s")
    model = truth.copy()
    model[0:4, 12:17] = 0
    rules = np.zeros_like(truth)
    effort = prefill_effort([model], [rules], [sample])
    assert (effort.empty_pixels, effort.empty_regions) == (400, 2)
    assert (effort.model_pixels, effort.model_regions) == (20, 1)
    assert (effort.rules_pixels, effort.rules_regions) == (200, 1)
    assert effort.share("model", "pixels") == pytest.approx(0.05)

    card = SimpleNamespace(model_id="seg-1", metrics={"selection": {"effort": effort.model_dump()}})
    sentence = expected_saving(card)
    assert "changing 5% of the pixels" in sentence and "fixing 1 region where" in sentence
    assert (
        "needs 2 painted" in sentence and "colour rules: 50% of the pixels, 1 region." in sentence
    )
    assert expected_saving(SimpleNamespace(model_id="old", metrics={"selection": {}})) is None


def test_a_run_records_the_prefill_effort_of_its_validation_tiles(workspace: Path) -> None:
    ctx = train_tiny(workspace)
    card = ctx.models[0][2]
    effort = card.metrics["selection"]["effort"]
    assert effort["tiles"] == len(card.data["validation_tiles"]) == 3
    assert effort["empty_pixels"] > 0 and effort["model_pixels"] <= effort["empty_pixels"]
