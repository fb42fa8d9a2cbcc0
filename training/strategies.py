"""Active learning: which unlabelled tiles to label next.

The promise of this module: a strategy is one small class with a name, registered in
:data:`STRATEGIES`; :func:`get_strategy` answers an unknown name with the valid ones. Each
strategy turns the class probabilities of a tile (from :func:`training.inference.iter_proba`,
the same predictions the labeller sees) into a per-pixel uncertainty map in [0, 1] and a tile
score (the map's mean; higher = label sooner). A diversity rule, also chosen by name, then
reorders the ranking so the top of the queue is not ten near-identical tiles of one smear.

Strategies:
    random:  a stable pseudo-random order (a baseline; needs no model).
    entropy: normalised Shannon entropy of the class probabilities.
    margin:  one minus the gap between the two most likely classes.
    tta:     epistemic disagreement across flips and a rotation (mutual information between
             the prediction and the view), high where the model contradicts itself.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from training.inference import InferenceConfig, iter_proba
from training.model import SegModel

__all__ = [
    "DIVERSITY",
    "STRATEGIES",
    "Candidate",
    "Diversity",
    "FeatureSpread",
    "PerSmearCap",
    "Strategy",
    "TileScore",
    "get_diversity",
    "get_strategy",
    "iter_scores",
    "rank_tiles",
    "score_tiles",
    "uncertainty_map",
]


@dataclass(frozen=True, eq=False)
class Candidate:
    """An unlabelled tile offered for ranking.

    Shape:
        image: (H, W, 3) uint8.
    """

    tile_id: str
    smear_id: str
    image: np.ndarray


@dataclass(frozen=True, eq=False)
class TileScore:
    """A tile's place in the queue.

    Attributes:
        score: Higher means label sooner.
        uncertainty: Per-pixel map in [0, 1] for the heat map, if kept.
        features: Small descriptor used by diversity rules (colour statistics and mean class
            probabilities).

    Shape:
        uncertainty: (H, W) float32; features: (F,) float32.
    """

    tile_id: str
    smear_id: str
    score: float
    uncertainty: np.ndarray | None = None
    features: np.ndarray | None = None


# Views as (forward on an (H, W, ...) image, inverse on a (C, H, W) probability map).
_VIEWS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "identity": (lambda im: im, lambda p: p),
    "hflip": (lambda im: im[:, ::-1], lambda p: p[:, :, ::-1]),
    "vflip": (lambda im: im[::-1], lambda p: p[:, ::-1]),
    "rot90": (lambda im: np.rot90(im, 1, (0, 1)), lambda p: np.rot90(p, -1, (1, 2))),
}


def _entropy(probs: np.ndarray) -> np.ndarray:
    p = np.clip(probs, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=0)


class Strategy(ABC):
    """One way of scoring tiles. Subclasses set ``name`` and implement the pixel map."""

    name: ClassVar[str]
    description: ClassVar[str]
    # Views of the image the model is run on; () means the strategy needs no model.
    views: ClassVar[tuple[str, ...]] = ("identity",)

    @abstractmethod
    def pixel_uncertainty(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        """Uncertainty in [0, 1] per pixel from one probability map per view.

        Shape:
            probs: each (C, H, W), already mapped back to the original orientation;
            returns (H, W) float32.
        """

    def score(
        self, candidate: Candidate, probs: Sequence[np.ndarray], seed: int
    ) -> tuple[float, np.ndarray | None]:
        """Tile score and pixel map (the mean of the map by default)."""
        del candidate, seed
        u = self.pixel_uncertainty(probs).astype(np.float32)
        return float(u.mean()), u


STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator adding a strategy to :data:`STRATEGIES` under its ``name``."""
    STRATEGIES[cls.name] = cls
    return cls


