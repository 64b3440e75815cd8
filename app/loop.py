"""The loop that closes on the local stack: monitor, retrain on an alert, redeploy if promoted.

On Kubeflow the same three pipelines run; docs/kubeflow.md says how the trigger is
scheduled there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app import runner, serving
from app.config import load_run_config
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
    """Run monitoring; on an alert with labels retrain on reference + batch, redeploy if promoted."""
    run_config = load_run_config("monitoring", config, overrides)
    params = run_config.params
    run = runner.finished_run(runner.run_pipeline(run_config))
    drift_artifact = run.steps["detect_drift"].outputs["drift_report"][0]
    result = MonitoringResult(
        run_name=run.name,
        decision=runner.output(run, "decide_action", "monitoring_decision"),
        drift=drift_artifact.load(),
        quality=runner.output(run, "check_quality", "quality_report"),
        report_path=f"{drift_artifact.uri}/report.html",
    )
    if not (result.decision.retrain and params.retrain):
        return result
    reference = runner.output(run, "load_reference", "reference_set")
    batch = runner.output(run, "load_batch", "current_batch")
    combined = retraining_data_path(reference, batch, run.name)
    echo(f"zenkube: alert with labels: retraining on reference + batch ({combined})")
    result.retraining = runner.train(
        None,
        {
            "model_name": params.model_name,
            "data.source": combined,
            "data.target": reference.target,
            "data.task": reference.task,
            **(training_overrides or {}),
        },
    )
    if result.retraining.decision.promoted and redeploy:
        echo("zenkube: the retrained model was promoted: redeploying")
        protocol = serving.served_protocol(params.model_name)
        result.deployment = runner.deploy(
            None, {"model_name": params.model_name, "protocol": protocol}
        )
    return result


def retraining_data_path(reference, batch, run_name: str) -> str:
    """Reference rows + the new labelled rows, written where the training pipeline can read."""
    import pandas as pd
    from zenml.client import Client
    from zenml.io import fileio

    frame = pd.concat([reference.frame, batch.frame[reference.frame.columns]], ignore_index=True)
    folder = f"{Client().active_stack.artifact_store.path}/zenkube-retraining"
    fileio.makedirs(folder)
    path = f"{folder}/{run_name}.parquet"
    with fileio.open(path, "wb") as f:
        frame.to_parquet(f, index=False)
    return path


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
