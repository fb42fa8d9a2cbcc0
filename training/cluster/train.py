"""Training as a Ray Train run: data-parallel workers, the job's progress and weights back here.

Promises:
- :func:`train_on_ray` runs :func:`training.segment.train_segmentation` on
  ``config.workers`` Ray Train workers (``TorchTrainer``: DistributedDataParallel, gloo on
  CPU, NCCL on GPU). The device follows ``config.device``: a CUDA device asks Ray for one GPU
  per worker. Each worker draws from its shard of the labelled samples (every ``workers``-th
  sample from its rank), which reach it through Ray's object store.
- Rank 0 takes every stop decision (cancel, time budget, patience) and broadcasts it before
  each step (:class:`training.segment.Ranks`): when each rank stopped on its own clock, DDP
  hung.
- Live progress comes back through a small actor (Ray Train V2's ``Result.metrics`` is empty
  without a checkpoint) and is handed to ``on_progress`` in this process; the best weights
  come back as rank 0's return value (``Result.return_value``) and are saved here.
- One worker at ``num_threads=1`` trains exactly as :func:`train_segmentation` does in this
  process (the same weights, bit for bit).
- A worker that fails ends the run with the reason (``FailureConfig(max_failures=0)``); the
  caller saves nothing.
- :class:`RayTraining` names where it ran: the engine, the workers and each worker's device,
  as rank 0 gathered them.
"""

from __future__ import annotations

import dataclasses
import platform
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.cluster import RaySession, ray_session
from training.segment import Ranks, Sample, SegTrainConfig, TrainResult, train_segmentation

__all__ = ["RayTraining", "train_on_ray", "worker_threads"]

_POLL_S = 0.5
_RAISED = re.compile(r"^[\w.]+(Error|Exception|Cancelled)\b")  # "ValueError: ..." in a traceback


@dataclass(frozen=True)
class RayTraining:
    """A finished Ray Train run: its result and where it ran.

    Attributes:
        result: As :func:`train_segmentation` returns it; ``checkpoint_dir`` is ``out_dir``.
        workers: Ray Train workers.
        devices: Per worker (rank order), ``host: device description``.
        address: The Ray address the job used.
    """

    result: TrainResult
    workers: int
    devices: tuple[str, ...]
    address: str

    def engine(self) -> dict[str, Any]:
        """For a model card: what trained it, and on what."""
        return {
            "engine": "ray",
            "ray_address": self.address,
            "workers": self.workers,
            "devices": list(self.devices),
        }


