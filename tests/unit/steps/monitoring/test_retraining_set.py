"""What the loop keeps, what it retrains on, what it evaluates on, and why it sometimes
retrains on nothing (steps/data/pool.py, steps/monitoring/retrain.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from core.specs import ContinuousTrainingParams, GateSpec, RetrainSpec, SplitSpec
from materializers.dataset import Dataset
from steps.data import pool as kept
from steps.monitoring.decide import MonitoringDecision
from steps.monitoring.retrain import train_and_valid, why_not
from steps.registry.gate import ChampionComparison, decide_promotion
from steps.registry.paired import PairedComparison


def dataset(rows: int, offset: int = 0, labelled: bool = True, name: str = "") -> Dataset:
    frame = pd.DataFrame({"x": [float(i) for i in range(offset, offset + rows)], "c": ["a"] * rows})
    if labelled:
        frame["y"] = [i % 2 for i in range(rows)]
    return Dataset(frame=frame, target="y", task="classification", name=name or f"d{offset}")


def decision(alert: bool, retrain: bool) -> MonitoringDecision:
    return MonitoringDecision(
        alert=alert, retrain=retrain, reasons=[], drift_share=0.0, drifted_columns=[]
    )


def first_pool() -> kept.Dataset:
    """A champion v1 trained on 0..79, validated on 80..99, tested on 100..139."""
    return kept.start_pool(dataset(80), dataset(20, 80), dataset(40, 100), "1")


def rows_of(part: Dataset) -> set[float]:
    return set(part.frame["x"])


def test_the_first_pool_trains_on_the_champions_train_and_valid_rows_and_reserves_its_test_rows():
    pool = first_pool()
    assert rows_of(kept.part_of(pool, kept.TRAIN)) == set(range(100))
    assert rows_of(kept.part_of(pool, kept.EVALUATION)) == set(range(100, 140))
    assert rows_of(kept.first_held_out(pool)) == set(range(100, 140))
    assert kept.lineage(pool.batches) == "v1 training rows (100); v1 held-out test rows (40)"


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_batch_adds_a_held_back_slice_to_evaluation_and_the_rest_to_training(task):
    pool = first_pool()
    pool.task = task
    batch = dataset(60, 1000, name="b.csv")
    batch.frame = batch.frame[["y", "c", "x"]]  # same columns, another order
    grown, trained, reserved = kept.add_batch(pool, batch, SplitSpec(batch_test_size=0.5), "r1")
    assert (trained, reserved) == (30, 30)
    train, evaluation = kept.part_of(grown, kept.TRAIN), kept.part_of(grown, kept.EVALUATION)
    assert list(train.frame.columns) == ["x", "c", "y"]
    assert rows_of(train) | rows_of(evaluation) == set(range(140)) | set(range(1000, 1060))
    assert not rows_of(train) & rows_of(evaluation)  # nothing reserved is trained on
    assert set(range(100)) <= rows_of(train) and set(range(100, 140)) <= rows_of(evaluation)
    assert [(p["batch"], p["rows"], p["role"], p["run"]) for p in grown.batches[2:]] == [
        ("b.csv", 30, "train", "r1"),
        ("b.csv", 30, "evaluation", "r1"),
    ]
    assert rows_of(kept.first_held_out(grown)) == set(range(100, 140))  # what monitor watches


def test_rows_already_kept_are_not_added_again_even_after_a_csv_round_trip(tmp_path):
    pool = first_pool()
    pool.frame["x"] = pool.frame["x"] / 3  # floats whose last digit a CSV may change
    held_out = kept.first_held_out(pool)
    path = tmp_path / "held-out.csv"
    held_out.frame.to_csv(path, index=False)
    again = Dataset(frame=pd.read_csv(path), target="y", task="classification", name="again")
    grown, trained, reserved = kept.add_batch(pool, again, SplitSpec())
    assert (trained, reserved) == (0, 0) and grown is pool
    relabelled = held_out.frame.assign(y=1 - held_out.frame["y"])  # new labels: new rows
    twice = pd.concat([relabelled, relabelled])  # a row repeated in a batch counts once
    batch = Dataset(frame=twice, target="y", task="classification", name="flipped")
    _, trained, reserved = kept.add_batch(pool, batch, SplitSpec())
    assert trained + reserved == 40


def test_training_rows_never_shrink_under_the_default_window_and_a_number_keeps_the_newest():
    pool = first_pool()
    sizes = []
    for i in range(5):
        pool, _, _ = kept.add_batch(pool, dataset(20, 1000 + 100 * i, name=f"b{i}"), SplitSpec())
        rows = kept.in_window(kept.part_of(pool, kept.TRAIN), RetrainSpec().window)
        sizes.append(len(rows.frame))
    assert sizes == sorted(sizes) and sizes[0] > 100 and sizes[-1] == 100 + 5 * 10
    newest = kept.in_window(kept.part_of(pool, kept.TRAIN), 25)
    assert len(newest.frame) == 25 and rows_of(newest) <= set(range(1200, 1500))
    assert [(p["batch"], p["rows"]) for p in newest.batches] == [("b2", 5), ("b3", 10), ("b4", 10)]
    train, valid = train_and_valid(kept.part_of(pool, kept.TRAIN), SplitSpec())
    assert len(train.frame) + len(valid.frame) == 150 and train.batches == valid.batches


def test_a_pool_of_other_data_or_with_fewer_rows_than_the_champion_is_not_used():
    pool, champion_train = first_pool(), dataset(80)
    assert kept.usable(pool, champion_train)
    assert not kept.usable(None, champion_train)
    assert not kept.usable(pool, dataset(101))  # a champion trained on more rows since
    other = dataset(80)
    other.frame["z"] = 1.0
    other.schema = {}
    other.__post_init__()
    assert not kept.usable(pool, other)


def test_retrain_spec_takes_a_bool_as_before():
    assert RetrainSpec.model_validate(False) == RetrainSpec(enabled=False)
    assert RetrainSpec.model_validate({"window": 500}).window == 500
    with pytest.raises(ValueError):
        RetrainSpec.model_validate({"window": "last week"})


@pytest.mark.parametrize(
    "given,window",
    [("all", "all"), (500, 500), ("500", 500), ("30d", "30d"), ("7 days", "7d"), ("1D", "1d")],
)
def test_a_window_is_all_rows_or_days(given, window):
    assert RetrainSpec(window=given).window == window


@pytest.mark.parametrize("given", ["last week", "0d", 0, -3, "30h", True, "d"])
def test_a_wrong_window_is_one_paragraph_naming_the_three_forms(given, tmp_path):
    from app.config import load_run_config
    from core.errors import ConfigError

    config = tmp_path / "monitoring.yaml"
    config.write_text(f"parameters:\n  retrain:\n    window: {given!r}\n")
    with pytest.raises(ConfigError) as raised:
        load_run_config("monitoring", config, stack_kind="local")
    said = str(raised.value)
    assert "`parameters.retrain.window`" in said and "is not a training window" in said
    assert "`all`" in said and "e.g. 5000" in said and "`30d`" in said
    assert "\n" not in said


def test_fewer_evaluation_rows_than_the_gate_needs_is_refused():
    with pytest.raises(ValueError, match="below gate.min_rows"):
        ContinuousTrainingParams(retrain={"max_evaluation_rows": 50}, gate={"min_rows": 100})
    assert ContinuousTrainingParams().retrain.max_evaluation_rows == 10_000


def test_a_window_of_days_keeps_the_rows_of_the_batches_that_arrived_in_it():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    pool = kept.start_pool(dataset(80), dataset(20, 80), dataset(40, 100), "1", now=start)
    for day in (10, 20, 28):  # three batches of 20 rows: 10 to train on each
        batch = dataset(20, 1000 * day, name=f"day{day}")
        pool, _, _ = kept.add_batch(pool, batch, SplitSpec(), now=start + timedelta(days=day))
    train = kept.part_of(pool, kept.TRAIN)
    now = start + timedelta(days=30)
    week = kept.in_window(train, "7d", now=now)
    assert [p["batch"] for p in week.batches] == ["day28"] and len(week.frame) == 10
    assert rows_of(week) <= set(range(28000, 28020))
    month = kept.in_window(train, "30d", now=now)
    assert len(month.frame) == len(train.frame) == 130  # the champion's rows too
    assert len(kept.in_window(train, "15d", now=now).frame) == 20
    assert kept.in_window(train, "1d", now=now).frame.empty
    old = kept.part_of(pool, kept.TRAIN)
    old.batches = [{k: v for k, v in p.items() if k != "at"} for p in old.batches]
    assert kept.in_window(old, "30d", now=now).frame.empty  # kept before times were recorded


def test_evaluation_rows_over_the_cap_retire_oldest_first_into_training_and_none_is_lost():
    pool = first_pool()  # 100 rows to train on, 40 reserved (100..139)
    for i in range(3):  # 3 batches of 40 rows: 20 reserved each
        pool, _, _ = kept.add_batch(pool, dataset(40, 1000 + 100 * i, name=f"b{i}"), SplitSpec())
    before = set(pool.frame["x"])
    evaluation = kept.part_of(pool, kept.EVALUATION)
    assert len(evaluation.frame) == 100
    same, none = kept.retire_evaluation(pool, 100, "r0")
    assert none == 0 and same is pool
    capped, retired = kept.retire_evaluation(pool, 50, "r1")
    assert retired == 50 and set(capped.frame["x"]) == before  # nothing dropped
    train, evaluation = kept.part_of(capped, kept.TRAIN), kept.part_of(capped, kept.EVALUATION)
    assert len(evaluation.frame) == 50 and len(train.frame) == 160 + 50
    assert not rows_of(train) & rows_of(evaluation)
    # the oldest first: all 40 first held-out rows, then 10 of b0's reserved slice
    assert set(range(100, 140)) <= rows_of(train)
    b0 = [p for p in capped.batches if p["batch"] == "b0"]
    assert [(p["role"], p["rows"], p.get("retired")) for p in b0] == [
        ("train", 20, None), ("train", 10, "r1"), ("evaluation", 10, None),
    ]  # fmt: skip
    assert "v1 held-out test rows (40, retired from evaluation)" in kept.lineage(train.batches)
    # a plain monitor now watches the oldest rows still reserved: none of them trains
    assert rows_of(kept.first_held_out(capped)) <= rows_of(evaluation)
    assert len(kept.first_held_out(capped).frame) == 10


@pytest.mark.parametrize(
    "alert,retrain,labelled,switch,added,why",
    [
        (False, False, True, True, 10, "no threshold breached"),
        (True, False, False, True, 0, "has no labels"),
        (True, True, True, False, 10, "retrain: false"),
        (True, True, True, True, 0, "no new labelled rows"),
        (True, True, True, True, 10, ""),
    ],
)
def test_why_a_run_retrains_nothing(alert, retrain, labelled, switch, added, why):
    batch = dataset(10, labelled=labelled)
    said = why_not(decision(alert, retrain), batch, RetrainSpec(enabled=switch), added)
    assert (why in said and said.startswith("skipped: ")) if why else said == ""


def test_gate_and_retraining_specs_validate():
    assert GateSpec().min_rows == 100 and GateSpec().confidence == 0.95
    with pytest.raises(ValueError):
        GateSpec(min_rows=0)


def test_the_gate_reason_says_which_rows_both_models_were_scored_on():
    paired = PairedComparison(0.1, 0.05, 0.15, rows=300, confidence=0.95, resamples=1000)
    champion = ChampionComparison(status="compared", version="1", score=0.7, paired=paired)
    rows = "30 rows held out of the new batch b.csv (chosen at random with seed 42)"
    decision_ = decide_promotion("classification", {"f1": 0.8}, champion, GateSpec(), rows=rows)
    assert decision_.promoted and f"on {rows} (f1 difference +0.1000" in decision_.reason
    assert decision_.compared_on == rows
