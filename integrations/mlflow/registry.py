"""The one place that talks to MLflow's tracking and registry (MLflow 3 + ZenML adapter).

Why this file exists: under MLflow 3, ZenML's registry registers `runs:/…/model`,
which does not load; we register the LoggedModel `models:/m-…` URI instead. Models are
logged with cloudpickle (not skops) so that Seldon's MLflow 2 server can read them too.
"""

from __future__ import annotations

import os
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from pydantic import BaseModel

from core.errors import ConfigError
from core.schema import CATEGORICAL, DATETIME, NUMERIC, InputSchema, SchemaColumn
from integrations.mlflow.tags import CHAMPION_ALIAS

SCHEMA_KEY = "zenkube_input_schema"
# Model version tags that explain the champion's history.
REASON_TAG = "zenkube.promotion_reason"
SCHEMA_CHANGE_TAG = "zenkube.schema_change_allowed"
# The version's latest monitoring run (its figures live there, not on the training run).
MONITORING_RUN_TAG = "zenkube.last_monitoring_run"
# MLflow signature types -> zenkube column kinds (for versions without a recorded schema).
_SIGNATURE_KINDS = {
    "double": NUMERIC,
    "float": NUMERIC,
    "long": NUMERIC,
    "integer": NUMERIC,
    "datetime": DATETIME,
}
# MLflow refuses to unpickle models unless this is set; servers need it too.
PICKLE_ENV = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}


class RegisteredModel(BaseModel):
    """A model version in the MLflow registry.

    Attributes:
        name: registered model name.
        version: registry version (a string, as MLflow returns it).
        model_uri: the LoggedModel URI (`models:/m-…`) the version was registered from.
        run_id: MLflow run that logged it.
        artifact_location: where the model's files live (local path or bucket URI).
        input_schema: the columns it takes and what it predicts (None for a version
            registered before zenkube recorded schemas).
    """

    name: str
    version: str
    model_uri: str
    run_id: str = ""
    artifact_location: str = ""
    input_schema: InputSchema | None = None

    @property
    def registry_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def configure_from_stack() -> str:
    """Point MLflow at the active stack's tracker; return the tracking URI.

    Raises ConfigError when the stack has no MLflow experiment tracker.
    """
    from zenml.client import Client

    os.environ.update(PICKLE_ENV)
    stack = Client().active_stack
    tracker = stack.experiment_tracker
    if tracker is None or tracker.flavor != "mlflow":
        raise ConfigError(
            f"The active stack '{stack.name}' has no MLflow experiment tracker. Register the "
            "zenkube stack with `python run.py stack up local` (or add an mlflow experiment "
            "tracker and model registry to your stack)."
        )
    if stack.model_registry is None:
        raise ConfigError(
            f"The active stack '{stack.name}' has no model registry. Add one with "
            "`zenml model-registry register mlflow_registry --flavor=mlflow` and "
            "`zenml stack update -r mlflow_registry`, or run `python run.py stack up local`."
        )
    tracker.configure_mlflow()
    mlflow.set_registry_uri(tracker.get_tracking_uri())
    return tracker.get_tracking_uri()


def log_and_register(
    model: Any,
    features: pd.DataFrame,
    name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str] | None = None,
    input_schema: InputSchema | None = None,
    code_by_value: tuple = (),
) -> RegisteredModel:
    """Log params, metrics and the model to the active MLflow run and register a version.

    The input schema goes into the model's MLmodel metadata, so it travels with the
    model files to every server and registry that holds them. Modules in
    `code_by_value` are pickled into the model (the servers do not have zenkube).
    """
    import cloudpickle

    for module in code_by_value:
        cloudpickle.register_pickle_by_value(module)
    example = features.head(5)
    signature = infer_signature(example, model.predict(example))
    active = mlflow.active_run() or mlflow.start_run()
    mlflow.log_params(_flatten(params))
    mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=example,
        serialization_format="cloudpickle",
        # Inferring requirements re-imports the model in a subprocess (~10 s); we know them.
        pip_requirements=_model_requirements(),
        tags=tags,
        metadata={SCHEMA_KEY: input_schema.model_dump()} if input_schema else None,
    )
    version = mlflow.register_model(info.model_uri, name, tags=tags)
    logged = MlflowClient().get_logged_model(info.model_id)
    return RegisteredModel(
        name=name,
        version=str(version.version),
        model_uri=info.model_uri,
        run_id=active.info.run_id,
        artifact_location=logged.artifact_location,
        input_schema=input_schema,
    )


def _model_requirements() -> list[str]:
    import cloudpickle
    import numpy
    import sklearn

    return [
        f"scikit-learn=={sklearn.__version__}",
        f"cloudpickle=={cloudpickle.__version__}",
        f"numpy=={numpy.__version__}",
        f"pandas=={pd.__version__}",
    ]


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)[:500]
    return flat


def get_champion(name: str) -> RegisteredModel | None:
    """The version behind the `champion` alias, or None when there is none yet."""
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        return None
    return _describe(client, version)


def get_version(name: str, version: str) -> RegisteredModel:
    client = MlflowClient()
    return _describe(client, client.get_model_version(name, version))


def require_version(name: str, version: str, hint: str = "") -> RegisteredModel:
    """MLflow `version` of `name`; a ConfigError that says where the versions are listed
    (and `hint`) when there is none."""
    try:
        return get_version(name, str(version))
    except MlflowException as exc:
        raise ConfigError(
            f"'{name}' has no MLflow version {version}; `python run.py history "
            f"--model-name {name}` lists its champions{hint}."
        ) from exc


