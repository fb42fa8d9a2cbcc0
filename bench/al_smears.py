"""Active learning measured on whole smears (issue 11, item 3).

The pool is every tile of the train and validation smears of a workspace into which the BCCD
white-cell masks were imported (292 photos, 256 px tiles, about 1,566 pool tiles, most of them
red cells and plasma only). Every pool tile is labelled, so "labelling" a tile reveals its
mask. The held-out set is every test smear of the store's own split, scored at full
resolution per smear (SmearLab's sliding window over the whole photo, one confusion matrix
over all held-out smears; classes background, cytoplasm, nucleus), never trained or selected on.

The loop, the same for every arm and seed:

- start from ``--start`` (20) random pool tiles, drawn per seed and shared by all arms;
- round 0 trains from scratch for ``--round0-steps`` steps (one model per seed, shared);
- each later round doubles the labelled set (20, 40, 80, 160): the arm ranks a seeded random
  sample of ``--pool-sample`` unlabelled pool tiles (the same draw for every arm of a seed and
  round, less the tiles an arm already holds) with its strategy and diversity
  (``training.strategies``, as the Suggestions page ranks), "labels" the top ones, and
  fine-tunes its previous round's model warm for ``--warm-steps`` steps;
- training is the product's: ``training.service.load_samples`` turns the chosen tiles of each
  smear into one region sample (run on an in-memory snapshot of the workspace, read once), and
  ``training.segment.train_segmentation`` trains it with one cosine schedule over the round's
  fixed step budget, crops seeded by (seed, round) so every arm of a round sees the same draws;
  the round's last weights are kept (the trainer's one end-of-run validation, on one pool tile
  of a smear no arm of that round holds, records a figure and selects nothing);
- the curve is the held-out mIoU after each round.

Arms: random, entropy and margin, each without and with ``per_smear`` diversity (at most two
tiles of one smear among a round's picks). ``--strategies tta`` adds TTA if time allows.

The all-pool reference trains from scratch on every pool tile but one smear (which the trainer
needs as its validation) for ``--reference-steps`` steps, by default the cumulative steps of an
arm's 160-tile model (round 0 + 3 warm rounds), one cosine, once per run. "Tiles for 95 %" is
the first labelled-set size whose held-out mIoU reaches 95 % of it.

Scoring (pool ranking and held-out) uses bf16 autocast where the CPU has native bf16
(``training.service.native_bf16``) and fp32 elsewhere; the JSON says which.

Writes bench/results/al_smears.json after every round (a cut-short run stays readable and is
summarised over the (seed, round) cells that every arm reached) and al_smears.png at the end.

Run:
  .venv/bin/python bench/al_smears.py --workspace WS --estimate     (measured time of a run)
  .venv/bin/python bench/al_smears.py --workspace WS                (the full benchmark)
  .venv/bin/python bench/al_smears.py --workspace WS --resume       (skip seeds already done)
  .venv/bin/python bench/al_smears.py --replot                      (summary + PNG of the JSON)
  .venv/bin/python bench/al_smears.py --export-package-data         (training/data/ file)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
OUT_JSON = RESULTS / "al_smears.json"
DIVERSITY = "per_smear"


# ------------------------------------------------------------------------------ the data
class Snapshot:
    """The workspace's pool and held-out data, read once, answering the few ``Store`` reads
    that ``training.service.load_samples`` makes (so the product builds the region samples).

    The workspace itself is only read; tile images are cut from the smear photos by their box.
    """

    def __init__(
        self, store, holdout_limit: int | None = None, pool_limit: int | None = None
    ) -> None:
        self.classes = tuple(store.schema().names)
        self._tiles = {t.tile_id: t for t in store.tiles()}
        smears = sorted({t.smear_id for t in self._tiles.values()})
        self.split = store.splits_of(smears)
        labelled = set(store.labelled_tile_ids())
        self.pool = sorted(
            t
            for t, info in self._tiles.items()
            if t in labelled and self.split[info.smear_id] in ("train", "validation")
        )
        if pool_limit is not None:  # smoke tests: the tiles of the first few pool smears
            keep = sorted({self._tiles[t].smear_id for t in self.pool})[:pool_limit]
            self.pool = [t for t in self.pool if self._tiles[t].smear_id in set(keep)]
        self.heldout_smears = sorted(s for s in smears if self.split[s] == "test")
        if holdout_limit is not None:
            self.heldout_smears = self.heldout_smears[:holdout_limit]
        heldout_tiles = [
            t for t, i in self._tiles.items() if i.smear_id in set(self.heldout_smears)
        ]
        self._masks = {t: (rev, png) for t, rev, png in store.iter_latest_masks(self.pool)}
        self._images: dict[str, np.ndarray] = {}
        pool_smears = sorted({self._tiles[t].smear_id for t in self.pool})
        for smear_id, image in store.iter_smear_images(pool_smears + self.heldout_smears):
            self._images[smear_id] = image
        from dataset.png import decode_mask
        from dataset.tiling import assemble

        self.white = {}
        for t, (_, png) in self._masks.items():
            mask = decode_mask(png)
            self.white[t] = bool(((mask > 0) & (mask < len(self.classes))).any())
        held = {
            t: (rev, decode_mask(png)) for t, rev, png in store.iter_latest_masks(heldout_tiles)
        }
        self.heldout = []
        for smear_id in self.heldout_smears:
            image = self._images[smear_id]
            parts = sorted(
                (i for t, i in self._tiles.items() if i.smear_id == smear_id and t in held),
                key=lambda i: (held[i.tile_id][0].created_at, i.tile_id),
            )
            mask = assemble(
                image.shape[1], image.shape[0], ((i.box, held[i.tile_id][1]) for i in parts)
            )
            self.heldout.append((smear_id, image, mask))

    # The reads load_samples makes -------------------------------------------------------
    def labelled_tile_ids(self, split: str | None = None) -> list[str]:
        return [t for t in self.pool if split is None or self.split[self.smear_of(t)] == split]

    def tiles(self, smear_id: str | None = None) -> list:
        return [t for t in self._tiles.values() if smear_id is None or t.smear_id == smear_id]

    def iter_latest_masks(self, tile_ids):
        for t in tile_ids:
            if t in self._masks:
                rev, png = self._masks[t]
                yield t, rev, png

    def iter_smear_images(self, smear_ids):
        for s in smear_ids:
            yield s, self._images[s]

    # Bench helpers ----------------------------------------------------------------------
    def smear_of(self, tile_id: str) -> str:
        return self._tiles[tile_id].smear_id

    def tile_image(self, tile_id: str) -> np.ndarray:
        t = self._tiles[tile_id]
        return np.ascontiguousarray(self._images[t.smear_id][t.y : t.y + t.h, t.x : t.x + t.w])

    def samples(self, tile_ids) -> list:
        """The product's training samples of these pool tiles (regions per smear)."""
        from training.service import load_samples

        ids = list(tile_ids)
        return load_samples(self, "train", tile_ids=ids) + load_samples(
            self, "validation", tile_ids=ids
        )

    def one_tile_sample(self, avoid_smears: set[str]):
        """One pool tile of a smear outside ``avoid_smears``: the trainer's required validation
        (a figure it records; with one checkpoint it selects nothing)."""
        from training.service import load_samples

        tile = next(t for t in self.pool if self.smear_of(t) not in avoid_smears)
        split = self.split[self.smear_of(tile)]
        return load_samples(self, split, regions=False, tile_ids=[tile])


