"""The lab's local accounts: who may sign in, with which role, and the signed sessions.

Promises:
- Accounts live in the workspace as an append-only Delta table (``tables/accounts``): one row
  per change (add, role, password, disable, enable, sign-out) carrying the account's whole
  state; the latest row of a name wins. Every write is one atomic, fsynced Delta commit made
  under the table's cross-process lock, so a crash mid-write leaves the previous state.
- Passwords are hashed with argon2id (argon2-cffi's :class:`~argon2.PasswordHasher`), never
  stored or logged as given, and never read from a command line argument (see ``cli.py``).
- :func:`verify_sign_in` refuses an account after :attr:`SignInPolicy.account_failures`
  failed sign-ins within :attr:`SignInPolicy.window`, and an address after
  :attr:`SignInPolicy.address_failures`, saying when to retry. Failures are rows of the
  ``account_events`` table, written before the answer is given and read under the same lock,
  so neither a second browser session nor a restart resets the count.
- A session is a token signed (HMAC, itsdangerous) with the workspace's secret
  (``secrets/session.key``, mode 0600, created on first use). It names the account, when it
  was issued and when it expires (the idle timeout). :func:`check_session` accepts it only
  while unexpired, issued after the account's last sign-out or password reset, and while the
  account exists and is enabled; the role always comes from the table, never the token.
- The reserved accounts ``system`` (:data:`dataset.roles.SYSTEM`, automatic actions) and
  ``cli`` (:data:`dataset.roles.COMMAND_LINE`, a command that names no person) cannot be
  created, signed in to or named by a person.
- Reading never creates anything: a workspace without the table has no accounts.

Every time is taken from :func:`clock` unless a ``now`` is given, so tests move time without
sleeping.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads

from dataset import audit
from dataset.roles import COMMAND_LINE, ROLES, SYSTEM, Actor

__all__ = [
    "ACCOUNTS_TABLE",
    "EVENTS_TABLE",
    "MIN_PASSWORD_LENGTH",
    "SESSION_COOKIE",
    "Account",
    "AccountError",
    "Session",
    "SessionInvalid",
    "SignInPolicy",
    "SignInRefused",
    "actor_for",
    "add_account",
    "add_first_admin",
    "check_session",
    "clock",
    "cookie_script",
    "disable",
    "enable",
    "has_accounts",
    "issue_session",
    "list_accounts",
    "reset_password",
    "set_role",
    "sign_out",
    "verify_sign_in",
]

ACCOUNTS_TABLE = "accounts"
EVENTS_TABLE = "account_events"
SESSION_COOKIE = "smearlab_session"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # bounds the hashing work one request can ask for
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
_SALT = "smearlab-session"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


clock: Callable[[], dt.datetime] = _utcnow
"""The one clock of this module (UTC); tests may replace it to move time."""


def _now(now: dt.datetime | None) -> dt.datetime:
    return clock() if now is None else now


class AccountError(ValueError):
    """An account change or look-up that cannot be done; the message says what to do."""


class SignInRefused(AccountError):
    """A sign-in that did not succeed. ``retry_at`` is set when the account or address is
    locked out (the message says until when)."""

    def __init__(self, message: str, retry_at: dt.datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class SessionInvalid(AccountError):
    """A session token that no longer signs anyone in (expired, signed out, forged, or an
    account since disabled); the message says which."""


@dataclass(frozen=True)
class SignInPolicy:
    """How many failed sign-ins are tolerated, and for how long they count."""

    account_failures: int = 5
    address_failures: int = 20
    window: dt.timedelta = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class Account:
    """One account as it is now. ``sessions_after``: sessions issued before it are refused."""

    name: str
    role: str
    disabled: bool
    created_at: dt.datetime
    changed_at: dt.datetime
    sessions_after: dt.datetime
    password_hash: str = ""

    def to_json(self) -> dict[str, Any]:
        """The account for ``users list --json`` and the Users page (never the hash)."""
        return {
            "name": self.name,
            "role": self.role,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
            "changed_at": self.changed_at.isoformat(),
        }


def _ts() -> pa.DataType:
    from dataset._delta import TS

    return TS


def _schemas() -> dict[str, pa.Schema]:
    return {
        ACCOUNTS_TABLE: pa.schema(
            [
                ("name", pa.string()),
                ("role", pa.string()),
                ("password_hash", pa.string()),
                ("disabled", pa.bool_()),
                ("sessions_after", _ts()),
                ("change", pa.string()),  # add, role, password, disable, enable, sign_out
                ("changed_by", pa.string()),
                ("created_at", _ts()),
            ]
        ),
        EVENTS_TABLE: pa.schema(
            [
                ("event", pa.string()),  # sign_in, sign_in_failed, sign_in_locked, sign_out, ...
                ("account", pa.string()),
                ("address", pa.string()),
                ("by", pa.string()),
                ("detail", pa.string()),
                ("created_at", _ts()),
            ]
        ),
    }


def _root(store_or_workspace: Any) -> Path:
    """The workspace folder of a :class:`~dataset.store.Store` or a path."""
    if isinstance(store_or_workspace, str | os.PathLike):
        root = store_or_workspace
    else:  # a Store (not Path.root, which is "/")
        root = store_or_workspace.root
    return Path(root).expanduser().resolve()


def _tables(root: Path):
    from dataset._delta import DeltaTables

    if root.exists() and not root.is_dir():
        raise AccountError(f"Workspace {root} is a file; give a folder path.")
    return DeltaTables(root, schemas=_schemas())


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, RFC 9106 low-memory parameters


# ---------------------------------------------------------------------------- reading
# Table path -> (newest log entry name, accounts): pages check the session on every run, so
# a read that finds no new commit costs a directory listing, not a Delta scan.
_CACHE: dict[str, tuple[str, dict[str, Account]]] = {}
_CACHE_LOCK = threading.Lock()


def _newest_log(path: Path) -> str | None:
    try:
        return max(f for f in os.listdir(path / "_delta_log") if f.endswith(".json"))
    except (OSError, ValueError):
        return None


def _accounts(root: Path) -> dict[str, Account]:
    """Every account's latest state, by name (empty without the table)."""
    path = root / "tables" / ACCOUNTS_TABLE
    newest = _newest_log(path)
    if newest is None:
        return {}
    key = str(path)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0] == newest:
        return dict(hit[1])
    from deltalake import DeltaTable

    from dataset._delta import local_dataset

    rows = local_dataset(DeltaTable(str(path))).to_table().to_pylist()
    out: dict[str, Account] = {}
    for row in sorted(rows, key=lambda r: r["created_at"]):
        first = out.get(row["name"])
        out[row["name"]] = Account(
            name=row["name"],
            role=row["role"],
            disabled=bool(row["disabled"]),
            created_at=first.created_at if first else row["created_at"],
            changed_at=row["created_at"],
            sessions_after=row["sessions_after"],
            password_hash=row["password_hash"],
        )
    with _CACHE_LOCK:
        _CACHE[key] = (newest, out)
    return dict(out)