def _describe(client: MlflowClient, version) -> RegisteredModel:
    location = ""
    if version.source.startswith("models:/m-"):
        location = client.get_logged_model(version.source.split("/", 1)[1]).artifact_location
    return RegisteredModel(
        name=version.name,
        version=str(version.version),
        model_uri=version.source,
        run_id=version.run_id or "",
        artifact_location=location,
    )


def load_model(uri: str) -> Any:
    """Load a scikit-learn model from any MLflow model URI."""
    os.environ.update(PICKLE_ENV)
    return mlflow.sklearn.load_model(uri)


def read_input_schema(model_uri: str) -> InputSchema | None:
    """The schema recorded with a model, else one rebuilt from its signature (None if neither)."""
    from mlflow.models import get_model_info

    info = get_model_info(model_uri)
    recorded = (info.metadata or {}).get(SCHEMA_KEY)
    if recorded:
        return InputSchema.model_validate(recorded)
    if info.signature is None or info.signature.inputs is None:
        return None
    columns = [
        SchemaColumn(
            name=str(c["name"]),
            kind=_SIGNATURE_KINDS.get(str(c.get("type")), CATEGORICAL),
            nullable=not c.get("required", True),
        )
        for c in info.signature.inputs.to_dict()
    ]
    return InputSchema(columns=columns)


def set_champion(name: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, CHAMPION_ALIAS, version)


def restore_champion(name: str, version: str | None) -> None:
    """Put the alias back where it was (or remove it, when there was no champion)."""
    client = MlflowClient()
    if version is None:
        try:
            client.delete_registered_model_alias(name, CHAMPION_ALIAS)
        except MlflowException:
            pass
    else:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version)


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value[:4000])


def version_tags(name: str, version: str) -> dict[str, str]:
    return dict(MlflowClient().get_model_version(name, version).tags or {})


# --- What a run shows beside the model (logging only) ---------------------------------


def model_id_of(model_uri: str) -> str | None:
    """The LoggedModel id in a `models:/m-…` URI (None for other URIs)."""
    tail = model_uri.removeprefix("models:/")
    return tail if tail.startswith("m-") and "/" not in tail else None


def dataset_of(frame: pd.DataFrame, name: str, source: str, target: str | None):
    """Rows as an MLflow dataset: its digest, schema and row count, and where it is stored."""
    import warnings

    import mlflow.data

    with warnings.catch_warnings():  # "can be interpreted in multiple ways": same class twice
        warnings.simplefilter("ignore", UserWarning)
        return mlflow.data.from_pandas(
            frame,
            source=source,
            name=name[:500] or None,
            targets=target if target and target in frame.columns else None,
        )


def log_dataset(run_id: str, dataset, context: str, tags: dict[str, str] | None = None) -> None:
    """Attach a dataset to a run as an input (`training`, `testing`, …)."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    input_tags = [InputTag(MLFLOW_DATASET_CONTEXT, context)]
    input_tags += [InputTag(k, str(v)[:500]) for k, v in (tags or {}).items()]
    MlflowClient().log_inputs(
        run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags=input_tags)]
    )


def log_figures(
    run_id: str,
    metrics: dict[str, float],
    model_uri: str = "",
    dataset=None,
    tags: dict[str, str] | None = None,
) -> None:
    """Metrics (linked to the model and to the rows they were computed on) and tags, on a run."""
    import time

    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    model_id = model_id_of(model_uri)
    entries = [
        Metric(
            key,
            float(value),
            now,
            0,
            model_id=model_id,
            dataset_name=dataset.name if dataset is not None else None,
            dataset_digest=dataset.digest if dataset is not None else None,
        )
        for key, value in metrics.items()
        if value is not None and value == value  # NaN: not computed, not logged
    ]
    run_tags = [RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()]
    MlflowClient().log_batch(run_id, metrics=entries, tags=run_tags)


def log_files(run_id: str, files: dict[str, str]) -> None:
    """Text files (HTML, JSON, SVG) as run artifacts, by artifact path."""
    client = MlflowClient()
    for artifact_file, text in files.items():
        client.log_text(run_id, text, artifact_file)


def log_monitoring_run(
    model_name: str,
    version: str | None,
    metrics: dict[str, float],
    tags: dict[str, str],
    retraining: bool = False,
) -> str:
    """The figures of one monitoring check, on a run that carries nothing else, tagged
    with the model version it watched (`zenkube.model_name` / `zenkube.model_version`);
    the version is tagged with its latest monitoring run. Returns the run id.

    With `retraining`, the pipeline's run is about to hold the candidate's training, so
    the check gets a run of its own nested in it (a training run never carries monitoring
    figures beside the candidate's). Without, the pipeline's run would hold nothing: the
    figures go on it, not on a nested run that would leave it an empty parent."""
    run_tags = {"zenkube.kind": "monitoring", "zenkube.model_name": model_name, **tags}
    if version:
        run_tags["zenkube.model_version"] = version
    active = mlflow.active_run()
    if active is not None and not retraining:
        run_id = active.info.run_id
        log_figures(run_id, metrics, tags=run_tags)
    else:
        name = f"monitoring {model_name}" + (f" v{version}" if version else "")
        with mlflow.start_run(run_name=name, nested=active is not None, tags=run_tags) as run:
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        run_id = run.info.run_id
    if version:
        tag_version(model_name, version, {MONITORING_RUN_TAG: run_id})
    return run_id
