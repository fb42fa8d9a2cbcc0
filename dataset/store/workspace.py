"""The :class:`Store` facade: one object per workspace, assembled from one part per concept.

Promises:
- ``Store.open(path)`` opens (creating if needed) a workspace folder; a file path is refused.
- Each concept lives in its own module (:mod:`~dataset.store.config`,
  :mod:`~dataset.store.smears`, :mod:`~dataset.store.tiles`, :mod:`~dataset.store.revisions`,
  :mod:`~dataset.store.skips`, :mod:`~dataset.store.splits`, :mod:`~dataset.store.stats`,
  :mod:`~dataset.store.reviews`, :mod:`~dataset.store.second_labels`);
  ``Store`` adds only the opening. A part calls another's methods through ``self`` (the
  ``Store``), and all share the tables and caches of :class:`~dataset.store._base.StoreBase`.
"""

from __future__ import annotations

from pathlib import Path

from dataset.store.config import ConfigPart
from dataset.store.records import StoreError
from dataset.store.reviews import ReviewsPart
from dataset.store.revisions import RevisionsPart
from dataset.store.second_labels import SecondLabelsPart
from dataset.store.skips import SkipsPart
from dataset.store.smears import SmearsPart
from dataset.store.splits import SplitsPart
from dataset.store.stats import StatsPart
from dataset.store.tiles import TilesPart


class Store(
    ConfigPart,
    SmearsPart,
    TilesPart,
    RevisionsPart,
    SkipsPart,
    SplitsPart,
    StatsPart,
    ReviewsPart,
    SecondLabelsPart,
):
    """A SmearLab workspace (see :mod:`dataset.store` for its promises)."""

    @classmethod
    def open(cls, workspace: Path | str | None = None) -> Store:
        """Open (creating if needed) the workspace; defaults to the settings' workspace."""
        if workspace is None:
            from dataset.settings import get_settings

            workspace = get_settings().workspace
        root = Path(workspace)
        if root.exists() and not root.is_dir():
            raise StoreError(f"Workspace {root} is a file; give a folder path.")
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)