def has_accounts(store_or_workspace: Any) -> bool:
    """True when the workspace has at least one account (reads only)."""
    return bool(_accounts(_root(store_or_workspace)))


def list_accounts(store_or_workspace: Any) -> list[Account]:
    """Every account, by name, without password hashes."""
    return [
        Account(**{**a.__dict__, "password_hash": ""})
        for _, a in sorted(_accounts(_root(store_or_workspace)).items())
    ]


def _get(root: Path, name: str) -> Account:
    account = _accounts(root).get(name)
    if account is None:
        known = ", ".join(sorted(_accounts(root))) or "none yet"
        raise AccountError(
            f"There is no account {name!r} (accounts: {known}). An admin adds one with "
            "`python -m dataset users add NAME --role ROLE` or on the Users page."
        )
    return account


def actor_for(store_or_workspace: Any, name: str) -> Actor:
    """The :class:`Actor` of an existing, enabled person's account.

    Raises:
        AccountError: no such account, a disabled one, or a reserved name (``system``, ``cli``).
    """
    name = (name or "").strip()
    if not name:
        raise AccountError("Name the account acting: an account name is required.")
    if name in _RESERVED:
        raise AccountError(f"{name!r} is {_RESERVED[name]}; name a person's account.")
    account = _get(_root(store_or_workspace), name)
    if account.disabled:
        raise AccountError(f"The account {name!r} is disabled; an admin can enable it again.")
    return Actor(account.name, account.role)


