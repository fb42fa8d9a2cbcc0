"""Diagnosis page: decision support for a clinician, for research use, not a diagnosis.

What it promises:
- The page says once, at the top, that this is decision support for a clinician, for research
  use, and not a diagnosis; patients are found and created by pseudonym only, never a name.
- No unit is assumed: the visit form's units start empty unless the workspace settings
  ``glucose_unit`` / ``hba1c_unit`` preselect them, and the form says so. Values are shown as
  entered; a glucose below 1.0 or above 33.3 mmol/L needs the unit-confirmation checkbox.
- For a visit: the WHO / ADA / NICE table (verdict, whether a repeat test is needed, what
  fired, notes) from :func:`training.diagnosis.service.visit_summary`, the function
  ``diagnosis show`` uses; the classifier's
  probabilities with their explanation and caveats (including when it cannot tell type 1
  from type 2), the HbA1c and fasting-glucose trend, and a form to confirm or correct the
  diagnosis that starts blank (a correction is a new confirmation; the history stays).
- Import: a column-mapping form (every field, every unit or unit column) with a preview.
- Training queues a background job (``training.diagnosis.service.runs:train_job``) and never
  blocks the page; the shared job panel (``pages/_jobs_panel.py``) shows it, and its
  cross-validated metrics are shown with the current model.
All logic lives in :mod:`training.diagnosis.registry` and :mod:`training.diagnosis.service`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from dataset.roles import PermissionDenied
from dataset.settings import SettingsError, get_settings
from model_zoo import Zoo, ZooError
from pages import _common
from pages._jobs_panel import job_panel
from training.diagnosis import DISCLAIMER, MeasurementError
from training.diagnosis.criteria import LABELS, REPEAT_WINDOW_DAYS
from training.diagnosis.registry import (
    DIAGNOSES,
    DIAGNOSIS_LABELS,
    MAPPING_FIELDS,
    PSEUDONYM_RULE,
    QUANTITY_OF,
    UNIT_CHOICES,
    Registry,
    RegistryError,
    Visit,
    VisitMapping,
)
from training.diagnosis.service import (
    TRAIN_JOB_KIND,
    DiagnosisError,
    TrainRequest,
    confirm_visit,
    load_model,
    model_warnings,
    open_patient,
    patient_forecast,
    predict_visit,
    submit_training,
    visit_from_entry,
    visit_summary,
)
from training.job_report import active_job
from training.jobs import JobError

PATIENT_KEY = "dx_patient"
OPENED_KEY = "dx_opened"  # the patient whose opening this session has audited
JOB_KEY = "dx_train_job"
POLL_S = 2.0
UNIT_COLUMN = "a column of the file"


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
                    actor=_common.actor(),
                )
            except (PermissionDenied, RegistryError) as exc:
                st.error(str(exc))
            else:
                st.session_state[PATIENT_KEY] = patient.patient_id
                st.session_state.pop("dx_pick", None)  # so the picker opens on the new patient
                st.rerun()
    return st.session_state.get(PATIENT_KEY)


def _lab_units(workspace: Path) -> tuple[str | None, str | None, str]:
    """The units the workspace settings preselect, and a sentence saying so."""
    try:
        settings = get_settings(workspace=workspace)
    except (SettingsError, ValueError):
        return None, None, "The workspace settings cannot be read: choose the units."
    glucose, hba1c = settings.glucose_unit, settings.hba1c_unit
    if glucose is None and hba1c is None:
        text = (
            "No unit is assumed: choose the units. A lab can preselect its units with the "
            "settings glucose_unit and hba1c_unit (Settings page)."
        )
    else:
        shown = ", ".join(
            f"{k} = {v}" for k, v in (("glucose_unit", glucose), ("hba1c_unit", hba1c)) if v
        )
        text = f"Units preselected from this workspace's settings ({shown}; Settings page)."
    return glucose, hba1c, text


def _visit_form(registry: Registry, store_smears: list[str], patient_id: str) -> None:
    glucose_default, hba1c_default, units_text = _lab_units(registry.store.root)
    glucose_units, hba1c_units = list(UNIT_CHOICES["glucose"]), list(UNIT_CHOICES["hba1c"])
    with st.expander("New visit"), st.form("dx_new_visit", clear_on_submit=False):
        st.caption(units_text)
        c = st.columns(3)
        date = c[0].date_input("Date", value=dt.date.today(), key="dx_v_date")
        hba1c_unit = c[1].selectbox(
            "HbA1c unit",
            hba1c_units,
            index=None if hba1c_default is None else hba1c_units.index(hba1c_default),
            placeholder="choose the unit",
            key="dx_v_au",
        )
        glucose_unit = c[2].selectbox(
            "Glucose unit",
            glucose_units,
            index=None if glucose_default is None else glucose_units.index(glucose_default),
            placeholder="choose the unit",
            key="dx_v_gu",
        )
        c = st.columns(5)
        hba1c = c[0].number_input("HbA1c", value=None, min_value=0.0, key="dx_v_a1c")
        fpg = c[1].number_input("Fasting glucose", value=None, min_value=0.0, key="dx_v_fpg")
        ogtt_1h = c[2].number_input("75 g OGTT 1 h", value=None, min_value=0.0, key="dx_v_o1")
        ogtt_2h = c[3].number_input("75 g OGTT 2 h", value=None, min_value=0.0, key="dx_v_o2")
        rnd = c[4].number_input("Random glucose", value=None, min_value=0.0, key="dx_v_rnd")
        st.caption("Pregnancy, ADA two-step: the 50 g screen, then the 100 g 3-hour OGTT.")
        c = st.columns(5)
        gct = c[0].number_input("50 g screen 1 h", value=None, min_value=0.0, key="dx_v_gct")
        hundred = [
            c[i + 1].number_input(
                f"100 g OGTT {'fasting' if i == 0 else f'{i} h'}",
                value=None,
                min_value=0.0,
                key=f"dx_v_h{i}",
            )
            for i in range(4)
        ]
        confirm_unit = st.checkbox(
            "The unit is right for a glucose below 1.0 mmol/L (18 mg/dL) or above 33.3 mmol/L "
            "(600 mg/dL)",
            key="dx_v_confirm",
        )
        c = st.columns(5)
        symptoms = c[0].checkbox("Classic symptoms", key="dx_v_sym")
        anaemia = c[1].checkbox(
            "Anaemia or Hb disorder",
            key="dx_v_anaemia",
            help="HbA1c is then left out of every verdict (ADA 2025, WHO 2011): use glucose",
        )
        pregnant = c[2].checkbox("Pregnant", key="dx_v_preg")
        week = c[3].number_input("Pregnancy week", 1, 45, value=None, key="dx_v_week")
        treatment = c[4].text_input("Glucose-lowering treatment", key="dx_v_treat")
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
            gct_1h=gct,
            **{f"ogtt100_{i}h": v for i, v in enumerate(hundred)},
            glucose_unit=glucose_unit,
            unit_confirmed=confirm_unit,
            symptoms=symptoms,
            anaemia_or_hb_disorder=anaemia,
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
        registry.add_visit(patient_id, visit, actor=_common.actor())
    except (MeasurementError, PermissionDenied, RegistryError) as exc:
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
                "values as entered": "; ".join(f"{LABELS[r.measurement]} {r}" for r in v.entered)
                or "-",
                "pregnant": v.pregnant,
                "treated": v.treated,
                "confirmed diagnosis": None if c is None else c.diagnosis,
                "by": None if c is None else c.confirmed_by,
                "visit": v.visit_id,
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True)


# ------------------------------------------------------------------------------ one visit
def _guidelines(registry: Registry, visit: Visit) -> None:
    st.markdown("**Guidelines**")
    summary = visit_summary(registry, visit, registry.diagnosis(visit.visit_id))
    rows = []
    for name, result in summary["guidelines"].items():
        fired = "; ".join(
            f"{LABELS[f['measurement']]} {f['entered']} in {f['range']} ({f['source']})"
            for f in result["fired"]
        )
        rows.append(
            {
                "guideline": name,
                "verdict": result["verdict"],
                "repeat test": result["repeat_test"],
                "fired": fired or "-",
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(
        "Repeat test: whether the guideline asks for a second abnormal result before the "
        f"diagnosis stands; an earlier visit in the diabetic range within {REPEAT_WINDOW_DAYS} "
        "days counts as the second sample. It is not the clinician's confirmation below."
    )
    for name, result in summary["guidelines"].items():
        for note in result["notes"]:
            st.caption(f"{name}: {note}")


def _classifier(workspace: str, registry: Registry, visit: Visit) -> None:
    st.markdown("**Classifier**")
    try:
        card = Zoo(Path(workspace)).current("diagnosis")
    except ZooError as exc:
        st.error(f"The diagnosis model cannot be read: {exc}")
        return
    if card is None:
        st.info("No diagnosis model yet: train one in the **Classifier** tab at the top.")
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
        # Blank until the clinician chooses: a preselected diagnosis is one click from wrong.
        diagnosis = st.selectbox(
            "Diagnosis",
            DIAGNOSES,
            index=None,
            placeholder="choose the diagnosis",
            format_func=lambda d: f"{d}: {DIAGNOSIS_LABELS[d]}",
            key="dx_c_diag",
        )
        clinician = _common.actor()
        st.caption(f"Confirmed by {clinician.name} (the signed-in account).")
        note = st.text_input("Note", key="dx_c_note")
        label = "Correct" if latest else "Confirm"
        if st.form_submit_button(label, key="dx_confirm") and _common.permit("confirm_diagnosis"):
            if diagnosis is None:
                st.error("Choose the diagnosis to confirm.")
                return
            try:
                confirm_visit(registry, visit.visit_id, diagnosis, actor=clinician, note=note)
            except (PermissionDenied, RegistryError) as exc:
                st.error(str(exc))
            else:
                st.rerun()
    for c in reversed(history):
        said = "; ".join(
            f"{g} {r['verdict']} (repeat test {r['repeat_test']})"
            for g, r in c.guideline_verdicts().items()
        )
        st.caption(
            f"{c.diagnosis} by {c.confirmed_by}, {c.confirmed_at:%Y-%m-%d %H:%M} UTC"
            + (f": {c.note}" if c.note else "")
            + (f". Guidelines then: {said}." if said else "")
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
            "95 % range": c.range_text,
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
def _mapping_form(header: list[str]) -> VisitMapping | None:
    """Columns → registry fields, and each quantity's unit (fixed, or from a column)."""
    st.markdown("**Columns**")
    columns: dict[str, str] = {}
    fields = list(MAPPING_FIELDS)
    cols = st.columns(3)
    for i, name in enumerate(fields):
        guess = next((h for h in header if h.strip().lower() == name), None)
        chosen = cols[i % 3].selectbox(
            name,
            header,
            index=None if guess is None else header.index(guess),
            placeholder="not in the file",
            help=MAPPING_FIELDS[name],
            key=f"dx_imp_col_{name}",
        )
        if chosen is not None:
            columns[name] = chosen
    quantities = sorted({QUANTITY_OF[f] for f in columns if f in QUANTITY_OF})
    units: dict[str, str] = {}
    unit_columns: dict[str, str] = {}
    if quantities:
        st.markdown("**Units** (none is assumed)")
        cols = st.columns(len(quantities))
        for col, quantity in zip(cols, quantities, strict=True):
            choice = col.selectbox(
                f"{quantity} unit",
                [*UNIT_CHOICES[quantity], UNIT_COLUMN],
                index=None,
                placeholder="choose the unit",
                key=f"dx_imp_unit_{quantity}",
            )
            if choice == UNIT_COLUMN:
                column = col.selectbox(
                    f"column with the {quantity} unit",
                    header,
                    index=None,
                    key=f"dx_imp_ucol_{quantity}",
                )
                if column is not None:
                    unit_columns[quantity] = column
            elif choice is not None:
                units[quantity] = choice
    c = st.columns(3)
    date_format = c[0].text_input("Date format", "%Y-%m-%d", key="dx_imp_datefmt")
    confirmed_by = c[1].text_input(
        "Diagnoses confirmed by (with a diagnosis column)", key="dx_imp_by"
    )
    confirm = c[2].checkbox(
        "Units of glucose below 1.0 or above 33.3 mmol/L are right", key="dx_imp_confirm"
    )
    try:
        return VisitMapping(
            columns=columns,
            units=units,
            unit_columns=unit_columns,
            date_format=date_format,
            confirmed_by=confirmed_by.strip() or None,
            units_confirmed=confirm,
        )
    except ValueError as exc:
        st.info(f"Complete the mapping: {exc}")
        return None


