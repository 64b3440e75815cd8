"""Drift of a batch against the champion's training data: exact tests on all rows."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from scipy import stats
from zenml import log_metadata, step

from core.specs import MonitoringThresholds
from integrations.evidently_drift import drift_html
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


def compute_drift(
    reference: Dataset, current: pd.DataFrame, thresholds: MonitoringThresholds
) -> DriftReport:
    """Test every feature column; numeric columns go through one float64 block."""

    def tested(name: str, kind: str, test: str, result: tuple[float, float]) -> ColumnDrift:
        statistic, p_value = result
        return ColumnDrift(
            column=name,
            kind=kind,
            test=test,
            statistic=statistic,
            p_value=p_value,
            drifted=p_value < thresholds.p_value,
        )

    columns = []
    numeric = [c for c, k in reference.schema.items() if k == NUMERIC]
    if numeric:
        ref_block = reference.frame[numeric].to_numpy(dtype=np.float64)
        cur_block = current[numeric].to_numpy(dtype=np.float64)
        for i, name in enumerate(numeric):
            columns.append(
                tested(name, "numeric", "ks", numeric_drift(ref_block[:, i], cur_block[:, i]))
            )
    for name, kind in reference.schema.items():
        if kind == DATETIME:
            result = numeric_drift(as_days(reference.frame[name]), as_days(current[name]))
            columns.append(tested(name, "datetime", "ks", result))
        elif kind != NUMERIC:
            result = categorical_drift(reference.frame[name], current[name])
            columns.append(tested(name, "categorical", "chi2", result))
    share = sum(c.drifted for c in columns) / max(len(columns), 1)
    return DriftReport(
        columns=columns,
        drift_share=share,
        threshold=thresholds.p_value,
        reference_rows=len(reference.frame),
        current_rows=len(current),
    )


@step
def detect_drift(
    reference: Dataset, batch: Dataset, thresholds: MonitoringThresholds
) -> Annotated[DriftReport, "drift_report"]:
    """Per-column drift tests on all rows, plus Evidently's HTML for people to look at."""
    features = list(reference.schema)
    report = compute_drift(reference, batch.frame[features], thresholds)
    report.html, report.html_note = drift_html(
        reference.frame[features], batch.frame[features], thresholds.html_max_rows
    )
    log_metadata({"drift_share": report.drift_share, "drifted": report.drifted_columns})
    return report
