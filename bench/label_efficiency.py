"""Label efficiency of the active-learning strategies, simulated on the Zheng white-cell set.

The simulated loop, the same for every strategy and seed:

- a fixed split of the 300 crops (200 pool / 50 validation / 50 test, split seed 0);
- start from 10 pool images drawn by the seed (shared by all strategies of that seed);
- each round trains a U-Net from scratch (same training seed every round, a fixed cap of
  steps), keeps the epoch with the best validation mIoU, scores the still-unlabelled pool
  with that model and the strategy (``training.strategies.rank_tiles``) and "labels" the top
  10 (their masks are revealed); 5 rounds: 10, 20, ..., 60 labelled images;
- the curve is the test mIoU after each round (validation picks the epoch, so the test part
  stays unseen);
- the reference ("all labels") trains on all 200 pool images with the same step cap, per seed,
  so the only thing that differs from a round is the number of labels.

With ``--warm-steps N`` (warm start) round 0 still trains from scratch, but every later round
fine-tunes the previous round's model of that strategy for N steps (cosine learning rate within
the round, last weights kept, crops seeded by seed and round so all strategies of a round see the
same draws). Cheaper, and the curve no longer carries a fresh initialisation's noise every round.
The reference is then the long all-labels run of bench/zheng_quality.py (same split).

For each strategy it reports the mean curve over seeds, the fraction of the pool that had to be
labelled before the mean test mIoU reached 95 % of the reference, the area under the curve
and its paired difference from random per seed.

Writes bench/results/label_efficiency.json (or ``--out``) after every training run (partial runs
stay readable) and the PNG of the same name at the end.

Run: .venv/bin/python bench/label_efficiency.py [--seeds 0 1 2] [--epochs 4]
     [--steps-per-epoch 20] [--patch 96] [--threads 2] [--strategies random entropy margin tta]
     .venv/bin/python bench/label_efficiency.py --warm-steps 150 --epochs 4 --steps-per-epoch 75
         --out bench/results/label_efficiency_warm.json
     .venv/bin/python bench/label_efficiency.py --replot   (summary + PNG of the saved JSON)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _zheng import CLASSES, RESULTS, Sample, fixed_split, load_zheng, machine, write_json

from training.augment import augment, sample_crop
from training.inference import InferenceConfig
from training.losses import SegLoss, class_weights
from training.model import input_multiple, seed_everything, to_model_input
from training.segment import SegTrainConfig, TrainResult, evaluate, train_segmentation
from training.strategies import STRATEGIES, Candidate, rank_tiles

OUT_JSON = RESULTS / "label_efficiency.json"
OUT_PNG = RESULTS / "label_efficiency.png"
INFERENCE = InferenceConfig(window=256, batch_size=16)


def train_and_test(
    labelled: list[Sample], val: list[Sample], test: list[Sample], config: SegTrainConfig
) -> tuple[TrainResult, dict]:
    """One round's model and its figures (val of the chosen epoch, test, seconds)."""
    started = time.monotonic()
    result = train_segmentation(labelled, val, CLASSES, config)
    train_s = time.monotonic() - started
    metrics, _ = evaluate(result.build_model(), test, CLASSES, INFERENCE)
    return result, {
        "n_labelled": len(labelled),
        "val_miou": result.metrics.miou,
        "test_miou": metrics.miou,
        "test_iou": dict(zip(CLASSES, metrics.iou, strict=True)),
        "best_epoch": result.best_epoch,
        "train_s": round(train_s, 1),
    }


