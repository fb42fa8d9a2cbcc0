"""Packaging a release for download: :func:`export_release`.

Promises: a release is exported only after it passes :func:`verify_release`; the zip appears
whole under its name or not at all; nothing is written into the workspace's releases folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow.parquet as pq

from dataset import audit
from dataset.png import decode_mask, encode_indexed
from dataset.release.manifest import (
    ClassEntry,
    ReleaseError,
    ReleaseManifest,
    _load_manifest,
    _releases_root,
    release_dir,
)
from dataset.release.verify import verify_release
from dataset.roles import Actor
from dataset.schema import UNLABELLED
from dataset.store import Store

__all__ = ["export_release"]


# ----------------------------------------------------------------------------- export
def export_release(
    store: Store, version: str, fmt: Literal["zip", "png-masks"], out: Path, *, actor: Actor
) -> Path:
    """Package a release for download, after checking it against its manifest.

    ``zip``: the release folder as is (card, manifest, Parquet files) under one top folder.
    ``png-masks``: one palette PNG per tile, ``masks/<split>/<tile_id>.png``, whose pixel
    values are class indices (255 unlabelled) and whose palette shows the class colours,
    with ``legend.json`` and ``legend.csv`` mapping value → class name and colour.

    Args:
        out: A folder to write into (the file is named after the release), or a ``.zip`` path.
        actor: Who exports: the role must allow ``export``; the audit trail gets an
            ``export`` row once the file is written.

    Returns:
        The zip file written (atomically: a partial file is never left under its name).

    Raises:
        dataset.roles.PermissionDenied: The actor's role may not export (nothing is written).
        ReleaseError: Unknown format, no such release, the release fails verification, or
            ``out`` lies inside the workspace's releases folder.
    """
    name = audit.authorise(actor, "export", "export")
    if fmt not in ("zip", "png-masks"):
        raise ReleaseError(f"Unknown export format {fmt!r}; use 'zip' or 'png-masks'.")
    report = verify_release(store, version)
    if not report.ok:
        problems = "; ".join(map(str, report.mismatches))
        raise ReleaseError(
            f"Release {version} does not match its manifest ({problems}); it will not be "
            "exported. Restore it from a backup or make a new release."
        )
    src = release_dir(store, version)
    stem = f"smearlab-release-{version}" + ("-masks" if fmt == "png-masks" else "")
    out = Path(out)
    target = out if out.suffix == ".zip" else out / f"{stem}.zip"
    releases = _releases_root(store).resolve()
    if target.resolve().is_relative_to(releases):
        raise ReleaseError(
            f"Cannot export to {str(out)!r}: it is inside the workspace's releases folder "
            f"({releases}), where releases are kept exactly as written. Give --out a path "
            "outside it, e.g. ~/exports."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        with zipfile.ZipFile(part, "w") as zf:
            if fmt == "zip":
                _zip_release(zf, src, stem)
            else:
                _zip_masks(zf, src, stem, _load_manifest(src))
        with open(part, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    audit.record(
        store,
        actor=name,
        action="export",
        object_id=version,
        detail={"format": fmt, "file": target.name},
    )
    return target


def _zip_release(zf: zipfile.ZipFile, src: Path, stem: str) -> None:
    for p in sorted(src.rglob("*")):
        if p.is_file():
            # Parquet pages here are PNGs already: deflating them again only costs time.
            method = zipfile.ZIP_STORED if p.suffix == ".parquet" else zipfile.ZIP_DEFLATED
            zf.write(p, f"{stem}/{p.relative_to(src).as_posix()}", compress_type=method)


def _legend(manifest: ReleaseManifest) -> list[ClassEntry]:
    return [*manifest.classes, manifest.unlabelled]


def _zip_masks(zf: zipfile.ZipFile, src: Path, stem: str, manifest: ReleaseManifest) -> None:
    legend = _legend(manifest)
    palette = np.zeros((256, 3), dtype=np.uint8)
    for e in legend:
        palette[e.value] = [int(e.color[i : i + 2], 16) for i in (1, 3, 5)]
    zf.writestr(
        f"{stem}/legend.json",
        json.dumps(
            {
                "release": manifest.version,
                "unlabelled_value": UNLABELLED,
                "classes": [e.model_dump() for e in legend],
            },
            indent=2,
        ),
    )
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["value", "name", "color"])
    for e in legend:
        w.writerow([e.value, e.name, e.color])
    zf.writestr(f"{stem}/legend.csv", buf.getvalue())
    for rel in sorted(manifest.files):
        if not rel.endswith(".parquet"):
            continue
        split = Path(rel).name.rsplit("-", 1)[0]
        pf = pq.ParquetFile(src / rel)
        for batch in pf.iter_batches(batch_size=256, columns=["tile_id", "mask"]):
            ids = batch.column("tile_id").to_pylist()
            pngs = batch.column("mask").field("bytes").to_pylist()
            for tid, png in zip(ids, pngs, strict=True):
                data = encode_indexed(decode_mask(png), palette)
                zf.writestr(f"{stem}/masks/{split}/{tid}.png", data)
