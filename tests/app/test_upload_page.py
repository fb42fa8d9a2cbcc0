"""The Upload page's result rows (issue #7, item 5): reasons in full, no "None" tiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._accounts import open_page

ROOT = Path(__file__).resolve().parents[2]
LONG_REASON = (
    "'scan.png' is 40 × 31 pixels; each side must be at least 32 pixels (setting "
    "SMEARLAB_MIN_SIDE_PX). Upload the full photo, not a thumbnail or a strip. " * 3
).strip()


@pytest.fixture
def empty_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(root))
    return root


def test_rejections_show_their_whole_reason_and_no_none_tiles(empty_ws: Path) -> None:
    at = open_page("pages/upload.py")
    rows = [
        {"input": "scan.png", "status": "rejected", "smear_id": None, "tiles": 0,
         "reason": LONG_REASON, "warnings": []},
        {"input": "good.png", "status": "added", "smear_id": "s0123456789ab", "tiles": 4,
         "reason": None, "warnings": []},
    ]  # fmt: skip
    at.session_state["up_results"] = ("This upload", rows)
    at.run()
    assert not at.exception, at.exception
    assert any(LONG_REASON in e.value for e in at.error)  # the whole sentence, uncut
    table = at.dataframe[0].value
    assert list(table["Tiles"]) == [0, 4]
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
