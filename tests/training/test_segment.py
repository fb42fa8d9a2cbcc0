"""Training loop: learns a trivially learnable set, is repeatable, refuses bad input."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from dataset.schema import UNLABELLED
from training.inference import predict_proba
from training.model import load_model
from training.segment import (
    END_TOLERANCE,
    NonFiniteLossError,
    Sample,
    SegTrainConfig,
    TrainingCancelled,
    WeightAverage,
    train_segmentation,
)

CLASSES = ["background", "erythrocyte"]


def _discs(n: int, seed: int, smear: str, size: tuple[int, int] = (64, 64)) -> list[Sample]:
    """Red discs on pale plasma; a quarter of every mask left unlabelled."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    out = []
    for i in range(n):
        image = np.empty((h, w, 3), np.uint8)
        image[:] = (228, 224, 210)
        mask = np.zeros((h, w), np.uint8)
        for _ in range(3):
            cy, cx = rng.integers(8, h - 8), rng.integers(8, w - 8)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(25, 80)
            image[disc] = (190, 60, 70)
            mask[disc] = 1
        image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
        mask[: h // 4] = UNLABELLED
        out.append(Sample(image, mask, f"{smear}-t{i}", f"{smear}-{i // 2}"))
    return out


def _config(**overrides) -> SegTrainConfig:
    base = dict(
        epochs=1, batch_size=4, patch_size=64, steps_per_epoch=2, lr=3e-3, num_threads=1,
        patience=None,
    )  # fmt: skip
    return SegTrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    events: list[dict] = []
    result = train_segmentation(
        _discs(4, 0, "a"),
        _discs(2, 1, "b"),
        CLASSES,
        _config(epochs=4, steps_per_epoch=3),
        on_progress=events.append,
        out_dir=out,
    )
    return result, events, out


@pytest.mark.slow
def test_a_few_steps_lower_the_loss(trained):
    result, _, _ = trained
    first, last = result.history[0], result.history[-1]
    assert last.train_loss < first.train_loss
    assert min(r.val_loss for r in result.history[1:]) < first.val_loss
    assert result.epochs_run == 4 and result.stopped == "epochs"
    # The best epoch so far, then the annealed end unless clearly worse (END_TOLERANCE).
    *earlier, end = result.history
    best = max(earlier, key=lambda r: r.val_miou)
    if end.val_miou >= best.val_miou - END_TOLERANCE:
        best = end
    assert result.best_epoch == best.epoch
    assert result.metrics.miou == pytest.approx(best.val_miou)
    assert set(result.card_metrics()["iou"]) == set(CLASSES)


@pytest.mark.slow
def test_progress_reports_steps_and_validations(trained):
    _, events, _ = trained
    phases = [e["phase"] for e in events]
    assert phases.count("train") == 4 * 3 and phases.count("validate") == 4
    last = events[-1]
    assert last["phase"] == "validate" and last["epoch"] == 4
    assert set(last["val_iou"]) == set(CLASSES)


@pytest.mark.slow
def test_checkpoint_round_trips_through_save_pretrained(trained):
    result, _, out = trained
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert result.checkpoint_dir == out
    image = _discs(1, 5, "c")[0].image
    loaded = predict_proba(load_model(out), image)
    kept = predict_proba(result.build_model(), image)
    np.testing.assert_allclose(loaded, kept, atol=1e-6)


@pytest.mark.slow
def test_same_seed_gives_same_weights():
    train, val = _discs(2, 0, "a"), _discs(1, 1, "b")
    a = train_segmentation(train, val, CLASSES, _config(seed=3))
    b = train_segmentation(train, val, CLASSES, _config(seed=3))
    c = train_segmentation(train, val, CLASSES, _config(seed=4))
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert not all(torch.equal(a.state_dict[k], c.state_dict[k]) for k in a.state_dict)


def test_odd_sized_tiles_train(tmp_path):
    train = _discs(1, 0, "a", (88, 100)) + _discs(1, 2, "a2", (120, 120))
    val = _discs(1, 1, "b", (100, 88))
    result = train_segmentation(train, val, CLASSES, _config(steps_per_epoch=1, batch_size=2))
    assert result.epochs_run == 1 and result.metrics.n_pixels == int((val[0].mask != 255).sum())


def test_non_finite_loss_raises_and_saves_nothing(tmp_path):
    with pytest.raises(NonFiniteLossError, match="learning rate"):
        train_segmentation(
            _discs(2, 0, "a"),
            _discs(1, 1, "b"),
            CLASSES,
            _config(ce_weight=float("inf")),
            out_dir=tmp_path / "ckpt",
        )
    assert not (tmp_path / "ckpt").exists()


def test_time_budget_stops_after_one_validated_epoch():
    result = train_segmentation(
        _discs(2, 0, "a"), _discs(1, 1, "b"), CLASSES, _config(epochs=50, time_budget_min=1e-6)
    )
    assert result.stopped == "time_budget" and result.epochs_run == 1
    assert result.history[0].steps == 1


def test_stop_before_first_epoch_is_cancelled():
    with pytest.raises(TrainingCancelled):
        train_segmentation(
            _discs(2, 0, "a"), _discs(1, 1, "b"), CLASSES, _config(), should_stop=lambda: True
        )


def test_smear_in_both_splits_is_refused():
    tiles = _discs(2, 0, "a")
    with pytest.raises(ValueError, match="both train and validation"):
        train_segmentation(tiles[:1], tiles[1:], CLASSES, _config())


def test_class_index_beyond_the_class_list_is_refused():
    bad = _discs(1, 0, "a")[0]
    mask = bad.mask.copy()
    mask[-1, -1] = 5
    with pytest.raises(ValueError, match="a-t0"):
        train_segmentation(
            [Sample(bad.image, mask, bad.tile_id, "a")], _discs(1, 1, "b"), CLASSES, _config()
        )


def test_validation_without_labels_is_refused():
    val = _discs(1, 1, "b")[0]
    empty = Sample(val.image, np.full_like(val.mask, UNLABELLED), val.tile_id, val.smear_id)
    with pytest.raises(ValueError, match="validation"):
        train_segmentation(_discs(1, 0, "a"), [empty], CLASSES, _config())


def test_sample_checks_shapes():
    with pytest.raises(ValueError, match="t1"):
        Sample(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9), np.uint8), "t1", "s")
    with pytest.raises(ValueError, match="multiple of 32"):
        SegTrainConfig(patch_size=100)


