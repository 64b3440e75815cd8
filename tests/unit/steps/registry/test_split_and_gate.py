"""Split is seeded, disjoint and stratified; the gate promotes only a better model."""

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from core.specs import DataSpec, GateSpec, SplitSpec
from materializers.dataset import Dataset
from steps.data.load import infer_task, load_dataset
from steps.data.split import split_dataset
from steps.registry.gate import ChampionComparison, decide_promotion
from steps.registry.paired import PairedComparison


def data(rows=200):
    frame = pd.DataFrame({"x": np.arange(rows, dtype=float), "y": (np.arange(rows) % 4 == 0)})
    return Dataset(frame=frame, target="y", task="classification", name="d")


def test_split_is_disjoint_complete_and_seeded():
    train, valid, test = split_dataset(data(), SplitSpec(seed=1))
    xs = [set(part.frame["x"]) for part in (train, valid, test)]
    assert sum(map(len, xs)) == 200 and set.union(*xs) == set(range(200))
    assert not (xs[0] & xs[1] or xs[0] & xs[2] or xs[1] & xs[2])
    again = split_dataset(data(), SplitSpec(seed=1))[2]
    assert list(again.frame["x"]) == list(test.frame["x"])
    other = split_dataset(data(), SplitSpec(seed=2))[2]
    assert list(other.frame["x"]) != list(test.frame["x"])


def test_split_is_stratified():
    train, valid, test = split_dataset(data(), SplitSpec())
    for part in (train, valid, test):
        assert part.frame["y"].mean() == pytest.approx(0.25, abs=0.03)


NONE = ChampionComparison(status="no_champion")


def compared(score, difference=0.0, spread=0.005, rows=200, version="1"):
    """A champion compared on `rows` rows: the paired difference (positive = candidate
    better) and its interval, difference ± spread."""
    low, high = difference - spread, difference + spread
    paired = PairedComparison(difference, low, high, rows, confidence=0.95, resamples=1000)
    return ChampionComparison(status="compared", version=version, score=score, paired=paired)


def test_gate_promotes_first_model_that_passes_threshold():
    d = decide_promotion("classification", {"f1": 0.9}, NONE, GateSpec(threshold=0.8))
    assert d.promoted and "no champion yet" in d.reason


def test_gate_refuses_below_threshold():
    d = decide_promotion("classification", {"f1": 0.7}, NONE, GateSpec(threshold=0.8))
    assert not d.promoted and "below the threshold" in d.reason


def test_gate_refuses_a_model_that_does_not_beat_the_champion():
    d = decide_promotion("classification", {"f1": 0.9}, compared(0.9, -0.006), GateSpec())
    assert not d.promoted and "does not beat" in d.reason and d.outcome == "keep"
    better = decide_promotion("classification", {"f1": 0.91}, compared(0.9, 0.01), GateSpec())
    assert better.promoted and better.outcome == "promote" and better.interval == [0.005, 0.015]


def test_an_interval_that_holds_both_gain_and_loss_is_inconclusive_and_keeps_the_champion():
    d = decide_promotion("classification", {"f1": 0.91}, compared(0.9, 0.01, 0.03), GateSpec())
    assert not d.promoted and d.outcome == "inconclusive" and d.evaluation_rows == 200
    assert "[-0.0200, +0.0400] on 200 rows" in d.reason and "champion stays" in d.reason
    assert "more labelled rows (about 1801 evaluation rows" in d.reason  # 200 * (0.03/0.01)^2


def test_fewer_rows_than_min_rows_is_inconclusive_whatever_the_scores():
    gate = GateSpec(min_rows=100)
    d = decide_promotion("classification", {"f1": 0.99}, compared(0.5, 0.49, rows=99), gate)
    assert not d.promoted and d.outcome == "inconclusive"
    assert "99 evaluation rows are fewer than gate.min_rows (100)" in d.reason
    assert "at least 1 more labelled rows" in d.reason
    assert decide_promotion("classification", {"f1": 0.99}, compared(0.5, 0.49), gate).promoted


def test_a_champion_compared_without_an_interval_is_never_replaced():
    bare = ChampionComparison(status="compared", version="1", score=0.5)
    d = decide_promotion("classification", {"f1": 0.99}, bare, GateSpec())
    assert not d.promoted and d.outcome == "inconclusive"


def test_min_improvement_moves_the_line_the_whole_interval_must_clear():
    gate = GateSpec(min_improvement=0.02)
    assert not decide_promotion("classification", {"f1": 0.92}, compared(0.9, 0.02), gate).promoted
    assert decide_promotion("classification", {"f1": 0.93}, compared(0.9, 0.03), gate).promoted
    anything = GateSpec(min_improvement=-1.0)  # "promote whatever scores"
    assert decide_promotion("classification", {"f1": 0.5}, compared(0.9, -0.4), anything).promoted


def test_gate_knows_lower_is_better_for_errors():
    gate = GateSpec(metric="rmse", threshold=50)
    assert decide_promotion("regression", {"rmse": 40}, compared(45, 5.0), gate).promoted
    assert not decide_promotion("regression", {"rmse": 46}, compared(45, -1.0), gate).promoted
    assert not decide_promotion("regression", {"rmse": 60}, NONE, gate).promoted


