"""SmearLab's dataset package: the workspace store, ingest, masks, imports and releases.
(The patient registry is :mod:`training.diagnosis.registry`, beside the criteria it uses.)

Never imports Streamlit. Names below are loaded on first use, so a light submodule (such as
:mod:`dataset.durable`, which the job runner imports in every job process) does not pull in
Delta Lake and pyarrow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "UNLABELLED": "dataset.schema",
    "UNLABELLED_NAME": "dataset.schema",
    "ClassSchema": "dataset.schema",
    "SchemaError": "dataset.schema",
    "Settings": "dataset.settings",
    "get_settings": "dataset.settings",
    "NewSmear": "dataset.store",
    "Revision": "dataset.store",
    "RevisionConflict": "dataset.store",
    "Store": "dataset.store",
    "StoreError": "dataset.store",
    "TileInfo": "dataset.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dataset' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
