"""The gate's paired bootstrap: the metric on weighted resamples is scikit-learn's, and the
interval of the difference says what the rows can tell."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from steps.registry.paired import compare_paired, resampled_metric


def sklearn_metric(metric, labels, outputs, weights):
    if metric == "accuracy":
        return skm.accuracy_score(labels, outputs, sample_weight=weights)
    if metric == "f1":
        return skm.f1_score(labels, outputs, sample_weight=weights)
    if metric == "f1_macro":
        return skm.f1_score(labels, outputs, sample_weight=weights, average="macro")
    if metric == "roc_auc":
        return skm.roc_auc_score(labels, outputs, sample_weight=weights)
    if metric == "rmse":
        return np.sqrt(skm.mean_squared_error(labels, outputs, sample_weight=weights))
    if metric == "mae":
        return skm.mean_absolute_error(labels, outputs, sample_weight=weights)
    return skm.r2_score(labels, outputs, sample_weight=weights)


@pytest.mark.parametrize("metric", ["accuracy", "f1", "f1_macro", "roc_auc", "rmse", "mae", "r2"])
def test_the_metric_of_each_resample_is_scikit_learns_with_those_weights(metric):
    rng = np.random.default_rng(1)
    n = 300
    if metric in ("rmse", "mae", "r2"):
        labels = rng.normal(size=n)
        outputs = labels + rng.normal(scale=0.5, size=n)
    elif metric == "roc_auc":
        labels = rng.integers(0, 2, n)
        outputs = np.clip(labels * 0.3 + rng.random(n) * 0.7, 0, 1)
    else:
        classes = 3 if metric == "f1_macro" else 2
        labels = rng.integers(0, classes, n)
        outputs = np.where(rng.random(n) < 0.7, labels, rng.integers(0, classes, n))
    weights = rng.multinomial(n, np.full(n, 1 / n), size=4)
    got = resampled_metric(metric, labels, outputs, weights)
    expected = [sklearn_metric(metric, labels, outputs, w) for w in weights]
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_identical_models_give_a_zero_interval_and_a_clearly_better_one_a_positive_one():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 1000)
    good = np.where(rng.random(1000) < 0.9, labels, 1 - labels)
    same = compare_paired("accuracy", labels, good, good)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
    worse = np.where(rng.random(1000) < 0.7, labels, 1 - labels)
    better = compare_paired("accuracy", labels, good, worse)
    assert better.low > 0.1 and better.difference == pytest.approx(
        (good == labels).mean() - (worse == labels).mean()
    )
    assert better.rows == 1000 and better.resamples == 1000


def test_lower_is_better_metrics_count_a_smaller_error_as_a_gain():
    rng = np.random.default_rng(3)
    labels = rng.normal(size=500)
    close, far = labels + rng.normal(scale=0.1, size=500), labels + rng.normal(size=500)
    assert compare_paired("rmse", labels, close, far).low > 0
    assert compare_paired("rmse", labels, far, close).high < 0


def test_the_interval_is_seeded_and_narrows_with_more_rows():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 4000)
    a = np.where(rng.random(4000) < 0.8, labels, 1 - labels)
    b = np.where(rng.random(4000) < 0.8, labels, 1 - labels)
    small = compare_paired("f1", labels[:400], a[:400], b[:400])
    assert small == compare_paired("f1", labels[:400], a[:400], b[:400])
    big = compare_paired("f1", labels, a, b)
    assert big.high - big.low < (small.high - small.low) / 2


def test_a_metric_the_rows_cannot_compute_is_inconclusive_not_a_crash():
    """roc_auc on evaluation rows of one class: compare_paired has no interval (nan,
    -inf..inf); the gate keeps the champion as inconclusive and says why."""
    import math

    from core.specs import GateSpec
    from steps.registry.gate import COMPARED, ChampionComparison, decide_promotion
    from steps.registry.paired import PairedComparison

    paired = PairedComparison(math.nan, -math.inf, math.inf, 200, 0.95, 1000)
    champion = ChampionComparison(status=COMPARED, version="1", score=0.9, paired=paired)
    decision = decide_promotion(
        "classification", {"roc_auc": 0.95}, champion, GateSpec(metric="roc_auc")
    )
    assert decision.outcome == "inconclusive" and not decision.promoted
    assert "cannot be computed on these rows" in decision.reason


def test_the_rows_to_decide_hint_is_a_count_only_when_one_is_plausible():
    from steps.registry.gate import rows_to_decide
    from steps.registry.paired import PairedComparison

    near = rows_to_decide(PairedComparison(0.01, -0.01, 0.03, 200, 0.95, 1000), 0.0)
    assert near == "about 801 evaluation rows if the difference stays +0.0100"
    tiny = rows_to_decide(PairedComparison(0.0001, -0.03, 0.03, 400, 0.95, 1000), 0.0)
    assert tiny.startswith("over 100 times these 400 rows: the two score about the same")
