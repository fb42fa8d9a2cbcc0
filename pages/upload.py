"""Upload page: bring smear photos into the workspace, load the demo, set up the classes.

What it promises: several files go in at once with shared optional metadata; each file gets
one result row (added with its tile count, duplicate, or rejected with the reason), and a bad
file never stops the good ones. The class list can be edited until the first mask is saved.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dataset.demo import load_demo, workspace_is_empty
from dataset.ingest import MetaError, SmearMeta, ingest_files
from dataset.schema import DEFAULT_CLASSES, ClassSchema, SchemaError
from dataset.store import Store, StoreError
from pages import _common

RESULTS_KEY = "up_results"
FILE_TYPES = ["png", "jpg", "jpeg", "tif", "tiff", "bmp"]


def _remember(title: str, results: list) -> None:
    st.session_state[RESULTS_KEY] = (title, [r.to_json() for r in results])


def _demo_offer(store: Store) -> None:
    with st.container(border=True):
        st.markdown(
            "**This workspace is empty.** Try SmearLab on about a dozen real blood smears "
            "(BCCD, Giemsa-stained) that ship with it, or upload your own below."
        )
        if st.button("Load the demo smears", type="primary", key="up_demo"):
            bar = st.progress(0.0, text="Loading the demo smears…")
            demo = load_demo(store, _progress(bar, "demo files"), actor=_common.annotator())
            _remember("Demo", demo)
            st.rerun()


def _progress(bar, what: str):
    """An ``on_progress(done, total)`` that moves ``bar``."""

    def on_progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{done} of {total} {what} done")

    return on_progress


def _upload_form(store: Store) -> None:
    with st.form("up_form", clear_on_submit=True, border=True):
        files = st.file_uploader(
            "Smear images",
            type=FILE_TYPES,
            accept_multiple_files=True,
            help="PNG, JPEG, TIFF or BMP. The same picture uploaded twice is stored once.",
        )
        st.markdown("**About these smears** — optional, applies to every file of this upload")
        cols = st.columns(4)
        patient = cols[0].text_input(
            "Patient pseudonym",
            help="A code, never a real name. Smears of one patient stay in one data split.",
        )
        stain = cols[1].text_input("Stain", placeholder="e.g. Giemsa")
        magnification = cols[2].text_input("Magnification", placeholder="e.g. 100x")
        um_per_px = cols[3].number_input(
            "Micrometres per pixel", min_value=0.0, value=None, step=0.01, format="%.4f"
        )
        note = st.text_input("Note", placeholder="e.g. slide box 12, thin end")
        submitted = st.form_submit_button("Add to workspace", type="primary")
    if not submitted:
        return
    if not files:
        st.warning("Choose one or more image files first.")
        return
    try:
        meta = SmearMeta(patient, stain, magnification, um_per_px or None, note)
    except MetaError as exc:
        st.error(f"Nothing was added: {exc}")
        return
    bar = st.progress(0.0, text=f"Reading {len(files)} files…")
    # One at a time, each read where Streamlit holds it: no copy of any upload's bytes.
    one_at_a_time = ((f.name, f) for f in files)
    results = ingest_files(
        store,
        one_at_a_time,
        meta,
        _progress(bar, "files"),
        total=len(files),
        actor=_common.annotator(),
    )
    bar.empty()
    _remember("This upload", results)
    # The header above the form was drawn before these smears were stored: run the page
    # again so its counts include them (the results are kept in the session).
    st.rerun()


def _results() -> None:
    remembered = st.session_state.get(RESULTS_KEY)
    if not remembered:
        return
    title, rows = remembered
    photos = [r for r in rows if "revisions" not in r]
    masks = [r for r in rows if "revisions" in r]
    added = [r for r in photos if r["status"] == "added"]
    dupes = sum(r["status"] == "duplicate" for r in photos)
    bad = sum(r["status"] == "rejected" for r in rows)
    summary = (
        f"{title}: {len(added)} smears added ({sum(r['tiles'] for r in added)} tiles), "
        f"{dupes} duplicate, {bad} rejected."
    )
    if masks:
        n_masks = sum(r["status"] == "added" for r in masks)
        summary += f" {n_masks} masks imported ({sum(r['revisions'] for r in masks)} tiles)."
    (st.warning if bad else st.success)(summary)
    # A rejection's reason is the part the user must read in full: each gets its own line,
    # where a table cell would cut it off.
    for r in rows:
        if r["status"] == "rejected":
            st.error(f"**{r['input']}** was not added: {r.get('reason') or 'no reason given'}")
    table = pd.DataFrame(
        {
            "File": [r["input"] for r in rows],
            "Result": [("mask " if "revisions" in r else "") + r["status"] for r in rows],
            # A rejected file stored no tile: 0, never an empty value shown as "None".
            "Tiles": [
                int(r.get("revisions", r["tiles"]) or 0) if r["status"] != "rejected" else 0
                for r in rows
            ],
            "Smear": [r["smear_id"] or "" for r in rows],
            "Details": [
                " ".join(filter(None, [r.get("reason") or "", *(r.get("warnings") or [])]))
                for r in rows
            ],
        }
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "Tiles": st.column_config.NumberColumn(format="%d"),
            "Details": st.column_config.TextColumn(width="large"),
        },
    )


def _class_editor(store: Store) -> None:
    schema = _common.schema_or_none(store)
    with st.expander("Classes", expanded=schema is None):
        if store.schema_frozen():
            _common.legend(schema)
            st.caption(
                "Frozen: masks have been saved with these classes. "
                "Start a new workspace to label with other classes."
            )
            return
        shown = schema or ClassSchema.from_names(DEFAULT_CLASSES)
        st.caption(
            "Name the classes you will paint and pick their colours (#rrggbb). "
            "You can change them until the first mask is saved."
        )
        edited = st.data_editor(
            pd.DataFrame({"name": shown.names, "colour": shown.colors}),
            num_rows="dynamic",
            hide_index=True,
            key="up_classes",
            column_config={
                "name": st.column_config.TextColumn("Class", required=True),
                "colour": st.column_config.TextColumn(
                    "Colour", validate=r"^#[0-9a-fA-F]{6}$", help="#rrggbb, e.g. #7e57c2"
                ),
            },
        )
        _common.legend(shown)
        if st.button("Save classes", key="up_save_classes") and _common.permit("classes"):
            names = [str(n).strip() for n in edited["name"] if isinstance(n, str) and n.strip()]
            rows = edited[edited["name"].map(lambda n: isinstance(n, str) and bool(n.strip()))]
            defaults = ClassSchema.from_names(names).colors if names else ()
            colors = [
                str(c).strip().lower() if isinstance(c, str) and c.strip() else d
                for c, d in zip(rows["colour"], defaults, strict=True)
            ]
            try:
                saved = store.init(names, colors=colors)
            except (SchemaError, StoreError) as exc:
                st.error(str(exc))
            else:
                st.success(f"Saved {len(saved.names)} classes: {', '.join(saved.names)}.")


def main() -> None:
    store = _common.setup("Upload", need="upload")
    st.title("Upload smears")
    st.caption(
        "Add blood-smear photos to the workspace. Each is cut into tiles for labelling; "
        "metadata is optional."
    )
    if workspace_is_empty(store):
        _demo_offer(store)
    else:
        smears = store.smears()
        n_tiles = sum(s.n_tiles for s in smears)
        st.markdown(f"The workspace holds **{len(smears)} smears** in **{n_tiles} tiles**.")
    _upload_form(store)
    _results()
    _class_editor(store)


main()
