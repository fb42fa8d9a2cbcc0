"""A clinician's confirmed diagnosis of a visit, recorded with what the guidelines said then.

Promises:
    * Every confirmation stores each guideline's verdict and ``repeat_test`` at the moment of
      confirming (:func:`~training.diagnosis.service.visits.visit_rules`), so a later change
      of the thresholds never rewrites what the clinician saw.
"""

from __future__ import annotations

from dataset import audit
from dataset.roles import Actor
from training.diagnosis.registry import Confirmation, Registry
from training.diagnosis.service.visits import visit_rules

__all__ = ["confirm_visit"]


def confirm_visit(
    registry: Registry, visit_id: str, diagnosis: str, *, actor: Actor, note: str = ""
) -> Confirmation:
    """Record ``actor``'s diagnosis with what each guideline said (verdict, repeat test).

    Raises:
        dataset.roles.PermissionDenied: the actor's role may not confirm diagnoses.
        RegistryError: unknown visit or diagnosis.
    """
    audit.authorise(actor, "confirm_diagnosis", "diagnosis_confirm")  # before reading anything
    visit = registry.visit(visit_id)
    said = {
        name: {"verdict": r.verdict, "repeat_test": r.repeat_test}
        for name, r in visit_rules(visit, registry).items()
    }
    return registry.confirm(visit_id, diagnosis, actor=actor, note=note, guidelines=said)
