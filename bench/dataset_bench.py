"""Benchmark: ingest, mask saves and releases of the workspace store, on the BCCD photos.

Measures, each against the issue's target:

* ingest throughput: one ``ingest_paths`` call over the BCCD folder (364 smears); smears/s
  and tiles/s (target: at least 10 smears/s);
* save latency: p50 / p95 of 500 ``Store.save_mask`` calls into a workspace that already
  holds 10,000 revisions (built by batched appends), timed from a freshly opened Store
  (target: p95 at most 60 ms);
* release throughput: MB/s of release bytes written by ``create_release`` next to a plain
  Python copy of the same bytes (1 MiB reads and writes, fsync of each file and of each
  folder, as the release does), right after it in the same run (target: at least a third
  of the copy's speed). The copy reads files the release has just written, so it reads
  from the page cache, while the release reads its inputs from the store's tables;
* release memory: peak RSS of a child process releasing about 20,000 tiles (3,640 smears:
  the BCCD photos and nine flipped or shifted variants of each, stored by
  ``Store.add_smears`` a hundred at a time, or by ``ingest_files`` with
  ``--ingest-variants``; one mask revision per tile by batched appends) (target: under 1 GB).

Prints the figures and writes ``bench/results/dataset_bench.json``, keeping the figures of
the run before it under ``previous`` for comparison. Takes several minutes.

Usage:
    .venv/bin/python bench/dataset_bench.py [--work /tmp/smearlab-bench] [--variants 10]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from dataset.images import encode_png_lossless, smear_id_for  # noqa: E402
from dataset.ingest import ingest_files, ingest_paths  # noqa: E402
from dataset.png import encode_mask  # noqa: E402
from dataset.release import create_release  # noqa: E402
from dataset.roles import Actor  # noqa: E402
from dataset.schema import UNLABELLED  # noqa: E402
from dataset.store import NewSmear, Store, TileInfo  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "bccd" / "JPEGImages"
RESULTS = ROOT / "bench" / "results" / "dataset_bench.json"
TARGETS = {
    "ingest_smears_per_s_min": 10.0,
    "save_p95_ms_max": 60.0,
    "release_to_copy_ratio_min": 1 / 3,
    "release_peak_rss_mb_max": 1024.0,
}
_MIB = 2**20


# ----------------------------------------------------------------------------- helpers
def synthetic_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A blocky class map with an unlabelled margin, like a partly painted tile.

    Shape:
        (h, w) uint8.
    """
    cells = rng.choice(np.array([0, 0, 0, 1, 1, 2, 3], np.uint8), size=(h // 16 + 1, w // 16 + 1))
    mask = np.kron(cells, np.ones((16, 16), np.uint8))[:h, :w].copy()
    mask[: int(rng.integers(0, h // 4))] = UNLABELLED
    return mask


def bulk_revisions(
    store: Store, tiles: list[TileInfo], n_rows: int, seed: int, batch: int = 1000
) -> None:
    """Append ``n_rows`` mask revisions round-robin over ``tiles``, ``batch`` per commit."""
    rng = np.random.default_rng(seed)
    now = dt.datetime.now(dt.UTC)
    n_classes = len(store.schema().names)
    start = {t.tile_id: (r.revision if (r := store.latest(t.tile_id)) else 0) for t in tiles}
    rows = []
    for i in range(n_rows):
        t = tiles[i % len(tiles)]
        rev = start[t.tile_id] + i // len(tiles) + 1
        mask = synthetic_mask(rng, t.h, t.w)
        values = np.bincount(mask.ravel(), minlength=256)
        rows.append(
            {
                "tile_id": t.tile_id,
                "revision": rev,
                "annotator": "bench",
                "created_at": now,
                "source": "import",
                "base_revision": rev - 1 or None,
                "seconds": None,
                "model_id": None,
                "n_labelled_px": int(values[:n_classes].sum()),
                "mask_png": encode_mask(mask),
                "class_px": values[:n_classes].tolist(),  # as Store.save_mask stores them
            }
        )
        if len(rows) == batch:
            store.tables.append("revisions", rows)
            rows = []
    if rows:
        store.tables.append("revisions", rows)


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def plain_copy(src: Path, dst: Path) -> float:
    """Copy every file under ``src`` in 1 MiB chunks, fsync each file and then each folder
    (as a release does with its own); returns seconds."""
    started = time.perf_counter()
    folders = {dst}
    for p in sorted(src.rglob("*")):
        if not p.is_file():
            continue
        out = dst / p.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        folders.add(out.parent)
        with open(p, "rb") as fin, open(out, "wb") as fout:
            while chunk := fin.read(_MIB):
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
    for folder in sorted(folders, reverse=True):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return time.perf_counter() - started


def variant(rgb: np.ndarray, k: int) -> np.ndarray:
    """The k-th distinct variant of a photo: flips, then shifts by a few pixels."""
    out = rgb
    if k % 4 in (1, 3):
        out = out[:, ::-1]
    if k % 4 in (2, 3):
        out = out[::-1]
    if k >= 4:
        out = np.roll(out, shift=7 * (k - 3), axis=1)
    return np.ascontiguousarray(out)


def _bmp(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="BMP")  # cheap to write and to decode
    return buf.getvalue()


# ----------------------------------------------------------------------------- stages
def bench_ingest(ws: Path, data: Path) -> dict:
    store = Store.open(ws)
    store.init()
    started = time.perf_counter()
    results = ingest_paths(store, [data], actor="bench")
    wall = time.perf_counter() - started
    added = [r for r in results if r.status == "added"]
    tiles = sum(r.tiles for r in added)
    return {
        "files": len(results),
        "smears_added": len(added),
        "tiles": tiles,
        "seconds": round(wall, 2),
        "smears_per_s": round(len(added) / wall, 2),
        "tiles_per_s": round(tiles / wall, 1),
    }


def bench_saves(ws: Path, revisions: int, saves: int) -> dict:
    store = Store.open(ws)
    tiles = store.tiles()
    started = time.perf_counter()
    bulk_revisions(store, tiles, revisions, seed=1)
    build = time.perf_counter() - started
    store = Store.open(ws)  # fresh: no cached latest revisions
    held = store.tables.read("revisions", ["tile_id"]).num_rows
    rng = np.random.default_rng(2)
    picks = [tiles[i] for i in rng.integers(0, len(tiles), saves)]
    masks = [synthetic_mask(rng, t.h, t.w) for t in picks]
    times = []
    for t, m in zip(picks, masks, strict=True):
        t0 = time.perf_counter()
        base = store.latest(t.tile_id)
        store.save_mask(t.tile_id, m, annotator="bench", base_revision=base and base.revision)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return {
        "revisions_before": held,
        "build_seconds": round(build, 1),
        "saves": saves,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
        "first_ms": round(float(ms[0]), 1),
    }


def bench_release(ws: Path, copy_to: Path) -> dict:
    store = Store.open(ws)
    started = time.perf_counter()
    info = create_release(store, "1.0.0", "benchmark", actor=Actor("bench", "admin"))
    wall = time.perf_counter() - started
    size = tree_bytes(info.path)
    copy_s = plain_copy(info.path, copy_to)
    shutil.rmtree(copy_to)
    release_mbs, copy_mbs = size / wall / 1e6, size / copy_s / 1e6
    # Diagnosis: only streaming the released tiles' PNGs out of the tiles table, which any
    # release must do, against the copy that reads files the release has just written.
    started = time.perf_counter()
    png_bytes = sum(len(png) for _, png in store.iter_tile_pngs(store.labelled_tile_ids()))
    read_s = time.perf_counter() - started
    return {
        "tiles": info.n_tiles,
        "release_mb": round(size / 1e6, 1),
        "release_seconds": round(wall, 2),
        "release_mb_per_s": round(release_mbs, 1),
        "copy_seconds": round(copy_s, 2),
        "copy_mb_per_s": round(copy_mbs, 1),
        "ratio": round(release_mbs / copy_mbs, 3),
        "tiles_per_s": round(info.n_tiles / wall, 1),
        "tile_png_read_seconds": round(read_s, 2),
        "tile_png_read_mb_per_s": round(png_bytes / read_s / 1e6, 1),
    }


def bulk_smears(store: Store, items: list[tuple[str, np.ndarray]], pool: cf.Executor) -> int:
    """Store smears with ``Store.add_smears`` (one tiles and one smears commit per call).

    Returns the number of smears added.
    """
    pngs = list(pool.map(encode_png_lossless, (rgb for _, rgb in items)))
    smears = [
        NewSmear(smear_id_for(rgb), png, rgb.shape[1], rgb.shape[0], label, rgb=rgb)
        for (label, rgb), png in zip(items, pngs, strict=True)
    ]
    return sum(added for added, _ in store.add_smears(smears))


def bench_release_memory(
    ws: Path, data: Path, variants: int, copy_to: Path, use_ingest: bool
) -> dict:
    store = Store.open(ws)
    store.init()
    photos = sorted(data.glob("*.jpg"))
    started = time.perf_counter()
    added = 0
    with cf.ThreadPoolExecutor(max_workers=2) as pool:
        for k in range(variants):
            # A hundred uploads at a time: never all the variants in memory.
            for i in range(0, len(photos), 100):
                rgbs = [np.asarray(Image.open(p).convert("RGB")) for p in photos[i : i + 100]]
                batch = [(f"variant-{k}-{j}", variant(rgb, k)) for j, rgb in enumerate(rgbs)]
                if use_ingest:
                    uploads = [(f"{name}.bmp", _bmp(rgb)) for name, rgb in batch]
                    added += sum(
                        r.status == "added" for r in ingest_files(store, uploads, actor="bench")
                    )
                else:
                    added += bulk_smears(store, batch, pool)
    build_s = time.perf_counter() - started
    tiles = store.tiles()
    started = time.perf_counter()
    bulk_revisions(store, tiles, len(tiles), seed=3, batch=2000)
    bulk_s = time.perf_counter() - started
    child = subprocess.run(
        [sys.executable, __file__, "--release-child", str(ws)],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(child.stdout.strip().splitlines()[-1])
    size = tree_bytes(Path(out["path"]))
    copy_s = plain_copy(Path(out["path"]), copy_to)
    shutil.rmtree(copy_to)
    return {
        "smears": added,
        "smears_via": "ingest_files" if use_ingest else "Store.add_smears",
        "tiles": out["tiles"],
        "build_seconds": round(build_s, 1),
        "bulk_revision_seconds": round(bulk_s, 1),
        "peak_rss_mb": out["peak_rss_mb"],
        "rss_before_release_mb": out["rss_before_mb"],
        "release_mb": round(size / 1e6, 1),
        "release_seconds": out["seconds"],
        "release_mb_per_s": round(size / out["seconds"] / 1e6, 1),
        "copy_mb_per_s": round(size / copy_s / 1e6, 1),
        "ratio": round(copy_s / out["seconds"], 3),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM).

    ``ru_maxrss`` is not used: after fork and exec it starts from the parent's peak.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def release_child(ws: Path) -> None:
    """Run in a child process: one release, then report its peak RSS."""
    store = Store.open(ws)
    store.latest_revisions()
    before = peak_rss_mb()
    started = time.perf_counter()
    info = create_release(store, "1.0.0", "memory benchmark", actor=Actor("bench", "admin"))
    wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "path": str(info.path),
                "tiles": info.n_tiles,
                "seconds": round(wall, 2),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "rss_before_mb": round(before, 1),
            }
        )
    )


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BCCD JPEGImages folder")
    parser.add_argument("--work", type=Path, default=Path("/tmp/smearlab-bench"))
    parser.add_argument("--revisions", type=int, default=10_000)
    parser.add_argument("--saves", type=int, default=500)
    parser.add_argument("--variants", type=int, default=10, help="copies of BCCD for memory")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--ingest-variants",
        action="store_true",
        help="store the memory run's variants with ingest_files (slow) instead of batched appends",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--release-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.release_child:
        release_child(args.release_child)
        return 0
    if not args.data.is_dir():
        print(f"No BCCD photos at {args.data}; pass --data.", file=sys.stderr)
        return 2
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    load = os.getloadavg()
    figures: dict = {}

    figures["ingest"] = bench_ingest(args.work / "bccd", args.data)
    print("ingest", figures["ingest"], flush=True)
    figures["save"] = bench_saves(args.work / "bccd", args.revisions, args.saves)
    print("save", figures["save"], flush=True)
    figures["release"] = bench_release(args.work / "bccd", args.work / "copy")
    print("release", figures["release"], flush=True)
    if not args.skip_memory:
        figures["release_memory"] = bench_release_memory(
            args.work / "mem", args.data, args.variants, args.work / "copy", args.ingest_variants
        )
        print("release_memory", figures["release_memory"], flush=True)

    checks = {
        "ingest": figures["ingest"]["smears_per_s"] >= TARGETS["ingest_smears_per_s_min"],
        "save_p95": figures["save"]["p95_ms"] <= TARGETS["save_p95_ms_max"],
        "release_throughput": figures["release"]["ratio"] >= TARGETS["release_to_copy_ratio_min"],
    }
    if "release_memory" in figures:
        checks["release_memory"] = (
            figures["release_memory"]["peak_rss_mb"] < TARGETS["release_peak_rss_mb_max"]
        )
    report = {
        "figures": figures,
        "targets": TARGETS,
        "met": checks,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load],
            "platform": platform.platform(),
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if args.out.is_file():
        before = json.loads(args.out.read_text())
        report["previous"] = {
            k: before[k] for k in ("figures", "met", "machine", "when") if k in before
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, ok in checks.items():
        print(f"{name:20s} {'met' if ok else 'MISSED'}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
