"""SmearLab's one-click training recipe against the plain smp script, side by side (issue 11).

For each seed, in turn: SmearLab's defaults exactly as the Train page's button and
``python -m training segment --time-budget-min M`` queue them (``submit_training`` with the
time budget and the seed, nothing else), run by the job runner in its child process; then the
plain script (``bench/plain_unet.py``) for the same minutes of training. Both are scored the
same way at full resolution on the workspace's held-out split of the BCCD white-cell photos
(``plain_unet.score``: SmearLab's sliding window, classes background / cytoplasm / nucleus,
mask grey levels cut at 78 and 205).

The workspace must hold the 292 BCCD white-cell masks (``python -m dataset import-masks``,
see the note in the README). A rescoring job that a new current model queues is cancelled
before the next run, so no run shares the CPU with another.

``--settings JSON`` adds settings to SmearLab's defaults, to try a candidate default the way
the button would run it once it is one.

Prints the figures and writes bench/results/recipe_vs_plain[_<tag>].json.

Run: .venv/bin/python bench/recipe_vs_plain.py --workspace WS [--minutes 8] [--seeds 0 1 2]
     [--only smearlab|plain] [--settings JSON] [--tag NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import plain_unet  # noqa: E402

from dataset.roles import Actor  # noqa: E402
from dataset.store import Store  # noqa: E402
from training.jobs import JobRunner, JobState  # noqa: E402
from training.service import load_model, submit_training  # noqa: E402


def run_smearlab(
    workspace: Path, minutes: float, seed: int, settings: dict | None = None
) -> tuple[torch.nn.Module, dict]:
    started = time.monotonic()
    job_id = submit_training(
        workspace,
        {**(settings or {}), "time_budget_min": minutes, "seed": seed},
        actor=Actor("bench", "admin"),
    )
    runner = JobRunner(workspace)
    status = runner.wait(job_id, poll_s=2.0)
    wall = time.monotonic() - started
    for live in runner.list(states=[JobState.QUEUED, JobState.RUNNING]):
        runner.cancel(live.job_id, actor=Actor("bench", "admin"))
        runner.wait(live.job_id, poll_s=1.0)
    if status.state != JobState.DONE:
        raise SystemExit(f"SmearLab run {job_id} ended {status.state}: {status.error}")
    model_id = status.result["model_ids"][0]
    loaded = load_model(workspace, model_id)
    metrics = loaded.card.metrics
    return loaded.model.eval(), {
        "job_id": job_id,
        "model_id": model_id,
        "job_wall_s": round(wall, 1),
        "train_s": round(status.duration_s or 0.0, 1),
        "best_epoch": metrics.get("best_epoch"),
        "epochs_run": metrics.get("epochs_run"),
        "stopped": metrics.get("stopped"),
        "val_miou": metrics.get("mean_iou"),
        # The run's optimiser steps: the last training report's step count of the whole run.
        "steps": max((h.get("run_step", 0) for h in status.history), default=0) or None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", choices=("smearlab", "plain"), default=None)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--settings",
        type=json.loads,
        default={},
        help="SmearLab settings on top of the defaults, as JSON (a candidate default), e.g. "
        "'{\"ema_decay\": 0.99}'",
    )
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    bf16 = plain_unet.native_bf16()

    store = Store.open(args.workspace)
    photos = plain_unet.load_bccd(args.data)
    known = {s.smear_id for s in store.smears()}
    photos = [p for p in photos if p[0] in known]
    splits = store.splits_of([p[0] for p in photos])
    trainset = [p for p in photos if splits[p[0]] == "train"]
    heldout = [p for p in photos if splits[p[0]] == "test"]
    print(f"{len(trainset)} train photos, {len(heldout)} test photos", flush=True)

    runs = []
    for seed in args.seeds:
        for recipe in ("smearlab", "plain"):
            if args.only and recipe != args.only:
                continue
            load_before = os.getloadavg()[0]
            if recipe == "smearlab":
                model, info = run_smearlab(args.workspace, args.minutes, seed, args.settings)
            else:
                t0 = time.monotonic()
                model, steps = plain_unet.train(trainset, args.minutes, seed, bf16)
                info = {"steps": steps, "train_s": round(time.monotonic() - t0, 1)}
                model.eval()
            scores = plain_unet.score(model, heldout, bf16)
            run = {
                "recipe": recipe,
                "seed": seed,
                **info,
                "test": scores,
                "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            }
            runs.append(run)
            print(json.dumps(run), flush=True)

    summary = {}
    for recipe in ("smearlab", "plain"):
        mious = [r["test"]["miou"] for r in runs if r["recipe"] == recipe]
        if mious:
            summary[recipe] = {
                "median_miou": statistics.median(mious),
                "min_miou": min(mious),
                "mious": mious,
                "median_cytoplasm_iou": statistics.median(
                    r["test"]["iou"]["cytoplasm"] for r in runs if r["recipe"] == recipe
                ),
            }
    result = {
        "minutes": args.minutes,
        "seeds": args.seeds,
        "smearlab_settings": args.settings or "defaults",
        "test_photos": len(heldout),
        "train_photos": len(trainset),
        "bf16": bf16,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "summary": summary,
        "runs": runs,
    }
    out = ROOT / "bench" / "results" / f"recipe_vs_plain{'_' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