# ---------------------------------------------------------------------------- changing
# Names the audit trail gives to actions no person's account took.
_RESERVED = {
    SYSTEM.name: "reserved for automatic actions",
    COMMAND_LINE.name: "reserved for commands that name no person",
}


def _check_name(name: str) -> str:
    if name in _RESERVED:
        raise AccountError(f"{name!r} is {_RESERVED[name]}; choose another name.")
    if not _NAME.match(name):
        raise AccountError(
            f"{name!r} is not a valid account name: use 1 to 32 lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter or digit (e.g. 'ana' or 'j.smith')."
        )
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}; the roles are {', '.join(ROLES)}.")
    return role


def _check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"The password is too short: use at least {MIN_PASSWORD_LENGTH} characters."
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"The password is too long: use at most {MAX_PASSWORD_LENGTH}.")
    return password


def _write(root: Path, account: Account, change: str, by: str, now: dt.datetime) -> Account:
    """Append the account's new state (call under the accounts lock)."""
    before = _accounts(root).get(account.name)
    if before is not None and now <= before.changed_at:
        # The latest row wins by time: keep this change after the one it follows, whatever
        # the clock says (two changes in one microsecond, or a clock set back).
        now = before.changed_at + dt.timedelta(microseconds=1)
    tables = _tables(root)
    tables.append(
        ACCOUNTS_TABLE,
        [
            {
                "name": account.name,
                "role": account.role,
                "password_hash": account.password_hash,
                "disabled": account.disabled,
                "sessions_after": account.sessions_after,
                "change": change,
                "changed_by": by,
                "created_at": now,
            }
        ],
    )
    return Account(**{**account.__dict__, "changed_at": now, "password_hash": ""})


def _by(by: str) -> str:
    """Who made a change: the account given, else ``cli`` as everywhere in the audit trail
    (whose ``os_user`` column names the OS user who ran the command)."""
    return by or audit.CLI


def add_account(
    store_or_workspace: Any,
    name: str,
    role: str,
    password: str,
    *,
    by: str = "",
    now: dt.datetime | None = None,
    only_if_none: bool = False,
) -> Account:
    """Create an account.

    Args:
        only_if_none: Refuse unless the workspace has no account yet (the first admin).

    Raises:
        AccountError: a bad or taken name, an unknown role, a password too short.
    """
    name = _check_name((name or "").strip())
    role = _check_role(role)
    digest = _hasher().hash(_check_password(password))
    root = _root(store_or_workspace)
    tables = _tables(root)
    tables.register(ACCOUNTS_TABLE, _schemas()[ACCOUNTS_TABLE])
    at = _now(now)
    with tables.lock(ACCOUNTS_TABLE):
        existing = _accounts(root)
        if only_if_none and existing:
            raise AccountError(
                "The workspace already has an account: sign in, or ask an admin for one."
            )
        if name in existing:
            raise AccountError(f"The account {name!r} exists already; choose another name.")
        account = Account(name, role, False, at, at, at, digest)
        out = _write(root, account, "add", _by(by), at)
    _record_event(root, "user_added", name, by=_by(by), detail=f"role={role}", now=at)
    return out


def add_first_admin(
    store_or_workspace: Any, name: str, password: str, *, now: dt.datetime | None = None
) -> Account:
    """The first account of a workspace, an admin; refused once any account exists."""
    return add_account(
        store_or_workspace, name, "admin", password, by=name, now=now, only_if_none=True
    )


def _change(
    store_or_workspace: Any,
    name: str,
    change: str,
    by: str,
    now: dt.datetime | None,
    update: Callable[[Account, dt.datetime], Account],
    detail: str = "",
) -> Account:
    root = _root(store_or_workspace)
    tables = _tables(root)
    at = _now(now)
    with tables.lock(ACCOUNTS_TABLE):
        account = _get(root, name)
        out = _write(root, update(account, at), change, _by(by), at)
    _record_event(root, f"user_{change}", name, by=_by(by), detail=detail, now=at)
    return out


