"""Writing a release: :func:`create_release`.

Promises:

* :func:`create_release` writes ``<workspace>/releases/<version>/``: Parquet files
  ``data/{split}-NNNNN.parquet`` (``image`` and ``mask`` as ``struct<bytes, path>``, the
  huggingface features in the Parquet schema, so ``datasets.load_dataset("parquet", ...)``
  decodes both as images), a dataset card ``README.md`` and ``manifest.json`` (checksums of
  every other file).
* A release holds the latest revision of every labelled tile (at least one labelled pixel,
  tile not skipped) as it was when the release began: a save made meanwhile is not in it.
* A release appears whole or not at all. It is written into ``releases/.tmp-*``, fsynced,
  then renamed into place; only after the rename is it recorded in the ``releases`` table
  (a release renamed but never recorded is adopted by the next one). A released version is
  never rewritten, and versions only ever increase. A release folder is read-only once
  written (its files and folders, itself included).
* The split is the workspace's (:meth:`dataset.store.Store.splits_of`): no smear, and no
  patient, is ever in two splits, in any release or in training.
* Nothing identifies a person or an upload (annotators and reviewers are named only when the
  lab opts in, below): the patient pseudonym is replaced by a hash
  salted afresh for each release (the salt is not kept, so keys cannot be linked across
  releases), and upload file names never appear; an image's and a mask's stored ``path``
  is ``"<tile_id>.png"``.
* With ``approved_only``, only tiles whose latest revision a reviewer approved are released.
  The card states the review counts of the released tiles, and how many accounts labelled and
  reviewed them; the ``annotator`` column carries a pseudonymous account key
  (:mod:`~dataset.release.pseudonyms`) unless the lab opts in to naming people
  (``name_people``), which also lists the names with their tile counts in the card.
* The card and the manifest report the agreement between the two independent labels of the
  released double-labelled tiles (:mod:`dataset.agreement`), the annotators shown as the
  ``annotator`` column shows them.
* No pixel is decoded or encoded: tile PNGs are copied as the store keeps them (encoded once,
  at ingest) and mask PNGs as they were saved. The card's class pixel counts are the ones
  stored with each revision; only masks saved before the store kept counts are decoded.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import secrets
import shutil
import stat
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataset import audit
from dataset._delta import local_dataset
from dataset.agreement import agreement
from dataset.durable import fsync_dir
from dataset.png import PngError, mask_histogram, read_header
from dataset.release._parquet import _arrow_schema, _MaskSpill, _SplitWriter, _write_bytes
from dataset.release.card import render_card
from dataset.release.manifest import (
    FIELDS,
    UNLABELLED_COLOR,
    ClassEntry,
    ReleaseError,
    ReleaseInfo,
    ReleaseManifest,
    ReleaseOptions,
    SemVer,
    _info,
    _on_disk,
    _recorded,
    _releases_root,
)
from dataset.release.pseudonyms import account_key, pseudonym_secret
from dataset.roles import Actor
from dataset.schema import UNLABELLED, UNLABELLED_NAME
from dataset.store import APPROVED, REVIEW_STATES, SPLITS, Store, TileInfo

__all__ = ["ProgressFn", "create_release"]

ProgressFn = Callable[[int, int], None]


# ----------------------------------------------------------------------------- masks
def _check_mask_header(mask_png: bytes, w: int, h: int) -> None:
    """Refuse a mask that is not a ``w`` x ``h`` 8-bit grey PNG, from its header alone."""
    head = read_header(mask_png)
    if head is None or (head.width, head.height) != (w, h) or head.mode != "L":
        shown = f"{head.width}x{head.height} {head.mode}" if head else "not a PNG"
        raise ReleaseError(
            f"A stored mask is {shown} but its tile needs {w}x{h} L (8-bit class indices); "
            "the workspace is damaged, run the store checks."
        )


def _stored_counts(
    class_px: list[int] | None, n_classes: int, n_labelled_px: int, w: int, h: int
) -> np.ndarray | None:
    """Pixels per mask value from the counts stored with a revision; None if it has none.

    Shape:
        returns (256,) int64.
    """
    if class_px is None or len(class_px) != n_classes:
        return None
    counts = np.zeros(256, dtype=np.int64)
    counts[:n_classes] = class_px
    counts[UNLABELLED] = w * h - n_labelled_px
    return counts


def _mask_counts(mask_png: bytes, w: int, h: int) -> np.ndarray:
    """Pixels per mask value of one released mask, decoded (runs in a worker thread); for
    revisions saved before the store kept class pixel counts.

    Shape:
        returns (256,) int64.
    """
    _check_mask_header(mask_png, w, h)
    try:
        return mask_histogram(mask_png)
    except PngError as exc:
        raise ReleaseError(f"{exc} The workspace is damaged, run the store checks.") from None


def _patient_key(salt: bytes, patient: str | None) -> str | None:
    if not patient:
        return None
    return hmac.new(salt, patient.encode(), hashlib.sha256).hexdigest()[:16]


# ----------------------------------------------------------------------------- create
def create_release(
    store: Store,
    version: str,
    message: str,
    seed: int | None = None,
    on_progress: ProgressFn | None = None,
    *,
    license: str = "other",
    options: ReleaseOptions | None = None,
    approved_only: bool = False,
    name_people: bool = False,
    actor: Actor,
) -> ReleaseInfo:
    """Freeze the latest revision of every labelled tile into ``releases/<version>``.

    Args:
        version: SemVer, higher than every earlier release of the workspace.
        message: What changed since the last release (shown in the card and listings).
        seed: Split seed for groups assigned for the first time (default: the workspace's).
            Groups assigned before keep their split.
        on_progress: Called with ``(tiles_done, tiles_total)`` as tiles are written.
        license: Licence identifier for the card (huggingface ``license:`` value).
        options: File layout; the defaults suit most uses.
        approved_only: Release only the tiles whose latest revision a reviewer approved.
        name_people: Name the annotators and reviewers (the ``annotator`` column and the
            card); by default the column holds a pseudonymous account key and the card
            counts people per role.
        actor: Who releases: the role must allow ``release``; the audit trail gets a
            ``release`` row once it is recorded.

    Returns:
        The new release.

    Raises:
        dataset.roles.PermissionDenied: The actor's role may not release (nothing is written).
        ReleaseError: Bad or non-increasing version, no message, or nothing labelled (or,
            with ``approved_only``, nothing approved) yet.
    """
    name = audit.authorise(actor, "release", "release")
    target = SemVer.parse(version)
    if not message or not message.strip():
        raise ReleaseError("Give a release message saying what changed, e.g. -m 'More WBCs'.")
    opts = options or ReleaseOptions()
    root = _releases_root(store)
    root.mkdir(parents=True, exist_ok=True)
    with store.tables.lock("releases"):
        _clean_temps(root)
        _adopt_orphans(store)
        _check_version(store, target, version)
        seed = store.split_seed() if seed is None else int(seed)
        tmp = root / f".tmp-{version}-{secrets.token_hex(4)}"
        try:
            manifest = _write_release(
                store,
                tmp,
                version,
                message.strip(),
                seed,
                license,
                opts,
                on_progress,
                _People(approved_only, name_people),
            )
            final = root / version
            _make_read_only(tmp)
            os.rename(tmp, final)  # atomic: the release appears whole or not at all
            fsync_dir(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        manifest_sha = hashlib.sha256((final / "manifest.json").read_bytes()).hexdigest()
        _record(store, manifest, manifest_sha)
        audit.record(
            store,
            actor=name,
            action="release",
            object_id=version,
            after=manifest_sha,
            detail={"n_tiles": manifest.n_tiles, "message": manifest.message[:200]},
        )
    return _info(manifest, final, manifest_sha)


def _check_version(store: Store, target: SemVer, version: str) -> None:
    existing = set(_recorded(store)) | set(_on_disk(store))
    if version in existing or (_releases_root(store) / version).exists():
        raise ReleaseError(
            f"Release {version} exists already and is never rewritten; "
            f"release the changes as {_suggest(existing)}."
        )
    same = [v for v in existing if SemVer.parse(v) == target]
    if same:
        raise ReleaseError(
            f"Version {version} has the same precedence as release {same[0]} (build metadata "
            f"after '+' does not count); use {_suggest(existing)}."
        )
    if existing:
        latest = max(existing, key=SemVer.parse)
        if target < SemVer.parse(latest):
            raise ReleaseError(
                f"Version {version} is lower than the latest release {latest}; versions must "
                f"increase. Use {_suggest(existing)} or higher."
            )


def _suggest(existing: set[str]) -> str:
    if not existing:
        return "1.0.0"
    return str(max(SemVer.parse(v) for v in existing).next_patch())


def _write_release(
    store: Store,
    tmp: Path,
    version: str,
    message: str,
    seed: int,
    license: str,
    opts: ReleaseOptions,
    on_progress: ProgressFn | None,
    people: _People,
) -> ReleaseManifest:
    schema = store.schema()
    tiles = {t.tile_id: t for t in store.tiles()}
    labelled = store.labelled_tile_ids()
    # Freeze what is released: the latest revisions as of now, read from the revisions table
    # at a version that holds them all. A save made during the release is not in it.
    latest = store.latest_revisions()
    revisions_table = store.tables.table("revisions")
    revisions_version = revisions_table.version()
    revisions = local_dataset(revisions_table)
    ids = [t for t in labelled if t in tiles and latest[t].n_labelled_px > 0]
    if not ids:
        raise ReleaseError(
            "Nothing to release: no tile has a saved mask with a labelled pixel. "
            "Label some tiles first."
        )
    # The verdicts on exactly the revisions frozen above.
    statuses = store.statuses_of({t: latest[t] for t in ids})
    if people.approved_only:
        ids = [t for t in ids if statuses[t].state == APPROVED]
        if not ids:
            raise ReleaseError(
                f"Nothing to release with approved tiles only: none of the {len(statuses)} "
                "labelled tiles is approved. Review them first, or release without the "
                "approved-only option."
            )
        statuses = {t: statuses[t] for t in ids}
    shown_as = people.names(store, statuses)
    smears = {s.smear_id: s for s in store.smears()}
    by_smear: dict[str, list[TileInfo]] = {}
    for t in sorted((tiles[i] for i in ids), key=lambda t: (t.smear_id, t.y, t.x)):
        by_smear.setdefault(t.smear_id, []).append(t)
    split_of = store.splits_of(set(by_smear), seed)
    table_versions = store.table_versions() | {"revisions": revisions_version}
    salt = secrets.token_bytes(16)
    (tmp / "data").mkdir(parents=True)

    rows = {s: 0 for s in SPLITS}
    n_smears = {s: 0 for s in SPLITS}
    patients: dict[str, set[str]] = {s: set() for s in SPLITS}
    for smear_id, group in by_smear.items():
        split = split_of[smear_id]
        rows[split] += len(group)
        n_smears[split] += 1
        if smears[smear_id].patient:
            patients[split].add(smears[smear_id].patient)

    arrow_schema = _arrow_schema(schema, version)
    writers = {s: _SplitWriter(tmp / "data", s, arrow_schema, opts) for s in SPLITS}
    spill = _MaskSpill(tmp / ".masks.spill")
    patient_keys = {sid: _patient_key(salt, smears[sid].patient) for sid in by_smear}
    counts = np.zeros(256, dtype=np.int64)
    n_classes = len(schema.names)
    done, total = 0, len(ids)
    pending: deque[tuple[str, dict, np.ndarray | cf.Future]] = deque()

    def drain(keep: int) -> None:
        nonlocal done
        while len(pending) > keep:
            split, row, tile_counts = pending.popleft()
            counts[:] += tile_counts.result() if isinstance(tile_counts, cf.Future) else tile_counts
            writers[split].add(row)
            done += 1
            if on_progress is not None and (done % 64 == 0 or done == total):
                on_progress(done, total)

    try:
        spill.fill(revisions, {t: latest[t].revision for t in ids})
        with cf.ThreadPoolExecutor(max_workers=max(1, opts.workers)) as pool:
            for tid, image_png in store.iter_tile_pngs(ids):
                t, rev = tiles[tid], latest[tid]
                mask_png = spill.get(tid)
                row = {
                    "image_png": image_png,
                    "mask_png": mask_png,
                    "tile_id": tid,
                    "smear_id": t.smear_id,
                    "patient_key": patient_keys[t.smear_id],
                    "x": t.x,
                    "y": t.y,
                    "w": t.w,
                    "h": t.h,
                    "annotator": shown_as[rev.annotator],
                    "revision": rev.revision,
                    "source": rev.source,
                    "labelled_at": rev.created_at,
                }
                stored = _stored_counts(spill.class_px[tid], n_classes, rev.n_labelled_px, t.w, t.h)
                if stored is not None:
                    _check_mask_header(mask_png, t.w, t.h)
                    pending.append((split_of[t.smear_id], row, stored))
                else:  # saved before the store kept counts: decode in a worker
                    fut = pool.submit(_mask_counts, mask_png, t.w, t.h)
                    pending.append((split_of[t.smear_id], row, fut))
                # Enough masks in flight to keep the workers busy; the PNGs wait in memory.
                drain(keep=64 * max(1, opts.workers))
            drain(keep=0)
        if done != total:
            raise ReleaseError(
                f"Only {done} of {total} labelled tiles are in the tiles table; "
                "the workspace is damaged."
            )
        files: dict[str, str] = {}
        for w in writers.values():
            w.close()
            files.update(w.files)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    finally:
        spill.close()

    names = list(schema.names)
    labelled_total = int(counts[: len(names)].sum())
    manifest = ReleaseManifest(
        version=version,
        message=message,
        created_at=dt.datetime.now(dt.UTC),
        seed=seed,
        license=license,
        schema_version=schema.version,
        classes=[ClassEntry(value=i, name=n, color=schema.colors[i]) for i, n in enumerate(names)],
        unlabelled=ClassEntry(value=UNLABELLED, name=UNLABELLED_NAME, color=UNLABELLED_COLOR),
        rows=rows,
        smears=n_smears,
        patients={s: len(p) for s, p in patients.items()},
        class_pixel_counts={n: int(counts[i]) for i, n in enumerate(names)}
        | {UNLABELLED_NAME: int(counts[UNLABELLED])},
        class_pixel_shares={
            n: (int(counts[i]) / labelled_total if labelled_total else 0.0)
            for i, n in enumerate(names)
        },
        table_versions=table_versions,
        **people.manifest_fields(statuses),
        agreement=agreement(store, ids, shown_as=people.shown_as(store)),
    )
    files["README.md"] = _write_bytes(
        tmp / "README.md", render_card(manifest, FIELDS, sorted(files)).encode()
    )
    manifest.files = dict(sorted(files.items()))
    _write_bytes(tmp / "manifest.json", manifest.model_dump_json(indent=2).encode())
    fsync_dir(tmp / "data")
    fsync_dir(tmp)
    return manifest


@dataclass(frozen=True)
class _People:
    """Which tiles a release holds by review, and how it shows the people behind them."""

    approved_only: bool
    name_people: bool

    def names(self, store: Store, statuses: dict) -> dict[str, str]:
        """Account name -> what the ``annotator`` column shows for it."""
        accounts = {s.revision.annotator for s in statuses.values()}
        show = self.shown_as(store)
        return {a: show(a) for a in accounts}

    def shown_as(self, store: Store) -> Callable[[str], str]:
        """How the release shows an account: its name, or its pseudonymous key."""
        if self.name_people:
            return lambda account: account
        secret = pseudonym_secret(store.root)
        return lambda account: account_key(secret, account)

    def manifest_fields(self, statuses: dict) -> dict:
        """The manifest's review counts and people, from the released tiles' states."""
        annotators: dict[str, int] = {}
        reviewers: dict[str, int] = {}
        review_counts = dict.fromkeys(REVIEW_STATES, 0)
        for s in statuses.values():
            review_counts[s.state] += 1
            annotators[s.revision.annotator] = annotators.get(s.revision.annotator, 0) + 1
            if s.review is not None:
                reviewers[s.review.reviewer] = reviewers.get(s.review.reviewer, 0) + 1
        named = {"annotators": annotators, "reviewers": reviewers}
        return {
            "approved_only": self.approved_only,
            "review_counts": review_counts,
            "people": {"annotators": len(annotators), "reviewers": len(reviewers)},
            "named_people": (
                {role: dict(sorted(c.items())) for role, c in named.items()}
                if self.name_people
                else None
            ),
        }


def _record(store: Store, manifest: ReleaseManifest, manifest_sha: str) -> None:
    store.tables.append(
        "releases",
        [
            {
                "version": manifest.version,
                "message": manifest.message,
                "seed": manifest.seed,
                "created_at": manifest.created_at,
                "n_tiles": manifest.n_tiles,
                "manifest_sha256": manifest_sha,
            }
        ],
    )


_READ_ONLY_FILE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_READ_ONLY_DIR = _READ_ONLY_FILE | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


def _make_read_only(folder: Path) -> None:
    """Files r--r--r--, folders r-xr-xr-x, the release folder itself included.

    Nobody can then add a file into a release by accident (an export's ``--out``, a
    script). Root ignores mode bits, so the guarantee that holds for everyone is the
    ``--out`` refusal in :func:`export_release` plus :func:`verify_release`.
    """
    for p in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        p.chmod(_READ_ONLY_DIR if p.is_dir() else _READ_ONLY_FILE)
    folder.chmod(_READ_ONLY_DIR)


def _clean_temps(root: Path) -> None:
    """Remove what a release killed mid-write left behind (called under the release lock)."""
    for p in root.glob(".tmp-*"):
        for q in [p, *p.rglob("*")]:  # a temp killed after _make_read_only: writable again
            if q.is_dir():
                with contextlib.suppress(OSError):
                    q.chmod(stat.S_IRWXU)
        shutil.rmtree(p, ignore_errors=True)


def _adopt_orphans(store: Store) -> None:
    """Record releases whose rename happened but whose table row was never written."""
    recorded = _recorded(store)
    for version, path in sorted(_on_disk(store).items(), key=lambda kv: SemVer.parse(kv[0])):
        mpath = path / "manifest.json"
        if version in recorded or not mpath.is_file():
            continue
        raw = mpath.read_bytes()
        manifest = ReleaseManifest.model_validate_json(raw)
        _record(store, manifest, hashlib.sha256(raw).hexdigest())
