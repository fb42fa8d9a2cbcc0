"""Checking a release against its manifest: :func:`verify_release`.

Promises: every file the manifest lists is hashed and compared, a file added since is
reported, and the manifest itself is compared with the SHA-256 recorded in the ``releases``
table when the release was made. Nothing is changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from dataset.release.manifest import (
    ReleaseError,
    ReleaseManifest,
    _recorded,
    _releases_root,
    release_dir,
)
from dataset.store import Store

__all__ = ["Mismatch", "VerifyReport", "verify_release"]

_MIB = 2**20


class Mismatch(BaseModel):
    """A file of a release that differs from its manifest."""

    path: str
    problem: Literal["missing", "changed", "unexpected", "manifest"]
    expected: str | None = None
    actual: str | None = None

    def __str__(self) -> str:
        what = {
            "missing": "is missing",
            "changed": "has changed since release",
            "unexpected": "was added after release",
            "manifest": "differs from the manifest recorded at release",
        }[self.problem]
        return f"{self.path} {what}"


class VerifyReport(BaseModel):
    """Outcome of :func:`verify_release`."""

    version: str
    ok: bool
    checked: int
    mismatches: list[Mismatch]


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_MIB):
            h.update(chunk)
    return h.hexdigest()


def verify_release(store: Store, version: str) -> VerifyReport:
    """Check every file of a release against its manifest, and the manifest against the table.

    Raises:
        ReleaseError: There is no such release.
    """
    path = release_dir(store, version)
    if not (path / "manifest.json").is_file():
        raise ReleaseError(f"No release {version} in {_releases_root(store)}.")
    mismatches: list[Mismatch] = []
    raw = (path / "manifest.json").read_bytes()
    row = _recorded(store).get(version)
    actual = hashlib.sha256(raw).hexdigest()
    if row is not None and row["manifest_sha256"] != actual:
        mismatches.append(
            Mismatch(
                path="manifest.json",
                problem="manifest",
                expected=row["manifest_sha256"],
                actual=actual,
            )
        )
    manifest = ReleaseManifest.model_validate_json(raw)
    for rel, expected in manifest.files.items():
        p = path / rel
        if not p.is_file():
            mismatches.append(Mismatch(path=rel, problem="missing", expected=expected))
            continue
        got = _sha256_file(p)
        if got != expected:
            mismatches.append(Mismatch(path=rel, problem="changed", expected=expected, actual=got))
    known = {*manifest.files, "manifest.json"}
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).as_posix()
        if p.is_file() and rel not in known:
            mismatches.append(Mismatch(path=rel, problem="unexpected"))
    return VerifyReport(
        version=version, ok=not mismatches, checked=len(manifest.files) + 1, mismatches=mismatches
    )
