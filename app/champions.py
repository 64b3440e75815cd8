"""Champion commands: history, rollback and a move by hand (integrations/mlflow/champion.py
reads and writes the champion; this module composes a command from it)."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field

from app.config import model_name as resolve_name


@dataclass
class History:
    model_name: str
    current: str | None  # the champion's MLflow version, None before the first promotion
    events: list[dict[str, str]] = field(default_factory=list)  # newest first
    releases: list[dict] = field(default_factory=list)  # ended releases, newest first


def history(model_name: str | None, echo=print, registry=None) -> History:
    """`history`: the champion now and every change, newest first (full run names).

    With `registry` (integrations/seldon_local/local_records.Registry), the MLflow registry is read
    without importing ZenML or MLflow: the champion is its alias (the commands that act
    on it check that ZenML's stage agrees, and stop when it does not)."""
    name = resolve_name(model_name)
    if registry is not None:
        from integrations.mlflow.tags import HISTORY_TAG, RELEASE_HISTORY_TAG, events

        tags = registry.tags(name)
        found = History(name, registry.champion(name), events(tags, HISTORY_TAG))
        found.releases = events(tags, RELEASE_HISTORY_TAG)
        versions = registry.version_tags(name)
    else:
        from integrations.mlflow import champion

        current = champion.current(name)
        found = History(name, current.version if current else None, champion.history(name))
        found.releases = champion.release_history(name)
        versions = champion.versions_with_tags(name)
    echo(f"Champion of '{name}': {'v' + found.current if found.current else 'none yet'}")
    for event in merged(found.events, found.releases):
        echo(history_line(event))
    if versions:
        echo("Versions (newest first): the gate's outcome and the rows each trained on")
        for version, version_tags in versions[:20]:
            echo(version_line(version, version_tags))
    return found


def version_line(version: str, tags: dict[str, str]) -> str:
    """One version in `history`: the gate's outcome (promote, keep, inconclusive, reject)
    and, for a version the loop retrained, the batches it trained on."""
    outcome = tags.get("zenkube.gate_outcome") or tags.get("zenkube.offline_gate") or "-"
    line = f"  v{version:<4} gate: {outcome:<12}"
    if tags.get("zenkube.trained_on"):
        line += f" trained on {tags['zenkube.trained_on']}"
    reason = tags.get("zenkube.gate_reason", "")
    if outcome in ("keep", "inconclusive") and reason:
        line += f"\n          {reason}"
    return line


def registry_for_reading(echo):
    """For `history`: the ZenML-free registry reader of the prepared stack (None: nothing
    prepared, or no MLflow tracker recorded; ZenML is prepared and asked instead)."""
    from app import session
    from integrations.seldon_local.local_records import Registry

    stack = (session.prepared() or {}).get("stack") or {}
    if stack.get("tracking_uri") and stack.get("model_registry"):
        return Registry(stack["tracking_uri"])
    session.ready(echo)
    return None


def merged(changes: list[dict], releases: list[dict]) -> list[dict]:
    """Champion changes and ended releases in one list, newest first (by `at`), each
    champion change once: a promoted release is not a line of its own but the who and why
    of the change it made (`promoted_by`), so `history` lists that move once, as MLflow's
    registry and ZenML's stage record it once. Other releases (aborted) are lines of their
    own; one whose change is no longer in the history (it keeps 20) too."""
    rows = [{**e, "kind": "change"} for e in changes]  # newest first, as kept
    for release in releases:
        change = _change_made_by(release, rows)
        if change is None:
            rows.append({**release, "kind": "release"})
        else:
            change["promoted_by"] = release
    order = {"change": 0, "release": 1}  # in the same second, a release ended last
    return sorted(rows, key=lambda e: (e.get("at", ""), order[e["kind"]]), reverse=True)


def _change_made_by(release: dict, rows: list[dict]) -> dict | None:
    """The champion change a promoted `release` made: the newest change to its version
    between its start and its end (the promote moves the champion, then ends the
    release), not already another release's."""
    if release.get("outcome") != "promoted":
        return None
    from integrations.mlflow.tags import stamp

    started = release.get("started_at")
    since = stamp(started) if isinstance(started, int | float) else ""
    for row in rows:
        if (
            row["kind"] == "change"
            and "promoted_by" not in row
            and row.get("version") == release.get("version")
            and since <= row.get("at", "") <= release.get("at", "")
        ):
            return row
    return None


def history_line(event: dict) -> str:
    """One line of `history`: a champion change (by its release, when one promoted it),
    or a release that moved no champion and its outcome."""
    release = event.get("promoted_by")
    if release:  # who: the release as the change names it (a repair's: as the release does)
        by = event["by"] if event["by"].startswith("release (") else release["by"]
        label = by.split(") ", 1)[0] + "): "
        why = release["reason"] if by == release["by"] else event["reason"].removeprefix(label)
        why = f"promoted over v{release.get('champion') or '-'}: {why}"
        return f"  {event['at']}  v{event['version']:<4} {by:<45} {why}"
    if event.get("kind") != "release":
        return f"  {event['at']}  v{event['version']:<4} {event['by']:<45} {event['reason']}"
    mode = event.get("mode", "")
    share = f"canary {event['percent']:g}%" if mode == "canary" and event.get("percent") else mode
    what = f"release ({share}) beside v{event.get('champion') or '-'}: {event.get('outcome')}"
    return f"  {event['at']}  v{event['version']:<4} {what:<45} {event['by']}: {event['reason']}"


def rollback(model_name: str | None, to: str | None, echo=print):
    """Move the champion back (to the previous one, or `to`) and serve it, as one command:
    under the model's lock, and an interrupted redeploy puts the champion back too.

    Returns (name, the version now champion, the one it replaced, the deployment)."""
    from app import runner
    from core.champion import locks
    from integrations.mlflow import champion

    name = resolve_name(model_name)
    with locks.model_lock(name, "rollback", echo):
        _refuse_during_release(name, "rollback")
        champion.repair(name)
        before = champion.require(name, "roll back").version
        try:
            chosen, replaced = champion.rollback(name, to, getpass.getuser())
            info = runner.deploy(None, {"model_name": name}, echo)
        except BaseException:
            _undo_unless_served(name, before, "rollback did not finish")
            raise
    from app import render

    echo(f"Champion of '{name}': v{replaced} → v{chosen.version}", fg="green")
    render.deployment(info, echo)
    return name, chosen.version, replaced, info


def _undo_unless_served(name: str, before: str, why: str) -> None:
    """After a command that moved the champion from `before` did not finish: put it back,
    unless the endpoint already serves the new one (the swap is the point of no return).
    Alias, stage, history and endpoint agree either way."""
    from app.serving import served_version
    from integrations.mlflow import champion

    now = champion.current(name)
    if now is not None and now.version != before and served_version(name) != now.version:
        champion.undo_move(name, before, now.version, why)


def set_by_hand(model_name: str | None, version: str, echo=print):
    """Make `version` the champion outside the gate (alias and stage together)."""
    from core.champion import locks
    from integrations.mlflow import champion

    name = resolve_name(model_name)
    with locks.model_lock(name, "champion set", echo):
        _refuse_during_release(name, "champion set")
        chosen = champion.set_by_hand(name, version, getpass.getuser())
    echo(
        f"Champion of '{name}' is now v{chosen.version}. Serve it: "
        f"python run.py deploy --model-name {name}"
    )
    return chosen


def _refuse_during_release(name: str, command: str) -> None:
    """A champion moved by hand while a release runs would be taken for the release's
    promote (or pull the champion from under it): refused, with what to do."""
    from integrations.zenml_adapters.deployer import DeployerContract, active_deployer

    deployer = active_deployer()
    if isinstance(deployer, DeployerContract):
        deployer.refuse_during_release(name, command)
