"""Which model version scores a batch, and the data it was trained on (the drift reference)."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from integrations.mlflow import champion
from integrations.mlflow import registry as mlflow_registry
from integrations.mlflow.registry import RegisteredModel
from materializers.dataset import Dataset


def scoring_version(model_name: str, version: str = "") -> tuple[RegisteredModel, Dataset]:
    """The champion (or MLflow `version`) of `model_name` and its own training data.

    Both are resolved once, so the rows are scored and checked for drift against the same
    version even if the champion moves while the batch is scored."""
    if not version:
        chosen = champion.require(model_name, "score the batch")
        zenml_version = champion.zenml_version(model_name)
    else:
        mlflow_registry.configure_from_stack()
        hint = " (leave out --version to score with the champion)"
        chosen = mlflow_registry.require_version(model_name, version, hint)
        zenml_version = champion.zenml_version_for(model_name, chosen.version)
    return chosen, zenml_version.get_artifact("train_set").load()


@step(enable_cache=False)
def choose_model(
    model_name: str, version: str
) -> tuple[Annotated[RegisteredModel, "scoring_model"], Annotated[Dataset, "reference_set"]]:
    """Pick the version that scores the batch (the champion unless one is named) and its
    training data, which the drift check compares the batch with."""
    chosen, reference = scoring_version(model_name, version)
    return chosen, reference
