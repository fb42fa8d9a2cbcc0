"""One change to SmearLab's training recipe at a time, at a fixed number of steps (issue 11).

The 8-minute comparison (``bench/recipe_vs_plain.py``) counts wall-clock time, so the load of
the machine decides how many steps a run gets. This bench fixes the steps instead: each
variant trains ``train_segmentation`` on the workspace's train split (smear regions, as the
Train page does) for ``--steps`` steps in one epoch, validates once at the end on a few
validation smears (the trainer needs it; nothing is selected), and is scored at full
resolution on the held-out split of the BCCD white-cell photos exactly as the plain script
is (``plain_unet.score``). Load then only changes how long it takes.

Variants are settings overrides of ``SegTrainConfig`` given as ``NAME=JSON``, e.g.
``fast='{"lr": 0.002}'``; ``base={}`` is the defaults. Without ``--variant`` it runs the
defaults, the defaults with colour jitter (``STAIN_JITTER``'s strengths) and lr 2e-3.

Prints one JSON line per run and writes bench/results/recipe_ablation[_<tag>].json.

Run: .venv/bin/python bench/recipe_ablation.py --workspace WS [--steps 280] [--seeds 0]
     [--variant NAME=JSON ...] [--val-smears 4] [--tag NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import plain_unet  # noqa: E402

from dataset.store import Store  # noqa: E402
from training.segment import SegTrainConfig, train_segmentation  # noqa: E402
from training.service import load_samples  # noqa: E402

STAIN = {"augment": {"brightness": 0.15, "contrast": 0.15, "saturation": 0.15, "hue_deg": 10}}
DEFAULT_VARIANTS = {"base": {}, "stain_jitter": STAIN, "lr2e-3": {"lr": 2e-3}}


def variant(text: str) -> tuple[str, dict]:
    name, _, settings = text.partition("=")
    try:
        parsed = json.loads(settings or "{}")
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: the settings are not JSON ({exc})") from exc
    if not name or not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=JSON, e.g. 'fast={{\"lr\": 2e-3}}'")
    return name, parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=280)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variant", type=variant, action="append", dest="variants")
    parser.add_argument("--val-smears", type=int, default=4, help="validation smears used")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    variants = dict(args.variants) if args.variants else DEFAULT_VARIANTS

    store = Store.open(args.workspace)
    classes = tuple(store.schema().names)
    train = load_samples(store, "train")
    val = load_samples(store, "validation")[: args.val_smears]
    known = {s.smear_id for s in store.smears()}
    every = [p for p in plain_unet.load_bccd(args.data) if p[0] in known]
    splits = store.splits_of([p[0] for p in every])
    heldout = [p for p in every if splits[p[0]] == "test"]
    if not heldout:
        sys.exit(f"No BCCD photo under {args.data} is a test smear of {args.workspace}.")

    runs = []
    for seed in args.seeds:
        for name, settings in variants.items():
            config = SegTrainConfig(
                **{**settings, "epochs": 1, "steps_per_epoch": args.steps, "seed": seed}
            )
            started = time.monotonic()
            result = train_segmentation(train, val, classes, config)
            trained_s = time.monotonic() - started
            run = {
                "variant": name,
                "settings": settings,
                "seed": seed,
                "steps": args.steps,
                "train_s": round(trained_s, 1),
                "test": plain_unet.score(result.build_model(), heldout, False),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
            print(json.dumps(run), flush=True)
            runs.append(run)
    out = ROOT / "bench" / "results" / f"recipe_ablation{'_' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"steps": args.steps, "heldout_photos": len(heldout), "runs": runs}, indent=2)
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
