"""Active-learning strategies: registry, ranking direction, diversity rules, heat maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.inference import InferenceConfig
from training.strategies import (
    STRATEGIES,
    Candidate,
    FeatureSpread,
    PerSmearCap,
    TileScore,
    get_diversity,
    get_strategy,
    rank_tiles,
    score_tiles,
    uncertainty_map,
)

INFER = InferenceConfig(window=64)


class RednessModel(torch.nn.Module):
    """Two classes; confident on red pixels, flat on grey ones, blind to position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red = (x[:, :1] - x[:, 1:2]) * 5
        return torch.cat([red, -red], dim=1)


class RampModel(RednessModel):
    """Adds a left-to-right ramp, so flipping a grey tile flips its prediction."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ramp = torch.linspace(-2, 2, x.shape[-1]).expand_as(x[:, :1])
        return super().forward(x) + torch.cat([ramp, -ramp], dim=1)


def _tile(tile_id: str, colour: tuple[int, int, int], smear: str = "s1") -> Candidate:
    image = np.empty((64, 64, 3), np.uint8)
    image[:] = colour
    return Candidate(tile_id, smear, image)


# After ImageNet normalisation this "grey" has equal red and green inputs: a flat prediction.
GREY, RED = (158, 150, 150), (230, 40, 40)


def test_registry_lists_valid_names_for_an_unknown_one():
    assert set(STRATEGIES) >= {"random", "entropy", "margin", "tta"}
    with pytest.raises(ValueError, match="entropy, margin, random, tta"):
        get_strategy("bald")
    with pytest.raises(ValueError, match="feature_spread, per_smear"):
        get_diversity("kmeans")


@pytest.mark.parametrize("name", ["entropy", "margin"])
def test_flat_probabilities_rank_above_confident_ones(name):
    tiles = [_tile("confident", RED), _tile("flat", GREY)]
    ranked = rank_tiles(tiles, name, RednessModel(), INFER)
    assert [s.tile_id for s in ranked] == ["flat", "confident"]
    assert ranked[0].score > 0.95
    assert ranked[1].score < 0.05


def test_tta_scores_disagreement_between_views_not_flatness():
    tiles = [_tile("red", RED), _tile("grey", GREY)]
    consistent = score_tiles(tiles, "tta", RednessModel(), INFER)
    assert max(s.score for s in consistent) < 1e-4  # flat but the same in every view
    ranked = rank_tiles(tiles, "tta", RampModel(), INFER)
    assert ranked[0].tile_id == "grey" and ranked[0].score > 0.05 > ranked[1].score


def test_random_needs_no_model_and_keeps_a_tiles_score():
    tiles = [_tile(f"t{i}", GREY) for i in range(6)]
    first = {s.tile_id: s.score for s in score_tiles(tiles, "random", seed=7)}
    fewer = {s.tile_id: s.score for s in score_tiles(tiles[2:], "random", seed=7)}
    assert all(first[k] == v for k, v in fewer.items())
    other = {s.tile_id: s.score for s in score_tiles(tiles, "random", seed=8)}
    assert other != first


def test_model_strategies_need_a_model():
    with pytest.raises(ValueError, match="needs a segmentation model"):
        score_tiles([_tile("a", GREY)], "entropy")


def test_scores_keep_input_order_and_optional_maps():
    tiles = [_tile("a", RED), _tile("b", GREY), _tile("c", RED)]
    scores = score_tiles(tiles, "margin", RednessModel(), INFER, keep_maps=True)
    assert [s.tile_id for s in scores] == ["a", "b", "c"]
    assert all(s.uncertainty.shape == (64, 64) for s in scores)
    assert score_tiles(tiles, "margin", RednessModel(), INFER)[0].uncertainty is None


def test_uncertainty_map_is_per_pixel_and_bounded():
    image = np.empty((50, 70, 3), np.uint8)
    image[:, :35] = RED
    image[:, 35:] = GREY
    for name in ("entropy", "margin", "tta", "random"):
        u = uncertainty_map(name, RampModel(), image, INFER)
        assert u.shape == (50, 70) and u.min() >= 0 and u.max() <= 1
        assert u[:, 40:].mean() > u[:, :30].mean()


def _scores(smears: list[str]) -> list[TileScore]:
    return [
        TileScore(f"t{i}", smear, score=1.0 - i / 100, features=np.array([i % 2, 0.0]))
        for i, smear in enumerate(smears)
    ]


def test_per_smear_cap_spreads_the_top_of_the_queue():
    ranked = _scores(["a"] * 6 + ["b", "c"])
    queue = PerSmearCap(k=2).order(ranked, top=4)
    assert [s.smear_id for s in queue[:4]] == ["a", "a", "b", "c"]
    assert len(queue) == len(ranked) and {s.tile_id for s in queue} == {s.tile_id for s in ranked}


def test_feature_spread_picks_an_unlike_tile_early():
    ranked = [
        TileScore(f"dup{i}", "a", 1.0 - i / 100, features=np.array([0.0, 0.0])) for i in range(5)
    ] + [TileScore("odd", "b", 0.5, features=np.array([5.0, 5.0]))]
    queue = FeatureSpread(weight=0.5).order(ranked, top=3)
    assert queue[0].tile_id == "dup0" and "odd" in [s.tile_id for s in queue[:3]]
    assert len(queue) == len(ranked)


def test_rank_tiles_applies_a_named_diversity_rule():
    tiles = [_tile(f"a{i}", GREY, "a") for i in range(4)] + [_tile("b0", RED, "b")]
    queue = rank_tiles(tiles, "entropy", RednessModel(), INFER, diversity="per_smear", top=3)
    assert [s.smear_id for s in queue[:3]] == ["a", "a", "b"]
