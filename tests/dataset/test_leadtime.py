"""Tests for dataset.leadtime: each tile counted once by its first labelling, grouped by how it
was started, with a ratio of medians only when both groups have enough tiles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dataset.images import encode_png_lossless, smear_id_for
from dataset.leadtime import (
    HAND,
    MIN_TILES,
    MODEL,
    NOTE,
    RULES,
    RULES_MODEL_ID,
    lead_times,
    report_from_revisions,
)
from dataset.schema import UNLABELLED
from dataset.store import NewSmear, Store


@pytest.fixture
def tiles(store: Store, make_smear) -> list:
    rgb = make_smear(384, 192, seed=3).rgb  # 6 x 3 tiles of 64 px
    smear_id = smear_id_for(rgb)
    store.add_smear(NewSmear(smear_id, encode_png_lossless(rgb), 384, 192, label="t.png"))
    out = store.tiles(smear_id)
    assert len(out) >= 16
    return out


def painted(tile, n_px: int) -> np.ndarray:
    """A mask with the first ``n_px`` pixels labelled (class 1), the rest unlabelled."""
    mask = np.full(tile.h * tile.w, UNLABELLED, dtype=np.uint8)
    mask[:n_px] = 1
    return mask.reshape(tile.h, tile.w)


def save(store: Store, tile, seconds, *, source="manual", model_id=None, base=None, n_px=100):
    return store.save_mask(
        tile.tile_id,
        painted(tile, n_px),
        annotator="ann",
        source=source,
        model_id=model_id,
        base_revision=base,
        seconds=seconds,
        check_base=source != "import",
    )


def test_groups_medians_ratio_and_per_model_rows_from_saved_revisions(store, tiles):
    hand_seconds = [40.0, 50.0, 60.0, 70.0, 80.0]
    model_seconds = {"m-good": [10.0, 12.0, 14.0], "m-old": [30.0, 34.0]}
    for tile, s in zip(tiles[:5], hand_seconds, strict=True):
        save(store, tile, s, n_px=200)
    rest = iter(tiles[5:])
    for model_id, seconds in model_seconds.items():
        for s in seconds:
            save(store, next(rest), s, source="prefill", model_id=model_id, n_px=400)
    rules_tile = next(rest)
    save(store, rules_tile, 25.0, source="prefill", model_id=RULES_MODEL_ID, n_px=300)
    # A later correction of an already-labelled tile is not its first labelling.
    save(store, tiles[0], 500.0, base=1)
    # An imported mask is timed by no one; the manual correction on top of it is not
    # hand-painting.
    imported = next(rest)
    save(store, imported, None, source="import")
    save(store, imported, 9.0, base=1)
    # An untimed first labelling keeps its tile out of the groups, even when timed later.
    untimed = next(rest)
    save(store, untimed, None)
    save(store, untimed, 3.0, source="prefill", model_id="m-good", base=1)

    report = lead_times(store)

    hand, model, rules = (report.group(g) for g in (HAND, MODEL, RULES))
    assert (hand.tiles, hand.median_seconds, hand.q1_seconds, hand.q3_seconds) == (5, 60, 50, 70)
    assert hand.iqr_seconds == 20 and hand.mean_labelled_px == 200
    assert model.tiles == 5 and model.median_seconds == 14 and model.mean_labelled_px == 400
    assert (rules.tiles, rules.median_seconds, rules.iqr_seconds) == (1, 25, 0)
    assert [(m.name, m.tiles, m.median_seconds) for m in report.models] == [
        ("m-good", 3, 12),
        ("m-old", 2, 32),
    ]
    by_group = {c.prefill_group: c for c in report.comparisons}
    assert by_group[MODEL].ratio == pytest.approx(14 / 60)
    assert "0.23×" in by_group[MODEL].sentence
    assert by_group[RULES].ratio is None and "Too few" in by_group[RULES].sentence
    assert (report.untimed, report.corrected_imports) == (1, 1)
    assert {f.tile_id: f.seconds for f in report.first_labellings}[tiles[0].tile_id] == 40
    assert report.note == NOTE and "not assigned at random" in report.note


def test_too_few_tiles_gives_no_ratio(store, tiles):
    for tile in tiles[: MIN_TILES - 1]:
        save(store, tile, 30.0)
    for tile in tiles[MIN_TILES : 2 * MIN_TILES]:
        save(store, tile, 10.0, source="prefill", model_id="m1")
    report = lead_times(store)
    assert report.group(HAND).tiles == MIN_TILES - 1 and report.group(MODEL).tiles == MIN_TILES
    assert all(c.ratio is None for c in report.comparisons)
    assert all("Too few" in c.sentence for c in report.comparisons)
    assert f"{MIN_TILES - 1} hand-painted" in report.comparisons[0].sentence


def test_imports_alone_count_in_no_group(store, tiles):
    for tile in tiles[:3]:
        save(store, tile, 12.0, source="import")
    report = lead_times(store)
    assert [g.tiles for g in report.groups] == [0, 0, 0]
    assert (report.untimed, report.corrected_imports, report.models) == (0, 0, ())
    assert report.group(HAND).median_seconds is None


def test_an_empty_workspace_reports_empty_groups_and_dumps_to_json(store):
    report = lead_times(store)
    assert [g.name for g in report.groups] == [HAND, MODEL, RULES]
    doc = json.loads(json.dumps(report.model_dump(mode="json")))
    assert "first_labellings" not in doc
    assert doc["note"] == NOTE and len(doc["comparisons"]) == 2


def row(tile_id, revision, source="manual", seconds=10.0, model_id=None, base=None, n_px=50):
    return {
        "tile_id": tile_id,
        "revision": revision,
        "source": source,
        "base_revision": base,
        "seconds": seconds,
        "model_id": model_id,
        "n_labelled_px": n_px,
    }


def test_rows_in_any_order_take_the_lowest_revision_and_an_unrecorded_model_is_named():
    rows = [
        row("a", 2, seconds=99.0, base=1),
        row("a", 1, "prefill", 20.0, model_id=None),
        row("b", 1, "prefill", 5.0, base=0, model_id="m"),
    ]
    report = report_from_revisions(rows)
    assert report.group(MODEL).tiles == 2 and report.group(MODEL).median_seconds == 12.5
    assert {m.name for m in report.models} == {"unrecorded", "m"}


def test_a_zero_hand_median_gives_no_ratio():
    rows = [row(f"h{i}", 1, seconds=0.0) for i in range(MIN_TILES)]
    rows += [row(f"p{i}", 1, "prefill", 4.0, model_id="m") for i in range(MIN_TILES)]
    comparison = report_from_revisions(rows).comparisons[0]
    assert comparison.ratio is None and "0 s" in comparison.sentence


def test_unknown_group_name_is_refused_with_the_valid_ones():
    with pytest.raises(KeyError, match="hand-painted"):
        report_from_revisions([]).group("blank")


def test_cli_stats_json_carries_the_lead_times(store, tiles, capsys, monkeypatch):
    from dataset.cli import main

    monkeypatch.delenv("SMEARLAB_WORKSPACE", raising=False)
    save(store, tiles[0], 30.0)
    assert main(["--workspace", str(store.root), "stats", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)["lead_times"]
    assert [(g["name"], g["tiles"]) for g in doc["groups"]] == [(HAND, 1), (MODEL, 0), (RULES, 0)]
    assert doc["note"] == NOTE and "first_labellings" not in doc
    assert main(["--workspace", str(store.root), "stats"]) == 0
    assert "lead time: Too few tiles" in capsys.readouterr().out
