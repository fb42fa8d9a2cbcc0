"""Whether the app is reachable from other machines, and what to tell its users then.

Promises: :func:`exposure_warning` returns a warning for any server address that is not a
loopback address (including Streamlit's default of listening on every interface), and None
for ``127.0.0.1``, ``::1`` and ``localhost``. Nothing in SmearLab asks who a user is yet,
so a server on the network lets anyone who can reach it read and change the workspace.
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
        f"This SmearLab server listens on {where}: anyone who can reach this machine can "
        "open it, and nothing here is protected (there are no accounts or passwords yet). "
        "Every page, smear and label can be read and changed. Use `make run` (this machine "
        "only) unless the network is trusted."
    )
