"""What the audit trail costs: one append in a workspace that already holds thousands of
audit rows, and what it adds to a mask save (the app appends on every save).

A fresh workspace gets ``--rows`` audit rows, ``--seed-batch`` rows a commit (1: one commit
per row, as the app writes them, so the log has that many commits; larger batches seed
faster and give the same rows, fewer log entries). Then, side by side in one run,
``--saves`` mask saves alternate between the real save (revision commit + audit row) and the
same save with the audit row left out; plain ``audit.record`` appends and ``audit.read`` of
the whole trail and of one actor are timed too.
Synthetic tiles; no real data is needed.

Prints the figures and writes bench/results/audit_bench.json.

Run: .venv/bin/python bench/audit_bench.py [--rows 3000] [--saves 100]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset import audit  # noqa: E402
from dataset.store import Store  # noqa: E402


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 2),
        "max_ms": round(1000 * ordered[-1], 2),
        "n": len(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000, help="audit rows before timing")
    parser.add_argument("--seed-batch", type=int, default=50, help="seed rows per commit")
    parser.add_argument("--saves", type=int, default=40, help="saves timed, half of each kind")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "audit_bench.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        store = Store.open(ws)
        store.init(tile_size=64)
        rng = np.random.default_rng(0)
        import io

        from PIL import Image

        from dataset.ingest import ingest_files

        photo = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(photo, "PNG")
        ingest_files(store, [("s.png", photo.getvalue())], actor="bench")
        tiles = store.tiles()

        started = time.perf_counter()
        for start in range(0, args.rows, args.seed_batch):
            audit.record_all(
                store,
                [
                    audit.Event(f"user{i % 8}", "save", f"tile-{i}")
                    for i in range(start, min(start + args.seed_batch, args.rows))
                ],
            )
        seeding_s = time.perf_counter() - started

        appends = []
        for i in range(args.saves):
            t0 = time.perf_counter()
            audit.record(store, actor="bench", action="patient_open", object_id=f"P-{i}")
            appends.append(time.perf_counter() - t0)

        real_record = audit.record
        with_audit, without_audit = [], []
        for i in range(args.saves):
            tile = tiles[i % len(tiles)]
            mask = rng.integers(0, 4, size=(tile.h, tile.w), dtype=np.uint8)
            audited = i % 2 == 0
            if not audited:
                audit.record = lambda *a, **k: None  # the same save, its audit row left out
            t0 = time.perf_counter()
            store.save_mask(tile.tile_id, mask, annotator="bench", on_latest=True)
            (with_audit if audited else without_audit).append(time.perf_counter() - t0)
            audit.record = real_record

        t0 = time.perf_counter()
        everything = audit.read(store)
        read_all_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        one = audit.read(store, actor="user3")
        read_one_s = time.perf_counter() - t0
        log = ws / "tables" / audit.TABLE / "_delta_log"
        commits = len(list(log.glob("*.json")))

    median_with = statistics.median(with_audit)
    median_without = statistics.median(without_audit)
    result = {
        "rows_before_timing": args.rows,
        "rows_at_end": len(everything),
        "delta_commits": commits,
        "seeding_s": round(seeding_s, 1),
        "seed_rows_per_commit": args.seed_batch,
        "append": _ms(appends),
        "save_with_audit": _ms(with_audit),
        "save_without_audit": _ms(without_audit),
        "save_cost_ratio": round(median_with / median_without, 2),
        "read_all_s": round(read_all_s, 3),
        "read_one_actor_s": round(read_one_s, 3),
        "read_one_actor_rows": len(one),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
