"""Run a pipeline from its config and read back what it decided."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

import yaml

from app.config import RunConfig, load_run_config
from core.errors import ConfigError, ZenkubeError
from core.specs import BUNDLED_DATASETS, TrainingParams


class StepFailed(ZenkubeError):
    """A step failed with an error that is not one of zenkube's own (message kept)."""


def run_pipeline(config: RunConfig, schedule=None):
    """Run the configured pipeline (or schedule it); raise the step's own error on failure."""
    options = config.zenml_options()
    model = options.pop("model", None)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(options, f)
        config_file = f.name
    pipeline_obj = config.entry.load()
    try:
        configured = pipeline_obj.with_options(config_path=config_file)
        if model is not None:
            configured = configured.with_options(model=model)
        if schedule is not None:
            configured = configured.with_options(schedule=schedule)
        try:
            return configured(**config.kwargs())
        except RuntimeError as exc:
            raise step_error(pipeline_obj.name) or exc from exc
    finally:
        os.unlink(config_file)


def step_error(pipeline_name: str) -> Exception | None:
    """Rebuild the zenkube error a failed step raised (ZenML only says "step X failed")."""
    from zenml.client import Client
    from zenml.utils import source_utils

    try:
        run = Client().get_pipeline(pipeline_name).last_run
    except (KeyError, RuntimeError):
        return None
    for step_run in run.steps.values():
        info = step_run.exception_info
        if step_run.status != "failed" or info is None or not info.source:
            continue
        try:
            error_class = source_utils.load(info.source)
        except Exception:
            continue
        if isinstance(error_class, type) and issubclass(error_class, ZenkubeError):
            return error_class(info.message or f"step {step_run.name} failed")
        return StepFailed(f"Step '{step_run.name}' failed: {info.message}")
    return None


def finished_run(run):
    """The run as stored, after checking it completed."""
    from zenml.client import Client

    run = Client().get_pipeline_run(run.id)
    if run.status != "completed":
        raise ZenkubeError(f"Run {run.name} ended as {run.status}.")
    return run


def output(run, step: str, name: str):
    """Load the artifact `name` that `step` of `run` produced."""
    return run.steps[step].outputs[name][0].load()


@dataclass
class TrainingResult:
    """What a training run decided, read back from its artifacts."""

    run_name: str
    status: str
    metrics: dict[str, float]
    decision: Any
    registered: Any


def preflight_data(spec) -> None:
    """Catch a missing file or target before a pipeline run starts (clearer, and faster)."""
    from zenml.io import fileio

    if spec.source in BUNDLED_DATASETS:
        return
    if not fileio.exists(spec.source):
        raise ConfigError(
            f"Data file not found: {spec.source}. Pass an existing CSV/Parquet path or URI, or a "
            f"bundled dataset name ({', '.join(BUNDLED_DATASETS)})."
        )
    if not spec.target:
        raise ConfigError(
            f"Which column of {spec.source} is the label? Pass --target COLUMN or set data.target."
        )


def preflight_training(params: TrainingParams) -> str:
    """Refuse a config that cannot work for the data's task before the run; return the task."""
    from steps.data.load import resolve_task
    from steps.training.train import check_config_for_task

    preflight_data(params.data)
    task = resolve_task(params.data)
    check_config_for_task(params.trainer, params.gate, task)
    return task


def train(config: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None):
    """Run the training pipeline; return what it decided."""
    run_config = load_run_config("training", config, overrides)
    preflight_training(run_config.params)
    run = finished_run(run_pipeline(run_config))
    report = output(run, "evaluate_model", "evaluation_report")
    return TrainingResult(
        run_name=run.name,
        status=str(run.status),
        metrics=report.metrics,
        decision=output(run, "promote_if_better", "promotion_decision"),
        registered=output(run, "register_model", "registered_model"),
    )


def deploy(config: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None):
    """Run the deployment pipeline; return its `DeploymentInfo`."""
    run = finished_run(run_pipeline(load_run_config("deployment", config, overrides)))
    return output(run, "deploy_champion", "deployment")
