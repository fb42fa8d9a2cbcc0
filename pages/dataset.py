"""Dataset page: how far labelling has come, what the masks contain, and the releases.

What it promises: counts, pixels per class and labelling time per tile by how the tile was
started (hand-painted or a corrected pre-fill, with the caveat that this is observational) read
from the store as it is now; each smear with its split (train, validation or test) and its
labelled tiles; the agreement between the two independent labels of the double-labelled
tiles (Dice and IoU per annotator pair and class, with the tiles behind each figure,
:func:`dataset.agreement.agreement`, also ``python -m dataset agreement``); recent tiles shown
with their masks; releases listed, created
(version + message; approved tiles only, and people named or counted by role, as chosen)
and downloadable as a zip or as PNG masks with a class legend.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dataset.agreement import agreement
from dataset.leadtime import GROUPS, LeadTimeReport, lead_times
from dataset.masks import overlay
from dataset.overview import smear_overview
from dataset.release import create_release, export_release, list_releases
from dataset.schema import ClassSchema
from dataset.store import Revision, Store, StoreError
from pages import _common

RECENT = 12
GRID = 6
FLASH_KEY = "ds_flash"


@st.cache_data(show_spinner=False, max_entries=16)
def _pixel_counts(workspace: str, revisions_version: int) -> dict[str, int]:
    # Keyed by the revisions table version: re-read only after a save.
    return _common.get_store().class_pixel_counts()


def _metrics(store: Store) -> dict:
    stats = store.stats()
    cols = st.columns(5)
    cols[0].metric("Smears", stats["smears"])
    cols[1].metric("Tiles", stats["tiles"])
    share = f"{stats['labelled'] / stats['tiles']:.0%} of tiles" if stats["tiles"] else None
    cols[2].metric("Labelled", stats["labelled"], delta=share, delta_color="off", delta_arrow="off")
    cols[3].metric("Skipped", stats["skipped"])
    median = stats["median_seconds_per_tile"]
    cols[4].metric("Median time per tile", "–" if median is None else f"{median:.0f} s")
    return stats


def _class_chart(store: Store, schema: ClassSchema) -> None:
    counts = _pixel_counts(str(store.root), store.table_versions()["revisions"])
    data = pd.DataFrame(
        {"class": list(schema.names), "pixels": [counts.get(n, 0) for n in schema.names]}
    )
    st.markdown("**Pixels per class** (latest masks of labelled tiles)")
    if not data["pixels"].sum():
        st.caption("No labelled pixels yet.")
        return
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("pixels:Q", title="pixels"),
            y=alt.Y("class:N", sort=list(schema.names), title=None),
            color=alt.Color(
                "class:N",
                scale=alt.Scale(domain=list(schema.names), range=list(schema.colors)),
                legend=None,
            ),
            tooltip=["class", alt.Tooltip("pixels:Q", format=",")],
        )
        .properties(height=40 * len(schema.names) + 20)
    )
    st.altair_chart(chart, width="stretch")
    if counts.get("unlabelled"):
        st.caption(f"{counts['unlabelled']:,} pixels of labelled tiles are still unlabelled.")


@st.cache_data(show_spinner=False, max_entries=16)
def _lead_times(workspace: str, revisions_version: int) -> LeadTimeReport:
    # Keyed by the revisions table version: re-read only after a save.
    return lead_times(_common.get_store())


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} s"


def _lead_time_section(store: Store) -> None:
    report = _lead_times(str(store.root), store.table_versions()["revisions"])
    st.markdown("**Labelling time** per tile, at its first labelling, by how it was started")
    if not report.first_labellings:
        st.caption(
            "No timed first labellings yet: times appear once tiles are saved on the Label page."
        )
        return
    points = pd.DataFrame(
        {
            "started as": [f.group for f in report.first_labellings],
            "seconds": [f.seconds for f in report.first_labellings],
            "model": [f.model_id or "" for f in report.first_labellings],
        }
    )
    colour = alt.Color("started as:N", sort=list(GROUPS), legend=None)
    y = alt.Y("started as:N", sort=list(GROUPS), title=None)
    base = alt.Chart(points)
    chart = (
        base.mark_boxplot(extent="min-max", opacity=0.5).encode(
            x=alt.X("seconds:Q"), y=y, color=colour
        )
        + base.mark_tick(thickness=1).encode(
            x="seconds:Q", y=y, color=colour, tooltip=["started as", "model", "seconds"]
        )
    ).properties(height=40 * len(GROUPS) + 20)
    st.altair_chart(chart, width="stretch")
    rows = [*report.groups, *report.models]
    st.table(
        pd.DataFrame(
            {
                "Started as": [
                    *(g.name for g in report.groups),
                    *(f"model {m.name}" for m in report.models),
                ],
                "Tiles": [r.tiles for r in rows],
                "Median": [_seconds(r.median_seconds) for r in rows],
                "IQR": [
                    "–" if r.q1_seconds is None else f"{r.q1_seconds:.0f}–{r.q3_seconds:.0f} s"
                    for r in rows
                ],
                "Mean labelled px": [
                    "–" if r.mean_labelled_px is None else f"{r.mean_labelled_px:,.0f}"
                    for r in rows
                ],
            }
        ).set_index("Started as")
    )
    for comparison in report.comparisons:
        (st.markdown if comparison.ratio is not None else st.caption)(comparison.sentence)
    skipped = []
    if report.untimed:
        skipped.append(f"{report.untimed} first labelled without a recorded time")
    if report.corrected_imports:
        skipped.append(f"{report.corrected_imports} first labelled by correcting an import")
    if skipped:
        st.caption(f"Not counted: {'; '.join(skipped)}.")
    st.caption(report.note)


def _expected_saving() -> None:
    """The current model's pre-fill saving, simulated when its run was selected."""
    from training.service import expected_saving

    card = _common.current_card()
    if card is None:
        return
    sentence = expected_saving(card)
    st.markdown("**Expected saving** of the current model's pre-fill")
    st.caption(
        sentence
        or f"Model {card.model_id} was trained before SmearLab recorded this figure; it "
        "appears with the next training run."
    )


