"""What the loop retrains on, and why it sometimes retrains on nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from core.specs import GateSpec, SplitSpec
from materializers.dataset import Dataset
from steps.data.split import split_dataset
from steps.monitoring.decide import MonitoringDecision
from steps.monitoring.retrain import retraining_set
from steps.registry.gate import ChampionComparison, decide_promotion


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
    assert combined.new_rows == 4  # the batch's rows, last: the split holds part of them out


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


def rows_of(part: Dataset) -> set[int]:
    return set(part.frame["x"])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_gate_compares_on_batch_rows_neither_model_trained_on(task):
    reference, batch = dataset(200), dataset(60, offset=1000)
    reference.task = batch.task = task
    combined = retraining_set(decision(True, True), reference, batch, retrain=True)
    assert combined.new_rows == 60
    train, valid, test = split_dataset(combined, SplitSpec(batch_test_size=0.5))
    assert rows_of(test) <= set(range(1000, 1060)) and len(test.frame) == 30
    assert not rows_of(test) & (rows_of(train) | rows_of(valid))  # the candidate's rows
    assert not rows_of(test) & rows_of(reference)  # the champion's rows
    assert rows_of(train) | rows_of(valid) | rows_of(test) == rows_of(combined)
    assert set(range(200)) <= rows_of(train) | rows_of(valid)  # all of the champion's rows
    assert "30 rows held out of the new batch d1000" in test.note
    assert "neither the candidate nor the champion" in test.note


def test_with_a_date_column_the_latest_batch_rows_are_held_out():
    reference, batch = dataset(100), dataset(40, offset=500)
    for part, start in ((reference, "2024-01-01"), (batch, "2025-01-01")):
        days = pd.date_range(start, periods=len(part.frame), freq="D").strftime("%Y-%m-%d")
        part.frame["day"] = list(days[::-1])  # newest first: the order must not matter
        part.schema = {}
        part.__post_init__()
    assert reference.schema["day"] == "datetime"
    combined = retraining_set(decision(True, True), reference, batch, retrain=True)
    _, _, test = split_dataset(combined, SplitSpec(batch_test_size=0.25))
    assert sorted(test.frame["day"]) == sorted(batch.frame["day"])[-10:]
    assert "its latest by 'day'" in test.note


def test_the_gate_reason_says_which_rows_both_models_were_scored_on():
    champion = ChampionComparison(status="compared", version="1", score=0.7)
    rows = "30 rows held out of the new batch b.csv (chosen at random with seed 42)"
    decision_ = decide_promotion("classification", {"f1": 0.8}, champion, GateSpec(), rows=rows)
    assert decision_.promoted and decision_.reason.endswith(f"on {rows}")
    assert decision_.compared_on == rows
