"""The one place that talks to Evidently (0.7): its interactive drift report.

The numbers come from our own exact path (`steps/monitoring/drift.py`) on all rows.
Evidently's report is configured with the same tests and thresholds, so its verdicts are
ours: numeric and date columns (dates as days) get `ks`, whose p-values equal
`scipy.stats.ks_2samp`; categorical columns get our chi-square contingency test,
registered with Evidently as `zenkube_chi2`; a column drifts below the same p-value and
the dataset drifts at the same drift share. Evidently is slow at scale (1M rows x 10
columns: 74 s with the default preset), so its HTML is built on a bounded sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

CATEGORICAL_TEST = "zenkube_chi2"
_registered: set[str] = set()


@dataclass
class EvidentlyDrift:
    """Evidently's own verdicts and its HTML report.

    Attributes:
        p_values: column -> the p-value Evidently computed.
        drift_share: the share of columns Evidently counts as drifted.
        html: the interactive report (scripts; open it in a browser).
        note: which rows the report was built on.
    """

    p_values: dict[str, float]
    drift_share: float
    html: str
    note: str


def _register(test: Callable[[pd.Series, pd.Series], tuple[float, float]]) -> None:
    if CATEGORICAL_TEST in _registered:
        return
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    def evidently_impl(reference, current, _feature_type, threshold):
        p_value = test(reference, current)[1]
        return p_value, p_value < threshold

    register_stattest(
        StatTest(
            name=CATEGORICAL_TEST,
            display_name="chi-square contingency p_value",
            allowed_feature_types=[ColumnType.Categorical],
        ),
        default_impl=evidently_impl,
    )
    _registered.add(CATEGORICAL_TEST)
    _drifted_first()


def _drifted_first() -> None:
    """Evidently's drift table lists columns by p-value, highest first: the undrifted ones
    fill its first pages. Register its renderer with the rows reordered as zenkube's
    report has them: drifted columns first, each group by p-value, lowest first."""
    from evidently.legacy.metrics import DataDriftTable
    from evidently.legacy.metrics.data_drift.data_drift_table import DataDriftTableRenderer
    from evidently.legacy.renderers.base_renderer import DEFAULT_RENDERERS

    class DriftedFirstRenderer(DataDriftTableRenderer):
        def render_html(self, obj):
            widgets = super().render_html(obj)
            for widget in widgets:
                rows = (widget.params or {}).get("data")
                if isinstance(rows, list) and rows and _fields(rows[0]).get("data_drift"):
                    rows.sort(key=_drifted_then_p_value)
            return widgets

    DEFAULT_RENDERERS.typed_renderers[DataDriftTable] = DriftedFirstRenderer()


def _fields(row) -> dict:
    """A table row's fields: rich tables hold flat dicts (`column_name`, `data_drift`, …)."""
    if isinstance(row, dict):
        return row.get("fields", row) if isinstance(row.get("fields"), dict) else row
    return getattr(row, "fields", None) or {}


def _drifted_then_p_value(row) -> tuple[bool, float]:
    fields = _fields(row)
    return fields.get("data_drift") != "Detected", float(fields.get("drift_score", 1.0))


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    categorical: list[str],
    p_value: float,
    drift_share: float,
    categorical_test: Callable[[pd.Series, pd.Series], tuple[float, float]],
    max_rows: int,
    seed: int = 0,
    sampled_from: tuple[int, int] | None = None,
) -> EvidentlyDrift:
    """Evidently's data-drift report with zenkube's tests and thresholds.

    `reference` and `current` hold numbers (dates already as days) and the `categorical`
    columns; the HTML is built on at most `max_rows` rows of each side. `sampled_from`:
    the sides' row counts when the caller has already sampled them.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    _register(categorical_test)
    total_ref, total_cur = sampled_from or (len(reference), len(current))
    note = f"Evidently report on all rows ({total_ref} reference, {total_cur} current)."
    if len(reference) > max_rows or len(current) > max_rows:
        reference = reference.sample(min(max_rows, len(reference)), random_state=seed)
        current = current.sample(min(max_rows, len(current)), random_state=seed)
    if (len(reference), len(current)) != (total_ref, total_cur):
        note = (
            f"Evidently report on a random sample of {len(reference)} reference and "
            f"{len(current)} current rows; zenkube's drift numbers use all rows."
        )
    numeric = [c for c in reference.columns if c not in categorical]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    methods = {c: ("ks" if c in numeric else CATEGORICAL_TEST) for c in reference.columns}
    preset = DataDriftPreset(drift_share=drift_share, threshold=p_value, per_column_method=methods)
    snapshot = Report([preset]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    p_values, share = {}, 0.0
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith(":ValueDrift"):
            p_values[config["column"]] = float(metric["value"])
        elif config.get("type", "").endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    return EvidentlyDrift(p_values, share, snapshot.get_html_str(as_iframe=False), note)
