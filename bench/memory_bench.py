"""Peak memory (RSS) of ingest and mask import for the largest accepted image and hostile inputs.

Each case runs in a fresh child process (``python -m dataset ...``, as a user would), and
the figure is that child's peak resident set: ``ru_maxrss`` of the waited-for child, which
Linux takes from the child's ``VmHWM``. A baseline child (``stats`` on an empty workspace)
shows what the interpreter and libraries cost before any pixel.

Cases:

* ``largest_jpeg``: a 10,000 × 10,000 smear-like JPEG (100 MP, the pixel limit).
* ``largest_png_smear``: the same smear as a PNG (about 145 MB: noise compresses poorly).
* ``largest_png_flat``: a 10,000 × 10,000 PNG of one colour (a few hundred KB that
  decompress to 300 MB).
* ``dev_zero``: ``ingest /dev/zero`` and a pairs CSV naming ``/dev/zero``.
* ``huge_file``: a file one byte over the size limit.
* ``over_limit``: a 10,001 × 10,000 PNG header (over the pixel limit).
* ``strip``: a 1,000,000 × 2 PNG.

Usage: ``python bench/memory_bench.py [--quick]`` (``--quick`` skips the 100 MP cases).
Prints one line per case and writes ``bench/results/memory_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
AS_CAP = 12 * 2**30  # address space per child; the libraries reserve far more than they use


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` (the pixel data is one tiny IDAT)."""
    import struct

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00"))
        + chunk(b"IEND", b"")
    )


def _flat_png(width: int, height: int) -> bytes:
    """A valid one-colour RGB PNG, streamed row by row (never 300 MB in this process)."""
    import struct

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    comp = zlib.compressobj(9)
    row = b"\x00" + bytes([200, 170, 210]) * width
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


def _smear_images(jpeg: Path, png: Path, side: int) -> None:
    """A smear-like JPEG and PNG: the test fixture's synthetic smear, tiled, with noise."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from tests.conftest import synthetic_smear

    block = synthetic_smear(1000, 1000, seed=0).rgb
    reps = -(-side // 1000)
    rgb = np.tile(block, (reps, reps, 1))[:side, :side]
    rng = np.random.default_rng(1)
    rgb = np.clip(rgb.astype(np.int16) + rng.integers(-8, 9, rgb.shape, dtype=np.int16), 0, 255)
    image = Image.fromarray(rgb.astype(np.uint8))
    image.save(jpeg, format="JPEG", quality=90)
    image.save(png, format="PNG", compress_level=1)


def _cap_memory() -> None:
    """A safety net for the shared machine: a runaway child gets MemoryError, not the host."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (AS_CAP, AS_CAP))


def _run(argv: list[str], env: dict[str, str]) -> dict:
    """Run ``python -m dataset ARGV`` in a child; its peak RSS and seconds.

    ru_maxrss counts the forking process's high-water mark too (it survives exec), so this
    parent stays small: the inputs are made by another child (``--make``).
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataset", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_cap_memory,
    )
    _, _, rusage = os.wait4(proc.pid, 0)
    # Read after the wait: the cases print a few lines, far below a pipe's buffer.
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    return {
        "peak_rss_mb": round(rusage.ru_maxrss / 1024, 1),
        "seconds": round(time.perf_counter() - start, 2),
        "stdout_tail": out.strip().splitlines()[-1:] if out.strip() else [],
        "stderr_tail": err.strip().splitlines()[-1:] if err.strip() else [],
    }


def _make_inputs(tmp_path: Path, large: bool) -> None:
    """Write the input files (run in a child of its own, see :func:`_run`)."""
    if large:
        _smear_images(tmp_path / "largest.jpg", tmp_path / "largest.png", 10_000)
        (tmp_path / "flat.png").write_bytes(_flat_png(10_000, 10_000))
    (tmp_path / "over.png").write_bytes(_png_header_only(10_001, 10_000))
    (tmp_path / "strip.png").write_bytes(_png_header_only(1_000_000, 2))
    sys.path.insert(0, str(ROOT))
    from dataset.settings import get_settings

    with open(tmp_path / "huge.bin", "wb") as fh:
        fh.truncate(get_settings().max_file_mb * 2**20 + 1)  # sparse: costs no disk
    (tmp_path / "pairs.csv").write_text("image,mask\n/dev/zero,/dev/zero\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 100-megapixel cases")
    parser.add_argument("--make", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        _make_inputs(args.make, not args.quick)
        return 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMEARLAB_")}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="smearlab-membench-") as tmp:
        tmp_path = Path(tmp)
        make = [sys.executable, __file__, "--make", str(tmp_path)]
        subprocess.run(make + (["--quick"] if args.quick else []), check=True, env=env)
        ws = str(tmp_path / "ws")
        jpeg, flat = tmp_path / "largest.jpg", tmp_path / "flat.png"
        over, strip = tmp_path / "over.png", tmp_path / "strip.png"
        huge, pairs = tmp_path / "huge.bin", tmp_path / "pairs.csv"
        cases: list[tuple[str, list[str]]] = [("baseline_stats", ["--workspace", ws, "stats"])]
        if not args.quick:
            cases += [
                ("largest_jpeg", ["--workspace", ws, "ingest", str(jpeg)]),
                (
                    "largest_png_smear",
                    ["--workspace", ws + "2", "ingest", str(tmp_path / "largest.png")],
                ),
                ("largest_png_flat", ["--workspace", ws, "ingest", str(flat)]),
            ]
        cases += [
            ("dev_zero_ingest", ["--workspace", ws, "ingest", "/dev/zero"]),
            (
                "dev_zero_pairs_csv",
                [
                    "--workspace",
                    ws,
                    "import-masks",
                    "--pairs",
                    str(pairs),
                    "--levels",
                    "0=unlabelled",
                ],
            ),
            ("huge_file", ["--workspace", ws, "ingest", str(huge)]),
            ("over_pixel_limit", ["--workspace", ws, "ingest", str(over)]),
            ("strip_1000000x2", ["--workspace", ws, "ingest", str(strip)]),
        ]
        for name, argv in cases:
            results[name] = _run(argv, env)
            r = results[name]
            said = (r["stderr_tail"] or r["stdout_tail"] or [""])[0][:110]
            rss, secs = r["peak_rss_mb"], r["seconds"]
            print(f"{name:<20} peak RSS {rss:>7.1f} MB  {secs:>6.2f} s  {said}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"max_rss_note": "ru_maxrss of each child (= its VmHWM)", "cases": results}
    (RESULTS / "memory_bench.json").write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
