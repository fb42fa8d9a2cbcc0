"""The one job-status panel of the Train, Suggestions and Diagnosis pages.

Promises:
- :func:`job_panel` shows the job of one kind that :func:`training.job_report.job_to_show`
  picks (the session's, else the newest of the kind) and draws its
  :class:`training.job_report.JobReport`: the message in the report's tone, a progress bar
  while it runs, Cancel while it may be cancelled, notes, the comparison table, the live
  curves and the log. What each state means and says is decided in
  :mod:`training.job_report`, never here.
- Only the job id is kept in ``st.session_state[session_key]``. While the job is unfinished the
  panel is a fragment polling every ``poll_s`` seconds; when it ends, the whole page re-runs
  once (a new model, new scores or a re-enabled Start button show at once).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dataset.roles import PermissionDenied
from pages import _common
from training.job_report import TRAIN_SERIES, Curve, JobReport, job_to_show, report
from training.jobs import JobError, JobRunner, UnknownJobError
from training.kinds import cancel_right

__all__ = ["job_panel"]

_TONES = {"info": st.info, "success": st.success, "warning": st.warning, "error": st.error}


def job_panel(
    workspace: Path,
    kind: str,
    *,
    session_key: str,
    poll_s: float = 2.0,
    colours: dict[str, str] | None = None,
    empty: str | None = None,
) -> str | None:
    """Draw the panel of the ``kind`` job this page shows; returns its id (None: no job).

    Args:
        session_key: Where the session keeps the job id (a submit stores the new id there).
        colours: Curve group name to "#rrggbb" (each class's IoU curve in its label colour).
        empty: Said when there is no job of ``kind`` yet; nothing is drawn when None.
    """
    status = job_to_show(workspace, kind, st.session_state.get(session_key))
    if status is None:
        st.session_state.pop(session_key, None)
        if empty:
            st.info(empty)
        return None
    st.session_state[session_key] = status.job_id
    live = not status.finished
    panel = st.fragment(_panel, run_every=poll_s if live else None)
    panel(str(workspace), status.job_id, live, session_key, colours or {})
    return status.job_id


def _panel(
    workspace: str, job_id: str, live_at_start: bool, key: str, colours: dict[str, str]
) -> None:
    runner = JobRunner(Path(workspace))
    try:
        status = runner.get(job_id)
    except UnknownJobError:
        st.info("The job is no longer in the workspace's job list.")
        st.session_state.pop(key, None)
        return
    if live_at_start and status.finished:
        st.rerun()  # the whole page: what the job produced shows, Start comes back
    shown = report(workspace, status)
    head = st.columns([4, 1], vertical_alignment="center")
    head[0].markdown(f"**{shown.title}** `{job_id}`")
    may_cancel = _common.actor().may(cancel_right(status.kind))
    if shown.live and head[1].button(
        shown.cancel_label,
        key=f"{key}_cancel",
        disabled=not (shown.can_cancel and may_cancel),
        help=shown.cancel_help if may_cancel else "Your role may not cancel this job.",
    ):
        try:
            status = runner.cancel(job_id, actor=_common.actor())
        except (JobError, PermissionDenied) as exc:
            st.error(f"Could not cancel: {exc}")
        shown = report(workspace, status)
    _message(shown)
    for note in shown.notes:
        _TONES.get(note.tone, st.info)(note.text)
    if shown.table:
        st.dataframe(pd.DataFrame(list(shown.table)), hide_index=True)
    if shown.curves:
        for column, curve in zip(
            st.columns(len(shown.curves), gap="large"), shown.curves, strict=True
        ):
            with column:
                _curve(curve, colours)
    with st.expander("Log", expanded=shown.log_open):
        tail = shown.log_tail
        st.code("\n".join(tail) if tail else "(nothing logged yet)", language=None)


def _message(shown: JobReport) -> None:
    if shown.tone == "progress":
        st.progress(shown.fraction or 0.0, text=shown.message)
    else:
        _TONES[shown.tone](shown.message)


def _curve(curve: Curve, colours: dict[str, str]) -> None:
    st.markdown(f"**{curve.title}**")
    if not curve.points:
        st.caption(curve.empty)
    else:
        frame = pd.DataFrame(list(curve.points), columns=[curve.x, curve.y, curve.group])
        st.altair_chart(_chart(frame, curve, colours), width="stretch")
    if curve.note:
        st.caption(curve.note)


def _chart(frame: pd.DataFrame, curve: Curve, colours: dict[str, str]):
    """A line chart with points (a single epoch still shows), coloured by ``colours``."""
    import altair as alt  # lazy: only a job with curves draws charts

    names = list(dict.fromkeys(frame[curve.group]))
    scale = alt.Scale()
    used = {n: c for n, c in colours.items() if n in names}
    if used:
        domain = list(used) + [n for n in names if n not in used]
        scale = alt.Scale(domain=domain, range=[used.get(n, "#212121") for n in domain])
    y_scale = alt.Scale(domain=[0, 1]) if curve.unit_range else alt.Scale(zero=True)
    base = alt.Chart(frame).encode(
        x=alt.X(f"{curve.x}:Q", title=curve.x),
        y=alt.Y(f"{curve.y}:Q", title=curve.y, scale=y_scale),
        color=alt.Color(
            f"{curve.group}:N", title=None, scale=scale, legend=alt.Legend(orient="bottom")
        ),
        tooltip=[curve.x, alt.Tooltip(f"{curve.y}:Q", format=".3f"), curve.group],
    )
    # Points mark the per-epoch values (so one epoch is visible); per-step loss is a line only.
    points = base.mark_point(filled=True, size=30).transform_filter(
        alt.datum[curve.group] != TRAIN_SERIES
    )
    return (base.mark_line() + points).properties(height=260)