def _admins_left(root: Path, without: str) -> int:
    return sum(
        a.role == "admin" and not a.disabled and a.name != without for a in _accounts(root).values()
    )


def set_role(store_or_workspace: Any, name: str, role: str, *, by: str = "", now=None) -> Account:
    """Give an account another role; the last enabled admin keeps theirs."""
    role = _check_role(role)
    root = _root(store_or_workspace)

    def update(a: Account, at: dt.datetime) -> Account:
        if (
            a.role == "admin"
            and role != "admin"
            and not a.disabled
            and not _admins_left(root, a.name)
        ):
            raise AccountError(
                f"{a.name!r} is the last enabled admin; make another account admin first."
            )
        return Account(**{**a.__dict__, "role": role})

    return _change(root, name, "role", by, now, update, detail=f"role={role}")


def reset_password(
    store_or_workspace: Any, name: str, password: str, *, by: str = "", now=None
) -> Account:
    """Set a new password; every session of the account signed in before is ended."""
    digest = _hasher().hash(_check_password(password))

    def update(a: Account, at: dt.datetime) -> Account:
        return Account(**{**a.__dict__, "password_hash": digest, "sessions_after": at})

    return _change(store_or_workspace, name, "password", by, now, update)


def disable(store_or_workspace: Any, name: str, *, by: str = "", now=None) -> Account:
    """Stop an account signing in (its sessions end on their next page run); kept for the
    record, never deleted. The last enabled admin cannot be disabled."""
    root = _root(store_or_workspace)

    def update(a: Account, at: dt.datetime) -> Account:
        if a.role == "admin" and not a.disabled and not _admins_left(root, a.name):
            raise AccountError(
                f"{a.name!r} is the last enabled admin; make another account admin first."
            )
        return Account(**{**a.__dict__, "disabled": True, "sessions_after": at})

    return _change(root, name, "disable", by, now, update)


def enable(store_or_workspace: Any, name: str, *, by: str = "", now=None) -> Account:
    """Let a disabled account sign in again."""

    def update(a: Account, at: dt.datetime) -> Account:
        return Account(**{**a.__dict__, "disabled": False})

    return _change(store_or_workspace, name, "enable", by, now, update)


# ---------------------------------------------------------------------------- events
def _record_event(
    root: Path,
    event: str,
    account: str,
    *,
    by: str = "",
    address: str = "",
    detail: str = "",
    now: dt.datetime | None = None,
) -> None:
    """Durably record one sign-in, sign-out, failure or user change, and its audit row.

    The sign-in limits read these rows back (:func:`verify_sign_in`); the audit trail holds
    the same event for people (who acted: the account signing in or out, or the admin who
    changed an account).
    """
    tables = _tables(root)
    tables.append(
        EVENTS_TABLE,
        [
            {
                "event": event,
                "account": account,
                "address": address,
                "by": by,
                "detail": detail,
                "created_at": _now(now),
            }
        ],
    )
    action = _AUDIT_ACTIONS.get(event, "user_change" if event.startswith("user_") else None)
    if action is None:
        raise ValueError(f"No audit action for the account event {event!r}.")
    audit.record(
        root,
        actor=(by if action.startswith("user_") else account) or account,
        action=action,
        object_id=account,
        detail={
            "event": event,
            **({"address": address} if address else {}),
            **({"detail": detail} if detail else {}),
        },
    )


# Account events as the audit trail names them (every other ``user_*`` is a user_change).
_AUDIT_ACTIONS = {
    "sign_in": "sign_in",
    "sign_in_failed": "sign_in_failed",
    "sign_in_locked": "sign_in_failed",
    "sign_out": "sign_out",
    "user_added": "user_add",
}


