"""Fine-tuning: a run that starts from a trained model, and what "update the model" means.

Promises:
- :func:`resolve_start` is the one check of a start-from model, asked by
  :func:`training.service.runs.submit_training` before anything is queued and again by the job
  before it trains: ``init_from`` ("current" or a model id) becomes a concrete model id; the
  model must be a segmentation model of this workspace's zoo whose classes are the workspace's
  classes, names and order; a mismatch is refused (:class:`StartModelError`) naming the model
  and the reason.
- The architecture is the parent's: a fine-tune cannot change it, since the weights only fit
  the network they were trained in. Where the settings leave ``encoder``, ``encoder_depth``
  or ``decoder_channels`` out, the parent's are taken (and :func:`start_note` says so); where they
  name another one, the run is refused rather than silently trained as something the person
  did not ask for.
- "Update the current model" (the Train page's button, ``python -m training segment --from
  current``) is :func:`update_settings`: the current model's own recipe, started from its
  weights, on all labelled train tiles, for :data:`UPDATE_BUDGET_MIN` minutes, on this
  machine's device. :func:`submit_update` queues it under the one-run-at-a-time rule.
- :func:`auto_update` queues that update by itself once the workspace setting
  ``auto_update_every`` (off by default) counts that many labelled train or validation tiles
  that the newest segmentation run did not see; it never queues behind another run.
- Whether the fine-tuned model becomes current is decided as for any run
  (:func:`training.service.selection.select_model`): one that does not beat the current model
  on the validation tiles is kept in the zoo, not made current.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataset.roles import Actor

__all__ = [
    "CURRENT_MODEL",
    "UPDATE_BUDGET_MIN",
    "AutoUpdate",
    "StartModelError",
    "auto_update",
    "new_labelled_tiles",
    "resolve_start",
    "start_note",
    "submit_update",
    "update_settings",
]

CURRENT_MODEL = "current"
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
    if wanted == CURRENT_MODEL:
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
    for key, flag in (
        ("encoder", "--encoder"),
        ("encoder_depth", "encoder depth"),
        ("decoder_channels", "decoder channels"),
    ):
        asked = settings.get(key)
        if key == "decoder_channels" and asked is not None:
            asked = tuple(asked)[: arch["encoder_depth"]]
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
        "decoder_channels": arch["decoder_channels"],
        "encoder_weights": None,
    }


def start_note(config) -> str | None:
    """One sentence on what a run starts from, for logs and messages; None from scratch."""
    if config.init_from is None:
        return None
    return (
        f"Fine-tuning model {config.init_from}, with its architecture ({config.encoder} "
        f"encoder, depth {config.encoder_depth}, decoder "
        f"{list(config.decoder_channels[: config.encoder_depth])})."
    )


def update_settings(workspace: Path, parent: str = CURRENT_MODEL) -> dict[str, Any]:
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
    workspace: Path,
    parent: str = CURRENT_MODEL,
    overrides: dict[str, Any] | None = None,
    *,
    actor: Actor,
) -> str:
    """Queue an update of ``parent`` (the current model by default); returns the job id.

    Args:
        overrides: Settings that replace the update's (e.g. ``time_budget_min`` from
            ``--time-budget-min``); an ``encoder``, ``encoder_depth`` or ``decoder_channels``
            other than the parent's is refused.
        actor: Who starts it; the role must allow ``train`` (see :func:`submit_training`).

    Raises:
        StartModelError: The parent cannot be fine-tuned here.
        training.service.RunConflictError: A training run is already queued or running.
    """
    from training.service.runs import submit_training

    actor.require("train")  # before the parent is read: a refusal reads nothing
    # submit_training checks the merged settings again (resolve_start), so an override that
    # changes the architecture is refused there.
    settings = {**update_settings(workspace, parent), **(overrides or {})}
    return submit_training(workspace, settings, actor=actor)


@dataclass(frozen=True)
class AutoUpdate:
    """Where the automatic update stands: the setting, the new tiles, and what was done.

    Attributes:
        every: The ``auto_update_every`` setting (None: off).
        new_tiles: Labelled train and validation tiles the newest segmentation run did not see.
        job_id: The update queued now, or None.
        reason: Why nothing was queued (None when a job was).
    """

    every: int | None
    new_tiles: int
    job_id: str | None
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "every": self.every,
            "new_tiles": self.new_tiles,
            "job_id": self.job_id,
            "reason": self.reason,
        }


def new_labelled_tiles(workspace: Path) -> int:
    """Labelled train and validation tiles that the newest segmentation run did not train or
    validate on (all of them while there is no model)."""
    from dataset.store import Store
    from model_zoo import Zoo

    store = Store.open(workspace)
    labelled = set(store.labelled_tile_ids("train")) | set(store.labelled_tile_ids("validation"))
    cards = Zoo(workspace).list("segmentation")
    if not cards:
        return len(labelled)
    seen = set(cards[-1].data.get("train_tiles", [])) | set(
        cards[-1].data.get("validation_tiles", [])
    )
    return len(labelled - seen)


def auto_update(workspace: Path) -> AutoUpdate:
    """Queue an update of the current model when ``auto_update_every`` new tiles are labelled.

    Asked after a label is saved (and by ``python -m training auto-update``). Nothing is
    queued while the setting is off, fewer tiles are new, a training run is queued or running
    (it is asked again after the next save), or the current model cannot be fine-tuned.
    """
    from dataset.roles import SYSTEM
    from dataset.settings import get_settings
    from training.service.runs import RunConflictError

    every = get_settings(workspace=workspace).auto_update_every
    new = new_labelled_tiles(workspace)
    if every is None:
        return AutoUpdate(every, new, None, "automatic updates are off (auto_update_every)")
    if new < every:
        return AutoUpdate(every, new, None, f"{new} of {every} new labelled tiles so far")
    try:
        # An automatic action: the audit trail records it as the account "system".
        job_id = submit_update(workspace, actor=SYSTEM)
    except (StartModelError, RunConflictError) as exc:
        return AutoUpdate(every, new, None, str(exc))
    return AutoUpdate(every, new, job_id, None)