def fine_tune(
    previous: TrainResult,
    labelled: list[Sample],
    val: list[Sample],
    test: list[Sample],
    config: SegTrainConfig,
    steps: int,
    seed: int,
) -> tuple[TrainResult, dict]:
    """Warm start: ``steps`` more steps from ``previous``'s weights on the grown labelled set.

    A fixed step count, a cosine learning rate per round and the last weights (no epoch picked by
    validation), so the rounds of every strategy differ only in which images were labelled;
    ``seed`` fixes the crops and augmentations, shared by all strategies of a round.
    """
    started = time.monotonic()
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    model = previous.build_model().train()
    largest = max(max(s.image.shape[:2]) for s in labelled)
    multiple = input_multiple(model)
    crop = min(config.patch_size, -(-largest // multiple) * multiple)
    weights = class_weights((s.mask for s in labelled), len(CLASSES), config.class_weights)
    loss_fn = SegLoss(
        torch.from_numpy(weights), ce_weight=config.ce_weight, dice_weight=config.dice_weight
    )
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    # Cosine to 5 % within the round: the kept last weights sit at a low learning rate, which
    # keeps the step-to-step noise of the curve small.
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, T_max=steps, eta_min=config.lr * 0.05
    )
    order: list[int] = []
    for _ in range(steps):
        images, masks = [], []
        for _ in range(config.batch_size):
            if not order:
                order = rng.permutation(len(labelled)).tolist()
            sample = labelled[order.pop()]
            image, mask = sample_crop(sample.image, sample.mask, crop, rng, config.balanced_crops)
            image, mask = augment(image, mask, rng, config.augment)
            images.append(image)
            masks.append(mask)
        loss = loss_fn(
            model(to_model_input(np.stack(images))), torch.from_numpy(np.stack(masks)).long()
        )
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        scheduler.step()
    model.eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    val_metrics, _ = evaluate(model, val, CLASSES, INFERENCE)
    train_s = time.monotonic() - started
    test_metrics, _ = evaluate(model, test, CLASSES, INFERENCE)
    result = TrainResult(
        classes=CLASSES, metrics=val_metrics, best_epoch=1, history=(), epochs_run=1,
        duration_s=train_s, stopped="epochs", state_dict=state, config=config,
        n_train=len(labelled), n_val=len(val), class_weights=tuple(float(w) for w in weights),
        checkpoint_dir=None,
    )  # fmt: skip
    return result, {
        "n_labelled": len(labelled),
        "val_miou": val_metrics.miou,
        "test_miou": test_metrics.miou,
        "test_iou": dict(zip(CLASSES, test_metrics.iou, strict=True)),
        "best_epoch": None,
        "train_s": round(train_s, 1),
    }


def labels_needed(sizes: list[int], curve: list[float], target: float) -> int | None:
    """First labelled count whose score reaches ``target``; None if none does."""
    for n, score in zip(sizes, curve, strict=True):
        if score >= target:
            return n
    return None


def summarise(runs: list[dict], references: dict[int, dict], pool_size: int) -> dict:
    """Mean curves, labels needed for 95 % of the reference and paired differences from random.

    Works on cut-short runs: a (seed, labelled count) enters the means only when every
    strategy has it, so all curves at a point average the same seeds (``n_seeds``). The
    paired differences from random leave out the starting point, which all strategies share.
    """
    names = sorted({r["strategy"] for r in runs})
    seeds = sorted({r["seed"] for r in runs} & set(references))
    if not seeds or not names:
        return {}
    table = {(r["seed"], r["strategy"], r["n_labelled"]): r["test_miou"] for r in runs}
    cells = {
        n: [s for s in seeds if all((s, name, n) in table for name in names)]
        for n in sorted({r["n_labelled"] for r in runs})
    }
    sizes = [n for n, ss in cells.items() if ss]
    ref = float(np.mean([references[s]["test_miou"] for s in seeds]))
    summary: dict = {
        "reference_test_miou_mean": ref,
        "reference_test_miou_per_seed": {s: references[s]["test_miou"] for s in seeds},
        "reference_source": references[seeds[0]].get("source", "same step cap, per seed"),
        "target_95pct": 0.95 * ref,
        "n_labelled": sizes,
        "n_seeds": [len(cells[n]) for n in sizes],
        "strategies": {},
    }
    for name in names:
        values = [[table[(s, name, n)] for s in cells[n]] for n in sizes]
        mean = [float(np.mean(v)) for v in values]
        needed = labels_needed(sizes, mean, 0.95 * ref)
        per_seed_needed = {}
        for s in seeds:
            own = [n for n in sizes if s in cells[n]]
            curve = [table[(s, name, n)] for n in own]
            per_seed_needed[s] = labels_needed(own, curve, 0.95 * references[s]["test_miou"])
        row = {
            "test_miou_mean": mean,
            "test_miou_std": [float(np.std(v)) for v in values],
            "labels_for_95pct": needed,
            "fraction_for_95pct": None if needed is None else needed / pool_size,
            "labels_for_95pct_per_seed": per_seed_needed,
        }
        if "random" in names:
            later = [n for n in sizes if n > sizes[0]]
            diffs = {
                n: [table[(s, name, n)] - table[(s, "random", n)] for s in cells[n]] for n in later
            }
            row["minus_random_mean_per_round"] = [float(np.mean(diffs[n])) for n in later]
            pooled = [d for n in later for d in diffs[n]]
            row["minus_random_mean"] = float(np.mean(pooled)) if pooled else None
            row["minus_random_wins"] = f"{sum(d > 0 for d in pooled)}/{len(pooled)}"
        summary["strategies"][name] = row
    return summary


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, row in sorted(summary["strategies"].items()):
        mean, std = np.array(row["test_miou_mean"]), np.array(row["test_miou_std"])
        x = summary["n_labelled"]
        ax.plot(x, 100 * mean, marker="o", label=name)
        ax.fill_between(x, 100 * (mean - std), 100 * (mean + std), alpha=0.15)
    ref = summary["reference_test_miou_mean"]
    ax.axhline(100 * ref, color="k", lw=1, label=f"all 200 labels ({100 * ref:.1f}%)")
    ax.axhline(100 * 0.95 * ref, color="k", lw=1, ls="--", label="95% of all labels")
    ax.set_xlabel("labelled images")
    ax.set_ylabel("test mIoU (%)")
    seeds = summary["n_seeds"]
    ax.set_title(
        f"Zheng WBC: strategies vs random (mean ± sd, {min(seeds)}-{max(seeds)} seeds per point)",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=["random", "entropy", "margin", "tta"])
    parser.add_argument("--start", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps-per-epoch", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--no-reference", action="store_true", help="skip the 200-label runs")
    parser.add_argument(
        "--warm-steps",
        type=int,
        default=None,
        help="warm start: each round fine-tunes the previous round's model for this many steps "
        "(round 0 still trains from scratch with --epochs x --steps-per-epoch); the reference "
        "is then the long all-labels run of bench/zheng_quality.py",
    )
    parser.add_argument("--out", type=Path, default=OUT_JSON, help="JSON to write")
    parser.add_argument(
        "--replot",
        type=Path,
        nargs="*",
        help="train nothing: merge these JSONs (e.g. one per seed, run in parallel), "
        f"write {OUT_JSON.name} + the PNG and print the summary",
    )
    args = parser.parse_args()
    if args.replot is not None:
        replot(args.replot or [OUT_JSON])
        return
    unknown = sorted(set(args.strategies) - set(STRATEGIES))
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {sorted(STRATEGIES)}")
    torch.set_num_threads(args.threads)
    out_png = args.out.with_suffix(".png")
    warm = args.warm_steps is not None
    if warm:
        args.no_reference = True

    pool, val, test = fixed_split(load_zheng(), (200, 50, 50), args.split_seed)
    base = SegTrainConfig(
        encoder="mobilenet_v2",
        encoder_weights=None,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch,
        patch_size=args.patch,
        patience=None,
        num_threads=args.threads,
        inference=INFERENCE,
    )
    runs: list[dict] = []
    references: dict[int, dict] = {}
    report: dict = {
        "dataset": "zheng-wbc/dataset1",
        "split": {"seed": args.split_seed, "pool": len(pool), "val": len(val), "test": len(test)},
        "protocol": {
            "start": args.start,
            "per_round": args.per_round,
            "rounds": args.rounds,
            "steps_per_round": args.warm_steps if warm else args.epochs * args.steps_per_epoch,
            "round0_steps": args.epochs * args.steps_per_epoch,
            "training": (
                "round 0 from scratch (best-val epoch); later rounds fine-tune the previous "
                "round's model for a fixed step count, cosine lr to 5 % per round, last "
                "weights kept; crops seeded by (seed, round), shared by all strategies"
                if warm
                else "from scratch every round, same training seed; best-val epoch kept"
            ),
            "curve_metric": "test mIoU (val only selects the epoch)",
            "reference": (
                "bench/zheng_quality.py long run on all 200 pool images (same split)"
                if warm
                else "all 200 pool images, same step cap and seed"
            ),
            "diversity": None,
        },
        "train_config": base.model_dump(mode="json"),
        "machine": machine(),
        "command": " ".join(sys.argv),
        "status": "running",
        "runs": runs,
        "reference": references,
        "summary": {},
    }

    def save() -> None:
        report["summary"] = summarise(runs, references, len(pool))
        report["elapsed_s"] = round(time.monotonic() - started, 1)
        write_json(args.out, report)

    started = time.monotonic()
    quality = RESULTS / "zheng_quality.json"
    for seed in args.seeds:
        if warm:
            import json

            # The same all-labels bar for every seed: the long run on the same 200-image pool.
            miou = json.loads(quality.read_text())["test"]["miou"]
            references[seed] = {"test_miou": miou, "source": str(quality.name)}
        config = base.model_copy(update={"seed": seed})
        if not args.no_reference:
            _, ref = train_and_test(pool, val, test, config)
            references[seed] = ref
            print(f"seed {seed} reference (200 labels): test mIoU {100 * ref['test_miou']:.2f}% "
                  f"({ref['train_s']:.0f}s)", flush=True)  # fmt: skip
            save()
        order = np.random.default_rng(1000 + seed).permutation(len(pool))
        start_set = [pool[i] for i in order[: args.start]]
        first_model, first = train_and_test(start_set, val, test, config)
        # Round-major order: a run cut short still compares every strategy at the same rounds.
        state = {name: (list(start_set), first_model) for name in args.strategies}
        for round_ in range(args.rounds + 1):
            for name in args.strategies:
                labelled, model = state[name]
                row = dict(first)
                if round_ > 0:
                    score_start = time.monotonic()
                    taken = {s.tile_id for s in labelled}
                    rest = [s for s in pool if s.tile_id not in taken]
                    ranked = rank_tiles(
                        [Candidate(s.tile_id, s.smear_id, s.image) for s in rest],
                        name,
                        model.build_model(),
                        INFERENCE,
                        seed=seed,
                    )
                    picked = {t.tile_id for t in ranked[: args.per_round]}
                    score_s = time.monotonic() - score_start
                    labelled = labelled + [s for s in rest if s.tile_id in picked]
                    if warm:
                        model, row = fine_tune(
                            model, labelled, val, test, config, args.warm_steps,
                            seed=1_000 * seed + round_,
                        )  # fmt: skip
                    else:
                        model, row = train_and_test(labelled, val, test, config)
                    row["score_s"] = round(score_s, 1)
                    row["added"] = sorted(picked)
                    state[name] = (labelled, model)
                runs.append({"seed": seed, "strategy": name, "round": round_, **row})
                print(
                    f"seed {seed} {name:>7} round {round_}: {len(labelled):3d} labels  "
                    f"test mIoU {100 * row['test_miou']:.2f}%  val {100 * row['val_miou']:.2f}%  "
                    f"train {row['train_s']:.0f}s score {row.get('score_s', 0):.0f}s  "
                    f"[{time.monotonic() - started:.0f}s]",
                    flush=True,
                )
                save()
        if report["summary"].get("strategies"):
            plot(report["summary"], out_png)
    report["status"] = "done"
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    save()
    print_summary(report["summary"])
    print(f"wrote {args.out} and {out_png.name}")


def add_quality_reference(summary: dict, pool_size: int) -> None:
    """Labels needed for 95 % of the long quality run (bench/zheng_quality.py), if it is done.

    That model trained on the same 200-image pool for far more steps, so it is the stricter
    "all labels" bar; the per-seed reference shares the rounds' step cap.
    """
    import json

    path = RESULTS / "zheng_quality.json"
    if not summary or not path.is_file():
        return
    quality = json.loads(path.read_text())
    if quality.get("status") != "done":
        return
    target = 0.95 * quality["test"]["miou"]
    summary["quality_run_reference"] = {
        "test_miou": quality["test"]["miou"],
        "steps": quality["steps_run"],
        "target_95pct": target,
        "labels_for_95pct": {
            name: labels_needed(summary["n_labelled"], row["test_miou_mean"], target)
            for name, row in summary["strategies"].items()
        },
        "pool_size": pool_size,
    }
    print(f"quality run (all 200 labels, {quality['steps_run']} steps): test mIoU "
          f"{100 * quality['test']['miou']:.2f}%; 95% target {100 * target:.2f}%; labels needed: "
          f"{summary['quality_run_reference']['labels_for_95pct']}")  # fmt: skip


def replot(paths: list[Path]) -> None:
    """Merge the JSONs of finished or cut-short runs, then summarise and plot them.

    A (seed, strategy, round) found in several files is taken from the first.
    """
    import json

    reports = [json.loads(p.read_text()) for p in paths]
    runs: dict[tuple, dict] = {}
    references: dict[int, dict] = {}
    for report in reports:
        for run in report["runs"]:
            runs.setdefault((run["seed"], run["strategy"], run["round"]), run)
        for seed, ref in report["reference"].items():
            references.setdefault(int(seed), ref)
    merged = {
        **reports[0],
        "merged_from": [str(p) for p in paths],
        "commands": [r["command"] for r in reports],
        "runs": list(runs.values()),
        "reference": references,
    }
    merged["summary"] = summarise(merged["runs"], references, merged["split"]["pool"])
    add_quality_reference(merged["summary"], merged["split"]["pool"])
    write_json(OUT_JSON, merged)
    if merged["summary"].get("strategies"):
        plot(merged["summary"], OUT_PNG)
    print_summary(merged["summary"])


def print_summary(summary: dict) -> None:
    if not summary:
        return
    ref = summary["reference_test_miou_mean"]
    source = summary.get("reference_source", "same step cap, per seed")
    print(f"reference (all 200 labels, {source}): test mIoU {100 * ref:.2f}%; "
          f"95% target {100 * summary['target_95pct']:.2f}%")  # fmt: skip
    print("  labelled: " + " ".join(f"{n:5d}" for n in summary["n_labelled"]))
    print("  seeds:    " + " ".join(f"{n:5d}" for n in summary["n_seeds"]))
    for name, row in sorted(summary["strategies"].items()):
        curve = " ".join(f"{100 * v:5.1f}" for v in row["test_miou_mean"])
        frac = row["fraction_for_95pct"]
        need = "not reached" if frac is None else f"{row['labels_for_95pct']} ({100 * frac:.0f}%)"
        diff = row.get("minus_random_mean")
        diff_s = (
            ""
            if diff is None
            else (f"  vs random {100 * diff:+.2f} pts (wins {row['minus_random_wins']})")
        )
        print(f"  {name:>8}: {curve}  labels for 95%: {need}{diff_s}")


if __name__ == "__main__":
    main()
