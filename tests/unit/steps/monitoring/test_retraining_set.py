"""What the loop retrains on, and why it sometimes retrains on nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from materializers.dataset import Dataset
from steps.monitoring.decide import MonitoringDecision
from steps.monitoring.retrain import retraining_set


def dataset(rows: int, offset: int = 0, labelled: bool = True) -> Dataset:
    frame = pd.DataFrame({"x": range(offset, offset + rows), "c": ["a"] * rows})
    if labelled:
        frame["y"] = [i % 2 for i in range(rows)]
    return Dataset(frame=frame, target="y", task="classification", name=f"d{offset}")


def decision(alert: bool, retrain: bool) -> MonitoringDecision:
    return MonitoringDecision(
        alert=alert, retrain=retrain, reasons=[], drift_share=0.0, drifted_columns=[]
    )


def test_a_labelled_alert_retrains_on_reference_plus_batch_in_the_reference_column_order():
    reference, batch = dataset(10), dataset(4, offset=100)
    batch.frame = batch.frame[["y", "c", "x"]]  # same columns, another order
    combined = retraining_set(decision(True, True), reference, batch, retrain=True)
    assert not combined.skipped and len(combined.frame) == 14
    assert list(combined.frame.columns) == ["x", "c", "y"]
    assert combined.frame["x"].tolist()[-4:] == [100, 101, 102, 103]
    assert combined.schema == reference.schema


@pytest.mark.parametrize(
    "alert,retrain,switch,why",
    [
        (False, False, True, "no threshold breached"),
        (True, False, True, "has no labels"),
        (True, True, False, "retrain: false"),
    ],
)
def test_nothing_to_retrain_is_an_empty_set_that_says_why(alert, retrain, switch, why):
    reference = dataset(10)
    skipped = retraining_set(decision(alert, retrain), reference, dataset(4), retrain=switch)
    assert skipped.skipped.startswith("skipped: ") and why in skipped.skipped
    assert skipped.frame.empty and list(skipped.frame.columns) == ["x", "c", "y"]