def _smears(store: Store) -> None:
    rows = smear_overview(store)
    st.subheader("Smears and their splits")
    per_split = {
        split: sum(r.labelled for r in rows if r.split == split)
        for split in ("train", "validation", "test")
    }
    st.caption(
        "Training learns on the **train** split and checks itself on **validation**; "
        "**test** is kept aside for releases. A smear (or every smear of one patient) sits in "
        "one split only. Labelled tiles now: "
        + ", ".join(f"{n} {split}" for split, n in per_split.items())
        + "."
    )
    st.dataframe(
        pd.DataFrame(
            {
                "Smear": [r.label or r.smear_id for r in rows],
                "Patient": [r.patient or "" for r in rows],
                "Split": [r.split for r in rows],
                "Tiles": [r.tiles for r in rows],
                "Labelled": [r.labelled for r in rows],
                "Skipped": [r.skipped for r in rows],
            }
        ),
        hide_index=True,
        width="stretch",
        key="ds_smears",
    )


def _agreement(store: Store) -> None:
    st.subheader("Agreement between annotators")
    share = store.double_label_share()
    report = agreement(store)
    st.caption(
        f"A share of tiles ({share:.0%}, setting double_label_share, chosen by a hash of the "
        "tile id) is labelled twice, independently: the second annotator never sees the first "
        "mask. Dice and IoU compare the two masks per class over the pixels both labelled; "
        "tiles counts the double-labelled tiles where the class appears. Training and releases "
        "use the first label until a reviewer picks one on the Review page."
    )
    if not report.rows:
        st.info(
            "No double-labelled tile has both labels yet: a second annotator opening a tile of "
            "the share that someone else labelled gives its second label."
        )
        return
    st.dataframe(
        pd.DataFrame(
            {
                "Annotators": [f"{r.annotator_a} / {r.annotator_b}" for r in report.rows],
                "Class": [r.class_name for r in report.rows],
                "Dice": [round(r.dice, 3) for r in report.rows],
                "IoU": [round(r.iou, 3) for r in report.rows],
                "Tiles": [r.n_tiles for r in report.rows],
            }
        ),
        hide_index=True,
        width="stretch",
        key="ds_agreement",
    )
    pairs = ", ".join(f"{pair} {n}" for pair, n in report.pairs.items())
    st.caption(f"{report.n_tiles} double-labelled tiles compared ({pairs}).")


def _recent_tiles(store: Store, schema: ClassSchema) -> None:
    latest = sorted(store.latest_revisions().values(), key=lambda r: r.created_at, reverse=True)
    st.subheader("Recently saved tiles")
    if not latest:
        st.caption("Masks appear here once tiles are saved on the Label page.")
        return
    palette = schema.palette()
    shown = latest[:RECENT]
    for row in range(0, len(shown), GRID):
        for col, rev in zip(st.columns(GRID), shown[row : row + GRID], strict=False):
            with col:
                _tile_card(store, rev, palette)


def _tile_card(store: Store, rev: Revision, palette: np.ndarray) -> None:
    try:
        image = overlay(
            np.asarray(store.tile_image(rev.tile_id)), store.mask(rev.tile_id), palette, 0.5
        )
    except StoreError:
        st.caption("Tile no longer stored.")
        return
    who = rev.annotator or rev.source
    who = who if len(who) <= 16 else who[:15] + "…"
    took = f" · {rev.seconds:.0f} s" if rev.seconds is not None else ""
    st.image(image, caption=f"rev {rev.revision} · {who}{took}", width="stretch")
    if st.button("Open", key=f"ds_open_{rev.tile_id}", width="stretch"):
        _common.goto_tile(rev.tile_id)


