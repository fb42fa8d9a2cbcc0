"""What a release is: its version, its columns, its manifest, and where it lies.

Promises:

* :class:`SemVer` parses Semantic Versioning 2.0.0 (matched to the end of the string) and
  orders by precedence, build metadata ignored.
* :data:`FIELDS` is the one table of a release's columns: each column's Arrow type,
  huggingface feature and meaning. The Parquet schema, the card and the readers all follow it.
* :class:`ReleaseManifest` is ``manifest.json``, and :class:`ReleaseInfo` a release as the
  pages and the CLI list it. :func:`list_releases` lists every recorded release, one deleted
  by hand included, so its version is never reused.
* Nothing here writes: the writer, the check and the export build on this module, and the
  dataset card reads only from it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import total_ordering
from pathlib import Path
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, Field

from dataset.agreement import AgreementReport
from dataset.schema import UNLABELLED
from dataset.store import Store, StoreError

__all__ = [
    "FIELDS",
    "FORMAT_VERSION",
    "UNLABELLED_COLOR",
    "ClassEntry",
    "ReleaseError",
    "ReleaseField",
    "ReleaseInfo",
    "ReleaseManifest",
    "ReleaseOptions",
    "SemVer",
    "list_releases",
    "release_dir",
]

FORMAT_VERSION = 1  # of the release layout (columns, manifest); bumped on incompatible change
UNLABELLED_COLOR = "#000000"
_MIB = 2**20


class ReleaseError(StoreError):
    """A release request SmearLab refuses, saying what to do instead."""


# ----------------------------------------------------------------------------- versions
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\Z"  # \Z: "1.0.1\n" is no version
)


@total_ordering
@dataclass(frozen=True, eq=False)
class SemVer:
    """A Semantic Versioning 2.0.0 version; compares by precedence (build metadata ignored)."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        """Parse ``MAJOR.MINOR.PATCH[-pre.release][+build]``.

        Raises:
            ReleaseError: ``text`` is not a SemVer version.
        """
        m = _SEMVER.fullmatch(text or "")
        if not m:
            hint = f" (drop the leading 'v': {text[1:]})" if text[:1] in "vV" else ""
            raise ReleaseError(
                f"{text!r} is not a version of the form MAJOR.MINOR.PATCH, e.g. 1.2.0 or "
                f"1.2.0-rc.1 (semver.org){hint}."
            )
        pre = tuple(m.group(4).split(".")) if m.group(4) else ()
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, m.group(5) or "")

    def _key(self) -> tuple:
        # A pre-release sorts before its release; numeric identifiers before alphanumeric
        # ones, numbers by value; a shorter run of equal identifiers first (semver.org §11).
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and self._key() == other._key()

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        pre = f"-{'.'.join(self.pre)}" if self.pre else ""
        build = f"+{self.build}" if self.build else ""
        return f"{self.major}.{self.minor}.{self.patch}{pre}{build}"

    def next_patch(self) -> SemVer:
        """The smallest plain release above this one (1.2.0-rc.1 → 1.2.0, 1.2.0 → 1.2.1)."""
        if self.pre:
            return SemVer(self.major, self.minor, self.patch)
        return SemVer(self.major, self.minor, self.patch + 1)


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class ReleaseOptions:
    """How a release is cut into files; the defaults suit huggingface and DuckDB readers.

    Attributes:
        rows_per_group: Rows per Parquet row group (huggingface uses 100 for image sets).
        max_file_rows: Start a new ``{split}-NNNNN.parquet`` after this many rows.
        max_file_bytes: ... or once a file has grown past this many bytes.
        workers: Threads decoding the masks saved before the store kept class pixel counts
            (Pillow inflates with the GIL released), beside the thread writing the files.
    """

    rows_per_group: int = 100
    max_file_rows: int = 50_000
    max_file_bytes: int = 256 * _MIB
    workers: int = 2


@dataclass(frozen=True)
class ReleaseField:
    """One column of a release: its Arrow type, huggingface feature and meaning."""

    name: str
    arrow: pa.DataType
    feature: dict
    doc: str


_IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_TS = pa.timestamp("us", tz="UTC")


def _value(dtype: str) -> dict:
    return {"dtype": dtype, "_type": "Value"}


FIELDS: tuple[ReleaseField, ...] = (
    ReleaseField("image", _IMAGE_STRUCT, {"_type": "Image"}, "RGB tile, lossless PNG"),
    ReleaseField(
        "mask",
        _IMAGE_STRUCT,
        {"_type": "Image"},
        f"class index per pixel, 8-bit greyscale PNG; {UNLABELLED} = unlabelled",
    ),
    ReleaseField("tile_id", pa.string(), _value("string"), "`<smear_id>_x<x>_y<y>`"),
    ReleaseField("smear_id", pa.string(), _value("string"), "hash of the smear's pixels"),
    ReleaseField(
        "patient_key",
        pa.string(),
        _value("string"),
        "salted hash of the patient pseudonym, valid within this release only; null if none",
    ),
    ReleaseField("x", pa.int32(), _value("int32"), "left edge of the tile in the smear (pixels)"),
    ReleaseField("y", pa.int32(), _value("int32"), "top edge of the tile in the smear (pixels)"),
    ReleaseField("w", pa.int32(), _value("int32"), "tile width (pixels)"),
    ReleaseField("h", pa.int32(), _value("int32"), "tile height (pixels)"),
    ReleaseField(
        "annotator",
        pa.string(),
        _value("string"),
        "who saved the released revision: a pseudonymous account key (keyed hash, the same in "
        "every release of the workspace), or the account name if the lab chose to name people",
    ),
    ReleaseField("revision", pa.int32(), _value("int32"), "revision number of the mask (from 1)"),
    ReleaseField("source", pa.string(), _value("string"), "`manual`, `import` or `prefill`"),
    ReleaseField(
        "labelled_at", _TS, _value("timestamp[us, tz=UTC]"), "when that revision was saved (UTC)"
    ),
)
_SCALAR_COLUMNS = [f.name for f in FIELDS if f.arrow != _IMAGE_STRUCT]


class ClassEntry(BaseModel):
    """A mask value and what it means."""

    value: int
    name: str
    color: str


class ReleaseManifest(BaseModel):
    """``manifest.json``: what a release holds and the checksum of every other file in it."""

    format: Literal["smearlab-release"] = "smearlab-release"
    format_version: int = FORMAT_VERSION
    version: str
    message: str
    created_at: dt.datetime
    seed: int
    license: str
    schema_version: int
    classes: list[ClassEntry]
    unlabelled: ClassEntry
    image_path: str = "<tile_id>.png"
    rows: dict[str, int]
    smears: dict[str, int]
    patients: dict[str, int]
    class_pixel_counts: dict[str, int]
    class_pixel_shares: dict[str, float] = Field(
        description="share of each class among labelled pixels"
    )
    table_versions: dict[str, int]
    approved_only: bool = Field(
        default=False, description="only tiles whose released revision a reviewer approved"
    )
    review_counts: dict[str, int] = Field(
        default_factory=dict, description="released tiles per review state of their revision"
    )
    people: dict[str, int] = Field(
        default_factory=dict,
        description="how many accounts took each role in the released tiles "
        "(annotators: saved a released revision; reviewers: gave it its verdict)",
    )
    named_people: dict[str, dict[str, int]] | None = Field(
        default=None,
        description="only when the lab chose to name people: per role, account → tiles",
    )
    agreement: AgreementReport | None = Field(
        default=None,
        description="inter-annotator agreement of the released double-labelled tiles, the "
        "annotators shown as in the annotator column (None: a release made before it existed)",
    )
    files: dict[str, str] = Field(default_factory=dict, description="path → sha256")

    @property
    def n_tiles(self) -> int:
        return sum(self.rows.values())


class ReleaseInfo(BaseModel):
    """A release as the pages and the CLI list it."""

    version: str
    message: str
    seed: int
    created_at: dt.datetime
    path: Path
    counts: dict[str, int]
    n_tiles: int
    class_pixel_shares: dict[str, float]
    license: str = ""
    manifest_sha256: str = ""


# ----------------------------------------------------------------------------- paths
def _releases_root(store: Store) -> Path:
    return store.root / "releases"


def release_dir(store: Store, version: str) -> Path:
    """Folder of a release (``<workspace>/releases/<version>``); the version is validated."""
    SemVer.parse(version)
    return _releases_root(store) / version


def _on_disk(store: Store) -> dict[str, Path]:
    root = _releases_root(store)
    if not root.is_dir():
        return {}
    out = {}
    for p in root.iterdir():
        if p.is_dir() and not p.name.startswith(".") and _SEMVER.fullmatch(p.name):
            out[p.name] = p
    return out


def _recorded(store: Store) -> dict[str, dict]:
    return {r["version"]: r for r in store.tables.read("releases").to_pylist()}


def _load_manifest(path: Path) -> ReleaseManifest:
    return ReleaseManifest.model_validate_json((path / "manifest.json").read_bytes())


def _info(m: ReleaseManifest, path: Path, manifest_sha: str) -> ReleaseInfo:
    return ReleaseInfo(
        version=m.version,
        message=m.message,
        seed=m.seed,
        created_at=m.created_at,
        path=path,
        counts=dict(m.rows),
        n_tiles=m.n_tiles,
        class_pixel_shares=dict(m.class_pixel_shares),
        license=m.license,
        manifest_sha256=manifest_sha,
    )


# ----------------------------------------------------------------------------- reading
def list_releases(store: Store) -> list[ReleaseInfo]:
    """Recorded releases, oldest version first."""
    out = []
    for version, row in _recorded(store).items():
        path = _releases_root(store) / version
        if (path / "manifest.json").is_file():
            out.append(_info(_load_manifest(path), path, row["manifest_sha256"]))
        else:  # deleted by hand: still listed, so its version is never reused
            out.append(
                ReleaseInfo(
                    version=version,
                    message=row["message"],
                    seed=row["seed"],
                    created_at=row["created_at"],
                    path=path,
                    counts={},
                    n_tiles=row["n_tiles"],
                    class_pixel_shares={},
                    manifest_sha256=row["manifest_sha256"],
                )
            )
    return sorted(out, key=lambda r: SemVer.parse(r.version))
