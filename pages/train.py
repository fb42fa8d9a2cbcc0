"""Train page: start a segmentation run, watch it live, compare runs, promote or roll back.

What it promises the person training:
- Start queues a background job (:func:`training.service.submit_training`) and returns at
  once; the page never waits on it. Only the job id is kept in the session, and the live panel
  polls :meth:`training.jobs.JobRunner.get` from a fragment while the job is unfinished.
- Start is refused, with the reason, while the train or the validation split has no labelled
  tile, or while another training run is queued or running.
- A run that fails or is cancelled changes no model; a run that ends ``done`` adds its
  checkpoint to the zoo, and it becomes current only when it beat the current model (the colour
  rules while none is) on the run's validation tiles (:func:`training.service.select_model`).
  The page says who won and why, and which classes had no validation pixels to be scored on.
- Past runs are listed with their validation metrics side by side and the current one marked;
  promoting checks the model's classes against the workspace's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from dataset.store import Store
from model_zoo import ModelCard, Zoo, ZooError, flat_metrics, metric_columns
from pages import _common
from training.jobs import JobError, JobRunner, JobState, JobStatus, UnknownJobError
from training.metrics import absent_note
from training.model import ENCODERS
from training.segment import SegTrainConfig
from training.service import (
    TRAIN_KIND,
    RunConflictError,
    active_training,
    conflict_message,
    promote_model,
    rollback_model,
    split_counts,
    submit_training,
)

JOB_KEY = "train_job_id"
FLASH_KEY = "train_flash"
POLL_S = 2.0
TRAIN_SERIES = "training (per step)"
_COUNT_METRICS = {"best_epoch", "epochs_run", "n_train_tiles", "n_val_tiles"}
_ENCODER_HELP = {
    "mobilenet_v2": "fastest; a good start on a CPU",
    "resnet18": "a little slower, often a little better",
    "resnet34": "slower; worth it with many labelled tiles",
    "efficientnet-b0": "small and accurate, slower on a CPU",
}


# ------------------------------------------------------------------------------ formatting
def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _when(moment: dt.datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _num(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


# ------------------------------------------------------------------------------ curves
def loss_curve(history: list[dict]) -> pd.DataFrame:
    """Long-form loss points: training loss per step, validation loss per epoch.

    The x axis is in epochs (a step inside epoch 3 of 10 steps sits at 2.1 .. 3.0), so both
    series share it.
    """
    rows = []
    for h in history:
        if h.get("phase") == "train" and isinstance(h.get("loss"), int | float):
            x = h["epoch"] - 1 + h["step"] / max(1, h.get("steps") or 1)
            rows.append({"epoch": x, "loss": h["loss"], "series": TRAIN_SERIES})
        elif h.get("phase") == "validate" and isinstance(h.get("val_loss"), int | float):
            rows.append({"epoch": float(h["epoch"]), "loss": h["val_loss"], "series": "validation"})
    return pd.DataFrame(rows, columns=["epoch", "loss", "series"])


def iou_curve(history: list[dict]) -> pd.DataFrame:
    """Long-form validation IoU per class (and the mean) at the end of every epoch."""
    rows = []
    for h in history:
        if h.get("phase") != "validate":
            continue
        for name, iou in (h.get("val_iou") or {}).items():
            if isinstance(iou, int | float):
                rows.append({"epoch": h["epoch"], "IoU": iou, "class": name})
        if isinstance(h.get("val_miou"), int | float):
            rows.append({"epoch": h["epoch"], "IoU": h["val_miou"], "class": "mean"})
    return pd.DataFrame(rows, columns=["epoch", "IoU", "class"])


def _chart(frame: pd.DataFrame, y: str, series: str, colours: dict[str, str]):
    """A line chart with points (a single epoch still shows), coloured by ``colours`` if given."""
    import altair as alt  # lazy: only the live panel draws charts

    names = list(dict.fromkeys(frame[series]))
    scale = alt.Scale()
    if colours:
        domain = [n for n in colours if n in names] + [n for n in names if n not in colours]
        scale = alt.Scale(domain=domain, range=[colours.get(n, "#212121") for n in domain])
    y_scale = alt.Scale(domain=[0, 1]) if y == "IoU" else alt.Scale(zero=True)
    base = alt.Chart(frame).encode(
        x=alt.X("epoch:Q", title="epoch"),
        y=alt.Y(f"{y}:Q", title=y, scale=y_scale),
        color=alt.Color(f"{series}:N", title=None, scale=scale, legend=alt.Legend(orient="bottom")),
        tooltip=["epoch", alt.Tooltip(f"{y}:Q", format=".3f"), series],
    )
    # Points mark the per-epoch values (so one epoch is visible); per-step loss is a line only.
    points = base.mark_point(filled=True, size=30).transform_filter(
        alt.datum[series] != TRAIN_SERIES
    )
    return (base.mark_line() + points).properties(height=260)


def _progress_line(progress: dict) -> tuple[float, str]:
    """Progress bar value and its text from the latest progress fields."""
    epoch, epochs = progress.get("epoch"), progress.get("epochs")
    step, steps = progress.get("step"), progress.get("steps")
    if not epoch or not epochs:
        return 0.0, "Preparing the data and the model…"
    done = (epoch - 1 + (step or 0) / max(1, steps or 1)) / epochs
    if progress.get("phase") == "validate":
        done = epoch / epochs
        where = f"Epoch {epoch} of {epochs}: validated"
    else:
        where = f"Epoch {epoch} of {epochs}, step {step} of {steps}"
    parts = [where]
    if isinstance(progress.get("loss"), int | float):
        parts.append(f"loss {progress['loss']:.3f}")
    if isinstance(progress.get("best_miou"), int | float):
        best = f"best mean IoU {progress['best_miou']:.3f}"
        if progress.get("best_epoch"):
            best += f" (epoch {progress['best_epoch']})"
        parts.append(best)
    if isinstance(progress.get("elapsed_s"), int | float):
        parts.append(_duration(progress["elapsed_s"]))
    return min(1.0, max(0.0, done)), " · ".join(parts)


# ------------------------------------------------------------------------------ the live run
def _latest_training_job(runner: JobRunner) -> str | None:
    for status in runner.list(limit=50):
        if status.kind == TRAIN_KIND:
            return status.job_id
    return None


def _run_panel(workspace: str, job_id: str, live_at_start: bool, colours: dict[str, str]) -> None:
    """The run's state, progress bar, curves, log and Cancel (a fragment while it is live).

    Args:
        colours: Class name to "#rrggbb", so each IoU curve has its class's label colour.
    """
    runner = JobRunner(Path(workspace))
    try:
        status = runner.get(job_id)
    except UnknownJobError:
        st.info("The last run is no longer in the workspace's job list.")
        st.session_state.pop(JOB_KEY, None)
        return
    if live_at_start and status.finished:
        st.rerun()  # the whole page: the runs table gains the new model, Start comes back

    head = st.columns([4, 1], vertical_alignment="center")
    head[0].markdown(f"**Run** `{job_id}`")
    if not status.finished:
        cancelling = status.cancel_requested
        if head[1].button(
            "Cancelling…" if cancelling else "Cancel",
            key="train_cancel",
            disabled=cancelling,
            help="Stop the run. A cancelled run keeps no model.",
        ):
            try:
                status = runner.cancel(job_id)
            except JobError as exc:
                st.error(f"Could not cancel the run: {exc}")

    if status.state == JobState.QUEUED:
        active = runner.active()
        if active is not None and active.job_id != job_id:
            st.info(f"Queued: waiting for the running {active.kind} job to finish.")
        else:
            st.info("Queued: the background worker is starting…")
    elif status.state == JobState.RUNNING:
        value, text = _progress_line(status.progress)
        st.progress(value, text="Cancelling… " + text if status.cancel_requested else text)
    elif status.state == JobState.DONE:
        result = status.result or {}
        ids = result.get("model_ids", [])
        current = Zoo(Path(workspace)).current("segmentation")
        is_current = current is not None and current.model_id in ids
        st.success(
            f"Finished in {_duration(status.duration_s)}: model {', '.join(ids) or '-'}, best "
            f"validation mean IoU {_num(result.get('mean_iou'))} (epoch "
            f"{result.get('best_epoch', '-')}). "
            + (
                "It is the current model."
                if is_current
                else "It is not the current model; compare it under Runs below and promote it "
                "to use it anyway."
            )
        )
        selection = result.get("selection")
        if selection:
            (st.info if is_current else st.warning)(f"**Why:** {selection['reason']}")
            st.dataframe(selection_table(selection), hide_index=True)
        elif result.get("absent_classes"):
            st.caption(absent_note(result["absent_classes"]))
    elif status.state == JobState.CANCELLED:
        st.warning("Cancelled. No model was kept; the current model is unchanged.")
    else:
        st.error(f"Training failed: {status.error or 'no reason was recorded'}")

    losses, ious = loss_curve(status.history), iou_curve(status.history)
    charts = st.columns(2, gap="large")
    with charts[0]:
        st.markdown("**Loss**")
        if losses.empty:
            st.caption("Appears after the first training step.")
        else:
            st.altair_chart(_chart(losses, "loss", "series", {}), width="stretch")
    with charts[1]:
        st.markdown("**Validation IoU per class**")
        if ious.empty:
            st.caption("Appears after the first epoch's validation.")
        else:
            st.altair_chart(_chart(ious, "IoU", "class", colours), width="stretch")
        absent = status.progress.get("val_absent")
        if absent:
            st.caption(absent_note(absent))
    with st.expander("Log", expanded=status.state == JobState.FAILED):
        tail = status.log_tail[-40:]
        st.code("\n".join(tail) if tail else "(nothing logged yet)", language=None)


# ------------------------------------------------------------------------------ start form
def _start_form(workspace: Path, counts: dict[str, int], busy: JobStatus | None) -> None:
    defaults = SegTrainConfig()
    missing = [s for s in ("train", "validation") if counts[s] == 0]
    with st.form("train_settings", border=True):
        st.markdown("**New run**")
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
            help="The run stops after this many minutes and keeps its best epoch. 0: no limit.",
        )
        seed = cols[3].number_input(
            "Seed", min_value=0, value=defaults.seed, help="Same seed and data, same model."
        )
        if missing:
            st.warning(
                f"No labelled tiles in the {' and the '.join(missing)} split yet. Training learns "
                "on train and picks its best epoch on validation, so both need labelled tiles: "
                "label tiles of more smears (the Dataset page shows each smear's split)."
            )
        elif busy is not None:
            st.info(conflict_message(busy))
        start = st.form_submit_button(
            "Start training", type="primary", disabled=bool(missing) or busy is not None
        )
    if not start:
        return
    settings = {
        "encoder": encoder,
        "epochs": int(epochs),
        "time_budget_min": float(minutes) if minutes else None,
        "seed": int(seed),
    }
    try:
        st.session_state[JOB_KEY] = submit_training(workspace, settings)
    except (ValidationError, JobError, RunConflictError, OSError) as exc:
        st.error(f"The run could not be queued: {exc}")
        return
    st.rerun()  # redraw with Start disabled and the new run's panel


# ------------------------------------------------------------------------------ past runs
def selection_table(selection: dict) -> pd.DataFrame:
    """The run's comparison: one row per contender (new model, current model or colour rules),
    its mean IoU and IoU per class on the validation tiles; "-" where a class has no pixels."""
    names = list(selection["per_class"])
    rows = []
    for name in names:
        if name == selection["model_id"]:
            role = "new model"
        elif name == "rules":
            role = "colour rules"
        else:
            role = "current model"
        miou = {
            selection["model_id"]: selection["new_miou"],
            selection["baseline"]: selection["baseline_miou"],
            "rules": selection["rules_miou"],
        }[name]
        row = {
            "": ("✔ " if name == selection["winner"] else "") + role,
            "model": name,
            "mean IoU": _num(miou),
        }
        row.update({c: _num(v) for c, v in selection["per_class"][name].items()})
        rows.append(row)
    return pd.DataFrame(rows)


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
                "time": _duration(card.duration_s),
                "beats rules": "-" if beats is None else ("yes" if beats else "no"),
                **{c: flat.get(c) for c in columns},
            }
        )
    return pd.DataFrame(rows)


def _flash(kind: str, text: str) -> None:
    st.session_state[FLASH_KEY] = (kind, text)


def _promote(workspace: str, model_id: str) -> None:
    try:
        change = promote_model(Path(workspace), model_id)
    except ZooError as exc:
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
    try:
        change = rollback_model(Path(workspace), "segmentation")
    except ZooError as exc:
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
        "model scored above the colour rules on its validation tiles. The current model "
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
    store = _common.setup("Train")
    workspace = _common.workspace()
    st.title("Train")
    st.caption(
        "Train a U-Net on the labelled tiles. It learns on the train split, keeps the epoch "
        "that does best on the validation split, and never looks at the test split."
    )
    counts = split_counts(store)
    cols = st.columns(3)
    cols[0].metric("Train tiles", counts["train"], help="Labelled tiles the model learns from")
    cols[1].metric(
        "Validation tiles", counts["validation"], help="Labelled tiles that pick the best epoch"
    )
    cols[2].metric("Test tiles", counts["test"], help="Kept aside; training never reads them")

    runner = JobRunner(workspace)
    _start_form(workspace, counts, active_training(workspace))
    job_id = st.session_state.get(JOB_KEY) or _latest_training_job(runner)
    st.subheader("Latest run")
    if job_id is None:
        st.info("No run yet. Choose the settings above and press **Start training**.")
    else:
        st.session_state[JOB_KEY] = job_id
        try:
            live = not runner.get(job_id).finished
        except UnknownJobError:
            live = False
        schema = _common.schema_or_none(store)
        colours = dict(zip(schema.names, schema.colors, strict=True)) if schema else {}
        panel = st.fragment(_run_panel, run_every=POLL_S if live else None)
        panel(str(workspace), job_id, live, colours)
    _runs(workspace, store)


main()
