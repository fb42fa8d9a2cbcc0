"""Settings page: every setting, its value, where the value comes from, and workspace values.

What it promises:
- One row per field of :class:`dataset.settings.Settings` (a field added later appears with no
  change here): the value in force, its source (override, env, workspace, default) and what it
  means.
- A form stores a workspace value (validated; the error names the setting and what it takes)
  or unsets it; a ``SMEARLAB_*`` environment variable still wins over it, and the page says so.
All logic lives in :mod:`dataset.settings`; ``python -m dataset settings`` does the same.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dataset.settings import SettingsError, set_workspace_setting, setting_values, workspace_keys
from pages import _common

SOURCES = {
    "override": "set for this run",
    "env": "SMEARLAB_ environment variable",
    "workspace": "this workspace",
    "default": "default",
}


def main() -> None:
    _common.setup("Settings", need="settings")
    workspace = _common.workspace()
    st.title("Settings")
    flash = st.session_state.pop("set_flash", None)
    if flash:
        st.success(flash)
    st.caption(
        f"Workspace {workspace}. Order of precedence: SMEARLAB_* environment variables, then "
        "this workspace's values, then the defaults. Also `python -m dataset settings get|set`."
    )
    try:
        values = setting_values()
    except (SettingsError, ValueError) as exc:
        st.error(f"The settings cannot be read: {exc}")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "setting": v.key,
                    "value": "—" if v.value is None else str(v.value),
                    "from": SOURCES[v.source],
                    "meaning": v.description,
                }
                for v in values
            ]
        ),
        hide_index=True,
        key="set_table",
    )
    for v in values:
        if v.problem:
            st.warning(f"This workspace's {v.key} is not used: {v.problem}. Set it again below.")
    by_key = {v.key: v for v in values}
    with st.form("set_form"):
        st.markdown("**Set a workspace value**")
        key = st.selectbox("Setting", workspace_keys(), index=None, key="set_key")
        text = st.text_input(
            "Value (empty: unset the workspace value)", key="set_value", placeholder="e.g. mg/dL"
        )
        go = st.form_submit_button("Save", key="set_go")
    if not go or not _common.permit("settings"):
        return
    if key is None:
        st.error("Choose the setting to save.")
        return
    try:
        stored = set_workspace_setting(
            workspace, key, text.strip() or None, set_by=_common.annotator()
        )
    except SettingsError as exc:
        st.error(str(exc))
        return
    if by_key[key].source == "env":
        st.warning(
            f"Saved, but SMEARLAB_{key.upper()} is set in the environment and wins over the "
            "workspace value."
        )
    else:
        st.success(
            f"{key} = {stored!r} saved in this workspace." if text.strip() else f"{key} unset."
        )
    st.rerun()


main()
