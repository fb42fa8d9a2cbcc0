"""Scoring unlabelled tiles as a Ray Data job: the same scores as here, computed on Ray.

Promises:
- The tiles' PNG bytes are read from the tiles table's current Parquet files (its Delta
  version, never a file the log has removed) with pyarrow, in Ray tasks, on whichever node
  runs them, a page at a time and only the wanted tiles: the job process never holds the
  pixels. (Not ``ray.data.read_parquet``: its threaded path listing imports
  ``fsspec.implementations.http`` from several threads at once, and without aiohttp the
  failed import races into an ImportError that fails the read.)
- Tiles are scored by :func:`training.strategies.iter_scores`, the function the local path
  calls, in ``map_batches`` on an actor pool (``ray.data.ActorPoolStrategy``). Each actor
  loads the model once and asks for :data:`ACTOR_CPUS` CPU, so actors leave CPUs free for
  the read tasks that feed them (with a whole CPU each, two actors on two CPUs starved the
  reads and the pool deadlocked). Inference settings are the local path's
  (:func:`training.service.scoring.scoring_inference`: bf16 where the CPU has it natively).
- :func:`score_on_ray` yields each wanted tile's score once, in no fixed order; it never
  writes. The job process writes them, through the store's score cache.
- A scoring actor that dies is replaced by Ray (actor pools retry failed tasks), so the
  scores still come out complete.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dataset.store import Store
from training.cluster import stream_with_cancel

__all__ = ["ACTOR_CPUS", "RayScore", "actor_count", "score_on_ray", "tile_files"]

ACTOR_CPUS = 0.5
_COLUMNS = ["tile_id", "smear_id", "image_png"]


@dataclass(frozen=True)
class RayScore:
    """One tile's score as an actor computed it.

    Shape:
        features: (F,) float32.
    """

    tile_id: str
    smear_id: str
    score: float
    features: np.ndarray


def tile_files(store: Store, tile_ids: Collection[str]) -> tuple[list[str], set[str]]:
    """The tiles table's current files that hold wanted tiles with their pixels, and the
    wanted tiles that have no stored pixels there (stored before the table kept them)."""
    wanted = set(tile_ids)
    root = store.tables.path("tiles").resolve()
    paths: list[str] = []
    with_png: set[str] = set()
    for fragment in store.tables.dataset("tiles").get_fragments():
        path = str(root / fragment.path)  # named relative to the table's root
        pf = pq.ParquetFile(path)
        ids = set(pf.read(columns=["tile_id"]).column(0).to_pylist()) & wanted
        if ids and "image_png" in pf.schema_arrow.names:
            paths.append(path)
            with_png |= ids
    return paths, wanted - with_png


def actor_count(cpus: float) -> int:
    """Scoring actors for a cluster of ``cpus`` CPUs: half its CPUs' worth, at least one."""
    return max(1, int(cpus * 0.5 / ACTOR_CPUS))


def _read_tiles(files: pa.Table, wanted: frozenset[str]) -> Iterator[pa.Table]:
    """A read task: the wanted tiles' rows of one Parquet file, a page at a time."""
    for path in files.column("path").to_pylist():
        pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=2**20)
        for batch in pf.iter_batches(batch_size=64, columns=_COLUMNS, use_threads=False):
            ids = batch.column(0)
            keep = pa.array([tile_id in wanted for tile_id in ids.to_pylist()], pa.bool_())
            if keep.true_count:
                yield pa.Table.from_batches([batch.filter(keep)])


class _TileScorer:
    """One actor of the pool: the model, loaded once, scores batches of tiles."""

    def __init__(self, workspace: str, model_id: str, strategy: str):
        import torch

        from training.service.models import load_model
        from training.service.scoring import scoring_inference

        torch.set_num_threads(max(1, int(ACTOR_CPUS)))
        self.loaded = load_model(Path(workspace), model_id)
        self.inference = scoring_inference(self.loaded)
        self.strategy = strategy

    def __call__(self, batch: pa.Table) -> pa.Table:
        from dataset.png import decode_rgb
        from training.strategies import Candidate, iter_scores

        candidates = (
            Candidate(r["tile_id"], r["smear_id"], np.ascontiguousarray(decode_rgb(r["image_png"])))
            for r in batch.to_pylist()
        )
        scores = list(iter_scores(candidates, self.strategy, self.loaded.model, self.inference))
        return pa.table(
            {
                "tile_id": pa.array([s.tile_id for s in scores], pa.string()),
                "smear_id": pa.array([s.smear_id for s in scores], pa.string()),
                "score": pa.array([s.score for s in scores], pa.float64()),
                "features": pa.array(
                    [s.features.astype(np.float32).tolist() for s in scores],
                    pa.list_(pa.float32()),
                ),
            }
        )


def score_on_ray(
    store: Store,
    strategy: str,
    model_id: str,
    paths: list[str],
    tile_ids: Collection[str],
    *,
    actors: int,
    should_stop: Callable[[], bool],
    batch_size: int = 16,
    scorer: type = _TileScorer,
) -> Iterator[RayScore]:
    """Score ``tile_ids`` (found in ``paths``, see :func:`tile_files`) on the connected Ray.

    Args:
        store: The workspace (its path must be the same on every Ray node).
        strategy: A strategy that needs the model (random needs no Ray).
        model_id: The checkpoint every actor loads.
        actors: Size of the actor pool.
        should_stop: Polled while waiting on Ray; True ends the run with ``JobCancelled``.
        batch_size: Tiles per ``map_batches`` call.
        scorer: The actor class (constructed with ``workspace, model_id, strategy``, called
            with a batch of tiles); another one only to test what happens when one dies.
    """
    import ray.data

    wanted = frozenset(tile_ids)
    if not wanted:
        return
    files = ray.data.from_items([{"path": path} for path in paths])
    tiles = files.map_batches(
        _read_tiles, fn_kwargs={"wanted": wanted}, batch_size=1, batch_format="pyarrow"
    )
    scored = tiles.map_batches(
        scorer,
        fn_constructor_kwargs={
            "workspace": str(Path(store.root).resolve()),
            "model_id": model_id,
            "strategy": strategy,
        },
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=ACTOR_CPUS,
        batch_size=batch_size,
        batch_format="pyarrow",
    )
    seen: set[str] = set()
    batches = scored.iter_batches(batch_size=None, batch_format="pyarrow")
    for batch in stream_with_cancel(batches, should_stop):
        for row in batch.to_pylist():
            if row["tile_id"] in seen:  # a tile stored twice is scored once
                continue
            seen.add(row["tile_id"])
            yield RayScore(
                row["tile_id"],
                row["smear_id"],
                float(row["score"]),
                np.asarray(row["features"], np.float32),
            )
