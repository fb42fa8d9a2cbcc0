"""Magic wand latency per click on real BCCD tiles (and how well a click on a white cell
matches its published mask).

For each of the first ``--images`` BCCD photos, the 256 × 256 tile at the top-left corner
and the one at the centre are clicked at the centre of every RBC and WBC box that lies inside
them. A click is timed twice: the first on a tile (Lab conversion included, as the Label page
does it once per tile) and the rest (flood fill only, Lab cached). Where the photo has a
white-cell mask (bccd-wbc-masks), the IoU of a WBC click's region with the cell's mask inside
the tile is reported too, per tolerance.

Prints the figures and writes bench/results/wand_latency.json.

Run: .venv/bin/python bench/wand_latency.py [--images 40] [--data /work/shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset.wand import DEFAULT_TOLERANCE, Click, flood_region, to_lab  # noqa: E402

TILE = 256


def _boxes(xml: Path) -> list[tuple[str, int, int, int, int]]:
    out = []
    for obj in ET.parse(xml).getroot().iter("object"):
        box = obj.find("bndbox")
        coords = [int(float(box.find(k).text)) - 1 for k in ("xmin", "ymin", "xmax", "ymax")]
        out.append((obj.find("name").text, *coords))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "wand_latency.json"
    )
    args = parser.parse_args()
    bccd = args.data / "bccd"
    masks = args.data / "bccd-wbc-masks"
    photos = sorted((bccd / "JPEGImages").glob("BloodImage_*.jpg"))[: args.images]
    if not photos:
        sys.exit(f"No BCCD photos under {bccd / 'JPEGImages'}; pass --data.")

    first_ms, later_ms = [], []
    iou: dict[float, list[float]] = {t: [] for t in (6.0, DEFAULT_TOLERANCE, 12.0, 14.0, 18.0)}
    for photo in photos:
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        boxes = _boxes(bccd / "Annotations" / f"{photo.stem}.xml")
        mask_file = masks / photo.name.replace("BloodImage_", "BloodImage_Mask_").replace(
            ".jpg", ".png"
        )
        wbc = None
        if mask_file.exists():
            grey = np.asarray(Image.open(mask_file).convert("L"))
            wbc = np.digitize(grey, [78, 205]) > 0
        h, w = rgb.shape[:2]
        for x0, y0 in ((0, 0), ((w - TILE) // 2, (h - TILE) // 2)):
            tile = np.ascontiguousarray(rgb[y0 : y0 + TILE, x0 : x0 + TILE])
            clicks = [
                (name, Click((a + c) // 2 - x0, (b + d) // 2 - y0))
                for name, a, b, c, d in boxes
                if name in ("RBC", "WBC")
                and x0 <= (a + c) // 2 < x0 + TILE
                and y0 <= (b + d) // 2 < y0 + TILE
            ]
            lab = None
            for n, (name, click) in enumerate(clicks):
                start = time.perf_counter()
                if lab is None:
                    lab = to_lab(tile)
                flood_region(lab, click)
                ms = (time.perf_counter() - start) * 1000
                (first_ms if n == 0 else later_ms).append(ms)
                if name == "WBC" and wbc is not None:
                    truth = wbc[y0 : y0 + TILE, x0 : x0 + TILE]
                    for tol in iou:
                        region = flood_region(lab, click, tol)
                        union = (region | truth).sum()
                        iou[tol].append(float((region & truth).sum() / union) if union else 0.0)

    every = first_ms + later_ms
    result = {
        "photos": len(photos),
        "clicks": len(every),
        "tile": TILE,
        "tolerance": DEFAULT_TOLERANCE,
        "median_ms_per_click": round(statistics.median(every), 2),
        "p90_ms_per_click": round(float(np.percentile(every, 90)), 2),
        "median_ms_first_click_on_a_tile": round(statistics.median(first_ms), 2),
        "median_ms_later_clicks": round(statistics.median(later_ms), 2) if later_ms else None,
        "target_median_ms": 200,
        "wbc_clicks_with_a_mask": len(next(iter(iou.values()))),
        "wbc_median_iou_by_tolerance": {
            str(t): round(statistics.median(v), 3) if v else None for t, v in iou.items()
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
            "python": platform.python_version(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