def _recent_events(root: Path, since: dt.datetime) -> list[dict]:
    tables = _tables(root)
    rows = tables.read(
        EVENTS_TABLE,
        filter=(pads.field("created_at") >= pa.scalar(since, type=_ts()))
        & pads.field("event").isin(["sign_in", "sign_in_failed"]),
    ).to_pylist()
    return sorted(rows, key=lambda r: r["created_at"])


def _lockout(
    failures: list[dt.datetime], limit: int, window: dt.timedelta, now: dt.datetime
) -> dt.datetime | None:
    """When a locked-out name or address may try again, or None when it may now."""
    recent = [t for t in failures if t > now - window]
    if len(recent) < limit:
        return None
    return recent[-limit] + window


def _when(moment: dt.datetime, now: dt.datetime) -> str:
    minutes = max(1, -(-int((moment - now).total_seconds()) // 60))
    return f"{moment:%H:%M} UTC (in {minutes} minute{'' if minutes == 1 else 's'})"


# A hash to verify unknown names against, so a wrong name costs what a wrong password does.
_DUMMY: list[str] = []


def verify_sign_in(
    store_or_workspace: Any,
    name: str,
    password: str,
    address: str | None = None,
    *,
    now: dt.datetime | None = None,
    policy: SignInPolicy | None = None,
) -> Actor:
    """Check a sign-in, within the failure limits, and record its outcome.

    Args:
        address: The client's address (``st.context.ip_address``); None counts as "unknown".

    Returns:
        The signed-in account's :class:`Actor`.

    Raises:
        SignInRefused: a wrong name or password (one message for both), a disabled or
            reserved account, or a lock-out (``retry_at`` set; the message says when).
    """
    policy = policy or SignInPolicy()
    name = (name or "").strip()
    address = (address or "").strip() or "unknown"
    root = _root(store_or_workspace)
    at = _now(now)
    if name in _RESERVED:
        raise SignInRefused(f"{name!r} is {_RESERVED[name]} and cannot sign in.")
    tables = _tables(root)
    # One lock for check, verify and record: two sessions guessing at once are counted in turn.
    with tables.lock(EVENTS_TABLE):
        events = _recent_events(root, at - policy.window)
        last_ok = max(
            (e["created_at"] for e in events if e["event"] == "sign_in" and e["account"] == name),
            default=None,
        )
        by_name = [
            e["created_at"]
            for e in events
            if e["event"] == "sign_in_failed"
            and e["account"] == name
            and (last_ok is None or e["created_at"] > last_ok)
        ]
        by_address = [
            e["created_at"]
            for e in events
            if e["event"] == "sign_in_failed" and e["address"] == address
        ]
        locked = [
            (until, what)
            for until, what in (
                (_lockout(by_name, policy.account_failures, policy.window, at), "this account"),
                (_lockout(by_address, policy.address_failures, policy.window, at), "your address"),
            )
            if until is not None
        ]
        if locked:
            until, what = max(locked)
            _record_event(root, "sign_in_locked", name, address=address, now=at)
            raise SignInRefused(
                f"Too many failed sign-ins for {what}: try again at {_when(until, at)}, or ask "
                "an admin to reset the password.",
                retry_at=until,
            )
        account = _accounts(root).get(name)
        ok = _password_matches(account, password)
        if not ok:
            _record_event(root, "sign_in_failed", name, address=address, now=at)
            left = policy.account_failures - len(by_name) - 1
            hint = (
                f" {left} more failed attempt{'' if left == 1 else 's'} locks the account "
                f"for up to {int(policy.window.total_seconds() // 60)} minutes."
                if 0 < left <= 2
                else ""
            )
            if left <= 0:
                hint = f" The account is locked until {_when(at + policy.window, at)}."
            raise SignInRefused(f"Wrong account name or password.{hint}")
        assert account is not None
        if account.disabled:
            _record_event(root, "sign_in_failed", name, address=address, detail="disabled", now=at)
            raise SignInRefused(f"The account {name!r} is disabled; ask an admin to enable it.")
        _record_event(root, "sign_in", name, address=address, now=at)
    return Actor(account.name, account.role)


def _password_matches(account: Account | None, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return False
    if account is None:
        if not _DUMMY:
            _DUMMY.append(hasher.hash(secrets.token_hex(16)))
        with contextlib.suppress(VerificationError, InvalidHashError):
            hasher.verify(_DUMMY[0], password)
        return False
    try:
        return hasher.verify(account.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def sign_out(store_or_workspace: Any, name: str, *, address: str | None = None, now=None) -> None:
    """End every session of ``name`` (this browser's and any other), and record it."""
    root = _root(store_or_workspace)
    at = _now(now)
    tables = _tables(root)
    with tables.lock(ACCOUNTS_TABLE):
        account = _accounts(root).get(name)
        if account is not None:
            _write(
                root, Account(**{**account.__dict__, "sessions_after": at}), "sign_out", name, at
            )
    _record_event(root, "sign_out", name, address=(address or "").strip() or "unknown", now=at)


# ---------------------------------------------------------------------------- sessions
def _secret(root: Path) -> bytes:
    """The workspace's session secret, created once (mode 0600) on first use."""
    folder = root / "secrets"
    path = folder / "session.key"
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = folder / f".session.key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails when another process created it first: use theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    from dataset.durable import fsync_dir

    fsync_dir(folder)
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def _serializer(root: Path):
    from itsdangerous import URLSafeSerializer

    return URLSafeSerializer(_secret(root), salt=_SALT)


def issue_session(
    store_or_workspace: Any, name: str, *, idle: dt.timedelta, now: dt.datetime | None = None
) -> str:
    """A signed token for ``name``, valid for ``idle`` from now (the cookie's value)."""
    root = _root(store_or_workspace)
    at = _now(now)
    return _serializer(root).dumps({"a": name, "i": at.timestamp(), "e": (at + idle).timestamp()})


@dataclass(frozen=True)
class Session:
    """A checked session: who, since when the token was issued, and when it expires."""

    actor: Actor
    issued_at: dt.datetime
    expires_at: dt.datetime


def check_session(
    store_or_workspace: Any, token: str, *, now: dt.datetime | None = None
) -> Session:
    """The account a session token signs in, re-checked against the accounts table.

    Raises:
        SessionInvalid: a forged or malformed token, an expired one (idle timeout), one
            issued before the account signed out or changed password, or an account that
            is gone or disabled.
    """
    from itsdangerous import BadSignature

    root = _root(store_or_workspace)
    at = _now(now)
    try:
        data = _serializer(root).loads(token or "")
        name, issued, expires = str(data["a"]), float(data["i"]), float(data["e"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise SessionInvalid("The session is not valid here; please sign in.") from None
    issued_at = dt.datetime.fromtimestamp(issued, dt.UTC)
    expires_at = dt.datetime.fromtimestamp(expires, dt.UTC)
    if at >= expires_at:
        raise SessionInvalid("You were signed out after a while without activity; sign in again.")
    account = _accounts(root).get(name)
    if account is None or account.disabled:
        raise SessionInvalid(f"The account {name!r} can no longer sign in; ask an admin.")
    if issued_at < account.sessions_after:
        raise SessionInvalid("This session was signed out; please sign in again.")
    return Session(Actor(account.name, account.role), issued_at, expires_at)


def cookie_script(token: str | None, max_age_s: int) -> str:
    """The ``<script>`` that stores the session cookie in the browser (None: deletes it).

    ``st.context.cookies`` only reads the cookies sent when the page connected, so the app
    sets its cookie from the page itself (``st.html(..., unsafe_allow_javascript=True)``
    runs this in the app's own document, not an iframe). ``SameSite=Strict``: never sent
    by another site's links or forms.
    """
    value = "" if token is None else token
    age = 0 if token is None else max(0, int(max_age_s))
    if not re.fullmatch(r"[A-Za-z0-9_.\-]*", value):  # itsdangerous' URL-safe alphabet
        raise ValueError("A session token holds URL-safe characters only.")
    attrs = f"Max-Age={age}; Path=/; SameSite=Strict"
    cookie = json.dumps(f"{SESSION_COOKIE}={value}; {attrs}")
    secure = "(location.protocol === 'https:' ? '; Secure' : '')"
    return f"<script>document.cookie = {cookie} + {secure};</script>"
