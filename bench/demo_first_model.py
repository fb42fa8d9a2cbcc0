"""The demo's first model: does it earn its place against the colour rules?

Loads the shipped demo (``dataset.demo.load_demo``) into a fresh workspace, runs one training
job exactly as the Train page's Start does (``training.service.submit_training`` and the job
runner), and prints the run's comparison (``card.metrics["selection"]``): mean IoU and IoU per
class of the new model and of the colour-rule pre-fill on the demo's validation tiles, the
winner and the reason. Writes bench/results/demo_first_model.json.

Run: .venv/bin/python bench/demo_first_model.py [--minutes 15] [--epochs 40] [--workspace DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _zheng import RESULTS, machine, write_json

from dataset.demo import load_demo
from dataset.roles import Actor
from dataset.store import Store
from model_zoo import Zoo
from training.jobs import JobRunner, JobState
from training.service import split_counts, submit_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="training time budget")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--workspace", type=Path, default=None, help="default: a temp folder")
    args = parser.parse_args()
    ws = args.workspace or Path(tempfile.mkdtemp(prefix="smearlab-demo-")) / "workspace"
    store = Store.open(ws)
    if not store.smears():
        load_demo(store, actor="bench")
    counts = split_counts(store)
    print(
        f"demo workspace {ws}: classes {', '.join(store.schema().names)}; labelled tiles {counts}"
    )
    settings = {"epochs": args.epochs, "time_budget_min": args.minutes}
    job_id = submit_training(ws, settings, actor=Actor("bench", "admin"))
    status = JobRunner(ws).wait(job_id, poll_s=2.0)
    if status.state != JobState.DONE:
        raise SystemExit(f"training {status.state}: {status.error}")
    (model_id,) = status.result["model_ids"]
    card = Zoo(ws).get(model_id)
    sel = card.metrics["selection"]
    for name, ious in sel["per_class"].items():
        miou = {model_id: sel["new_miou"], "rules": sel["rules_miou"]}.get(
            name, sel["baseline_miou"]
        )
        figures = ", ".join(f"{c} {'-' if v is None else f'{v:.3f}'}" for c, v in ious.items())
        print(f"{name:>26}: mean IoU {miou:.3f} ({figures})")
    current = Zoo(ws).current("segmentation")
    now = current.model_id if current else "none (the colour rules pre-fill)"
    epochs = f"epochs {card.metrics['epochs_run']} (best {card.metrics['best_epoch']})"
    print(f"{epochs}, {card.duration_s:.0f} s; current model now: {now}")
    print(sel["reason"])
    report = {
        "workspace": str(ws),
        "labelled_tiles": counts,
        "settings": settings,
        "model_id": model_id,
        "epochs_run": card.metrics["epochs_run"],
        "best_epoch": card.metrics["best_epoch"],
        "duration_s": card.duration_s,
        "selection": sel,
        "machine": machine(),
    }
    write_json(RESULTS / "demo_first_model.json", report)
    print(
        json.dumps(
            {"mean_iou": sel["new_miou"], "rules": sel["rules_miou"], "winner": sel["winner"]}
        )
    )


if __name__ == "__main__":
    main()
