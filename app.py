"""SmearLab's entry point: sign-in, the page navigation, the shared sidebar and the banner.

Run with ``make run`` (this machine only) or ``make serve`` (the network); the workspace comes
from ``SMEARLAB_WORKSPACE``. A page appears in the navigation as soon as its file exists
under ``pages/`` and the signed-in role may take the action it names in :data:`PAGES`; the
others stay routed but hidden, so opening their URL shows a refusal, not another page.
Nobody gets past :func:`pages._common.gate` without signing in; a workspace without accounts
is served on this machine only. When the server listens beyond this machine, every page opens
with a banner (:func:`dataset.serving.exposure_warning` decides).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dataset.serving import exposure_warning
from pages import _common

HERE = Path(__file__).parent
# (file stem, title, icon, the action of dataset.roles.PERMISSIONS the page is for), in the
# order a lab works: bring smears in, label, review, learn.
PAGES = (
    ("upload", "Upload", ":material/upload:", "upload"),
    ("label", "Label", ":material/brush:", "label"),
    ("review", "Review", ":material/rate_review:", "review"),
    ("dataset", "Dataset", ":material/dataset:", "view_dataset"),
    ("train", "Train", ":material/model_training:", "train"),
    ("suggestions", "Suggestions", ":material/lightbulb:", "suggest"),
    ("analysis", "Analysis", ":material/analytics:", "analyse"),
    ("diagnosis", "Diagnosis", ":material/stethoscope:", "patients"),
    ("settings", "Settings", ":material/settings:", "settings"),
    ("users", "Users", ":material/group:", "users"),
    ("audit", "Audit trail", ":material/history:", "audit"),
)

present = [row for row in PAGES if (HERE / "pages" / f"{row[0]}.py").is_file()]


def _pages(may=lambda action: False) -> list[tuple[st.Page, str]]:
    """Every page with the action it needs; those ``may`` refuses stay routed but hidden, and
    the first page the role may use is the default (what ``/`` opens)."""
    first = next((row for row in present if may(row[3])), None)
    return [
        (
            st.Page(
                f"pages/{stem}.py",
                title=title,
                icon=icon,
                url_path=stem,
                default=(stem, title, icon, action) == first,
                visibility="visible" if may(action) else "hidden",
            ),
            action,
        )
        for stem, title, icon, action in present
    ]


exposed = exposure_warning(st.get_option("server.address"))
if _common.current_session() is None:
    # Keep the requested page's URL while the sign-in form shows; it opens once signed in.
    st.navigation([page for page, _ in _pages()], position="hidden")
    st.set_page_config(page_title="Sign in · SmearLab")
    if exposed:
        st.warning(exposed, icon=":material/public:")
who = _common.gate()  # the sign-in form, and a stop, until someone has signed in
routed = _pages(who.may)
current = st.navigation([page for page, _ in routed])

_common.sidebar()
if exposed:
    st.warning(exposed, icon=":material/public:")
# A hidden page opened by its URL (or the default page of a role with no page) is refused.
_common.require_page(dict(routed).get(current, "users"), current.title)
current.run()
