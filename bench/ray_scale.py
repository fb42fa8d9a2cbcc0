"""What handing scoring to Ray costs on this machine: tiles per second scored here and by a
Ray Data actor pool of 1 and 2 actors, side by side in one run.

The tiles are a seeded sample of the workspace's tiles (a scoring job takes the unlabelled
ones; the BCCD workspace has every tile labelled, and a tile costs the same either way), the
model is its current one, the strategy entropy. Each repeat scores the same
tiles three ways, interleaved, so the machine's load falls on all three alike:

- ``local``: :func:`training.strategies.iter_scores` in this process, as a local job does;
- ``ray_1``, ``ray_2``: :func:`training.cluster.scoring.score_on_ray` with 1 and 2 actors on
  a local Ray (``ray.init(num_cpus=--cpus)``), as a job with ``ray_address=local`` does once
  its Ray is up. Each includes starting the pool and loading the model in every actor.

Ray's own start is timed once, apart. The scores of every Ray run are compared with the local
ones (largest difference).

Then training, the same config three ways: here (``train_segmentation``), and as a Ray Train
run (:func:`training.cluster.train.train_on_ray`) with 1 and 2 DDP workers. Every run takes
the same steps (``--train-epochs`` x ``--train-steps``; 2 workers see twice the crops per
step), so the figures are seconds per epoch (steps plus one validation) and the validation
mIoU after equal steps. Here and 1 worker use all ``--cpus`` threads; 2 workers one each.

On 2 cores expect no speed-up: the point is the overhead.

Prints the figures and writes bench/results/ray_scale.json.

Run: .venv/bin/python bench/ray_scale.py --workspace WS [--tiles 300] [--repeats 3] [--cpus 2]
     [--train-steps 30] [--train-epochs 2] [--no-train]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import torch  # noqa: E402

from dataset.store import Store  # noqa: E402
from training.cluster import ray_session  # noqa: E402
from training.cluster.scoring import score_on_ray, tile_files  # noqa: E402
from training.service.models import load_model  # noqa: E402
from training.service.scoring import _candidates, scoring_inference  # noqa: E402
from training.strategies import iter_scores  # noqa: E402

OUT = ROOT / "bench" / "results" / "ray_scale.json"
STRATEGY = "entropy"


def train_three_ways(args, store: Store, cpus: float) -> dict:
    """Seconds per epoch and validation mIoU after equal steps: here, 1 and 2 Ray workers."""
    import tempfile

    from training.cluster.train import train_on_ray
    from training.segment import SegTrainConfig, train_segmentation
    from training.service import load_samples

    train, val = load_samples(store, "train"), load_samples(store, "validation")
    classes = store.schema().names
    base = {
        "epochs": args.train_epochs,
        "steps_per_epoch": args.train_steps,
        "patience": None,
        "seed": args.seed,
    }
    print(
        f"training: {sum(len(s.tiles) for s in train)} train / "
        f"{sum(len(s.tiles) for s in val)} validation tiles, "
        f"{args.train_epochs} x {args.train_steps} steps"
    )
    out: dict[str, dict] = {}
    for name, workers in (("local", 0), ("ray_1", 1), ("ray_2", 2)):
        threads = int(cpus) if workers <= 1 else max(1, int(cpus) // workers)
        config = SegTrainConfig(**base, workers=max(1, workers), num_threads=threads)
        t0 = time.monotonic()
        if workers == 0:
            result = train_segmentation(train, val, classes, config)
        else:
            with tempfile.TemporaryDirectory() as storage:
                result = train_on_ray(
                    train, val, classes, config, address="local", storage=Path(storage)
                ).result
        wall = time.monotonic() - t0
        epochs = [r.seconds for r in result.history]
        out[name] = {
            "workers": workers,
            "threads_per_worker": threads,
            "crops_per_step": config.batch_size * max(1, workers),
            "steps": sum(r.steps for r in result.history),
            "seconds_per_epoch": [round(e, 1) for e in epochs],
            "median_epoch_s": round(statistics.median(epochs), 1),
            "wall_s": round(wall, 1),
            "val_miou_last": result.history[-1].val_miou,
            "val_miou_best": result.metrics.miou,
        }
        print(
            f"train {name:6s} {out[name]['steps']} steps  "
            f"epoch {out[name]['median_epoch_s']:6.1f} s  wall {wall:6.1f} s  "
            f"val mIoU {result.history[-1].val_miou:.4f}"
        )
    for name in ("ray_1", "ray_2"):
        out[name]["epoch_vs_local"] = round(
            out[name]["median_epoch_s"] / out["local"]["median_epoch_s"], 3
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--tiles", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-steps", type=int, default=30, help="steps per epoch")
    parser.add_argument("--train-epochs", type=int, default=2)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    store = Store.open(args.workspace)
    loaded = load_model(args.workspace)
    if loaded is None:
        sys.exit(f"{args.workspace} has no current segmentation model; train one first.")
    pool = [t.tile_id for t in store.tiles()]
    if not pool:
        sys.exit(f"{args.workspace} has no tiles; import smears first.")
    tiles = sorted(random.Random(args.seed).sample(pool, min(args.tiles, len(pool))))
    paths, without_pixels = tile_files(store, tiles)
    tiles = [t for t in tiles if t not in without_pixels]
    print(f"{len(tiles)} tiles of {len(pool)}, model {loaded.model_id}, {STRATEGY}")
    inference = scoring_inference(loaded)
    torch.set_num_threads(args.cpus)

    def local() -> dict[str, float]:
        scores = iter_scores(_candidates(store, tiles), STRATEGY, loaded.model, inference)
        return {s.tile_id: s.score for s in scores}

    started = time.monotonic()
    with ray_session("local", num_cpus=args.cpus) as session:
        ray_start_s = time.monotonic() - started
        print(f"Ray up in {ray_start_s:.1f} s ({session.cpus:g} CPUs)")

        def on_ray(actors: int):
            def run() -> dict[str, float]:
                scores = score_on_ray(
                    store, STRATEGY, loaded.model_id, paths, tiles, actors=actors,
                    should_stop=lambda: False,
                )  # fmt: skip
                return {s.tile_id: s.score for s in scores}

            return run

        ways = {"local": local, "ray_1": on_ray(1), "ray_2": on_ray(2)}
        seconds: dict[str, list[float]] = {name: [] for name in ways}
        reference: dict[str, float] = {}
        largest_diff: dict[str, float] = {}
        for repeat in range(args.repeats):
            for name, run in ways.items():
                t0 = time.monotonic()
                scores = run()
                seconds[name].append(time.monotonic() - t0)
                if name == "local":
                    reference = scores
                else:
                    assert scores.keys() == reference.keys(), f"{name} missed tiles"
                    diff = max(abs(scores[t] - reference[t]) for t in reference)
                    largest_diff[name] = max(largest_diff.get(name, 0.0), diff)
                print(f"repeat {repeat}: {name:6s} {seconds[name][-1]:6.1f} s")

        training = None if args.no_train else train_three_ways(args, store, session.cpus)

    results = {}
    for name, values in seconds.items():
        median = statistics.median(values)
        results[name] = {
            "seconds": [round(v, 2) for v in values],
            "median_s": round(median, 2),
            "tiles_per_s": round(len(tiles) / median, 2),
            "vs_local": round(statistics.median(seconds["local"]) / median, 3),
            "largest_score_diff": largest_diff.get(name),
        }
        print(
            f"{name:6s} median {median:6.1f} s  {len(tiles) / median:6.1f} tiles/s  "
            f"{results[name]['vs_local']:.2f}x local"
        )
    report = {
        "command": " ".join(["bench/ray_scale.py", *sys.argv[1:]]),
        "workspace": str(args.workspace),
        "tiles": len(tiles),
        "model_id": loaded.model_id,
        "strategy": STRATEGY,
        "precision": "bf16" if inference.bf16 else "fp32",
        "ray_start_s": round(ray_start_s, 2),
        "scoring": results,
        "training": training,
        "machine": {
            "cpu": platform.machine(),
            "cores": os.cpu_count(),
            "cpus_given_to_ray": args.cpus,
            "torch": torch.__version__,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
