"""Quality alerts mean the same for every metric; any column name makes a valid MLflow key."""

from __future__ import annotations

import pytest
from mlflow.utils.validation import _validate_metric_name, _validate_param_name

from core.specs import MonitoringThresholds
from materializers.drift_report import DriftReport
from steps.monitoring.decide import QualityReport, column_keys, decide


def quality(metric: str, reference: float, current: float) -> QualityReport:
    return QualityReport(labelled=True, metric=metric, current=current, reference=reference)


CALM = DriftReport(columns=[], drift_share=0.0, threshold=0.05, reference_rows=1, current_rows=1)


def test_a_few_percent_worse_rmse_in_dollars_is_noise_not_an_alert():
    # The figures: 996 dollars worse was "a drop of 996 > 0.05".
    calm = decide(CALM, quality("rmse", 28229.8583, 29226.4426), MonitoringThresholds())
    assert not calm.alert


def test_an_error_that_rose_past_the_threshold_is_said_to_rise():
    worse = decide(CALM, quality("rmse", 28229.8583, 33000.0), MonitoringThresholds())
    assert worse.alert and worse.retrain
    (reason,) = worse.reasons
    assert reason.startswith("rmse rose from 28229.8583 to 33000.0000")
    assert "+16.9% against the champion's test score" in reason and "10.0%" in reason


def test_a_score_that_fell_is_said_to_fall_and_the_default_is_per_task():
    thresholds = MonitoringThresholds()
    assert not decide(CALM, quality("f1", 0.90, 0.87), thresholds).alert  # -3.3%
    fell = decide(CALM, quality("f1", 0.90, 0.80), thresholds)
    assert fell.alert and fell.reasons[0].startswith("f1 fell from 0.9000 to 0.8000 (-11.1%")
    assert decide(CALM, quality("r2", 0.80, 0.70), thresholds).alert  # 12.5% of R²


def test_the_threshold_can_be_in_the_metrics_own_units():
    thresholds = MonitoringThresholds(max_quality_drop=1000, quality_drop_units="metric")
    assert not decide(CALM, quality("rmse", 28229.86, 29226.44), thresholds).alert
    worse = decide(CALM, quality("rmse", 28229.86, 29300.0), thresholds)
    assert worse.alert and "(+1070.1400; the alert is at more than 1000" in worse.reasons[0]


def test_a_negative_threshold_is_refused():
    with pytest.raises(ValueError, match="zero or more"):
        MonitoringThresholds(max_quality_drop={"regression": -0.1})


NAMES = [
    "bill length (mm)",
    "bill length [mm]",
    "is it? 'yes'",
    "#id",
    "cost $, total",
    "🐧 count",
    "ünïcode",
    "",
    "x" * 400,
]


def test_every_column_name_gets_a_distinct_key_mlflow_accepts():
    keys = column_keys(NAMES)
    assert keys["bill length (mm)"] == "002_bill_length_mm"  # 3rd in sorted order
    assert column_keys(NAMES[::-1]) == keys  # the same whatever the order given
    assert len(set(keys.values())) == len(NAMES)
    for key in keys.values():
        _validate_metric_name(f"p_value.{key}")
        _validate_param_name(f"column.{key.split('_', 1)[0]}")
