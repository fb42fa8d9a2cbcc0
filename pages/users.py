"""Users: the lab's accounts, for an admin: add, change a role, reset a password, disable.

Calls the same functions as ``python -m dataset users``; every change is checked against the
signed-in admin's role again when it is made.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dataset import accounts
from dataset.roles import ROLES
from pages import _common


def _done(text: str) -> None:
    st.session_state["users_flash"] = text
    st.rerun()


def main() -> None:
    _common.setup("Users", need="users")
    st.title("Users")
    workspace = _common.workspace()
    flash = st.session_state.pop("users_flash", None)
    if flash:
        st.success(flash)
    rows = [a.to_json() for a in accounts.list_accounts(workspace)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="users_table")
    st.caption(
        "Roles: **annotator** uploads, labels and skips; **reviewer** also reviews and "
        "releases; **clinician** uses the Diagnosis page and confirms diagnoses; **admin** "
        "may do everything. A disabled account is kept for the record and cannot sign in."
    )
    names = [r["name"] for r in rows]
    add, change = st.columns(2, gap="large")
    with add, st.form("users_add", clear_on_submit=True):
        st.markdown("**Add an account**")
        name = st.text_input("Account name", key="users_new_name")
        role = st.selectbox("Role", ROLES, key="users_new_role")
        password = st.text_input("Password", type="password", key="users_new_pw")
        again = st.text_input("Repeat the password", type="password", key="users_new_again")
        go = st.form_submit_button("Add account", type="primary")
    if go and _common.permit("users"):
        if password != again:
            st.error("The two passwords differ; type the same password twice.")
        else:
            try:
                accounts.add_account(workspace, name, role, password, by=_common.annotator())
            except accounts.AccountError as exc:
                st.error(str(exc))
            else:
                _done(f"Added {name.strip()} ({role}).")
    with change, st.form("users_change"):
        st.markdown("**Change an account**")
        who = st.selectbox("Account", names, index=None, key="users_pick")
        what = st.radio(
            "Change",
            ("Set role", "Reset password", "Disable", "Enable"),
            horizontal=True,
            key="users_what",
        )
        new_role = st.selectbox("New role (Set role)", ROLES, key="users_role")
        new_pw = st.text_input(
            "New password (Reset password)", type="password", key="users_reset_pw"
        )
        apply = st.form_submit_button("Apply")
    if not apply or not _common.permit("users"):
        return
    if who is None:
        st.error("Choose the account to change.")
        return
    by = _common.annotator()
    try:
        if what == "Set role":
            accounts.set_role(workspace, who, new_role, by=by)
            _done(f"{who} is now {new_role}.")
        elif what == "Reset password":
            accounts.reset_password(workspace, who, new_pw, by=by)
            _done(f"New password set for {who}; their open sessions are signed out.")
        elif what == "Disable":
            accounts.disable(workspace, who, by=by)
            _done(f"{who} is disabled and signed out everywhere.")
        else:
            accounts.enable(workspace, who, by=by)
            _done(f"{who} may sign in again.")
    except accounts.AccountError as exc:
        st.error(str(exc))


main()
