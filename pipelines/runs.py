"""Run a pipeline from a config file and read back what it decided (used by run.py and tests)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from steps.errors import ConfigError, ZenkubeError
from steps.specs import DeploymentParams, MonitoringParams, TrainingParams

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "configs"


def default_config(name: str) -> Path:
    """configs/<stack kind>/<name>.yaml for the active stack (kubeflow or local)."""
    from zenml.client import Client

    orchestrator = Client().active_stack_model.components.get("orchestrator")
    kind = "kubeflow" if orchestrator and orchestrator[0].flavor_name == "kubeflow" else "local"
    return CONFIGS / kind / f"{name}.yaml"


def read_config(path: str | os.PathLike, schema: type[BaseModel]) -> tuple[BaseModel, dict]:
    """Split a ZenML run config into checked `parameters` and the rest (for ZenML)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"Config file not found: {path}. Use one under {CONFIGS}.")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a YAML mapping with a `parameters:` block.")
    from stacks.manage import expand_vars

    raw = expand_vars(raw)
    params_raw = raw.pop("parameters", {}) or {}
    try:
        params = schema.model_validate(params_raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid parameters: {_explain(exc)}") from exc
    return params, raw


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key `parameters.{where}` (check the spelling)")
        else:
            parts.append(f"`parameters.{where}`: {err['msg']}")
    return "; ".join(parts)


def apply_overrides(params: BaseModel, overrides: dict[str, Any]) -> BaseModel:
    """Dotted-key overrides from CLI flags (e.g. {"data.source": "x.csv"}); None is skipped."""
    data = params.model_dump()
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    try:
        return type(params).model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid option: {_explain(exc)}") from exc


def run_pipeline(pipeline_obj, params: BaseModel, zenml_options: dict, model_name: str | None):
    """Run with the non-parameter part of the config, under the ZenML Model `model_name`."""
    from zenml import Model

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(zenml_options, f)
        config_file = f.name
    try:
        configured = pipeline_obj.with_options(config_path=config_file)
        if model_name and "model" not in zenml_options:
            configured = configured.with_options(model=Model(name=model_name))
        kwargs = {name: getattr(params, name) for name in type(params).model_fields}
        try:
            return configured(**kwargs)
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


class StepFailed(ZenkubeError):
    """A step failed with an error that is not one of zenkube's own (message kept)."""


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

    from steps.specs import BUNDLED_DATASETS

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
    """Run the training pipeline; raise the step's own error when a step fails."""
    from pipelines.training import training_pipeline

    params, options = read_config(config or default_config("training"), TrainingParams)
    params = apply_overrides(params, overrides or {})
    preflight_training(params)
    run = run_pipeline(training_pipeline, params, options, params.model_name)
    return training_result(run)


def training_result(run) -> TrainingResult:
    from zenml.client import Client

    run = Client().get_pipeline_run(run.id)
    if run.status != "completed":
        raise ZenkubeError(f"Training run {run.name} ended as {run.status}.")
    steps = run.steps
    report = steps["evaluate_model"].outputs["evaluation_report"][0].load()
    return TrainingResult(
        run_name=run.name,
        status=str(run.status),
        metrics=report.metrics,
        decision=steps["promote_if_better"].outputs["promotion_decision"][0].load(),
        registered=steps["register_model"].outputs["registered_model"][0].load(),
    )


def deploy(config: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None):
    """Run the deployment pipeline; return its `DeploymentInfo`."""
    from zenml.client import Client

    from pipelines.deployment import deployment_pipeline

    params, options = read_config(config or default_config("deployment"), DeploymentParams)
    params = apply_overrides(params, overrides or {})
    run = run_pipeline(deployment_pipeline, params, options, None)
    run = Client().get_pipeline_run(run.id)
    return run.steps["deploy_champion"].outputs["deployment"][0].load()


def served_services(model_name: str | None = None) -> tuple[Any, list]:
    """(The active model deployer, its services for `model_name` or all), newest first."""
    from zenml.client import Client

    deployer = Client().active_stack.model_deployer
    if deployer is None:
        raise ConfigError(
            "The active stack has no model deployer; run `python run.py stack up local`."
        )
    if hasattr(deployer, "services_for"):
        return deployer, deployer.services_for(model_name)
    kwargs = {"model_name": model_name} if model_name else {}
    return deployer, deployer.find_model_server(**kwargs)


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
    echo=print,
) -> MonitoringResult:
    """Run monitoring; on an alert with labels retrain on reference + batch, redeploy if promoted.

    This is the controller that closes the loop on the local stack. On Kubeflow the same
    three pipelines run; see docs/kubeflow.md for how the trigger is scheduled there.
    """
    from zenml.client import Client

    from pipelines.monitoring import monitoring_pipeline

    params, options = read_config(config or default_config("monitoring"), MonitoringParams)
    params = apply_overrides(params, overrides or {})
    run = run_pipeline(monitoring_pipeline, params, options, None)
    run = Client().get_pipeline_run(run.id)
    drift_artifact = run.steps["detect_drift"].outputs["drift_report"][0]
    result = MonitoringResult(
        run_name=run.name,
        decision=run.steps["decide_action"].outputs["monitoring_decision"][0].load(),
        drift=drift_artifact.load(),
        quality=run.steps["check_quality"].outputs["quality_report"][0].load(),
        report_path=f"{drift_artifact.uri}/report.html",
    )
    if not (result.decision.retrain and params.retrain):
        return result
    reference = run.steps["load_reference"].outputs["reference_set"][0].load()
    batch = run.steps["load_batch"].outputs["current_batch"][0].load()
    combined = retraining_data_path(reference, batch, run.name)
    echo(f"zenkube: alert with labels: retraining on reference + batch ({combined})")
    result.retraining = train(
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
        result.deployment = deploy(None, {"model_name": params.model_name, **current_protocol()})
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


def current_protocol() -> dict[str, str]:
    """Redeploy with the protocol currently served (default: seldon)."""
    try:
        _, services = served_services(None)
    except ConfigError:
        return {}
    return (
        {"protocol": services[0].config.protocol}
        if services and hasattr(services[0].config, "protocol")
        else {}
    )


def example_rows(model_name: str, rows: int = 3):
    """A few held-out feature rows of the champion (for a smoke prediction and a curl)."""
    from steps.monitoring.batch import champion_artifacts

    reference, _ = champion_artifacts(model_name)
    return reference.features.head(rows)


def batch_file(model_name: str, simulate_drift: bool) -> tuple[str, list[str]]:
    """Held-out rows of the champion (its test split) as a CSV, optionally with 2 shifted columns."""
    from zenml.client import Client

    from stacks.manage import zenkube_home
    from steps.monitoring.batch import champion_artifacts
    from steps.monitoring.simulate import shift_columns

    reference, _ = champion_artifacts(model_name)
    held_out = Client().get_model_version(model_name, "production").get_artifact("test_set").load()
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


PIPELINES = {
    "training": ("pipelines.training", "training_pipeline", TrainingParams),
    "deployment": ("pipelines.deployment", "deployment_pipeline", DeploymentParams),
    "monitoring": ("pipelines.monitoring", "monitoring_pipeline", MonitoringParams),
}


def compile_for_kubeflow(
    out_dir: str | os.PathLike, stack: str = "kubeflow", echo=print
) -> dict[str, Path]:
    """Write KFP v2 IR YAML for the three pipelines, compiled on the Kubeflow stack."""
    import importlib

    from zenml import Model

    from integrations.kubeflow.compile import active_stack, compile_pipeline
    from stacks.manage import load_spec, stack_up

    spec = load_spec(stack)
    changes = stack_up(stack, activate=False, placeholder_secrets=True)
    for name in changes.placeholder_secrets:
        echo(
            f"zenkube: created the ZenML secret '{name}' with placeholder values so the stack "
            f"can be compiled; set real values before running on a cluster "
            f"(`zenml secret update {name} ...`)."
        )
    written = {}
    with active_stack(spec["stack_name"]):
        for name, (module, attr, schema) in PIPELINES.items():
            pipeline_obj = getattr(importlib.import_module(module), attr)
            params, options = read_config(CONFIGS / "kubeflow" / f"{name}.yaml", schema)
            if name == "training":
                options["model"] = Model(name=params.model_name)
            kwargs = {field: getattr(params, field) for field in type(params).model_fields}
            out = Path(out_dir) / f"{name}.yaml"
            echo(f"zenkube: compiling the {name} pipeline → {out}")
            written[name] = compile_pipeline(pipeline_obj, kwargs, options, out)
    return written
