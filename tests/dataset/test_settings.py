"""Settings: one object, overrides > SMEARLAB_* environment > workspace table > defaults; the
workspace table is versioned and validated; ``python -m dataset settings`` shows and sets it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dataset.settings import (
    Settings,
    SettingsError,
    get_settings,
    set_workspace_setting,
    setting_values,
    workspace_keys,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    monkeypatch.setenv("SMEARLAB_WORKSPACE", str(root))
    for key in Settings.model_fields:
        if key != "workspace":
            monkeypatch.delenv(f"SMEARLAB_{key.upper()}", raising=False)
    return root


def _sources() -> dict[str, tuple[object, str]]:
    return {v.key: (v.value, v.source) for v in setting_values()}


def test_precedence_override_env_workspace_default(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert get_settings().glucose_unit is None
    assert _sources()["glucose_unit"] == (None, "default")
    set_workspace_setting(workspace, "glucose_unit", "mg/dL")
    assert get_settings().glucose_unit == "mg/dL"
    assert _sources()["glucose_unit"] == ("mg/dL", "workspace")
    monkeypatch.setenv("SMEARLAB_GLUCOSE_UNIT", "mmol/L")
    assert get_settings().glucose_unit == "mmol/L"
    assert _sources()["glucose_unit"] == ("mmol/L", "env")
    assert get_settings(glucose_unit="mg/dL").glucose_unit == "mg/dL"
    by_key = {v.key: v for v in setting_values(glucose_unit="mg/dL")}
    assert by_key["glucose_unit"].source == "override"
    assert by_key["workspace"].source == "env"


def test_values_are_validated_typed_and_versioned(workspace: Path) -> None:
    from deltalake import DeltaTable

    assert set_workspace_setting(workspace, "gdm_screen_cutoff_mgdl", "135") == 135
    assert get_settings().gdm_screen_cutoff_mgdl == 135
    with pytest.raises(SettingsError, match="130, 135 or 140"):
        set_workspace_setting(workspace, "gdm_screen_cutoff_mgdl", "150")
    with pytest.raises(SettingsError, match="the settings are: tile_size"):
        set_workspace_setting(workspace, "glucose", "mg/dL")
    with pytest.raises(SettingsError, match="says where the workspace is"):
        set_workspace_setting(workspace, "workspace", "elsewhere")
    set_workspace_setting(workspace, "gdm_screen_cutoff_mgdl", 130)
    set_workspace_setting(workspace, "gdm_screen_cutoff_mgdl", None)  # unset: the default again
    assert get_settings().gdm_screen_cutoff_mgdl == 140
    table = DeltaTable(str(workspace / "tables" / "settings"))
    assert table.version() == 3  # created + three appends; every value stays in the history
    assert [r["value"] for r in table.to_pyarrow_table().to_pylist()].count(None) == 1


def test_every_settings_field_is_a_workspace_setting() -> None:
    """A field another part adds to Settings becomes a workspace setting with no other change."""
    assert set(workspace_keys()) == set(Settings.model_fields) - {"workspace"}
    assert {"glucose_unit", "hba1c_unit", "gdm_screen_cutoff_mgdl"} <= set(workspace_keys())


def test_reading_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "absent"
    assert get_settings(workspace=root).tile_size == 256
    assert not root.exists()


def _cli(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataset", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_settings_command_gets_and_sets(workspace: Path) -> None:
    import os

    env = {**os.environ, "SMEARLAB_WORKSPACE": str(workspace)}
    out = _cli("settings", "set", "hba1c_unit", "mmol/mol", env=env)
    assert out.returncode == 0, out.stderr
    assert "hba1c_unit = 'mmol/mol' (workspace)" in out.stdout
    doc = json.loads(_cli("settings", "get", "--json", env=env).stdout)
    rows = {r["key"]: r for r in doc["settings"]}
    assert rows["hba1c_unit"]["source"] == "workspace"
    assert rows["workspace"]["source"] == "env"
    assert set(rows) == set(Settings.model_fields)
    bad = _cli("settings", "set", "hba1c_unit", "%", env=env)
    assert bad.returncode == 1 and "not a valid hba1c_unit" in bad.stderr
    missing = _cli("settings", "set", "hba1c_unit", env=env)
    assert missing.returncode == 2 and "settings set KEY VALUE" in missing.stderr
    assert _cli("settings", "unset", "hba1c_unit", env=env).returncode == 0
    one = json.loads(_cli("settings", "get", "hba1c_unit", "--json", env=env).stdout)
    assert one["settings"] == [
        {
            "key": "hba1c_unit",
            "value": None,
            "source": "default",
            "description": Settings.model_fields["hba1c_unit"].description,
        }
    ]


def test_a_stored_value_the_settings_refuse_falls_back_and_is_reported(workspace: Path) -> None:
    """A value stored before its field changed must not stop every command."""
    import datetime as dt

    from dataset._delta import DeltaTables
    from dataset.settings import SETTINGS_TABLE, _schema

    tables = DeltaTables(workspace)
    tables.register(SETTINGS_TABLE, _schema())
    now = dt.datetime.now(dt.UTC)
    tables.append(
        SETTINGS_TABLE,
        [{"key": "gdm_screen_cutoff_mgdl", "value": "150", "set_by": "", "created_at": now}],
    )
    assert get_settings().gdm_screen_cutoff_mgdl == 140
    [row] = [v for v in setting_values() if v.key == "gdm_screen_cutoff_mgdl"]
    assert row.source == "default" and "150 is refused" in row.problem
