"""Releases: frozen, checksummed snapshots of the labelled tiles, in the huggingface layout.

One module per part of a release's life:

* :mod:`~dataset.release.manifest`: what a release is (its SemVer version, the ``FIELDS``
  table of its columns, ``manifest.json``) and where it lies; listing releases.
* :mod:`~dataset.release.writer`: :func:`create_release`, which writes a release whole or
  not at all, read-only once written.
* :mod:`~dataset.release.card`: the dataset card (``README.md``), rendered from the manifest.
* :mod:`~dataset.release.verify`: :func:`verify_release`, every file against its checksum.
* :mod:`~dataset.release.export`: :func:`export_release`, the zip and the PNG-masks export.

Each module states its promises; the names below are the ones the pages, the CLI and the
tests use.
"""

from dataset.release.export import export_release
from dataset.release.manifest import (
    FIELDS,
    ClassEntry,
    ReleaseError,
    ReleaseField,
    ReleaseInfo,
    ReleaseManifest,
    ReleaseOptions,
    SemVer,
    list_releases,
    release_dir,
)
from dataset.release.verify import Mismatch, VerifyReport, verify_release
from dataset.release.writer import create_release

__all__ = [
    "FIELDS",
    "ClassEntry",
    "Mismatch",
    "ReleaseError",
    "ReleaseField",
    "ReleaseInfo",
    "ReleaseManifest",
    "ReleaseOptions",
    "SemVer",
    "VerifyReport",
    "create_release",
    "export_release",
    "list_releases",
    "release_dir",
    "verify_release",
]
