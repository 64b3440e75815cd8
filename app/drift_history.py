"""Drift over time, read back from the runs themselves.

Every monitoring run (the monitoring pipeline, or the loop's continuous-training pipeline)
stores its drift report (each column's p-value, effect size and verdict; `summary.json`
in the artifact store), its quality report and its decision as artifacts, and the run's
parameters (which model) in the ZenML store. That is the record, on both stacks: local
store and folder, or the ZenML server and the bucket. This module reads it back into a
`DriftHistory`, saves that as an artifact (its HTML is a visualization in the ZenML
dashboard) and writes the latest figures where the model's front exports them to
Prometheus (`core/monitoring/gauges.py`).

On a local store the reading needs no ZenML (issue #33): the runs, their parameters and
their artifacts' folders come from ZenML's SQLite file (integrations/seldon_local/local_records.py),
the figures from the artifacts' files (`summary.json`, and the `data_v2.json` ZenML's
PydanticMaterializer writes). The `drift_history` artifact is then saved by each
monitoring command right after its run (`after_run`), so `monitor history` only reads
and names the one its latest run carries. Elsewhere (a ZenML server, a bucket), and for
runs made before that, it reads and saves through ZenML as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.drift_history import DriftHistory, RunRecord
    from integrations.seldon_local.local_records import StoredRun

MONITORING_PIPELINES = ("monitoring_pipeline", "continuous_training_pipeline")
HISTORY_ARTIFACT = "drift_history"
HISTORY_RUNS = 50  # the runs `monitor history` shows by default, and the saved artifact holds
PYDANTIC_FILE = "data_v2.json"  # zenml/materializers/pydantic_materializer.py DEFAULT_FILENAME


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

    steps = run.steps
    if "detect_drift" not in steps or not steps["detect_drift"].outputs.get("drift_report"):
        return None
    artifact = steps["detect_drift"].outputs["drift_report"][0]
    # The summary only: the artifact's loader would read Evidently's HTML (megabytes) too.
    with fileio.open(os.path.join(artifact.uri, "summary.json"), "r") as f:
        summary = json.loads(f.read())
    quality = _output(steps, "check_quality", "quality_report")
    decision = _output(steps, "decide_action", "monitoring_decision")
    return record_of(
        run.name,
        run.pipeline.name if run.pipeline else "",
        run.created.isoformat(timespec="seconds"),
        summary,
        quality.model_dump() if quality is not None else None,
        decision.model_dump() if decision is not None else None,
    )


def record_of(
    run_name: str, pipeline: str, created: str, summary: dict, quality: dict | None,
    decision: dict | None,
) -> RunRecord:  # fmt: skip
    """A run's record from its drift summary, quality report and decision (as dicts)."""
    from core.drift_history import ColumnPoint, RunRecord

    labelled = quality is not None and quality.get("labelled")
    return RunRecord(
        run_name=run_name,
        pipeline=pipeline,
        created=created,
        current_rows=summary.get("current_rows", 0),
        drift_share=summary["drift_share"],
        alert=decision.get("alert") if decision is not None else None,
        model_version=(decision.get("model_version") or "") if decision is not None else "",
        columns={
            c["column"]: ColumnPoint(
                p_value=c["p_value"],
                effect=c.get("effect"),
                min_effect=c.get("min_effect"),
                drifted=c["drifted"],
            )
            for c in summary["columns"]
        },
        quality_metric=quality.get("metric", "") if labelled else "",
        quality=quality.get("current") if labelled else None,
        quality_reference=quality.get("reference") if labelled else None,
    )


class NotLocal(Exception):
    """A run's artifact is not a file of this machine (a bucket): ZenML reads it."""


def _local_json(uri: str, name: str) -> dict:
    path = os.path.join(uri, name)
    if not os.path.isabs(uri) or not os.path.isfile(path):
        raise NotLocal(path)
    with open(path) as f:
        return json.load(f)


def stored_record(run: StoredRun) -> RunRecord | None:
    """`run_record` from ZenML's SQLite file and the artifacts' folders, without ZenML."""
    from datetime import datetime

    drift = run.output("detect_drift", "drift_report")
    if drift is None:
        return None
    quality = run.output("check_quality", "quality_report")
    decision = run.output("decide_action", "monitoring_decision")
    return record_of(
        run.name,
        run.pipeline,
        datetime.fromisoformat(run.created).isoformat(timespec="seconds"),
        _local_json(drift[1], "summary.json"),
        _local_json(quality[1], PYDANTIC_FILE) if quality else None,
        _local_json(decision[1], PYDANTIC_FILE) if decision else None,
    )


def local_history(
    store_file: str, model_name: str, limit: int = HISTORY_RUNS
) -> tuple[DriftHistory, str | None] | None:
    """(The history as `history` reads it, the id of the `drift_history` artifact its
    latest run carries, None when it carries none), read without ZenML; None when a run's
    artifacts are not files here."""
    from core.drift_history import DriftHistory
    from integrations.seldon_local.local_records import completed_runs

    runs = completed_runs(store_file, MONITORING_PIPELINES, ("model_name", model_name), limit)
    try:
        records = [(run, stored_record(run)) for run in runs]
    except NotLocal:
        return None
    kept = [(run, record) for run, record in records if record is not None]
    found = DriftHistory(model_name=model_name, runs=[record for _, record in kept])
    attached = kept[-1][0].output(ATTACHED_TO, HISTORY_ARTIFACT) if kept else None
    return found, attached[0] if attached else None


