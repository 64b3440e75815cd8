"""Evaluate the fitted model on the untouched test split."""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import pandas as pd
from sklearn import metrics as skm
from sklearn.base import BaseEstimator
from zenml import log_metadata, step

from core.errors import is_interrupt
from materializers.dataset import Dataset
from materializers.evaluation_report import EvaluationReport
from steps.training.metrics import (
    baseline_metrics,
    classification_curves,
    compute_metrics,
    primary_metric,
)


def final_estimator(model: BaseEstimator) -> BaseEstimator:
    """The estimator at the end of a scikit-learn pipeline (the model itself otherwise)."""
    return model.steps[-1][1] if hasattr(model, "steps") else model


def public_class_path(obj: Any) -> str:
    """The shortest importable path of the object's class: `sklearn.ensemble.RandomForestClassifier`
    rather than the private module it is defined in (`sklearn.ensemble._forest`)."""
    cls = type(obj)
    parts = cls.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module_name = ".".join(parts[:end])
        try:
            if getattr(importlib.import_module(module_name), cls.__name__, None) is cls:
                return f"{module_name}.{cls.__name__}"
        except ImportError:
            continue
    return f"{cls.__module__}.{cls.__name__}"


def chosen_params(model: BaseEstimator, search: list[dict[str, Any]]) -> dict[str, Any]:
    """The searched hyper-parameters' values in the fitted model (empty without a search)."""
    names = list(dict.fromkeys(k for entry in search for k in entry["params"]))
    fitted = final_estimator(model).get_params(deep=False)
    return {name: fitted[name] for name in names if name in fitted}


def mark_chosen(model: BaseEstimator, search: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The search results, each saying whether it is the candidate the model was fitted with."""
    chosen = chosen_params(model, search)
    marked, found = [], False
    for entry in search:
        hit = not found and all(chosen.get(k) == v for k, v in entry["params"].items())
        found = found or hit
        marked.append({**entry, "chosen": hit})
    return marked


def bundled_class_names(source: str) -> dict[str, str]:
    """Class names of a dataset bundled with scikit-learn (`breast_cancer`: 0 → malignant)."""
    from sklearn import datasets as sk_datasets

    loader = getattr(sk_datasets, f"load_{source}", None)
    if loader is None or "/" in source or "." in source:
        return {}
    try:
        names = getattr(loader(), "target_names", None)
    except Exception as exc:  # a loader that needs a download or arguments: no names
        if is_interrupt(exc):
            raise
        return {}
    if names is None or getattr(names, "ndim", 1) != 1:
        return {}
    return {str(i): str(name) for i, name in enumerate(names)}


def class_names_of(test: Dataset) -> dict[str, str]:
    """Names for the label values where the data source names them (splits are named
    `breast_cancer:test`; retraining sets keep their reference's name first:
    `breast_cancer:train + batch.csv:test`)."""
    source = test.name.split(" + ")[0].split(":")[0].strip()
    names = bundled_class_names(source)
    labels = set() if test.labels is None else {str(v) for v in test.labels.unique()}
    return names if labels and labels <= set(names) else {}


def roc_curves(model, features: pd.DataFrame, labels: pd.Series) -> list[dict[str, Any]]:
    """ROC of the positive class (binary) or of each class against the rest (multiclass).

    A class absent from the rows (or a model without probabilities) has no curve.
    """
    if not hasattr(model, "predict_proba"):
        return []
    classes = list(model.classes_)
    proba = model.predict_proba(features)
    positives = classes[1:] if len(classes) == 2 else classes
    curves = []
    for label in positives:
        truth = labels == label
        if truth.all() or not truth.any():
            continue
        score = proba[:, classes.index(label)]
        fpr, tpr, _ = skm.roc_curve(truth, score)
        curves.append(
            {
                "label": str(label),
                "fpr": fpr.tolist(),
                "tpr": tpr.tolist(),
                "auc": float(skm.auc(fpr, tpr)),
            }
        )
    return curves


def evaluate(model: BaseEstimator, test: Dataset, search: list | None = None) -> EvaluationReport:
    """Score the model on the test rows."""
    extra: dict[str, Any] = {}
    if test.task == "classification":
        extra = classification_curves(model, test.features, test.labels)
        extra["roc_curves"] = roc_curves(model, test.features, test.labels)
        extra["class_names"] = class_names_of(test)
    return EvaluationReport(
        task=test.task,
        metrics=compute_metrics(test.task, model, test.features, test.labels),
        rows=len(test.frame),
        dataset_fingerprint=test.fingerprint,
        search=mark_chosen(model, search or []),
        search_metric=(search[0].get("metric") or primary_metric(test.task)) if search else "",
        estimator=public_class_path(final_estimator(model)),
        baseline=baseline_metrics(test.task, test.features, test.labels),
        **extra,
    )


@step
def evaluate_model(
    model: BaseEstimator, test: Dataset, search_results: list
) -> Annotated[EvaluationReport, "evaluation_report"]:
    """Compute the test metrics that the promotion gate and monitoring compare against."""
    report = evaluate(model, test, search_results)
    log_metadata({"test_metrics": report.metrics}, infer_model=True)
    return report
