"""The job kinds there are: one table of kind → target, which the services submit from and
the pages and CLIs read (instead of string literals repeated across files).

Promises:
- Every kind names a ``module:function`` job target (:mod:`training.jobs`) that exists.
- An unknown kind is refused with the list of valid ones (:func:`target_of`).
- Cancelling a job needs the right that starting it needs (:func:`cancel_right`): ``train``
  for a training run, ``suggest`` for scoring (:mod:`dataset.roles`), and the admin's
  ``train`` for any other kind the job runner was given.
"""

from __future__ import annotations

TRAIN_SEGMENTATION = "train-segmentation"
SCORE = "score"
TRAIN_DIAGNOSIS = "train-diagnosis"

JOB_KINDS: dict[str, str] = {
    TRAIN_SEGMENTATION: "training.service.runs:segment_job",
    SCORE: "training.service.scoring:score_job",
    TRAIN_DIAGNOSIS: "training.diagnosis.service.runs:train_job",
}

# kind -> the dataset.roles action whose right cancels it
_CANCEL_RIGHTS: dict[str, str] = {
    TRAIN_SEGMENTATION: "train",
    SCORE: "suggest",
    TRAIN_DIAGNOSIS: "train",
}

__all__ = [
    "JOB_KINDS",
    "SCORE",
    "TRAIN_DIAGNOSIS",
    "TRAIN_SEGMENTATION",
    "cancel_right",
    "target_of",
]


def target_of(kind: str) -> str:
    """The job target of ``kind``.

    Raises:
        KeyError: ``kind`` is not a job kind; the message lists the valid ones.
    """
    try:
        return JOB_KINDS[kind]
    except KeyError:
        raise KeyError(
            f"unknown job kind {kind!r}; the kinds are: {', '.join(JOB_KINDS)}"
        ) from None


def cancel_right(kind: str) -> str:
    """The role action (:data:`dataset.roles.ACTIONS`) an account needs to cancel a ``kind``
    job; ``train`` (an admin's) for a kind outside :data:`JOB_KINDS`, which the job runner
    accepts (it runs any target it is given)."""
    return _CANCEL_RIGHTS.get(kind, "train")