def test_a_champion_of_another_schema_is_never_replaced_by_default():
    champion = ChampionComparison(
        status="incomparable", version="2", schema_change="1 column(s) added: x"
    )
    d = decide_promotion("classification", {"f1": 0.99}, champion, GateSpec(), "m")
    assert not d.promoted and d.champion_status == "incomparable"
    assert "input schema differs (1 column(s) added: x)" in d.reason
    assert "--model-name NEW" in d.reason and "gate.allow_schema_change: true" in d.reason


def test_allow_schema_change_replaces_the_champion_and_says_so():
    champion = ChampionComparison(status="incomparable", version="2", schema_change="removed: y")
    gate = GateSpec(allow_schema_change=True, threshold=0.8)
    d = decide_promotion("classification", {"f1": 0.9}, champion, gate)
    assert d.promoted and "REPLACES champion v2" in d.reason and d.schema_change
    # the threshold still applies
    assert not decide_promotion("classification", {"f1": 0.7}, champion, gate).promoted


def test_a_champion_that_cannot_be_scored_blocks_promotion_even_with_schema_change_allowed():
    champion = ChampionComparison(status="incomparable", version="3", error="ValueError: boom")
    for gate in (GateSpec(), GateSpec(allow_schema_change=True)):
        d = decide_promotion("classification", {"f1": 0.99}, champion, gate)
        assert not d.promoted and "could not be scored" in d.reason and "boom" in d.reason


def test_gate_metric_and_threshold_per_task():
    gate = GateSpec(
        metric={"classification": "accuracy", "regression": "mae"},
        threshold={"classification": 0.9},
    )
    assert gate.metric_for("regression") == "mae" and gate.threshold_for("regression") is None
    assert not decide_promotion("classification", {"accuracy": 0.85}, NONE, gate).promoted
    assert decide_promotion("regression", {"mae": 1e6}, NONE, gate).promoted
    assert GateSpec().metric_for("regression") == "rmse"


def test_task_inference():
    assert infer_task(pd.Series(["a", "b"])) == "classification"
    assert infer_task(pd.Series([0, 1, 1, 0])) == "classification"
    assert infer_task(pd.Series(np.linspace(0, 1, 100))) == "regression"


def test_unknown_dataset_and_missing_file_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="Unknown dataset 'nope'"):
        load_dataset(DataSpec(source="nope"))
    with pytest.raises(ConfigError, match="Data file not found"):
        load_dataset(DataSpec(source=str(tmp_path / "missing.csv"), target="y"))


def test_bundled_dataset_loads_with_task():
    regression = load_dataset(DataSpec(source="diabetes"))
    assert regression.task == "regression" and regression.target == "target"
    assert len(regression.frame) == 442


def test_missing_file_is_caught_before_any_pipeline_runs(tmp_path):
    from app.runner import preflight_data

    with pytest.raises(ConfigError, match="Data file not found"):
        preflight_data(DataSpec(source=str(tmp_path / "nope.csv"), target="y"))
    existing = tmp_path / "rows.csv"
    existing.write_text("a,y\n1,0\n")
    with pytest.raises(ConfigError, match="Which column"):
        preflight_data(DataSpec(source=str(existing)))
    preflight_data(DataSpec(source=str(existing), target="y"))


def test_gate_refuses_a_candidate_that_does_not_beat_the_baseline():
    baseline = {"rmse": 50.0, "r2": 0.0}
    d = decide_promotion("regression", {"rmse": 52.0}, NONE, GateSpec(), "m", baseline)
    assert not d.promoted and "always predicting the mean of the labels" in d.reason
    # the same candidate with a champion it beats is still refused
    d = decide_promotion(
        "regression", {"rmse": 52.0}, compared(60.0, 8.0), GateSpec(), "m", baseline
    )
    assert not d.promoted
    assert decide_promotion("regression", {"rmse": 49.0}, NONE, GateSpec(), "m", baseline).promoted
    off = GateSpec(beat_baseline=False)
    assert decide_promotion("regression", {"rmse": 52.0}, NONE, off, "m", baseline).promoted


def test_baseline_metrics_are_those_of_a_model_that_ignores_its_inputs():
    from steps.training.metrics import baseline_metrics

    rng = np.random.default_rng(0)
    features = pd.DataFrame({"x": rng.normal(size=300)})
    labels = pd.Series(rng.normal(size=300) * 3 + 10)
    regression = baseline_metrics("regression", features, labels)
    assert regression["r2"] == pytest.approx(0.0) and regression["rmse"] == pytest.approx(
        labels.std(ddof=0)
    )
    classes = pd.Series(np.where(rng.random(300) < 0.7, "a", "b"))
    classification = baseline_metrics("classification", features, classes)
    assert classification["accuracy"] == pytest.approx((classes == "a").mean())
    assert classification["roc_auc"] == pytest.approx(0.5)
