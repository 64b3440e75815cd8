"""Evaluate the fitted model on the untouched test split."""

from __future__ import annotations

from typing import Annotated

from sklearn.base import BaseEstimator
from zenml import log_metadata, step

from materializers.dataset import Dataset
from materializers.evaluation_report import EvaluationReport
from steps.skip import note_skipped
from steps.training.metrics import baseline_metrics, classification_curves, compute_metrics


def evaluate(model: BaseEstimator, test: Dataset, search: list | None = None) -> EvaluationReport:
    """Score the model on the test rows."""
    estimator = model.steps[-1][1] if hasattr(model, "steps") else model
    curves = {}
    if test.task == "classification":
        curves = classification_curves(model, test.features, test.labels)
    return EvaluationReport(
        task=test.task,
        metrics=compute_metrics(test.task, model, test.features, test.labels),
        rows=len(test.frame),
        dataset_fingerprint=test.fingerprint,
        search=search or [],
        estimator=f"{type(estimator).__module__}.{type(estimator).__name__}",
        baseline=baseline_metrics(test.task, test.features, test.labels),
        **curves,
    )


@step
def evaluate_model(
    model: BaseEstimator, test: Dataset, search_results: list
) -> Annotated[EvaluationReport, "evaluation_report"]:
    """Compute the test metrics that the promotion gate and monitoring compare against."""
    if test.skipped:
        note_skipped("evaluate_model", test.skipped)
        return EvaluationReport(task=test.task, metrics={}, rows=0)
    report = evaluate(model, test, search_results)
    log_metadata({"test_metrics": report.metrics}, infer_model=True)
    return report
