"""Monitoring: batch → predictions → drift (+ quality) → decision."""

from zenml import pipeline

from core.specs import MonitoringThresholds, RetrainSpec
from steps.monitoring import (
    check_quality,
    decide_action,
    detect_drift,
    load_batch,
    load_reference,
    predict_batch,
)


def monitor_batch(
    model_name: str, batch: str, thresholds: MonitoringThresholds, retrains: bool = False
):
    """The monitoring steps, for any pipeline that watches a batch; returns
    (reference, current batch, decision) for the steps that follow (`retrains`: a step
    after them retrains on a labelled alert)."""
    reference, champion_report = load_reference(model_name)
    current = load_batch(batch, reference)
    predictions = predict_batch(current, model_name)
    drift = detect_drift(reference, current, thresholds)
    quality = check_quality(current, predictions, champion_report)
    return reference, current, decide_action(drift, quality, thresholds, model_name, retrains)


@pipeline(enable_cache=False)
def monitoring_pipeline(
    model_name: str,
    batch: str,
    thresholds: MonitoringThresholds,
    retrain: RetrainSpec | None = None,
) -> None:
    """Compare a batch with the champion's training data; decide whether to alert/retrain."""
    monitor_batch(model_name, batch, thresholds)
