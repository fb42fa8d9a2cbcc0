"""SmearLab settings: one object, built on demand, never at import.

Promises:
    * Every field of :class:`Settings` is a setting; a field added later is one too, with no
      other change (its type, bounds and description come from the field).
    * Precedence, highest first: keyword overrides, ``SMEARLAB_*`` environment variables
      (``SMEARLAB_WORKSPACE``, ``SMEARLAB_GLUCOSE_UNIT``, ...), the workspace's settings table,
      the defaults. ``None`` overrides are ignored, so CLI flags left unset fall through.
    * The workspace settings table (``<workspace>/tables/settings``) is a versioned, append-only
      Delta table of ``key, value, set_by, created_at`` rows; the latest row of a key wins and a
      null value unsets it. Every field but ``workspace`` (which locates the table) can be set
      there. A value is validated by :class:`Settings` before it is written.
    * Reading never creates anything: a workspace without the table has no workspace values.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "SETTINGS_TABLE",
    "SettingValue",
    "Settings",
    "SettingsError",
    "get_settings",
    "ray_address_problem",
    "set_workspace_setting",
    "setting_values",
    "workspace_keys",
]

SETTINGS_TABLE = "settings"
# ``workspace`` says where the table is, so it cannot be stored in it.
NOT_IN_WORKSPACE = frozenset({"workspace"})
Source = Literal["override", "env", "workspace", "default"]


class Settings(BaseSettings):
    """Process-wide configuration of SmearLab."""

    model_config = SettingsConfigDict(env_prefix="SMEARLAB_", extra="ignore")

    workspace: Path = Field(default=Path("workspace"), description="Workspace folder")
    tile_size: int = Field(default=256, ge=32, le=4096, description="Tile side for new workspaces")
    annotator: str = Field(
        default="",
        description="Default account for the command line's --annotator (the app always "
        "records the signed-in account)",
    )
    session_idle_min: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="Minutes without activity after which the app signs a browser out",
    )
    device: str = Field(default="cpu", description="Torch device for training and inference")
    max_pixels: int = Field(default=100_000_000, ge=1, description="Largest accepted upload")
    glucose_unit: Literal["mmol/L", "mg/dL"] | None = Field(
        default=None,
        description="The lab's glucose unit, preselected on the Diagnosis page (none: choose)",
    )
    hba1c_unit: Literal["percent", "mmol/mol"] | None = Field(
        default=None,
        description="The lab's HbA1c unit, preselected on the Diagnosis page (none: choose)",
    )
    auto_update_every: int | None = Field(
        default=None,
        ge=1,
        description="Update the current model after every this many new labelled tiles (none: off)",
    )
    double_label_share: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Share of tiles (0..1, chosen by a hash of the tile id) labelled "
        "independently by a second annotator to measure agreement",
    )
    ray_address: str | None = Field(
        default=None,
        description="Where training and scoring jobs hand their work to Ray: local (a Ray "
        "started on this machine), auto or host:port (the head of a cluster whose nodes see "
        "the workspace on a shared filesystem); none: they run here",
        json_schema_extra={"requires": "ray", "install": "pip install -r requirements-ray.txt"},
    )
    gdm_screen_cutoff_mgdl: Literal[130, 135, 140] = Field(
        default=140,
        description="ADA two-step 50 g screen cut-off, mg/dL (130, 135 or 140; 7.2/7.5/7.8 mmol/L)",
    )

    # --- Input limits: what one uploaded or imported file may cost (dataset/limits.py) -----
    # max_file_mb is also Streamlit's server.maxUploadSize in .streamlit/config.toml; keep
    # the two equal (a test checks the defaults agree).
    max_file_mb: int = Field(
        default=320,
        ge=1,
        le=4096,
        description="Largest file read for an upload, a mask or a pairs CSV, in MiB "
        "(a 100-megapixel uncompressed RGB image is 286 MiB)",
    )
    min_side_px: int = Field(
        default=32, ge=1, le=4096, description="Smallest accepted image width or height, pixels"
    )
    max_aspect_ratio: float = Field(
        default=20.0,
        ge=1.0,
        description="Largest accepted ratio of an image's longer side to its shorter side",
    )
    # --- end of input limits -----------------------------------------------------------------

    @field_validator("ray_address", mode="before")
    @classmethod
    def _ray_address(cls, value: object) -> object:
        if value is None:
            return None
        text = str(value).strip()
        if text.lower() in ("", "none", "null"):
            return None
        problem = ray_address_problem(text)
        if problem:
            raise ValueError(problem)
        return text


def ray_address_problem(text: str) -> str:
    """What is wrong with a Ray address ("" when nothing): ``local``, ``auto`` or ``host:port``.

    ``ray://`` client addresses are refused: Ray documents that Ray Client may not work as
    expected with Ray Train.
    """
    if text in ("local", "auto"):
        return ""
    if text.startswith("ray://"):
        return (
            f"{text!r} is a Ray Client address, which SmearLab does not use (Ray Client may "
            "not work as expected with Ray Train); give the head's host:port (its GCS port, "
            "6379 by default)"
        )
    host, sep, port = text.rpartition(":")
    if not sep or not host or "/" in text or not port.isdigit() or not 0 < int(port) < 65536:
        return f"{text!r} is not local, auto or host:port (e.g. 10.0.0.5:6379)"
    return ""


class SettingsError(ValueError):
    """A setting that cannot be read or written; the message names the key and what to do."""


@dataclass(frozen=True)
class SettingValue:
    """One setting as it applies now: its value, where it comes from, and its description."""

    key: str
    value: Any
    source: Source
    description: str
    workspace_value: Any = None
    problem: str = ""  # a stored workspace value the settings refuse (the default applies)

    def to_json(self) -> dict[str, Any]:
        value = str(self.value) if isinstance(self.value, Path) else self.value
        out = {
            "key": self.key,
            "value": value,
            "source": self.source,
            "description": self.description,
        }
        if self.problem:
            out["problem"] = self.problem
        return out


def _schema() -> pa.Schema:
    from dataset._delta import TS

    return pa.schema(
        [
            ("key", pa.string()),
            ("value", pa.string()),  # JSON text; null unsets the key
            ("set_by", pa.string()),
            ("created_at", TS),
        ]
    )


def workspace_keys() -> tuple[str, ...]:
    """The settings a workspace may hold: every field of :class:`Settings` but ``workspace``."""
    return tuple(k for k in Settings.model_fields if k not in NOT_IN_WORKSPACE)


def _clean(overrides: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in overrides.items() if v is not None}


def _table_path(workspace: Path) -> Path:
    return Path(workspace) / "tables" / SETTINGS_TABLE


# Table path -> (name of its newest log entry, values): settings are read on every page run,
# so a read that finds no new commit costs a directory listing, not a Delta scan.
_CACHE: dict[str, tuple[str, dict[str, Any]]] = {}
_CACHE_LOCK = threading.Lock()


def _stored(workspace: Path) -> dict[str, Any]:
    """The workspace's values (latest row per key wins; unset keys left out), parsed JSON."""
    path = _table_path(workspace)
    log = path / "_delta_log"
    try:
        newest = max(f for f in os.listdir(log) if f.endswith(".json"))
    except (OSError, ValueError):  # no table (yet): nothing stored
        return {}
    key = str(path.resolve())
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0] == newest:
        return dict(hit[1])
    from deltalake import DeltaTable

    from dataset._delta import local_dataset

    # Through Arrow's own filesystem, as every table read (see local_dataset: deltalake's
    # default one made commands abort at exit after they had succeeded).
    rows = local_dataset(DeltaTable(str(path))).to_table().to_pylist()
    latest: dict[str, str | None] = {}
    for row in sorted(rows, key=lambda r: r["created_at"]):
        latest[row["key"]] = row["value"]
    values = {k: json.loads(v) for k, v in latest.items() if v is not None}
    with _CACHE_LOCK:
        _CACHE[key] = (newest, values)
    return dict(values)


