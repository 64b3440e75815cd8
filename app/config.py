"""Run configs: the pipeline registry, parameters once, stack settings on top.

`configs/<pipeline>.yaml` holds a pipeline's parameters (checked by zenkube) and the ZenML
options every stack shares; `configs/<stack kind>/<pipeline>.yaml`, when it exists, holds
only that stack's settings (docker image, resources) and is merged on top.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from core.errors import ConfigError
from core.paths import REPO_ROOT
from core.specs import (
    BatchInferenceParams,
    ContinuousTrainingParams,
    DeploymentParams,
    MonitoringParams,
    ReleaseCheckParams,
    ServingSpec,
    TrainingParams,
    check_model_name,
)

CONFIGS = REPO_ROOT / "configs"
STACK_KINDS = ("local", "kubeflow")


@dataclass(frozen=True)
class PipelineEntry:
    """One pipeline zenkube runs: where it lives and what its parameters are."""

    name: str
    module: str
    attr: str
    params: type[BaseModel]
    # Runs under the ZenML Model `model_name`: a new version each run (training). The
    # continuous-training pipeline makes a version only when it retrains (its retraining
    # step), so a run with nothing to retrain leaves no empty version.
    creates_model_version: bool = False
    # Parameters composed from these pipelines' configs (the first takes `--config`).
    composed_of: tuple[str, ...] = ()
    # Parameters written once in another pipeline's config: {parameter: pipeline}, taken
    # from there when this pipeline's config leaves them out.
    shared_from: tuple[tuple[str, str], ...] = ()

    def load(self):
        return getattr(importlib.import_module(self.module), self.attr)


PIPELINES: dict[str, PipelineEntry] = {
    entry.name: entry
    for entry in (
        PipelineEntry(
            "training",
            "pipelines.training",
            "training_pipeline",
            TrainingParams,
            True,
            shared_from=(("release", "deployment"),),
        ),
        PipelineEntry(
            "deployment", "pipelines.deployment", "deployment_pipeline", DeploymentParams
        ),
        PipelineEntry(
            "monitoring", "pipelines.monitoring", "monitoring_pipeline", MonitoringParams
        ),
        PipelineEntry(
            "continuous_training",
            "pipelines.continuous_training",
            "continuous_training_pipeline",
            ContinuousTrainingParams,
            composed_of=("monitoring", "training", "deployment"),
        ),
        PipelineEntry(
            "batch_inference",
            "pipelines.batch_inference",
            "batch_inference_pipeline",
            BatchInferenceParams,
            shared_from=(("thresholds", "monitoring"),),
        ),
        PipelineEntry(
            "release_check",
            "pipelines.release_check",
            "release_check_pipeline",
            ReleaseCheckParams,
        ),
    )
}


@dataclass
class RunConfig:
    """A pipeline's checked parameters and the ZenML options (settings, caching, model)."""

    entry: PipelineEntry
    params: BaseModel
    options: dict[str, Any]

    def kwargs(self) -> dict[str, Any]:
        return pipeline_kwargs(self.params)

    def zenml_options(self) -> dict[str, Any]:
        """Options for `pipeline.with_options`, with the ZenML Model when the pipeline makes one."""
        from zenml import Model

        options = dict(self.options)
        if self.entry.creates_model_version and "model" not in options:
            options["model"] = Model(name=self.params.model_name)
        return options


def pipeline_kwargs(params: BaseModel) -> dict[str, Any]:
    """A pipeline's call arguments: one per top-level parameter (specs stay typed), and
    the serving parameters (written at the top of configs/deployment.yaml) as one
    `serving` ServingSpec."""
    kwargs = {name: getattr(params, name) for name in type(params).model_fields}
    if isinstance(params, ServingSpec):
        for name in ServingSpec.model_fields:
            del kwargs[name]
        kwargs["serving"] = params.serving()
    return kwargs


def active_stack_kind() -> str:
    """`kubeflow` when the active stack's orchestrator is Kubeflow, else `local`."""
    from zenml.client import Client

    orchestrator = Client().active_stack_model.components.get("orchestrator")
    return "kubeflow" if orchestrator and "kubeflow" in orchestrator[0].flavor_name else "local"


def load_run_config(
    name: str,
    path: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    stack_kind: str | None = None,
) -> RunConfig:
    """The config of pipeline `name`: `path` (default configs/<name>.yaml) + stack settings."""
    entry = PIPELINES[name]
    kind = stack_kind or active_stack_kind()
    if entry.composed_of:
        return _composed(entry, path, overrides, kind)
    base = _read_yaml(Path(path) if path else CONFIGS / f"{name}.yaml")
    stack_file = CONFIGS / kind / f"{name}.yaml"
    raw = _merge(_settings_only(stack_file), base) if stack_file.exists() else base
    from stacks.env import expand_vars

    raw = expand_vars(raw)
    params_raw = raw.pop("parameters", {}) or {}
    try:
        params = entry.params.model_validate(params_raw)
    except ValidationError as exc:
        raise ConfigError(
            f"{path or CONFIGS / f'{name}.yaml'}: invalid parameters: {_explain(exc)}"
        ) from exc
    for key, source in entry.shared_from:
        if getattr(params, key) is None:
            setattr(params, key, getattr(load_run_config(source, stack_kind=kind).params, key))
    return RunConfig(entry, apply_overrides(params, overrides or {}), raw)


def _composed(entry: PipelineEntry, path, overrides, kind: str) -> RunConfig:
    """Parameters from the parts' configs (first part: `path`); this pipeline's stack settings."""
    data: dict[str, Any] = {}
    for i, part in enumerate(entry.composed_of):
        params = load_run_config(part, path if i == 0 else None, stack_kind="local").params
        for key, value in params.model_dump().items():
            if key in entry.params.model_fields:
                data.setdefault(key, value)
    stack_file = CONFIGS / kind / f"{entry.name}.yaml"
    options = {"enable_cache": False}
    if stack_file.exists():
        from stacks.env import expand_vars

        options = _merge(options, expand_vars(_settings_only(stack_file)))
    params = entry.params.model_validate(data)
    return RunConfig(entry, apply_overrides(params, overrides or {}), options)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"Config file not found: {path}. Use one under {CONFIGS}.")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a YAML mapping with a `parameters:` block.")
    return raw


def _settings_only(path: Path) -> dict[str, Any]:
    raw = _read_yaml(path)
    if "parameters" in raw:
        raise ConfigError(
            f"{path} sets `parameters:`, but per-stack files hold only settings (docker, "
            f"resources). Move the parameters to {CONFIGS / path.name}, or pass your own "
            "config with --config."
        )
    return raw


def _merge(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` wins; nested mappings are merged key by key."""
    merged = dict(under)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key `parameters.{where}` (check the spelling)")
        elif not where:  # a rule across keys: its message names them
            parts.append(str(err["msg"]).removeprefix("Value error, "))
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


def model_name(given: str | None, pipeline: str = "monitoring", path=None) -> str:
    """`given`, else the model name the pipeline's config uses (else the default)."""
    if given is not None:
        try:
            return check_model_name(given)
        except ValueError as exc:
            raise ConfigError(f"--model-name: {exc}.") from None
    # Parameters are the same on every stack: no need to ask ZenML which one is active.
    return load_run_config(pipeline, path, stack_kind="local").params.model_name
