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


def get_settings(**overrides: object) -> Settings:
    """Build the settings; keyword overrides win over the environment.

    ``None`` overrides are ignored so CLI flags left unset fall through to the environment.
    """
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
