"""The registry's tables in the workspace store: :class:`Registry` adds, reads and imports."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from dataset import audit
from dataset.roles import Actor
from dataset.store import Store
from training.diagnosis.measurements import UNKNOWN_UNIT
from training.diagnosis.registry.csv_import import (
    ImportPreview,
    ImportReport,
    ParsedRow,
    RowError,
    VisitMapping,
    parse_visits_csv,
)
from training.diagnosis.registry.records import (
    CANONICAL_FIELDS,
    TABLES,
    Confirmation,
    NewVisit,
    Patient,
    Reading,
    RegistryError,
    Visit,
    _check_birth_year,
    _check_gestational,
    _check_sex,
    _now,
    _visit_id,
    check_pseudonym,
    check_visit,
    parse_diagnosis,
)


# ---------------------------------------------------------------------------- the registry
class Registry:
    """Patients, visits and confirmed diagnoses of one workspace (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.tables = store.tables
        for name, schema in TABLES.items():
            self.tables.register(name, schema)

    @classmethod
    def open(cls, workspace: Path | str | None = None) -> Registry:
        """The registry of ``workspace`` (default: the settings' workspace)."""
        return cls(Store.open(workspace))

    def table_versions(self) -> dict[str, int]:
        """Version of each registry table (recorded in the cards of models trained on it)."""
        return {name: self.tables.version(name) for name in TABLES}

    # ------------------------------------------------------------------ patients
    def add_patient(
        self,
        patient_id: str | None = None,
        *,
        sex: str | None = None,
        birth_year: int | None = None,
        actor: Actor,
    ) -> Patient:
        """Store a new patient under a pseudonym (a fresh one such as ``P-482913`` when None).

        ``actor`` (who adds the patient) must have the ``patients`` right; it is recorded in
        the audit trail (``patient_add``).

        Raises:
            dataset.roles.PermissionDenied: the actor's role may not see patient data
                (nothing is stored).
            RegistryError: the pseudonym is not one (see :data:`PSEUDONYM_RULE`), is taken,
                or sex / birth year are invalid.
        """
        who = audit.authorise(actor, "patients", "patient_add")
        sex = _check_sex(sex)
        birth_year = _check_birth_year(birth_year)
        with self.tables.lock("registry_patients"):
            known = self._patients()
            if patient_id is None:
                patient_id = _fresh_pseudonym(set(known))
            patient_id = check_pseudonym(patient_id)
            if patient_id in known:
                raise RegistryError(
                    f"Patient {patient_id} exists already; open it, or choose another pseudonym."
                )
            patient = Patient(patient_id, sex, birth_year, _now())
            self.tables.append("registry_patients", [asdict(patient)])
        audit.record(self.store, actor=who, action="patient_add", object_id=patient_id)
        return patient

    def patient(self, patient_id: str) -> Patient:
        """The patient with this pseudonym.

        Raises:
            RegistryError: no such patient.
        """
        patients = self._patients()
        if patient_id not in patients:
            raise RegistryError(
                f"No patient {patient_id!r} in the registry of {self.store.root}; "
                "add the patient first."
            )
        return patients[patient_id]

    def patients(self) -> list[Patient]:
        """All patients, by pseudonym."""
        return sorted(self._patients().values(), key=lambda p: p.patient_id)

    def find_patients(self, text: str) -> list[Patient]:
        """Patients whose pseudonym contains ``text`` (case-insensitive)."""
        needle = text.strip().lower()
        return [p for p in self.patients() if needle in p.patient_id.lower()]

    def _patients(self) -> dict[str, Patient]:
        rows = self.tables.read("registry_patients").to_pylist()
        out: dict[str, Patient] = {}
        for row in sorted(rows, key=lambda r: r["created_at"]):
            out.setdefault(row["patient_id"], Patient(**row))
        return out

    # ------------------------------------------------------------------ visits
    def add_visit(
        self, patient_id: str, visit: NewVisit, *, actor: Actor, source: str = "manual"
    ) -> Visit:
        """Store a visit of a known patient; the same visit stored before is returned as is.

        ``actor`` enters it and must have the ``patients`` right; its name is recorded with
        the visit (``entered_by``) and in the audit trail (``visit_add``, only when the visit
        is new).

        Raises:
            dataset.roles.PermissionDenied: the actor's role may not see patient data.
            RegistryError: unknown patient, unknown smear, or values that cannot be real
                (every problem named by field).
        """
        entered_by = audit.authorise(actor, "patients", "visit_add")
        patient = self.patient(patient_id)
        problems = check_visit(visit, sex=patient.sex, birth_year=patient.birth_year)
        if problems:
            raise RegistryError("; ".join(f"{name}: {message}" for name, message in problems))
        self._check_smears(visit.smear_ids)
        added, _ = self._store_visits([(patient.patient_id, visit)], entered_by, source)
        if not added:
            return self.visit(_visit_id(patient.patient_id, visit))
        audit.record_all(self.store, _visit_events(entered_by, added))
        return added[0]

    def visit(self, visit_id: str) -> Visit:
        """The latest revision of a visit.

        Raises:
            RegistryError: no such visit.
        """
        rows = self.tables.read(
            "registry_visits", None, pc.field("visit_id") == visit_id
        ).to_pylist()
        if not rows:
            raise RegistryError(f"No visit {visit_id!r} in the registry of {self.store.root}.")
        return _visit_from_row(max(rows, key=lambda r: r["revision"]))

    def visits(self, patient_id: str | None = None) -> list[Visit]:
        """Latest revision of every visit (of one patient), oldest visit first."""
        flt = None if patient_id is None else pc.field("patient_id") == patient_id
        latest: dict[str, dict] = {}
        for row in self.tables.read("registry_visits", None, flt).to_pylist():
            cur = latest.get(row["visit_id"])
            if cur is None or row["revision"] > cur["revision"]:
                latest[row["visit_id"]] = row
        visits = [_visit_from_row(r) for r in latest.values()]
        return sorted(visits, key=lambda v: (v.patient_id, v.date, v.created_at, v.visit_id))

    def link_smears(self, visit_id: str, smear_ids: Iterable[str], *, actor: Actor) -> Visit:
        """Link stored smears to a visit (a new revision of the visit; the id stays).

        ``actor`` must have the ``patients`` right; a change is recorded with the revision
        (``entered_by``) and in the audit trail as the actor's ``visit_change``.

        Raises:
            dataset.roles.PermissionDenied: the actor's role may not see patient data.
            RegistryError: unknown visit or smear.
        """
        entered_by = audit.authorise(actor, "patients", "visit_change")
        wanted = tuple(dict.fromkeys(s.strip() for s in smear_ids if s.strip()))
        self._check_smears(wanted)
        with self.tables.lock("registry_visits"):
            current = self.visit(visit_id)
            merged = tuple(dict.fromkeys((*current.smear_ids, *wanted)))
            if merged == current.smear_ids:
                return current
            updated = replace(
                current,
                smear_ids=merged,
                revision=current.revision + 1,
                entered_by=entered_by,
                created_at=_now(),
            )
            self.tables.append("registry_visits", [_visit_row(updated)])
        audit.record(
            self.store,
            actor=entered_by,
            action="visit_change",
            object_id=visit_id,
            before=current.revision,
            after=updated.revision,
            detail={"smear_ids": list(merged)},
        )
        return updated

    def _check_smears(self, smear_ids: Iterable[str]) -> None:
        ids = list(smear_ids)
        if not ids:
            return
        known = {s.smear_id for s in self.store.smears()}
        missing = [s for s in ids if s not in known]
        if missing:
            raise RegistryError(
                f"No smear(s) {missing} in workspace {self.store.root}; ingest them first."
            )

    def _store_visits(
        self, items: list[tuple[str, NewVisit]], entered_by: str, source: str
    ) -> tuple[list[Visit], list[str]]:
        """Append the visits not stored yet in one commit; returns (added, duplicate ids)."""
        now = _now()
        with self.tables.lock("registry_visits"):
            stored = set(self.tables.read("registry_visits", ["visit_id"])["visit_id"].to_pylist())
            added: list[Visit] = []
            duplicates: list[str] = []
            for patient_id, new in items:
                vid = _visit_id(patient_id, new)
                if vid in stored:
                    duplicates.append(vid)
                    continue
                stored.add(vid)
                added.append(
                    Visit(
                        **{f.name: getattr(new, f.name) for f in fields(NewVisit)},
                        visit_id=vid,
                        patient_id=patient_id,
                        source=source,
                        entered_by=entered_by,
                        created_at=now,
                    )
                )
            if added:
                self.tables.append("registry_visits", [_visit_row(v) for v in added])
        return added, duplicates

    # ------------------------------------------------------------------ diagnoses
    def confirm(
        self,
        visit_id: str,
        diagnosis: str,
        *,
        actor: Actor,
        note: str = "",
        guidelines: dict[str, dict[str, str]] | None = None,
    ) -> Confirmation:
        """Record ``actor``'s confirmed diagnosis of a visit (a correction is a new call);
        the actor's role must allow ``confirm_diagnosis``, and its name is the confirming
        clinician.

        ``guidelines`` is what each guideline said at that moment (``{"ADA": {"verdict",
        "repeat_test"}, ...}``), kept in the history beside the clinician's judgement.

        Raises:
            dataset.roles.PermissionDenied: the actor's role may not confirm diagnoses.
            RegistryError: unknown visit or diagnosis, or gestational diabetes at a visit
                not in pregnancy.
        """
        by = audit.authorise(actor, "confirm_diagnosis", "diagnosis_confirm")
        diagnosis = parse_diagnosis(diagnosis)
        visit = self.visit(visit_id)
        _check_gestational(diagnosis, visit)
        with self.tables.lock("registry_diagnoses"):
            history = self.diagnosis_history(visit_id)
            confirmation = Confirmation(
                visit_id=visit_id,
                patient_id=visit.patient_id,
                diagnosis=diagnosis,
                confirmed_by=by,
                confirmed_at=_now(),
                revision=len(history) + 1,
                note=note,
                guidelines=None if guidelines is None else json.dumps(guidelines),
            )
            self.tables.append("registry_diagnoses", [asdict(confirmation)])
        audit.record(
            self.store,
            actor=confirmation.confirmed_by,
            action="diagnosis_confirm",
            object_id=visit_id,
            before=history[-1].diagnosis if history else None,
            after=diagnosis,
            detail={"patient": visit.patient_id, "revision": confirmation.revision},
        )
        return confirmation

    def diagnosis(self, visit_id: str) -> Confirmation | None:
        """The visit's latest confirmed diagnosis, or None when none was confirmed."""
        history = self.diagnosis_history(visit_id)
        return history[-1] if history else None

    def diagnosis_history(self, visit_id: str) -> list[Confirmation]:
        """Every confirmation of the visit, oldest first."""
        rows = self.tables.read(
            "registry_diagnoses", None, pc.field("visit_id") == visit_id
        ).to_pylist()
        return sorted((Confirmation(**r) for r in rows), key=lambda c: c.revision)

    def histories(self, patient_id: str | None = None) -> dict[str, list[Confirmation]]:
        """Every visit's confirmations (of one patient), oldest first, in one read."""
        flt = None if patient_id is None else pc.field("patient_id") == patient_id
        out: dict[str, list[Confirmation]] = {}
        for row in self.tables.read("registry_diagnoses", None, flt).to_pylist():
            out.setdefault(row["visit_id"], []).append(Confirmation(**row))
        return {k: sorted(v, key=lambda c: c.revision) for k, v in out.items()}

    def confirmed(self) -> dict[str, Confirmation]:
        """The latest confirmation of every visit that has one."""
        latest: dict[str, Confirmation] = {}
        for row in self.tables.read("registry_diagnoses").to_pylist():
            c = Confirmation(**row)
            if c.visit_id not in latest or c.revision > latest[c.visit_id].revision:
                latest[c.visit_id] = c
        return latest

    # ------------------------------------------------------------------ CSV import
    def preview_import(
        self, source: Path | str | bytes, mapping: VisitMapping, name: str | None = None
    ) -> ImportPreview:
        """Parse a CSV as :meth:`import_visits` would, marking rows stored already; stores nothing.

        Rows that disagree with a stored patient (sex, birth year) or name an unknown smear
        become errors here too.
        """
        preview = parse_visits_csv(source, mapping, name)
        patients = self._patients()
        smears = {s.smear_id for s in self.store.smears()}
        stored = set(self.tables.read("registry_visits", ["visit_id"])["visit_id"].to_pylist())
        rows: list[ParsedRow] = []
        errors = list(preview.errors)
        seen: dict[str, ParsedRow] = {}
        for r in preview.rows:
            problems = _conflicts(r, patients.get(r.patient_id) or seen.get(r.patient_id))
            problems += [
                ("smears", f"no smear {s!r} in this workspace; ingest it first.")
                for s in r.visit.smear_ids
                if s not in smears
            ]
            if r.diagnosis is not None:
                if not (mapping.confirmed_by or "").strip():
                    problems.append(
                        (
                            "diagnosis",
                            "a diagnosis column needs confirmed_by in the mapping: the "
                            "clinician who confirmed these diagnoses.",
                        )
                    )
                try:
                    _check_gestational(r.diagnosis, r.visit)
                except RegistryError as err:
                    problems.append(("diagnosis", str(err)))
            if problems:
                errors += [RowError(r.row, mapping.columns.get(f, f), m) for f, m in problems]
                continue
            seen.setdefault(r.patient_id, r)
            status = "duplicate" if r.visit_id in stored else "new"
            rows.append(replace(r, status=status))
        errors.sort(key=lambda e: e.row)
        return ImportPreview(preview.source, tuple(rows), tuple(errors), preview.n_rows)

    def import_visits(
        self,
        source: Path | str | bytes,
        mapping: VisitMapping,
        *,
        actor: Actor,
        name: str | None = None,
    ) -> ImportReport:
        """Store every good row of a CSV of visits; refused rows are reported, not stored.

        New patients are created from their first good row. Visits stored before are skipped
        as duplicates. A mapped diagnosis column is stored as confirmations by
        ``mapping.confirmed_by`` (a visit already confirmed the same way gets no new row).

        ``actor`` must have the ``patients`` right, and ``confirm_diagnosis`` too when the
        CSV carries diagnoses. What is stored is audited as the actor's (``patient_add``,
        ``visit_add``; the confirmations as ``diagnosis_confirm`` rows by the actor, naming the
        clinician of ``mapping.confirmed_by``).

        Raises:
            dataset.roles.PermissionDenied: the actor's role may not take one of those rights
                (nothing is stored).
        """
        entered_by = audit.authorise(actor, "patients", "visit_add")
        preview = self.preview_import(source, mapping, name)
        if any(r.diagnosis is not None for r in preview.rows):
            audit.authorise(actor, "confirm_diagnosis", "diagnosis_confirm")
        with self.tables.lock("registry_patients"):
            known = self._patients()
            new_patients: dict[str, Patient] = {}
            now = _now()
            for r in preview.rows:
                if r.patient_id not in known and r.patient_id not in new_patients:
                    new_patients[r.patient_id] = Patient(r.patient_id, r.sex, r.birth_year, now)
            if new_patients:
                self.tables.append("registry_patients", [asdict(p) for p in new_patients.values()])
        audit.record_all(
            self.store,
            [
                audit.Event(entered_by, "patient_add", p, detail={"source": preview.source})
                for p in new_patients
            ],
        )
        added, duplicates = self._store_visits(
            [(r.patient_id, r.visit) for r in preview.rows], entered_by, "import"
        )
        audit.record_all(self.store, _visit_events(entered_by, added))
        n_confirmed = 0
        by = (mapping.confirmed_by or "").strip()
        labelled = [r for r in preview.rows if r.diagnosis is not None]
        if labelled:
            with self.tables.lock("registry_diagnoses"):
                latest = self.confirmed()
                rows = []
                for r in labelled:
                    current = latest.get(r.visit_id)
                    if current is not None and current.diagnosis == r.diagnosis:
                        continue
                    c = Confirmation(
                        visit_id=r.visit_id,
                        patient_id=r.patient_id,
                        diagnosis=r.diagnosis or "",
                        confirmed_by=by,
                        confirmed_at=_now(),
                        revision=(current.revision if current else 0) + 1,
                        note=f"imported from {preview.source}, row {r.row}",
                    )
                    latest[r.visit_id] = c
                    rows.append(asdict(c))
                if rows:
                    self.tables.append("registry_diagnoses", rows)
                n_confirmed = len(rows)
            audit.record_all(
                self.store,
                [
                    audit.Event(
                        entered_by,
                        "diagnosis_confirm",
                        row["visit_id"],
                        after=row["diagnosis"],
                        detail={"patient": row["patient_id"], "confirmed_by": by, "import": True},
                    )
                    for row in rows
                ],
            )
        return ImportReport(
            source=preview.source,
            n_rows=preview.n_rows,
            added=tuple(v.visit_id for v in added),
            duplicates=tuple(duplicates),
            patients_added=tuple(new_patients),
            diagnoses_added=n_confirmed,
            errors=preview.errors,
        )


def _visit_events(entered_by: str, visits: Iterable[Visit]) -> list[audit.Event]:
    return [
        audit.Event(
            entered_by,
            "visit_add",
            v.visit_id,
            after=v.revision,
            detail={"patient": v.patient_id, "source": v.source},
        )
        for v in visits
    ]


def _conflicts(row: ParsedRow, known: Patient | ParsedRow | None) -> list[tuple[str, str]]:
    if known is None:
        return []
    problems = []
    if row.sex is not None and known.sex is not None and row.sex != known.sex:
        problems.append(("sex", f"patient {row.patient_id} is recorded as {known.sex}."))
    if (
        row.birth_year is not None
        and known.birth_year is not None
        and abs(row.birth_year - known.birth_year) > 1
    ):
        problems.append(
            ("birth_year", f"patient {row.patient_id} is recorded as born {known.birth_year}.")
        )
    if row.visit.pregnant and known.sex == "male":
        problems.append(("pregnant", f"patient {row.patient_id} is recorded as male."))
    return problems


def _fresh_pseudonym(taken: set[str]) -> str:
    while True:
        candidate = f"P-{secrets.randbelow(1_000_000):06d}"
        if candidate not in taken:
            return candidate


def _visit_row(visit: Visit) -> dict[str, Any]:
    row = {f.name: getattr(visit, f.name) for f in fields(Visit) if f.name != "entered"}
    row["smear_ids"] = list(visit.smear_ids)
    for reading in visit.entered:
        row[f"{reading.measurement}_entered"] = reading.value
        row[f"{reading.measurement}_unit"] = reading.unit
    return row


def _visit_from_row(row: dict[str, Any]) -> Visit:
    """A stored row as a visit; a value stored before units were kept reads as ``unknown``."""
    entered = []
    for name, column in CANONICAL_FIELDS.items():
        unit = row.get(f"{name}_unit")
        if unit is not None and row.get(f"{name}_entered") is not None:
            entered.append(Reading(name, row[f"{name}_entered"], unit))
        elif row.get(column) is not None:
            entered.append(Reading(name, row[column], UNKNOWN_UNIT))
    known = {f.name for f in fields(Visit)} - {"entered"}
    values = {k: v for k, v in row.items() if k in known}
    values["smear_ids"] = tuple(row.get("smear_ids") or ())
    for name in ("pregnant", "treated", "symptoms", "anaemia_or_hb_disorder", "unit_confirmed"):
        values[name] = bool(values.get(name))
    return Visit(**values, entered=tuple(entered))