def _export_bytes(store: Store, version: str, fmt: str) -> Callable[[], bytes]:
    """Deferred export: runs only when the download is clicked."""
    actor = _common.actor()  # read now, in the script run; the download runs outside it

    def build() -> bytes:
        refused = _common.refusal("export")
        if refused:  # the role changed since the button was drawn
            raise PermissionError(refused)
        with tempfile.TemporaryDirectory() as tmp:
            return export_release(store, version, fmt, Path(tmp), actor=actor).read_bytes()

    return build


def _releases(store: Store, stats: dict) -> None:
    st.subheader("Releases")
    st.caption(
        "A release freezes the labelled tiles, their split and the class list under a version; "
        "it never changes afterwards. Train and compare models on releases."
    )
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        st.success(flash)
    releases = list_releases(store)
    left, right = st.columns([3, 2], gap="large")
    with left:
        if not releases:
            st.caption("No releases yet.")
        else:
            st.dataframe(
                pd.DataFrame(
                    {
                        "Version": [r.version for r in releases],
                        "Created": [r.created_at for r in releases],
                        "Tiles": [r.n_tiles for r in releases],
                        **{
                            split.capitalize(): [r.counts.get(split, 0) for r in releases]
                            for split in ("train", "validation", "test")
                        },
                        "Message": [r.message for r in releases],
                    }
                ),
                hide_index=True,
                width="stretch",
            )
        if releases and not _common.actor().may("export"):
            st.caption("Downloading a release (an export) is for an admin.")
        elif releases:
            version = st.selectbox(
                "Download release", [r.version for r in reversed(releases)], key="ds_dl_version"
            )
            a, b = st.columns(2)
            a.download_button(
                "Release (.zip)",
                data=_export_bytes(store, version, "zip"),
                file_name=f"smearlab-release-{version}.zip",
                mime="application/zip",
                key="ds_dl_zip",
                width="stretch",
            )
            b.download_button(
                "PNG masks + legend (.zip)",
                data=_export_bytes(store, version, "png-masks"),
                file_name=f"smearlab-release-{version}-masks.zip",
                mime="application/zip",
                key="ds_dl_png",
                width="stretch",
            )
    if not _common.actor().may("release"):
        right.caption("Creating a release is for a reviewer or an admin.")
        return
    with right, st.form("ds_release", clear_on_submit=False, border=True):
        st.markdown("**New release**")
        version = st.text_input("Version", placeholder="e.g. 1.0.0 (higher than the last)")
        message = st.text_input("Message", placeholder="What changed since the last release")
        review = store.review_counts()
        approved_only = st.checkbox(
            f"Approved tiles only ({review['approved']} of {stats['labelled']} labelled)",
            key="ds_approved_only",
            help="Leave out the tiles whose latest revision no reviewer approved yet.",
        )
        name_people = st.checkbox(
            "Name annotators and reviewers",
            key="ds_name_people",
            help="Off: the release's annotator column holds a pseudonymous account key (the "
            "same in every release of this workspace) and the card counts people per role. "
            "On: their account names appear in the column and the card.",
        )
        create = st.form_submit_button(
            "Create release", type="primary", disabled=not stats["labelled"]
        )
        if not stats["labelled"]:
            st.caption("Label at least one tile first.")
    if create and _common.permit("release"):
        _create(store, version.strip(), message.strip(), approved_only, name_people)


def _create(
    store: Store, version: str, message: str, approved_only: bool, name_people: bool
) -> None:
    if not version or not message:
        st.warning("Give the release a version (e.g. 1.0.0) and a message saying what changed.")
        return
    bar = st.progress(0.0, text="Writing the release…")

    def on_progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{done} of {total} tiles written")

    try:
        info = create_release(
            store,
            version,
            message,
            on_progress=on_progress,
            approved_only=approved_only,
            name_people=name_people,
            actor=_common.actor(),
        )
    except (ValueError, OSError) as exc:
        bar.empty()
        st.error(f"No release was created: {exc}")
        return
    bar.empty()
    st.session_state[FLASH_KEY] = f"Release {info.version} created with {info.n_tiles} tiles."
    st.rerun()


def main() -> None:
    store = _common.setup("Dataset", need="view_dataset")
    st.title("Dataset")
    schema = _common.schema_or_none(store)
    stats = _metrics(store)
    if schema is None or not stats["smears"]:
        st.info("No smears yet. Add some on the **Upload** page, then label them.")
        return
    _common.legend(schema)
    left, right = st.columns(2, gap="large")
    with left:
        _class_chart(store, schema)
    with right:
        _lead_time_section(store)
        _expected_saving()
    _smears(store)
    _agreement(store)
    _recent_tiles(store, schema)
    _releases(store, stats)


main()
