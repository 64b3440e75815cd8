"""The champion of a registered model, kept in one place.

It has two records: the MLflow alias `champion` (what predict and deploy load) and the
ZenML Model stage `production` (whose artifacts monitoring reads as its reference). This
module is the only reader and writer of both: `current` checks that they agree and
fails closed when they do not; `promote` moves both or neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zenml.logger import get_logger

from core.champion import locks
from core.errors import ConfigError
from integrations.mlflow import registry as mlflow_registry
from integrations.mlflow.registry import RegisteredModel
from integrations.mlflow.tags import (
    HISTORY_KEEP,
    HISTORY_TAG,
    RELEASE_HISTORY_TAG,
    change_event,
    release_event,
)
from integrations.mlflow.tags import events as tag_events

logger = get_logger(__name__)

STAGE = "production"
# The champion's and the releases' histories: HISTORY_TAG and RELEASE_HISTORY_TAG (tags.py).
# The offline gate's verdict on a registered version (what `release start` picks from).
OFFLINE_GATE_TAG = "zenkube.offline_gate"
# The champion version the gate compared it with ("none": there was none): a pass proves
# the version against that champion only.
GATE_CHAMPION_TAG = "zenkube.gate_champion"
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


@dataclass(frozen=True)
class Champion:
    """The champion's two records, read once: the MLflow version (what is served) and the
    ZenML Model version (its artifacts: train_set, test_set, evaluation_report)."""

    registered: RegisteredModel
    zenml_version: Any


def _records(model_name: str) -> tuple[RegisteredModel | None, Any | None]:
    """(MLflow alias, ZenML stage) of the champion; ConfigError when they disagree on a
    second read too: a move in progress elsewhere (the stage is moved with force, so
    for a moment no version holds it) or a read that raced one is not a hand move."""
    import time

    mlflow_registry.configure_from_stack()
    for attempt in range(2):
        alias = mlflow_registry.get_champion(model_name)
        stage = zenml_version(model_name)
        staged = _mlflow_version_of(stage) if stage is not None else None
        alias_version = alias.version if alias else None
        if alias_version == staged:
            return alias, stage
        if attempt == 0:
            time.sleep(1.0)
    raise ConfigError(disagreement(model_name, alias_version, staged))


def current(model_name: str) -> RegisteredModel | None:
    """The champion (None before the first promotion); ConfigError when the records disagree."""
    return _records(model_name)[0]


def require(model_name: str, purpose: str) -> RegisteredModel:
    """The champion, or a ConfigError that says to train one first."""
    return require_champion(model_name, purpose).registered


def require_champion(model_name: str, purpose: str) -> Champion:
    """The champion with its ZenML Model version (one look-up of each), or a ConfigError
    that says what to do when there is none."""
    champion, stage = _records(model_name)
    if champion is None:
        latest = _latest_version(model_name)
        if latest is not None:
            raise ConfigError(
                f"There is no champion of '{model_name}' to {purpose}: v{latest} and earlier "
                "versions are registered, but none passed the gate (training again on the "
                "same data gives the same refusal). Lower `gate.threshold` in "
                "configs/training.yaml and train again, or make a version the champion by "
                f"hand: `python run.py champion set --model-name {model_name} --version "
                f"{latest}`."
            )
        raise ConfigError(
            f"There is no champion of '{model_name}' to {purpose}. Train one first: "
            f"`python run.py train --model-name {model_name}`."
        )
    return Champion(champion, stage)


def _latest_version(model_name: str) -> str | None:
    """The newest registered MLflow version of `model_name` (None: none, or no model)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        found = MlflowClient().search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return None
    return max((v.version for v in found), key=int, default=None)


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
    """Point the alias and the stage at `version` together and add the change to the
    history: all of it, or (after an error) none of it.

    It holds the model's lock, and runs uninterrupted: a Ctrl-C that arrives meanwhile
    takes effect once the move and its history entry are written, so every move that
    happened is in `history`. `by` says who or what made it (full run names).
    """
    from zenml.client import Client

    with locks.model_lock(model_name, "champion move", logger.info):
        mlflow_registry.configure_from_stack()
        previous = mlflow_registry.get_champion(model_name)
        previous_stage = zenml_version(model_name)
        with locks.uninterrupted():
            journal = _begin_move(model_name, previous.version if previous else None, version)
            try:
                mlflow_registry.set_champion(model_name, version)
                zenml_model_version.set_stage(STAGE, force=True)
                mlflow_registry.tag_version(model_name, version, tags)
                _record_change(model_name, version, by, tags.get(mlflow_registry.REASON_TAG, ""))
            except BaseException:
                mlflow_registry.restore_champion(model_name, previous.version if previous else None)
                if previous_stage is not None:
                    Client().update_model_version(
                        model_name, previous_stage.id, stage=STAGE, force=True
                    )
                _end_move(journal)
                raise
            _end_move(journal)


def move_journal(model_name: str):
    """Where a champion move in progress is written down (ZENKUBE_HOME/champion-moves):
    present only between the start and the end of a move, so after a kill -9 it tells
    `repair` that a disagreement is a move cut off halfway, not a hand move."""
    from core.paths import zenkube_home
    from core.traffic.rows import safe_name

    return zenkube_home() / "champion-moves" / f"{safe_name(model_name)}.json"


