"""The ``diagnosis`` commands of ``python -m training``.

``training/cli.py`` calls :func:`add_parser` with its subparsers and runs ``args.func(args)``;
every handler returns the exit code: 0 done, 1 refused (the reason on stderr; for
``import-visits``: some rows were refused, the good ones were stored), 2 usage (among them a
value given without its unit: no unit is ever assumed). ``--json`` prints exactly one JSON
document on stdout, and every document carries the disclaimer. ``--workspace`` defaults to the
settings' one.

Building the parser imports nothing heavy (the store, torch and scipy are imported by the
handlers that need them), so other ``python -m training`` commands do not pay for them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dataset.cliutil import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    common_parser,
    json_flag,
    report_error,
)
from dataset.roles import COMMAND_LINE, Actor
from training.diagnosis import DISCLAIMER
from training.diagnosis.criteria import (
    MEASUREMENTS,
    MeasurementError,
    Measurements,
    describe,
    evaluate_rules,
)
from training.diagnosis.units import GLUCOSE_UNITS, HBA1C_UNITS

__all__ = ["add_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``diagnosis`` command group to ``subparsers``; returns its parser."""
    common = common_parser()
    parser = subparsers.add_parser(
        "diagnosis",
        help="diabetes decision support: guideline rules, registry, classifier, forecast",
        description=f"Diabetes decision support. {DISCLAIMER}",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="diagnosis_command", required=True, metavar="COMMAND")

    p = sub.add_parser("rules", parents=[common], help="WHO / ADA / NICE verdicts of values")
    _measurement_args(p)
    p.set_defaults(func=cmd_rules)

    p = sub.add_parser(
        "import-visits", parents=[common], help="import visits from a CSV with a mapping"
    )
    p.add_argument("csv", type=Path, help="CSV file of visits")
    p.add_argument("--mapping", type=Path, required=True, help="mapping JSON")
    p.add_argument("--preview", action="store_true", help="parse and check, store nothing")
    p.add_argument("--by", default="", help="the account entering the visits")
    p.set_defaults(func=cmd_import_visits)

    p = sub.add_parser("train", parents=[common], help="train the classifier")
    _data_args(p)
    p.add_argument("--model", choices=("mlp", "logreg"), default="mlp")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (0: none)")
    p.add_argument("--repeats", type=int, default=1, help="cross-validation repeats")
    _classifier_args(p)
    p.add_argument("--notes", default="", help="free text for the model card")
    p.add_argument("--background", action="store_true", help="run as a job; print its id")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", parents=[common], help="cross-validate mlp and logreg")
    _data_args(p)
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models", default="mlp,logreg", help="comma-separated: mlp,logreg")
    _classifier_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", parents=[common], help="predict the rows of a CSV")
    p.add_argument("--csv", type=Path, required=True, help="CSV file")
    p.add_argument("--format", choices=("pima", "mapped", "table"), required=True)
    p.add_argument("--mapping", type=Path, help="mapping JSON (mapped format)")
    p.add_argument("--outcome", help="outcome column (table format), for metrics")
    p.add_argument("--model", dest="model_id", help="model id (default: the current one)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("forecast", parents=[common], help="HbA1c / fasting glucose trend")
    p.add_argument("patient", help="patient pseudonym")
    p.add_argument("--guideline", default="ADA", help="thresholds of WHO, ADA or NICE")
    p.add_argument("--horizon", type=float, default=10, help="years ahead")
    p.add_argument("--today", type=_date, help="YYYY-MM-DD (default: today)")
    p.set_defaults(func=cmd_forecast)

    p = sub.add_parser("add-patient", parents=[common], help="add a patient (pseudonym only)")
    p.add_argument("patient", nargs="?", help="pseudonym (default: a fresh one); never a name")
    p.add_argument("--sex", choices=("female", "male", "other"))
    p.add_argument("--birth-year", type=int)
    p.set_defaults(func=cmd_add_patient)

    p = sub.add_parser("add-visit", parents=[common], help="add a visit of a patient")
    p.add_argument("patient", help="patient pseudonym")
    p.add_argument("--date", type=_date, default=None, help="YYYY-MM-DD (default: today)")
    _measurement_args(p)
    p.add_argument("--pregnancy-week", type=int)
    p.add_argument("--treatment", help="which glucose-lowering treatment (implies --treated)")
    p.add_argument("--bmi", type=float)
    p.add_argument("--systolic", type=float, help="systolic blood pressure, mmHg")
    p.add_argument("--diastolic", type=float, help="diastolic blood pressure, mmHg")
    p.add_argument("--insulin", type=float, help="fasting insulin, µU/mL")
    p.add_argument("--c-peptide", type=float, help="C-peptide, nmol/L")
    p.add_argument("--gad", choices=("positive", "negative"), help="GAD antibodies")
    p.add_argument("--smear", action="append", default=[], help="linked smear id (repeat)")
    p.add_argument("--by", default="", help="the account entering the visit")
    p.set_defaults(func=cmd_add_visit)

    p = sub.add_parser("confirm", parents=[common], help="confirm or correct a diagnosis")
    p.add_argument("patient", help="patient pseudonym")
    p.add_argument("visit_id", help="visit id (see `show`)")
    p.add_argument("diagnosis", help="normal, prediabetes, type 1, type 2, gestational or other")
    p.add_argument("--by", required=True, help="the confirming clinician's account")
    p.add_argument("--note", default="")
    p.set_defaults(func=cmd_confirm)

    p = sub.add_parser("show", parents=[common], help="a patient's visits and diagnoses")
    p.add_argument("patient", help="patient pseudonym")
    p.set_defaults(func=cmd_show)
    return parser


# Measurement -> its flag; glucose flags share --glucose-unit, HbA1c has --hba1c-unit.
FLAGS: dict[str, str] = {
    "hba1c": "--hba1c",
    "fpg": "--fpg",
    "ogtt_1h": "--ogtt-1h",
    "ogtt_2h": "--ogtt",
    "random_glucose": "--random-glucose",
    "gct_1h": "--gct",
    "ogtt100_0h": "--ogtt100-0h",
    "ogtt100_1h": "--ogtt100-1h",
    "ogtt100_2h": "--ogtt100-2h",
    "ogtt100_3h": "--ogtt100-3h",
}


def _measurement_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hba1c", type=float, help="HbA1c (give --hba1c-unit)")
    p.add_argument("--hba1c-unit", choices=HBA1C_UNITS, help="unit of --hba1c; none assumed")
    p.add_argument("--fpg", type=float, help="fasting plasma glucose")
    p.add_argument("--ogtt-1h", type=float, help="1-hour 75 g OGTT glucose")
    p.add_argument("--ogtt", type=float, dest="ogtt_2h", help="2-hour 75 g OGTT glucose")
    p.add_argument("--random-glucose", type=float, help="random plasma glucose")
    p.add_argument(
        "--gct", type=float, dest="gct_1h", help="pregnancy: 50 g 1-hour glucose challenge (ADA)"
    )
    for hour in range(4):
        p.add_argument(
            f"--ogtt100-{hour}h",
            type=float,
            dest=f"ogtt100_{hour}h",
            help=f"pregnancy: {'fasting' if hour == 0 else f'{hour}-hour'} 100 g OGTT glucose",
        )
    p.add_argument(
        "--glucose-unit", choices=GLUCOSE_UNITS, help="unit of every glucose value; none assumed"
    )
    p.add_argument(
        "--confirm-unit",
        action="store_true",
        help="the unit of a glucose below 1.0 or above 33.3 mmol/L is right (insulinoma, "
        "insulin overdose, hyperglycaemic crisis)",
    )
    p.add_argument("--symptoms", action="store_true", help="classic symptoms of hyperglycaemia")
    p.add_argument("--pregnant", action="store_true")
    p.add_argument("--treated", action="store_true", help="takes glucose-lowering treatment")
    p.add_argument("--anaemia", action="store_true", help="anaemia or a haemoglobin disorder")


def _values(args: argparse.Namespace) -> dict[str, float]:
    """The measurements given on the command line, by name (every flag's dest is its name)."""
    return {n: getattr(args, n) for n in MEASUREMENTS if getattr(args, n) is not None}


def _units_given(args: argparse.Namespace) -> str | None:
    """Why the values cannot be read (a value without its unit), naming the flags; or None."""
    values = _values(args)
    if "hba1c" in values and args.hba1c_unit is None:
        return (
            f"--hba1c {values['hba1c']:g} has no unit: add --hba1c-unit percent or --hba1c-unit "
            "mmol/mol. No unit is assumed."
        )
    glucose = [FLAGS[n] for n in values if n != "hba1c"]
    if glucose and args.glucose_unit is None:
        return (
            f"{', '.join(glucose)} without a unit: add --glucose-unit mmol/L or --glucose-unit "
            "mg/dL. No unit is assumed."
        )
    return None


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--csv", type=Path, help="train on this CSV instead of the registry")
    p.add_argument("--format", choices=("pima", "table", "mapped"), default="pima")
    p.add_argument("--mapping", type=Path, help="mapping JSON (mapped format)")
    p.add_argument("--outcome", help="outcome column (table format)")
    p.add_argument("--target", choices=("auto", "binary", "multiclass"), default="auto")
    p.add_argument(
        "--all-visits", action="store_true", help="registry: every confirmed visit, not one each"
    )
    p.add_argument("--seed", type=int, default=0)


def _classifier_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-epochs", type=int, help="classifier epochs at most")
    p.add_argument("--patience", type=int, help="epochs without gain before stopping")
    p.add_argument("--inner-folds", type=int, help="cross-fitted members (1: one hold-out)")
    p.add_argument("--hidden", help="MLP hidden widths, e.g. 32 or 64,32")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def _handled(func: Handler) -> Handler:
    """Turn the errors a user can fix into a message on stderr and exit code 1."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        from dataset.audit import AuditError
        from dataset.store import StoreError
        from model_zoo.zoo import ZooError
        from training.diagnosis.service import DiagnosisError

        try:
            return func(args)
        except (DiagnosisError, StoreError, MeasurementError, ZooError, _Refused) as err:
            return report_error(err, EXIT_REFUSED, json_flag(args))
        except AuditError as err:
            return report_error(err, EXIT_REFUSED, json_flag(args))

    return run


def _workspace(args: argparse.Namespace) -> Path:
    if getattr(args, "workspace", None):
        return Path(args.workspace)
    from dataset.settings import get_settings

    return Path(get_settings().workspace)


def _person(args: argparse.Namespace, action: str, *, required: bool = False) -> Actor:
    """``--by``: an existing, enabled account whose role may take ``action``; the command
    line's own account (:data:`~dataset.roles.COMMAND_LINE`) when ``--by`` is left out and
    not ``required``."""
    from dataset.accounts import AccountError, actor_for
    from dataset.roles import PermissionDenied

    name = (args.by or "").strip()
    if not name and required:
        raise _Refused("--by: name the account of the clinician who confirms the diagnosis.")
    if not name:
        return COMMAND_LINE
    try:
        actor = actor_for(_workspace(args), name)
        actor.require(action)
    except (AccountError, PermissionDenied) as exc:
        raise _Refused(f"--by {name}: {exc}") from None
    return actor


class _Refused(Exception):
    """A refusal already worded for the user (exit 1)."""


def _print_json(value: Any) -> None:
    """Print one JSON document; a mapping always carries the disclaimer."""
    if isinstance(value, dict) and "disclaimer" not in value:
        value = {**value, "disclaimer": DISCLAIMER}
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _disclaimer() -> None:
    print(f"\n{DISCLAIMER}")


def _measurements(args: argparse.Namespace) -> Measurements:
    return Measurements(
        **_values(args),
        hba1c_unit=args.hba1c_unit,
        glucose_unit=args.glucose_unit,
        symptoms=args.symptoms,
        pregnant=args.pregnant,
        treated=args.treated,
        anaemia_or_hb_disorder=args.anaemia,
        unit_confirmed=args.confirm_unit,
    )


def _screen_cutoff(args: argparse.Namespace) -> int:
    from dataset.settings import get_settings

    return get_settings(workspace=getattr(args, "workspace", None)).gdm_screen_cutoff_mgdl


def _no_unit(args: argparse.Namespace) -> int | None:
    problem = _units_given(args)
    if problem is None:
        return None
    print(f"error: {problem}", file=sys.stderr)
    return EXIT_USAGE


# ---------------------------------------------------------------------------- handlers
@_handled
def cmd_rules(args: argparse.Namespace) -> int:
    """Guideline verdicts of the values given, each compared in the unit it was entered in."""
    refused = _no_unit(args)
    if refused is not None:
        return refused
    measurements = _measurements(args)
    cutoff = _screen_cutoff(args)
    results = evaluate_rules(measurements, screen_cutoff_mgdl=cutoff)
    if json_flag(args):
        _print_json(
            {
                "measurements": [
                    {
                        "measurement": n,
                        "value": getattr(measurements, n),
                        "unit": measurements.unit_of(n),
                    }
                    for n in measurements.present()
                ],
                "gdm_screen_cutoff_mgdl": cutoff,
                "guidelines": results.to_json(),
            }
        )
    else:
        print("\n".join(describe(results)))
        _disclaimer()
    return EXIT_OK


@_handled
def cmd_import_visits(args: argparse.Namespace) -> int:
    """Import (or preview) a CSV of visits; 1 when any row was refused."""
    from training.diagnosis.registry import Registry, VisitMapping

    mapping = VisitMapping.load(args.mapping)
    registry = Registry.open(_workspace(args))
    if args.preview:
        preview = registry.preview_import(args.csv, mapping)
        out = {"preview": True, **preview.to_json()}
        errors = preview.errors
        summary = (
            f"{args.csv}: {len(preview.rows)} of {preview.n_rows} rows good "
            f"({sum(r.status == 'duplicate' for r in preview.rows)} stored already), "
            f"{len(preview.refused_rows)} refused; nothing stored (preview)."
        )
    else:
        report = registry.import_visits(args.csv, mapping, actor=_person(args, "patients"))
        out = {"preview": False, **report.to_json()}
        errors = report.errors
        summary = (
            f"{args.csv}: {len(report.added)} visits added, {len(report.duplicates)} stored "
            f"already, {len(report.patients_added)} new patients, {report.diagnoses_added} "
            f"diagnoses; {len({e.row for e in errors})} rows refused."
        )
    if json_flag(args):
        _print_json(out)
    else:
        print(summary)
        for error in errors:
            print(f"  {error}")
    return EXIT_REFUSED if errors else EXIT_OK


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("max_epochs", "patience", "inner_folds"):
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    if getattr(args, "hidden", None):
        try:
            out["hidden"] = tuple(int(w) for w in args.hidden.split(","))
        except ValueError:
            raise SystemExit(f"--hidden {args.hidden!r}: give widths such as 32 or 64,32") from None
    return out


def _source_fields(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "csv": None if args.csv is None else str(args.csv),
        "format": args.format,
        "mapping": None if args.mapping is None else str(args.mapping),
        "outcome": args.outcome,
        "target": args.target,
        "all_visits": args.all_visits,
    }


@_handled
def cmd_train(args: argparse.Namespace) -> int:
    """Train (or queue a job that trains) the classifier and add it to the zoo."""
    from model_zoo.zoo import Zoo
    from training.diagnosis.service import TrainRequest, submit_training, train

    request = TrainRequest(
        **_source_fields(args),
        model=args.model,
        folds=args.folds,
        repeats=args.repeats,
        seed=args.seed,
        classifier=_overrides(args),
        notes=args.notes,
    )
    workspace = _workspace(args)
    if args.background:
        status = submit_training(workspace, request, actor=COMMAND_LINE)
        if json_flag(args):
            _print_json({"job_id": status.job_id, "state": str(status.state)})
        else:
            print(f"queued job {status.job_id}; follow it with `python -m training jobs`")
        return EXIT_OK

    def progress(stage: str, done: int, total: int) -> None:
        if not json_flag(args):
            print(f"{stage}: {done}/{total}", file=sys.stderr, flush=True)

    card = train(workspace, request, progress, actor=COMMAND_LINE)
    current = Zoo(workspace).current("diagnosis")
    is_current = current is not None and current.model_id == card.model_id
    metrics = {
        k: v for k, v in card.metrics.items() if isinstance(v, int | float | None)
    }  # the top-level means; per-model details stay in the card
    out = {
        "model_id": card.model_id,
        "current": is_current,
        "classes": card.classes,
        "target": card.settings.get("target"),
        "features": card.settings.get("features"),
        "metrics": metrics,
        "notes": card.notes,
    }
    if json_flag(args):
        _print_json(out)
    else:
        print(f"model {card.model_id}{' (now current)' if is_current else ''}")
        print(f"target: {out['target']}; classes: {', '.join(card.classes)}")
        print(f"features: {', '.join(out['features'] or [])}")
        for name, value in metrics.items():
            print(f"  {name}: {value:.3f}" if value is not None else f"  {name}: n/a")
        if card.notes:
            print(f"notes: {card.notes}")
    return EXIT_OK


@_handled
def cmd_evaluate(args: argparse.Namespace) -> int:
    """Repeated stratified cross-validation on the registry or a CSV."""
    from training.diagnosis.service import DataSource, evaluate

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in ("mlp", "logreg")]
    if unknown or not models:
        print(f"error: --models {args.models!r}: choose from mlp, logreg", file=sys.stderr)
        return EXIT_USAGE

    def progress(done: int, total: int) -> None:
        # About twenty lines in all, however many fits the folds and repeats make.
        if not json_flag(args) and (done == total or done % max(1, total // 20) == 0):
            print(f"fit {done}/{total}", file=sys.stderr, flush=True)

    report = evaluate(
        _workspace(args),
        DataSource(**_source_fields(args)),
        folds=args.folds,
        repeats=args.repeats,
        models=models,
        seed=args.seed,
        classifier=_overrides(args),
        on_progress=progress,
    )
    if json_flag(args):
        _print_json(json.loads(report.model_dump_json()))
    else:
        print(f"{report.source}: {report.n_rows} rows, classes {report.class_counts}")
        print(f"{report.folds}-fold cross-validation, {report.repeats} repeats")
        print(report.table())
    return EXIT_OK


@_handled
def cmd_predict(args: argparse.Namespace) -> int:
    """Predict each row of a CSV with a diagnosis model."""
    from training.diagnosis.service import predict_file

    report = predict_file(
        _workspace(args),
        args.csv,
        args.format,
        mapping=None if args.mapping is None else str(args.mapping),
        outcome=args.outcome,
        model_id=args.model_id,
    )
    if json_flag(args):
        _print_json(report.to_json())
        return EXIT_OK
    print(f"model {report.model_id}; classes: {', '.join(report.classes)}")
    print(f"outcome the classes mean: {report.outcome}")
    for row in report.rows:
        shares = ", ".join(f"{c} {p:.2f}" for c, p in row["probabilities"].items())
        print(
            f"  row {row['row']}: most probable {row['predicted']!r}, as defined above ({shares})"
        )
    for error in report.errors:
        print(f"  row {error['row']}, column {error['column']!r}: {error['message']}")
    if report.metrics is not None:
        print(
            "metrics: "
            + ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                for k, v in report.metrics.items()
            )
        )
    for warning in report.warnings:
        print(f"note: {warning}")
    _disclaimer()
    return EXIT_OK


@_handled
def cmd_forecast(args: argparse.Namespace) -> int:
    """Trend and threshold crossings of a registry patient."""
    from dataset.store import StoreError
    from training.diagnosis.registry import Registry
    from training.diagnosis.service import patient_forecast

    registry = Registry.open(_workspace(args))
    try:
        result = patient_forecast(
            registry,
            args.patient,
            today=args.today,
            guideline=args.guideline,
            horizon_years=args.horizon,
        )
    except ValueError as err:  # an unknown guideline; the message lists the known ones
        if isinstance(err, StoreError):
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_REFUSED
    if json_flag(args):
        _print_json({"patient": args.patient, **result.to_json()})
        return EXIT_OK
    print(f"patient {args.patient}, {result.thresholds.guideline} thresholds, from {result.today}")
    for series in result.series:
        print(f"{series.label}: {series.status}, {len(series.points)} visits used")
        if series.fit is not None:
            print(f"  slope {series.fit.slope_per_year:+.3f} {series.unit} per year")
        for c in series.crossings:
            when = f" on {c.date}" if c.date else ""
            line = f"  {c.category} ({c.threshold}): {c.status}{when}"
            if series.fit is not None and c.threshold is not None and c.status != "already above":
                line += f"; 95 % range {c.range_text}"
            print(line)
        for day, value, reason in series.left_out:
            print(f"  left out {day}: {value:g} ({reason})")
    _disclaimer()
    return EXIT_OK


@_handled
def cmd_add_patient(args: argparse.Namespace) -> int:
    """Add a patient under a pseudonym."""
    from training.diagnosis.registry import Registry

    registry = Registry.open(_workspace(args))
    patient = registry.add_patient(
        args.patient, sex=args.sex, birth_year=args.birth_year, actor=COMMAND_LINE
    )
    if json_flag(args):
        _print_json(
            {"patient": patient.patient_id, "sex": patient.sex, "birth_year": patient.birth_year}
        )
    else:
        print(f"added patient {patient.patient_id}")
    return EXIT_OK


@_handled
def cmd_add_visit(args: argparse.Namespace) -> int:
    """Add a visit; each value is stored as entered, with its unit."""
    from training.diagnosis.registry import Registry
    from training.diagnosis.service import visit_from_entry, visit_summary

    refused = _no_unit(args)
    if refused is not None:
        return refused
    visit = visit_from_entry(
        args.date or dt.date.today(),
        **_values(args),
        hba1c_unit=args.hba1c_unit,
        glucose_unit=args.glucose_unit,
        unit_confirmed=args.confirm_unit,
        symptoms=args.symptoms,
        anaemia_or_hb_disorder=args.anaemia,
        pregnant=args.pregnant or args.pregnancy_week is not None,
        pregnancy_week=args.pregnancy_week,
        treated=args.treated or bool(args.treatment),
        treatment=args.treatment,
        bmi=args.bmi,
        systolic_bp=args.systolic,
        diastolic_bp=args.diastolic,
        insulin_uu_ml=args.insulin,
        c_peptide_nmol=args.c_peptide,
        gad_positive=None if args.gad is None else args.gad == "positive",
        smear_ids=tuple(args.smear),
    )
    registry = Registry.open(_workspace(args))
    stored = registry.add_visit(args.patient, visit, actor=_person(args, "patients"))
    summary = visit_summary(registry, stored, registry.diagnosis(stored.visit_id))
    if json_flag(args):
        _print_json({"patient": stored.patient_id, **summary})
    else:
        print(f"visit {stored.visit_id} of {stored.patient_id} on {stored.date}")
        _print_verdicts(summary)
        _disclaimer()
    return EXIT_OK


def _print_verdicts(summary: dict[str, Any], indent: str = "  ") -> None:
    for name, result in summary["guidelines"].items():
        print(f"{indent}{name}: {result['verdict']} (repeat test: {result['repeat_test']})")
        for note in result["notes"]:
            print(f"{indent}  note: {note}")


@_handled
def cmd_confirm(args: argparse.Namespace) -> int:
    """Record a clinician's confirmed diagnosis (a correction is a new confirmation)."""
    from training.diagnosis.registry import Registry

    clinician = _person(args, "confirm_diagnosis", required=True)
    registry = Registry.open(_workspace(args))
    visit = registry.visit(args.visit_id)
    if visit.patient_id != args.patient:
        print(
            f"error: visit {args.visit_id} belongs to patient {visit.patient_id}, "
            f"not {args.patient}",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    from training.diagnosis.service import confirm_visit

    c = confirm_visit(registry, args.visit_id, args.diagnosis, actor=clinician, note=args.note)
    if json_flag(args):
        _print_json(
            {
                "patient": c.patient_id,
                "visit_id": c.visit_id,
                "diagnosis": c.diagnosis,
                "confirmed_by": c.confirmed_by,
                "confirmed_at": c.confirmed_at.isoformat(),
                "revision": c.revision,
                "guidelines": c.guideline_verdicts(),
            }
        )
    else:
        print(f"visit {c.visit_id}: {c.diagnosis}, confirmed by {c.confirmed_by} (#{c.revision})")
    return EXIT_OK


@_handled
def cmd_show(args: argparse.Namespace) -> int:
    """A patient's visits as entered, each guideline's verdict and repeat test, and diagnoses."""
    from training.diagnosis.registry import Registry
    from training.diagnosis.service import open_patient

    summary = open_patient(Registry.open(_workspace(args)), args.patient, actor=COMMAND_LINE)
    if json_flag(args):
        _print_json(summary)
        return EXIT_OK
    print(
        f"patient {summary['patient']}: {summary['sex'] or 'sex ?'}, born "
        f"{summary['birth_year'] or '?'}"
    )
    for v in summary["visits"]:
        measured = ", ".join(f"{m['label']} {m['shown']}" for m in v["measurements"])
        print(f"{v['date']} {v['visit_id']}: {measured or '-'}")
        _print_verdicts(v, "  ")
        for c in v["history"]:
            said = "; ".join(
                f"{g} {r['verdict']}, repeat test {r['repeat_test']}"
                for g, r in c["guidelines"].items()
            )
            print(
                f"  confirmed #{c['revision']}: {c['diagnosis']} by {c['confirmed_by']}"
                + (f" (guidelines then: {said})" if said else "")
            )
    _disclaimer()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.diagnosis.cli diagnosis ...`` (the same as ``python -m training``)."""
    parser = argparse.ArgumentParser(prog="python -m training")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
