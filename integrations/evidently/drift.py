"""The one place that talks to Evidently (0.7): its interactive drift report.

The numbers come from our own exact path (`steps/monitoring/drift.py`) on all rows.
Evidently's report is configured with the same tests and thresholds, so its verdicts are
ours: numeric and date columns (dates as days) get `ks`, whose p-values equal
`scipy.stats.ks_2samp`; categorical columns get our chi-square contingency test,
registered with Evidently as `zenkube_chi2`. A column drifts by zenkube's rule, significant
AND a big enough effect: each column's test is a registered Evidently stattest that takes
the p-value from that test and the effect size from Evidently's own `wasserstein` (normed)
or `jensenshannon` implementation, and drifts when p < p_value and effect ≥ min_effect. The
effect sizes are also shown as their own metrics (one per column, Evidently's
implementation, same minimum), and the dataset drifts at the same drift share. Evidently
is slow at scale (1M rows x 10 columns: 74 s with the default preset), so its HTML is
built on a bounded sample.
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
        effects: column -> the effect size Evidently computed (normed Wasserstein for
            numbers and dates, Jensen–Shannon distance for categories).
        drifted: column -> Evidently's verdict (zenkube's rule, in Evidently).
        drift_share: the share of columns Evidently counts as drifted.
        html: the interactive report (scripts; open it in a browser).
        note: which rows the report was built on.
    """

    p_values: dict[str, float]
    effects: dict[str, float]
    drifted: dict[str, bool]
    drift_share: float
    html: str
    note: str


def _register(test: Callable[[pd.Series, pd.Series], tuple[float, ...]]) -> None:
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


def combined_test(kind: str, min_effect: float) -> str:
    """The name of a registered Evidently stattest for one kind of column and one minimum
    effect: its score is the test's p-value, and it reports drift when that p-value is below
    Evidently's threshold (zenkube's p_value) and Evidently's own effect size is at least
    `min_effect`."""
    from evidently.legacy.calculations import stattests
    from evidently.legacy.calculations.stattests.registry import (
        StatTest,
        get_stattest,
        register_stattest,
    )
    from evidently.legacy.core import ColumnType

    numeric = kind != "categorical"
    name = f"zenkube_{'ks' if numeric else 'chi2'}_effect_{float(min_effect)!r}"
    if name in _registered:
        return name
    test_name = "ks" if numeric else CATEGORICAL_TEST
    effect_test = stattests.wasserstein_stat_test if numeric else stattests.jensenshannon_stat_test
    feature_type = ColumnType.Numerical if numeric else ColumnType.Categorical

    def significant_and_big(reference, current, _feature_type, threshold):
        test = get_stattest(reference, current, feature_type, test_name)
        p_value = test(reference, current, feature_type, threshold).drift_score
        effect = effect_test(reference, current, feature_type, min_effect).drift_score
        return p_value, bool(p_value < threshold and effect >= min_effect)

    effect_label = "Wasserstein (normed)" if numeric else "Jensen-Shannon"
    register_stattest(
        StatTest(
            name=name,
            display_name=f"{'K-S' if numeric else 'chi-square'} p-value (0: below 5e-7) "
            f"and {effect_label} ≥ {min_effect:g}",
            allowed_feature_types=[feature_type],
        ),
        default_impl=significant_and_big,
    )
    _registered.add(name)
    return name


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
    thresholds: dict[str, tuple[float, float]],
    drift_share: float,
    categorical_test: Callable[[pd.Series, pd.Series], tuple[float, ...]],
    max_rows: int,
    seed: int = 0,
    sampled_from: tuple[int, int] | None = None,
) -> EvidentlyDrift:
    """Evidently's data-drift report with zenkube's tests, rule and thresholds.

    `reference` and `current` hold numbers (dates already as days) and the `categorical`
    columns; `thresholds`: column -> (p-value threshold, minimum effect). The HTML is built
    on at most `max_rows` rows of each side. `sampled_from`: the sides' row counts when the
    caller has already sampled them.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
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
    kind = {c: ("numeric" if c in numeric else "categorical") for c in reference.columns}
    methods = {c: combined_test(kind[c], thresholds[c][1]) for c in reference.columns}
    preset = DataDriftPreset(
        drift_share=drift_share,
        per_column_method=methods,
        per_column_threshold={c: thresholds[c][0] for c in reference.columns},
    )
    effects = [
        ValueDrift(
            column=c,
            method="wasserstein" if kind[c] == "numeric" else "jensenshannon",
            threshold=thresholds[c][1],
            tests=[],  # a size is not a verdict: only the combined rule's tests are listed
        )
        for c in reference.columns
    ]
    snapshot = Report([preset, *effects], include_tests=True).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    p_values, effect_sizes, share = {}, {}, 0.0
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith(":ValueDrift"):
            if config.get("method") in ("wasserstein", "jensenshannon"):
                effect_sizes[config["column"]] = float(metric["value"])
            else:
                p_values[config["column"]] = float(metric["value"])
        elif config.get("type", "").endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    return EvidentlyDrift(
        p_values,
        effect_sizes,
        _verdicts(snapshot),
        share,
        snapshot.get_html_str(as_iframe=False),
        note,
    )


def _verdicts(snapshot) -> dict[str, bool]:
    """Column -> whether Evidently's per-column drift test (the combined rule) said drift."""
    verdicts = {}
    for result in snapshot.dict().get("tests", []):
        params = result.get("metric_config", {}).get("params", {})
        column, method = params.get("column"), str(params.get("method", ""))
        if column and method.startswith("zenkube_"):  # FAIL: the column drifted
            verdicts[column] = str(result.get("status")).endswith("FAIL")
    return verdicts