def _begin_move(model_name: str, from_version: str | None, to_version: str):
    import json

    path = move_journal(model_name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"from": from_version, "to": str(to_version)}))
    except OSError:  # a read-only pod image: a cut-off move then stops the next command
        return None
    return path


def _end_move(journal) -> None:
    if journal is not None:
        journal.unlink(missing_ok=True)


def undo_move(model_name: str, back_to: str, moved_to: str, why: str) -> None:
    """Put `back_to` back as champion after a command moved it to `moved_to` but did not
    finish (recorded in the history like any other move)."""
    _set(model_name, back_to, "zenkube", f"put back from v{moved_to}: {why}")


def _record_change(model_name: str, version: str, by: str, reason: str) -> None:
    import json

    from mlflow.tracking import MlflowClient

    events = [change_event(version, by, reason), *history(model_name)]
    MlflowClient().set_registered_model_tag(
        model_name, HISTORY_TAG, json.dumps(events[:HISTORY_KEEP][::-1])
    )


def repair(model_name: str) -> list[str]:
    """Put the champion's records right after a command was killed mid-move (kill -9; a
    Ctrl-C is held off until a move completes). Returns one sentence per fix.

    The history's newest entry is the last move that completed: an alias and a stage
    that disagree go back to it when one of them still points there and this machine's
    move journal shows a move cut off halfway (without one, it was a hand move: it is
    reported, not guessed at); a champion the history does not name gets its entry."""
    mlflow_registry.configure_from_stack()
    alias = mlflow_registry.get_champion(model_name)
    stage = zenml_version(model_name)
    alias_version = alias.version if alias else None
    staged = _mlflow_version_of(stage) if stage is not None else None
    events = history(model_name)
    last = events[0]["version"] if events else None
    if alias_version != staged:
        # Only a move this machine began and never finished is put back; a record moved
        # by hand (or by another machine) stops every command until `champion set`.
        journal = move_journal(model_name)
        if not journal.exists() or last is None or last not in (alias_version, staged):
            return [disagreement(model_name, alias_version, staged)]
        if alias_version != last:
            mlflow_registry.restore_champion(model_name, last)
        if staged != last:
            zenml_version_for(model_name, last).set_stage(STAGE, force=True)
        _end_move(journal)
        return [
            f"the champion of '{model_name}' was v{alias_version or '-'} in MLflow and "
            f"v{staged or '-'} in ZenML (a move cut off halfway): both are v{last} again, "
            "the last move that completed"
        ]
    if alias_version is not None and alias_version != last:
        _record_change(
            model_name,
            alias_version,
            "zenkube repair",
            "became champion in a command that was cut off before it wrote this entry",
        )
        _end_move(move_journal(model_name) if move_journal(model_name).exists() else None)
        return [f"added the missing history entry of champion v{alias_version} of '{model_name}'"]
    return []


def history(model_name: str) -> list[dict[str, str]]:
    """Champion changes of `model_name`, newest first: at, version, by, reason."""
    return model_events(model_name, HISTORY_TAG)


def model_events(model_name: str, tag: str) -> list[dict]:
    """The events the registered model's `tag` holds, newest first ([] without the model)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow_registry.configure_from_stack()
    try:
        tags = MlflowClient().get_registered_model(model_name).tags or {}
    except MlflowException:
        return []
    return tag_events(tags, tag)


def versions_with_tags(model_name: str) -> list[tuple[str, dict[str, str]]]:
    """Every registered version of `model_name` with its tags, newest first ([] without
    the model)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow_registry.configure_from_stack()
    try:
        found = MlflowClient().search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return []
    return sorted(((str(v.version), dict(v.tags or {})) for v in found), key=lambda v: -int(v[0]))


def release_history(model_name: str) -> list[dict]:
    """Ended releases of `model_name`, newest first: at, version, champion, mode, percent,
    outcome (promoted | aborted), by, reason, started_at (the release's id)."""
    return model_events(model_name, RELEASE_HISTORY_TAG)


def record_release(model_name: str, state: dict, outcome: str, by: str, reason: str) -> bool:
    """Add an ended release (its front/deployer state) to the history, once: a release
    already recorded (same start) is not added again. True when it was added."""
    import json

    from mlflow.tracking import MlflowClient

    events = release_history(model_name)
    started = state.get("started_at")
    if started is not None and any(e.get("started_at") == started for e in events):
        return False
    events.insert(0, release_event(state, outcome, by, reason))
    MlflowClient().set_registered_model_tag(
        model_name, RELEASE_HISTORY_TAG, json.dumps(events[:HISTORY_KEEP][::-1])
    )
    return True


def rollback(model_name: str, to: str | None, who: str) -> tuple[RegisteredModel, str]:
    """Make the previous champion (or version `to`) the champion again; (it, the one it replaced)."""
    repair(model_name)
    current = require(model_name, "roll back")
    if to is None:
        earlier = [e["version"] for e in history(model_name) if e["version"] != current.version]
        if not earlier:
            raise ConfigError(
                f"'{model_name}' has had no champion before v{current.version}; name one with "
                f"--to VERSION (`python run.py history --model-name {model_name}` lists the changes)."
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
    mlflow_registry.configure_from_stack()
    repair(model_name)
    chosen = mlflow_registry.require_version(model_name, version)
    tags = {mlflow_registry.REASON_TAG: reason}
    promote(model_name, chosen.version, zenml_version_for(model_name, chosen.version), tags, by)
    return chosen
