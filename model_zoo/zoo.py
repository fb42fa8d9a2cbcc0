"""The checkpoint registry: add, list, compare, promote and roll back trained models (files only).

Promises:

* A checkpoint is a folder ``<workspace>/models/<kind>/<model_id>/`` holding ``config.json``,
  ``model.safetensors`` and ``card.json``. It is written in a staging folder and renamed into
  place in one step, so a crash mid-write never leaves a half checkpoint in :meth:`Zoo.list`.
* Each kind has its own current model, kept in ``<workspace>/models/<kind>/current.json``.
  The pointer is replaced atomically (temp file, fsync, ``os.replace``) under an exclusive
  ``fcntl`` lock, so concurrent promoters in different processes never corrupt it or lose an
  update. Every change is appended to the pointer's event log.
* By default the first checkpoint added for a kind becomes current. A caller that has compared
  the new checkpoint with the current one (the training job) decides instead with
  ``make_current``; that switch happens only while the current model is still the one it was
  compared with, so a promotion made meanwhile is never overridden. Otherwise only
  :meth:`Zoo.promote` and :meth:`Zoo.rollback` move the pointer.
* Loading never unpickles: weights are read from safetensors only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from dataset.durable import atomic_write_text, fsync_dir, fsync_path, locked
from model_zoo.card import KINDS, MODEL_ID_RE, ModelCard, flat_metrics, new_model_id

__all__ = [
    "ClassMismatchError",
    "NothingToRollBackError",
    "PointerEvent",
    "UnknownModelError",
    "Zoo",
    "ZooError",
    "default_workspace",
    "metric_columns",
    "summary_rows",
]

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
POINTER_FILE = "current.json"
_STAGING = ".staging"
_LOCK = ".lock"
# Files that would need unpickling to load; a zoo checkpoint never carries them.
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# Metrics shown first in lists, per kind; anything else follows alphabetically.
# Left out of metric tables: a repeat of mean_iou, a count, and the selection's own figures.
_NOT_SHOWN = frozenset({"miou", "n_pixels"})
_NOT_SHOWN_PREFIXES = ("selection/",)
# What a model list shows per kind: (metric, header); "iou/" stands for one column per class.
_SUMMARY = {
    "segmentation": (
        ("mean_iou", "mean IoU"),
        ("iou/", ""),
        ("mean_dice", "mean Dice"),
        ("beats_rules", "beats rules"),
    ),
    "diagnosis": (
        ("roc_auc", "ROC AUC"),
        ("accuracy", "accuracy"),
        ("balanced_accuracy", "balanced accuracy"),
        ("brier", "Brier"),
    ),
}
_KEY_METRICS = {
    "segmentation": ("mean_iou", "iou/", "dice", "mean_dice", "accuracy", "loss"),
    "diagnosis": ("roc_auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity"),
}


class ZooError(Exception):
    """A model-zoo request that cannot be carried out; the message says why and what to do."""


class UnknownModelError(ZooError, KeyError):
    """No checkpoint has the requested model id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ClassMismatchError(ZooError):
    """The model's classes differ from the workspace's class schema."""


class NothingToRollBackError(ZooError):
    """There is no earlier current model to return to."""


class PointerEvent(BaseModel):
    """One change of a kind's current model."""

    at: datetime
    action: Literal["add", "promote", "rollback"]
    model_id: str
    previous: str | None = None


class _Pointer(BaseModel):
    """Contents of ``current.json``: the current model and how it got there."""

    kind: str
    model_id: str | None = None
    # Previously current models, most recent last: what rollback returns to.
    history: list[str] = Field(default_factory=list)
    events: list[PointerEvent] = Field(default_factory=list)


