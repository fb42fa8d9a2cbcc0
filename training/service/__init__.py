"""Segmentation as the workspace sees it: the rules the pages and the CLIs share.

One module per workflow, each joining the store, the model zoo and the job runner to the
plain-data functions of :mod:`training.segment`, :mod:`training.inference`,
:mod:`training.strategies` and :mod:`training.analysis`. Nothing here imports Streamlit.

Modules:
    ``runs``: which training runs may start, on which device, and the job that trains one.
    ``finetuning``: a run that starts from a trained model, and what "update the model" means.
    ``selection``: whether a new model beats the current one (or the colour rules).
    ``promotion``: promote and roll back, and the re-scoring they trigger.
    ``models``: the segmentation model loaded for inference, and its class check.
    ``prefilling``: the starting mask of a tile (the model's, or the colour rules').
    ``scoring``: scoring unlabelled tiles, cached per checkpoint; the scoring job.
    ``suggestions``: the next tiles to label.
    ``measured``: the shipped active-learning measurement and the default strategy it earns.
    ``smear_analysis``: counts and shares of a smear, and how far the model can be trusted.
    ``evaluation``: a model's scores on image/mask pairs from outside the workspace.
    ``tables``: the ``scores`` and ``analyses`` tables.

Every public name of those modules is importable from here, as it was from the single
``training/service.py`` this package replaces.
"""

from training.service.evaluation import evaluate_pairs
from training.service.finetuning import (
    CURRENT_MODEL,
    UPDATE_BUDGET_MIN,
    AutoUpdate,
    StartModelError,
    auto_update,
    new_labelled_tiles,
    resolve_start,
    start_note,
    submit_update,
    update_settings,
)
from training.service.measured import (
    FALLBACK_DIVERSITY,
    FALLBACK_STRATEGY,
    MEASUREMENT_PATH,
    ArmResult,
    MeasuredDefault,
    Measurement,
    beats_random,
    choose_default,
    load_measurement,
    measured_default,
    write_measurement,
)
from training.service.models import LoadedModel, check_classes, load_model
from training.service.prefilling import Prefill, prefill
from training.service.promotion import (
    PointerChange,
    promote_model,
    rollback_model,
    workspace_classes,
)
from training.service.runs import (
    SEGMENT_TARGET,
    TRAIN_KIND,
    RunConflictError,
    active_training,
    conflict_message,
    load_samples,
    segment_job,
    split_counts,
    submit_training,
    training_device,
)
from training.service.scoring import (
    DEFAULT_STRATEGY,
    SCORE_TARGET,
    cached_scores,
    native_bf16,
    queue_rescoring,
    score_job,
    score_unlabelled,
    scoring_inference,
    submit_scoring,
    unlabelled_tile_ids,
)
from training.service.selection import (
    EFFORT_MIN_REGION_PX,
    RULES,
    PrefillEffort,
    Selection,
    choose,
    expected_saving,
    prefill_effort,
    select_model,
    validation_metrics,
)
from training.service.smear_analysis import (
    POOR_IOU,
    ModelQuality,
    analyze_smear,
    latest_smear_features,
    model_quality,
)
from training.service.suggestions import (
    FLAT_TOLERANCE,
    FLAT_TOP,
    Suggestion,
    Suggestions,
    flat_note,
    suggest,
)
from training.service.tables import ANALYSES, SCORES, register_tables

__all__ = [
    "ANALYSES",
    "CURRENT_MODEL",
    "DEFAULT_STRATEGY",
    "EFFORT_MIN_REGION_PX",
    "FALLBACK_DIVERSITY",
    "FALLBACK_STRATEGY",
    "FLAT_TOLERANCE",
    "FLAT_TOP",
    "MEASUREMENT_PATH",
    "POOR_IOU",
    "RULES",
    "SCORES",
    "SCORE_TARGET",
    "SEGMENT_TARGET",
    "TRAIN_KIND",
    "UPDATE_BUDGET_MIN",
    "ArmResult",
    "AutoUpdate",
    "LoadedModel",
    "MeasuredDefault",
    "Measurement",
    "ModelQuality",
    "PointerChange",
    "Prefill",
    "PrefillEffort",
    "RunConflictError",
    "Selection",
    "StartModelError",
    "Suggestion",
    "Suggestions",
    "active_training",
    "analyze_smear",
    "auto_update",
    "beats_random",
    "cached_scores",
    "check_classes",
    "choose",
    "choose_default",
    "conflict_message",
    "evaluate_pairs",
    "expected_saving",
    "flat_note",
    "latest_smear_features",
    "load_measurement",
    "load_model",
    "load_samples",
    "measured_default",
    "model_quality",
    "native_bf16",
    "new_labelled_tiles",
    "prefill",
    "prefill_effort",
    "promote_model",
    "queue_rescoring",
    "register_tables",
    "resolve_start",
    "rollback_model",
    "score_job",
    "score_unlabelled",
    "scoring_inference",
    "segment_job",
    "select_model",
    "split_counts",
    "start_note",
    "submit_scoring",
    "submit_training",
    "submit_update",
    "suggest",
    "training_device",
    "unlabelled_tile_ids",
    "update_settings",
    "validation_metrics",
    "workspace_classes",
    "write_measurement",
]
