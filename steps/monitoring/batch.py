"""Load the current batch and the champion's reference data; predict with the champion."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from zenml import step

from core.errors import ConfigError, DataValidationError
from integrations.mlflow import champion
from integrations.mlflow import registry as mlflow_registry
from materializers.dataset import NUMERIC, Dataset
from materializers.evaluation_report import EvaluationReport
from steps.data.load import read_table
from steps.data.validate import shown

PREDICTION = "prediction"


def check_batch(frame: pd.DataFrame, reference: Dataset, name: str = "batch") -> Dataset:
    """The batch as a Dataset with the reference schema, or one error naming every problem."""
    problems = []
    if frame.empty:
        problems.append("the batch has no rows")
    features = list(reference.schema)
    missing = [c for c in features if c not in frame.columns]
    # Columns the model left out as row identifiers may come along; they are not inputs.
    ignored = set(reference.ignored_columns)
    extra = [
        c for c in frame.columns if c not in features and c != reference.target and c not in ignored
    ]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected columns: {', '.join(map(str, extra))} (drop them or retrain)")
    for column in features:
        if column in frame.columns and reference.schema[column] == NUMERIC and not frame.empty:
            values = frame[column]
            if not pd.api.types.is_numeric_dtype(values):
                bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
                example = f" (e.g. {shown(bad.iloc[0])})" if len(bad) else ""
                problems.append(f"column '{column}' should be numeric but is text{example}")
            else:
                infinite = np.isinf(values.to_numpy(dtype=float, na_value=np.nan))
                if infinite.any():
                    problems.append(
                        f"column '{column}' has {int(infinite.sum())} infinite value(s) (first at "
                        f"row {int(infinite.argmax())}); replace them with a number or leave "
                        "the cell empty"
                    )
    if problems:
        raise DataValidationError(
            f"The monitoring batch '{name}' does not match the champion's data: "
            + "; ".join(problems)
            + ". Nothing was scored, retrained or redeployed."
        )
    keep = features + ([reference.target] if reference.target in frame.columns else [])
    if list(frame.columns) != keep:  # a copy only when columns must go or move
        frame = frame[keep]
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0:
        frame = frame.reset_index(drop=True)
    return Dataset(
        frame=frame,
        target=reference.target,
        task=reference.task,
        name=name,
        schema=dict(reference.schema),
        ignored_columns=list(reference.ignored_columns),
    )


def champion_artifacts(model_name: str) -> tuple[Dataset, EvaluationReport]:
    """The production ZenML Model version's training data and test evaluation."""
    version = champion.require_champion(model_name, "monitor").zenml_version
    return version.get_artifact("train_set").load(), version.get_artifact(
        "evaluation_report"
    ).load()


@step(enable_cache=False)
def load_reference(
    model_name: str,
) -> tuple[Annotated[Dataset, "reference_set"], Annotated[EvaluationReport, "champion_report"]]:
    """Find the champion's own training data and test metrics through its ZenML Model version."""
    reference, report = champion_artifacts(model_name)
    return reference, report


@step(enable_cache=False)
def load_batch(source: str, reference: Dataset) -> Annotated[Dataset, "current_batch"]:
    """Read the current batch; stop with a clear error if its columns do not match."""
    if not source:
        raise ConfigError("Which batch? Pass `--input FILE` (CSV or Parquet).")
    return check_batch(read_table(source), reference, source)


def predict_in_chunks(model, features: pd.DataFrame, rows: int = 100_000) -> np.ndarray:
    """`model.predict` on slices of `rows` rows: the same answers (a prediction depends
    on its own row only), without the pipeline's transformers copying the whole batch."""
    if len(features) <= rows:
        return np.asarray(model.predict(features))
    return np.concatenate(
        [
            np.asarray(model.predict(features.iloc[i : i + rows]))
            for i in range(0, len(features), rows)
        ]
    )


@step(enable_cache=False)
def predict_batch(batch: Dataset, model_name: str) -> Annotated[Dataset, "predictions"]:
    """Score the batch with the champion from the MLflow registry."""
    model = mlflow_registry.load_model(champion.require(model_name, "score").model_uri)
    # Only the predictions: the batch itself is already stored once (current_batch).
    frame = pd.DataFrame({PREDICTION: predict_in_chunks(model, batch.features)})
    return Dataset(
        frame=frame, target=PREDICTION, task=batch.task, name=f"{batch.name}:predictions"
    )
