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

from core.errors import ConfigError
from core.metrics import TASK_METRICS
from core.schema import CATEGORICAL, DATETIME, NUMERIC
from core.specs import GateSpec, TrainerSpec
from materializers.dataset import Dataset
from steps.skip import note_skipped
from steps.training.features import DatetimeFeatures, MissingAsNaN
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


def estimator_kind(class_path: str, params: dict[str, Any]) -> str | None:
    """classification, regression, or None when the estimator does not say."""
    from sklearn.base import is_classifier, is_regressor

    try:
        estimator = estimator_class(class_path)(**params)
    except TypeError:
        return None  # build_model reports params that do not fit
    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    return None


def config_problems(trainer: TrainerSpec, gate: GateSpec, task: str) -> list[str]:
    """Why this trainer and gate cannot work for the task (empty when they can)."""
    problems = []
    class_path, params = trainer.for_task(task)
    kind = estimator_kind(class_path, params)
    if kind is not None and kind != task:
        problems.append(
            f"trainer.class_path {class_path} is a {kind.replace('ion', 'ion model')} but the "
            f"target calls for {task}: set trainer.class_path (or trainer.class_path.{task}) to "
            f"a {task} estimator, or leave it out for the default"
        )
    metric = gate.metric_for(task)
    if metric not in TASK_METRICS[task]:
        problems.append(
            f"gate.metric '{metric}' does not exist for {task} (use one of "
            f"{', '.join(TASK_METRICS[task])}; or set gate.metric.{task})"
        )
    return problems


def check_config_for_task(trainer: TrainerSpec, gate: GateSpec, task: str) -> None:
    """Raise one ConfigError listing why the config cannot train this task."""
    problems = config_problems(trainer, gate, task)
    if problems:
        raise ConfigError(
            f"The training config cannot work for this {task} target: "
            + "; ".join(problems)
            + ". Nothing was trained or registered."
        )


def build_model(schema: dict[str, str], class_path: str, params: dict[str, Any]) -> Pipeline:
    """Preprocessing (impute, scale, one-hot, dates → numbers) + estimator, as one model.

    The served model therefore takes raw rows: missing values, unseen categories and
    date strings are handled inside it.
    """
    numeric = [c for c, k in schema.items() if k == NUMERIC]
    categorical = [c for c, k in schema.items() if k == CATEGORICAL]
    dates = [c for c, k in schema.items() if k == DATETIME]
    preprocess = ColumnTransformer(
        [
            (
                "datetime",
                Pipeline(
                    [
                        ("parts", DatetimeFeatures()),
                        ("impute", SimpleImputer(keep_empty_features=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                dates,
            ),
            (
                "numeric",
                Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]),
                numeric,
            ),
            (
                "categorical",
                Pipeline(
                    [
                        ("missing", MissingAsNaN()),
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
    check_config_for_task(spec, GateSpec(), train.task)
    metric = primary_metric(train.task)
    class_path, params = spec.for_task(train.task)
    best_model, best_score, results = None, None, []
    for overrides in candidates:
        model = build_model(train.schema, class_path, {**params, **overrides})
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
    if train.skipped:
        from sklearn.dummy import DummyRegressor

        note_skipped("train_model", train.skipped)
        return DummyRegressor(), []  # an unfitted placeholder nobody registers
    model, results = fit_model(train, valid, spec)
    if results:
        log_metadata({"search": results})
    return model, results
