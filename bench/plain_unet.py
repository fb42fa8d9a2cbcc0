"""The plain smp script that SmearLab's training recipe is measured against (issue 11).

A repeatable copy of the 60-line script of the issue, on the BCCD white-cell masks:

- U-Net, mobilenet_v2 encoder, no pretrained weights, channels_last, bf16 autocast where the
  CPU has native bf16 (``--fp32`` turns it off);
- batches of 8 random 256 px crops of the full training photos, half of them centred on a
  random white-cell pixel ±64 px; flips and 90° rotations;
- cross-entropy + Dice, AdamW (lr 1e-3, weight decay 1e-4), no schedule;
- every step on training data for ``--minutes`` of wall time, no validation, and the last
  step's weights are what it keeps.

Which photos train and which are held out is read from a SmearLab workspace into which the
same masks were imported (``python -m dataset import-masks``), so both are scored on the very
smears SmearLab never trained on: the workspace's test split (``--holdout``). Scoring runs at
full resolution with SmearLab's own sliding-window inference (256 px windows, 25 % overlap)
and metrics, classes background / cytoplasm / nucleus.

Prints the figures and writes bench/results/plain_unet[_<tag>].json.

Run: .venv/bin/python bench/plain_unet.py --workspace WS [--minutes 8] [--seed 0]
     [--holdout test] [--data ../shared/data] [--threads 2] [--tag NAME]
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
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset.images import smear_id_for  # noqa: E402
from dataset.store import Store  # noqa: E402
from training.inference import InferenceConfig, iter_proba, probs_to_mask  # noqa: E402
from training.metrics import confusion_matrix, metrics_from_confusion  # noqa: E402
from training.model import build_model, to_model_input  # noqa: E402
from training.service import native_bf16  # noqa: E402

CLASSES = ("background", "cytoplasm", "nucleus")
CROP, BATCH, JITTER = 256, 8, 64


def load_bccd(data: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(smear id, RGB photo, class mask 0/1/2) of every BCCD photo with a white-cell mask."""
    out = []
    for mask_path in sorted((data / "bccd-wbc-masks").glob("BloodImage_Mask_*.png")):
        photo = (
            data
            / "bccd"
            / "JPEGImages"
            / mask_path.name.replace("_Mask", "").replace(".png", ".jpg")
        )
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        grey = np.asarray(Image.open(mask_path).convert("L"))
        if grey.shape != rgb.shape[:2]:
            continue
        out.append((smear_id_for(rgb), rgb, np.digitize(grey, [78, 205]).astype(np.uint8)))
    return out


def crop(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator, centred: bool):
    h, w = mask.shape
    cells = np.argwhere(mask > 0) if centred else np.empty((0, 2))
    if len(cells):
        cy, cx = cells[rng.integers(len(cells))] + rng.integers(-JITTER, JITTER + 1, 2)
        y0 = int(np.clip(cy - CROP // 2, 0, h - CROP))
        x0 = int(np.clip(cx - CROP // 2, 0, w - CROP))
    else:
        y0, x0 = int(rng.integers(0, h - CROP + 1)), int(rng.integers(0, w - CROP + 1))
    image, target = rgb[y0 : y0 + CROP, x0 : x0 + CROP], mask[y0 : y0 + CROP, x0 : x0 + CROP]
    k = int(rng.integers(4))
    image, target = np.rot90(image, k), np.rot90(target, k)
    if rng.random() < 0.5:
        image, target = image[:, ::-1], target[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(target)


def train(photos, minutes: float, seed: int, bf16: bool) -> tuple[torch.nn.Module, int]:
    import segmentation_models_pytorch as smp

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(len(CLASSES)).to(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    dice = smp.losses.DiceLoss(mode="multiclass")
    ce = torch.nn.CrossEntropyLoss()
    model.train()
    steps, deadline = 0, time.monotonic() + minutes * 60
    while time.monotonic() < deadline or steps == 0:
        pairs = [
            crop(*photos[rng.integers(len(photos))][1:], rng, centred=i < BATCH // 2)
            for i in range(BATCH)
        ]
        # Normalised as SmearLab's inference expects (ImageNet mean and std): the scores below
        # come from SmearLab's own sliding window.
        x = to_model_input(np.stack([p[0] for p in pairs]))
        x = x.contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(np.stack([p[1] for p in pairs])).long()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        logits = logits.float()
        loss = ce(logits, y) + dice(logits, y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        steps += 1
    return model, steps


def score(model, photos, bf16: bool) -> dict:
    config = InferenceConfig(bf16=bf16, channels_last=True)
    cm = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    for probs, (_, _, mask) in zip(
        iter_proba(model, (p[1] for p in photos), config), photos, strict=True
    ):
        cm += confusion_matrix(probs_to_mask(probs), mask, len(CLASSES))
    metrics = metrics_from_confusion(cm, CLASSES)
    return {
        "miou": round(metrics.miou, 4),
        "iou": {c: round(v, 4) for c, v in zip(CLASSES, metrics.iou, strict=True)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, required=True, help="splits come from here")
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout", default="test", choices=("test", "validation"))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bf16 = native_bf16() and not args.fp32

    store = Store.open(args.workspace)
    photos = load_bccd(args.data)
    known = {s.smear_id for s in store.smears()}
    photos = [p for p in photos if p[0] in known]
    if not photos:
        sys.exit(f"None of the BCCD photos under {args.data} is a smear of {args.workspace}.")
    splits = store.splits_of([p[0] for p in photos])
    trainset = [p for p in photos if splits[p[0]] == "train"]
    heldout = [p for p in photos if splits[p[0]] == args.holdout]

    started = time.monotonic()
    model, steps = train(trainset, args.minutes, args.seed, bf16)
    trained_s = time.monotonic() - started
    model.eval()
    result = {
        "recipe": "plain smp script (issue 11)",
        "minutes": args.minutes,
        "seed": args.seed,
        "bf16": bf16,
        "threads": args.threads,
        "train_photos": len(trainset),
        "heldout_split": args.holdout,
        "heldout_photos": len(heldout),
        "steps": steps,
        "train_seconds": round(trained_s, 1),
        "heldout": score(model, heldout, bf16),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }
    out = ROOT / "bench" / "results" / f"plain_unet{'_' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
