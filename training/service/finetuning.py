"""Fine-tuning: a run that starts from a trained model, and what "update the model" means.

Promises:
- :func:`resolve_start` is the one check of a start-from model, asked by
  :func:`training.service.runs.submit_training` before anything is queued and again by the job
  before it trains: ``init_from`` ("current" or a model id) becomes a concrete model id; the
  model must be a segmentation model of this workspace's zoo whose classes are the workspace's
  classes, names and order; a mismatch is refused (:class:`StartModelError`) naming the model
  and the reason.
- The architecture is the parent's: a fine-tune cannot change it, since the weights only fit
  the network they were trained in. Where the settings leave ``encoder`` or
  ``encoder_depth`` out, the parent's are taken (and :func:`start_note` says so); where they
  name another one, the run is refused rather than silently trained as something the person
  did not ask for.
- "Update the current model" (the Train page's button, ``python -m training segment --from
  current``) is :func:`update_settings`: the current model's own recipe, started from its
  weights, on all labelled train tiles, for :data:`UPDATE_BUDGET_MIN` minutes, on this
  machine's device. :func:`submit_update` queues it under the one-run-at-a-time rule.
- Whether the fine-tuned model becomes current is decided as for any run
  (:func:`training.service.selection.select_model`): one that does not beat the current model
  on the validation tiles is kept in the zoo, not made current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "CURRENT",
    "UPDATE_BUDGET_MIN",
    "StartModelError",
    "resolve_start",
    "start_note",
    "submit_update",
    "update_settings",
]

CURRENT = "current"
# Short enough to run between labelling sessions on a CPU; long enough, from a trained model,
# to take in a few dozen new tiles.
UPDATE_BUDGET_MIN = 3.0
# The parent's settings an update does not take: this run's own budget and device, its parent,
# and encoder weights (every weight comes from the parent).
_NOT_INHERITED = {"time_budget_min", "device", "init_from", "encoder_weights", "num_threads"}


class StartModelError(ValueError):
    """The model a run was asked to start from cannot be fine-tuned here (CLI exit 1)."""


def _refuse(model: str, reason: str) -> StartModelError:
    return StartModelError(f"Cannot fine-tune from model {model}: {reason}.")


def resolve_start(workspace: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with ``init_from`` checked and made concrete (see the module's promises).

    Args:
        workspace: The workspace whose zoo holds the model and whose schema gives the classes.
        settings: Fields of :class:`training.segment.SegTrainConfig`; without ``init_from``
            they are returned unchanged.

    Returns:
        The settings with ``init_from`` the parent's model id, ``encoder`` and
        ``encoder_depth`` the parent's, and no ``encoder_weights``.

    Raises:
        StartModelError: No current model, an unknown id, another kind, other classes or
            another architecture; the message names the model and the reason.
    """
    wanted = settings.get("init_from")
    if wanted is None:
        return settings
    from dataset.store import Store
    from model_zoo import UnknownModelError, Zoo
    from training.model import checkpoint_architecture

    zoo = Zoo(workspace)
    if wanted == CURRENT:
        card = zoo.current("segmentation")
        if card is None:
            raise StartModelError(
                "Cannot fine-tune the current model: there is no current segmentation model "
                "yet; train one from scratch first."
            )
    else:
        try:
            card = zoo.get(str(wanted))
        except UnknownModelError as exc:
            raise _refuse(str(wanted), f"{exc} (python -m model_zoo list)") from None
    name = card.model_id
    if card.kind != "segmentation":
        raise _refuse(name, f"it is a {card.kind} model, not a segmentation model")
    classes = list(Store.open(workspace).schema().names)
    if list(card.classes) != classes:
        how = "in another order" if sorted(card.classes) == sorted(classes) else "other classes"
        raise _refuse(
            name,
            f"it predicts {', '.join(card.classes)} but the workspace classes are "
            f"{', '.join(classes)} ({how}); a fine-tune keeps its parent's classes, so train "
            "from scratch",
        )
    try:
        arch = checkpoint_architecture(zoo.path(name))
    except ValueError as exc:
        raise _refuse(name, str(exc)) from None
    for key, flag in (("encoder", "--encoder"), ("encoder_depth", "encoder depth")):
        asked = settings.get(key)
        if asked is not None and asked != arch[key]:
            raise _refuse(
                name,
                f"it was trained with {key} {arch[key]}, not {asked}; a fine-tune keeps its "
                f"parent's architecture, so leave out {flag} or train from scratch",
            )
    if settings.get("encoder_weights") is not None:
        raise _refuse(
            name,
            "encoder weights are for a start from scratch; a fine-tune takes every weight from "
            "its parent",
        )
    return {
        **settings,
        "init_from": name,
        "encoder": arch["encoder"],
        "encoder_depth": arch["encoder_depth"],
        "encoder_weights": None,
    }


def start_note(config) -> str | None:
    """One sentence on what a run starts from, for logs and messages; None from scratch."""
    if config.init_from is None:
        return None
    return (
        f"Fine-tuning model {config.init_from}, with its architecture ({config.encoder} "
        f"encoder, depth {config.encoder_depth})."
    )


def update_settings(workspace: Path, parent: str = CURRENT) -> dict[str, Any]:
    """The settings of an update: ``parent``'s own recipe, from its weights, for
    :data:`UPDATE_BUDGET_MIN` minutes, checked by :func:`resolve_start`.

    The Train page asks this to decide whether **Update the current model** can be pressed
    (a :class:`StartModelError` is the reason why not) and ``python -m training segment --from``
    asks it for the settings its flags then override.

    Raises:
        StartModelError: There is no such model, or it cannot be fine-tuned here.
    """
    from model_zoo import Zoo
    from training.segment import SegTrainConfig

    resolved = resolve_start(workspace, {"init_from": parent})
    card = Zoo(workspace).get(resolved["init_from"])
    inherited = {
        k: v
        for k, v in card.settings.items()
        if k in SegTrainConfig.model_fields and k not in _NOT_INHERITED
    }
    return {**inherited, **resolved, "time_budget_min": UPDATE_BUDGET_MIN}


def submit_update(
    workspace: Path, parent: str = CURRENT, overrides: dict[str, Any] | None = None
) -> str:
    """Queue an update of ``parent`` (the current model by default); returns the job id.

    Args:
        overrides: Settings that replace the update's (e.g. ``time_budget_min`` from
            ``--time-budget-min``); ``encoder`` or ``encoder_depth`` other than the parent's
            are refused.

    Raises:
        StartModelError: The parent cannot be fine-tuned here.
        training.service.RunConflictError: A training run is already queued or running.
    """
    from training.service.runs import submit_training

    # submit_training checks the merged settings again (resolve_start), so an override that
    # changes the architecture is refused there.
    return submit_training(workspace, {**update_settings(workspace, parent), **(overrides or {})})
