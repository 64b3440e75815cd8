"""Data validation: collect every problem, then fail once with all of them."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from zenml import step

from core.errors import DataValidationError
from core.specs import DataSpec
from materializers.dataset import NUMERIC, Dataset

# A stratified train/valid/test split needs a few rows of every class.
MIN_CLASS_ROWS = 5


def shown(value) -> str:
    """A value as a message shows it: `2013`, `'red'`, never `np.int64(2013)`."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _non_numeric_examples(column: pd.Series) -> list[str]:
    """Values of a text column that do not parse as numbers, if most of them do."""
    values = column.dropna()
    if values.empty or pd.api.types.is_numeric_dtype(values):
        return []
    parsed = pd.to_numeric(values, errors="coerce")
    bad = values[parsed.isna()]
    # A column that is mostly numbers with a few words is a broken numeric column;
    # a column of words is categorical and fine.
    if len(bad) and parsed.notna().mean() >= 0.5:
        return [str(v) for v in bad.unique()[:3]]
    return []


def find_data_problems(data: Dataset, spec: DataSpec | None = None) -> list[str]:
    """Every reason this dataset cannot be trained on, as readable sentences."""
    spec = spec or DataSpec()
    frame, target = data.frame, data.target
    problems: list[str] = []
    if target not in frame.columns:
        problems.append(
            f"target column '{target}' is missing (columns are: {', '.join(map(str, frame.columns))})"
        )
    if spec.features is not None:
        unknown = [c for c in spec.features if c not in data.schema]
        if unknown:
            problems.append(f"unknown feature columns in config: {', '.join(unknown)}")
    if len(frame) < spec.min_rows:
        problems.append(f"only {len(frame)} rows; at least {spec.min_rows} are needed")
    if target in frame.columns:
        labels = frame[target]
        if labels.isna().any():
            problems.append(
                f"target '{target}' has {int(labels.isna().sum())} empty values; drop or fill them"
            )
        if data.task == "classification" and labels.dropna().nunique() < 2:
            problems.append(
                f"target '{target}' has a single class; classification needs two or more"
            )
        elif data.task == "classification":
            counts = labels.dropna().value_counts()
            rare = counts[counts < MIN_CLASS_ROWS]
            if len(rare):
                listed = ", ".join(f"{shown(k)} ({v})" for k, v in rare.head(4).items())
                more = f" and {len(rare) - 4} more" if len(rare) > 4 else ""
                problems.append(
                    f"{len(rare)} class(es) of '{target}' have fewer than {MIN_CLASS_ROWS} rows "
                    f"({listed}{more}), too few for a stratified train/valid/test split: drop "
                    "or merge them, or set data.task: regression if the target is a quantity"
                )
    if not data.schema:
        problems.append("there are no feature columns besides the target")
    for column, kind in data.schema.items():
        values = frame[column]
        if values.isna().all():
            problems.append(f"column '{column}' is entirely empty")
            continue
        if values.dropna().nunique() <= 1:
            problems.append(f"column '{column}' is constant ({shown(values.dropna().iloc[0])})")
        bad = _non_numeric_examples(values)
        if bad:
            problems.append(f"column '{column}' is numeric but has non-numeric values: {bad}")
        if kind == NUMERIC and np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).any():
            problems.append(f"column '{column}' has infinite values")
    return problems


def check_dataset(data: Dataset, spec: DataSpec | None = None) -> Dataset:
    """Return the dataset unchanged, or raise `DataValidationError` listing every problem."""
    problems = find_data_problems(data, spec)
    if problems:
        listing = "; ".join(problems)
        raise DataValidationError(
            f"The dataset '{data.name}' failed validation with {len(problems)} problem(s): "
            f"{listing}. Fix the data (or the config) and run again; nothing was trained or "
            "registered."
        )
    return data


@step
def validate_data(data: Dataset, spec: DataSpec) -> Annotated[Dataset, "validated_dataset"]:
    """Stop the pipeline here if the data has any problem; pass it on unchanged otherwise."""
    return check_dataset(data, spec)