def _import(registry: Registry) -> None:
    st.caption(
        "Visits from a CSV: map its columns to the registry's fields and give each "
        "measurement's unit (or a column holding it). Rows with a value that cannot be real "
        "are refused with their row and column; the good rows are stored."
    )
    upload = st.file_uploader("Visits CSV", type=["csv"], key="dx_imp_file")
    if upload is None:
        return
    raw = upload.getvalue()
    try:
        first = raw.decode("utf-8-sig").splitlines()[0] if raw else ""
    except UnicodeDecodeError:
        st.error(f"{upload.name} is not UTF-8 text; save it as UTF-8 CSV.")
        return
    import csv

    header = [h.strip() for h in next(csv.reader([first]), [])]
    if not header:
        st.error(f"{upload.name} is empty; it needs a header row.")
        return
    mapping = _mapping_form(header)
    if mapping is None:
        return
    with st.expander("The mapping as JSON (for `python -m training diagnosis import-visits`)"):
        st.code(mapping.model_dump_json(indent=2, exclude_defaults=True), language="json")
    try:
        preview = registry.preview_import(raw, mapping, name=upload.name)
    except (ValueError, RegistryError) as exc:
        st.error(f"Cannot read the file with this mapping: {exc}")
        return
    new = sum(r.status == "new" for r in preview.rows)
    st.write(
        f"Preview: {preview.n_rows} rows: {new} new, {len(preview.rows) - new} stored already, "
        f"{len(preview.refused_rows)} refused."
    )
    if preview.rows:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "row": r.row,
                        "status": r.status,
                        "patient": r.patient_id,
                        "date": r.visit.date,
                        "values as entered": "; ".join(
                            f"{LABELS[m.measurement]} {m}" for m in r.visit.entered
                        ),
                        "diagnosis": r.diagnosis,
                    }
                    for r in preview.rows
                ]
            ),
            hide_index=True,
        )
    if preview.errors:
        st.dataframe(pd.DataFrame([e.to_json() for e in preview.errors]), hide_index=True)
    if st.button("Import the good rows", disabled=new == 0, key="dx_imp_go"):
        try:
            report = registry.import_visits(raw, mapping, actor=_common.actor(), name=upload.name)
        except PermissionDenied as exc:
            st.error(str(exc))
            return
        st.success(
            f"{len(report.added)} visits and {len(report.patients_added)} patients added, "
            f"{report.diagnoses_added} diagnoses confirmed."
        )


