"""Which metrics each task has, which direction is better, and the defaults per task."""

from __future__ import annotations

# Metrics where smaller is better; every other metric is "higher is better".
LOWER_IS_BETTER = frozenset({"rmse", "mae"})

# What zenkube computes for each task. `f1` is the F1 of the positive class (the larger
# label) and exists for two classes only; `f1_macro` is the mean F1 over classes (for any
# number of them) and `roc_auc` the one-vs-rest macro average above two classes. A gate
# or monitor asking for `f1` of a task with more classes uses `f1_macro` (metric_in).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "f1", "f1_macro", "roc_auc"),
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


def metric_in(metric: str, metrics: dict) -> str:
    """The metric to read from `metrics`: `f1` of a task with more than two classes (which
    has no positive class) is its `f1_macro`."""
    if metric == "f1" and "f1" not in metrics and "f1_macro" in metrics:
        return "f1_macro"
    return metric


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


def score_is_better(metric: str, candidate: float, reference: float, margin: float = 0.0) -> bool:
    """True when candidate beats reference by more than margin in the metric's direction."""
    if lower_is_better(metric):
        return candidate < reference - margin
    return candidate > reference + margin
