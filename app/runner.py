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


def output(run, step, name: str | None = None):
    """Load the artifact that `step` (the step object) produced in `run`.

    The step and output names come from the step itself (its name and its `Annotated`
    output), so a renamed step or output cannot leave a stale string here; `name` picks
    one output of a step that has several.
    """
    return output_artifact(run, step, name).load()


def output_artifact(run, step, name: str | None = None):
    """The stored artifact behind `output(run, step, name)` (its uri, without loading)."""
    outputs = list(step.entrypoint_definition.outputs)
    if name is None:
        if len(outputs) != 1:
            raise ValueError(f"step {step.name} has outputs {outputs}: name one")
        name = outputs[0]
    elif name not in outputs:
        raise ValueError(f"step {step.name} has no output {name!r} (it has {outputs})")
    return run.steps[step.name].outputs[name][0]


def saved_output(run, step, name: str):
    """The artifact `step` saved under `name` in `run` while it ran (not a declared output:
    one it writes only when it has something to write, e.g. the retraining's `model`)."""
    outputs = run.steps[step.name].outputs.get(name)
    if not outputs:
        raise ValueError(f"step {step.name} of run {run.name} saved no {name!r}")
    return outputs[0]


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


def training_result(run) -> TrainingResult:
    """What the training steps of `run` (a training or continuous-training run) decided."""
    from steps.registry import promote_if_better, register_model
    from steps.training import evaluate_model

    return TrainingResult(
        run_name=run.name,
        status=str(run.status),
        metrics=output(run, evaluate_model).metrics,
        decision=output(run, promote_if_better),
        registered=output(run, register_model),
    )


def train(config: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None):
    """Run the training pipeline; return what it decided.

    The gate's promotion takes the model's lock itself (integrations/mlflow/champion.py), so a
    deploy or rollback of the same model waits for it rather than the whole training."""
    run_config = load_run_config("training", config, overrides)
    preflight_training(run_config.params)
    return training_result(finished_run(run_pipeline(run_config)))


def deploy(
    config: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    echo=print,
):
    """Run the deployment pipeline under the model's lock; return its `DeploymentInfo`."""
    from core.champion import locks
    from steps.deployment import deploy_champion

    run_config = load_run_config("deployment", config, overrides)
    with locks.model_lock(run_config.params.model_name, "deploy", echo):
        run = finished_run(run_pipeline(run_config))
    return output(run, deploy_champion)


def train_command(config, overrides: dict[str, Any], echo) -> TrainingResult:
    """`train`: run the training pipeline and print what it decided."""
    from app import render

    echo("zenkube: running the training pipeline...")
    result = train(config, overrides)
    render.training(result, echo)
    return result


def deploy_command(config, model_name: str | None, protocol: str | None, echo):
    """`deploy`: serve the champion (its protocol chosen by core/protocol/'s rule)."""
    from app import render
    from app.config import model_name as resolve_name

    name = resolve_name(model_name, "deployment", config)
    said = f"{protocol} protocol" if protocol else "the protocol it is served with, if it is"
    echo(f"zenkube: deploying the champion of '{name}' ({said})...")
    info = deploy(config, {"protocol": protocol, "model_name": name}, echo)
    render.deployment(info, echo)
    return info


def dry_run_command(config, model_name, protocol, stack_spec: str, model_uri, echo) -> None:
    """`deploy --dry-run`: print the objects `deploy` would apply on the cluster stack
    `stack_spec` (kubeflow, kubeflow-kserve or a path), as YAML (app/dry_run.py)."""
    from app import dry_run
    from app.config import model_name as resolve_name
    from core.protocol import DEFAULT_PROTOCOL

    name = resolve_name(model_name, "deployment", config)
    bodies = dry_run.manifests(stack_spec, name, model_uri, protocol=protocol or DEFAULT_PROTOCOL)
    echo(dry_run.render(bodies), nl=False)
