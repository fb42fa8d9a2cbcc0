"""Pseudonymous account keys for releases: who labelled a tile, without their name.

Promises:
- :func:`account_key` is a keyed hash (HMAC-SHA-256, 16 hex digits) of an account name with
  a secret kept in the workspace (``<workspace>/keys/release-pseudonyms.key``, 32 random
  bytes, readable by its owner only). The same account gets the same key in every release
  of a workspace, so a lab can compare annotators across releases; without the workspace's
  secret a key cannot be traced back to a name, nor computed from one.
- The secret is drawn once, on first use, and written whole or not at all (a temporary file
  linked into place): two releases racing both use the one that won.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from dataset.durable import fsync_dir, fsync_path

__all__ = ["account_key", "pseudonym_secret"]

_SECRET_BYTES = 32


def _secret_path(workspace: Path) -> Path:
    return Path(workspace) / "keys" / "release-pseudonyms.key"


def pseudonym_secret(workspace: Path) -> bytes:
    """The workspace's pseudonym secret, drawn and stored on first use."""
    path = _secret_path(workspace)
    if not path.is_file():
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(_SECRET_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # never replaces a secret another process stored first
            fsync_path(path)
            fsync_dir(path.parent)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    secret = path.read_bytes()
    if len(secret) != _SECRET_BYTES:
        raise ValueError(
            f"The release pseudonym secret {path} is damaged ({len(secret)} bytes, not "
            f"{_SECRET_BYTES}); restore it from a backup so keys stay stable across releases."
        )
    return secret


def account_key(secret: bytes, account: str) -> str:
    """The pseudonymous key of ``account`` under the workspace's ``secret``."""
    return hmac.new(secret, f"account:{account}".encode(), hashlib.sha256).hexdigest()[:16]
