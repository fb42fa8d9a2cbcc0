"""How a tile opens on the Label page: from its newest revision, or from a pre-fill.

Promises:
- :func:`open_tile` starts editing a tile where :meth:`dataset.store.Store.label_base` says
  the person starts: its newest saved revision, or, on a double-labelled tile's independent
  second label, that label's own newest revision, never the first mask. A tile without a
  saved mask opens from its :class:`Starter`'s pre-fill, or blank without a starter; a second
  label always opens blank (a model trained on the first mask would carry it). The clock
  starts once the pre-fill is on screen, not while it runs.
- :func:`current_starter` is the current segmentation model when it loads and predicts this
  workspace's classes, else the colour rules with a note saying why. A pre-fill is computed
  once per (workspace, model, class list, tile) per process.
- :func:`restart` changes what lies under an untouched blank tile when the toggle flips or
  another model became current, keeping its canvas and clock.
- :func:`prefill_toggle` draws "Start from a prediction" and says where pre-fills come from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import streamlit as st

from dataset.schema import ClassSchema
from dataset.store import SECOND, Store, TileInfo
from model_zoo import ZooError
from pages import _common
from pages import _label_session as session
from pages._label_session import RULES_ID, Editing
from pages._label_state import PREFILL_KEY, next_nonce, setting
from training.service import LoadedModel, Prefill, prefill


def open_tile(
    store: Store,
    tile: TileInfo,
    starter: Starter | None = None,
    view: session.View | None = None,
    annotator: str = "",
) -> Editing:
    """Start editing ``tile`` where ``annotator`` starts (:meth:`Store.label_base`): the newest
    revision of the label they work on, or, without one, a pre-fill (never on a second label).

    Args:
        starter: Where a tile without a saved mask gets its pre-fill; None: it opens blank.
        view: The zoom and pan to open at (the page's current one).
        annotator: The signed-in account (decides which label of a double-labelled tile).
    """
    begin = store.label_base(tile.tile_id, annotator)
    base, saved = begin.revision, begin.mask
    second = begin.lane == SECOND
    start = (
        starter.prefill(store, tile.tile_id) if base is None and starter and not second else None
    )
    # The clock starts once the pre-fill is on screen: its inference is no labelling time.
    return session.opened(
        tile.tile_id,
        base,
        saved,
        next_nonce(),
        time.monotonic(),
        start=start,
        view=view,
        lane=begin.lane,
    )


def restart(store: Store, editing: Editing, starter: Starter | None) -> Editing:
    """An untouched blank tile started again from ``starter``'s pre-fill (None: blank).

    The canvas (and any strokes on it) and the clock stay: only what lies under them changes,
    when the toggle is flipped or another model became current.
    """
    if starter is None or editing.second:  # a second label never starts from a prediction
        blank = editing.saved.copy()
        return replace(editing, mask=blank, source="manual", model_id=None, start=None)
    start = starter.prefill(store, editing.tile_id)
    return replace(editing.with_prefill(start, editing.nonce), start=start)


def prefill_name(model_id: str | None) -> str:
    """How the page names the source of a pre-fill."""
    if model_id == RULES_ID:
        return "the colour rules"
    return f"model {model_id}" if model_id else "an unrecorded model"


@st.cache_data(show_spinner="Pre-filling the tile…", max_entries=256)
def _cached_prefill(
    _store: Store,
    _loaded: LoadedModel | None,
    workspace: str,
    model_id: str,
    classes: tuple[str, ...],
    tile_id: str,
) -> Prefill:
    """``prefill`` once per (workspace, model, class list, tile): re-runs only read it back."""
    del workspace, model_id, classes  # the cache key; the pre-fill reads the store and model
    return prefill(_store, tile_id, _loaded)


@dataclass(frozen=True)
class Starter:
    """Where pre-fills come from on this run: the current model, else the colour rules.

    Attributes:
        loaded: The current model; None for the colour rules.
        note: Why the colour rules stand in although there is a model ("" when they don't).
    """

    loaded: LoadedModel | None
    note: str = ""

    @property
    def model_id(self) -> str:
        return self.loaded.model_id if self.loaded is not None else RULES_ID

    @property
    def earned(self) -> bool:
        """A model that beat the colour rules on its validation tiles (its card says so)."""
        if self.loaded is None:
            return False
        metrics = getattr(self.loaded.card, "metrics", None) or {}
        return metrics.get("beats_rules") is True

    def prefill(self, store: Store, tile_id: str) -> Prefill:
        schema = store.schema()
        key = (str(_common.workspace()), self.model_id, tuple(schema.names), tile_id)
        return _cached_prefill(store, self.loaded, *key)


def current_starter(schema: ClassSchema) -> Starter:
    """The current segmentation model when it predicts this workspace's classes, else rules."""
    try:
        loaded = _common.loaded_model()
    except (ZooError, OSError, ValueError) as exc:
        return Starter(None, f"The current model cannot be loaded ({exc}); colour rules instead.")
    if loaded is not None and list(loaded.card.classes) != list(schema.names):
        return Starter(
            None,
            f"Model {loaded.model_id} predicts {', '.join(loaded.card.classes)}, not this "
            f"workspace's {', '.join(schema.names)}: colour rules pre-fill instead.",
        )
    return Starter(loaded)


def prefill_toggle(schema: ClassSchema) -> Starter | None:
    """The "Start from a prediction" toggle and what it starts from (None when off)."""
    on = st.toggle(
        "Start from a prediction",
        value=bool(setting(PREFILL_KEY, True)),
        key=PREFILL_KEY,
        help="A tile without a saved mask opens with a predicted mask for you to correct, "
        "instead of blank. Its save is recorded as a pre-fill, with the model's id.",
    )
    if not on:
        st.caption("Tiles without a saved mask open blank.")
        return None
    starter = current_starter(schema)
    if starter.loaded is not None:
        earned = " The wand uses its cells." if starter.earned else ""
        st.caption(
            f"Tiles without a saved mask open with the prediction of model "
            f"`{starter.model_id}`.{earned}"
        )
    else:
        st.caption(
            "Tiles without a saved mask open with the colour rules' pre-fill (no model yet)."
        )
    if starter.note:
        st.info(starter.note)
    return starter
