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
from steps.specs import DeploymentParams, TrainingParams

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "configs"


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

    options = dict(zenml_options)
    if model_name and "model" not in options:
        options["model"] = {"name": model_name}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(options, f)
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


def train(config: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None):
    """Run the training pipeline; raise the step's own error when a step fails."""
    from pipelines.training import training_pipeline

    params, options = read_config(config or CONFIGS / "local" / "training.yaml", TrainingParams)
    params = apply_overrides(params, overrides or {})
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

    params, options = read_config(config or CONFIGS / "local" / "deployment.yaml", DeploymentParams)
    params = apply_overrides(params, overrides or {})
    run = run_pipeline(deployment_pipeline, params, options, None)
    run = Client().get_pipeline_run(run.id)
    return run.steps["deploy_champion"].outputs["deployment"][0].load()


def served_services(model_name: str | None = None) -> list:
    """The active deployer's services (optionally for one model), newest first."""
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
