"""Pins the one private Streamlit API SmearLab uses, so a Streamlit upgrade fails here first.

``pages/_common.py`` clears ``PagesManager.uses_pages_directory`` so that a direct visit to a
page URL is routed through ``app.py`` while the screens stay in the top-level ``pages/``
folder. Streamlit 1.67 has no supported switch for it: it enters its legacy multipage mode
whenever a ``pages/`` folder sits beside the entry script (until the process's first
``st.navigation`` call), and its only advice is to rename the folder. The browser test
``tests/e2e/test_routing.py`` shows the behaviour the flag buys; these tests fail when the
mechanism it relies on changes, so the upgrade re-checks it (or drops it, if a supported
way has come).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import streamlit

from tests._accounts import open_page

ROOT = Path(__file__).resolve().parents[2]


def _pinned_streamlit() -> str:
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    return re.search(r"^streamlit==(\S+)$", text, re.MULTILINE).group(1)


def test_streamlit_is_the_version_the_routing_workaround_was_checked_on() -> None:
    assert streamlit.__version__ == _pinned_streamlit() == "1.67.0", (
        "Streamlit changed: re-check pages/_common._leave_legacy_pages_mode (a supported way "
        "to keep pages/ and route direct URLs through app.py?), then update this pin."
    )


def test_the_legacy_flag_still_exists_and_still_decides_the_mode() -> None:
    from streamlit.commands import navigation
    from streamlit.runtime import pages_manager
    from streamlit.runtime.scriptrunner import script_runner

    manager = pages_manager.PagesManager
    assert "uses_pages_directory" in vars(manager)
    saved = manager.uses_pages_directory
    try:
        # A pages/ folder beside app.py switches a fresh process into the legacy mode ...
        manager.uses_pages_directory = None
        manager(str(ROOT / "app.py"), setup_watcher=False)
        assert manager.uses_pages_directory is True
    finally:
        manager.uses_pages_directory = saved
    # ... in which the script runner runs the page files themselves, not app.py ...
    runner = inspect.getsource(script_runner.ScriptRunner)
    assert "if PagesManager.uses_pages_directory:" in runner
    assert "_mpa_v1(self._main_script_path)" in runner
    # ... until st.navigation (app.py's) clears the flag, which _common does early.
    assert "PagesManager.uses_pages_directory = False" in inspect.getsource(navigation.navigation)
    common = (ROOT / "pages" / "_common.py").read_text(encoding="utf-8")
    assert "PagesManager.uses_pages_directory = False" in common


def test_a_page_run_in_the_legacy_mode_still_gets_the_shared_sidebar_once(
    tmp_path: Path, monkeypatch
) -> None:
    """AppTest puts every run in the legacy mode, as a fresh server's first visit is: the page
    then draws app.py's sidebar itself, once."""
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(tmp_path / "ws"))
    at = open_page("pages/settings.py")
    assert not at.exception, at.exception
    sign_outs = [b for b in at.sidebar.button if b.label == "Sign out"]
    assert len(sign_outs) == 1
