"""Analysis page: cell counts and class shares of one smear, from its segmentation.

What it promises:
- With a current model whose classes match the workspace, the whole smear is segmented by
  that model (:func:`training.service.analyze_smear`), once per smear and model per process.
  Without one, the labels saved for the smear are analysed instead, and the page says so.
- The figures are counts, shares and sizes of blood elements only. The page says plainly that
  a smear does not show glucose, so nothing here measures blood sugar.
- The table can be downloaded as CSV with the smear and the source (model id or labels).
- When a model segments the smear, its validation figures are shown beside the counts, with a
  warning when they are poor: a class IoU below 0.5, or a model that did not beat the colour
  rules (:func:`training.service.model_quality`).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dataset.store import Store, StoreError
from model_zoo import ZooError
from pages import _common
from training.analysis import SmearAnalysis, overlay
from training.service import ModelQuality, analyze_smear, model_quality

LABELS = "Saved labels"


# ------------------------------------------------------------------------------ cached work
@st.cache_data(show_spinner=False, max_entries=32)
def _analyse(_store: Store, workspace: str, smear_id: str, model_id: str | None, revisions: int):
    """``analyze_smear`` once per (smear, model); for labels, once per state of the labels.

    Args:
        workspace: Part of the cache key, so two workspaces never share an analysis.
        revisions: Version of the revisions table, so new labels give a new analysis.
    """
    del revisions  # part of the cache key only
    loaded = _common.loaded_model(model_id) if model_id else None
    analysis, mask, _ = analyze_smear(_store, smear_id, loaded)
    return analysis, mask


def analysis_table(analysis: SmearAnalysis) -> pd.DataFrame:
    """The class rows with shares in percent, for display."""
    rows = []
    for r in analysis.rows:
        rows.append(
            {
                "class": r.class_name,
                "pixels": r.pixels,
                "share of area %": None if r.pixel_share is None else 100 * r.pixel_share,
                "cells": r.count,
                "share of cells %": None if r.count_share is None else 100 * r.count_share,
                "mean size px": r.mean_object_px,
                "mean size µm²": r.mean_object_um2,
            }
        )
    return pd.DataFrame(rows)


def analysis_csv(analysis: SmearAnalysis, smear_id: str, source: str) -> bytes:
    """Every class row with the smear and the source (a model id or ``labels``)."""
    frame = pd.DataFrame(analysis.to_rows())
    frame.insert(0, "source", source)
    frame.insert(0, "smear_id", smear_id)
    return frame.to_csv(index=False).encode("utf-8")


def _validation(quality: ModelQuality) -> None:
    """The model's validation figures, and what makes its counts doubtful."""
    for warning in quality.warnings:
        st.warning(warning, icon=":material/warning:")
    figures = " · ".join(f"{c} {'–' if v is None else f'{v:.2f}'}" for c, v in quality.iou.items())
    miou = "–" if quality.miou is None else f"{quality.miou:.2f}"
    rules = "" if quality.rules_miou is None else f"; colour rules {quality.rules_miou:.2f}"
    st.caption(
        f"Validation of model {quality.model_id}: mean IoU {miou} (IoU per class: {figures})"
        f"{rules}." + (f" {quality.note}" if quality.note else "")
    )


# ------------------------------------------------------------------------------ page
def main() -> None:
    store = _common.setup("Analysis", need="analyse")
    workspace = str(_common.workspace())
    st.title("Analysis")
    st.caption(
        "Cell counts and class shares of one smear, taken from its segmentation. These describe "
        "the blood cells only: glucose is not visible in a smear, so nothing here measures "
        "blood sugar."
    )
    schema = _common.schema_or_none(store)
    smears = {s.smear_id: s for s in store.smears()}
    if schema is None or not smears:
        st.info("There are no smears in this workspace yet. Add some on the **Upload** page.")
        return

    card = _common.current_card()
    usable = card is not None and list(card.classes) == list(schema.names)

    top = st.columns(2, vertical_alignment="bottom")
    smear_id = top[0].selectbox(
        "Smear",
        list(smears),
        format_func=lambda s: smears[s].label or s,
        key="ana_smear",
    )
    sources = ([f"Current model ({card.model_id})"] if usable else []) + [LABELS]
    source = top[1].radio(
        "Counted from", sources, horizontal=True, key="ana_source", help="Where the mask comes from"
    )
    if card is None:
        st.info(
            "No trained model yet, so this analyses the labels saved for this smear. Train a "
            "model on the **Train** page to segment whole smears."
        )
    elif not usable:
        st.warning(
            f"The current model {card.model_id} predicts {', '.join(card.classes)}, but this "
            f"workspace labels {', '.join(schema.names)}; the saved labels are analysed instead."
        )
    model_id = card.model_id if usable and source != LABELS else None

    revisions = store.table_versions().get("revisions", 0) if model_id is None else 0
    spinner = f"Segmenting the smear with model {model_id}…" if model_id else "Counting the labels…"
    try:
        with st.spinner(spinner):
            analysis, mask = _analyse(store, workspace, smear_id, model_id, revisions)
    except (StoreError, ZooError, ValueError, OSError) as exc:
        st.error(f"This smear could not be analysed: {exc}")
        return

    if model_id is not None:
        _validation(model_quality(card))
    if model_id is None and analysis.labelled_pixels == 0:
        st.info(
            "No tile of this smear is labelled yet, so there is nothing to count. Label some on "
            "the **Label** page, or train a model to segment the whole smear."
        )
        return

    left, right = st.columns([3, 2], gap="large")
    with left:
        show = st.toggle("Show the segmentation", value=True, key="ana_overlay")
        image = store.smear_image(smear_id)
        st.image(overlay(image, mask, schema.palette()) if show else image, width="stretch")
        _common.legend(schema)
    with right:
        total = analysis.height * analysis.width
        cells = sum(r.count or 0 for r in analysis.rows)
        m = st.columns(2)
        m[0].metric("Cells counted", cells, help="Objects of every class that is not background")
        m[1].metric(
            "Area counted",
            f"{100 * analysis.labelled_pixels / total:.0f} %" if total else "-",
            help="Share of the smear with a class; unlabelled pixels are left out of all shares",
        )
        for r in analysis.rows:
            if r.count_share is not None:
                st.progress(
                    r.count_share, text=f"{r.class_name}: {100 * r.count_share:.1f} % of cells"
                )
        if model_id is None:
            st.caption(
                "Counted from the saved labels: only labelled tiles count, so shares describe "
                "the labelled area, not the whole smear."
            )
        else:
            note = (
                " Touching red cells are counted one by one."
                if "erythrocyte" in schema.names
                else ""
            )
            st.caption(f"Segmented by model {model_id}.{note}")

    st.subheader("Per class")
    st.dataframe(
        analysis_table(analysis),
        hide_index=True,
        column_config={
            "share of area %": st.column_config.NumberColumn(format="%.1f"),
            "share of cells %": st.column_config.NumberColumn(format="%.1f"),
            "mean size px": st.column_config.NumberColumn(format="%.0f"),
            "mean size µm²": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    if analysis.um_per_px is None:
        st.caption("Sizes in µm² need the pixel size, entered with the smear on Upload.")
    src = model_id or "labels"
    st.download_button(
        "Download CSV",
        analysis_csv(analysis, smear_id, src),
        file_name=f"analysis_{smear_id[:12]}_{src}.csv",
        mime="text/csv",
        icon=":material/download:",
    )


main()