# ------------------------------------------------------------------------------ one round
@dataclass(frozen=True)
class Arm:
    strategy: str
    diversity: str | None

    @property
    def name(self) -> str:
        return self.strategy + (f"+{self.diversity}" if self.diversity else "")


def inference_config(bf16: bool):
    from training.inference import InferenceConfig

    return InferenceConfig(window=256, batch_size=16, bf16=bf16, channels_last=True)


def train_round(snap: Snapshot, tile_ids, steps: int, seed: int, args, start=None):
    """The model after ``steps`` steps on these tiles (warm from ``start`` if given)."""
    from training.segment import SegTrainConfig, train_segmentation

    train = snap.samples(tile_ids)
    val = snap.one_tile_sample({s.smear_id for s in train})
    config = SegTrainConfig(
        epochs=1,
        steps_per_epoch=steps,
        patience=None,
        batch_size=args.batch,
        seed=seed,
        num_threads=args.threads,
        bf16=args.bf16,
        inference=inference_config(args.bf16),
        init_from="previous round" if start is not None else None,
    )
    started = time.monotonic()
    result = train_segmentation(train, val, snap.classes, config, start=start)
    return result.build_model(), time.monotonic() - started


def heldout_score(model, heldout: list, classes: tuple[str, ...], bf16: bool) -> dict:
    """mIoU over all held-out smears at full resolution (one confusion matrix)."""
    from training.inference import iter_proba
    from training.metrics import confusion_matrix, metrics_from_confusion

    n = len(classes)
    cm = np.zeros((n, n), dtype=np.int64)
    started = time.monotonic()
    images = (image for _, image, _ in heldout)
    for probs, (_, _, mask) in zip(
        iter_proba(model, images, inference_config(bf16)), heldout, strict=True
    ):
        cm += confusion_matrix(probs.argmax(axis=0), mask, n)
    metrics = metrics_from_confusion(cm, classes)
    return {
        "miou": round(float(metrics.miou), 4),
        "iou": {
            c: None if v is None else round(v, 4) for c, v in zip(classes, metrics.iou, strict=True)
        },
        "eval_s": round(time.monotonic() - started, 1),
    }


