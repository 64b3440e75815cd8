"""The KFP UI outputs a task writes: formats, the wrapper's exit codes, and what it declares."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from integrations.kubeflow import ui_outputs
from steps.training.metrics import classification_curves


def test_classification_metadata_is_kfps_own_format_and_holds_json():
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"x": rng.normal(size=400)})
    labels = pd.Series(np.where(features["x"] + rng.normal(size=400) > 0, "yes", "no"))
    curves = classification_curves(LogisticRegression().fit(features, labels), features, labels)
    metadata = ui_outputs.classification_metadata(curves["confusion"], curves["roc"])
    json.dumps(metadata, allow_nan=False)  # +inf thresholds would not be valid JSON
    matrix = metadata["confusionMatrix"]
    assert [a["displayName"] for a in matrix["annotationSpecs"]] == ["no", "yes"]
    assert sum(sum(r["row"]) for r in matrix["rows"]) == 400
    points = metadata["confidenceMetrics"]
    assert 2 <= len(points) <= ui_outputs.MAX_ROC_POINTS + 1
    assert points[-1]["recall"] == 1.0 and points[0]["falsePositiveRate"] == 0.0


def test_numeric_metadata_keeps_numbers_and_prefixes_a_shared_name():
    metrics = ui_outputs.numeric_metadata(
        {
            "train": {"rows": 10, "name": "x", "ok": True, "gap": float("nan")},
            "test": {"rows": 4, "f1": 0.9},
        }
    )
    assert metrics == {"rows": 10.0, "test.rows": 4.0, "f1": 0.9}


def test_card_names_the_run_links_and_each_outputs_fields():
    card = ui_outputs.card_markdown(
        {
            "step": "promote_if_better",
            "run_name": "training-1",
            "run_id": "r1",
            "step_run_id": "s1",
            "status": "completed",
            "dashboard": "https://zenml.example.com/runs/r1",
            "mlflow_run": "http://mlflow/#/experiments/1/runs/abc",
            "outputs": {"promotion_decision": {"promoted": "True", "reason": "f1 beats"}},
            "models": {"promotion_decision": "http://mlflow/#/models/m/versions/2"},
        }
    )
    for expected in (
        "### promote_if_better",
        "`training-1` (id `r1`)",
        "https://zenml.example.com/runs/r1",
        "http://mlflow/#/experiments/1/runs/abc",
        "- **reason:** f1 beats",
        "http://mlflow/#/models/m/versions/2",
    ):
        assert expected in card


def outs(tmp_path, kinds):
    # The executor input as KFP's driver writes it: the launcher reads `outputFile` back.
    executor_input = {"outputs": {"outputFile": str(tmp_path / "kfp" / "output.json")}}
    args, paths = ["--executor-input", json.dumps(executor_input)], {}
    for kind in kinds:
        paths[kind] = tmp_path / "artifacts" / kind
        args += ["--out", kind, str(paths[kind]), f"minio://b/{kind}"]
    return args, paths


def test_a_failing_step_fails_the_task_with_its_own_exit_code_and_writes_nothing(tmp_path):
    args, paths = outs(tmp_path, ["card", "metrics"])
    code = ui_outputs.main([*args, "--", sys.executable, "-c", "raise SystemExit(3)"])
    assert code == 3
    assert not any(p.exists() for p in paths.values())


@pytest.mark.parametrize(
    "source,code", [("raise SystemExit(4)", 4), ("raise ValueError('x')", 1), ("x = 1", 0)]
)
def test_a_python_module_step_runs_in_process_with_the_interpreters_exit_code(
    tmp_path, monkeypatch, source, code
):
    (tmp_path / "fake_step.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert ui_outputs.run_step(["python", "-m", "fake_step", "--step_name", "s"]) == code


def test_outputs_are_written_even_when_zenml_cannot_be_read(tmp_path, monkeypatch):
    def unreachable(*_):
        raise ConnectionError("server down")

    monkeypatch.setattr(ui_outputs, "step_facts", unreachable)
    args, paths = outs(tmp_path, ["card", "metrics", "classification", "report"])
    command = [sys.executable, "-c", "pass", "--step_name", "train_model"]
    assert ui_outputs.main([*args, "--", *command]) == 0
    assert "server down" in paths["card"].read_text()
    assert "server down" in paths["report"].read_text()
    written = json.loads((tmp_path / "kfp" / "output.json").read_text())["artifacts"]
    assert written["metrics"]["artifacts"][0] == {
        "name": "metrics",
        "uri": "minio://b/metrics",
        "metadata": {},
    }


def test_usage_without_a_step_command():
    assert ui_outputs.main(["--executor-input", "{}"]) == 2


def test_the_executor_output_goes_where_the_executor_input_says_or_nowhere(capsys):
    assert ui_outputs.executor_output_file('{"outputs": {"outputFile": "/t/o.json"}}') == (
        "/t/o.json"
    )
    assert ui_outputs.executor_output_file(None) is None
    # A launcher that left `{{$}}` alone: the UI gets nothing, and the log says so.
    assert ui_outputs.executor_output_file("{{$}}") is None
    assert "cannot reach the KFP UI" in capsys.readouterr().err


def test_metrics_leave_out_zenmls_storage_size():
    metrics = ui_outputs.numeric_metadata({"report": {"f1": 0.9, "storage_size": 2048}})
    assert metrics == {"f1": 0.9}


def test_the_drift_card_states_the_verdict_and_the_drifted_columns_and_reasons_are_lines():
    from materializers.drift_report import ColumnDrift, DriftReport
    from steps.monitoring.decide import MonitoringDecision

    columns = [
        ColumnDrift(column=c, kind="numeric", test="ks", statistic=0.5, p_value=p, drifted=p < 0.05)
        for c, p in (("age", 0.001), ("bmi", 0.01), ("bp", 0.5))
    ]
    drift = DriftReport(
        columns=columns, drift_share=2 / 3, threshold=0.05, reference_rows=100, current_rows=50
    )
    decision = MonitoringDecision(
        alert=True,
        retrain=False,
        reasons=["drift share 67% ≥ 30%", "the batch has no labels"],
        drift_share=2 / 3,
        drifted_columns=["age", "bmi"],
    )
    card = ui_outputs.card_markdown(
        {
            "step": "s",
            "run_name": "r",
            "run_id": "1",
            "step_run_id": "2",
            "status": "completed",
            "outputs": {
                "drift_report": ui_outputs.scalar_fields(drift),
                "monitoring_decision": ui_outputs.scalar_fields(decision),
            },
        }
    )
    assert "- **verdict:** drift: 2 of 3 columns drifted (67% ≥ 30% drift share)" in card
    assert "- **drifted columns:**\n  - age\n  - bmi\n" in card
    assert "- **reasons:**\n  - drift share 67% ≥ 30%\n  - the batch has no labels\n" in card


@pytest.mark.parametrize(
    "materializer,expected",
    [
        ("materializers.evaluation_report.EvaluationReportMaterializer",
         ["card", "metrics", "classification", "report"]),
        ("materializers.drift_report.DriftReportMaterializer", ["card", "metrics", "report"]),
        ("zenml.materializers.pydantic_materializer.PydanticMaterializer", ["card"]),
    ],
)  # fmt: skip
def test_a_task_declares_what_its_outputs_materializers_can_show(materializer, expected):
    from types import SimpleNamespace

    from zenml.config.source import Source
    from zenml.utils import source_utils

    # As compile does (stacks.env.prepare_zenml): ZenML resolves our sources from the repo
    # root; in a pytest-xdist worker __main__ has no file, so it could not find one itself.
    source_utils.set_custom_source_root(str(Path(__file__).resolve().parents[4]))
    output = SimpleNamespace(materializer_source=[Source.from_import_path(materializer)])
    step = SimpleNamespace(config=SimpleNamespace(outputs={"out": output}))
    assert ui_outputs.kinds_for_step(step) == expected


def test_a_step_that_saves_its_own_artifacts_declares_what_they_show():
    """The loop's retraining saves its evaluation only when it trains (no declared output
    for it), so its task declares the evaluation's KFP outputs through the step's `extra`."""
    from types import SimpleNamespace

    from steps.monitoring import retrain_if_needed

    extra = retrain_if_needed.configuration.extra
    step = SimpleNamespace(config=SimpleNamespace(outputs={}, extra=extra))
    assert ui_outputs.kinds_for_step(step) == ["card", "metrics", "classification", "report"]
