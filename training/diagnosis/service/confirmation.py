"""A clinician's confirmed diagnosis of a visit, recorded with what the guidelines said then.

Promises:
    * Every confirmation stores each guideline's verdict and ``repeat_test`` at the moment of
      confirming (:func:`~training.diagnosis.service.visits.visit_rules`), so a later change
      of the thresholds never rewrites what the clinician saw.
"""

from __future__ import annotations

from training.diagnosis.registry import Confirmation, Registry
from training.diagnosis.service.visits import visit_rules

__all__ = ["confirm_visit"]


def confirm_visit(
    registry: Registry, visit_id: str, diagnosis: str, *, by: str, note: str = ""
) -> Confirmation:
    """Record a clinician's diagnosis with what each guideline said (verdict, repeat test).

    Raises:
        RegistryError: unknown visit or diagnosis, or no clinician named.
    """
    visit = registry.visit(visit_id)
    said = {
        name: {"verdict": r.verdict, "repeat_test": r.repeat_test}
        for name, r in visit_rules(visit, registry).items()
    }
    return registry.confirm(visit_id, diagnosis, by=by, note=note, guidelines=said)
