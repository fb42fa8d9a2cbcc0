"""Audit trail page (admins): who did what, when, to which object; filter, read, download.

What it promises:
- Rows come from :func:`dataset.audit.read` only, filtered by a date range (UTC days, both
  ends included), an actor and an action; newest first.
- The shown rows download as CSV, with the same columns.
- The page only reads: nothing here writes, edits or deletes the trail (no function for the
  last two exists). ``python -m dataset audit`` reads the same rows.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from dataset import audit
from pages import _common

ALL = "(all)"
DEFAULT_DAYS = 30
EARLIEST = dt.date(2000, 1, 1)  # Streamlit's default would hide rows over 10 years old


def main() -> None:
    store = _common.setup("Audit trail", need="audit")
    st.title("Audit trail")
    st.caption(
        "One row per action that changed the workspace or showed patient data, written by the "
        "action itself; the trail is append-only and nothing in SmearLab can edit or delete "
        "it. Times are UTC. Also `python -m dataset audit --since DATE --json`."
    )
    everything = audit.read(store)
    today = dt.datetime.now(dt.UTC).date()
    cols = st.columns(4)
    start = cols[0].date_input(
        "From", today - dt.timedelta(days=DEFAULT_DAYS), min_value=EARLIEST, key="au_from"
    )
    end = cols[1].date_input("To (included)", today, min_value=EARLIEST, key="au_to")
    actors = sorted({r.actor for r in everything})
    actor = cols[2].selectbox("Actor", [ALL, *actors], key="au_actor")
    action = cols[3].selectbox("Action", [ALL, *audit.ACTIONS], key="au_action")
    if start > end:
        st.error(f"The date range is empty: From ({start}) is after To ({end}).")
        return
    rows = audit.read(
        store,
        since=start,
        until=end + dt.timedelta(days=1),
        actor=None if actor == ALL else actor,
        action=None if action == ALL else action,
    )
    frame = pd.DataFrame([r.to_json() for r in reversed(rows)], columns=list(audit.FIELDS)).astype(
        {"at": "string"}
    )
    st.write(f"{len(rows)} of {len(everything)} rows.")
    st.dataframe(frame, hide_index=True, key="au_table")
    st.download_button(
        "Download these rows (CSV)",
        frame.to_csv(index=False).encode("utf-8"),
        file_name=f"smearlab-audit-{start}-{end}.csv",
        mime="text/csv",
        key="au_download",
        disabled=not rows,
    )
    if action != ALL:
        st.caption(f"{action}: {audit.ACTIONS[action]}.")


main()
