"""Accounts, sign-in limits and signed sessions (dataset/accounts.py), with injected time."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dataset import accounts as acc
from dataset.roles import Actor

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
PW = "correct-horse-1"
IDLE = dt.timedelta(minutes=30)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    acc.add_account(root, "boss", "admin", PW, now=T0)
    acc.add_account(root, "ana", "annotator", PW, now=T0)
    return root


def test_accounts_are_listed_without_hashes_and_hashed_with_argon2id(ws: Path) -> None:
    listed = acc.list_accounts(ws)
    assert [(a.name, a.role, a.disabled) for a in listed] == [
        ("ana", "annotator", False),
        ("boss", "admin", False),
    ]
    assert all(a.password_hash == "" for a in listed)
    stored = acc._accounts(ws.resolve())["ana"].password_hash
    assert stored.startswith("$argon2id$") and PW not in stored
    assert "password_hash" not in listed[0].to_json()


def test_reading_a_workspace_without_accounts_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "none"
    assert not acc.has_accounts(root) and acc.list_accounts(root) == []
    assert not root.exists()


@pytest.mark.parametrize(
    ("name", "role", "password", "says"),
    [
        ("system", "admin", PW, "reserved"),
        ("Ana Smith", "annotator", PW, "not a valid account name"),
        ("", "annotator", PW, "not a valid account name"),
        ("ana", "annotator", PW, "exists already"),
        ("bob", "surgeon", PW, "Unknown role"),
        ("bob", "annotator", "short", "too short"),
    ],
)
def test_bad_accounts_are_refused_with_the_reason(ws, name, role, password, says) -> None:
    with pytest.raises(acc.AccountError, match=says):
        acc.add_account(ws, name, role, password)


def test_the_first_admin_only_on_a_workspace_without_accounts(tmp_path: Path, ws: Path) -> None:
    fresh = tmp_path / "fresh"
    made = acc.add_first_admin(fresh, "lead", PW)
    assert made.role == "admin"
    with pytest.raises(acc.AccountError, match="already has an account"):
        acc.add_first_admin(ws, "intruder", PW)


def test_actor_for_names_enabled_accounts_only(ws: Path) -> None:
    assert acc.actor_for(ws, "ana") == Actor("ana", "annotator")
    with pytest.raises(acc.AccountError, match=r"no account 'ghost'.*ana, boss"):
        acc.actor_for(ws, "ghost")
    with pytest.raises(acc.AccountError, match="reserved"):
        acc.actor_for(ws, "system")
    acc.disable(ws, "ana")
    with pytest.raises(acc.AccountError, match="disabled"):
        acc.actor_for(ws, "ana")
    acc.enable(ws, "ana")
    assert acc.actor_for(ws, "ana").role == "annotator"


def test_role_changes_and_the_last_admin_is_kept(ws: Path) -> None:
    assert acc.set_role(ws, "ana", "reviewer").role == "reviewer"
    assert acc.actor_for(ws, "ana").role == "reviewer"
    with pytest.raises(acc.AccountError, match="last enabled admin"):
        acc.set_role(ws, "boss", "annotator")
    with pytest.raises(acc.AccountError, match="last enabled admin"):
        acc.disable(ws, "boss")
    with pytest.raises(acc.AccountError, match="no account"):
        acc.set_role(ws, "ghost", "admin")


def test_sign_in_checks_the_password_and_refuses_system_and_disabled(ws: Path) -> None:
    assert acc.verify_sign_in(ws, "ana", PW, "10.0.0.1", now=T0) == Actor("ana", "annotator")
    with pytest.raises(acc.SignInRefused, match="Wrong account name or password"):
        acc.verify_sign_in(ws, "ana", "wrong-password", "10.0.0.1", now=T0)
    with pytest.raises(acc.SignInRefused, match="Wrong account name or password"):
        acc.verify_sign_in(ws, "ghost", PW, "10.0.0.1", now=T0)
    with pytest.raises(acc.SignInRefused, match="reserved"):
        acc.verify_sign_in(ws, "system", PW, "10.0.0.1", now=T0)
    acc.disable(ws, "ana", now=T0)
    with pytest.raises(acc.SignInRefused, match="disabled"):
        acc.verify_sign_in(ws, "ana", PW, "10.0.0.1", now=T0)


def test_an_account_is_locked_out_after_failures_and_says_when_to_retry(ws: Path) -> None:
    policy = acc.SignInPolicy(account_failures=3, address_failures=100)
    for i in range(3):
        with pytest.raises(acc.SignInRefused) as failed:
            acc.verify_sign_in(
                ws, "ana", "bad", f"10.0.0.{i}", now=T0 + dt.timedelta(minutes=i), policy=policy
            )
        assert failed.value.retry_at is None
    # Locked: even the right password is refused, from any address, until the window passes.
    with pytest.raises(acc.SignInRefused, match=r"try again at 09:15 UTC") as locked:
        acc.verify_sign_in(
            ws, "ana", PW, "10.9.9.9", now=T0 + dt.timedelta(minutes=5), policy=policy
        )
    assert locked.value.retry_at == T0 + dt.timedelta(minutes=15)
    # Another account is not affected.
    assert acc.verify_sign_in(
        ws, "boss", PW, "10.9.9.9", now=T0 + dt.timedelta(minutes=5), policy=policy
    )
    # Once the first failure has left the window, the right password works again.
    later = T0 + dt.timedelta(minutes=15, seconds=1)
    assert acc.verify_sign_in(ws, "ana", PW, "10.0.0.1", now=later, policy=policy).name == "ana"


def test_an_address_is_locked_out_across_accounts(ws: Path) -> None:
    policy = acc.SignInPolicy(account_failures=100, address_failures=3)
    for name in ("ana", "boss", "ghost"):
        with pytest.raises(acc.SignInRefused):
            acc.verify_sign_in(ws, name, "bad", "10.6.6.6", now=T0, policy=policy)
    with pytest.raises(acc.SignInRefused, match="for your address"):
        acc.verify_sign_in(ws, "ana", PW, "10.6.6.6", now=T0, policy=policy)
    assert acc.verify_sign_in(ws, "ana", PW, "10.0.0.7", now=T0, policy=policy).name == "ana"


def test_failures_are_durable_a_fresh_process_still_sees_the_lock_out(ws: Path) -> None:
    policy = acc.SignInPolicy(account_failures=2)
    for _ in range(2):
        with pytest.raises(acc.SignInRefused):
            acc.verify_sign_in(ws, "ana", "bad", "10.0.0.1", policy=policy)
    # Another process (a second server, or this one restarted) reads the same failures.
    code = (
        "import sys; from dataset import accounts as a\n"
        "try:\n"
        f"    a.verify_sign_in({str(ws)!r}, 'ana', {PW!r}, '10.0.0.2',"
        " policy=a.SignInPolicy(account_failures=2))\n"
        "except a.SignInRefused as e:\n"
        "    print(e); sys.exit(7)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 7, done.stderr
    assert "Too many failed sign-ins" in done.stdout


def test_a_success_clears_the_account_count(ws: Path) -> None:
    policy = acc.SignInPolicy(account_failures=2, address_failures=100)
    with pytest.raises(acc.SignInRefused):
        acc.verify_sign_in(ws, "ana", "bad", "a", now=T0, policy=policy)
    acc.verify_sign_in(ws, "ana", PW, "a", now=T0 + dt.timedelta(seconds=1), policy=policy)
    with pytest.raises(acc.SignInRefused, match="Wrong"):
        acc.verify_sign_in(ws, "ana", "bad", "a", now=T0 + dt.timedelta(seconds=2), policy=policy)
    assert acc.verify_sign_in(ws, "ana", PW, "a", now=T0 + dt.timedelta(seconds=3), policy=policy)


def test_a_session_lasts_the_idle_time_and_no_longer(ws: Path) -> None:
    token = acc.issue_session(ws, "ana", idle=IDLE, now=T0)
    session = acc.check_session(ws, token, now=T0 + IDLE - dt.timedelta(seconds=1))
    assert session.actor == Actor("ana", "annotator")
    assert session.expires_at == T0 + IDLE
    with pytest.raises(acc.SessionInvalid, match="without activity"):
        acc.check_session(ws, token, now=T0 + IDLE)


def test_the_role_comes_from_the_table_not_the_token(ws: Path) -> None:
    token = acc.issue_session(ws, "ana", idle=IDLE, now=T0)
    acc.set_role(ws, "ana", "clinician", now=T0)
    assert acc.check_session(ws, token, now=T0).actor.role == "clinician"


@pytest.mark.parametrize("change", ["sign_out", "reset_password", "disable"])
def test_sign_out_password_reset_and_disable_end_earlier_sessions(ws: Path, change: str) -> None:
    token = acc.issue_session(ws, "ana", idle=IDLE, now=T0)
    later = T0 + dt.timedelta(minutes=1)
    if change == "sign_out":
        acc.sign_out(ws, "ana", now=later)
    elif change == "reset_password":
        acc.reset_password(ws, "ana", "another-password", now=later)
    else:
        acc.disable(ws, "ana", now=later)
    with pytest.raises(acc.SessionInvalid):
        acc.check_session(ws, token, now=later + dt.timedelta(seconds=1))


def test_forged_and_foreign_tokens_are_refused(ws: Path, tmp_path: Path) -> None:
    token = acc.issue_session(ws, "ana", idle=IDLE, now=T0)
    payload, signature = token.rsplit(".", 1)
    for forged in ("", "nonsense", f"{payload}.{signature[::-1]}", token.replace("a", "b", 1)):
        with pytest.raises(acc.SessionInvalid, match="not valid"):
            acc.check_session(ws, forged, now=T0)
    other = tmp_path / "other"
    acc.add_account(other, "ana", "admin", PW)
    foreign = acc.issue_session(other, "ana", idle=IDLE, now=T0)
    with pytest.raises(acc.SessionInvalid, match="not valid"):
        acc.check_session(ws, foreign, now=T0)


def test_the_session_secret_is_private_and_kept(ws: Path) -> None:
    acc.issue_session(ws, "ana", idle=IDLE)
    key = ws / "secrets" / "session.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    first = key.read_text()
    acc.issue_session(ws, "boss", idle=IDLE)
    assert key.read_text() == first and len(bytes.fromhex(first)) == 32


def test_the_cookie_script_sets_and_deletes_the_signed_cookie() -> None:
    script = acc.cookie_script("eyJ.abc-_", 1800)
    assert "smearlab_session=eyJ.abc-_; Max-Age=1800; Path=/; SameSite=Strict" in script
    assert "Max-Age=0" in acc.cookie_script(None, 1800)
    with pytest.raises(ValueError):
        acc.cookie_script('x"; document.location="evil', 10)


def test_changes_and_sign_ins_are_recorded_through_one_function(ws: Path, monkeypatch) -> None:
    seen: list[tuple[str, str]] = []
    real = acc._record_event
    monkeypatch.setattr(
        acc,
        "_record_event",
        lambda root, event, name, **kw: (seen.append((event, name)), real(root, event, name, **kw)),
    )
    acc.set_role(ws, "ana", "reviewer")
    acc.verify_sign_in(ws, "ana", PW, "a")
    with pytest.raises(acc.SignInRefused):
        acc.verify_sign_in(ws, "ana", "bad", "a")
    acc.sign_out(ws, "ana")
    assert seen == [
        ("user_role", "ana"),
        ("sign_in", "ana"),
        ("sign_in_failed", "ana"),
        ("sign_out", "ana"),
    ]


def test_a_process_killed_while_recording_leaves_the_tables_readable(ws: Path) -> None:
    """SIGKILL in the middle of account writes: every change reported done is there, and
    both tables still read (Delta commits are atomic)."""
    import signal

    code = (
        "import sys\n"
        "from dataset import accounts as a\n"
        f"ws = {str(ws)!r}\n"
        "policy = a.SignInPolicy(account_failures=10**6, address_failures=10**6)\n"
        "for i in range(1000):\n"
        "    try:\n"
        "        a.verify_sign_in(ws, 'boss', 'wrong', f'10.0.0.{i % 250}', policy=policy)\n"
        "    except a.SignInRefused:\n"
        "        print(i, flush=True)\n"
        "    a.set_role(ws, 'ana', ('reviewer', 'annotator')[i % 2])\n"
        "    print('role', i, flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        reported = [proc.stdout.readline() for _ in range(6)]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    roles_done = sum(line.startswith("role") for line in reported)
    acc._CACHE.clear()
    failures = acc._tables(ws.resolve()).read(acc.EVENTS_TABLE).to_pylist()
    assert sum(e["event"] == "sign_in_failed" for e in failures) >= len(reported) - roles_done
    changes = acc._tables(ws.resolve()).read(acc.ACCOUNTS_TABLE).to_pylist()
    assert sum(c["change"] == "role" for c in changes) >= roles_done
    assert acc.actor_for(ws, "ana").role in ("annotator", "reviewer")
    assert acc.verify_sign_in(ws, "boss", PW, "10.1.1.1").name == "boss"