@pytest.mark.slow
def test_a_class_missing_from_validation_is_named_and_left_out_of_the_mean():
    classes = [*CLASSES, "platelet"]  # never labelled anywhere, though the model may predict it
    events: list[dict] = []
    result = train_segmentation(
        _discs(4, 0, "a"), _discs(2, 1, "b"), classes, _config(), on_progress=events.append
    )
    assert result.metrics.absent == ("platelet",)
    assert result.metrics.iou[2] is None
    scored = [v for v in result.metrics.iou if v is not None]
    assert result.metrics.miou == pytest.approx(sum(scored) / 2)
    assert result.card_metrics()["absent_classes"] == ["platelet"]
    validated = [e for e in events if e["phase"] == "validate"]
    assert validated and validated[-1]["val_absent"] == ["platelet"]


@pytest.mark.slow
def test_an_epoch_on_a_few_tiles_is_at_least_the_minimum_number_of_steps():
    from training.segment import MIN_STEPS_PER_EPOCH

    events: list[dict] = []
    result = train_segmentation(
        _discs(4, 0, "a"),
        _discs(2, 1, "b"),
        CLASSES,
        _config(steps_per_epoch=None, encoder_depth=3),
        on_progress=events.append,
    )
    # 4 tiles in batches of 4 are one pass; an epoch still runs the minimum number of steps.
    assert result.history[0].steps == MIN_STEPS_PER_EPOCH
    assert max(e["step"] for e in events if e["phase"] == "train") == MIN_STEPS_PER_EPOCH


# ------------------------------------------------------------------------------ start from
def _parent(n_classes: int = 2, encoder_depth: int = 3, seed: int = 7):
    """A model whose weights no fresh build at the test configs' seeds has."""
    from training.model import build_model

    torch.manual_seed(seed)
    decoder = SegTrainConfig().decoder_channels  # the configs' default
    return build_model(n_classes, "mobilenet_v2", None, encoder_depth, decoder).eval()


def test_a_run_starts_from_the_start_models_weights():
    """One step at a vanishing learning rate leaves the start model's weights in place, where
    the same run from scratch has the fresh build's."""
    parent = _parent()
    train, val = _discs(2, 0, "a"), _discs(1, 1, "b")
    config = _config(encoder_depth=3, steps_per_epoch=1, lr=1e-12, weight_decay=0.0)
    tuned = train_segmentation(
        train, val, CLASSES, config.model_copy(update={"init_from": "seg-parent"}), start=parent
    )
    scratch = train_segmentation(train, val, CLASSES, config)
    theirs = dict(parent.named_parameters())
    assert all(torch.allclose(tuned.state_dict[k], theirs[k], atol=1e-6) for k in theirs)
    assert not all(torch.allclose(scratch.state_dict[k], theirs[k], atol=1e-3) for k in theirs)
    assert tuned.config.init_from == "seg-parent"


