"""Pre-fill effort, simulated: what an annotator must change on held-out tiles to reach the truth,
starting from an empty canvas, the colour rules, or a model trained on 20, 60 or 200 tiles.

Held-out tiles are the labelled tiles of the workspace's test split (import the BCCD
white-cell masks first: ``python -m dataset import-masks``). For each start the bench counts
(:mod:`training.effort`) the labelled pixels to change and the regions to fix (4-connected
wrong patches of one true class: about one brush stroke, polygon or wand click each), and the
ratio of each to the empty canvas's. Models train with SmearLab's recipe
(:func:`training.segment.train_segmentation`) on a seeded random subset of the train split's
labelled tiles, each for the same ``--minutes``, selecting on the validation split as the
Train page does; they pre-fill in fp32 as the Label page does.

Prints the figures and writes bench/results/prefill_effort.json.

Run: .venv/bin/python bench/prefill_effort.py --workspace WS [--sizes 20,60,200]
     [--minutes 3] [--seed 0] [--min-region-px 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset.png import decode_mask  # noqa: E402
from dataset.store import Store  # noqa: E402
from training.effort import correction_effort, total_effort  # noqa: E402
from training.inference import predict_mask  # noqa: E402
from training.prefill import prefill_mask  # noqa: E402
from training.segment import SegTrainConfig, train_segmentation  # noqa: E402
from training.service import load_samples  # noqa: E402


def heldout(store: Store) -> list[tuple[np.ndarray, np.ndarray]]:
    """(tile image, true mask) of every labelled tile of the test split."""
    ids = store.labelled_tile_ids("test")
    return [
        (np.ascontiguousarray(store.tile_image(tile_id)), decode_mask(png))
        for tile_id, _, png in store.iter_latest_masks(ids)
    ]


def summary(efforts, empty) -> dict:
    total = total_effort(efforts)
    return {
        "pixels": total.pixels,
        "regions": total.regions,
        "pixel_share": round(total.pixel_share, 4),
        "pixels_vs_empty": round(total.pixels / empty.pixels, 4) if empty.pixels else None,
        "regions_vs_empty": round(total.regions / empty.regions, 4) if empty.regions else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--sizes", default="20,60,200", help="labelled tiles per model")
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-region-px", type=int, default=16)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    store = Store.open(args.workspace)
    classes = list(store.schema().names)
    tiles = heldout(store)
    if not tiles:
        sys.exit(f"{args.workspace} has no labelled tiles in its test split.")
    train_ids = store.labelled_tile_ids("train")
    val = load_samples(store, "validation")

    def efforts(masks):
        return [
            correction_effort(m, truth, min_region_px=args.min_region_px)
            for m, (_, truth) in zip(masks, tiles, strict=True)
        ]

    empty_efforts = efforts(np.full_like(truth, 255) for _, truth in tiles)
    empty = total_effort(empty_efforts)
    starts = {
        "empty canvas": summary(empty_efforts, empty),
        "colour rules": summary(efforts(prefill_mask(img, classes) for img, _ in tiles), empty),
    }
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(train_ids))
    runs = []
    for size in sizes:
        if size > len(train_ids):
            print(f"skipping {size} tiles: the train split has {len(train_ids)} labelled")
            continue
        # Nested: the 20 are among the 60, the 60 among the 200; as smear regions, as the
        # Train page trains.
        chosen = [train_ids[i] for i in order[:size]]
        subset = load_samples(store, "train", tile_ids=chosen)
        config = SegTrainConfig(time_budget_min=args.minutes, seed=args.seed, epochs=1000)
        started = time.monotonic()
        result = train_segmentation(subset, val, classes, config)
        model = result.build_model()
        masks = [predict_mask(model, img) for img, _ in tiles]
        name = f"model after {size} tiles"
        starts[name] = summary(efforts(masks), empty)
        runs.append(
            {
                "tiles": size,
                "seconds": round(time.monotonic() - started, 1),
                "epochs_run": result.epochs_run,
                "val_miou": None if result.metrics.miou is None else round(result.metrics.miou, 4),
            }
        )

    result = {
        "heldout_tiles": len(tiles),
        "train_tiles_available": len(train_ids),
        "validation_tiles": sum(len(s.tiles) for s in val),
        "min_region_px": args.min_region_px,
        "minutes_per_model": args.minutes,
        "seed": args.seed,
        "starts": starts,
        "models": runs,
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
            "python": platform.python_version(),
        },
    }
    out = ROOT / "bench" / "results" / "prefill_effort.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
