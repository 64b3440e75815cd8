"""Log the model to MLflow, register a version and link it to the ZenML Model version."""

from __future__ import annotations

import json
from typing import Annotated

from sklearn.base import BaseEstimator
from zenml import get_step_context, log_metadata, step

from core.specs import TrainerSpec
from integrations.mlflow import registry as mlflow_registry
from integrations.mlflow.registry import RegisteredModel
from materializers.dataset import Dataset
from materializers.evaluation_report import EvaluationReport
from steps.training import features as feature_code
from steps.training.evaluate import final_estimator, public_class_path


def run_params(
    model: BaseEstimator, train: Dataset, report: EvaluationReport, trainer: TrainerSpec
):
    """What a run's params say: the configured trainer (with the search grid), the
    hyper-parameters the fitted estimator actually has, and which rows were counted."""
    class_path, params = trainer.for_task(train.task)
    estimator = final_estimator(model)
    chosen = {k: v for k, v in estimator.get_params(deep=False).items() if not hasattr(v, "fit")}
    return {
        "trainer": {"class_path": class_path, "params": params, "search": trainer.search},
        "estimator": {"class": public_class_path(estimator), **chosen},
        "data": {
            "name": train.name,
            "train_rows": len(train.frame),
            "test_rows": report.rows,
            **({"batches": len(train.batches)} if train.batches else {}),
        },
    }


TRAINED_ON_TAG = "zenkube.trained_on"


def trained_on(batches: list[dict]) -> str:
    """The parts a version's training rows came from, for its MLflow tag (at most 5000
    characters: the oldest parts are summed up when there are many)."""
    words = "; ".join(f"{p['batch']} ({p['rows']})" for p in batches)
    if len(words) <= 5000:
        return words
    tail, kept = [], 0
    for part in reversed(batches):
        line = f"{part['batch']} ({part['rows']})"
        if kept + len(line) > 4800:
            break
        tail.insert(0, line)
        kept += len(line) + 2
    older = batches[: len(batches) - len(tail)]
    return f"{len(older)} older parts ({sum(p['rows'] for p in older)}); " + "; ".join(tail)


def stored_at(input_name: str, fallback: str) -> str:
    """Where the artifact store keeps a step input's rows (the dataset's MLflow source)."""
    stored = get_step_context().inputs.get(input_name) or []
    return stored[0].uri if stored else fallback


def log_evidence(
    registered: RegisteredModel, train: Dataset, report: EvaluationReport, train_uri: str
) -> None:
    """Beside the model: the training rows as an MLflow dataset (digest, schema, where they
    are stored), the evaluation report and the confusion matrix, as files at the run's root
    (MLflow's compare view lists only those: two versions' reports side by side)."""
    dataset = mlflow_registry.dataset_of(train.frame, train.name, train_uri, train.target)
    mlflow_registry.log_dataset(registered.run_id, dataset, "training")
    files = {"evaluation_report.html": report.to_html()}
    confusion = report.confusion_json()
    if confusion:
        files["confusion_matrix.json"] = json.dumps(confusion, indent=1)
        files["confusion_matrix.html"] = (
            "<!doctype html><html><body style='font-family:sans-serif'>"
            f"{report.confusion_html()}</body></html>"
        )
    mlflow_registry.log_files(registered.run_id, files)


def register(
    model: BaseEstimator,
    train: Dataset,
    report: EvaluationReport,
    trainer: TrainerSpec,
    model_name: str,
    run_name: str,
    train_uri: str,
) -> RegisteredModel:
    """Log the model to the active MLflow run, register a version, and put the evidence
    beside it (`train_uri`: where the artifact store keeps the training rows)."""
    mlflow_registry.configure_from_stack()
    tags = {"zenml_run": run_name, "schema_fingerprint": train.fingerprint}
    if train.batches:  # what a retraining learned from (steps/data/pool.py)
        tags[TRAINED_ON_TAG] = trained_on(train.batches)
    registered = mlflow_registry.log_and_register(
        model,
        train.features,
        name=model_name,
        params=run_params(model, train, report, trainer),
        metrics=report.metrics,
        tags=tags,
        input_schema=train.input_schema,
        code_by_value=(feature_code,),
    )
    log_evidence(registered, train, report, train_uri)
    return registered


def version_metadata(registered: RegisteredModel) -> dict[str, str]:
    """What the ZenML Model version records of the MLflow version it registered (the
    champion's two records are matched by `mlflow_version`, integrations/mlflow/champion.py)."""
    return {
        "mlflow_model_name": registered.name,
        "mlflow_version": registered.version,
        "mlflow_model_uri": registered.model_uri,
        "mlflow_run_id": registered.run_id,
    }


@step(experiment_tracker=True)
def register_model(
    model: BaseEstimator,
    train: Dataset,
    report: EvaluationReport,
    trainer: TrainerSpec,
    model_name: str,
) -> Annotated[RegisteredModel, "registered_model"]:
    """Register a new MLflow version (LoggedModel URI, signature, input example)."""
    run_name = get_step_context().pipeline_run.name
    registered = register(
        model, train, report, trainer, model_name, run_name, stored_at("train", train.name)
    )
    log_metadata(version_metadata(registered), infer_model=True)
    return registered