def _with_workspace(
    overrides: dict[str, object],
) -> tuple[Settings, dict[str, Any], Settings, dict[str, str]]:
    """(settings, the workspace values used, the settings without the workspace layer, the
    stored values left out because the settings refuse them, with why)."""
    clean = _clean(overrides)
    base = Settings(**clean)
    stored = _stored(base.workspace)
    keys = set(workspace_keys())
    fill: dict[str, Any] = {}
    refused: dict[str, str] = {}
    for key, value in stored.items():
        if key not in keys or key in base.model_fields_set:
            continue
        try:
            Settings.model_validate({key: value})
        except ValidationError as exc:
            # A value stored before its field changed: the default applies and the Settings
            # page and `settings get` say so, instead of every command failing.
            refused[key] = f"{value!r} is refused: {exc.errors()[0]['msg']}"
            continue
        fill[key] = value
    if not fill:
        return base, {}, base, refused
    return Settings(**fill, **clean), fill, base, refused


def get_settings(**overrides: object) -> Settings:
    """Build the settings: overrides > ``SMEARLAB_*`` environment > workspace table > defaults.

    ``workspace`` among the overrides chooses the workspace whose table is read.
    ``None`` overrides are ignored so CLI flags left unset fall through to the environment.

    Raises:
        pydantic.ValidationError: an override or environment variable is invalid.
    """
    return _with_workspace(overrides)[0]


