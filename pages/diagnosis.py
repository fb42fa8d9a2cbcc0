"""Diagnosis page: decision support for a clinician, for research use, not a diagnosis.

What it promises:
- Every screen says that this is decision support for a clinician, for research use, and not
  a diagnosis; patients are found and created by pseudonym only, never a name.
- For a visit: the WHO / ADA / NICE table with what fired and the notes, the classifier's
  probabilities with their explanation and caveats (including when it cannot tell type 1
  from type 2), the HbA1c and fasting-glucose trend, and a form to confirm or correct the
  diagnosis (a correction is a new confirmation; the history stays).
- Training queues a background job (``training.diagnosis.service:train_job``) and never
  blocks the page; its cross-validated metrics are shown with the current model.
All logic lives in :mod:`dataset.registry` and :mod:`training.diagnosis.service`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from dataset.registry import (
    DIAGNOSES,
    DIAGNOSIS_LABELS,
    PSEUDONYM_RULE,
    Registry,
    RegistryError,
    Visit,
    VisitMapping,
)
from model_zoo import Zoo, ZooError
from pages import _common
from training.diagnosis import DISCLAIMER, MeasurementError
from training.diagnosis.criteria import LABELS
from training.diagnosis.service import (
    TRAIN_JOB_KIND,
    DiagnosisError,
    TrainRequest,
    load_model,
    model_warnings,
    patient_forecast,
    predict_visit,
    submit_training,
    visit_from_entry,
    visit_rules,
)
from training.jobs import JobError, JobRunner, JobState, UnknownJobError

PATIENT_KEY = "dx_patient"
JOB_KEY = "dx_train_job"
POLL_S = 2.0
EXAMPLE_MAPPING = """{
  "columns": {"patient": "PatientID", "date": "VisitDate", "hba1c": "A1c", "fpg": "FPG"},
  "units": {"glucose": "mg/dL", "hba1c": "percent"},
  "date_format": "%Y-%m-%d"
}"""


@st.cache_resource(show_spinner="Loading the diagnosis model…", max_entries=4)
def _model(workspace: str, model_id: str):
    """One loaded classifier per (workspace, model) per process."""
    return load_model(Path(workspace), model_id)


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# ------------------------------------------------------------------------------ patient
def _find_or_create(registry: Registry) -> str | None:
    st.subheader("Patient")
    st.caption(PSEUDONYM_RULE)
    query = st.text_input("Find by pseudonym", key="dx_find", placeholder="e.g. P-0042")
    found = registry.find_patients(query) if query else registry.patients()
    ids = [p.patient_id for p in found]
    current = st.session_state.get(PATIENT_KEY)
    if ids:
        index = ids.index(current) if current in ids else 0
        st.session_state[PATIENT_KEY] = st.selectbox("Patient", ids, index=index, key="dx_pick")
    elif query:
        st.caption("No patient matches.")
    with (
        st.expander("New patient", expanded=not ids),
        st.form("dx_new_patient", clear_on_submit=True),
    ):
        pseudonym = st.text_input(
            "Pseudonym (leave empty for a fresh one)", key="dx_new_id", help=PSEUDONYM_RULE
        )
        sex = st.selectbox("Sex", ["", "female", "male", "other"], key="dx_new_sex")
        year = st.number_input(
            "Birth year", 1900, dt.date.today().year, value=None, key="dx_new_year"
        )
        if st.form_submit_button("Add patient", key="dx_add_patient"):
            try:
                patient = registry.add_patient(
                    pseudonym.strip() or None,
                    sex=sex or None,
                    birth_year=None if year is None else int(year),
                )
            except RegistryError as exc:
                st.error(str(exc))
            else:
                st.session_state[PATIENT_KEY] = patient.patient_id
                st.session_state.pop("dx_pick", None)  # so the picker opens on the new patient
                st.rerun()
    return st.session_state.get(PATIENT_KEY)


def _visit_form(registry: Registry, store_smears: list[str], patient_id: str) -> None:
    with st.expander("New visit"), st.form("dx_new_visit", clear_on_submit=False):
        c = st.columns(3)
        date = c[0].date_input("Date", value=dt.date.today(), key="dx_v_date")
        hba1c_unit = c[1].selectbox("HbA1c unit", ["percent", "mmol/mol"], key="dx_v_au")
        glucose_unit = c[2].selectbox("Glucose unit", ["mmol/L", "mg/dL"], key="dx_v_gu")
        c = st.columns(5)
        hba1c = c[0].number_input("HbA1c", value=None, min_value=0.0, key="dx_v_a1c")
        fpg = c[1].number_input("Fasting glucose", value=None, min_value=0.0, key="dx_v_fpg")
        ogtt_1h = c[2].number_input("OGTT 1 h", value=None, min_value=0.0, key="dx_v_o1")
        ogtt_2h = c[3].number_input("OGTT 2 h", value=None, min_value=0.0, key="dx_v_o2")
        rnd = c[4].number_input("Random glucose", value=None, min_value=0.0, key="dx_v_rnd")
        c = st.columns(4)
        symptoms = c[0].checkbox("Classic symptoms", key="dx_v_sym")
        pregnant = c[1].checkbox("Pregnant", key="dx_v_preg")
        week = c[2].number_input("Pregnancy week", 1, 45, value=None, key="dx_v_week")
        treatment = c[3].text_input("Glucose-lowering treatment", key="dx_v_treat")
        c = st.columns(6)
        bmi = c[0].number_input("BMI", value=None, min_value=0.0, key="dx_v_bmi")
        sys_bp = c[1].number_input("Systolic", value=None, min_value=0.0, key="dx_v_sys")
        dia_bp = c[2].number_input("Diastolic", value=None, min_value=0.0, key="dx_v_dia")
        insulin = c[3].number_input("Insulin µU/mL", value=None, min_value=0.0, key="dx_v_ins")
        cpep = c[4].number_input("C-peptide nmol/L", value=None, min_value=0.0, key="dx_v_cp")
        gad = c[5].selectbox(
            "GAD antibodies", ["not tested", "positive", "negative"], key="dx_v_gad"
        )
        smears = st.multiselect("Linked smears", store_smears, key="dx_v_smears")
        if not st.form_submit_button("Add visit", key="dx_add_visit"):
            return
    try:
        visit = visit_from_entry(
            date,
            hba1c=hba1c,
            hba1c_unit=hba1c_unit,
            fpg=fpg,
            ogtt_1h=ogtt_1h,
            ogtt_2h=ogtt_2h,
            random_glucose=rnd,
            glucose_unit=glucose_unit,
            symptoms=symptoms,
            pregnant=pregnant or week is not None,
            pregnancy_week=None if week is None else int(week),
            treated=bool(treatment.strip()),
            treatment=treatment.strip() or None,
            bmi=bmi,
            systolic_bp=sys_bp,
            diastolic_bp=dia_bp,
            insulin_uu_ml=insulin,
            c_peptide_nmol=cpep,
            gad_positive=None if gad == "not tested" else gad == "positive",
            smear_ids=tuple(smears),
        )
        registry.add_visit(patient_id, visit, entered_by=_common.annotator())
    except (MeasurementError, RegistryError) as exc:
        st.error(f"The visit was not stored: {exc}")
        return
    st.rerun()


def _visits_table(registry: Registry, visits: list[Visit]) -> None:
    confirmed = registry.confirmed()
    rows = []
    for v in reversed(visits):
        c = confirmed.get(v.visit_id)
        rows.append(
            {
                "date": v.date,
                "HbA1c %": v.hba1c_percent,
                "fasting mmol/L": v.fpg_mmol,
                "OGTT 2 h mmol/L": v.ogtt_2h_mmol,
                "pregnant": v.pregnant,
                "treated": v.treated,
                "confirmed diagnosis": None if c is None else c.diagnosis,
                "by": None if c is None else c.confirmed_by,
                "visit": v.visit_id,
            }
        )
    fmt = st.column_config.NumberColumn(format="%.2f")
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        column_config={"HbA1c %": fmt, "fasting mmol/L": fmt, "OGTT 2 h mmol/L": fmt},
    )


# ------------------------------------------------------------------------------ one visit
def _guidelines(visit: Visit) -> None:
    st.markdown("**Guidelines**")
    results = visit_rules(visit)
    rows = []
    for name, result in results.items():
        fired = "; ".join(
            f"{LABELS[f.measurement]} {f.value:g} in {f.range} ({f.source})" for f in result.fired
        )
        rows.append({"guideline": name, "verdict": result.verdict, "fired": fired or "-"})
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    for name, result in results.items():
        for note in result.notes:
            st.caption(f"{name}: {note}")


def _classifier(workspace: str, registry: Registry, visit: Visit) -> None:
    st.markdown("**Classifier**")
    try:
        card = Zoo(Path(workspace)).current("diagnosis")
    except ZooError as exc:
        st.error(f"The diagnosis model cannot be read: {exc}")
        return
    if card is None:
        st.info("No diagnosis model yet: train one under **Classifier** below.")
        return
    try:
        loaded = _model(workspace, card.model_id)
        result = predict_visit(Path(workspace), registry, visit, loaded=loaded)
    except (DiagnosisError, RegistryError, OSError, ValueError) as exc:
        st.error(f"No prediction: {exc}")
        return
    probs = pd.DataFrame(
        {"class": list(result.probabilities), "probability": list(result.probabilities.values())}
    )
    st.bar_chart(probs, x="class", y="probability", horizontal=True, height=60 + 40 * len(probs))
    st.caption(
        f"Model {result.model_id}: most probable {result.predicted} "
        f"({result.probabilities[result.predicted]:.0%}), calibrated on held-out rows."
    )
    for warning in result.warnings:
        st.warning(warning)
    from training.diagnosis.explain import plot_explanation

    with st.expander("Why: each feature's share of the probability"):
        st.pyplot(plot_explanation(result.explanation))


def _confirm(registry: Registry, visit: Visit) -> None:
    st.markdown("**Confirm or correct the diagnosis**")
    history = registry.diagnosis_history(visit.visit_id)
    latest = history[-1] if history else None
    with st.form(f"dx_confirm_{visit.visit_id}"):
        index = DIAGNOSES.index(latest.diagnosis) if latest else 0
        diagnosis = st.selectbox(
            "Diagnosis",
            DIAGNOSES,
            index=index,
            format_func=lambda d: f"{d}: {DIAGNOSIS_LABELS[d]}",
            key="dx_c_diag",
        )
        by = st.text_input("Confirmed by", value=_common.annotator(), key="dx_c_by")
        note = st.text_input("Note", key="dx_c_note")
        label = "Correct" if latest else "Confirm"
        if st.form_submit_button(label, key="dx_confirm"):
            try:
                registry.confirm(visit.visit_id, diagnosis, by=by, note=note)
            except RegistryError as exc:
                st.error(str(exc))
            else:
                st.rerun()
    for c in reversed(history):
        st.caption(
            f"{c.diagnosis} by {c.confirmed_by}, {c.confirmed_at:%Y-%m-%d %H:%M} UTC"
            + (f": {c.note}" if c.note else "")
        )


def _trend(registry: Registry, patient_id: str) -> None:
    from training.diagnosis.forecast import forecast_figure

    st.markdown("**Trend**")
    result = patient_forecast(registry, patient_id)
    st.pyplot(forecast_figure(result))
    rows = [
        {
            "series": s.label,
            "threshold": f"{c.category} {c.threshold}",
            "status": c.status,
            "date": c.date,
            "95 % range": f"{c.earliest or '-'} to {c.latest or '-'}",
        }
        for s in result.series
        for c in s.crossings
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(
        f"Thresholds: {result.thresholds.guideline} ({'; '.join(result.thresholds.sources)}). "
        "Visits in pregnancy or on treatment are left out of the trend."
    )


# ------------------------------------------------------------------------------ import
def _import(registry: Registry) -> None:
    st.caption(
        "Visits from a CSV: map its columns to the registry's fields and give the units. "
        "Rows with a value that cannot be real are refused with their row and column; the "
        "good rows are stored."
    )
    upload = st.file_uploader("Visits CSV", type=["csv"], key="dx_imp_file")
    text = st.text_area("Mapping (JSON)", value=EXAMPLE_MAPPING, height=160, key="dx_imp_map")
    if upload is None:
        return
    try:
        mapping = VisitMapping.model_validate_json(text)
        preview = registry.preview_import(upload.getvalue(), mapping, name=upload.name)
    except (ValueError, RegistryError) as exc:
        st.error(f"Cannot read the file with this mapping: {exc}")
        return
    new = sum(r.status == "new" for r in preview.rows)
    st.write(
        f"{preview.n_rows} rows: {new} new, {len(preview.rows) - new} stored already, "
        f"{len(preview.refused_rows)} refused."
    )
    if preview.rows:
        st.dataframe(pd.DataFrame([r.to_json() for r in preview.rows]), hide_index=True)
    if preview.errors:
        st.dataframe(pd.DataFrame([e.to_json() for e in preview.errors]), hide_index=True)
    if st.button("Import the good rows", disabled=new == 0, key="dx_imp_go"):
        report = registry.import_visits(
            upload.getvalue(), mapping, entered_by=_common.annotator(), name=upload.name
        )
        st.success(
            f"{len(report.added)} visits and {len(report.patients_added)} patients added, "
            f"{report.diagnoses_added} diagnoses confirmed."
        )


# ------------------------------------------------------------------------------ training
def _job_panel(workspace: str, job_id: str, live_at_start: bool) -> None:
    try:
        status = JobRunner(Path(workspace)).get(job_id)
    except UnknownJobError:
        st.session_state.pop(JOB_KEY, None)
        return
    if live_at_start and status.finished:
        st.rerun()
    if status.state in (JobState.QUEUED, JobState.RUNNING):
        p = status.progress
        total = p.get("total") or 1
        st.progress(
            min(1.0, (p.get("done") or 0) / total),
            text=f"Training {job_id}: {p.get('stage', 'starting')} {p.get('done', 0)}/{total}",
        )
    elif status.state == JobState.DONE:
        st.success(f"Training {job_id} finished: model {', '.join(status.result['model_ids'])}.")
    elif status.state == JobState.FAILED:
        st.error(f"Training failed: {status.error}")
    else:
        st.warning("Training was cancelled; no model was kept.")


def _training(workspace: str) -> None:
    zoo = Zoo(Path(workspace))
    try:
        card = zoo.current("diagnosis")
    except ZooError as exc:
        st.error(f"The diagnosis models cannot be read: {exc}")
        card = None
    if card is None:
        st.info("No diagnosis model yet.")
    else:
        st.markdown(f"**Current model** `{card.model_id}`: {card.settings.get('target')}")
        st.caption(
            f"Classes: {', '.join(card.classes)}. Features: "
            f"{', '.join(card.settings.get('features', []))}."
        )
        cv = card.metrics.get("cross_validation")
        if cv:
            shown = {
                k: card.metrics[k]
                for k in ("roc_auc", "accuracy", "balanced_accuracy", "brier", "ece")
                if k in card.metrics
            }
            cols = st.columns(len(shown))
            for col, (name, value) in zip(cols, shown.items(), strict=True):
                col.metric(name, f"{value:.3f}")
            st.caption(f"{cv['folds']}-fold cross-validation, {cv['repeats']} repeat(s).")
        else:
            st.caption("This model was not cross-validated.")
        if card.notes:
            st.caption(card.notes)
        try:
            for warning in model_warnings(_model(workspace, card.model_id)[1]):
                st.warning(warning)
        except (DiagnosisError, OSError, ValueError) as exc:
            st.error(f"The current model cannot be loaded: {exc}")

    runner = JobRunner(Path(workspace))
    busy = any(
        s.kind == TRAIN_JOB_KIND for s in runner.list(states=[JobState.QUEUED, JobState.RUNNING])
    )
    with st.form("dx_train"):
        st.markdown("**Train on the confirmed diagnoses**")
        c = st.columns(3)
        model = c[0].selectbox("Model", ["mlp", "logreg"], key="dx_t_model")
        target = c[1].selectbox("Target", ["auto", "binary", "multiclass"], key="dx_t_target")
        folds = c[2].number_input("Cross-validation folds", 0, 20, value=5, key="dx_t_folds")
        go = st.form_submit_button("Train", disabled=busy, key="dx_train_go")
    if busy:
        st.caption("A diagnosis training job is queued or running.")
    if go:
        try:
            request = TrainRequest(model=model, target=target, folds=int(folds))
            st.session_state[JOB_KEY] = submit_training(Path(workspace), request).job_id
        except (JobError, OSError, ValueError) as exc:
            st.error(f"Training could not be queued: {exc}")
    job_id = st.session_state.get(JOB_KEY)
    if job_id:
        try:
            live = not runner.get(job_id).finished
        except UnknownJobError:
            live = False
        st.fragment(_job_panel, run_every=POLL_S if live else None)(workspace, job_id, live)


# ------------------------------------------------------------------------------ page
def main() -> None:
    store = _common.setup("Diagnosis")
    workspace = str(_common.workspace())
    st.title("Diagnosis")
    st.warning(DISCLAIMER, icon=":material/info:")
    registry = Registry(store)
    visits_tab, import_tab, train_tab = st.tabs(["Patient", "Import visits", "Classifier"])
    with visits_tab:
        patient_id = _find_or_create(registry)
        if patient_id is not None:
            visits = registry.visits(patient_id)
            _visit_form(registry, [s.smear_id for s in store.smears()], patient_id)
            if not visits:
                st.info(f"No visit of {patient_id} yet: add one above.")
            else:
                _visits_table(registry, visits)
                ids = [v.visit_id for v in reversed(visits)]
                by_id = {v.visit_id: v for v in visits}
                chosen = st.selectbox(
                    "Visit",
                    ids,
                    format_func=lambda i: f"{by_id[i].date} ({i})",
                    key="dx_visit",
                )
                visit = by_id[chosen]
                left, right = st.columns(2, gap="large")
                with left:
                    _guidelines(visit)
                    _confirm(registry, visit)
                with right:
                    _classifier(workspace, registry, visit)
                _trend(registry, patient_id)
    with import_tab:
        st.caption(DISCLAIMER)
        _import(registry)
    with train_tab:
        st.caption(DISCLAIMER)
        _training(workspace)


main()
