"""Suggestions page: which unlabelled tiles to label next, and why.

What it promises the person labelling:
- Scores come from a background job (:func:`training.service.submit_scoring`); the page only
  reads stored scores (``suggest(..., score_missing=False)``), so it never scores inline and
  never waits on the job, which the shared job panel (``pages/_jobs_panel.py``) shows.
- Each suggested tile is shown with a heat map of where the current model is unsure,
  computed for the shown tiles only and cached per model and tile.
- "Label this" opens the Label page on that tile, with the suggestions offered as its order.
- Without a usable model only the random strategy is offered, and the page says why.
- When the scores do not separate the tiles (the top 20 within 1 % of each other), the page
  says so and shows a random order spread over smears instead (:func:`training.service.suggest`).
- The strategy and the spreading start at the default the shipped active-learning measurement
  earned (:func:`training.service.measured.measured_default`: random spread over smears unless
  a strategy beat random beyond the seed spread); the page shows that curve and says why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from dataset.store import Store, StoreError
from model_zoo import ZooError
from pages import _common
from pages._jobs_panel import job_panel
from training.job_report import active_job
from training.jobs import JobError
from training.kinds import SCORE
from training.service import (
    cached_scores,
    submit_scoring,
    suggest,
    unlabelled_tile_ids,
)
from training.service.measured import MeasuredDefault, measured_default
from training.strategies import STRATEGIES, uncertainty_map

JOB_KEY = "score_job_id"
LABEL_STRATEGY_KEY = "label_strategy"
POLL_S = 1.0
GRID_COLUMNS = 3


# ------------------------------------------------------------------------------ cached work
@st.cache_data(show_spinner=False, max_entries=512)
def _heat(_store: Store, workspace: str, model_id: str, strategy: str, tile_id: str) -> np.ndarray:
    """The tile's uncertainty as an RGB heat map (bright = unsure).

    ``workspace`` is part of the cache key only, so two workspaces never share a map.

    Shape:
        returns (h, w, 3) uint8.
    """
    from matplotlib import colormaps  # lazy: only this page draws heat maps

    loaded = _common.loaded_model(model_id)
    image = np.ascontiguousarray(_store.tile_image(tile_id))
    u = uncertainty_map(strategy, loaded.model, image, loaded.inference_config())
    rgb = colormaps["inferno"](np.clip(u, 0.0, 1.0))[..., :3]
    return (rgb * 255 + 0.5).astype(np.uint8)


# ------------------------------------------------------------------------------ the grid
def _open_label_page(tile_id: str, strategy: str, ranked: list[str]) -> None:
    st.session_state[_common.LABEL_TILE_KEY] = tile_id
    st.session_state[LABEL_STRATEGY_KEY] = strategy
    _common.set_label_queue(f"{strategy} suggestions", ranked)
    st.switch_page(_common.LABEL_PAGE)


def _grid(store: Store, workspace: str, suggestions, strategy: str, model_id: str | None) -> None:
    smears = {s.smear_id: s for s in store.smears()}
    ranked = [s.tile_id for s in suggestions]
    cols = st.columns(GRID_COLUMNS)
    for rank, item in enumerate(suggestions, 1):
        smear = smears.get(item.smear_id)
        name = (smear.label if smear and smear.label else item.smear_id)[:28]
        with cols[(rank - 1) % GRID_COLUMNS].container(border=True):
            where = "random order" if suggestions.order == "random" else f"score {item.score:.3f}"
            st.markdown(f"**#{rank}** · {where}  \n{name}")
            pics = st.columns(2)
            pics[0].image(store.tile_image(item.tile_id), caption="tile", width="stretch")
            if model_id is not None:
                try:
                    heat = _heat(store, workspace, model_id, strategy, item.tile_id)
                except (ZooError, StoreError, ValueError, OSError) as exc:
                    pics[1].caption(f"No heat map: {exc}")
                else:
                    pics[1].image(heat, caption="uncertainty", width="stretch")
            else:
                pics[1].caption("No model yet, so no uncertainty map.")
            if st.button("Label this", key=f"sugg_label_{item.tile_id}", width="stretch"):
                _open_label_page(item.tile_id, suggestions.order, ranked)


def _why_default(measured: MeasuredDefault) -> None:
    """The measured curve behind the default strategy, and one sentence on why."""
    with st.expander(
        f"Why the default is {measured.strategy}"
        + (" spread over smears" if measured.diversity else ""),
        expanded=False,
    ):
        st.markdown(measured.verdict)
        if not measured.rows:
            return
        import altair as alt  # lazy: only this chart needs it

        frame = alt.Data(values=measured.rows)
        x = alt.X("tiles:Q", title="labelled tiles", scale=alt.Scale(type="log", base=2))
        y = alt.Y("miou:Q", title="held-out mIoU", scale=alt.Scale(zero=False))
        lines = alt.Chart(frame).mark_line(point=True).encode(x=x, y=y, color="arm:N")
        band = (
            alt.Chart(frame)
            .mark_area(opacity=0.12)
            .encode(x=x, y="low:Q", y2="high:Q", color="arm:N")
        )
        st.altair_chart(band + lines, width="stretch")


# ------------------------------------------------------------------------------ page
def main() -> None:
    store = _common.setup("Suggestions", need="suggest")
    workspace = str(_common.workspace())
    st.title("Suggestions")
    st.caption(
        "The unlabelled tiles worth labelling next: those the current model is least sure "
        "about, spread over smears. Scoring runs in the background; tiles of the test split "
        "are never suggested."
    )
    _common.engine_caption(Path(workspace))
    schema = _common.schema_or_none(store)
    if schema is None or not store.tiles():
        st.info("There are no smears in this workspace yet. Add some on the **Upload** page.")
        return

    measured = measured_default()
    card = _common.current_card()
    if card is None:
        st.info(
            "Uncertainty scores need a trained segmentation model; train one on the **Train** "
            "page. Until then, the random strategy offers unlabelled tiles in a fixed random "
            "order, which is a fair way to start."
        )
        names = ["random"]
    elif list(card.classes) != list(schema.names):
        st.warning(
            f"The current model {card.model_id} predicts {', '.join(card.classes)}, but this "
            f"workspace labels {', '.join(schema.names)}; promote or train a matching model on "
            "the **Train** page. Only the random strategy is offered meanwhile."
        )
        card, names = None, ["random"]
    else:
        names = sorted(STRATEGIES, key=lambda n: (n != measured.strategy, n))

    top = st.columns([2, 1, 1], vertical_alignment="bottom")
    strategy = top[0].selectbox(
        "Strategy",
        names,
        format_func=lambda n: f"{n}: {STRATEGIES[n].description}",
        key="sugg_strategy",
        help="How tiles are ranked. Each strategy keeps its own scores per model. "
        f"The default, {measured.strategy}, is what the shipped measurement supports: "
        + measured.verdict,
    )
    if strategy not in names:  # the choice outlived its model
        strategy = names[0]
    top_n = top[1].selectbox("Show", [3, 6, 9, 12, 18, 24], index=1, key="sugg_top")
    spread = top[2].toggle(
        "Spread over smears",
        value=measured.diversity == "per_smear",
        key="sugg_spread",
        help="At most two tiles of one smear near the top of the list.",
    )
    _why_default(measured)

    model_id = card.model_id if card is not None else None
    score_id = model_id if strategy != "random" else "none"
    open_ids = unlabelled_tile_ids(store)
    scored = set(cached_scores(store, score_id, strategy)) & set(open_ids)
    busy = active_job(workspace, SCORE)
    row = st.columns([3, 1], vertical_alignment="center")
    if score_id == "none":
        done = "have a place in the **random** order"
    else:
        done = f"are scored with **{strategy}** by model {model_id}"
    row[0].markdown(f"**{len(scored)} of {len(open_ids)}** unlabelled tiles {done}.")
    if row[1].button(
        "Score unlabelled tiles",
        type="primary" if len(scored) < len(open_ids) else "secondary",
        disabled=busy is not None or not open_ids or len(scored) == len(open_ids),
        help="Runs in the background; tiles already scored by this model are skipped.",
        width="stretch",
    ):
        try:
            st.session_state[JOB_KEY] = submit_scoring(Path(workspace), strategy)
        except (JobError, ValueError, OSError) as exc:
            st.error(f"Scoring could not be queued: {exc}")
        else:
            st.rerun()

    job_panel(Path(workspace), SCORE, session_key=JOB_KEY, poll_s=POLL_S)

    if not open_ids:
        st.success("Every tile outside the test split is labelled or skipped.")
        return
    loaded = None
    if strategy != "random" and model_id is not None:
        try:
            loaded = _common.loaded_model(model_id)
        except (ZooError, ValueError, OSError) as exc:
            st.error(f"The model {model_id} cannot be loaded: {exc}")
            return
    try:
        suggestions = suggest(
            store,
            strategy,
            int(top_n),
            loaded=loaded,
            diversity="per_smear" if spread else None,
            score_missing=False,
        )
    except StoreError as exc:
        st.error(str(exc))
        return
    if not suggestions:
        st.info("No scores for this strategy and model yet: press **Score unlabelled tiles**.")
        return
    st.subheader("Label next")
    if suggestions.note:
        st.warning(suggestions.note)
    elif len(scored) < len(open_ids):
        st.caption(
            f"Ranked among the {len(scored)} scored tiles; score the rest for a complete ranking."
        )
    _grid(store, workspace, suggestions, strategy, model_id)


main()
