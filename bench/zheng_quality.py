"""Segmentation quality on real white-cell data: mean IoU and training time.

Trains the project's U-Net (``training.segment.train_segmentation``, random-init encoder, no
download) on a fixed seeded split and reports, for the epoch with the best validation mIoU,
the validation and the held-out test scores per class, the epochs reached and the wall time.

Datasets (classes background / cytoplasm / nucleus):
    zheng: ../shared/data/zheng-wbc/dataset1, 300 crops of about 120 px;
           split 200 train / 50 validation / 50 test. Published: 90.7 % (Luu et al. 2024)
           to 93.5 % mIoU, both with pretrained encoders.
    bccd:  the 292 BCCD photos with white-cell masks (640x480, optionally downscaled);
           split 200 / 46 / 46.

Writes bench/results/<dataset>_quality.json after every epoch (partial runs stay readable)
and the best model to bench/results/<dataset>_quality_model/.

Run: .venv/bin/python bench/zheng_quality.py [--dataset zheng|bccd] [--minutes 13]
     [--epochs 60] [--threads 1] [--patch 128]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _zheng import (
    CLASSES,
    RESULTS,
    Sample,
    fixed_split,
    load_bccd_wbc,
    load_zheng,
    machine,
    write_json,
)

from training.inference import InferenceConfig
from training.segment import SegTrainConfig, evaluate, train_segmentation

SPLITS = {"zheng": (200, 50, 50), "bccd": (200, 46, 46)}


def _downscale(samples: list[Sample], scale: float) -> list[Sample]:
    from PIL import Image

    out = []
    for s in samples:
        h, w = s.mask.shape
        size = (round(w * scale), round(h * scale))
        image = np.asarray(Image.fromarray(s.image).resize(size, Image.BILINEAR))
        mask = np.asarray(Image.fromarray(s.mask).resize(size, Image.NEAREST))
        out.append(Sample(image, mask, s.tile_id, s.smear_id))
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=sorted(SPLITS), default="zheng")
    parser.add_argument("--minutes", type=float, default=13.0, help="training time budget")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--steps-per-epoch", type=int, default=25)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=None, help="default 128 zheng, 256 bccd")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scale", type=float, default=0.5, help="bccd downscale factor")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--split-seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.dataset == "zheng":
        samples, source, patch = load_zheng(), "zheng-wbc/dataset1", args.patch or 128
        inference = InferenceConfig(window=256, batch_size=16)
    else:
        samples, source, patch = load_bccd_wbc(), "bccd + bccd-wbc-masks", args.patch or 256
        if args.scale != 1.0:
            samples = _downscale(samples, args.scale)
        inference = InferenceConfig(window=512, overlap=0.25, batch_size=4)
    train, val, test = fixed_split(samples, SPLITS[args.dataset], args.split_seed)
    config = SegTrainConfig(
        encoder="mobilenet_v2",
        encoder_weights=None,
        epochs=args.epochs,
        batch_size=args.batch,
        patch_size=patch,
        steps_per_epoch=args.steps_per_epoch,
        lr=args.lr,
        time_budget_min=args.minutes,
        patience=args.patience,
        seed=args.seed,
        num_threads=args.threads,
        inference=inference,
    )
    out = RESULTS / f"{args.dataset}_quality.json"
    model_dir = RESULTS / f"{args.dataset}_quality_model"
    report: dict = {
        "dataset": source,
        "classes": list(CLASSES),
        "split": {
            "seed": args.split_seed,
            "train": len(train),
            "val": len(val),
            "test": len(test),
            "test_ids": [s.tile_id for s in test],
        },
        "image_scale": args.scale if args.dataset == "bccd" else 1.0,
        "config": config.model_dump(mode="json"),
        "machine": machine(),
        "status": "running",
        "history": [],
        "command": " ".join(sys.argv),
    }
    write_json(out, report)
    print(f"{source}: {len(train)} train / {len(val)} val / {len(test)} test, patch {patch}")

    def on_progress(event: dict) -> None:
        if event["phase"] != "validate":
            return
        report["history"].append(
            {k: event[k] for k in ("epoch", "train_loss", "val_loss", "val_miou", "elapsed_s")}
        )
        write_json(out, report)
        print(
            f"  epoch {event['epoch']:3d}  loss {event['train_loss']:.3f}  "
            f"val mIoU {_pct(event['val_miou'])}  best {_pct(event['best_miou'])} "
            f"(epoch {event['best_epoch']})  {event['elapsed_s']:.0f}s",
            flush=True,
        )

    started = time.monotonic()
    result = train_segmentation(train, val, CLASSES, config, on_progress, out_dir=model_dir)
    train_s = time.monotonic() - started
    test_metrics, test_nll = evaluate(result.build_model(), test, CLASSES, inference)
    report.update(
        status="done",
        stopped=result.stopped,
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        steps_run=sum(r.steps for r in result.history),
        train_seconds=round(train_s, 1),
        val=result.metrics.to_dict(),
        test={**test_metrics.to_dict(), "nll": test_nll},
        model_dir=str(model_dir.relative_to(RESULTS.parents[1])),
    )
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    write_json(out, report)
    print(
        f"{source}: stopped by {result.stopped} after {result.epochs_run} epochs "
        f"({report['steps_run']} steps of {args.batch}), {train_s / 60:.1f} min; "
        f"best epoch {result.best_epoch}"
    )
    for name, metrics in (("val", result.metrics), ("test", test_metrics)):
        per_class = ", ".join(f"{c} {_pct(v)}" for c, v in zip(CLASSES, metrics.iou, strict=True))
        print(f"  {name:>4} mIoU {_pct(metrics.miou)}  ({per_class})")
    print(f"wrote {out.relative_to(RESULTS.parents[1])}")


if __name__ == "__main__":
    main()
