"""Drift over time, read back from the runs themselves.

Every monitoring run (the monitoring pipeline, or the loop's continuous-training pipeline)
stores its drift report (each column's p-value, effect size and verdict; `summary.json`
in the artifact store), its quality report and its decision as artifacts, and the run's
parameters (which model) in the ZenML store. That is the record, on both stacks: local
store and folder, or the ZenML server and the bucket. This module reads it back into a
`DriftHistory`, saves that as an artifact (its HTML is a visualization in the ZenML
dashboard) and writes the latest figures where the model's front exports them to
Prometheus (`integrations/monitoring_gauges.py`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing it imports ZenML, which run.py must not do before its set-up
    from materializers.drift_history import DriftHistory, RunRecord

MONITORING_PIPELINES = ("monitoring_pipeline", "continuous_training_pipeline")
HISTORY_ARTIFACT = "drift_history"


def monitoring_runs(model_name: str, limit: int) -> list[Any]:
    """The newest `limit` completed monitoring runs of `model_name`, oldest first."""
    from zenml.client import Client

    client, runs = Client(), []
    for pipeline in MONITORING_PIPELINES:
        mine, page = [], 1
        while len(mine) < limit:  # newest first, until `limit` runs of this model are found
            found = client.list_pipeline_runs(
                pipeline_name=pipeline,
                status="completed",
                sort_by="desc:created",
                size=50,
                page=page,
                hydrate=True,  # the run's parameters: which model it watched
            )
            mine += [r for r in found.items if r.config.parameters.get("model_name") == model_name]
            if page >= found.total_pages:
                break
            page += 1
        runs += mine[:limit]
    runs.sort(key=lambda r: r.created)
    return runs[-limit:]


def run_record(run) -> RunRecord | None:
    """One run's figures (None when the run has no drift report, e.g. it stopped early)."""
    from zenml.io import fileio

    from materializers.drift_history import ColumnPoint, RunRecord

    steps = run.steps
    if "detect_drift" not in steps or not steps["detect_drift"].outputs.get("drift_report"):
        return None
    artifact = steps["detect_drift"].outputs["drift_report"][0]
    # The summary only: the artifact's loader would read Evidently's HTML (megabytes) too.
    with fileio.open(os.path.join(artifact.uri, "summary.json"), "r") as f:
        summary = json.loads(f.read())
    quality = _output(steps, "check_quality", "quality_report")
    decision = _output(steps, "decide_action", "monitoring_decision")
    labelled = quality is not None and quality.labelled
    return RunRecord(
        run_name=run.name,
        pipeline=run.pipeline.name if run.pipeline else "",
        created=run.created.isoformat(timespec="seconds"),
        current_rows=summary.get("current_rows", 0),
        drift_share=summary["drift_share"],
        alert=decision.alert if decision is not None else None,
        model_version=getattr(decision, "model_version", "") if decision is not None else "",
        columns={
            c["column"]: ColumnPoint(
                p_value=c["p_value"],
                effect=c.get("effect"),
                min_effect=c.get("min_effect"),
                drifted=c["drifted"],
            )
            for c in summary["columns"]
        },
        quality_metric=quality.metric if labelled else "",
        quality=quality.current if labelled else None,
        quality_reference=quality.reference if labelled else None,
    )


def _output(steps, step: str, name: str):
    outputs = steps[step].outputs.get(name) if step in steps else None
    return outputs[0].load() if outputs else None


def history(model_name: str, limit: int = 50) -> DriftHistory:
    """The last `limit` monitoring runs of `model_name`, oldest first."""
    from materializers.drift_history import DriftHistory

    records = [run_record(run) for run in monitoring_runs(model_name, limit)]
    return DriftHistory(model_name=model_name, runs=[r for r in records if r is not None])


