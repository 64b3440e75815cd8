"""The loop: monitor a batch, retrain on a labelled alert, gate, redeploy if promoted.

All of it is one pipeline (`pipelines/continuous_training.py`), so it runs the same way
on the local stack and as one KFP run on Kubeflow; this module runs it and reads back
what it decided.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app import drift_history, runner, serving
from app.config import load_run_config, model_name
from app.runner import TrainingResult
from core.paths import zenkube_home


@dataclass
class MonitoringResult:
    """What a monitoring run found and what followed from it."""

    run_name: str
    decision: Any
    drift: Any
    quality: Any
    report_path: str
    retraining: TrainingResult | None = None
    deployment: Any = None


def monitor(
    config: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    training_overrides: dict[str, Any] | None = None,
    redeploy: bool = True,
    echo: Callable[[str], None] = print,
) -> MonitoringResult:
    """Run the continuous-training pipeline on a batch; return what it found and did.

    The redeploy keeps the protocol the model is served with now; `redeploy=False`
    retrains and gates but leaves serving alone.
    """
    overrides = dict(overrides or {})
    name = model_name(overrides.get("model_name"), path=config)
    protocol = serving.served_protocol(name)
    if protocol and "protocol" not in overrides:
        overrides["protocol"] = protocol
    run_config = load_run_config(
        "continuous_training",
        config,
        {**overrides, **(training_overrides or {}), "deploy": redeploy},
    )
    run = runner.finished_run(runner.run_pipeline(run_config))
    drift_history.publish_run(name, run)  # the front's drift/quality gauges
    drift_artifact = run.steps["detect_drift"].outputs["drift_report"][0]
    result = MonitoringResult(
        run_name=run.name,
        decision=runner.output(run, "decide_action", "monitoring_decision"),
        drift=drift_artifact.load(),
        quality=runner.output(run, "check_quality", "quality_report"),
        report_path=f"{drift_artifact.uri}/report.html",
    )
    data = runner.output(run, "retraining_data", "retraining_set")
    if data.skipped:
        return result
    echo(f"zenkube: alert with labels: retrained on reference + batch ({len(data.frame)} rows)")
    result.retraining = TrainingResult(
        run_name=run.name,
        status=str(run.status),
        metrics=runner.output(run, "evaluate_model", "evaluation_report").metrics,
        decision=runner.output(run, "promote_if_better", "promotion_decision"),
        registered=runner.output(run, "register_model", "registered_model"),
    )
    deployment = runner.output(run, "deploy_if_promoted", "deployment")
    if not deployment.skipped:
        result.deployment = deployment
    return result


def schedule(
    cron: str, config: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None
) -> tuple[bool, str]:
    """Schedule the continuous-training pipeline with the stack's orchestrator.

    On Kubeflow this is a KFP recurring run (through ZenML's `Schedule`). The local
    orchestrator has no scheduler: nothing is scheduled and the message is a crontab line
    that runs the same loop. Returns (scheduled, what to tell the user).
    """
    from zenml.client import Client
    from zenml.config.schedule import Schedule

    from core.errors import ConfigError
    from core.paths import REPO_ROOT

    run_config = load_run_config("continuous_training", config, overrides)
    params = run_config.params
    if not params.batch:
        raise ConfigError(
            "Which batch should each scheduled run check? Pass --input URI (a path the "
            "pods can read, e.g. s3://bucket/batches/current.parquet, which your data job "
            "rewrites before each run)."
        )
    orchestrator = Client().active_stack.orchestrator
    if orchestrator.flavor in ("local", "local_docker"):
        return False, (
            f"The '{orchestrator.flavor}' orchestrator of the active stack cannot schedule "
            "runs; nothing was scheduled. Run the same loop from cron (`crontab -e`):\n"
            f"{cron} cd {REPO_ROOT} && {sys.executable} run.py monitor --model-name "
            f"{params.model_name} --input {params.batch} >> {zenkube_home()}/logs/cron.log 2>&1"
        )
    runner.run_pipeline(run_config, schedule=Schedule(cron_expression=cron))
    return True, (
        f"Scheduled the continuous-training pipeline of '{params.model_name}' on "
        f"{params.batch} with cron '{cron}' ({orchestrator.flavor}: a recurring run, "
        "listed in the Kubeflow Pipelines UI under the pipeline's experiment)."
    )


def batch_file(model_name: str, simulate_drift: bool) -> tuple[str, list[str]]:
    """Held-out rows of the champion (its test split) as a CSV, optionally with 2 shifted columns."""
    from integrations import champion
    from steps.monitoring.batch import champion_artifacts
    from steps.monitoring.simulate import shift_columns

    reference, _ = champion_artifacts(model_name)
    held_out = champion.zenml_version(model_name).get_artifact("test_set").load()
    folder = zenkube_home() / "batches"
    folder.mkdir(parents=True, exist_ok=True)
    if simulate_drift:
        frame, shifted = shift_columns(held_out, reference)
        path = folder / "simulated-drift.csv"
    else:
        frame, shifted = held_out.frame, []
        path = folder / "held-out.csv"
    frame.to_csv(path, index=False)
    return str(path), shifted


def traffic_batch_file(model_name: str, since: str, min_rows: int) -> tuple[str, str]:
    """The traffic the model served in the last `since`, as a batch file for `monitor`.

    Returns (path, what it holds). Labelled rows (feedback joined by request id) make a
    labelled batch once there are `min_rows` of them; otherwise every served row, unlabelled.
    """
    from core.errors import DataValidationError
    from integrations.traffic import TrafficError, parse_duration, stack_folder, traffic_batch
    from steps.monitoring.batch import champion_artifacts

    reference, _ = champion_artifacts(model_name)
    columns = [c for c in reference.frame.columns if c != reference.target]
    folder = stack_folder(model_name)
    try:
        batch = traffic_batch(folder, columns, reference.target, parse_duration(since), min_rows)
    except TrafficError as exc:
        raise DataValidationError(f"Cannot build a batch from served traffic: {exc}") from None
    out = zenkube_home() / "batches"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "traffic.parquet"
    batch.frame.to_parquet(path, index=False)
    if batch.labelled_batch:
        what = (
            f"{len(batch.frame)} labelled rows of {batch.rows} served in the last {since} "
            f"(labels from feedback): drift, quality and, on an alert, retraining"
        )
    else:
        what = (
            f"{batch.rows} rows served in the last {since}, {batch.labelled} labelled "
            f"(fewer than --min-rows {min_rows}): drift only"
        )
    return str(path), what
