"""The next tiles to label: ranked by cached scores, spread over smears, or a random order
when the scores do not separate the tiles.

Promises:
- Only unlabelled, unskipped tiles outside the test split are suggested.
- When the best :data:`FLAT_TOP` scores lie within :data:`FLAT_TOLERANCE` of the best one,
  the ranking is replaced by a random order spread over smears, and the result says why
  (:func:`flat_note`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dataset.store import Store, StoreError
from training.service.models import LoadedModel
from training.service.scoring import cached_scores, score_unlabelled, unlabelled_tile_ids

__all__ = ["FLAT_TOLERANCE", "FLAT_TOP", "Suggestion", "Suggestions", "flat_note", "suggest"]


@dataclass(frozen=True)
class Suggestion:
    tile_id: str
    smear_id: str
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"tile_id": self.tile_id, "smear_id": self.smear_id, "score": self.score}


# Scores "do not separate tiles" when the best FLAT_TOP lie within FLAT_TOLERANCE of the best.
FLAT_TOP = 20
FLAT_TOLERANCE = 0.01


@dataclass(frozen=True)
class Suggestions:
    """The next tiles to label and the order that ranked them.

    Attributes:
        tiles: Best first.
        strategy: The strategy asked for.
        order: The order that ranked ``tiles``: ``strategy``, or ``"random"`` (spread over
            smears) when its scores did not separate the tiles.
        note: Why ``order`` differs from ``strategy``; None when it does not.
    """

    tiles: list[Suggestion]
    strategy: str
    order: str
    note: str | None = None

    def __iter__(self) -> Iterator[Suggestion]:
        return iter(self.tiles)

    def __len__(self) -> int:
        return len(self.tiles)

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "order": self.order,
            "note": self.note,
            "tiles": [t.to_json() for t in self.tiles],
        }


def flat_note(strategy: str, scores: Sequence[float]) -> str | None:
    """Why ``scores`` (best first) cannot rank tiles, or None when they can.

    They cannot when the best :data:`FLAT_TOP` (or all, if fewer, at least two) lie within
    :data:`FLAT_TOLERANCE` (1 %) of the best score, as with a model that is equally sure, or
    equally unsure, everywhere.
    """
    head = list(scores[:FLAT_TOP])
    if len(head) < 2 or head[0] - head[-1] > FLAT_TOLERANCE * abs(head[0]):
        return None
    return (
        f"The {strategy} scores do not separate the tiles: the top {len(head)} lie within "
        f"{FLAT_TOLERANCE:.0%} of each other ({head[-1]:.3f} to {head[0]:.3f}), so the model's "
        "uncertainty says nothing about which tile to label first. Showing a random order "
        "spread over smears instead; label some of these and retrain for a ranking that means "
        "something."
    )


def suggest(
    store: Store,
    strategy: str = "entropy",
    top: int = 10,
    *,
    loaded: LoadedModel | None = None,
    diversity: str | None = "per_smear",
    score_missing: bool = True,
) -> Suggestions:
    """The next tiles to label, best first, spread over smears by ``diversity``.

    Scores come from the cache; tiles not yet scored by this checkpoint are scored first
    when ``score_missing`` (the CLI), or left out (the page, which queues a scoring job).
    When the scores do not separate the tiles (:func:`flat_note`), every open tile is put in
    the random order with ``per_smear`` diversity instead, and the result says so.
    """
    from training.strategies import RandomStrategy, TileScore, get_diversity

    if strategy != "random" and loaded is None:
        raise StoreError(
            f"The {strategy!r} strategy needs a segmentation model; train one first, "
            "or use --strategy random."
        )
    model_id = loaded.model_id if loaded and strategy != "random" else "none"
    if score_missing:
        score_unlabelled(store, strategy, loaded if strategy != "random" else None)
    cached = cached_scores(store, model_id, strategy)
    open_ids = set(unlabelled_tile_ids(store))
    ranked = sorted(
        (
            TileScore(t, smear, score, None, None if f is None else np.asarray(f, np.float32))
            for t, (smear, score, f) in cached.items()
            if t in open_ids
        ),
        key=lambda s: (-s.score, s.tile_id),
    )
    order = strategy
    note = flat_note(strategy, [s.score for s in ranked]) if strategy != "random" else None
    if note is not None:
        smear_of = {t.tile_id: t.smear_id for t in store.tiles()}
        ranked = sorted(
            (TileScore(t, smear_of[t], RandomStrategy.key(t)) for t in open_ids),
            key=lambda s: (-s.score, s.tile_id),
        )
        order, diversity = "random", "per_smear"
    if diversity:
        ranked = get_diversity(diversity).order(ranked, top)
    tiles = [Suggestion(s.tile_id, s.smear_id, float(s.score)) for s in ranked[:top]]
    return Suggestions(tiles, strategy, order, note)
