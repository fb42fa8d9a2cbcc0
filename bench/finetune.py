"""Fine-tuning against training from scratch, on the shipped demo, in the same wall-clock time.

A parent model learns from the train tiles of half the demo's labelled train smears (the lab
before its newest labels); then, side by side with the same budget and seed, one model is
fine-tuned from the parent on all labelled train tiles (``train_segmentation(start=...)``, as
"Update the current model" does) and one is trained from scratch on them. Prints the validation
mean IoU of the parent and of both, and writes bench/results/finetune.json. One thread each,
so the default run costs about 3 CPU-minutes.

Run: .venv/bin/python bench/finetune.py [--parent-min 1] [--minutes 1] [--seed 0]
     [--patch-size 256] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _zheng import RESULTS, machine, write_json

from dataset.demo import load_demo
from dataset.store import Store
from training.segment import SegTrainConfig, train_segmentation
from training.service import load_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parent-min", type=float, default=1.0, help="the parent's budget")
    parser.add_argument("--minutes", type=float, default=1.0, help="each compared run's budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patch-size", type=int, default=256, help="training crop side")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    ws = Path(tempfile.mkdtemp(prefix="smearlab-ft-")) / "workspace"
    store = Store.open(ws)
    load_demo(store, actor="bench")
    classes = store.schema().names
    train, val = load_samples(store, "train"), load_samples(store, "validation")
    smears = sorted({s.smear_id for s in train})
    early = [s for s in train if s.smear_id in smears[: len(smears) // 2]]
    base = {
        "seed": args.seed,
        "num_threads": 1,
        "patch_size": args.patch_size,
        "batch_size": args.batch_size,
    }
    parent = train_segmentation(
        early, val, classes, SegTrainConfig(**base, time_budget_min=args.parent_min)
    )
    runs = {"parent": parent}
    config = SegTrainConfig(**base, time_budget_min=args.minutes)
    runs["fine-tuned"] = train_segmentation(
        train,
        val,
        classes,
        config.model_copy(update={"init_from": "parent"}),
        start=parent.build_model(),
    )
    runs["from scratch"] = train_segmentation(train, val, classes, config)
    print(
        f"demo: {len(early)} parent train tiles ({len(smears) // 2} smears), {len(train)} train "
        f"tiles ({len(smears)} smears), {len(val)} validation tiles; one thread each"
    )
    rows = {}
    for name, r in runs.items():
        figures = ", ".join(
            f"{c} {'-' if v is None else f'{v:.3f}'}"
            for c, v in zip(classes, r.metrics.iou, strict=True)
        )
        minutes = args.parent_min if name == "parent" else args.minutes
        print(
            f"{name:>13} ({minutes:g} min): val mIoU {r.metrics.miou:.3f} ({figures}); "
            f"{r.epochs_run} epochs, best {r.best_epoch}, {r.duration_s:.0f} s"
        )
        rows[name] = {
            "budget_min": minutes,
            "val_miou": r.metrics.miou,
            "iou": dict(zip(classes, r.metrics.iou, strict=True)),
            "epochs_run": r.epochs_run,
            "best_epoch": r.best_epoch,
            "duration_s": r.duration_s,
        }
    write_json(
        RESULTS / "finetune.json",
        {"args": vars(args), "machine": machine(), "runs": rows},
    )


if __name__ == "__main__":
    main()
