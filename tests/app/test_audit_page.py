"""Wiring of the audit trail page through AppTest: filters, table and CSV download.

The page is run as its own script (``app.py``'s navigation is not needed for wiring); the
rows are written with :func:`dataset.audit.record` at fixed times.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from dataset import audit
from tests._accounts import open_page

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(root))
    today = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    ago = [40 * 24 * 60, 2 * 24 * 60, 2, 1]  # minutes before noon today, one per row
    times = iter(today - dt.timedelta(minutes=m) for m in ago)
    with monkeypatch.context() as m:
        m.setattr(audit, "_now", lambda: next(times))
        audit.record(root, actor="ana", action="save", object_id="old-tile", after=1)
        audit.record(root, actor="ana", action="save", object_id="t1", before=1, after=2)
        audit.record(root, actor="bob", action="release", object_id="1.0.0", after="abc")
        audit.record(root, actor="dr-a", action="patient_open", object_id="P-1")
    return root


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, str]]:
    """What the page hands to download buttons: (data, file name), in order."""
    seen: list[tuple[bytes, str]] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        if kind.name == "DOWNLOADABLE":
            seen.append((path_or_data, filename))
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    return seen


ADMIN = "auditor"  # the signed-in admin; its own sign-in rows are left out of the checks


def _open() -> AppTest:
    at = open_page("pages/audit.py", ADMIN, "admin", timeout=TIMEOUT)
    assert not at.exception, at.exception
    return at


def _shown(at: AppTest) -> list[str]:
    return [o for o in at.dataframe[0].value["object_id"].tolist() if o != ADMIN]


def _csv(data: bytes, **options) -> pd.DataFrame:
    csv = pd.read_csv(io.BytesIO(data), **options)
    return csv[csv["object_id"] != ADMIN].reset_index(drop=True)


def test_the_last_30_days_show_newest_first_and_download_as_csv(workspace, downloads) -> None:
    at = _open()
    assert at.title[0].value == "Audit trail"
    assert _shown(at) == ["P-1", "1.0.0", "t1"]  # the 40-day-old row is outside the range
    data, name = downloads[-1]
    csv = _csv(data, dtype=str, keep_default_na=False)
    assert list(csv.columns) == list(audit.FIELDS)
    assert csv["object_id"].tolist() == ["P-1", "1.0.0", "t1"]
    assert csv.loc[2, ["actor", "action", "before", "after"]].tolist() == ["ana", "save", "1", "2"]
    assert name.startswith("smearlab-audit-") and name.endswith(".csv")


def test_filters_by_date_actor_and_action(workspace, downloads) -> None:
    at = _open()
    at.date_input(key="au_from").set_value(dt.date(2000, 1, 1)).run()
    assert _shown(at) == ["P-1", "1.0.0", "t1", "old-tile"]
    at.selectbox(key="au_actor").select("ana").run()
    assert _shown(at) == ["t1", "old-tile"]
    at.selectbox(key="au_action").select("release").run()
    assert _shown(at) == []
    assert at.get("download_button")[0].proto.disabled
    at.selectbox(key="au_actor").select("(all)").run()
    assert _shown(at) == ["1.0.0"]
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    at.selectbox(key="au_action").select("(all)")
    at.date_input(key="au_to").set_value(yesterday).run()
    assert _shown(at) == ["t1", "old-tile"]
    csv = _csv(downloads[-1][0], dtype=str)
    assert csv["object_id"].tolist() == ["t1", "old-tile"]  # the download is what is shown
    at.date_input(key="au_from").set_value(yesterday + dt.timedelta(days=5)).run()
    assert any("The date range is empty" in e.value for e in at.error)


def test_the_page_only_reads() -> None:
    """An audit write from a page is impossible: the page calls read, never record."""
    source = (ROOT / "pages" / "audit.py").read_text()
    assert "audit.read(" in source
    assert "record" not in source