class _Relay:
    """An actor between rank 0 and the job: progress rows one way, a stop request the other."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.stop = False

    def put(self, row: dict) -> None:
        self.rows.append(row)

    def take(self) -> list[dict]:
        rows, self.rows = self.rows, []
        return rows

    def ask_stop(self) -> None:
        self.stop = True

    def stopped(self) -> bool:
        return self.stop


def _worker_loop(job: dict[str, Any]) -> dict[str, Any] | None:
    """One Ray Train worker: train its shard; rank 0 returns the result."""
    import ray
    import ray.train
    import torch.distributed as dist

    from training.model import describe_machine

    context = ray.train.get_context()
    ranks = Ranks(context.get_world_rank(), context.get_world_size())
    config = SegTrainConfig(**job["config"])
    if config.device.startswith("cuda"):
        import ray.train.torch

        config = config.model_copy(update={"device": str(ray.train.torch.get_device())})
    relay = job["relay"]
    devices: list[str] = [""] * ranks.world
    dist.all_gather_object(devices, f"{platform.node()}: {describe_machine(config.device)}")
    result = train_segmentation(
        ray.get(job["train"]),
        ray.get(job["val"]),
        job["classes"],
        config,
        on_progress=(lambda row: relay.put.remote(row)) if ranks.leader else None,
        should_stop=(lambda: ray.get(relay.stopped.remote())) if ranks.leader else None,
        start=None if job["start"] is None else ray.get(job["start"]),
        ranks=ranks,
    )
    if result is None:
        return None
    return {"result": result, "devices": devices}


def train_on_ray(
    train: Sequence[Sample],
    val: Sequence[Sample],
    classes: Sequence[str],
    config: SegTrainConfig,
    *,
    address: str,
    storage: Path,
    on_progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    out_dir: Path | None = None,
    start: Any = None,
) -> RayTraining:
    """Train on Ray at ``address`` with ``config.workers`` data-parallel workers.

    Args:
        train, val, classes, config, start: As :func:`train_segmentation` takes them.
        address: ``local``, ``auto`` or ``host:port`` (see :mod:`training.cluster`).
        storage: A folder for Ray Train's run files (the job's folder, on a shared
            filesystem for a cluster).
        on_progress: Called here with each progress row of rank 0.
        should_stop: Polled here; True asks rank 0 to stop (it decides for all ranks).
        out_dir: Where the best model is saved (``save_pretrained``), here.

    Raises:
        RayUnavailable, ClusterUnreachable: before anything starts.
        RuntimeError: a worker failed; the message holds its error.
        TrainingCancelled: stopped before the first validation (from rank 0).
    """
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    with ray_session(address) as session:
        threads = worker_threads(config, session)
        config = config.model_copy(update={"num_threads": threads})
        relay = ray.remote(num_cpus=0)(_Relay).remote()
        trainer = TorchTrainer(
            _worker_loop,
            train_loop_config={
                "config": config.model_dump(mode="json"),
                "classes": list(classes),
                "train": ray.put(list(train)),
                "val": ray.put(list(val)),
                "start": None if start is None else ray.put(start),
                "relay": relay,
            },
            scaling_config=ScalingConfig(
                num_workers=config.workers,
                use_gpu=config.device.startswith("cuda"),
                resources_per_worker={"CPU": threads},
            ),
            run_config=RunConfig(
                name="segment",
                storage_path=str(Path(storage).resolve()),
                failure_config=FailureConfig(max_failures=0),
            ),
        )
        outcome = _fit(trainer, relay, on_progress, should_stop)
    value = outcome.return_value
    if outcome.error is not None or value is None:
        raise RuntimeError(f"Training on Ray failed: {_reason(outcome.error)}")
    result: TrainResult = value["result"]
    if out_dir is not None:
        result.build_model().save_pretrained(Path(out_dir))
        result = dataclasses.replace(result, checkpoint_dir=Path(out_dir))
    return RayTraining(result, config.workers, tuple(value["devices"]), address)


def worker_threads(config: SegTrainConfig, session: RaySession) -> int:
    """CPUs (and torch threads) each worker asks for: ``config.num_threads``, or an equal
    share of the cluster's CPUs, never more than its largest node has (Ray would wait forever
    for a worker no node can hold).

    Raises:
        ValueError: ``config.num_threads`` is more than any node has.
    """
    largest = int(session.node_cpus)
    if config.num_threads is not None:
        if config.num_threads > largest:
            raise ValueError(
                f"Each worker asks for {config.num_threads} CPUs (num_threads), but the largest "
                f"node of the Ray cluster at {session.address} has {largest}; ask for fewer."
            )
        return config.num_threads
    return max(1, min(largest, int(session.cpus // config.workers)))


def _fit(trainer, relay, on_progress, should_stop):
    """``trainer.fit()`` on a helper thread while this one relays progress and a stop request.

    This thread never blocks in Ray for long, so the job's SIGTERM (a cancel) raises here at
    once, and leaving the Ray session stops the workers.
    """
    import ray

    box: dict[str, Any] = {}

    def fit() -> None:
        try:
            box["result"] = trainer.fit()
        except Exception as exc:  # TrainingFailedError: a worker or the controller failed
            box["error"] = exc

    thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
    thread.start()
    asked = False
    while True:
        thread.join(timeout=_POLL_S)
        finished = not thread.is_alive()
        if not asked and not finished and should_stop():
            relay.ask_stop.remote()  # rank 0 stops every rank at its next step
            asked = True
        for row in ray.get(relay.take.remote(), timeout=30):
            if on_progress is not None:
                on_progress(row)
        if finished:
            break
    if "error" in box:
        return _Failed(box["error"])
    return box["result"]


@dataclass(frozen=True)
class _Failed:
    error: BaseException
    return_value: Any = None


def _reason(error: BaseException | None) -> str:
    """One line: which worker failed and why (Ray's own message is a traceback per rank)."""
    if error is None:
        return "rank 0 returned no result"
    failures = getattr(error, "worker_failures", None)
    if failures:
        # A worker whose process died comes first: the others' errors (a connection reset by
        # that peer) only follow from it.
        died = {r: e for r, e in failures.items() if _died(e)}
        if died:
            rank = min(died)
            return (
                f"worker {rank} stopped answering: its process ended (killed, or out of "
                "memory). No model was added."
            )
        rank, cause = min(failures.items())
        return f"worker {rank} of the run: {_last_line(cause)}"
    cause = getattr(error, "controller_failure", None) or error
    return _last_line(cause)


def _died(error: BaseException) -> bool:
    """Whether a worker failed because its process ended (Ray's actor-died errors)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(
        names
        & {"ActorDiedError", "RayActorError", "WorkerCrashedError", "WorkerHealthCheckFailedError"}
    )


def _last_line(error: BaseException) -> str:
    """The exception's own line, not the traceback Ray puts around it."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    raised = [line for line in lines if _RAISED.match(line)]
    return (raised or lines or [type(error).__name__])[-1]
