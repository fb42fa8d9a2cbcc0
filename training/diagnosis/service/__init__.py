"""The diagnosis workflows the page, the command line and the job runner share.

One module per workflow:
    ``visits``: a visit's measurements and its WHO, ADA and NICE verdicts.
    ``confirmation``: a clinician's confirmed diagnosis, with what the guidelines said.
    ``patients``: a patient's visits, and the HbA1c and fasting-glucose forecast.
    ``feature_rows``: a visit as the classifier's feature row (smear features included).
    ``training_data``: training rows from the registry's confirmed diagnoses or a CSV.
    ``runs``: training a classifier into the zoo, in-process or as a job.
    ``evaluation``: cross-validating recipes without training for the zoo.
    ``prediction``: a trained classifier's view of a visit or a file.

Every public name of those modules is importable from here, as it was from the single
``training/diagnosis/service.py`` this package replaces. Importing it is light: no torch,
no Streamlit, no matplotlib. Everything is decision support for a clinician, for research
use: :data:`DISCLAIMER`.
"""

from training.diagnosis import DISCLAIMER
from training.diagnosis.service.confirmation import confirm_visit
from training.diagnosis.service.evaluation import evaluate
from training.diagnosis.service.feature_rows import (
    REGISTRY_FEATURES,
    row_features,
    smear_features,
    visit_features,
)
from training.diagnosis.service.patients import open_patient, patient_forecast, patient_summary
from training.diagnosis.service.prediction import (
    PredictionReport,
    VisitPrediction,
    load_model,
    model_warnings,
    predict_file,
    predict_visit,
)
from training.diagnosis.service.runs import (
    TRAIN_JOB_KIND,
    TRAIN_JOB_TARGET,
    StagedModel,
    TrainRequest,
    classifier_config,
    fit_and_stage,
    submit_training,
    train,
    train_job,
)
from training.diagnosis.service.training_data import (
    BINARY_CLASSES,
    MIN_ROWS_PER_CLASS,
    CsvFormat,
    DataSource,
    DiagnosisError,
    Target,
    TrainingSet,
    csv_training_set,
    load_mapping,
    registry_training_set,
    training_set,
)
from training.diagnosis.service.visits import (
    earlier_results,
    visit_from_entry,
    visit_measurements,
    visit_rules,
    visit_summary,
)

__all__ = [
    "BINARY_CLASSES",
    "DISCLAIMER",
    "MIN_ROWS_PER_CLASS",
    "REGISTRY_FEATURES",
    "TRAIN_JOB_KIND",
    "TRAIN_JOB_TARGET",
    "CsvFormat",
    "DataSource",
    "DiagnosisError",
    "PredictionReport",
    "StagedModel",
    "Target",
    "TrainRequest",
    "TrainingSet",
    "VisitPrediction",
    "classifier_config",
    "confirm_visit",
    "csv_training_set",
    "earlier_results",
    "evaluate",
    "fit_and_stage",
    "load_mapping",
    "load_model",
    "model_warnings",
    "open_patient",
    "patient_forecast",
    "patient_summary",
    "predict_file",
    "predict_visit",
    "registry_training_set",
    "row_features",
    "smear_features",
    "submit_training",
    "train",
    "train_job",
    "training_set",
    "visit_features",
    "visit_from_entry",
    "visit_measurements",
    "visit_rules",
    "visit_summary",
]
