"""Load a bundled scikit-learn dataset or a CSV/Parquet file into a `Dataset`."""

from __future__ import annotations

import os
from typing import Annotated

import pandas as pd
from sklearn import datasets as sk_datasets
from zenml import step
from zenml.io import fileio

from materializers.dataset import Dataset
from steps.errors import ConfigError
from steps.specs import BUNDLED_DATASETS, DataSpec

BUNDLED_TARGET = "target"


def read_table(path: str) -> pd.DataFrame:
    """Read a CSV or Parquet file from a local path or any artifact-store URI."""
    if not fileio.exists(path):
        raise ConfigError(
            f"Data file not found: {path}. Pass an existing CSV/Parquet path or URI, or a bundled "
            f"dataset name ({', '.join(BUNDLED_DATASETS)})."
        )
    suffix = os.path.splitext(path)[1].lower()
    with fileio.open(path, "rb") as f:
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(f)
        if suffix in {".csv", ".txt", ""}:
            return pd.read_csv(f)
    raise ConfigError(f"Cannot read {path}: use a .csv or .parquet file.")


def infer_task(labels: pd.Series) -> str:
    """Classification for text, boolean or few-valued integer labels; otherwise regression."""
    values = labels.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification"
    if pd.api.types.is_integer_dtype(values) or (values == values.round()).all():
        return "classification" if values.nunique() <= 20 else "regression"
    return "regression"


def load_dataset(spec: DataSpec) -> Dataset:
    """Build a `Dataset` from the spec; raises `ConfigError` for an unknown name or file."""
    if spec.source in BUNDLED_DATASETS:
        bunch = getattr(sk_datasets, f"load_{spec.source}")(as_frame=True)
        frame = bunch.frame
        target = spec.target or BUNDLED_TARGET
        task = BUNDLED_DATASETS[spec.source] if spec.task == "auto" else spec.task
    else:
        if "/" not in spec.source and "." not in spec.source:
            raise ConfigError(
                f"Unknown dataset '{spec.source}'. Use one of {', '.join(BUNDLED_DATASETS)} or "
                "a path to a CSV/Parquet file."
            )
        frame = read_table(spec.source)
        if not spec.target:
            raise ConfigError(
                f"Which column of {spec.source} is the label? Pass --target COLUMN or set "
                "data.target in the config."
            )
        target = spec.target
        task = spec.task
        if task == "auto":
            task = infer_task(frame[target]) if target in frame.columns else "classification"
    if spec.features is not None:
        keep = [c for c in frame.columns if c in spec.features or c == target]
        # Unknown feature names are kept out of the frame but reported by validation.
        frame = frame[keep]
    frame.columns = [str(c) for c in frame.columns]
    return Dataset(frame=frame.reset_index(drop=True), target=target, task=task, name=spec.source)


@step
def load_data(spec: DataSpec) -> Annotated[Dataset, "raw_dataset"]:
    """Load the configured dataset with its target and task."""
    return load_dataset(spec)