# ------------------------------------------------------------------------------ training
def _training(workspace: str, registry: Registry) -> None:
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
        warnings: list[str] = []
        try:
            warnings = model_warnings(_model(workspace, card.model_id)[1])
        except (DiagnosisError, OSError, ValueError) as exc:
            st.error(f"The current model cannot be loaded: {exc}")
        # The card's notes carry the same caveat for readers of the card: say it once here.
        notes = card.notes
        for warning in warnings:
            notes = notes.replace(warning, "").strip()
        if notes:
            st.caption(notes)
        for warning in warnings:
            st.warning(warning)

    busy = active_job(workspace, TRAIN_JOB_KIND) is not None
    n_confirmed = len(registry.confirmed())
    with st.form("dx_train"):
        st.markdown("**Train on the confirmed diagnoses**")
        st.caption(
            f"{n_confirmed} visits have a confirmed diagnosis."
            + (
                ""
                if n_confirmed
                else " Confirm diagnoses first: open a patient in the **Patient** tab at the "
                "top, choose a visit and use **Confirm or correct the diagnosis**."
            )
        )
        c = st.columns(3)
        model = c[0].selectbox("Model", ["mlp", "logreg"], key="dx_t_model")
        target = c[1].selectbox("Target", ["auto", "binary", "multiclass"], key="dx_t_target")
        folds = c[2].number_input("Cross-validation folds", 0, 20, value=5, key="dx_t_folds")
        may_train = _common.actor().may("train")
        go = st.form_submit_button(
            "Train", disabled=busy or not n_confirmed or not may_train, key="dx_train_go"
        )
    if not may_train:
        st.caption("Training the classifier is for an admin.")
    if busy:
        st.caption("A diagnosis training job is queued or running.")
    if go and _common.permit("train"):
        try:
            request = TrainRequest(model=model, target=target, folds=int(folds))
            st.session_state[JOB_KEY] = submit_training(
                Path(workspace), request, actor=_common.actor()
            ).job_id
        except (JobError, OSError, ValueError) as exc:
            st.error(f"Training could not be queued: {exc}")
    job_panel(Path(workspace), TRAIN_JOB_KIND, session_key=JOB_KEY, poll_s=POLL_S)


# ------------------------------------------------------------------------------ page
def main() -> None:
    store = _common.setup("Diagnosis", need="patients")
    workspace = str(_common.workspace())
    st.title("Diagnosis")
    st.warning(DISCLAIMER, icon=":material/info:")
    registry = Registry(store)
    visits_tab, import_tab, train_tab = st.tabs(["Patient", "Import visits", "Classifier"])
    with visits_tab:
        patient_id = _find_or_create(registry)
        if patient_id is not None:
            # Opening a record is audited once per patient shown in this session, not on
            # every rerun of the page.
            if st.session_state.get(OPENED_KEY) != patient_id:
                open_patient(registry, patient_id, actor=_common.actor())
                st.session_state[OPENED_KEY] = patient_id
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
                    _guidelines(registry, visit)
                    _confirm(registry, visit)
                with right:
                    _classifier(workspace, registry, visit)
                _trend(registry, patient_id)
    with import_tab:
        _import(registry)
    with train_tab:
        _training(workspace, registry)


main()