def _output(steps, step: str, name: str):
    outputs = steps[step].outputs.get(name) if step in steps else None
    return outputs[0].load() if outputs else None


def history(model_name: str, limit: int = HISTORY_RUNS) -> DriftHistory:
    """The last `limit` monitoring runs of `model_name`, oldest first (through ZenML)."""
    from core.drift_history import DriftHistory

    records = [run_record(run) for run in monitoring_runs(model_name, limit)]
    return DriftHistory(model_name=model_name, runs=[r for r in records if r is not None])


def write_html(drift_history: DriftHistory, folder: str | os.PathLike) -> str:
    """Write `drift-history-<model>.html` into `folder`; its path."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"drift-history-{drift_history.model_name}.html")
    with open(path, "w") as f:
        f.write(drift_history.to_html())
    return path


def save(drift_history: DriftHistory) -> str:
    """Save the history as the ZenML artifact `drift_history` (its HTML is the
    visualization the dashboard shows), an output of its latest run's decision step.
    Returns the artifact version's id."""
    from zenml import save_artifact

    import materializers.drift_history  # noqa: F401  (registers the materializer)

    version = save_artifact(drift_history, name=HISTORY_ARTIFACT, tags=[drift_history.model_name])
    attach_to_latest_run(drift_history, version.id)
    return str(version.id)


def after_run(model_name: str, run) -> None:
    """After a monitoring command's run, on a local store: save the model's history (its
    last HISTORY_RUNS runs, this one the latest) as the `drift_history` artifact of this
    run, so `monitor history` has only to read. Always: this run's figures become the
    model's gauges."""
    store_file = _store_file()
    local = local_history(store_file, model_name) if store_file else None
    if local is not None and local[0].runs and local[0].runs[-1].run_name == run.name:
        save(local[0])
        publish_latest(local[0])
        return
    publish_run(model_name, run)


def _store_file() -> str | None:
    """The active ZenML store's SQLite file (None: a ZenML server)."""
    from zenml.client import Client

    url = str(getattr(Client().zen_store.config, "url", "") or "")
    return url.removeprefix("sqlite:///") if url.startswith("sqlite:") else None


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
    from core.drift_history import DriftHistory

    record = run_record(run)
    if record is not None:
        publish_latest(DriftHistory(model_name=model_name, runs=[record]))


def publish_latest(drift_history: DriftHistory) -> None:
    """The latest run's drift share and quality, for the model's front to export."""
    from core.monitoring.gauges import write_latest

    if drift_history.runs:
        last = drift_history.runs[-1]
        write_latest(
            drift_history.model_name,
            drift_share=last.drift_share,
            quality=last.quality,
            metric=last.quality_metric,
            run_name=last.run_name,
            model_version=last.model_version,
        )


@dataclass
class HistoryResult:
    """What `monitor history` found and wrote."""

    history: DriftHistory
    html_path: str
    artifact_id: str
    column: str | None = None


def run(
    model_name: str,
    limit: int = HISTORY_RUNS,
    column: str | None = None,
    out: str | None = None,
    store_file: str | None = None,
    before_zenml: Callable[[], Any] | None = None,
) -> HistoryResult:
    """Read the history, write its HTML, refresh the gauges, and name its artifact. With
    `store_file` (a local ZenML store) it is read without ZenML and the artifact is the
    one the latest run saved; ZenML (after `before_zenml`) reads what is not local and
    saves the artifact a run lacks."""
    from core.errors import ZenkubeError
    from core.paths import zenkube_home

    local = local_history(store_file, model_name, limit) if store_file else None
    if local is None and before_zenml is not None:
        before_zenml()
    found, artifact_id = local if local is not None else (history(model_name, limit), None)
    if column is not None and found.runs and column not in found.column_names:
        raise ZenkubeError(
            f"No column '{column}' in the monitoring runs of '{model_name}'. Its columns: "
            f"{', '.join(found.column_names[:12])}{' …' if len(found.column_names) > 12 else ''}."
        )
    if not found.runs:
        return HistoryResult(found, "", "", column)
    path = write_html(found, out or zenkube_home() / "reports")
    if artifact_id is None:  # runs made before monitoring saved it, or not on a local store
        if local is not None and before_zenml is not None:
            before_zenml()
        artifact_id = save(found)
    publish_latest(found)
    return HistoryResult(found, path, artifact_id, column)


def command(model_name: str, limit: int, column: str | None, out: str | None, echo) -> None:
    """`monitor history`: read from the prepared local store when there is one (no ZenML
    import; the first command of a clone, or after a change, prepares it first), else ask
    ZenML; print what was found."""
    from app import session

    stack = (session.prepared() or session.ready(echo)).get("stack") or {}
    store_file = stack.get("store_file") if not stack.get("remote") else None
    render(run(model_name, limit, column, out, store_file, lambda: session.ready(echo)), echo)


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