def pool_scores(model, snap: Snapshot, tile_ids: list[str], names: set[str], bf16: bool, seed: int):
    """Scores of each strategy in ``names`` for these tiles, from one pass of the model.

    The same per-tile scores as ``training.strategies.score_tiles`` (each strategy's
    ``score`` on the identity view), computed once for the strategies that share a model.
    """
    from training.inference import iter_proba
    from training.strategies import Candidate, get_strategy

    strategies = {n: get_strategy(n) for n in names}
    if any(s.views != ("identity",) for s in strategies.values()):
        from training.strategies import score_tiles

        return {
            n: [
                s.score
                for s in score_tiles(
                    [Candidate(t, snap.smear_of(t), snap.tile_image(t)) for t in tile_ids],
                    n,
                    model,
                    inference_config(bf16),
                    seed=seed,
                )
            ]
            for n in names
        }
    out: dict[str, list[float]] = {n: [] for n in names}
    images = (snap.tile_image(t) for t in tile_ids)
    for t, probs in zip(tile_ids, iter_proba(model, images, inference_config(bf16)), strict=True):
        candidate = Candidate(t, snap.smear_of(t), np.empty((0, 0, 3), np.uint8))
        for n, strategy in strategies.items():
            out[n].append(strategy.score(candidate, [probs], seed)[0])
    return out


def pick(snap: Snapshot, arm: Arm, tile_ids: list[str], scores: list[float] | None, k: int, seed):
    """The ``k`` tiles ``arm`` labels next, ranked as ``training.strategies.rank_tiles`` does."""
    from training.strategies import RandomStrategy, TileScore, get_diversity

    if scores is None:  # random needs no model
        scores = [RandomStrategy.key(t, seed) for t in tile_ids]
    ranked = sorted(
        (TileScore(t, snap.smear_of(t), s) for t, s in zip(tile_ids, scores, strict=True)),
        key=lambda s: -s.score,
    )
    if arm.diversity:
        ranked = get_diversity(arm.diversity).order(ranked, k)
    return [s.tile_id for s in ranked[:k]]


# ------------------------------------------------------------------------------ summary
def first_reaching(sizes: list[int], curve: list[float], target: float) -> int | None:
    for n, v in zip(sizes, curve, strict=True):
        if v >= target:
            return n
    return None


