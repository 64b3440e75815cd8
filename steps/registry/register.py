"""Log the model to MLflow, register a version and link it to the ZenML Model version."""

from __future__ import annotations

from typing import Annotated

from sklearn.base import BaseEstimator
from zenml import get_step_context, log_metadata, step

from core.specs import TrainerSpec
from integrations import mlflow_registry
from integrations.mlflow_registry import RegisteredModel
from materializers.dataset import Dataset
from materializers.evaluation_report import EvaluationReport
from steps.skip import note_skipped
from steps.training import features as feature_code


@step(experiment_tracker=True)
def register_model(
    model: BaseEstimator,
    train: Dataset,
    report: EvaluationReport,
    trainer: TrainerSpec,
    model_name: str,
) -> Annotated[RegisteredModel, "registered_model"]:
    """Register a new MLflow version (LoggedModel URI, signature, input example)."""
    if train.skipped:
        note_skipped("register_model", train.skipped)
        return RegisteredModel(name=model_name, version="", model_uri="")
    mlflow_registry.configure_from_stack()
    context = get_step_context()
    tags = {"zenml_run": context.pipeline_run.name, "schema_fingerprint": train.fingerprint}
    class_path, params = trainer.for_task(train.task)
    resolved = {"class_path": class_path, "params": params, "search": trainer.search}
    registered = mlflow_registry.log_and_register(
        model,
        train.features,
        name=model_name,
        params={"trainer": resolved, "dataset": train.name, "rows": len(train.frame)},
        metrics=report.metrics,
        tags=tags,
        input_schema=train.input_schema,
        code_by_value=(feature_code,),
    )
    log_metadata(
        {
            "mlflow_model_name": registered.name,
            "mlflow_version": registered.version,
            "mlflow_model_uri": registered.model_uri,
            "mlflow_run_id": registered.run_id,
        },
        infer_model=True,
    )
    return registered