def save(drift_history: DriftHistory, folder: str | os.PathLike) -> tuple[str, str]:
    """Write `drift-history-<model>.html` into `folder` and save the history as the ZenML
    artifact `drift_history` (its HTML is the visualization the dashboard shows). Returns
    (the HTML file, the artifact version's id)."""
    from zenml import save_artifact

    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"drift-history-{drift_history.model_name}.html")
    with open(path, "w") as f:
        f.write(drift_history.to_html())
    version = save_artifact(drift_history, name=HISTORY_ARTIFACT, tags=[drift_history.model_name])
    attach_to_latest_run(drift_history, version.id)
    publish_latest(drift_history)
    return path, str(version.id)


ATTACHED_TO = "decide_action"  # the monitoring step whose outputs list the history


def attach_to_latest_run(drift_history: DriftHistory, version_id) -> str | None:
    """Make the history an output of the latest monitoring run's decision step, as ZenML's
    save_artifact links an artifact saved inside a step (zenml/artifacts/utils.py,
    _link_artifact_version_to_the_step_and_model): the open-source dashboard shows an
    artifact only from a run page (its Artifacts and Models pages are ZenML Pro's).
    Returns that run's name (None: no run, or its step is gone)."""
    from zenml.client import Client
    from zenml.models import StepRunUpdate

    if not drift_history.runs:
        return None
    client, name = Client(), drift_history.runs[-1].run_name
    try:
        step = client.get_pipeline_run(name).steps[ATTACHED_TO]
    except (KeyError, ValueError):
        return None
    client.zen_store.update_run_step(
        step_run_id=step.id, step_run_update=StepRunUpdate(outputs={HISTORY_ARTIFACT: [version_id]})
    )
    return name


def publish_run(model_name: str, run) -> None:
    """After a monitoring run: its figures become the model's latest gauges."""
    from materializers.drift_history import DriftHistory

    record = run_record(run)
    if record is not None:
        publish_latest(DriftHistory(model_name=model_name, runs=[record]))


def publish_latest(drift_history: DriftHistory) -> None:
    """The latest run's drift share and quality, for the model's front to export."""
    from integrations.monitoring_gauges import write_latest

    if drift_history.runs:
        last = drift_history.runs[-1]
        write_latest(
            drift_history.model_name,
            drift_share=last.drift_share,
            quality=last.quality,
            metric=last.quality_metric,
            run_name=last.run_name,
        )


@dataclass
class HistoryResult:
    """What `monitor history` found and wrote."""

    history: DriftHistory
    html_path: str
    artifact_id: str
    column: str | None = None


def run(
    model_name: str, limit: int = 50, column: str | None = None, out: str | None = None
) -> HistoryResult:
    """Read the history, write its HTML, save it as an artifact, refresh the gauges."""
    from core.errors import ZenkubeError
    from core.paths import zenkube_home

    found = history(model_name, limit)
    if column is not None and found.runs and column not in found.column_names:
        raise ZenkubeError(
            f"No column '{column}' in the monitoring runs of '{model_name}'. Its columns: "
            f"{', '.join(found.column_names[:12])}{' …' if len(found.column_names) > 12 else ''}."
        )
    if not found.runs:
        return HistoryResult(found, "", "", column)
    path, artifact_id = save(found, out or zenkube_home() / "reports")
    return HistoryResult(found, path, artifact_id, column)


def render(result: HistoryResult, echo) -> None:
    """The runs as a table (and one column's figures), then where the report is."""
    found = result.history
    if not found.runs:
        echo(
            f"No monitoring runs of '{found.model_name}' yet: run `python run.py monitor "
            f"--model-name {found.model_name}` first.",
            fg="yellow",
        )
        return
    echo(f"\nMonitoring runs of '{found.model_name}' ({len(found.runs)}, oldest first):")
    for line in found.table():
        echo("  " + line)
    if result.column:
        echo(f"\n{result.column}: effect size and p-value per run")
        for line in found.column_lines(result.column):
            echo("  " + line)
    echo(f"\nHistory report: {result.html_path}")
    echo(
        f"ZenML artifact: {HISTORY_ARTIFACT} ({result.artifact_id}); in the dashboard: run "
        f"{found.runs[-1].run_name} → step {ATTACHED_TO} → output {HISTORY_ARTIFACT}"
    )
