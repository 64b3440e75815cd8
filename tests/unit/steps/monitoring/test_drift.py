"""Drift tests, the decision rules and batch checks, without a ZenML store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import DataValidationError
from core.specs import MonitoringThresholds
from materializers.dataset import Dataset
from materializers.drift_report import DriftReport, p_text
from steps.monitoring.batch import check_batch
from steps.monitoring.decide import QualityReport, decide
from steps.monitoring.drift import categorical_drift, compute_drift
from steps.monitoring.simulate import shift_columns


def generated(rows: int, seed: int, shift: dict[str, float] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) * (i + 1) for i in range(10)})
    frame.loc[rng.choice(rows, 5, replace=False), "x3"] = np.nan  # missing values are skipped
    for column, amount in (shift or {}).items():
        frame[column] += amount
    return frame


def evidently_ks_p_values(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset(method="ks")]).run(
        current_data=current, reference_data=reference
    )
    values = {}
    for metric in snapshot.dict()["metrics"]:
        if metric["config"]["type"].endswith("ValueDrift"):
            values[metric["config"]["column"]] = metric["value"]
    return values


@pytest.mark.parametrize("rows", [200, 3000, 20000])
def test_fast_path_p_values_equal_evidently_ks(rows):
    reference = generated(rows, seed=1)
    current = generated(rows // 2 + 7, seed=2, shift={"x0": 0.1, "x5": 0.5})
    data = Dataset(frame=reference.assign(y=0), target="y", task="classification")
    ours = {
        c.column: c.p_value for c in compute_drift(data, current, MonitoringThresholds()).columns
    }
    theirs = evidently_ks_p_values(reference, current)
    assert set(ours) == set(theirs) == set(reference.columns)
    for column in reference.columns:
        assert ours[column] == pytest.approx(theirs[column], abs=1e-9, rel=1e-9), column


def test_shifted_columns_are_exactly_the_ones_flagged():
    reference = generated(2000, seed=3)
    current = generated(1000, seed=4, shift={"x1": 2.0, "x7": 8.0})
    data = Dataset(frame=reference.assign(y=0), target="y", task="classification")
    report = compute_drift(data, current, MonitoringThresholds())
    assert report.drifted_columns == ["x1", "x7"]
    assert report.drift_share == pytest.approx(0.2)


def test_categorical_drift_detects_a_new_mix():
    same = pd.Series(list("aab") * 200)
    assert categorical_drift(same, pd.Series(list("aba") * 100))[1] > 0.05
    assert categorical_drift(same, pd.Series(list("bbc") * 100))[1] < 1e-6


def drift_report(share: float, drifted: list[str]) -> DriftReport:
    return DriftReport(
        columns=[], drift_share=share, threshold=0.05, reference_rows=1, current_rows=1
    ).model_copy(update={"columns": [_col(c, c in drifted) for c in ["a", "b", "c", "d"]]})


def _col(name, drifted):
    from materializers.drift_report import ColumnDrift

    return ColumnDrift(
        column=name,
        kind="numeric",
        test="ks",
        statistic=0.0,
        p_value=0.0 if drifted else 0.5,
        drifted=drifted,
    )


def test_decision_rules():
    thresholds = MonitoringThresholds(
        drift_share=0.5, critical_columns=["d"], max_quality_drop=0.05
    )
    unlabelled = QualityReport(labelled=False)
    calm = decide(drift_report(0.25, ["a"]), unlabelled, thresholds)
    assert not calm.alert and not calm.retrain
    shared = decide(drift_report(0.5, ["a", "b"]), unlabelled, thresholds)
    assert shared.alert and not shared.retrain  # no labels: alert only
    critical = decide(drift_report(0.25, ["d"]), unlabelled, thresholds)
    assert critical.alert and "critical column(s) drifted: d" in critical.reasons[0]
    worse = QualityReport(labelled=True, metric="f1", current=0.80, reference=0.90)
    quality = decide(drift_report(0.0, []), worse, thresholds)
    assert (
        quality.alert and quality.retrain and "f1 fell from 0.9000 to 0.8000" in quality.reasons[0]
    )


def reference_dataset() -> Dataset:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "color": ["r", "g", "b"], "y": [0, 1, 0]})
    return Dataset(frame=frame, target="y", task="classification")


@pytest.mark.parametrize(
    "frame,message",
    [
        (pd.DataFrame({"a": [1.0]}), "missing columns: color"),
        (pd.DataFrame({"a": [1.0], "color": ["r"], "zzz": [1]}), "unexpected columns: zzz"),
        (
            pd.DataFrame({"a": ["one"], "color": ["r"]}),
            "column 'a' should be numeric but is text (e.g. 'one')",
        ),
        (pd.DataFrame({"a": [], "color": []}), "the batch has no rows"),
        (
            pd.DataFrame({"a": [1.0, np.inf, -np.inf], "color": ["r", "g", "b"]}),
            "column 'a' has 2 infinite value(s) (first at row 1)",
        ),
    ],
)
def test_bad_batches_are_refused_with_the_columns_named(frame, message):
    with pytest.raises(DataValidationError, match="does not match") as info:
        check_batch(frame, reference_dataset())
    assert message in str(info.value)


def test_a_good_batch_keeps_labels_and_schema():
    batch = check_batch(pd.DataFrame({"color": ["r"], "a": [1.5], "y": [1]}), reference_dataset())
    assert list(batch.frame.columns) == ["a", "color", "y"] and batch.labels is not None


def test_simulated_drift_shifts_numeric_columns_only():
    reference = Dataset(
        frame=generated(500, 5).fillna(0).assign(y=0), target="y", task="classification"
    )
    frame, shifted = shift_columns(reference, reference, count=2)
    assert shifted == ["x0", "x1"]
    assert (frame["x0"] - reference.frame["x0"]).round(9).nunique() == 1
    assert (frame["x2"] == reference.frame["x2"]).all()


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("empty.csv", b"", "is empty: it needs a header row and data rows"),
        ("binary.csv", bytes(range(256)) * 8, "is not a readable CSV file"),
        ("binary.parquet", bytes(range(256)) * 8, "is not a readable Parquet file"),
    ],
)
def test_unreadable_batch_files_get_a_message_that_says_what_to_do(
    tmp_path, name, content, message
):
    from steps.data.load import read_table

    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataValidationError, match=message) as info:
        read_table(str(path))
    assert "Traceback" not in str(info.value) and str(path) in str(info.value)


def mixed(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=rows) + (1.0 if shifted else 0.0),
            "b": rng.normal(size=rows),
            "city": rng.choice(["Oslo", "Rome", "Lima"] + (["Pune"] if shifted else []), rows),
            "tier": rng.choice(["x", "y"], rows),
            "signup": (
                pd.Timestamp("2022-01-01")
                + pd.to_timedelta(rng.integers(0, 400 if shifted else 300, rows), unit="D")
            ).strftime("%Y-%m-%d"),
        }
    )
    frame.loc[rng.choice(rows, rows // 10, replace=False), "b"] = np.nan
    frame.loc[rng.choice(rows, rows // 10, replace=False), "city"] = None
    return frame


@pytest.mark.parametrize("shifted", [False, True])
def test_evidentlys_report_reaches_our_verdicts_column_by_column(shifted):
    from steps.monitoring.drift import evidently_report

    reference = Dataset(frame=mixed(600, 1, False).assign(y=0), target="y", task="classification")
    assert reference.schema["signup"] == "datetime"
    current = mixed(300, 2, shifted)
    thresholds = MonitoringThresholds(drift_share=0.5)
    ours = compute_drift(reference, current, thresholds)
    theirs = evidently_report(reference, current, thresholds)
    names = {c.column for c in ours.columns}
    assert set(theirs.p_values) == set(theirs.effects) == set(theirs.drifted) == names
    for column in ours.columns:  # Evidently's own ks/wasserstein/jensenshannon, our rule
        assert theirs.p_values[column.column] == pytest.approx(column.p_value, rel=1e-9, abs=1e-300)
        assert theirs.effects[column.column] == pytest.approx(column.effect, rel=1e-9, abs=1e-12)
        assert theirs.drifted[column.column] == column.drifted, column.column
    assert theirs.drift_share == pytest.approx(ours.drift_share)
    assert ours.verdict()[0] == shifted
    assert set(ours.drifted_columns) == ({"a", "city", "signup"} if shifted else set())
    # Its table lists drifted columns first, as ours does (Evidently's own order: p-value,
    # highest first, so undrifted columns filled its first page).
    import re

    listed = re.findall(r'"column_name":\s*"([^"]+)"', theirs.html)
    verdicts = re.findall(r'"data_drift":\s*"([^"]+)"', theirs.html)
    assert sorted(listed) == sorted(c.column for c in ours.columns)
    drifted = len(ours.drifted_columns)
    assert set(listed[:drifted]) == set(ours.drifted_columns)
    assert verdicts == ["Detected"] * drifted + ["Not Detected"] * (len(listed) - drifted)


def test_evidentlys_verdicts_follow_the_effect_rule_when_it_dismisses_a_significant_column():
    """Thresholds chosen so that one column is significant but too small, one is drifted
    only because its own minimum is lower, and one has its own p-value: Evidently's
    per-column verdicts (its own p-values and effect sizes, our rule) equal ours."""
    from steps.monitoring.drift import evidently_report

    reference = Dataset(frame=mixed(600, 1, False).assign(y=0), target="y", task="classification")
    current = mixed(300, 2, True)
    thresholds = MonitoringThresholds(
        drift_share=0.5,
        min_effect={"numeric": 0.7, "categorical": 0.3},
        columns={"city": {"min_effect": 0.2}, "signup": {"p_value": 1e-20}},
    )
    ours = {c.column: c for c in compute_drift(reference, current, thresholds).columns}
    assert ours["a"].drifted  # W/σ ≈ 1.0 ≥ 0.7
    assert ours["signup"].significant is False and not ours["signup"].drifted  # p ≈ 3e-13
    assert ours["city"].drifted and ours["city"].min_effect == 0.2  # JS ≈ 0.28 ≥ 0.2
    assert (ours["a"].p_threshold, ours["a"].min_effect) == (0.05, 0.7)
    theirs = evidently_report(reference, current, thresholds)
    assert theirs.drifted == {name: c.drifted for name, c in ours.items()}
    assert theirs.drift_share == pytest.approx(0.4)


def test_a_negligible_shift_in_a_big_batch_is_significant_but_not_drift():
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"x0": rng.normal(size=200_000), "x4": rng.normal(size=200_000) * 5})
    current = pd.DataFrame({"x0": rng.normal(size=200_000), "x4": rng.normal(size=200_000) * 5})
    current += {"x0": 0.02, "x4": 5 * 0.3}  # in standard deviations: 0.02 and 0.3
    data = Dataset(frame=reference.assign(y=0), target="y", task="classification")
    report = compute_drift(data, current, MonitoringThresholds())
    x0, x4 = report.columns
    assert x0.p_value < 1e-4 and x0.significant and not x0.drifted  # the old rule alerted
    assert x0.effect == pytest.approx(0.02, abs=0.01)
    assert x4.drifted and x4.effect == pytest.approx(0.3, abs=0.02)
    assert report.drifted_columns == ["x4"]
    page = report.to_html()
    assert "significant, small effect" in page and "but by less than their minimum" in page


def test_effect_sizes_are_the_textbook_distances():
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    from steps.monitoring.drift import numeric_drift

    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=3001) * 3, rng.exponential(size=1234)
    ref[5] = np.nan  # skipped, as the test skips it
    clean = ref[~np.isnan(ref)]
    expected = wasserstein_distance(clean, cur) / np.std(clean)
    assert numeric_drift(ref, cur)[2] == pytest.approx(expected, rel=1e-12)
    assert numeric_drift(np.ones(10), np.ones(10) * 3)[2] == pytest.approx(2.0)  # constant
    shares = categorical_drift(pd.Series(list("aab") * 10), pd.Series(list("abcc") * 10))[2]
    assert shares == pytest.approx(jensenshannon([2 / 3, 1 / 3, 0], [1 / 4, 1 / 4, 1 / 2]))


def test_thresholds_for_unknown_columns_are_refused():
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="thresholds.columns names agee, which the model"):
        compute_drift(
            reference_dataset(),
            pd.DataFrame({"a": [1.0], "color": ["r"]}),
            MonitoringThresholds(columns={"agee": {"min_effect": 0.2}}),
        )


def test_the_drift_report_has_no_script_and_puts_drifted_columns_first():
    reference = Dataset(frame=mixed(600, 1, False).assign(y=0), target="y", task="classification")
    report = compute_drift(reference, mixed(300, 2, True), MonitoringThresholds())
    page = report.to_html()
    assert "<script" not in page.lower() and "Dataset drift detected" in page
    assert "3 of 5 columns drifted (60% ≥ 30% drift share)" in page
    table = page[page.index("Every column") :]
    positions = {c.column: table.index(f"<td>{c.column}</td>") for c in report.columns}
    assert max(positions[c] for c in report.drifted_columns) < min(
        positions[c] for c in ("b", "tier")
    )
    assert page.count("<svg") == 3 and "<rect" in page
    # both axes of each histogram are labelled: the share of rows and the column's values
    assert page.count(">share of rows</text>") == 3 and ">0%</text>" in page
    assert ">city (category)</text>" in page and ">a (start of each bin)</text>" in page
    # p-values as they are (scientific notation), each beside its effect size
    for c in report.columns:
        assert f"<td>{p_text(c.p_value)}</td><td>{'W/σ' if c.kind != 'categorical' else 'JS'}" in (
            page
        )


def test_p_values_are_shown_in_scientific_notation_and_never_as_zero():
    assert p_text(1e-51) == "1.0e-51" and p_text(0.4512) == "4.5e-01"
    assert p_text(0.0) == "< 1e-300"  # a test whose p-value underflowed


def test_chunked_predictions_equal_one_call():
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from steps.monitoring.batch import predict_in_chunks

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(1000, 3)), columns=["a", "b", "c"])
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0))
    model.fit(frame, frame["a"] > 0)
    np.testing.assert_array_equal(predict_in_chunks(model, frame, rows=128), model.predict(frame))


def test_the_reports_metadata_has_both_figures_of_the_drifted_and_biggest_columns(tmp_path):
    from materializers.drift_report import ColumnDrift, DriftReportMaterializer
    from tests.unit.materializers.test_materializers import local_artifact_store

    columns = [
        ColumnDrift(
            column=f"c{i}",
            kind="numeric",
            test="ks",
            statistic=0.1,
            p_value=0.01 if i in (3, 24) else 0.5,
            effect=0.3 if i == 24 else i / 100,
            significant=i in (3, 24),
            drifted=i == 24,
        )
        for i in range(25)
    ]
    report = DriftReport(
        columns=columns, drift_share=0.04, threshold=0.05, reference_rows=9, current_rows=9
    )
    metadata = DriftReportMaterializer(
        str(tmp_path), local_artifact_store(tmp_path)
    ).extract_metadata(report)
    effects = {k: v for k, v in metadata.items() if k.startswith("effect.")}
    assert len(effects) == 20 and metadata["effect.c24"] == 0.3 and metadata["p_value.c24"] == 0.01
    assert "effect.c23" in effects and "effect.c4" not in effects  # biggest effects next
