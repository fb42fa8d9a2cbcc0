"""Segmentation speed: scoring throughput and training time, on this machine.

Measures, in one run and on the same random-init mobilenet_v2 U-Net (4 classes):

- tiles/s of a plain batched forward pass on 256x256 tiles, of the sliding-window
  probabilities (``iter_proba``), and of entropy, margin and tta scoring, each in fp32,
  bf16 autocast, channels_last, and bf16 + channels_last;
- seconds per training epoch per 100 tiles (fp32, batch 8, 256x256 crops, validation
  on 8 tiles included and also reported apart);
- agreement of bf16 with fp32 predictions (pixel share with the same argmax) on a trained
  checkpoint, if one is given or found (workspace, then bench/results/*_model); otherwise
  reported as "not yet measured".

Prints the figures and writes bench/results/segmentation_speed.json.

Run: .venv/bin/python bench/segmentation_speed.py [--tiles 32] [--rounds 3] [--device cpu]
     [--checkpoint PATH] [--workspace PATH] [--images GLOB] [--skip-training]

Other processes on the machine distort the figures: the JSON keeps the load average.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.inference import InferenceConfig, iter_proba, probs_to_mask  # noqa: E402
from training.model import build_model, load_model, to_model_input  # noqa: E402
from training.segment import Sample, SegTrainConfig, train_segmentation  # noqa: E402
from training.strategies import Candidate, score_tiles  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "segmentation_speed.json"
CLASSES = ["background", "erythrocyte", "leukocyte", "platelet"]
VARIANTS = {
    "fp32": InferenceConfig(),
    "bf16": InferenceConfig(bf16=True),
    "channels_last": InferenceConfig(channels_last=True),
    "bf16+channels_last": InferenceConfig(bf16=True, channels_last=True),
}


def synthetic_tiles(n: int, size: int = 256, seed: int = 0) -> list[Sample]:
    """Pale plasma with pink discs (red cells) and purple blobs; masks to match."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    tiles = []
    for i in range(n):
        image = np.empty((size, size, 3), np.float32)
        image[:] = (226, 228, 220)
        mask = np.zeros((size, size), np.uint8)
        for _ in range(12):
            cy, cx, r = rng.integers(0, size), rng.integers(0, size), rng.integers(14, 30)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            image[disc], mask[disc] = (200, 135, 140), 1
        for value, colour, r in ((2, (115, 85, 200), 22), (3, (120, 90, 205), 4)):
            cy, cx = rng.integers(0, size, 2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            image[disc], mask[disc] = colour, value
        image += rng.normal(0, 4, image.shape)
        pixels = np.clip(image, 0, 255).astype(np.uint8)
        tiles.append(Sample(pixels, mask, f"t{i}", f"s{i // 10}"))
    return tiles


def once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plain_forward(model, images: np.ndarray, config: InferenceConfig, device) -> None:
    with (
        torch.inference_mode(),
        torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=config.bf16),
    ):
        for i in range(0, len(images), config.batch_size):
            x = to_model_input(images[i : i + config.batch_size], device)
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            model(x).float().softmax(dim=1).cpu()


