"""Whether the app is reachable from other machines, and what to tell its users then.

Promises: :func:`exposure_warning` returns a warning for any server address that is not a
loopback address (including Streamlit's default of listening on every interface), and None
for ``127.0.0.1``, ``::1`` and ``localhost``. Every page asks for sign-in, and a workspace
without accounts is served on this machine only (``python -m dataset serve-check``, and the
first-run form refuses other addresses), but the connection itself is plain HTTP: passwords
and the session cookie cross the network unencrypted unless a TLS proxy sits in front.
"""

from __future__ import annotations

import ipaddress

__all__ = ["LOCAL_ADDRESS", "exposure_warning", "is_loopback"]

LOCAL_ADDRESS = "127.0.0.1"  # what `make run` serves on


def is_loopback(address: str | None) -> bool:
    """True when a server bound to ``address`` can be reached from this machine only.

    An empty or missing address means every interface (Streamlit's default): not loopback.
    """
    text = (address or "").strip().strip("[]")
    if not text:
        return False
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:  # a host name: it resolves to some interface, assume the network
        return False


def exposure_warning(address: str | None) -> str | None:
    """The banner to show when the app listens beyond this machine, else None."""
    if is_loopback(address):
        return None
    where = address.strip() if address and address.strip() else "every network interface"
    return (
        f"This SmearLab server listens on {where}: everyone who can reach this machine sees "
        "the sign-in page, and every page needs an account. The connection is plain HTTP, so "
        "passwords and sessions cross the network unencrypted: serve it only on a trusted lab "
        "network, or behind an HTTPS proxy. `make run` serves this machine only."
    )
