"""SmearLab's dataset package: the workspace store, ingest, masks, imports and releases.

Never imports Streamlit: the pages, the CLI (``python -m dataset``) and training share it.
"""

from dataset.schema import UNLABELLED, UNLABELLED_NAME, ClassSchema, SchemaError
from dataset.settings import Settings, get_settings
from dataset.store import NewSmear, Revision, RevisionConflict, Store, StoreError, TileInfo

__all__ = [
    "UNLABELLED",
    "UNLABELLED_NAME",
    "ClassSchema",
    "NewSmear",
    "Revision",
    "RevisionConflict",
    "SchemaError",
    "Settings",
    "Store",
    "StoreError",
    "TileInfo",
    "get_settings",
]
