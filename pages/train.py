"""Train page: start a segmentation run, watch it live, compare runs, promote or roll back.

What it promises the person training:
- **Train from scratch** queues a background job (:func:`training.service.submit_training`)
  and returns at once; the page never waits on it. **Update the current model** beside it
  queues a fine-tune of the current model (:func:`training.service.submit_update`: its own
  settings, all labelled train tiles, a short budget); it is disabled, with the reason, while
  there is no current model or it cannot be fine-tuned here. The run is shown by the shared
  job panel (``pages/_jobs_panel.py``: state, progress, loss and IoU curves, log, Cancel).
- Both are refused, with the reason, while the train or the validation split has no labelled
  tile, or while another training run is queued or running.
- A run that fails or is cancelled changes no model; a run that ends ``done`` adds its
  checkpoint to the zoo, and it becomes current only when it beat the current model (the colour
  rules while none is) on the run's validation tiles (:func:`training.service.select_model`).
  The page says who won and why, and which classes had no validation pixels to be scored on.
- Past runs are listed with their validation metrics side by side, the current one marked and
  the model each was fine-tuned from (its parent);
  promoting checks the model's classes against the workspace's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from dataset.roles import PermissionDenied
from dataset.store import Store
from model_zoo import ModelCard, Zoo, ZooError, flat_metrics, metric_columns
from pages import _common
from pages._jobs_panel import job_panel
from training.augment import STAIN_JITTER
from training.cluster import engine_address
from training.job_report import duration_text
from training.jobs import JobError, JobStatus
from training.metrics import absent_note
from training.model import ENCODERS
from training.segment import SegTrainConfig
from training.service import (
    TRAIN_KIND,
    RunConflictError,
    StartModelError,
    active_training,
    conflict_message,
    promote_model,
    rollback_model,
    split_counts,
    submit_training,
    submit_update,
    update_settings,
)

JOB_KEY = "train_job_id"
FLASH_KEY = "train_flash"
POLL_S = 2.0
_COUNT_METRICS = {"best_epoch", "epochs_run", "n_train_tiles", "n_val_tiles"}
_ENCODER_HELP = {
    "mobilenet_v2": "fastest; a good start on a CPU",
    "resnet18": "a little slower, often a little better",
    "resnet34": "slower; worth it with many labelled tiles",
    "efficientnet-b0": "small and accurate, slower on a CPU",
}


# ------------------------------------------------------------------------------ formatting
def _when(moment: dt.datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _num(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


# ------------------------------------------------------------------------------ start form
def _missing_note(missing: list[str]) -> str:
    return (
        f"No labelled tiles in the {' and the '.join(missing)} split yet. Training learns "
        "on train and checks itself on validation, so both need labelled tiles: "
        "label tiles of more smears (the Dataset page shows each smear's split)."
    )


def _start_form(workspace: Path, missing: list[str], busy: JobStatus | None) -> None:
    defaults = SegTrainConfig()
    with st.form("train_settings", border=True):
        st.markdown("**New model, from scratch**")
        cols = st.columns([2, 1, 1, 1])
        encoder = cols[0].selectbox(
            "Encoder",
            ENCODERS,
            index=ENCODERS.index(defaults.encoder) if defaults.encoder in ENCODERS else 0,
            help="The U-Net's backbone. "
            + "; ".join(f"**{e}**: {h}" for e, h in _ENCODER_HELP.items() if e in ENCODERS)
            + ".",
        )
        epochs = cols[1].number_input(
            "Epochs",
            min_value=1,
            max_value=500,
            value=defaults.epochs,
            help="At most this many passes; the run stops early when validation stops improving.",
        )
        minutes = cols[2].number_input(
            "Time budget (min)",
            min_value=0,
            max_value=24 * 60,
            value=30,
            help="The run stops after this many minutes, its learning rate falling over them, and "
            "keeps the end unless an earlier check was clearly better. 0: no limit.",
        )
        seed = cols[3].number_input(
            "Seed", min_value=0, value=defaults.seed, help="Same seed and data, same model."
        )
        workers = 1
        if engine_address(workspace) is not None:
            workers = st.number_input(
                "Workers on Ray",
                min_value=1,
                max_value=64,
                value=1,
                key="train_workers",
                help="Data-parallel training processes on the Ray cluster (ray_address), each "
                "with its share of the labelled tiles. One trains exactly as this machine would.",
            )
        jitter = st.checkbox(
            "Colour jitter",
            key="train_jitter",
            help="Vary brightness, contrast, saturation and hue while training, for smears of "
            "several stains or microscopes. Off by default: on one lab's smears it scored lower "
            "in the same time (BCCD white cells: 0.849 against 0.861 mIoU).",
        )
        if missing:
            st.warning(_missing_note(missing))
        elif busy is not None:
            st.info(conflict_message(busy))
        start = st.form_submit_button(
            "Train from scratch", type="primary", disabled=bool(missing) or busy is not None
        )
    if not start or not _common.permit("train"):
        return
    settings = {
        "encoder": encoder,
        "epochs": int(epochs),
        "time_budget_min": float(minutes) if minutes else None,
        "seed": int(seed),
        "workers": int(workers),
    }
    if jitter:
        settings["augment"] = STAIN_JITTER.model_dump()
    try:
        st.session_state[JOB_KEY] = submit_training(workspace, settings, actor=_common.actor())
    except (ValidationError, ValueError, JobError, RunConflictError, OSError) as exc:
        st.error(f"The run could not be queued: {exc}")
        return
    st.rerun()  # redraw with Start disabled and the new run's panel


def _update_box(workspace: Path, missing: list[str], busy: JobStatus | None) -> None:
    """Update the current model: what it will do, or why it cannot be pressed now."""
    with st.container(border=True):
        st.markdown("**Update the current model**")
        try:
            settings = update_settings(workspace)
        except StartModelError as exc:
            settings, reason = None, str(exc)
        else:
            reason = _missing_note(missing) if missing else None
            if reason is None and busy is not None:
                reason = conflict_message(busy)
            st.caption(
                f"Fine-tunes model {settings['init_from']} ({settings['encoder']}) on all "
                f"labelled train tiles for {settings['time_budget_min']:g} minutes, with its own "
                "settings. It becomes current only if it beats that model on the validation "
                "tiles."
            )
        if reason:
            st.caption(reason)
        pressed = st.button(
            "Update the current model",
            key="train_update",
            disabled=reason is not None,
            help="Faster than a new model: it starts from the current model's weights.",
        )
    if not pressed or not _common.permit("train"):
        return
    try:
        st.session_state[JOB_KEY] = submit_update(workspace, actor=_common.actor())
    except (
        StartModelError,
        ValidationError,
        ValueError,
        JobError,
        RunConflictError,
        OSError,
    ) as exc:
        st.error(f"The update could not be queued: {exc}")
        return
    st.rerun()


# ------------------------------------------------------------------------------ past runs
def runs_table(cards: list[ModelCard], current_id: str | None) -> pd.DataFrame:
    """One row per segmentation model, newest first, with its metrics side by side."""
    columns = metric_columns(cards)  # the zoo leaves out repeats and the selection's figures
    rows = []
    for card in reversed(cards):
        flat = flat_metrics(card.metrics)
        beats = card.metrics.get("beats_rules")
        rows.append(
            {
                "current": card.model_id == current_id,
                "model": card.model_id,
                "trained": _when(card.created_at),
                "encoder": card.settings.get("encoder", "-"),
                "parent": card.parent or "-",
                "time": duration_text(card.duration_s),
                "beats rules": "-" if beats is None else ("yes" if beats else "no"),
                **{c: flat.get(c) for c in columns},
            }
        )
    return pd.DataFrame(rows)


def _flash(kind: str, text: str) -> None:
    st.session_state[FLASH_KEY] = (kind, text)


def _promote(workspace: str, model_id: str) -> None:
    refused = _common.refusal("promote")
    if refused:
        _flash("error", refused)
        return
    try:
        change = promote_model(Path(workspace), model_id, actor=_common.actor())
    except (ZooError, ValueError, PermissionDenied) as exc:
        _flash("error", f"Not promoted: {exc}.")
        return
    note = " Unlabelled tiles are being re-scored with it." if change.rescoring else ""
    if change.card.metrics.get("beats_rules") is False:
        _flash(
            "warning",
            f"Model {model_id} is now the current model, although it did not beat the colour "
            f"rules on its validation tiles.{note}",
        )
        return
    _flash("success", f"Model {model_id} is now the current model.{note}")


def _rollback(workspace: str) -> None:
    refused = _common.refusal("promote")
    if refused:
        _flash("error", refused)
        return
    try:
        change = rollback_model(Path(workspace), "segmentation", actor=_common.actor())
    except (ZooError, ValueError, PermissionDenied) as exc:
        _flash("warning", f"Nothing rolled back: {exc}.")
        return
    _flash("success", f"Rolled back: model {change.card.model_id} is current again.")


def _runs(workspace: Path, store: Store) -> None:
    st.subheader("Runs")
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        getattr(st, flash[0])(flash[1])
    zoo = Zoo(workspace)
    try:
        cards = zoo.list("segmentation")
        current = zoo.current("segmentation")
    except ZooError as exc:
        st.error(f"The model list cannot be read: {exc}")
        return
    if not cards:
        st.caption("No model yet. A run that finishes adds its model here.")
        return
    current_id = current.model_id if current else None
    table = runs_table(cards, current_id)
    config = {
        "current": st.column_config.CheckboxColumn("current", help="Used by the other pages"),
        "mean_iou": st.column_config.NumberColumn("mean IoU", format="%.3f"),
        "mean_dice": st.column_config.NumberColumn("mean Dice", format="%.3f"),
    }
    for name in table.columns:
        if name.startswith(("iou/", "dice/")) or name == "pixel_accuracy":
            config[name] = st.column_config.NumberColumn(name, format="%.3f")
        elif name in _COUNT_METRICS:
            config[name] = st.column_config.NumberColumn(name.replace("_", " "), format="%d")
    st.dataframe(table, hide_index=True, column_config=config)
    st.caption(
        "Metrics are on the validation split, at each run's best epoch; a class without "
        "labelled pixels there has no IoU and is left out of the mean. **beats rules**: the "
        "model scored above the colour rules on its validation tiles. **parent**: the model a run "
        "was fine-tuned from (- for a start from scratch). The current model "
        "pre-fills the Label page, ranks Suggestions and segments smears on Analysis; a run "
        "becomes current only when it beats the model that was current."
    )
    newest = cards[-1]
    if newest.metrics.get("absent_classes"):
        st.caption(f"Newest run {newest.model_id}: {absent_note(newest.metrics['absent_classes'])}")

    ids = [c.model_id for c in reversed(cards)]
    by_id = {c.model_id: c for c in cards}

    def describe(model_id: str) -> str:
        card = by_id[model_id]
        mark = " (current)" if model_id == current_id else ""
        miou = _num(card.metrics.get("mean_iou"))
        return f"{model_id}{mark} · mean IoU {miou} · {card.settings.get('encoder', '?')}"

    schema = _common.schema_or_none(store)
    row = st.columns([3, 1, 1], vertical_alignment="bottom")
    chosen = row[0].selectbox("Model", ids, format_func=describe, key="train_model_pick")
    row[1].button(
        "Promote",
        on_click=_promote,
        args=(str(workspace), chosen),
        disabled=chosen == current_id or schema is None,
        help="Make this model the current one.",
        width="stretch",
    )
    row[2].button(
        "Roll back",
        on_click=_rollback,
        args=(str(workspace),),
        help="Return to the model that was current before this one.",
        width="stretch",
    )


# ------------------------------------------------------------------------------ page
def main() -> None:
    store = _common.setup("Train", need="train")
    workspace = _common.workspace()
    st.title("Train")
    st.caption(
        "Train a U-Net on the labelled tiles. It learns on the train split, checks itself on "
        "the validation split (keeping the end of the run unless an earlier check did clearly "
        "better), and never looks at the test split."
    )
    _common.engine_caption(workspace)
    counts = split_counts(store)
    cols = st.columns(3)
    cols[0].metric("Train tiles", counts["train"], help="Labelled tiles the model learns from")
    cols[1].metric(
        "Validation tiles", counts["validation"], help="Labelled tiles that pick the best epoch"
    )
    cols[2].metric("Test tiles", counts["test"], help="Kept aside; training never reads them")

    missing = [s for s in ("train", "validation") if counts[s] == 0]
    busy = active_training(workspace)
    left, right = st.columns([3, 2])
    with left:
        _start_form(workspace, missing, busy)
    with right:
        _update_box(workspace, missing, busy)
    st.subheader("Latest run")
    schema = _common.schema_or_none(store)
    job_panel(
        workspace,
        TRAIN_KIND,
        session_key=JOB_KEY,
        poll_s=POLL_S,
        colours=dict(zip(schema.names, schema.colors, strict=True)) if schema else {},
        empty="No run yet. Press **Train from scratch** or **Update the current model** above.",
    )
    _runs(workspace, store)


main()
