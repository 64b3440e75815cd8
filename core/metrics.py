"""Which metrics each task has, which direction is better, and the defaults per task."""

from __future__ import annotations

# Metrics where smaller is better; every other metric is "higher is better".
LOWER_IS_BETTER = frozenset({"rmse", "mae"})

# What zenkube computes for each task. For more than two classes `f1` is the macro
# average over classes and `roc_auc` the one-vs-rest macro average.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1", "roc_auc"),
    "regression": ("rmse", "mae", "r2"),
}

# The gate metric when the config names none.
PRIMARY_METRIC = {"classification": "f1", "regression": "rmse"}

# The estimator when the config names none (both take the same default params):
# gradient-boosted trees on binned features, with native categories and missing values;
# minutes -> seconds and hundreds of MB -> about one at 150k rows (docs/performance.md §10).
DEFAULT_ESTIMATOR = {
    "classification": "sklearn.ensemble.HistGradientBoostingClassifier",
    "regression": "sklearn.ensemble.HistGradientBoostingRegressor",
}
DEFAULT_PARAMS = {"random_state": 0}


def primary_metric(task: str) -> str:
    """The metric the promotion gate compares when the config names none."""
    return PRIMARY_METRIC.get(task, "f1")


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


def score_is_better(metric: str, candidate: float, reference: float, margin: float = 0.0) -> bool:
    """True when candidate beats reference by more than margin in the metric's direction."""
    if lower_is_better(metric):
        return candidate < reference - margin
    return candidate > reference + margin
