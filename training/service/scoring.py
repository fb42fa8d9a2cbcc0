"""Scoring unlabelled tiles for active learning, in the job runner or inline.

Promises:
- Only tiles worth suggesting are scored: not labelled, not skipped, not in the test split.
- Scores are cached per (checkpoint, strategy, tile) in the ``scores`` table; a tile the
  checkpoint already scored with that strategy is never scored again.
- A new current model queues one scoring job (:func:`queue_rescoring`) unless one is already
  queued or running.
- Ranking may run in bfloat16 where the CPU computes it natively (:func:`scoring_inference`);
  pre-fill and smear analysis stay in fp32.
- Where ``ray_address`` is set, a scoring job hands the model's work to a Ray Data actor pool
  (:mod:`training.cluster.scoring`) and writes what comes back through the same cache, with
  the same keys; the scores match the local ones. A run that gets fewer scores than tiles
  keeps what came and fails with the count.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from dataset.store import Store
from training.kinds import SCORE, target_of
from training.service.models import LoadedModel, check_classes, load_model
from training.service.tables import register_tables

SCORE_TARGET = target_of(SCORE)
DEFAULT_STRATEGY = "entropy"

__all__ = [
    "DEFAULT_STRATEGY",
    "SCORE_TARGET",
    "cached_scores",
    "native_bf16",
    "queue_rescoring",
    "score_job",
    "score_unlabelled",
    "scoring_inference",
    "submit_scoring",
    "unlabelled_tile_ids",
]


def unlabelled_tile_ids(store: Store) -> list[str]:
    """Tiles worth suggesting: not labelled, not skipped, and not in the test split."""
    labelled = set(store.labelled_tile_ids())
    skipped = store.skipped_tile_ids()
    tiles = [t for t in store.tiles() if t.tile_id not in labelled and t.tile_id not in skipped]
    splits = store.splits_of({t.smear_id for t in tiles}) if tiles else {}
    return [t.tile_id for t in tiles if splits[t.smear_id] != "test"]


def _candidates(store: Store, tile_ids: Iterable[str]) -> Iterator:
    from training.strategies import Candidate

    tiles = {t.tile_id: t for t in store.tiles()}
    for tile_id in tile_ids:
        yield Candidate(
            tile_id, tiles[tile_id].smear_id, np.ascontiguousarray(store.tile_image(tile_id))
        )


def cached_scores(store: Store, model_id: str, strategy: str) -> dict[str, tuple]:
    """Stored scores of one (checkpoint, strategy): tile → (smear, score, features)."""
    register_tables(store)
    flt = (pc.field("model_id") == model_id) & (pc.field("strategy") == strategy)
    t = store.tables.read("scores", ["tile_id", "smear_id", "score", "features"], flt)
    return {r["tile_id"]: (r["smear_id"], r["score"], r["features"]) for r in t.to_pylist()}


def score_unlabelled(
    store: Store,
    strategy: str,
    loaded: LoadedModel | None,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    batch: int = 64,
    ray_address: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Score every unlabelled tile not yet scored by this checkpoint and strategy.

    Args:
        ray_address: Hand the model's work to Ray there (``local``, ``auto``, ``host:port``;
            see :mod:`training.cluster`); None scores in this process. Random needs no model
            and always runs here.
        should_stop: Polled while waiting on Ray; True stops the run (``JobCancelled``).

    Returns:
        The number of tiles newly scored (cached tiles are skipped).
    """
    from training.strategies import get_strategy, iter_scores

    get_strategy(strategy)  # unknown names fail here, with the list of valid ones
    register_tables(store)
    model_id = loaded.model_id if loaded else "none"
    if loaded is not None:
        check_classes(store, loaded)
    done = cached_scores(store, model_id, strategy)
    todo = [t for t in unlabelled_tile_ids(store) if t not in done]
    if ray_address is not None and loaded is not None and todo:
        scores = _scores_on_ray(store, strategy, loaded, todo, ray_address, should_stop)
    else:
        model = loaded.model if loaded else None
        inference = scoring_inference(loaded) if loaded else None
        scores = iter_scores(_candidates(store, todo), strategy, model, inference)
    rows: list[dict] = []
    try:
        for n, s in enumerate(scores, 1):
            rows.append(
                {
                    "model_id": model_id,
                    "strategy": strategy,
                    "tile_id": s.tile_id,
                    "smear_id": s.smear_id,
                    "score": float(s.score),
                    "features": None if s.features is None else s.features.astype(np.float32),
                    "created_at": dt.datetime.now(dt.UTC),
                }
            )
            if len(rows) >= batch or n == len(todo):
                store.tables.append("scores", rows)
                rows = []
            if on_progress:
                on_progress(n, len(todo))
    finally:
        # Scores that came before a stop (a cancel, an incomplete Ray run) are right: keep them.
        if rows:
            store.tables.append("scores", rows)
    return len(todo)


