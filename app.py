"""SmearLab's entry point: the page navigation and the shared sidebar, nothing else.

Run with ``streamlit run app.py``; the workspace comes from ``SMEARLAB_WORKSPACE``.
A page appears in the navigation as soon as its file exists under ``pages/``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages import _common

HERE = Path(__file__).parent
# (file stem, title, icon), in the order a lab works: bring smears in, label, review, learn.
PAGES = (
    ("upload", "Upload", ":material/upload:"),
    ("label", "Label", ":material/brush:"),
    ("dataset", "Dataset", ":material/dataset:"),
    ("train", "Train", ":material/model_training:"),
    ("suggestions", "Suggestions", ":material/lightbulb:"),
    ("analysis", "Analysis", ":material/analytics:"),
    ("diagnosis", "Diagnosis", ":material/stethoscope:"),
    ("settings", "Settings", ":material/settings:"),
)

pages = [
    st.Page(f"pages/{stem}.py", title=title, icon=icon, url_path=stem)
    for stem, title, icon in PAGES
    if (HERE / "pages" / f"{stem}.py").is_file()
]
current = st.navigation(pages)

_common.sidebar()
current.run()