def setting_values(**overrides: object) -> list[SettingValue]:
    """Every setting with its value and where the value comes from (for the page and CLI)."""
    settings, used, base, refused = _with_workspace(overrides)
    clean = _clean(overrides)
    stored = _stored(settings.workspace)
    out = []
    for key, info in Settings.model_fields.items():
        if key in clean:
            source: Source = "override"
        elif key in base.model_fields_set:
            source = "env"
        elif key in used:
            source = "workspace"
        else:
            source = "default"
        out.append(
            SettingValue(
                key,
                getattr(settings, key),
                source,
                info.description or "",
                stored.get(key),
                refused.get(key, ""),
            )
        )
    return out


def _check_requirement(key: str) -> None:
    """Refuse a value for a setting whose module (``requires`` in the field) is not installed."""
    extra = Settings.model_fields[key].json_schema_extra
    if not isinstance(extra, dict) or "requires" not in extra:
        return
    module = str(extra["requires"])
    if importlib.util.find_spec(module) is None:
        raise SettingsError(
            f"{key} needs {module}, which is not installed here; install it with "
            f"`{extra['install']}`, then set {key} again."
        )


def set_workspace_setting(
    workspace: Path | str, key: str, value: object, *, set_by: str = ""
) -> Any:
    """Store ``key = value`` in the workspace's settings table (``None`` unsets it).

    ``value`` may be text as typed on the command line (``"mg/dL"``, ``"135"``); it is
    validated and stored as the type the setting has.

    Returns:
        The value as stored (parsed), or None when unset.

    Raises:
        SettingsError: an unknown key (the message lists the keys), ``workspace``, or a value
            the setting refuses.
    """
    keys = workspace_keys()
    if key not in keys:
        if key in NOT_IN_WORKSPACE:
            raise SettingsError(
                f"{key!r} cannot be a workspace setting: it says where the workspace is. Use "
                "--workspace or SMEARLAB_WORKSPACE."
            )
        raise SettingsError(f"Unknown setting {key!r}; the settings are: {', '.join(keys)}.")
    stored: str | None = None
    parsed: Any = None
    if value is not None:
        candidate = value
        if isinstance(value, str) and value.strip().lower() in ("", "none", "null"):
            candidate = None
        candidates = [candidate]
        if isinstance(candidate, str):
            # Text typed on a command line: "135" may mean the number.
            with contextlib.suppress(ValueError):
                candidates.append(json.loads(candidate))
        checked = None
        for option in candidates:
            try:
                checked = Settings.model_validate({key: option})
                break
            except ValidationError as exc:
                first = exc
        if checked is None:
            info = Settings.model_fields[key]
            raise SettingsError(
                f"{value!r} is not a valid {key}: {first.errors()[0]['msg']} ({info.description})."
            )
        parsed = getattr(checked, key)
        if parsed is not None:
            _check_requirement(key)
        stored = json.dumps(parsed.as_posix() if isinstance(parsed, Path) else parsed)
    from dataset._delta import DeltaTables

    root = Path(workspace)
    if root.exists() and not root.is_dir():
        raise SettingsError(f"Workspace {root} is a file; give a folder path.")
    tables = DeltaTables(root)
    tables.register(SETTINGS_TABLE, _schema())
    with tables.lock(SETTINGS_TABLE):
        tables.append(
            SETTINGS_TABLE,
            [
                {
                    "key": key,
                    "value": stored,
                    "set_by": set_by or os.environ.get("USER", ""),
                    "created_at": dt.datetime.now(dt.UTC),
                }
            ],
        )
    return parsed
