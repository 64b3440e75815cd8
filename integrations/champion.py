"""The champion of a registered model, kept in one place.

It has two records: the MLflow alias `champion` (what predict and deploy load) and the
ZenML Model stage `production` (whose artifacts monitoring reads as its reference). This
module is the only reader and writer of both: `current` checks that they agree and
fails closed when they do not; `promote` moves both or neither.
"""

from __future__ import annotations

from typing import Any

from core.errors import ConfigError
from integrations import mlflow_registry
from integrations.mlflow_registry import RegisteredModel

STAGE = "production"
# Champion changes, newest last, as JSON in a registered-model tag (MLflow keeps it).
HISTORY_TAG = "zenkube.champion_history"
HISTORY_KEEP = 20
# The MLflow version a ZenML Model version registered (logged by the register step).
MLFLOW_VERSION_KEY = "mlflow_version"


def zenml_version(model_name: str) -> Any | None:
    """The ZenML Model version in stage `production`, or None."""
    from zenml.client import Client

    try:
        return Client().get_model_version(model_name, STAGE)
    except KeyError:
        return None


def _mlflow_version_of(zenml_model_version: Any) -> str | None:
    value = zenml_model_version.run_metadata.get(MLFLOW_VERSION_KEY)
    return None if value is None else str(value)


def current(model_name: str) -> RegisteredModel | None:
    """The champion (None before the first promotion); ConfigError when the records disagree."""
    mlflow_registry.configure_from_stack()
    alias = mlflow_registry.get_champion(model_name)
    stage = zenml_version(model_name)
    staged = _mlflow_version_of(stage) if stage is not None else None
    alias_version = alias.version if alias else None
    if alias_version != staged:
        raise ConfigError(disagreement(model_name, alias_version, staged))
    return alias


def require(model_name: str, purpose: str) -> RegisteredModel:
    """The champion, or a ConfigError that says to train one first."""
    champion = current(model_name)
    if champion is None:
        raise ConfigError(
            f"There is no champion of '{model_name}' to {purpose}. Train one first: "
            f"`python run.py train --model-name {model_name}`."
        )
    return champion


def disagreement(model_name: str, alias: str | None, staged: str | None) -> str:
    def name(version: str | None) -> str:
        return f"v{version}" if version else "none"

    return (
        f"The champion of '{model_name}' is {name(alias)} in MLflow (alias `champion`) but "
        f"{name(staged)} in ZenML (stage `production`): one of them was moved by hand, or "
        "stacks with different MLflow registries share this ZenML store under one model name "
        "(use a model name per registry). zenkube stops rather than guess which model to "
        "serve or monitor. Move them together "
        "with `python run.py champion set --model-name "
        f"{model_name} --version N`, or train a model that the gate promotes."
    )


def promote(
    model_name: str,
    version: str,
    zenml_model_version: Any,
    tags: dict[str, str],
    by: str = "the gate",
) -> None:
    """Point the alias and the stage at `version` together; undo both if either fails.

    An interrupt (Ctrl-C) between the two puts the old champion back before it stops.
    The change is added to the champion history with who/what made it (`by`).
    """
    from zenml.client import Client

    mlflow_registry.configure_from_stack()
    previous = mlflow_registry.get_champion(model_name)
    previous_stage = zenml_version(model_name)
    try:
        mlflow_registry.set_champion(model_name, version)
        zenml_model_version.set_stage(STAGE, force=True)
    except BaseException:
        mlflow_registry.restore_champion(model_name, previous.version if previous else None)
        if previous_stage is not None:
            Client().update_model_version(model_name, previous_stage.id, stage=STAGE, force=True)
        raise
    mlflow_registry.tag_version(model_name, version, tags)
    _record_change(model_name, version, by, tags.get(mlflow_registry.REASON_TAG, ""))


def _record_change(model_name: str, version: str, by: str, reason: str) -> None:
    import datetime
    import json

    from mlflow.tracking import MlflowClient

    events = history(model_name)
    events.insert(
        0,
        {
            "at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "version": str(version),
            "by": by[:60],
            "reason": reason[:100],
        },
    )
    MlflowClient().set_registered_model_tag(
        model_name, HISTORY_TAG, json.dumps(events[:HISTORY_KEEP][::-1])
    )


def history(model_name: str) -> list[dict[str, str]]:
    """Champion changes of `model_name`, newest first: at, version, by, reason."""
    import json

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow_registry.configure_from_stack()
    try:
        tags = MlflowClient().get_registered_model(model_name).tags or {}
    except MlflowException:
        return []
    return list(reversed(json.loads(tags.get(HISTORY_TAG, "[]"))))


def rollback(model_name: str, to: str | None, who: str) -> tuple[RegisteredModel, str]:
    """Make the previous champion (or version `to`) the champion again; (it, the one it replaced)."""
    current = require(model_name, "roll back")
    if to is None:
        earlier = [e["version"] for e in history(model_name) if e["version"] != current.version]
        if not earlier:
            raise ConfigError(
                f"'{model_name}' has had no champion before v{current.version}; name one with "
                "--to VERSION (`python run.py history` lists the changes)."
            )
        to = earlier[0]
    if str(to) == current.version:
        raise ConfigError(f"v{to} of '{model_name}' is already the champion.")
    chosen = _set(model_name, str(to), f"rollback by {who}", f"rolled back from v{current.version}")
    return chosen, current.version


def zenml_version_for(model_name: str, version: str) -> Any:
    """The ZenML Model version that registered MLflow `version` of `model_name`."""
    from zenml.client import Client

    for candidate in Client().list_model_versions(
        model_name_or_id=model_name, sort_by="desc:number", size=1000, hydrate=True
    ):
        if _mlflow_version_of(candidate) == str(version):
            return candidate
    raise ConfigError(
        f"No ZenML Model version of '{model_name}' registered MLflow version {version} (it was "
        "not trained by zenkube), so monitoring would have no reference data for it; pick "
        f"another version (`python run.py history --model-name {model_name}`)."
    )


def set_by_hand(model_name: str, version: str, who: str) -> RegisteredModel:
    """Make MLflow `version` the champion (alias and stage), outside the gate; say who did."""
    return _set(model_name, version, f"{who} by hand", f"set by hand by {who} (outside the gate)")


def _set(model_name: str, version: str, by: str, reason: str) -> RegisteredModel:
    from mlflow.exceptions import MlflowException

    mlflow_registry.configure_from_stack()
    try:
        chosen = mlflow_registry.get_version(model_name, str(version))
    except MlflowException as exc:
        raise ConfigError(
            f"'{model_name}' has no MLflow version {version}; `python run.py history "
            f"--model-name {model_name}` lists its champions."
        ) from exc
    tags = {mlflow_registry.REASON_TAG: reason}
    promote(model_name, chosen.version, zenml_version_for(model_name, chosen.version), tags, by)
    return chosen
