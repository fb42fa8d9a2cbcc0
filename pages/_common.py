"""Helpers every SmearLab page shares: the page frame, the cached store, who is working.

Promises:
- A page works whether it runs under ``app.py``'s navigation or on its own (AppTest, a
  direct ``streamlit run pages/x.py``): it calls :func:`setup` first and never relies on
  the sidebar having run.
- One :class:`dataset.store.Store` per workspace path per process (``st.cache_resource``),
  the path taken from :func:`dataset.settings.get_settings` on every run.
- The annotator name lives in ``st.session_state["annotator"]`` (set by the sidebar), with
  the ``SMEARLAB_ANNOTATOR`` setting as its default.
- Other pages hand tiles to the Label page through :func:`goto_tile` and
  :func:`set_label_queue`; the Label page reads them with :func:`label_queue`.
- One loaded segmentation model per (workspace, checkpoint) per process
  (:func:`loaded_model`); which checkpoint is current is read on every call, so a promotion
  on the Train page reaches every page on its next run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from dataset.schema import ClassSchema
from dataset.settings import get_settings
from dataset.store import Store, StoreError

if TYPE_CHECKING:
    from training.service import LoadedModel

ANNOTATOR_KEY = "annotator"
LABEL_TILE_KEY = "label_tile_id"
LABEL_QUEUE_KEY = "label_queue"
LABEL_PAGE = "pages/label.py"


def setup(title: str) -> Store:
    """Frame a page (wide layout, tab title) and return the workspace's store."""
    _leave_legacy_pages_mode()
    st.set_page_config(page_title=f"{title} · SmearLab", layout="wide")
    try:
        return get_store()
    except (StoreError, OSError) as exc:
        st.error(
            f"The workspace {workspace()} cannot be opened: {exc} "
            "Set SMEARLAB_WORKSPACE to a folder you can write to and restart SmearLab."
        )
        st.stop()


def _leave_legacy_pages_mode() -> None:
    """Hand a page that Streamlit ran in its legacy ``pages/`` mode over to ``app.py``.

    Streamlit 1.67 runs the scripts of a ``pages/`` folder beside the entry script directly
    (its first multipage mode, without ``app.py``: no sidebar, every file listed) until the
    process's first ``st.navigation`` call, so a first visit to e.g. ``/label`` after a restart
    lands there. Clearing the flag and re-running lets ``app.py`` route the same page (the page
    hash is the url path in both modes). AppTest restores the legacy mode before every run and
    a re-run would drop the clicked button, so there the page draws the sidebar itself.
    """
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    if not PagesManager.uses_pages_directory:
        return
    PagesManager.uses_pages_directory = False
    if config.get_option("global.appTest"):
        sidebar()
    else:
        st.rerun()


def sidebar() -> None:
    """The shared sidebar: who is working (saved with every mask) and which workspace."""
    with st.sidebar:
        # No widget key: the name lives in ANNOTATOR_KEY, which outlives any one widget.
        name = st.text_input(
            "Your name",
            value=annotator(),
            placeholder="Name saved with your masks",
            help="Stored with every mask you save, so the lab knows who labelled what.",
        )
        st.caption(f"Workspace: `{workspace()}`")
    st.session_state[ANNOTATOR_KEY] = name.strip()


def workspace() -> Path:
    """The workspace folder of this process, absolute."""
    return Path(get_settings().workspace).expanduser().resolve()


@st.cache_resource(show_spinner=False)
def _open_store(path: str) -> Store:
    return Store.open(Path(path))


def get_store() -> Store:
    """The store of the configured workspace, opened once per process."""
    return _open_store(str(workspace()))


@st.cache_resource(show_spinner="Loading the segmentation model…", max_entries=4)
def _load_model(path: str, model_id: str) -> LoadedModel:
    from training.service import load_model

    loaded = load_model(Path(path), model_id)
    assert loaded is not None  # an explicit id either loads or raises
    return loaded


def loaded_model(model_id: str | None = None) -> LoadedModel | None:
    """A segmentation model of this workspace, loaded once per process.

    Args:
        model_id: The checkpoint; None for the current segmentation model, looked up on
            every call so that a promotion is picked up at once.

    Returns:
        None when ``model_id`` is None and no model has been trained yet.

    Raises:
        model_zoo.ZooError, OSError, ValueError: the checkpoint cannot be read or loaded.
    """
    from model_zoo import Zoo

    path = workspace()
    if model_id is None:
        card = Zoo(path).current("segmentation")
        if card is None:
            return None
        model_id = card.model_id
    return _load_model(str(path), model_id)


def current_card():
    """The current segmentation model's card, or None (no model yet, or an unreadable pointer,
    which is shown as an error so the page can carry on without a model)."""
    from model_zoo import Zoo, ZooError

    try:
        return Zoo(workspace()).current("segmentation")
    except ZooError as exc:
        st.error(f"The current model cannot be read: {exc}")
        return None


def annotator() -> str:
    """The name entered in the sidebar, else the configured default ("" when neither)."""
    name = st.session_state.get(ANNOTATOR_KEY)
    if name is None:
        name = get_settings().annotator
    return str(name).strip()


def schema_or_none(store: Store) -> ClassSchema | None:
    """The class schema, or None for a workspace nobody has set up yet."""
    try:
        return store.schema()
    except StoreError:
        return None


def swatch(color: str, text: str) -> str:
    """HTML for a colour chip followed by ``text`` (for legends next to widgets)."""
    return (
        f'<span style="display:inline-block;width:0.9em;height:0.9em;border-radius:2px;'
        f'background:{color};border:1px solid #0003;vertical-align:middle;margin-right:0.35em">'
        f"</span>{text}"
    )


def legend(schema: ClassSchema) -> None:
    """One line of colour chips naming every class."""
    chips = "&emsp;".join(swatch(c, n) for n, c in zip(schema.names, schema.colors, strict=True))
    st.markdown(chips, unsafe_allow_html=True)


def goto_tile(tile_id: str) -> None:
    """Open the Label page on ``tile_id`` (call from a button handler)."""
    st.session_state[LABEL_TILE_KEY] = tile_id
    st.switch_page(LABEL_PAGE)


def set_label_queue(name: str, tile_ids: Sequence[str]) -> None:
    """Offer ``tile_ids`` (in this order) as a tile order on the Label page, titled ``name``.

    The active-learning suggestions use this to hand their ranking to the labeller.
    """
    st.session_state[LABEL_QUEUE_KEY] = (name, list(tile_ids))


def label_queue() -> tuple[str, list[str]] | None:
    """The queue last set by :func:`set_label_queue`, if any."""
    queue = st.session_state.get(LABEL_QUEUE_KEY)
    return None if queue is None else (str(queue[0]), list(queue[1]))
