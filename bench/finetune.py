"""Fine-tuning against training from scratch, in the same wall-clock time: on the shipped demo,
or (``--workspace``) on the BCCD white-cell masks after the lab adds 20 tiles.

Demo: a parent model learns from the train tiles of half the demo's labelled train smears (the lab
before its newest labels); then, side by side with the same budget and seed, one model is
fine-tuned from the parent on all labelled train tiles (``train_segmentation(start=...)``, as
"Update the current model" does) and one is trained from scratch on them. Prints the validation
mean IoU of the parent and of both, and writes bench/results/finetune.json. One thread each,
so the default run costs about 3 CPU-minutes.

BCCD (``--workspace WS`` holding the 292 white-cell masks, as for ``recipe_vs_plain.py``): the
parent is SmearLab's default run for ``--parent-min`` minutes (8 in the note's run) on the
train split without its newest smears: the fewest (in a seeded order) that hold at least
``--added`` (20) tiles. Then,
on all train tiles, side by side with the machine's threads: the update that "Update the
current model" runs (the parent's recipe from its weights, ``UPDATE_BUDGET_MIN`` = 3 minutes),
a run from scratch in the same 3 minutes, and the default run from scratch (``--parent-min``).
``--update-min`` shortens the update and its twin, for a smoke run only; ``--skip-default``
leaves out the default run, which ``recipe_vs_plain.py`` measures on the same smears.
Each is scored at full resolution on the test smears, as ``plain_unet.score`` does, and timed.
Writes bench/results/finetune_bccd.json.

Run: .venv/bin/python bench/finetune.py [--parent-min 1] [--minutes 1] [--seed 0]
     [--patch-size 256] [--batch-size 8]
     .venv/bin/python bench/finetune.py --workspace WS [--parent-min 8] [--added 20] [--seed 0]
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
    parser.add_argument("--workspace", type=Path, help="BCCD masks: the 'adding 20 tiles' run")
    parser.add_argument("--added", type=int, default=20, help="BCCD: tiles the lab adds")
    parser.add_argument(
        "--update-min", type=float, default=None, help="BCCD: default UPDATE_BUDGET_MIN (3)"
    )
    parser.add_argument(
        "--skip-default",
        action="store_true",
        help="BCCD: leave out the default run from scratch (recipe_vs_plain.py measures it)",
    )
    args = parser.parse_args()
    if args.workspace is not None:
        bccd(args)
        return
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


def bccd(args) -> None:
    """The BCCD run: a parent without the newest smears, then update against from scratch."""
    import os
    import random
    import time

    import plain_unet
    import torch

    from training.service.finetuning import UPDATE_BUDGET_MIN

    update_min = args.update_min or UPDATE_BUDGET_MIN
    torch.set_num_threads(os.cpu_count() or 1)
    store = Store.open(args.workspace)
    classes = store.schema().names
    train, val = load_samples(store, "train"), load_samples(store, "validation")
    smears = sorted({s.smear_id for s in train})
    random.Random(args.seed).shuffle(smears)
    newest: set[str] = set()
    for smear in smears:
        if sum(len(s.tiles) for s in train if s.smear_id in newest) >= args.added:
            break
        newest.add(smear)
    before = [s for s in train if s.smear_id not in newest]
    n_before = sum(len(s.tiles) for s in before)
    added = sum(len(s.tiles) for s in train) - n_before
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    known = {x.smear_id for x in store.smears()}
    photos = [p for p in plain_unet.load_bccd(data) if p[0] in known]
    splits = store.splits_of([p[0] for p in photos])
    heldout = [p for p in photos if splits[p[0]] == "test"]
    print(
        f"BCCD: parent on {n_before} train tiles, then {added} tiles of {len(newest)} smears "
        f"added; {len(heldout)} test smears; {os.cpu_count()} threads"
    )

    def timed(name: str, samples, minutes: float, start=None, **extra):
        config = SegTrainConfig(seed=args.seed, time_budget_min=minutes, **extra)
        started = time.monotonic()
        result = train_segmentation(samples, val, classes, config, start=start)
        seconds = time.monotonic() - started
        test = plain_unet.score(result.build_model(), heldout, bf16=False)
        steps = sum(r.steps for r in result.history)
        print(
            f"{name:>28} ({minutes:g} min): {steps} steps in {seconds:.0f} s, "
            f"test mIoU {test['miou']:.4f} {test['iou']}"
        )
        return result, {
            "budget_min": minutes,
            "steps": steps,
            "seconds": round(seconds, 1),
            "val_miou": result.metrics.miou,
            "test": test,
        }

    rows = {}
    parent, rows["parent, before the added tiles"] = timed("parent", before, args.parent_min)
    _, rows["update (fine-tune)"] = timed(
        "update", train, update_min, start=parent.build_model(), init_from="parent"
    )
    _, rows["from scratch, same minutes"] = timed("from scratch", train, update_min)
    if not args.skip_default:
        _, rows["from scratch, default run"] = timed("from scratch", train, args.parent_min)
    write_json(
        RESULTS / "finetune_bccd.json",
        {
            "args": {k: str(v) for k, v in vars(args).items()},
            "machine": machine(),
            "parent_tiles": n_before,
            "added_tiles": added,
            "added_smears": len(newest),
            "test_smears": len(heldout),
            "runs": rows,
        },
    )


if __name__ == "__main__":
    main()