def scoring_figures(n_tiles: int, device: torch.device, rounds: int) -> dict:
    """Best-of-``rounds`` tiles/s; rounds visit every variant in turn so that load from
    other processes spreads over all of them instead of hitting one."""
    tiles = synthetic_tiles(n_tiles, seed=1)
    images = np.stack([t.image for t in tiles])
    candidates = [Candidate(t.tile_id, t.smear_id, t.image) for t in tiles]
    passes = {
        "plain_forward": lambda m, c: plain_forward(m, images, c, device),
        "iter_proba": lambda m, c: sum(1 for _ in iter_proba(m, images, c)),
        "entropy": lambda m, c: score_tiles(candidates, "entropy", m, c),
        "margin": lambda m, c: score_tiles(candidates, "margin", m, c),
        "tta": lambda m, c: score_tiles(candidates, "tta", m, c),
    }
    models = {}
    for name, config in VARIANTS.items():
        torch.manual_seed(0)
        model = build_model(len(CLASSES)).to(device).eval()
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        once(lambda m=model, c=config: plain_forward(m, images[:8], c, device))  # warm-up
        models[name] = model
    best: dict[str, dict[str, float]] = {name: {} for name in VARIANTS}
    for _ in range(rounds):
        for name, config in VARIANTS.items():
            for kind, run in passes.items():
                # tta runs four views: measured for the plain layouts only, to keep it short.
                if kind == "tta" and "channels_last" in name:
                    continue
                seconds = once(lambda r=run, m=models[name], c=config: r(m, c))
                best[name][kind] = min(best[name].get(kind, float("inf")), seconds)
    out = {
        name: {kind: round(n_tiles / s, 2) for kind, s in row.items()} for name, row in best.items()
    }
    for name, row in out.items():
        print(f"  {name:>20}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()) + " tiles/s")
    return out


def training_figures(device: str) -> dict:
    train = synthetic_tiles(100, seed=2)
    val = [
        Sample(s.image, s.mask, f"v{i}", f"val{i}")
        for i, s in enumerate(synthetic_tiles(8, seed=3))
    ]
    events: list[dict] = []
    config = SegTrainConfig(epochs=1, batch_size=8, patch_size=256, device=device, patience=None)
    result = train_segmentation(train, val, CLASSES, config, on_progress=events.append)
    record = result.history[0]
    steps_done = [e for e in events if e["phase"] == "train"]
    train_s = steps_done[-1]["elapsed_s"] - steps_done[0]["elapsed_s"]
    train_s *= len(steps_done) / max(len(steps_done) - 1, 1)  # add back the first step
    figures = {
        "tiles": len(train),
        "steps": record.steps,
        "batch_size": config.batch_size,
        "epoch_seconds_per_100_tiles": round(record.seconds * 100 / len(train), 2),
        "train_steps_seconds_per_100_tiles": round(train_s * 100 / len(train), 2),
        "validation_seconds_8_tiles": round(record.seconds - train_s, 2),
    }
    print("  training: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    return figures


def find_checkpoint(explicit: str | None, workspace: str | None) -> Path | None:
    """The given checkpoint, else the newest in the workspace, else a benchmark's model."""
    if explicit:
        return Path(explicit)
    base = Path(workspace or os.environ.get("SMEARLAB_WORKSPACE", ROOT / "workspace"))
    found = sorted((base / "models" / "segmentation").glob("*/model.safetensors"))
    found = found or sorted((ROOT / "bench" / "results").glob("*_model/model.safetensors"))
    return found[-1].parent if found else None


def agreement_images(pattern: str | None) -> tuple[list[np.ndarray], str]:
    if not pattern:
        return [t.image for t in synthetic_tiles(16, seed=4)], "16 synthetic 256x256 tiles"
    from PIL import Image

    paths = sorted(glob.glob(pattern))[:64]
    if not paths:
        raise SystemExit(f"No image matches {pattern!r}.")
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    return images, f"{len(paths)} images matching {pattern}"


def bf16_agreement(checkpoint: Path | None, pattern: str | None, device: torch.device) -> dict:
    if checkpoint is None:
        print("  bf16 agreement: not yet measured (no trained checkpoint found)")
        return {"status": "not yet measured", "reason": "no trained checkpoint found"}
    model = load_model(checkpoint, device)
    images, described = agreement_images(pattern)
    fp32 = list(iter_proba(model, images, VARIANTS["fp32"]))
    bf16 = list(iter_proba(model, images, VARIANTS["bf16"]))
    same = np.mean(
        [(probs_to_mask(a) == probs_to_mask(b)).mean() for a, b in zip(fp32, bf16, strict=True)]
    )
    worst = max(float(np.abs(a - b).max()) for a, b in zip(fp32, bf16, strict=True))
    figures = {
        "status": "measured",
        "checkpoint": str(checkpoint),
        "argmax_agreement": round(float(same), 5),
        "max_abs_prob_diff": round(worst, 4),
        "images": described,
    }
    print(f"  bf16 agreement: {figures}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiles", type=int, default=32, help="tiles per scoring measurement")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--checkpoint", help="trained checkpoint folder for the bf16 check")
    parser.add_argument("--workspace", help="workspace to look for a checkpoint in")
    parser.add_argument("--images", help="glob of RGB images for the bf16 check (else synthetic)")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    machine = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_at_start": list(os.getloadavg()),
    }
    print(f"machine: {machine}")
    print(f"scoring, {args.tiles} tiles of 256x256, batch 8, best of {args.rounds} rounds:")
    results = {
        "machine": machine,
        "model": "smp.Unet(mobilenet_v2, encoder_weights=None, 4 classes), random init",
        "scoring_tiles_per_s": scoring_figures(args.tiles, device, args.rounds),
    }
    if not args.skip_training:
        print("training (fp32, 100 tiles of 256x256):")
        results["training"] = training_figures(args.device)
    results["bf16_agreement"] = bf16_agreement(
        find_checkpoint(args.checkpoint, args.workspace), args.images, device
    )
    results["load_average_at_end"] = list(os.getloadavg())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
