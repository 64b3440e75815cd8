"""Fit preprocessing + estimator as one scikit-learn pipeline, with an optional search."""

from __future__ import annotations

import importlib
import itertools
from typing import Annotated, Any

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from zenml import log_metadata, step

from materializers.dataset import CATEGORICAL, NUMERIC, Dataset
from steps.errors import ConfigError
from steps.specs import TrainerSpec
from steps.training.metrics import compute_metrics, primary_metric, score_is_better


def estimator_class(class_path: str) -> type:
    """Import an estimator class from its dotted path, with a clear error if it fails."""
    module_name, _, class_name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"trainer.class_path '{class_path}' cannot be imported ({exc}); use a dotted path "
            "such as sklearn.ensemble.RandomForestClassifier."
        ) from exc


def build_model(schema: dict[str, str], class_path: str, params: dict[str, Any]) -> Pipeline:
    """Preprocessing (impute, scale, one-hot) + estimator: the served model takes raw rows."""
    numeric = [c for c, k in schema.items() if k == NUMERIC]
    categorical = [c for c, k in schema.items() if k == CATEGORICAL]
    preprocess = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]),
                numeric,
            ),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                categorical,
            ),
        ]
    )
    try:
        estimator = estimator_class(class_path)(**params)
    except TypeError as exc:
        raise ConfigError(f"trainer.params do not fit {class_path}: {exc}") from exc
    return Pipeline([("preprocess", preprocess), ("estimator", estimator)])


def fit_model(
    train: Dataset, valid: Dataset, spec: TrainerSpec
) -> tuple[BaseEstimator, list[dict[str, Any]]]:
    """Fit the configured model; with a search, pick the params best on validation."""
    candidates = [{}]
    if spec.search:
        names = list(spec.search)
        candidates = [
            dict(zip(names, combo, strict=True))
            for combo in itertools.product(*spec.search.values())
        ]
    metric = primary_metric(train.task)
    best_model, best_score, results = None, None, []
    for overrides in candidates:
        model = build_model(train.schema, spec.class_path, {**spec.params, **overrides})
        model.fit(train.features, train.labels)
        if len(candidates) == 1:
            return model, []
        score = compute_metrics(train.task, model, valid.features, valid.labels)[metric]
        results.append({"params": overrides, "score": score})
        if best_score is None or score_is_better(metric, score, best_score):
            best_model, best_score = model, score
    return best_model, results


@step
def train_model(
    train: Dataset, valid: Dataset, spec: TrainerSpec
) -> tuple[Annotated[BaseEstimator, "model"], Annotated[list, "search_results"]]:
    """Fit the estimator on train; a search compares candidates on validation only."""
    model, results = fit_model(train, valid, spec)
    if results:
        log_metadata({"search": results})
    return model, results
