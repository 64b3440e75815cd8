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

from app import drift_history, render, runner
from app.config import load_run_config
from app.config import model_name as model_name_for
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
    outcome: Any = None  # steps.skip.RunOutcome: what the run amounted to (its tag)
    no_retraining: str = ""  # why the run trained nothing (the retraining step's reason)


def monitor(
    config: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    training_overrides: dict[str, Any] | None = None,
    redeploy: bool = True,
    echo: Callable[[str], None] = print,
) -> MonitoringResult:
    """Run the continuous-training pipeline on a batch; return what it found and did.

    The redeploy keeps the protocol the model is served with now (the deploy step applies
    core/protocol/'s rule); `redeploy=False` retrains and gates but leaves serving alone.
    """
    from steps.deployment import deploy_if_promoted
    from steps.monitoring import check_quality, decide_action, detect_drift, retrain_if_needed
    from steps.outcome import record_outcome

    run_config = load_run_config(
        "continuous_training",
        config,
        {**(overrides or {}), **(training_overrides or {}), "deploy": redeploy},
    )
    run = runner.finished_run(runner.run_pipeline(run_config))
    drift_history.after_run(run_config.params.model_name, run)  # history artifact, gauges
    drift_artifact = runner.output_artifact(run, detect_drift)
    result = MonitoringResult(
        run_name=run.name,
        decision=runner.output(run, decide_action),
        drift=drift_artifact.load(),
        quality=runner.output(run, check_quality),
        report_path=f"{drift_artifact.uri}/report.html",
        outcome=runner.output(run, record_outcome),
    )
    result.retraining = retraining_result(run)
    if result.retraining is None:
        result.no_retraining = runner.output(run, retrain_if_needed).reason
        return result
    rows = {
        part: runner.saved_output(run, retrain_if_needed, part).run_metadata.get("rows", 0)
        for part in ("train_set", "valid_set", "test_set")
    }
    echo(
        "zenkube: alert with labels: retrained on every labelled row kept so far "
        f"({rows['train_set']} train + {rows['valid_set']} validation rows); the gate "
        f"compared it with the champion on {rows['test_set']} reserved evaluation rows "
        "neither was trained on"
    )
    deployment = runner.output(run, deploy_if_promoted)
    if not deployment.skipped:
        result.deployment = deployment
    return result


def retraining_result(run) -> TrainingResult | None:
    """What the retraining of a continuous-training run decided; None when it trained
    nothing (it then saved no model, evaluation or registered version to read)."""
    from steps.monitoring import retrain_if_needed

    decision = runner.output(run, retrain_if_needed)
    if not decision.candidate_version:
        return None
    return TrainingResult(
        run_name=run.name,
        status=str(run.status),
        metrics=runner.saved_output(run, retrain_if_needed, "evaluation_report").load().metrics,
        decision=decision,
        registered=runner.saved_output(run, retrain_if_needed, "registered_model").load(),
    )


def monitor_command(
    config: str | os.PathLike | None,
    model_name: str | None,
    input_path: str | None,
    simulate_drift: bool,
    traffic: tuple[str, int] | None,
    echo: Callable[..., None] = print,
    labelled: tuple[str, str] | None = None,
) -> MonitoringResult:
    """`monitor`: pick the batch (a file, the champion's held-out rows, served traffic, or
    the scored rows of `predict --output` with labels that arrived later: `labelled` is
    (predictions, labels)), say which, and run the loop on it. The model name is resolved
    once, here."""
    if labelled is not None:
        from app import batch

        input_path, model_name, what = batch.labelled_batch(*labelled, model_name)
        echo(f"zenkube: monitoring {what}")
    name = model_name_for(model_name, path=config)
    if traffic is not None:
        since, min_rows = traffic
        input_path, what = traffic_batch_file(name, since, min_rows)
        echo(f"zenkube: monitoring served traffic of '{name}': {what}")
    elif input_path is None:
        input_path, shifted = batch_file(name, simulate_drift)
        listed = ", ".join(shifted[:4]) + (
            f" and {len(shifted) - 4} more" if len(shifted) > 4 else ""
        )
        what = (
            f"held-out rows with {listed} shifted"
            if shifted
            else "the oldest held-out rows still reserved (at first, the first champion's "
            "test rows; never trained on; already kept, so they add no new labelled rows)"
        )
        echo(f"zenkube: monitoring {what} ({input_path})...")
    else:
        echo(f"zenkube: monitoring {input_path}...")
    # The gate's promotion and the redeploy take the model's lock themselves.
    result = monitor(config, {"batch": input_path, "model_name": name}, echo=echo)
    render.monitoring(result, echo)
    return result


def whole_loop(echo: Callable[..., None]) -> MonitoringResult:
    """With no command: train (and promote), deploy, monitor the held-out rows."""
    trained = runner.train_command(None, {}, echo)
    name = trained.registered.name
    runner.deploy_command(None, name, None, echo)
    return monitor_command(None, name, None, False, None, echo)


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
    """The oldest held-out rows still reserved (the first champion's test split until the
    evaluation cap retires it; no model trains on reserved rows) as a CSV, optionally with
    some columns shifted."""
    from integrations.mlflow import champion
    from steps.data import pool
    from steps.monitoring.simulate import shift_columns

    version = champion.require_champion(model_name, "monitor").zenml_version  # read once
    reference = version.get_artifact("train_set").load()
    kept = pool.latest_pool(model_name)
    if pool.usable(kept, reference):
        held_out = pool.first_held_out(kept)
    else:  # the loop kept no rows of this champion's data yet: its test split is that
        held_out = version.get_artifact("test_set").load()
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
    from core.traffic.rows import TrafficError, parse_duration, stack_folder, traffic_batch
    from integrations.mlflow import champion

    version = champion.require_champion(model_name, "monitor").zenml_version
    reference = version.get_artifact("train_set").load()
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
    if batch.skipped:  # e.g. a file copied in by hand: named, not fatal
        what += f"; skipped {len(batch.skipped)} unreadable file(s): {', '.join(batch.skipped[:3])}"
    return str(path), what