class Zoo:
    """Registry of trained checkpoints inside one workspace.

    Args:
        workspace: The SmearLab workspace folder; models live under ``<workspace>/models``.
    """

    def __init__(self, workspace: Path | str) -> None:
        self.workspace = Path(workspace).expanduser().resolve()
        self.root = self.workspace / "models"

    # ------------------------------------------------------------------ writing

    def staging_dir(self, kind: str) -> Path:
        """Make an empty folder to write a checkpoint into before :meth:`add`.

        It sits on the same file system as the final folder, so :meth:`add` can move it into
        place atomically. Folders under ``.staging`` are never listed as models.
        """
        staging_root = self._kind_dir(kind) / _STAGING
        staging_root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = staging_root / f"{stamp}-{os.getpid()}-{secrets.token_hex(4)}"
        path.mkdir()
        return path

    def add(
        self,
        kind: str,
        staging_dir: Path | str,
        card: ModelCard,
        *,
        make_current: bool | None = None,
        compared_with: str | None = None,
    ) -> ModelCard:
        """Register the checkpoint written in ``staging_dir`` under ``card``.

        The folder must hold ``config.json`` and ``model.safetensors``; ``card.json`` is written
        here. A folder from :meth:`staging_dir` is moved into place; any other folder is copied
        first and left untouched.

        Args:
            kind: ``"segmentation"`` or ``"diagnosis"``.
            staging_dir: Folder holding the checkpoint files.
            card: The model card; an empty ``model_id`` gets a fresh one.
            make_current: None: the model becomes current when the kind has no current model.
                True: it becomes current (the one it replaces can be rolled back to) provided
                the current model is still ``compared_with``. False: it never becomes current.
            compared_with: The model id that was current when the caller decided (None: no
                model was current); only used with ``make_current=True``.

        Returns:
            The card as stored, with its final ``model_id``.

        Raises:
            ZooError: When the kind or card disagree, files are missing, pickled weights are
                present, or the model id is taken.
        """
        kind_dir = self._kind_dir(kind)
        if card.kind != kind:
            raise ZooError(f"card says kind {card.kind!r} but it is being added as {kind!r}")
        staging = Path(staging_dir).resolve()
        _check_checkpoint_files(staging)
        model_id = card.model_id or new_model_id(kind)
        card = card.model_copy(update={"model_id": model_id})
        if self._find(model_id) is not None:
            raise ZooError(
                f"model id {model_id!r} already exists; leave model_id empty for a new one"
            )

        if staging.parent != kind_dir / _STAGING:
            copy = self.staging_dir(kind)
            shutil.copytree(staging, copy, dirs_exist_ok=True)
            staging = copy
        atomic_write_text(staging / CARD_FILE, card.model_dump_json(indent=2))
        for item in staging.iterdir():
            if item.is_file():
                fsync_path(item)
        fsync_dir(staging)

        final = kind_dir / model_id
        with self._locked(kind):
            if final.exists():
                raise ZooError(f"model id {model_id!r} already exists; leave model_id empty")
            os.rename(staging, final)
            fsync_dir(kind_dir)
            pointer = self._read_pointer(kind)
            previous = pointer.model_id
            if previous is not None and not (kind_dir / previous).is_dir():
                previous = None  # a pointer to a deleted model counts as none
            if make_current is None:
                switch = previous is None
            else:
                switch = make_current and previous == compared_with
            if switch:
                if previous is not None:
                    pointer.history.append(previous)
                pointer.events.append(
                    PointerEvent(at=_now(), action="add", model_id=model_id, previous=previous)
                )
                pointer.model_id = model_id
                self._write_pointer(kind, pointer)
        return card

    def promote(
        self,
        model_id: str,
        classes: Sequence[str] | None = None,
        verify: Callable[[Path], None] | None = None,
    ) -> ModelCard:
        """Make ``model_id`` the current model of its kind.

        Args:
            model_id: The checkpoint to promote.
            classes: The workspace's class names in index order. When given, promotion is
                refused unless the model was trained on exactly these classes.
            verify: Called with the checkpoint folder before the pointer changes; a
                ``ValueError`` from it refuses the promotion (``python -m model_zoo
                promote`` passes :func:`training.model.check_checkpoint`, which loads the
                weights and runs one forward pass). The zoo itself never loads a model.

        Returns:
            The promoted model's card.

        Raises:
            UnknownModelError: No such model (the message lists valid ids).
            ClassMismatchError: The classes differ (the message names both lists).
            ZooError: ``verify`` refused the checkpoint.
        """
        card = self.get(model_id)
        if classes is not None and list(classes) != list(card.classes):
            raise ClassMismatchError(
                f"model {model_id} was trained on classes {list(card.classes)} but the workspace "
                f"schema has {list(classes)}; retrain on the current schema or promote a model "
                "that matches it"
            )
        if verify is not None:
            try:
                verify(self.path(model_id))
            except ValueError as exc:
                raise ZooError(f"model {model_id} was not promoted: {exc}") from None
        with self._locked(card.kind):
            pointer = self._read_pointer(card.kind)
            previous = pointer.model_id
            if previous is not None and previous != model_id:
                pointer.history.append(previous)
            pointer.model_id = model_id
            pointer.events.append(
                PointerEvent(at=_now(), action="promote", model_id=model_id, previous=previous)
            )
            self._write_pointer(card.kind, pointer)
        return card

    def rollback(self, kind: str) -> ModelCard:
        """Return ``kind`` to the model that was current before the present one.

        Models that have since been deleted are skipped. The rolled-back-from model stays in the
        zoo and in the event log.

        Returns:
            The card of the model that is now current.

        Raises:
            NothingToRollBackError: No earlier model exists.
        """
        kind_dir = self._kind_dir(kind)
        with self._locked(kind):
            pointer = self._read_pointer(kind)
            while pointer.history:
                candidate = pointer.history.pop()
                if candidate != pointer.model_id and (kind_dir / candidate / CARD_FILE).is_file():
                    previous, pointer.model_id = pointer.model_id, candidate
                    pointer.events.append(
                        PointerEvent(
                            at=_now(), action="rollback", model_id=candidate, previous=previous
                        )
                    )
                    self._write_pointer(kind, pointer)
                    return self.get(candidate)
        raise NothingToRollBackError(
            f"there is no earlier {kind} model to roll back to; promote one by id instead"
        )

    def discard_stale_staging(self, max_age_s: float = 24 * 3600) -> list[Path]:
        """Delete staging folders older than ``max_age_s`` (left by crashed runs).

        Returns:
            The folders removed.
        """
        removed = []
        now = datetime.now(UTC).timestamp()
        for kind in KINDS:
            staging_root = self.root / kind / _STAGING
            if not staging_root.is_dir():
                continue
            for item in staging_root.iterdir():
                if item.is_dir() and now - item.stat().st_mtime > max_age_s:
                    shutil.rmtree(item, ignore_errors=True)
                    removed.append(item)
        return removed

    # ------------------------------------------------------------------ reading

    def list(self, kind: str | None = None) -> list[ModelCard]:
        """Cards of all complete checkpoints, oldest first; all kinds when ``kind`` is None."""
        kinds = KINDS if kind is None else (self._kind_name(kind),)
        cards = []
        for name in kinds:
            kind_dir = self.root / name
            if not kind_dir.is_dir():
                continue
            for item in kind_dir.iterdir():
                if item.name.startswith(".") or not item.is_dir():
                    continue
                card = _read_card(item)
                if card is not None:
                    cards.append(card)
        return sorted(cards, key=lambda c: (c.created_at, c.model_id))

    def get(self, model_id: str) -> ModelCard:
        """The card of ``model_id``.

        Raises:
            UnknownModelError: No such model; the message lists the valid ids.
        """
        folder = self._find(model_id)
        card = _read_card(folder) if folder is not None else None
        if card is None:
            known = [c.model_id for c in self.list()]
            listing = ", ".join(known[-20:]) if known else "none yet; train a model first"
            raise UnknownModelError(f"no model with id {model_id!r}; valid ids: {listing}")
        return card

    def path(self, model_id: str) -> Path:
        """The checkpoint folder of ``model_id`` (raises :class:`UnknownModelError`)."""
        card = self.get(model_id)
        return self.root / card.kind / card.model_id

    def current(self, kind: str) -> ModelCard | None:
        """The current model of ``kind``, or None when there is none yet."""
        pointer = self._read_pointer(kind)
        if pointer.model_id is None:
            return None
        return _read_card(self.root / kind / pointer.model_id)

    def history(self, kind: str) -> list[PointerEvent]:
        """Every change of ``kind``'s current model, oldest first."""
        return list(self._read_pointer(kind).events)

    # ------------------------------------------------------------------ internals

    def _kind_name(self, kind: str) -> str:
        if kind not in KINDS:
            raise ZooError(f"unknown model kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        return kind

    def _kind_dir(self, kind: str) -> Path:
        kind_dir = self.root / self._kind_name(kind)
        kind_dir.mkdir(parents=True, exist_ok=True)
        return kind_dir

    def _find(self, model_id: str) -> Path | None:
        if not MODEL_ID_RE.match(model_id):
            return None
        for kind in KINDS:
            folder = self.root / kind / model_id
            if (folder / CARD_FILE).is_file():
                return folder
        return None

    @contextlib.contextmanager
    def _locked(self, kind: str) -> Iterator[None]:
        with locked(self._kind_dir(kind) / _LOCK):
            yield

    def _read_pointer(self, kind: str) -> _Pointer:
        path = self.root / self._kind_name(kind) / POINTER_FILE
        try:
            return _Pointer.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return _Pointer(kind=kind)
        except ValidationError as exc:
            raise ZooError(
                f"{path} is not a valid current-model pointer ({exc.error_count()} errors); "
                "restore it from a backup or delete it and promote a model again"
            ) from exc

    def _write_pointer(self, kind: str, pointer: _Pointer) -> None:
        atomic_write_text(self.root / kind / POINTER_FILE, pointer.model_dump_json(indent=2))


def default_workspace(path: str | Path | None = None) -> Path:
    """The workspace to use: ``path`` when given, else the one from the settings.

    Settings come from ``dataset.settings.get_settings()`` when that module exists; otherwise
    from the ``SMEARLAB_WORKSPACE`` environment variable, else ``./workspace``.
    """
    if path:
        return Path(path).expanduser().resolve()
    try:
        from dataset.settings import get_settings  # lazy: optional, and reads the environment
    except ImportError:
        return Path(os.environ.get("SMEARLAB_WORKSPACE", "workspace")).expanduser().resolve()
    return Path(get_settings().workspace).expanduser().resolve()


def metric_columns(cards: Sequence[ModelCard]) -> list[str]:
    """Metric names to show side by side for ``cards``, key metrics of their kind first.

    Names are those of :func:`model_zoo.card.flat_metrics`, e.g. ``"mean_iou"``, ``"iou/rbc"``.
    Repeats and bookkeeping (``miou``, ``n_pixels``, the ``selection/...`` figures of the
    run's comparison, told in words by its reason) are left out.
    """
    names: set[str] = set()
    for card in cards:
        names.update(
            name
            for name in flat_metrics(card.metrics)
            if name not in _NOT_SHOWN and not name.startswith(_NOT_SHOWN_PREFIXES)
        )
    preferred: list[str] = []
    for card in cards:
        for key in _KEY_METRICS.get(card.kind, ()):
            if key not in preferred:
                preferred.append(key)

    def rank(name: str) -> tuple[int, str]:
        for position, key in enumerate(preferred):
            if name == key or (key.endswith("/") and name.startswith(key)):
                return position, name
        return len(preferred), name

    return sorted(names, key=rank)


def summary_rows(cards: Sequence[ModelCard], current_ids: set[str]) -> list[dict[str, str]]:
    """One flat row of text per card: what a person choosing between models compares.

    Columns: ``current`` ("*" or ""), ``model``, ``created (UTC)``, the setting that tells runs
    apart (encoder, or the diagnosis target), ``parent`` (the model it was fine-tuned from, "-"
    for a start from scratch), then the kind's summary figures with readable
    headers (``mean IoU``, ``IoU <class>``, ``beats rules``; ``ROC AUC``, ...), "-" where a
    card has none. The full card is ``python -m model_zoo show`` or ``list --json``.
    """
    per_class = sorted(
        {name for card in cards for name in flat_metrics(card.metrics) if name.startswith("iou/")}
    )
    figures: list[tuple[str, str]] = []
    for kind in dict.fromkeys(card.kind for card in cards):
        for key, header in _SUMMARY.get(kind, ()):
            if key == "iou/":
                figures.extend((name, f"IoU {name[4:]}") for name in per_class)
            elif (key, header) not in figures:
                figures.append((key, header))
    kinds = {card.kind for card in cards}
    setting_header = {"segmentation": "encoder", "diagnosis": "target"}.get(
        next(iter(kinds)) if len(kinds) == 1 else "", "encoder / target"
    )
    rows = []
    for card in cards:
        flat = flat_metrics(card.metrics)
        setting = card.settings.get("encoder" if card.kind == "segmentation" else "target")
        row = {
            "current": "*" if card.model_id in current_ids else "",
            "model": card.model_id,
            "created (UTC)": f"{card.created_at:%Y-%m-%d %H:%M}",
            setting_header: str(setting) if setting else "-",
            "parent": card.parent or "-",
        }
        for key, header in figures:
            value = card.metrics.get(key) if key == "beats_rules" else flat.get(key)
            if isinstance(value, bool):
                row[header] = "yes" if value else "no"
            else:
                row[header] = "-" if value is None else f"{value:.3f}"
        rows.append(row)
    return rows


# ---------------------------------------------------------------------- file helpers


def _now() -> datetime:
    return datetime.now(UTC)


def _read_card(folder: Path) -> ModelCard | None:
    path = folder / CARD_FILE
    try:
        return ModelCard.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValidationError, OSError) as exc:
        log.warning("skipping %s: unreadable model card (%s)", folder, exc)
        return None


def _check_checkpoint_files(folder: Path) -> None:
    if not folder.is_dir():
        raise ZooError(f"checkpoint folder {folder} does not exist")
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if not (folder / name).is_file()]
    if missing:
        raise ZooError(
            f"checkpoint folder {folder} lacks {', '.join(missing)}; save the model with "
            "save_pretrained (config.json + model.safetensors) before adding it"
        )
    pickled = sorted(p.name for p in folder.rglob("*") if p.suffix.lower() in _PICKLE_SUFFIXES)
    if pickled:
        raise ZooError(
            f"checkpoint folder {folder} holds pickled files {pickled}; the zoo stores "
            "safetensors only, so remove them"
        )
