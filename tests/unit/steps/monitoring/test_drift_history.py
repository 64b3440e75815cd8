"""Drift over time: the history's table and script-free trend report, its artifact, and
the front's drift/quality gauges (no ZenML store needed)."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from materializers.drift_history import (
    ColumnPoint,
    DriftHistory,
    DriftHistoryMaterializer,
    RunRecord,
)
from tests.unit.materializers.test_materializers import artifact_store, round_trip  # noqa: F401


def creeping_history() -> DriftHistory:
    """Four runs: `age` creeps up and drifts in the last two; `city` stays put; the third
    run is labelled."""
    runs = []
    for day, effect in enumerate([0.02, 0.06, 0.12, 0.2]):
        drifted = effect >= 0.1
        runs.append(
            RunRecord(
                run_name=f"continuous_training_pipeline-{day}",
                pipeline="continuous_training_pipeline",
                created=f"2026-11-0{day + 1}T08:00:00",
                current_rows=1000,
                drift_share=0.5 if drifted else 0.0,
                alert=drifted,
                columns={
                    "age": ColumnPoint(
                        p_value=1e-6 if drifted else 0.2,
                        effect=effect,
                        min_effect=0.1,
                        drifted=drifted,
                    ),
                    "city": ColumnPoint(p_value=0.5, effect=0.01, min_effect=0.1, drifted=False),
                },
                quality_metric="f1" if day == 2 else "",
                quality=0.81 if day == 2 else None,
                quality_reference=0.9 if day == 2 else None,
            )
        )
    return DriftHistory(model_name="churn", runs=runs)


def test_the_history_report_has_no_script_and_a_trend_chart_per_column():
    page = creeping_history().to_html()
    assert "<script" not in page.lower() and "Drift history of churn" in page
    # drift share, quality, and one chart per column
    assert page.count("<svg") == 4
    # p-values in scientific notation, next to the effect sizes
    assert "age <small>(latest: effect 0.2, p=1.0e-06; drifted in 2 of 4 runs)" in page
    assert "city <small>(latest: effect 0.01, p=5.0e-01; drifted in 0 of 4 runs)" in page
    # every chart's axes are titled: the value per run, over the runs
    titles = re.findall(r"rotate\(-90[^)]*\)'>([^<]+)</text>", page)
    assert titles == ["drift share", "f1", "effect size", "effect size"]
    assert page.count(">monitoring run (start, UTC)</text>") == 4
    age = page[page.index("<h4>age") : page.index("<h4>city")]
    assert age.count("fill='#d92d20'") == 2 and "stroke-dasharray" in age and "min 0.1" in age
    tooltips = re.findall(r"<title>([^<]+)</title>", age)
    assert tooltips == [
        f"2026-11-0{d} 08:00: {e}" for d, e in enumerate([0.02, 0.06, 0.12, 0.2], start=1)
    ]
    # newest run first in the table, the alerting ones shaded
    assert page.index("continuous_training_pipeline-3") < page.index(
        "continuous_training_pipeline-0"
    )
    assert "<td>0.8100</td>" in page


def test_the_table_lists_each_run_and_a_columns_figures():
    history = creeping_history()
    lines = history.table()
    assert len(lines) == 5 and "drifted" in lines[0]
    assert "2026-11-03 08:00" in lines[3] and "f1=0.8100" in lines[3] and "ALERT" in lines[3]
    assert "no labels" in lines[1] and lines[1].rstrip().endswith("-")
    # real run names share their first 44 characters: each is printed whole
    long_names = history.model_copy(deep=True)
    for day, run in enumerate(long_names.runs):
        run.run_name = f"continuous_training_pipeline-2026_12_01-13_0{day}_16_386260"
    printed = long_names.table()
    assert all(run.run_name in printed[i + 1] for i, run in enumerate(long_names.runs))
    age = history.column_lines("age")
    assert "effect   0.2000" in age[-1] and "drifted" in age[-1] and "drifted" not in age[0]


def test_an_empty_history_says_so():
    page = DriftHistory(model_name="new").to_html()
    assert "No monitoring runs yet" in page and "<script" not in page


def test_history_artifact_round_trip(artifact_store):  # noqa: F811
    history = creeping_history()
    loaded, metadata, html = round_trip(DriftHistoryMaterializer, history, artifact_store)
    assert loaded == history
    assert metadata == {"model_name": "churn", "runs": 4}
    assert "<svg" in html and "<script" not in html


def gauges(model: str) -> dict:
    from core.monitoring.gauges import MonitoringGauges

    registry = CollectorRegistry()
    registry.register(MonitoringGauges(model))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_fronts_gauges_follow_the_latest_monitoring_run(tmp_path, monkeypatch):
    from app.drift_history import publish_latest
    from integrations.seldon_local.router.proxy import Front

    monkeypatch.setenv("ZENKUBE_HOME", str(tmp_path))
    assert gauges("churn") == {}  # nothing before the first monitoring run
    history = creeping_history()
    for run, version in zip(history.runs, ["1", "1", "2", "2"], strict=True):
        run.model_version = version  # the champion each run watched
    publish_latest(DriftHistory(model_name="churn", runs=history.runs[:2]))
    v1 = (("model", "churn"), ("version", "1"))
    assert gauges("churn")[("zenkube_drift_share", v1)] == 0.0
    publish_latest(DriftHistory(model_name="churn", runs=history.runs[:3]))
    got = gauges("churn")
    v2 = (("model", "churn"), ("version", "2"))
    assert got[("zenkube_drift_share", v2)] == 0.5 and ("zenkube_drift_share", v1) not in got
    assert got[("zenkube_quality", (("metric", "f1"), *v2))] == pytest.approx(0.81)
    publish_latest(history)  # read at each scrape: the next run's figures, no restart
    got = gauges("churn")
    assert got[("zenkube_drift_share", v2)] == 0.5
    assert not any(name == "zenkube_quality" for name, _ in got)  # the last run had no labels
    assert gauges("other") == {}
    # The front registers them on its own /metrics registry.
    front = Front(0, 0, tmp_path / "router.json", model="churn", version="3", protocol="seldon")
    text = generate_latest(front.metrics.registry).decode()
    assert 'zenkube_drift_share{model="churn",version="2"} 0.5' in text


def test_each_run_names_the_model_version_it_watched_and_the_charts_sit_on_a_time_axis():
    history = creeping_history()
    for run, version in zip(history.runs, ["1", "1", "2", "2"], strict=True):
        run.model_version = version
    history.runs[1].created = "2026-11-01T20:00:00"  # half a day after the first run
    lines = history.table()
    assert " model " in lines[0] and "v1" in lines[1] and "v2" in lines[4]
    assert "(new champion v2)" in lines[3] and "new champion" not in lines[1] + lines[2] + lines[4]
    page = history.to_html()
    assert "<th>model</th>" in page and "<td>v2</td>" in page
    age = page[page.index("<h4>age") : page.index("<h4>city")]
    # v1's runs and v2's runs are two lines, with a mark where the champion changed
    assert age.count("<polyline") == 2 and ">v2</text>" in age
    xs = [float(x) for x in re.findall(r"<circle cx='([\d.]+)'", age)]
    # runs 0 and 1 are 12 hours apart, runs 1 to 2 and 2 to 3 a day or more: time, not index
    assert (xs[1] - xs[0]) < (xs[3] - xs[2]) / 1.5
    assert re.findall(r"<title>([^<]+)</title>", age)[2] == "2026-11-03 08:00 (v2): 0.12"