def test_a_start_model_with_other_classes_or_architecture_is_refused():
    train, val = _discs(2, 0, "a"), _discs(1, 1, "b")
    config = _config(encoder_depth=3, init_from="seg-parent")
    with pytest.raises(ValueError, match="model seg-parent: it predicts 3 classes, the workspace"):
        train_segmentation(train, val, CLASSES, config, start=_parent(n_classes=3))
    with pytest.raises(ValueError, match="model seg-parent: its weights do not fit a U-Net"):
        train_segmentation(train, val, CLASSES, config, start=_parent(encoder_depth=4))
    standard = config.model_copy(update={"decoder_channels": (256, 128, 64)})
    with pytest.raises(ValueError, match=r"and decoder \[256, 128, 64\] \(0 missing"):
        train_segmentation(train, val, CLASSES, standard, start=_parent())
    with pytest.raises(ValueError, match="no start model was given"):
        train_segmentation(train, val, CLASSES, config)


class _Clock:
    """A monotonic clock that moves ``tick`` seconds every time it is read."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 1000.0, tick

    def monotonic(self) -> float:
        self.now += self.tick
        return self.now


def test_a_time_budget_sets_the_schedule_and_validates_late(monkeypatch):
    """Under a time budget the learning rate falls over the budget, not over 40 epochs that
    never come, and validation waits for half the run instead of eating every epoch."""
    import training.segment as segment

    monkeypatch.setattr(segment, "time", _Clock(0.1))
    events: list[dict] = []
    result = train_segmentation(
        _discs(4, 0, "a"),
        _discs(2, 1, "b"),
        CLASSES,
        _config(epochs=40, steps_per_epoch=2, time_budget_min=0.5),
        on_progress=events.append,
    )
    assert result.stopped == "time_budget"
    validations = [e for e in events if e["phase"] == "validate"]
    # At 70 % and at the end: two validations, however many epochs fit.
    assert [round(v["fraction"], 1) for v in validations] == [0.7, 1.0]
    steps = [e for e in events if e["phase"] == "train"]
    assert len(steps) > 2 * 2  # far more steps than epochs: validation no longer paces the run
    lrs = [e["lr"] for e in steps]
    top = max(lrs)
    assert top > 0.8 * 3e-3  # warm-up (by steps) ends early in the run
    after_peak = lrs[lrs.index(top) :]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(after_peak))
    assert lrs[-1] < 0.1 * 3e-3  # the cosine reached its floor by the end of the budget


@pytest.mark.parametrize(("drop", "kept"), [(0.004, 2), (0.03, 1)])
def test_the_annealed_end_is_kept_unless_clearly_worse(monkeypatch, drop, kept):
    """Validation scores a few thousandths apart are noise: the end of the cosine wins them.
    A clearly worse end (a run gone wrong late) gives way to the earlier checkpoint."""
    import training.segment as segment

    scores = iter([0.80, 0.80 - drop])
    real = segment.evaluate

    def scripted(model, val, classes, config):
        metrics, loss = real(model, val, classes, config)
        return dataclasses.replace(metrics, miou=next(scores)), loss

    monkeypatch.setattr(segment, "evaluate", scripted)
    result = train_segmentation(
        _discs(2, 0, "a"), _discs(1, 1, "b"), CLASSES, _config(epochs=2, steps_per_epoch=2)
    )
    assert result.epochs_run == 2 and result.best_epoch == kept
    assert result.metrics.miou == pytest.approx(0.80 if kept == 1 else 0.80 - drop)


def test_without_a_budget_the_learning_rate_falls_over_the_epochs():
    events: list[dict] = []
    train_segmentation(
        _discs(2, 0, "a"),
        _discs(1, 1, "b"),
        CLASSES,
        _config(epochs=3, steps_per_epoch=5),
        on_progress=events.append,
    )
    lrs = [e["lr"] for e in events if e["phase"] == "train"]
    assert len(lrs) == 15 and lrs[0] < lrs[9]  # warm-up over the first steps
    assert lrs[-1] < 0.15 * 3e-3
    assert [e["epoch"] for e in events if e["phase"] == "validate"] == [1, 2, 3]


def test_the_device_reaches_the_model_and_every_batch(monkeypatch):
    """Every batch and the model sit on ``config.device`` (checked on the CPU; the same
    path moves them to a GPU)."""
    import training.segment as segment

    seen: list[tuple[str, str, str]] = []
    to_input = segment.to_model_input

    def spy_input(images, device=None):
        x = to_input(images, device)
        seen.append(("input", str(device), x.device.type))
        return x

    forward = segment.SegLoss.forward

    def spy_loss(self, logits, target):
        seen.append(("target", "cpu", target.device.type))
        seen.append(("logits", "cpu", logits.device.type))
        return forward(self, logits, target)

    monkeypatch.setattr(segment, "to_model_input", spy_input)
    monkeypatch.setattr(segment.SegLoss, "forward", spy_loss)
    result = train_segmentation(
        _discs(2, 0, "a"), _discs(1, 1, "b"), CLASSES, _config(steps_per_epoch=3, device="cpu")
    )
    inputs = [s for s in seen if s[0] == "input"]
    assert len(inputs) == 3 and all(want == "cpu" == got for _, want, got in inputs)
    assert [s[0] for s in seen].count("target") == 3
    assert all(got == "cpu" for _, _, got in seen)
    assert all(t.device.type == "cpu" for t in result.state_dict.values())


def test_bf16_training_runs_and_keeps_fp32_weights():
    result = train_segmentation(
        _discs(2, 0, "a"), _discs(1, 1, "b"), CLASSES, _config(steps_per_epoch=2, bf16=True)
    )
    assert result.config.bf16
    assert all(t.dtype in (torch.float32, torch.int64) for t in result.state_dict.values())


def test_a_region_sample_counts_its_tiles():
    a = _discs(1, 0, "a")[0]
    region = Sample(a.image, a.mask, "a:3-tiles", "a-0", tile_ids=("t1", "t2", "t3"))
    result = train_segmentation([region], _discs(1, 1, "b"), CLASSES, _config())
    assert result.n_train == 3 and result.n_val == 1


def test_the_weight_average_ramps_its_decay_and_copies_counts():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.BatchNorm2d(1))
    average = WeightAverage(model, decay=0.99)
    start = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.fill_(2.0)
        model[1].num_batches_tracked.fill_(5)
    average.update(model)
    d = 2 / 11  # (1 + n) / (10 + n) after the first update, far below 0.99
    for mine, old, new in zip(average.model.parameters(), start, model.parameters(), strict=True):
        assert torch.allclose(mine, d * old + (1 - d) * new)
    assert torch.allclose(average.model[1].running_mean, torch.tensor([(1 - d) * 2.0]))
    assert int(average.model[1].num_batches_tracked) == 5
    average.updates = 10_000
    assert average.current_decay() == 0.99
    assert not any(p.requires_grad for p in average.model.parameters())


def test_with_ema_the_run_validates_and_keeps_the_average(monkeypatch):
    """The kept weights are the moving average of the start weights and the weights after
    every step, computed here by hand from snapshots; the raw weights at the end are those of
    the same seed's run without ema_decay."""
    snapshots: list[dict[str, torch.Tensor]] = []
    init, update = WeightAverage.__init__, WeightAverage.update

    def copy_of(model):
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def spy_init(self, model, decay):
        snapshots.append(copy_of(model))
        init(self, model, decay)

    def spy_update(self, model):
        snapshots.append(copy_of(model))
        update(self, model)

    monkeypatch.setattr(WeightAverage, "__init__", spy_init)
    monkeypatch.setattr(WeightAverage, "update", spy_update)
    train, val = _discs(2, 0, "a"), _discs(1, 1, "b")
    config = _config(encoder_depth=3, steps_per_epoch=3)
    plain = train_segmentation(train, val, CLASSES, config)
    assert not snapshots
    averaged = train_segmentation(train, val, CLASSES, config.model_copy(update={"ema_decay": 0.5}))
    assert len(snapshots) == 4 and averaged.config.ema_decay == 0.5
    start, *steps = snapshots
    for key, value in averaged.state_dict.items():
        if not value.is_floating_point():
            assert torch.equal(value, steps[-1][key])  # counts are copied
            continue
        assert torch.allclose(steps[-1][key], plain.state_dict[key], atol=1e-6)
        expected = start[key]
        for n, snap in enumerate(steps, 1):
            d = min(0.5, (1 + n) / (10 + n))
            expected = d * expected + (1 - d) * snap[key]
        assert torch.allclose(value, expected, atol=1e-6), key
    conv = next(k for k, v in plain.state_dict.items() if v.ndim == 4)
    assert not torch.allclose(averaged.state_dict[conv], plain.state_dict[conv])
