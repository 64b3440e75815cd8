"""The gate's paired comparison: candidate and champion scored on the same rows, and a
bootstrap interval of the difference of their metric.

Both models' per-row outputs on the evaluation rows are resampled together (the same
rows in each resample, so what the two get right or wrong on a row stays paired), the
metric is recomputed on each resample for both, and the interval is the central
`confidence` share of the differences. It is a plain function of arrays: unit-tested and
benchmarked (benchmarks/bench_gate.py) without any store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from core.metrics import lower_is_better


@dataclass(frozen=True)
class PairedComparison:
    """How much better the candidate is than the champion on the same rows.

    Attributes:
        difference: candidate minus champion on all the rows, signed so that positive
            means the candidate is better (for rmse/mae: champion minus candidate).
        low / high: the bootstrap interval of that difference.
        rows: how many rows both were scored on.
        confidence: the interval's confidence (0.95: a 95% interval).
        resamples: how many bootstrap resamples made it.
    """

    difference: float
    low: float
    high: float
    rows: int
    confidence: float
    resamples: int

    def interval(self, metric: str) -> str:
        return (
            f"{metric} difference {self.difference:+.4f}, {self.confidence:.0%} interval "
            f"[{self.low:+.4f}, {self.high:+.4f}] on {self.rows} rows"
        )


def row_outputs(metric: str, model, features: pd.DataFrame) -> np.ndarray:
    """What the metric needs of each row: class probabilities for roc_auc (the positive
    class's for two classes), predictions otherwise."""
    if metric == "roc_auc":
        proba = np.asarray(model.predict_proba(features))
        return proba[:, 1] if proba.shape[1] == 2 else proba
    return np.asarray(model.predict(features))


def _f1(labels: np.ndarray, predicted: np.ndarray, weights: np.ndarray, average: str):
    """F1 of every resample (rows of `weights`: how often each row was drawn), as
    scikit-learn's f1_score with those sample weights: the positive (larger) class for
    `binary`, the mean over classes for `macro`."""
    classes = np.unique(np.concatenate([labels, predicted]))
    if average == "binary":
        classes = classes[-1:]
    scores = []
    for c in classes:
        tp = weights @ ((predicted == c) & (labels == c))
        fp = weights @ ((predicted == c) & (labels != c))
        fn = weights @ ((predicted != c) & (labels == c))
        denominator = 2 * tp + fp + fn
        scores.append(np.divide(2 * tp, denominator, out=np.zeros(len(tp)), where=denominator > 0))
    return np.mean(scores, axis=0)


def resampled_metric(
    metric: str, labels: np.ndarray, outputs: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """The metric on each resample: `weights[b, i]` is how often row i is in resample b."""
    n = weights.sum(axis=1).astype(float)
    if metric == "accuracy":
        return (weights @ (outputs == labels)) / n
    if metric in ("f1", "f1_macro"):
        binary = metric == "f1" and len(np.unique(labels)) <= 2
        return _f1(labels, outputs, weights, "binary" if binary else "macro")
    if metric in ("rmse", "mae", "r2"):
        errors = outputs.astype(float) - labels.astype(float)
        if metric == "rmse":
            return np.sqrt((weights @ errors**2) / n)
        if metric == "mae":
            return (weights @ np.abs(errors)) / n
        mean = (weights @ labels.astype(float)) / n
        total = weights @ (labels.astype(float) ** 2) - n * mean**2
        return 1 - np.divide(
            weights @ errors**2, total, out=np.full(len(n), np.nan), where=total > 0
        )
    if metric == "roc_auc":
        multi = outputs.ndim == 2
        scores = []
        for row in weights:
            try:
                scores.append(
                    skm.roc_auc_score(labels, outputs, sample_weight=row, multi_class="ovr")
                    if multi
                    else skm.roc_auc_score(labels, outputs, sample_weight=row)
                )
            except ValueError:  # a resample that drew one class only
                scores.append(np.nan)
        return np.asarray(scores)
    raise ValueError(f"no paired comparison for metric '{metric}'")


def compare_paired(
    metric: str,
    labels,
    candidate: np.ndarray,
    champion: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    chunk: int = 100,
) -> PairedComparison:
    """The bootstrap interval of (candidate − champion) in `metric`, better = positive.

    `candidate` and `champion` are each model's `row_outputs` on the same rows, in the
    same order as `labels`."""
    labels = np.asarray(labels)
    rows = len(labels)
    everything = np.ones((1, rows))
    sign = -1.0 if lower_is_better(metric) else 1.0

    def difference(weights: np.ndarray) -> np.ndarray:
        return sign * (
            resampled_metric(metric, labels, candidate, weights)
            - resampled_metric(metric, labels, champion, weights)
        )

    observed = float(difference(everything)[0])
    rng = np.random.default_rng(seed)
    differences = []
    for start in range(0, resamples, chunk):  # bounded memory: `chunk` × rows weights
        size = min(chunk, resamples - start)
        differences.append(difference(rng.multinomial(rows, np.full(rows, 1 / rows), size)))
    spread = np.concatenate(differences)
    spread = spread[~np.isnan(spread)]
    if not len(spread):
        return PairedComparison(observed, -np.inf, np.inf, rows, confidence, resamples)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(spread, [tail, 100 - tail])
    return PairedComparison(observed, float(low), float(high), rows, confidence, resamples)
