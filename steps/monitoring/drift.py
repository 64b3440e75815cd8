"""Drift of a batch against the champion's training data: exact tests on all rows."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from scipy import stats
from zenml import log_metadata, step

from core.specs import MonitoringThresholds
from integrations.evidently_drift import drift_report
from materializers.dataset import DATETIME, NUMERIC, Dataset
from materializers.drift_report import ColumnDrift, DriftReport


def numeric_drift(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample KS (statistic, p-value), exactly as Evidently's `ks` method computes it."""
    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    result = stats.ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def categorical_drift(reference: pd.Series, current: pd.Series) -> tuple[float, float]:
    """Chi-square on category frequencies (categories unseen in reference count too)."""
    ref_counts = reference.astype(str).value_counts()
    cur_counts = current.astype(str).value_counts()
    categories = ref_counts.index.union(cur_counts.index)
    table = np.vstack(
        [ref_counts.reindex(categories, fill_value=0), cur_counts.reindex(categories, fill_value=0)]
    )
    if table.shape[1] < 2:
        return 0.0, 1.0
    statistic, p_value, _, _ = stats.chi2_contingency(table)
    return float(statistic), float(p_value)


def as_days(values: pd.Series) -> np.ndarray:
    """Dates as days since 1970 (NaN where missing or unparseable), for the KS test."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    days = (parsed - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(days=1)
    return days.to_numpy(dtype=float, na_value=np.nan)


HISTOGRAM_BINS = 20
HISTOGRAM_CATEGORIES = 12


def histogram(kind: str, reference, current) -> dict[str, list]:
    """Reference and current shares per bin (numbers, dates as days) or per category."""
    if kind == "categorical":
        ref = pd.Series(reference).astype(str).value_counts(normalize=True)
        cur = pd.Series(current).astype(str).value_counts(normalize=True)
        labels = list(ref.add(cur, fill_value=0).sort_values(ascending=False).index)
        labels = labels[:HISTOGRAM_CATEGORIES]
        return {
            "labels": labels,
            "reference": [float(ref.get(k, 0.0)) for k in labels],
            "current": [float(cur.get(k, 0.0)) for k in labels],
        }
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if not len(ref) or not len(cur):
        return {}
    low, high = np.percentile(np.concatenate([ref, cur]), [0.5, 99.5])
    high = high if high > low else low + 1.0
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    shares = [np.histogram(np.clip(v, low, high), edges)[0] / len(v) for v in (ref, cur)]
    if kind == "datetime":
        labels = [str(pd.Timestamp(0) + pd.Timedelta(days=float(e))).split(" ")[0] for e in edges]
    else:
        labels = [f"{e:.3g}" for e in edges]
    return {
        "labels": labels[:-1],
        "reference": shares[0].tolist(),
        "current": shares[1].tolist(),
    }


def compute_drift(
    reference: Dataset, current: pd.DataFrame, thresholds: MonitoringThresholds
) -> DriftReport:
    """Test every feature column; numeric columns go through one float64 block."""

    def tested(name, kind, test, result, reference_values, current_values) -> ColumnDrift:
        statistic, p_value = result
        drifted = p_value < thresholds.p_value
        return ColumnDrift(
            column=name,
            kind=kind,
            test=test,
            statistic=statistic,
            p_value=p_value,
            drifted=drifted,
            histogram=histogram(kind, reference_values, current_values) if drifted else None,
        )

    columns = []
    numeric = [c for c, k in reference.schema.items() if k == NUMERIC]
    for name in numeric:  # one column at a time: a big batch is not copied whole
        ref = reference.frame[name].to_numpy(dtype=np.float64)
        cur = current[name].to_numpy(dtype=np.float64)
        columns.append(tested(name, "numeric", "ks", numeric_drift(ref, cur), ref, cur))
    for name, kind in reference.schema.items():
        if kind == DATETIME:
            ref, cur = as_days(reference.frame[name]), as_days(current[name])
            columns.append(tested(name, "datetime", "ks", numeric_drift(ref, cur), ref, cur))
        elif kind != NUMERIC:
            ref, cur = reference.frame[name], current[name]
            columns.append(
                tested(name, "categorical", "chi2", categorical_drift(ref, cur), ref, cur)
            )
    share = sum(c.drifted for c in columns) / max(len(columns), 1)
    return DriftReport(
        columns=columns,
        drift_share=share,
        threshold=thresholds.p_value,
        reference_rows=len(reference.frame),
        current_rows=len(current),
        share_threshold=thresholds.drift_share,
        critical_columns=list(thresholds.critical_columns),
    )


MISSING = "(missing)"


def evidently_frames(reference: Dataset, current: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
    """The frames Evidently tests, as our tests see them: dates as days, and a missing
    category value as a category of its own (Evidently would drop those rows)."""
    ref, cur = reference.frame[list(reference.schema)].copy(), current.copy()
    for name, kind in reference.schema.items():
        if kind == DATETIME:
            ref[name], cur[name] = as_days(ref[name]), as_days(cur[name])
        elif kind != NUMERIC:
            ref[name] = ref[name].astype(object).where(ref[name].notna(), MISSING).astype(str)
            cur[name] = cur[name].astype(object).where(cur[name].notna(), MISSING).astype(str)
    return ref, cur


def evidently_report(reference: Dataset, current: pd.DataFrame, thresholds: MonitoringThresholds):
    """Evidently's report with our tests and thresholds (see integrations/evidently_drift),
    on at most `html_max_rows` rows of each side, sampled before anything is copied."""
    limit, rows = thresholds.html_max_rows, (len(reference.frame), len(current))
    sampled = reference
    if len(reference.frame) > limit:
        sampled = Dataset(
            frame=reference.frame.sample(limit, random_state=0),
            target=reference.target,
            task=reference.task,
            schema=dict(reference.schema),
        )
    if len(current) > limit:
        current = current.sample(limit, random_state=0)
    ref, cur = evidently_frames(sampled, current)
    categorical = [c for c, k in reference.schema.items() if k not in (NUMERIC, DATETIME)]
    return drift_report(
        ref,
        cur,
        categorical,
        thresholds.p_value,
        thresholds.drift_share,
        categorical_drift,
        limit,
        sampled_from=rows,
    )


@step
def detect_drift(
    reference: Dataset, batch: Dataset, thresholds: MonitoringThresholds
) -> Annotated[DriftReport, "drift_report"]:
    """Per-column drift tests on all rows, plus Evidently's HTML for people to look at."""
    features = batch.features  # no copy when the batch holds just the features
    report = compute_drift(reference, features, thresholds)
    evidently = evidently_report(reference, features, thresholds)
    report.html, report.html_note = evidently.html, evidently.note
    log_metadata({"drift_share": report.drift_share, "drifted": report.drifted_columns})
    return report
