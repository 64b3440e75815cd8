"""Fit preprocessing + estimator as one scikit-learn pipeline, with an optional search."""

from __future__ import annotations

import importlib
import itertools
from typing import Annotated, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder
from zenml import log_metadata, step

from core.errors import ConfigError
from core.metrics import TASK_METRICS, metric_in
from core.schema import CATEGORICAL, DATETIME, NUMERIC
from core.specs import GateSpec, TrainerSpec
from materializers.dataset import Dataset
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
        try:  # params for another estimator: the class still says what it is
            estimator = estimator_class(class_path)()
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


# A text column with more distinct values than this is target-encoded: one-hot would make
# thousands of columns, and HistGradientBoosting's native categories stop at 255 values.
MAX_CATEGORIES = 255


def native_categories(estimator: BaseEstimator) -> bool:
    """HistGradientBoosting: missing values and categories are handled by the model itself."""
    return "categorical_features" in estimator.get_params()


def distinct_values(values: pd.Series) -> int:
    """Distinct values of a text column, with every kind of missing cell left out."""
    return int(values.replace("", np.nan).nunique(dropna=True))


def build_model(
    schema: dict[str, str],
    class_path: str,
    params: dict[str, Any],
    frame: pd.DataFrame | None = None,
    task: str = "classification",
) -> Pipeline:
    """Preprocessing + estimator, as one model: the served model takes raw rows (missing
    values, unseen categories and date strings are handled inside it).

    - HistGradientBoosting (the default): numbers and date parts as they are (it splits
      on missing values itself), text as native categories;
    - any other estimator: numbers imputed with the mean and scaled, text imputed with
      the most frequent value and one-hot encoded;
    - for both, text with more than MAX_CATEGORIES distinct values in `frame` (the
      training rows) is target-encoded, with scikit-learn's cross-fitting.
    """
    numeric = [c for c, k in schema.items() if k == NUMERIC]
    categorical = [c for c, k in schema.items() if k == CATEGORICAL]
    dates = [c for c, k in schema.items() if k == DATETIME]
    try:
        estimator = estimator_class(class_path)(**params)
    except TypeError as exc:
        raise ConfigError(f"trainer.params do not fit {class_path}: {exc}") from exc
    native = native_categories(estimator)
    limit = min(MAX_CATEGORIES, int(params.get("max_bins", 255))) if native else MAX_CATEGORIES
    many = [c for c in categorical if frame is not None and distinct_values(frame[c]) > limit]
    few = [c for c in categorical if c not in many]
    target_encoded = Pipeline(
        [
            ("missing", MissingAsNaN()),
            (
                "target",
                TargetEncoder(
                    target_type="continuous" if task == "regression" else "auto",
                    cv=(KFold if task == "regression" else StratifiedKFold)(
                        5, shuffle=True, random_state=0
                    ),
                ),
            ),
        ]
        + ([] if native else [("scale", StandardScaler())])
    )
    if native:
        codes = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan
        )
        transformers = [
            # First, so the categories are the first columns the estimator sees.
            ("categorical", Pipeline([("missing", MissingAsNaN()), ("codes", codes)]), few),
            ("datetime", DatetimeFeatures(), dates),
            ("numeric", "passthrough", numeric),
            ("high_cardinality", target_encoded, many),
        ]
        if few and "categorical_features" not in params:
            estimator.set_params(categorical_features=list(range(len(few))))
    else:
        transformers = [
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
                few,
            ),
            ("high_cardinality", target_encoded, many),
        ]
    return Pipeline([("preprocess", ColumnTransformer(transformers)), ("estimator", estimator)])


def drop_fit_only_state(model: Pipeline) -> Pipeline:
    """Forget what only fitting needs: HistGradientBoosting keeps a numpy Generator for
    feature subsampling, which the Seldon server's numpy 1.x cannot unpickle from numpy 2
    (`PCG64 is not a known BitGenerator`); predict never reads it."""
    estimator = model.steps[-1][1]
    if getattr(estimator, "_feature_subsample_rng", None) is not None:
        estimator._feature_subsample_rng = None
    return model


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
        model = build_model(
            train.schema, class_path, {**params, **overrides}, train.features, train.task
        )
        drop_fit_only_state(model.fit(train.features, train.labels))
        if len(candidates) == 1:
            return model, []
        scores = compute_metrics(train.task, model, valid.features, valid.labels)
        score = scores[metric_in(metric, scores)]
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