def _scores_on_ray(
    store: Store,
    strategy: str,
    loaded: LoadedModel,
    todo: list[str],
    address: str,
    should_stop: Callable[[], bool],
) -> Iterator:
    """Scores of ``todo`` from a Ray actor pool; tiles without stored pixels, scored here."""
    from training.cluster import ray_session
    from training.cluster.scoring import actor_count, score_on_ray, tile_files
    from training.strategies import iter_scores

    paths, here = tile_files(store, todo)
    on_ray = set(todo) - here
    came = 0
    with ray_session(address) as session:
        for score in score_on_ray(
            store,
            strategy,
            loaded.model_id,
            paths,
            on_ray,
            actors=actor_count(session.cpus),
            should_stop=should_stop,
        ):
            came += 1
            yield score
    if came != len(on_ray):
        raise RuntimeError(
            f"Ray returned scores for {came} of {len(on_ray)} tiles; the scores that came are "
            "kept, and scoring again scores only the rest."
        )
    if here:
        inference = scoring_inference(loaded)
        order = [t for t in todo if t in here]
        yield from iter_scores(_candidates(store, order), strategy, loaded.model, inference)


def submit_scoring(workspace: Path, strategy: str) -> str:
    """Queue a scoring job for the current model; returns the job id."""
    from training.jobs import JobRunner
    from training.strategies import get_strategy

    get_strategy(strategy)
    return JobRunner(workspace).submit(SCORE, SCORE_TARGET, {"strategy": strategy}).job_id


@lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where autocast pays."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def scoring_inference(loaded: LoadedModel):
    """Inference settings for ranking tiles: bf16 autocast where the CPU has native bf16.

    Measured here (bench/segmentation_speed.py, 2 cores): scoring 25 -> 51 tiles/s, and on the
    trained Zheng checkpoint 99.93 % of pixels keep their fp32 class. A ranking tolerates that;
    pre-fill and smear analysis, which become labels and counts, stay in fp32.
    """
    config = loaded.inference_config()
    return config.model_copy(update={"bf16": True}) if native_bf16() else config


def queue_rescoring(workspace: Path, strategy: str = DEFAULT_STRATEGY) -> str | None:
    """Queue scoring for the current model unless a scoring job is already waiting or running.

    Called when the current model changes (a first model, a promotion, a roll-back), so the
    Suggestions page and the Label page's suggested order follow the new model. Tiles the
    model already scored are skipped by the job, so an unneeded run ends at once.

    The re-scoring is an automatic action, whoever made the model current: the audit trail
    records it as the account ``system`` (a ``score_start`` row).

    Returns:
        The new job id, or None when a scoring job was already pending.
    """
    from dataset import audit
    from training.jobs import JobRunner, JobState

    runner = JobRunner(workspace)
    pending = runner.list(states=[JobState.QUEUED, JobState.RUNNING])
    if any(j.kind == SCORE for j in pending):
        return None
    job_id = submit_scoring(workspace, strategy)
    audit.record(
        workspace,
        actor=audit.SYSTEM,
        action="score_start",
        object_id=job_id,
        detail={"strategy": strategy, "automatic": True},
    )
    return job_id


def score_job(ctx, params: dict[str, Any]) -> dict[str, Any]:
    """Job target: score unlabelled tiles with the current model (cached per checkpoint).

    Where ``ray_address`` is set, the model's work goes to Ray (:mod:`training.cluster`);
    progress, the log and the result come back here as for a local run.
    """
    from training.cluster import engine_address

    store = Store.open(ctx.workspace)
    strategy = params.get("strategy", DEFAULT_STRATEGY)
    loaded = load_model(ctx.workspace) if strategy != "random" else None
    address = engine_address(ctx.workspace) if loaded is not None else None
    if address is not None:
        ctx.log(f"Scoring on Ray at {address}")
    started = time.monotonic()
    n = score_unlabelled(
        store,
        strategy,
        loaded,
        on_progress=lambda i, total: ctx.progress(step=i, total=total),
        ray_address=address,
        should_stop=lambda: ctx.cancelled,
    )
    seconds = time.monotonic() - started
    ctx.log(f"Scored {n} tiles with {strategy} in {seconds:.1f} s")
    return {
        "scored": n,
        "seconds": seconds,
        "model_id": loaded.model_id if loaded else None,
        "engine": "local" if address is None else f"ray ({address})",
    }
