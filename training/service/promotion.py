"""What a promotion or a roll-back of the current model may do, and what it triggers.

Promises:
- A promotion is refused when the model's classes differ from the workspace's or (for
  segmentation) its weights do not load and run (:func:`training.model.promotion_check`).
- Only a role that may ``promote`` (:mod:`dataset.roles`) promotes or rolls back; the check is
  made here, whoever calls.
- A new current segmentation model, by promotion or roll-back, queues re-scoring of the
  unlabelled tiles (:func:`training.service.scoring.queue_rescoring`), so suggestions follow
  it; the Train page and ``python -m training promote|rollback`` both call these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataset import audit
from dataset.roles import Actor
from dataset.store import Store, StoreError
from training.service.scoring import queue_rescoring

__all__ = ["PointerChange", "promote_model", "rollback_model", "workspace_classes"]


@dataclass(frozen=True)
class PointerChange:
    """What a promotion or a roll-back did.

    Attributes:
        card: The model that is now current.
        previous: The model id that was current before, or None.
        rescoring: The scoring job queued for the new current model; None when one was
            already pending or the kind is not ranked by scores (diagnosis).
    """

    card: Any
    previous: str | None
    rescoring: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.card.kind,
            "current": self.card.model_id,
            "previous": self.previous,
            "rescoring_job": self.rescoring,
        }


def workspace_classes(workspace: Path) -> list[str] | None:
    """The workspace's class names, or None while it has no class list (no check then)."""
    try:
        return list(Store.open(workspace).schema().names)
    except StoreError:
        return None


def promote_model(workspace: Path, model_id: str, *, actor: Actor) -> PointerChange:
    """Make ``model_id`` current: refused when its classes differ from the workspace's or (for
    segmentation) its weights do not load and run (:func:`training.model.promotion_check`);
    a new current segmentation model queues re-scoring of the unlabelled tiles.

    Args:
        actor: Who promotes: the role must allow ``promote``; the audit trail gets a
            ``promote`` row once the model is current.

    Raises:
        dataset.roles.PermissionDenied: The actor's role may not promote (nothing changes).
        model_zoo.ZooError: Unknown id, class mismatch, or weights that do not load.
    """
    from model_zoo import Zoo
    from training.model import promotion_check

    name = audit.authorise(actor, "promote", "promote")
    zoo = Zoo(workspace)
    card = zoo.get(model_id)  # unknown ids fail before the workspace is touched
    before = zoo.current(card.kind)
    card = zoo.promote(
        card.model_id, classes=workspace_classes(workspace), verify=promotion_check(card)
    )
    previous = before.model_id if before else None
    _audit(workspace, name, "promote", card, previous)
    return PointerChange(card, previous, _rescore(workspace, card))


def rollback_model(workspace: Path, kind: str = "segmentation", *, actor: Actor) -> PointerChange:
    """Return ``kind`` to the model that was current before; segmentation queues re-scoring.

    Args:
        actor: Who rolls back: the role must allow ``promote``; the audit trail gets a
            ``rollback`` row once it is done.

    Raises:
        dataset.roles.PermissionDenied: The actor's role may not roll back (nothing changes).
        model_zoo.ZooError: Nothing to roll back to.
    """
    from model_zoo import Zoo

    name = audit.authorise(actor, "promote", "rollback")
    zoo = Zoo(workspace)
    before = zoo.current(kind)
    card = zoo.rollback(kind)
    previous = before.model_id if before else None
    _audit(workspace, name, "rollback", card, previous)
    return PointerChange(card, previous, _rescore(workspace, card))


def _audit(workspace: Path, actor: str, action: str, card, previous: str | None) -> None:
    audit.record(
        workspace,
        actor=actor,
        action=action,
        object_id=card.model_id,
        before=previous,
        after=card.model_id,
        detail={"kind": card.kind},
    )


def _rescore(workspace: Path, card) -> str | None:
    return queue_rescoring(workspace) if card.kind == "segmentation" else None