@register
class RandomStrategy(Strategy):
    name = "random"
    description = "Random order (a baseline); stable for a given seed and tile id."
    views = ()

    def pixel_uncertainty(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        raise TypeError("The random strategy has no pixel uncertainty; it needs no model.")

    def score(
        self, candidate: Candidate, probs: Sequence[np.ndarray], seed: int
    ) -> tuple[float, np.ndarray | None]:
        return self.key(candidate.tile_id, seed), None

    @staticmethod
    def key(tile_id: str, seed: int = 0) -> float:
        """The tile's place in the random order, in [0, 1): needs neither pixels nor a model.

        A hash instead of a running generator: a tile keeps its place when others come or go.
        """
        return zlib.crc32(f"{seed}:{tile_id}".encode()) / 2**32


@register
class EntropyStrategy(Strategy):
    name = "entropy"
    description = "Shannon entropy of the predicted class probabilities."

    def pixel_uncertainty(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        p = probs[0]
        return _entropy(p) / np.log(max(p.shape[0], 2))


@register
class MarginStrategy(Strategy):
    name = "margin"
    description = "One minus the gap between the two most likely classes."

    def pixel_uncertainty(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        p = probs[0]
        if p.shape[0] < 2:
            return np.zeros(p.shape[1:], dtype=np.float32)
        top2 = np.partition(p, p.shape[0] - 2, axis=0)[-2:]
        return 1.0 - (top2[1] - top2[0])


@register
class TTAStrategy(Strategy):
    name = "tta"
    description = "Disagreement of predictions across flips and a 90-degree rotation."
    views = ("identity", "hflip", "vflip", "rot90")

    def pixel_uncertainty(self, probs: Sequence[np.ndarray]) -> np.ndarray:
        stack = np.stack(probs)
        # Mutual information: entropy of the mean minus the mean entropy. Zero when every view
        # agrees (even on a flat prediction), so it measures the model's inconsistency only.
        mi = _entropy(stack.mean(axis=0)) - np.mean([_entropy(p) for p in stack], axis=0)
        return np.clip(mi / np.log(max(stack.shape[1], 2)), 0.0, 1.0)


def get_strategy(name: str) -> Strategy:
    """A strategy instance by name; unknown names raise ``ValueError`` listing valid ones."""
    try:
        return STRATEGIES[name]()
    except KeyError:
        raise ValueError(
            f"Unknown strategy {name!r}; choose one of: {', '.join(sorted(STRATEGIES))}."
        ) from None


def _features(image: np.ndarray, probs: np.ndarray | None) -> np.ndarray:
    pixels = image.reshape(-1, 3).astype(np.float32) / 255.0
    parts = [pixels.mean(axis=0), pixels.std(axis=0)]
    if probs is not None:
        parts.append(probs.reshape(probs.shape[0], -1).mean(axis=1))
    return np.concatenate(parts).astype(np.float32)


def _view_stream(candidates: Iterable[Candidate], views: Sequence[str], out: deque[Candidate]):
    for candidate in candidates:
        out.append(candidate)
        for view in views:
            yield np.ascontiguousarray(_VIEWS[view][0](candidate.image))


def iter_scores(
    candidates: Iterable[Candidate],
    strategy: str | Strategy,
    model: SegModel | None = None,
    inference: InferenceConfig | None = None,
    *,
    seed: int = 0,
    keep_maps: bool = False,
) -> Iterator[TileScore]:
    """Score tiles one by one, in input order, batching model calls across tiles."""
    strategy = get_strategy(strategy) if isinstance(strategy, str) else strategy
    if not strategy.views:
        for c in candidates:
            score, _ = strategy.score(c, (), seed)
            yield TileScore(c.tile_id, c.smear_id, score, None, _features(c.image, None))
        return
    if model is None:
        raise ValueError(
            f"Strategy {strategy.name!r} needs a segmentation model; train one first "
            "or use the random strategy."
        )
    seen: deque[Candidate] = deque()  # read by iter_proba ahead of the scores
    views = strategy.views
    stream = iter_proba(model, _view_stream(candidates, views, seen), inference)
    while True:
        per_view = []
        for view in views:
            try:
                probs = next(stream)
            except StopIteration:
                return
            per_view.append(np.ascontiguousarray(_VIEWS[view][1](probs)))
        candidate = seen.popleft()
        score, u = strategy.score(candidate, per_view, seed)
        yield TileScore(
            candidate.tile_id,
            candidate.smear_id,
            score,
            u if keep_maps else None,
            _features(candidate.image, per_view[0]),
        )


def score_tiles(
    candidates: Iterable[Candidate],
    strategy: str | Strategy,
    model: SegModel | None = None,
    inference: InferenceConfig | None = None,
    *,
    seed: int = 0,
    keep_maps: bool = False,
) -> list[TileScore]:
    """Scores of all tiles, in input order (see :func:`iter_scores`)."""
    return list(iter_scores(candidates, strategy, model, inference, seed=seed, keep_maps=keep_maps))


def uncertainty_map(
    strategy: str | Strategy,
    model: SegModel,
    image: np.ndarray,
    inference: InferenceConfig | None = None,
) -> np.ndarray:
    """Per-pixel uncertainty of one image for the heat map.

    Shape:
        image: (H, W, 3) uint8; returns (H, W) float32 in [0, 1].
    """
    strategy = get_strategy(strategy) if isinstance(strategy, str) else strategy
    if not strategy.views:
        strategy = EntropyStrategy()  # a random order has no map; show what the model doubts
    (score,) = iter_scores([Candidate("", "", image)], strategy, model, inference, keep_maps=True)
    return score.uncertainty


class Diversity(ABC):
    """A rule that reorders a ranking (best first) to spread the top of the queue."""

    name: ClassVar[str]

    @abstractmethod
    def order(self, ranked: Sequence[TileScore], top: int) -> list[TileScore]:
        """All of ``ranked``, reordered so the first ``top`` are diverse."""


@dataclass(frozen=True)
class PerSmearCap(Diversity):
    """At most ``k`` tiles of one smear in the top of the queue; the rest follow by score."""

    k: int = 2
    name: ClassVar[str] = "per_smear"

    def order(self, ranked: Sequence[TileScore], top: int) -> list[TileScore]:
        if self.k < 1:
            raise ValueError(f"per_smear needs k >= 1, got {self.k}.")
        taken: Counter[str] = Counter()
        head, tail = [], []
        for s in ranked:
            if len(head) < top and taken[s.smear_id] < self.k:
                head.append(s)
                taken[s.smear_id] += 1
            else:
                tail.append(s)
        return head + tail


@dataclass(frozen=True)
class FeatureSpread(Diversity):
    """Greedy: each next pick trades score against distance to tiles already picked.

    Among the best ``pool * top`` tiles, repeatedly take the one maximising
    ``(1 - weight) * score_rank + weight * distance`` (both scaled to [0, 1]), where distance
    is to the nearest tile already picked, in colour/class-mix feature space.
    """

    weight: float = 0.5
    pool: int = 4
    name: ClassVar[str] = "feature_spread"

    def order(self, ranked: Sequence[TileScore], top: int) -> list[TileScore]:
        if not 0 <= self.weight <= 1:
            raise ValueError(f"feature_spread weight must lie in [0, 1], got {self.weight}.")
        pool = list(ranked[: max(top, 1) * self.pool])
        if len(pool) <= 1 or any(s.features is None for s in pool):
            return list(ranked)
        feats = np.stack([s.features for s in pool]).astype(np.float64)
        feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-9)
        rank_value = 1.0 - np.arange(len(pool)) / max(len(pool) - 1, 1)
        chosen = [0]
        nearest = np.linalg.norm(feats - feats[0], axis=1)
        while len(chosen) < min(top, len(pool)):
            spread = nearest / (nearest.max() + 1e-12)
            value = (1 - self.weight) * rank_value + self.weight * spread
            value[chosen] = -np.inf
            pick = int(value.argmax())
            chosen.append(pick)
            nearest = np.minimum(nearest, np.linalg.norm(feats - feats[pick], axis=1))
        picked = {id(pool[i]) for i in chosen}
        return [pool[i] for i in chosen] + [s for s in ranked if id(s) not in picked]


DIVERSITY: dict[str, type[Diversity]] = {"per_smear": PerSmearCap, "feature_spread": FeatureSpread}


def get_diversity(name: str, **options) -> Diversity:
    """A diversity rule by name (``per_smear`` or ``feature_spread``) with its options."""
    try:
        cls = DIVERSITY[name]
    except KeyError:
        raise ValueError(
            f"Unknown diversity rule {name!r}; choose one of: {', '.join(sorted(DIVERSITY))}."
        ) from None
    return cls(**options)


def rank_tiles(
    candidates: Iterable[Candidate],
    strategy: str | Strategy,
    model: SegModel | None = None,
    inference: InferenceConfig | None = None,
    *,
    diversity: Diversity | str | None = None,
    top: int = 20,
    seed: int = 0,
) -> list[TileScore]:
    """The labelling queue: all candidates, best first, the first ``top`` spread by ``diversity``.

    Ties keep input order, so the queue is deterministic.
    """
    scores = score_tiles(candidates, strategy, model, inference, seed=seed)
    ranked = sorted(scores, key=lambda s: -s.score)
    if diversity is None:
        return ranked
    rule = get_diversity(diversity) if isinstance(diversity, str) else diversity
    return rule.order(ranked, top)