def summarise(report: dict) -> dict:
    """Curves, tiles for 95 %, white-cell shares and paired differences from random.

    A (seed, round) enters only when every arm reached it, so all curves at a point average
    the same seeds.
    """
    runs = report["runs"]
    arms = report["protocol"]["arms"]
    ref = report.get("reference") or {}
    if not runs or not arms:
        return {}
    table = {(r["seed"], r["arm"], r["round"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    rounds = sorted({r["round"] for r in runs})
    cells = {k: [s for s in seeds if all((s, a, k) in table for a in arms)] for k in rounds}
    rounds = [k for k in rounds if cells[k]]
    if not rounds:
        return {}
    sizes = [table[(cells[k][0], arms[0], k)]["n_labelled"] for k in rounds]
    ref_miou = ref.get("miou")
    target = None if ref_miou is None else 0.95 * ref_miou
    complete = [s for s in seeds if all(s in cells[k] for k in rounds)]
    summary: dict = {
        "n_labelled": sizes,
        "n_seeds": [len(cells[k]) for k in rounds],
        "complete_seeds": complete,
        "reference_miou": ref_miou,
        "target_95pct": target,
        "pool_white_cell_share": report["pool"]["white_cell_share"],
        "arms": {},
    }
    for arm in arms:
        values = [[table[(s, arm, k)]["miou"] for s in cells[k]] for k in rounds]
        mean = [float(np.mean(v)) for v in values]
        picked = [
            w for s in complete for k in rounds if k > 0 for w in table[(s, arm, k)]["added_white"]
        ]
        per_seed_need = {
            s: None
            if target is None
            else first_reaching(sizes, [table[(s, arm, k)]["miou"] for k in rounds], target)
            for s in complete
        }
        row = {
            "strategy": table[(seeds[0], arm, 0)]["strategy"],
            "diversity": table[(seeds[0], arm, 0)]["diversity"],
            "miou_mean": [round(v, 4) for v in mean],
            "miou_std": [round(float(np.std(v)), 4) for v in values],
            "tiles_for_95pct": None if target is None else first_reaching(sizes, mean, target),
            "tiles_for_95pct_per_seed": per_seed_need,
            "white_cell_share": round(float(np.mean(picked)), 4) if picked else None,
            "picked_tiles": len(picked),
        }
        strategy, diversity = row["strategy"], row["diversity"]
        base = Arm("random", diversity).name
        later = [k for k in rounds if k > 0]
        if strategy != "random" and base in arms and later:
            per_seed = [
                float(
                    np.mean(
                        [table[(s, arm, k)]["miou"] - table[(s, base, k)]["miou"] for k in later]
                    )
                )
                for s in complete
            ]
            row["versus"] = base
            row["minus_random_per_seed"] = [round(d, 4) for d in per_seed]
            if per_seed:
                mean_d = float(np.mean(per_seed))
                sd = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else None
                row["minus_random_mean"] = round(mean_d, 4)
                row["minus_random_sd"] = None if sd is None else round(sd, 4)
                row["minus_random_wins"] = f"{sum(d > 0 for d in per_seed)}/{len(per_seed)}"
                row["beats_random_beyond_spread"] = sd is not None and mean_d > sd
        summary["arms"][arm] = row
    return summary


def print_summary(summary: dict) -> None:
    if not summary:
        print("nothing to summarise yet")
        return
    ref = summary["reference_miou"]
    if ref is not None:
        print(
            f"all-pool reference: held-out mIoU {100 * ref:.2f} %; 95 % target "
            f"{100 * summary['target_95pct']:.2f} %"
        )
    print(f"pool tiles with a white cell: {100 * summary['pool_white_cell_share']:.1f} %")
    print("  labelled tiles:        " + " ".join(f"{n:11d}" for n in summary["n_labelled"]))
    print("  seeds per point:       " + " ".join(f"{n:11d}" for n in summary["n_seeds"]))
    for arm, row in summary["arms"].items():
        curve = " ".join(
            f"{100 * m:5.1f}±{100 * s:4.1f}"
            for m, s in zip(row["miou_mean"], row["miou_std"], strict=True)
        )
        need = row["tiles_for_95pct"]
        per_seed = ",".join(
            "-" if v is None else str(v) for v in row["tiles_for_95pct_per_seed"].values()
        )
        white = row["white_cell_share"]
        line = (
            f"  {arm:>19}: {curve}  95 %: {'not reached' if need is None else need} "
            f"(per seed {per_seed or '-'})  white-cell picks: "
            f"{'-' if white is None else f'{100 * white:.0f} %'}"
        )
        if "minus_random_mean" in row:
            sd = row["minus_random_sd"]
            verdict = (
                "beats random beyond seed spread"
                if row["beats_random_beyond_spread"]
                else "not beyond seed spread"
            )
            line += (
                f"  vs {row['versus']}: {100 * row['minus_random_mean']:+.2f} pts "
                f"(sd {'-' if sd is None else f'{100 * sd:.2f}'}, "
                f"wins {row['minus_random_wins']}; {verdict})"
            )
        print(line)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    if not summary:
        return
    fig, ax = plt.subplots(figsize=(7, 4.6))
    x = summary["n_labelled"]
    for arm, row in summary["arms"].items():
        mean, sd = np.array(row["miou_mean"]), np.array(row["miou_std"])
        style = "--" if row["diversity"] else "-"
        ax.plot(x, 100 * mean, style, marker="o", label=arm)
        ax.fill_between(x, 100 * (mean - sd), 100 * (mean + sd), alpha=0.12)
    ref = summary["reference_miou"]
    if ref is not None:
        ax.axhline(100 * ref, color="k", lw=1, label=f"all pool ({100 * ref:.1f} %)")
        ax.axhline(95 * ref, color="k", lw=1, ls=":", label="95 % of all pool")
    ax.set_xscale("log", base=2)
    ax.set_xticks(x, [str(n) for n in x])
    ax.set_xlabel("labelled tiles")
    ax.set_ylabel("held-out mIoU (%)")
    seeds = summary["n_seeds"]
    ax.set_title(
        f"BCCD whole smears: strategies vs random (mean ± sd, {min(seeds)}-{max(seeds)} seeds)",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def export_package_data(report: dict, out: Path | None = None) -> Path:
    """The Suggestions page's data file from a finished run (training/data/active_learning.json)."""
    from training.service.measured import ArmResult, Measurement, write_measurement

    if report.get("status") != "done" or report.get("smoke"):
        raise SystemExit(
            "Refusing to export: the run is not finished or was a smoke run "
            f"(status {report.get('status')!r}); run the full benchmark first."
        )
    summary = report["summary"]
    p = report["protocol"]
    arms = [
        ArmResult(
            arm=arm,
            strategy=row["strategy"],
            diversity=row["diversity"],
            miou_mean=row["miou_mean"],
            miou_std=row["miou_std"],
            tiles_for_95pct=row["tiles_for_95pct"],
            white_cell_share=row["white_cell_share"],
            minus_random_per_seed=row.get("minus_random_per_seed", []),
        )
        for arm, row in summary["arms"].items()
    ]
    measurement = Measurement(
        dataset=report["dataset"],
        n_labelled=summary["n_labelled"],
        seeds=len(summary["complete_seeds"]),
        pool_tiles=report["pool"]["tiles"],
        pool_white_cell_share=report["pool"]["white_cell_share"],
        heldout=f"{report['heldout']['smears']} test smears at full resolution",
        reference_miou=summary["reference_miou"],
        reference=p["reference"],
        precision=report["precision"],
        protocol=(
            f"start {p['start']} random tiles, doubling; round 0 {p['round0_steps']} steps from "
            f"scratch, then {p['warm_steps']} warm steps per round; pool sample {p['pool_sample']}"
        ),
        command=report["command"],
        measured_at=report["machine"]["started"],
        arms=arms,
    )
    return write_measurement(measurement, out)


# ------------------------------------------------------------------------------ the run
def estimate(snap: Snapshot, args, arms: list[Arm], load_s: float) -> dict:
    """Time a few training steps, pool tiles and held-out smears; extrapolate the whole run."""
    import torch

    rng = np.random.default_rng(0)
    tiles = [snap.pool[i] for i in rng.permutation(len(snap.pool))[: args.sizes[0]]]
    # Warm-up (first steps allocate), then the timed steps; both at the run's batch size.
    train_round(snap, tiles, 2, 0, args)
    model2, spent = train_round(snap, tiles, 2 + args.estimate_steps, 0, args)
    _, warm_only = train_round(snap, tiles, 2, 0, args)
    step_s = max(spent - warm_only, 1e-3) / args.estimate_steps
    sample = [snap.pool[i] for i in rng.permutation(len(snap.pool))[: args.estimate_tiles]]
    started = time.monotonic()
    pool_scores(model2, snap, sample, {"entropy", "margin"}, args.bf16, 0)
    tile_s = (time.monotonic() - started) / len(sample)
    held = snap.heldout[: args.estimate_smears]
    started = time.monotonic()
    heldout_score(model2, held, snap.classes, args.bf16)
    smear_s = (time.monotonic() - started) / max(len(held), 1)
    rounds = len(args.sizes) - 1
    n_seeds = len(args.seeds)
    steps = n_seeds * (args.round0_steps + len(arms) * rounds * args.warm_steps)
    steps += 0 if args.no_reference else args.reference_steps
    model_arms = [a for a in arms if a.strategy != "random"]
    passes = n_seeds * ((1 if model_arms else 0) + (rounds - 1) * len(model_arms))
    pool_left = max(0, len(snap.pool) - args.sizes[-2])
    scored = passes * min(args.pool_sample or len(snap.pool), pool_left)
    evals = n_seeds * (1 + len(arms) * rounds) + (0 if args.no_reference else 1)
    n_held = len(snap.heldout)
    # Region samples of up to 160 tiles and the trainer's start-up: measured as the gap between
    # a 2-step run and 2 steps' time.
    overhead = warm_only - 2 * step_s
    runs = n_seeds * (1 + len(arms) * rounds) + (0 if args.no_reference else 1)
    parts = {
        "train_steps": steps,
        "step_s": round(step_s, 3),
        "train_s": round(steps * step_s),
        "pool_tiles_scored": scored,
        "pool_tile_s": round(tile_s, 4),
        "pool_scoring_s": round(scored * tile_s),
        "heldout_evaluations": evals,
        "heldout_smear_s": round(smear_s, 3),
        "heldout_s": round(evals * n_held * smear_s),
        "trainer_overhead_s": round(runs * max(overhead, 0.0)),
        "data_load_s": round(load_s),
        "threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    parts["total_s"] = sum(
        parts[k]
        for k in ("train_s", "pool_scoring_s", "heldout_s", "trainer_overhead_s", "data_load_s")
    )
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, help="workspace with the BCCD masks imported")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--strategies", nargs="+", default=["random", "entropy", "margin"])
    parser.add_argument(
        "--no-diversity-arms", action="store_true", help="only arms without per_smear"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 40, 80, 160])
    parser.add_argument("--round0-steps", type=int, default=150)
    parser.add_argument("--warm-steps", type=int, default=50)
    parser.add_argument(
        "--reference-steps", type=int, default=None, help="default: round 0 + warm rounds"
    )
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--pool-sample", type=int, default=500, help="0: score the whole pool")
    parser.add_argument(
        "--heldout-smears", type=int, default=None, help="default: every test smear"
    )
    parser.add_argument("--pool-smears", type=int, default=None, help="smoke: a smaller pool")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fp32", action="store_true", help="fp32 even where bf16 is native")
    parser.add_argument("--out", type=Path, default=OUT_JSON)
    parser.add_argument("--smoke", action="store_true", help="mark the JSON as a smoke run")
    parser.add_argument(
        "--estimate", action="store_true", help="time a few steps; print the run's cost"
    )
    parser.add_argument("--estimate-steps", type=int, default=6)
    parser.add_argument("--estimate-tiles", type=int, default=32)
    parser.add_argument("--estimate-smears", type=int, default=3)
    parser.add_argument("--resume", action="store_true", help="keep the seeds --out already has")
    parser.add_argument("--replot", action="store_true", help="summarise and plot --out")
    parser.add_argument(
        "--export-package-data",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="write the page's data file from --out (default training/data/...)",
    )
    args = parser.parse_args()
    out_png = args.out.with_suffix(".png")
    if args.replot or args.export_package_data is not None:
        report = json.loads(args.out.read_text())
        report["summary"] = summarise(report)
        if args.replot:
            plot(report, out_png)
            print_summary(report["summary"])
        if args.export_package_data is not None:
            path = export_package_data(
                report, Path(args.export_package_data) if args.export_package_data else None
            )
            print(f"wrote {path}")
        return
    if args.workspace is None:
        parser.error("--workspace is required to run (or use --replot / --export-package-data)")
    from training.strategies import STRATEGIES

    unknown = sorted(set(args.strategies) - set(STRATEGIES))
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {sorted(STRATEGIES)}")
    sizes = args.sizes
    if len(sizes) < 2 or any(b <= a for a, b in itertools.pairwise(sizes)):
        parser.error(f"--sizes must grow, e.g. 20 40 80 160; got {sizes}")
    import torch

    from dataset.store import Store
    from training.service import native_bf16

    torch.set_num_threads(args.threads)
    args.bf16 = native_bf16() and not args.fp32
    if args.reference_steps is None:
        args.reference_steps = args.round0_steps + (len(sizes) - 1) * args.warm_steps
    diversities = [None] if args.no_diversity_arms else [None, DIVERSITY]
    arms = [Arm(s, d) for s in args.strategies for d in diversities]

    started = time.monotonic()
    snap = Snapshot(Store.open(args.workspace), args.heldout_smears, args.pool_smears)
    load_s = time.monotonic() - started
    white_share = float(np.mean([snap.white[t] for t in snap.pool]))
    print(
        f"pool {len(snap.pool)} tiles ({100 * white_share:.1f} % with a white cell), held-out "
        f"{len(snap.heldout)} test smears; read in {load_s:.0f}s; "
        f"scoring {'bf16' if args.bf16 else 'fp32'}",
        flush=True,
    )
    if args.estimate:
        parts = estimate(snap, args, arms, load_s)
        print(json.dumps(parts, indent=1))
        print(
            f"expected run time: {parts['total_s'] / 3600:.2f} h "
            f"({parts['total_s'] / 60:.0f} min) for {len(args.seeds)} seeds x {len(arms)} arms, "
            f"pool sample {args.pool_sample or 'all'}"
        )
        return
    if args.pool_sample:
        print(
            f"each round ranks a seeded random sample of {args.pool_sample} unlabelled pool "
            "tiles (--pool-sample 0 ranks the whole pool)",
            flush=True,
        )

    previous = json.loads(args.out.read_text()) if args.resume and args.out.is_file() else None
    report: dict = {
        "dataset": "BCCD white-cell masks, whole smears (256 px tiles)",
        "workspace": str(args.workspace),
        "smoke": args.smoke,
        "pool": {
            "tiles": len(snap.pool),
            "smears": len({snap.smear_of(t) for t in snap.pool}),
            "white_cell_share": round(white_share, 4),
        },
        "heldout": {
            "smears": len(snap.heldout),
            "scored": "full resolution per smear, one confusion matrix",
        },
        "precision": "bf16 autocast" if args.bf16 else "fp32 (no native bf16 on this CPU)",
        "protocol": {
            "start": sizes[0],
            "sizes": sizes,
            "round0_steps": args.round0_steps,
            "warm_steps": args.warm_steps,
            "batch": args.batch,
            "pool_sample": args.pool_sample or "all",
            "arms": [a.name for a in arms],
            "reference": (
                "none"
                if args.no_reference
                else f"all pool tiles but one smear, {args.reference_steps} steps from scratch"
            ),
            "training": "training.service.load_samples regions + train_segmentation; round 0 "
            "from scratch, later rounds warm from the arm's previous model; one cosine per round, "
            "last weights kept; crops seeded by (seed, round)",
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": args.threads,
            "torch": torch.__version__,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        "command": " ".join(["bench/al_smears.py", *sys.argv[1:]]),
        "status": "running",
        "reference": (previous or {}).get("reference") or {},
        "runs": [],
    }
    done_seeds: set[int] = set()
    if previous:
        for seed in args.seeds:
            rows = [r for r in previous["runs"] if r["seed"] == seed]
            if len(rows) == len(arms) * len(sizes):
                report["runs"] += rows
                done_seeds.add(seed)
        print(f"resuming: seeds {sorted(done_seeds)} already done", flush=True)

    def save() -> None:
        report["summary"] = summarise(report)
        report["elapsed_s"] = round(time.monotonic() - started, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(args.out)

    if not args.no_reference and not report["reference"]:
        # Every pool tile but one smear's, which the trainer needs as its validation.
        spare = snap.smear_of(snap.pool[0])
        everything = [t for t in snap.pool if snap.smear_of(t) != spare]
        model, train_s = train_round(snap, everything, args.reference_steps, 999_983, args)
        report["reference"] = {
            **heldout_score(model, snap.heldout, snap.classes, args.bf16),
            "train_s": round(train_s, 1),
            "steps": args.reference_steps,
        }
        print(
            f"all-pool reference: held-out mIoU {100 * report['reference']['miou']:.2f} % "
            f"({train_s:.0f}s) [{time.monotonic() - started:.0f}s]",
            flush=True,
        )
        save()

    for seed in args.seeds:
        if seed in done_seeds:
            continue
        order = np.random.default_rng(1000 + seed).permutation(len(snap.pool))
        start_set = [snap.pool[i] for i in order[: sizes[0]]]
        model, train_s = train_round(snap, start_set, args.round0_steps, 1000 * seed, args)
        first = heldout_score(model, snap.heldout, snap.classes, args.bf16)
        print(
            f"seed {seed} round 0: {sizes[0]} tiles  held-out mIoU {100 * first['miou']:.2f} %  "
            f"train {train_s:.0f}s [{time.monotonic() - started:.0f}s]",
            flush=True,
        )
        state = {a.name: (list(start_set), model) for a in arms}
        for arm in arms:
            report["runs"].append(
                {
                    "seed": seed,
                    "arm": arm.name,
                    "strategy": arm.strategy,
                    "diversity": arm.diversity,
                    "round": 0,
                    "n_labelled": sizes[0],
                    **first,
                    "train_s": round(train_s, 1),
                    "added": [],
                    "added_white": [],
                    "shared_round0": True,
                }
            )
        save()
        for round_, size in enumerate(sizes[1:], 1):
            k = size - sizes[round_ - 1]
            draw = [
                snap.pool[i]
                for i in np.random.default_rng((seed, round_)).permutation(len(snap.pool))
            ]
            # One pass per distinct model for all the model-based arms that hold it.
            by_model: dict[int, tuple[object, set[str]]] = {}
            for arm in arms:
                if arm.strategy != "random":
                    m = state[arm.name][1]
                    by_model.setdefault(id(m), (m, set()))[1].add(arm.strategy)
            picks: dict[str, tuple[list[str], float]] = {}
            cache: dict[tuple[int, str], tuple[list[str], list[float]]] = {}
            for arm in arms:
                labelled, m = state[arm.name]
                held = set(labelled)
                candidates = [t for t in draw if t not in held]
                if args.pool_sample:
                    candidates = candidates[: args.pool_sample]
                t0 = time.monotonic()
                scores = None
                if arm.strategy != "random":
                    key = (id(m), tuple(candidates))
                    if key not in cache:
                        cache[key] = pool_scores(
                            m, snap, candidates, by_model[id(m)][1], args.bf16, seed
                        )
                    scores = cache[key][arm.strategy]
                picks[arm.name] = (
                    pick(snap, arm, candidates, scores, k, seed),
                    time.monotonic() - t0,
                )
            # Training is seeded by (seed, round), so two arms that hold the same model and
            # picked the same tiles (an arm and its per_smear twin often do) train one model.
            trained: dict[tuple[int, tuple[str, ...]], tuple[str, object, float, dict]] = {}
            for arm in arms:
                labelled, m = state[arm.name]
                added, score_s = picks[arm.name]
                labelled = labelled + added
                key = (id(m), tuple(labelled))
                if key in trained:
                    same_as, new_model, train_s, score = trained[key]
                else:
                    same_as = None
                    new_model, train_s = train_round(
                        snap, labelled, args.warm_steps, 1000 * seed + round_, args, start=m
                    )
                    score = heldout_score(new_model, snap.heldout, snap.classes, args.bf16)
                    trained[key] = (arm.name, new_model, train_s, score)
                state[arm.name] = (labelled, new_model)
                white = [snap.white[t] for t in added]
                report["runs"].append(
                    {
                        "seed": seed,
                        "arm": arm.name,
                        "strategy": arm.strategy,
                        "diversity": arm.diversity,
                        "round": round_,
                        "n_labelled": len(labelled),
                        **score,
                        "train_s": round(train_s, 1),
                        "score_s": round(score_s, 1),
                        "added": added,
                        "added_white": white,
                        "smears_added": len({snap.smear_of(t) for t in added}),
                        "same_model_as": same_as,
                    }
                )
                print(
                    f"seed {seed} {arm.name:>19} round {round_}: {len(labelled):4d} tiles  "
                    f"held-out mIoU {100 * score['miou']:.2f} %  white-cell picks "
                    f"{sum(white)}/{len(white)}  train {train_s:.0f}s score {score_s:.0f}s "
                    f"eval {score['eval_s']:.0f}s [{time.monotonic() - started:.0f}s]"
                    + (f"  (same model as {same_as})" if same_as else ""),
                    flush=True,
                )
            save()
        plot({"summary": summarise(report)}, out_png)
    report["status"] = "done"
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    save()
    plot(report, out_png)
    print_summary(report["summary"])
    print(f"wrote {args.out} and {out_png.name} in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
