"""The audit trail: who did what, when, to which object, in one append-only table.

Promises:
- One row per action that changes the workspace or reveals patient data, in the Delta table
  ``<workspace>/tables/audit``, written through :class:`dataset._delta.DeltaTables` (one durable
  commit per call; a batch of rows of one action is one commit). Columns: :data:`FIELDS`.
- Append only. This module offers :func:`record` / :func:`record_all` and :func:`read`, nothing
  that updates or deletes; nothing else in SmearLab writes the table. Its Delta history holds
  appends only, plus the compactions :mod:`dataset._delta` runs, which rewrite files without
  changing a row.
- The action comes first, its audit row right after, in the same package function: a row is
  never written for an action that failed. When the row cannot be written, :class:`AuditError`
  is raised, saying that the action was done and its row is missing, so a lost row is never
  silent; the caller's command or page shows the error.
- ``action`` is one of :data:`ACTIONS`; anything else is refused (``ValueError`` listing them).
  ``actor`` is the account that acted, ``"system"`` for automatic actions (:data:`SYSTEM`), or
  ``"cli"`` for a command that names no person; ``os_user`` always records who ran the process.
- Many processes may append at once and every row lands: each append is its own Delta commit,
  and Delta commits an append that lost the race for a log version under the next one.
- Pages only read it. A row is written by the package function that did the action, never by
  the UI: :func:`record_all` refuses (:class:`dataset.roles.PermissionDenied`) a call made
  straight from a page script (``pages/*.py`` or ``app.py``), so a page cannot write a row
  for an action it did not take, nor one in another account's name. A page that calls a
  package function (``Store.approve``, ``accounts.sign_in``) records through it, as the
  command line does. ``tests/app/test_pages_read_only_audit.py`` also checks the page
  sources, so a page that would try is caught before it runs.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from dataset._delta import TS, DeltaTables, local_dataset
from dataset.roles import COMMAND_LINE, Actor, PermissionDenied
from dataset.roles import SYSTEM as ROLE_SYSTEM

__all__ = [
    "ACTIONS",
    "CLI",
    "FIELDS",
    "SYSTEM",
    "TABLE",
    "AuditError",
    "AuditRow",
    "Event",
    "authorise",
    "parse_when",
    "read",
    "record",
    "record_all",
    "require_actor",
]

TABLE = "audit"
SYSTEM = ROLE_SYSTEM.name  # automatic actions (retraining, a model becoming current)
CLI = COMMAND_LINE.name  # a command that names no person; os_user says who ran it

# action -> what a row of it means (object_id; before -> after)
ACTIONS: dict[str, str] = {
    "sign_in": "an account signed in (object: the account)",
    "sign_in_failed": "a sign-in was refused (object: the account name tried)",
    "sign_out": "an account signed out (object: the account)",
    "upload": "a smear was stored by an upload or import (object: the smear id)",
    "save": "a mask was saved (object: the tile; base revision -> new revision)",
    "skip": "a tile was marked not worth labelling (object: the tile)",
    "review": "a reviewer judged a tile's revision (object: the tile; state -> state)",
    "pick_mask": "a reviewer picked which of a tile's two labels goes into releases "
    "(object: the tile; after: first or second)",
    "release": "a release was written (object: the version; after: its manifest checksum)",
    "export": "a release was exported for download (object: the version)",
    "train_start": "a training run was queued (object: the job id)",
    "train_cancel": "a cancel of a training run was asked for (object: the job id)",
    "score_start": "the unlabelled tiles' re-scoring was queued because another model became "
    "current (object: the job id; always automatic, actor system)",
    "job_cancel": "a cancel of another background job was asked for (object: the job id)",
    "promote": "a model became current (object: the model; previous -> new current)",
    "rollback": "the current model went back (object: the model now current; previous -> it)",
    "patient_add": "a patient was added to the registry (object: the pseudonym)",
    "patient_change": "a patient's record was changed (object: the pseudonym)",
    "visit_add": "a visit was stored (object: the visit id)",
    "visit_change": "a visit was changed (object: the visit id; revision -> revision)",
    "diagnosis_confirm": "a diagnosis was confirmed or corrected (object: the visit id)",
    "patient_open": "a patient's record was shown (object: the pseudonym)",
    "user_add": "an account was created (object: the account)",
    "user_change": "an account's role, password or state changed (object: the account)",
}

# column -> (Arrow type, meaning): the one description of the table
FIELDS: dict[str, tuple[pa.DataType, str]] = {
    "at": (TS, "when the action was done (UTC)"),
    "actor": (pa.string(), 'the account that acted; "system" automatic, "cli" unnamed command'),
    "os_user": (pa.string(), "the operating-system user of the process that recorded the row"),
    "action": (pa.string(), "one of ACTIONS"),
    "object_id": (pa.string(), "what the action was done to (tile, version, model, job, …)"),
    "before": (pa.string(), "reference to the state before (revision, model id), or null"),
    "after": (pa.string(), "reference to the state after (revision, model id), or null"),
    "detail": (pa.string(), "a short JSON object with what else matters, or null"),
}
SCHEMA = pa.schema([(name, kind) for name, (kind, _) in FIELDS.items()])


class AuditError(RuntimeError):
    """An action was done but its audit row could not be written."""


@dataclass(frozen=True)
class Event:
    """One action to record (what :func:`record_all` takes)."""

    actor: str
    action: str
    object_id: str
    before: str | int | None = None
    after: str | int | None = None
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AuditRow:
    """One stored row of the audit trail (see :data:`FIELDS`)."""

    at: dt.datetime
    actor: str
    os_user: str
    action: str
    object_id: str
    before: str | None
    after: str | None
    detail: str | None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


# One DeltaTables per workspace per process: reopening the table on every append would read
# its log again; a cached one reads only the commits since.
_tables: dict[Path, DeltaTables] = {}
_tables_lock = threading.Lock()


def _root(target: object) -> Path:
    """The workspace folder of a Store (anything with ``root``) or of a path."""
    # A path first: a Path has a ``root`` attribute too (its anchor, "/").
    root = target if isinstance(target, str | os.PathLike) else getattr(target, "root", None)
    if not isinstance(root, str | os.PathLike):
        raise TypeError(f"Give a Store or a workspace path, not {type(target).__name__}.")
    return Path(root)


def _audit_tables(root: Path) -> DeltaTables:
    key = root.resolve()
    with _tables_lock:
        tables = _tables.get(key)
        if tables is None:
            # Its own DeltaTables, not the Store's: the store's table versions (which model
            # cards record) must not change with every audited action.
            tables = DeltaTables(key, {TABLE: SCHEMA})
            _tables[key] = tables
        return tables


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return f"uid {os.getuid()}"


def require_actor(actor: str, action: str) -> str:
    """``actor`` stripped; called before an audited action starts, so that an action whose
    row could not name anyone is refused before it changes anything.

    Raises:
        ValueError: ``action`` is unknown, or ``actor`` is empty.
    """
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}; the actions are: {', '.join(ACTIONS)}.")
    name = str(actor or "").strip()
    if not name:
        raise ValueError(
            f"Say who does this {action.replace('_', ' ')}: every change is recorded with the "
            "name of who made it (sign in, or give your name)."
        )
    return name


def authorise(actor: Actor, right: str, action: str) -> str:
    """``actor``'s name once its role may take ``right`` (a :data:`dataset.roles.ACTIONS`
    entry); called by a package function before the audited ``action`` changes anything, so
    the role is checked where the action is taken and not only by the page or command that
    offers it.

    Raises:
        TypeError: ``actor`` is not a :class:`dataset.roles.Actor` (a bare name carries no
            role, so it cannot be checked).
        PermissionDenied: the role may not take ``right``.
        ValueError: ``action`` is not an audit action.
    """
    if not isinstance(actor, Actor):
        raise TypeError(
            f"{action.replace('_', ' ')} needs the acting account as an Actor (name and role), "
            f"not {type(actor).__name__} {actor!r}."
        )
    actor.require(right)
    return require_actor(actor.name, action)


def _check(event: Event) -> None:
    require_actor(event.actor, event.action)


_HERE = os.path.realpath(__file__)
_REPO = Path(_HERE).parents[1]
# The UI's scripts: they read the trail; only package functions write it.
_UI_DIR, _UI_ENTRY = str(_REPO / "pages") + os.sep, str(_REPO / "app.py")


def _refuse_page_writer() -> None:
    """Raise when the code calling into this module to write is a page script."""
    frame = sys._getframe(1)
    while frame is not None and os.path.realpath(frame.f_code.co_filename) == _HERE:
        frame = frame.f_back
    if frame is None:
        return
    caller = os.path.realpath(frame.f_code.co_filename)
    if caller.startswith(_UI_DIR) or caller == _UI_ENTRY:
        raise PermissionDenied(
            f"{Path(caller).name} tried to write the audit trail itself; nothing was recorded. "
            "A page only reads the audit trail: rows are written by the package function that "
            "takes the action (call that function from the page instead)."
        )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def record_all(target: object, events: Sequence[Event]) -> list[AuditRow]:
    """Append one row per event in one durable commit; returns the rows as stored.

    Args:
        target: A :class:`dataset.store.Store` or a workspace folder.

    Raises:
        ValueError: an unknown action or an empty actor (nothing is written then).
        PermissionDenied: called straight from a page script (nothing is written then).
        AuditError: the rows could not be written; the message names the actions, which
            were done.
    """
    _refuse_page_writer()
    for event in events:
        _check(event)
    if not events:
        return []
    at, user = _now(), _os_user()
    rows = [
        AuditRow(
            at=at,
            actor=event.actor.strip(),
            os_user=user,
            action=event.action,
            object_id=str(event.object_id),
            before=_text(event.before),
            after=_text(event.after),
            detail=None
            if event.detail is None
            else json.dumps(dict(event.detail), sort_keys=True, default=str),
        )
        for event in events
    ]
    root = _root(target)
    try:
        _audit_tables(root).append(TABLE, [asdict(r) for r in rows])
    except Exception as exc:
        done = ", ".join(sorted({f"{e.action} of {e.object_id}" for e in events}))
        raise AuditError(
            f"The {done} by {events[0].actor} was done, but its audit row could not be "
            f"written to {root / 'tables' / TABLE} ({type(exc).__name__}: {exc}). Check that "
            "the workspace is writable and has space, and tell the admin what was done."
        ) from exc
    return rows


def record(
    target: object,
    *,
    actor: str,
    action: str,
    object_id: str,
    before: str | int | None = None,
    after: str | int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditRow:
    """Append one row to the audit trail (see :func:`record_all` for what may be raised)."""
    return record_all(target, [Event(actor, action, object_id, before, after, detail)])[0]


def _utc(when: dt.date | dt.datetime) -> dt.datetime:
    if not isinstance(when, dt.datetime):
        when = dt.datetime.combine(when, dt.time(), dt.UTC)
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def parse_when(text: str, name: str = "--since") -> dt.datetime:
    """A date (``2026-12-01``, midnight UTC) or a time (``2026-12-01T14:30``, UTC unless an
    offset is given) as typed on a command line.

    Raises:
        ValueError: not such a date or time; the message names ``name`` and the formats.
    """
    try:
        return _utc(dt.datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(
            f"{name} {text!r} is not a date; give YYYY-MM-DD (midnight UTC) or "
            "YYYY-MM-DDTHH:MM[:SS] (UTC unless an offset such as +01:00 follows)."
        ) from None


def read(
    target: object,
    *,
    since: dt.date | dt.datetime | None = None,
    until: dt.date | dt.datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
) -> list[AuditRow]:
    """Rows of the audit trail, oldest first, filtered by time, actor and action.

    Args:
        since: Rows at or after this moment (a date: its midnight UTC; naive times are UTC).
        until: Rows before this moment (a date: its midnight UTC, so that day is left out).
        actor: Rows of this account only (exact name).
        action: Rows of this action only (one of :data:`ACTIONS`).

    Raises:
        ValueError: ``action`` is not one of :data:`ACTIONS`.
    """
    if action is not None and action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}; the actions are: {', '.join(ACTIONS)}.")
    root = _root(target)
    if not DeltaTable.is_deltatable(str(root / "tables" / TABLE)):
        return []  # nothing audited yet; reading creates nothing
    flt = None
    for expr in (
        None if since is None else pc.field("at") >= pa.scalar(_utc(since), TS),
        None if until is None else pc.field("at") < pa.scalar(_utc(until), TS),
        None if actor is None else pc.field("actor") == actor,
        None if action is None else pc.field("action") == action,
    ):
        if expr is not None:
            flt = expr if flt is None else flt & expr
    table = local_dataset(_audit_tables(root).table(TABLE)).to_table(filter=flt)
    rows = [AuditRow(**r) for r in table.to_pylist()]
    return sorted(rows, key=lambda r: r.at)
