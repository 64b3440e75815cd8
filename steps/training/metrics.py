"""Metrics for both tasks, and which direction is better."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier, DummyRegressor

from core.metrics import primary_metric, score_is_better

__all__ = [
    "baseline_metrics",
    "classification_curves",
    "compute_metrics",
    "prediction_metrics",
    "primary_metric",
    "score_is_better",
]


def prediction_metrics(task: str, labels: pd.Series, predicted) -> dict[str, float]:
    """Metrics that need only predictions: accuracy, F1 (`f1`: of the positive class, the
    larger label, with two classes; `f1_macro`: the mean over classes), or RMSE/MAE/R²."""
    if task == "regression":
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(labels, predicted))),
            "mae": float(skm.mean_absolute_error(labels, predicted)),
            "r2": float(skm.r2_score(labels, predicted)),
        }
    result = {"accuracy": float(skm.accuracy_score(labels, predicted))}
    classes = np.unique(np.concatenate([np.asarray(labels), np.asarray(predicted)]))
    if len(classes) <= 2:  # the positive class: the larger label, as the gate's paired F1
        result["f1"] = float(skm.f1_score(labels, predicted, pos_label=classes[-1]))
    result["f1_macro"] = float(skm.f1_score(labels, predicted, average="macro"))
    return result


def compute_metrics(
    task: str, model, features: pd.DataFrame, labels: pd.Series
) -> dict[str, float]:
    """accuracy/F1/ROC-AUC for classification; RMSE/MAE/R² for regression."""
    result = prediction_metrics(task, labels, model.predict(features))
    if task == "regression":
        return result
    if hasattr(model, "predict_proba"):
        try:
            proba = model.predict_proba(features)
            classes = list(model.classes_)
            if len(classes) == 2:
                result["roc_auc"] = float(skm.roc_auc_score(labels, proba[:, 1]))
            else:
                result["roc_auc"] = float(
                    skm.roc_auc_score(labels, proba, multi_class="ovr", labels=classes)
                )
        except ValueError:
            # ROC-AUC is undefined when the scored rows hold a single class.
            pass
    return result


def baseline_metrics(task: str, features: pd.DataFrame, labels: pd.Series) -> dict[str, float]:
    """The metrics of a model that ignores its inputs, on these rows.

    Regression predicts the mean of the labels (R² = 0), classification the most
    frequent class with the class frequencies as probabilities (ROC-AUC = 0.5). A
    candidate that cannot beat this learned nothing from its features.
    """
    strategy = "mean" if task == "regression" else "prior"
    baseline = (DummyRegressor if task == "regression" else DummyClassifier)(strategy=strategy)
    baseline.fit(features, labels)
    return compute_metrics(task, baseline, features, labels)


def classification_curves(model, features: pd.DataFrame, labels: pd.Series) -> dict[str, dict]:
    """Confusion matrix (all classifiers) and ROC curve (binary ones), for the reports."""
    predicted = model.predict(features)
    classes = list(getattr(model, "classes_", sorted(set(labels) | set(predicted))))
    matrix = skm.confusion_matrix(labels, predicted, labels=classes)
    curves: dict[str, dict] = {
        "confusion": {"labels": [str(c) for c in classes], "matrix": matrix.tolist()}
    }
    if len(classes) == 2 and hasattr(model, "predict_proba") and labels.nunique() == 2:
        fpr, tpr, thresholds = skm.roc_curve(
            labels, model.predict_proba(features)[:, 1], pos_label=classes[1]
        )
        curves["roc"] = {
            "fpr": fpr.tolist(),
            "tpr": tpr.tolist(),
            "thresholds": np.minimum(thresholds, 1.0).tolist(),  # the first one is +inf
        }
    return curves
