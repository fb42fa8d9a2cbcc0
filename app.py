"""SmearLab's entry point: the page navigation, the shared sidebar and the network banner.

Run with ``make run`` (this machine only) or ``make serve`` (the network); the workspace comes
from ``SMEARLAB_WORKSPACE``. A page appears in the navigation as soon as its file exists
under ``pages/``. When the server listens beyond this machine, every page opens with a
banner saying that nothing is protected (:func:`dataset.serving.exposure_warning` decides).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dataset.serving import exposure_warning
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
exposed = exposure_warning(st.get_option("server.address"))
if exposed:
    st.warning(exposed, icon=":material/public:")
current.run()
