"""SmearLab settings: one object, built on demand, never at import.

Values come from keyword overrides first, then environment variables with the
``SMEARLAB_`` prefix (``SMEARLAB_WORKSPACE``, ``SMEARLAB_TILE_SIZE``, ...), then defaults.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide configuration of SmearLab."""

    model_config = SettingsConfigDict(env_prefix="SMEARLAB_", extra="ignore")

    workspace: Path = Field(default=Path("workspace"), description="Workspace folder")
    tile_size: int = Field(default=256, ge=32, le=4096, description="Tile side for new workspaces")
    annotator: str = Field(default="", description="Default annotator name")
    device: str = Field(default="cpu", description="Torch device for training and inference")
    max_pixels: int = Field(default=100_000_000, ge=1, description="Largest accepted upload")


def get_settings(**overrides: object) -> Settings:
    """Build the settings; keyword overrides win over the environment.

    ``None`` overrides are ignored so CLI flags left unset fall through to the environment.
    """
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
