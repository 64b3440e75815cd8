"""Monitoring steps: reference and batch, predictions, drift, quality, decision."""

from steps.monitoring.batch import load_batch, load_reference, predict_batch
from steps.monitoring.decide import check_quality, decide_action
from steps.monitoring.drift import detect_drift
from steps.monitoring.retrain import retrain_if_needed

__all__ = [
    "check_quality",
    "decide_action",
    "detect_drift",
    "load_batch",
    "load_reference",
    "predict_batch",
    "retrain_if_needed",
]
