"""Start a release (issue #27): a gate-passed version beside the champion, as a canary or
a shadow, on the active stack's model deployer (plain functions: `release start`, and
`deploy` / continuous training with `release.mode` canary|shadow in configs/deployment.yaml).

A release ends in `end_release` (promote: champion alias + stage moved, then all
traffic; abort), whoever decided: a command by hand, the local stack's detached `release
watch` (app/release.py), or on a cluster `check_cluster_release`, the release watcher
the release-check pipeline runs on a schedule (pipelines/release_check.py).
"""

from __future__ import annotations

import os

from zenml.logger import get_logger

from core.champion import locks
from core.errors import ConfigError, is_interrupt
from core.specs import ReleaseSpec
from integrations.k8s.storage_uri import check_stack_model_uri
from integrations.mlflow import champion as champions
from integrations.mlflow import registry as mlflow_registry
from integrations.zenml_adapters import deployer as deployers
from integrations.zenml_adapters.request import DeploymentRequest, ReleaseRequest

logger = get_logger(__name__)

PASSED = "passed"
FAILED = "failed"
OUTCOMES = {"promote": "promoted", "abort": "aborted"}


def passed_against(tags: dict[str, str], champion: str | None) -> bool:
    """Whether a version's tags say it passed the offline gate against `champion`: a
    pass proves it against the champion it was compared with only (zenkube.gate_champion;
    a version tagged before the gate recorded it keeps its pass)."""
    tags = tags or {}
    against = tags.get(champions.GATE_CHAMPION_TAG)
    return tags.get(champions.OFFLINE_GATE_TAG) == PASSED and (
        against is None or champion is None or against == champion
    )


def newest_passed(
    versions: list[tuple[str, dict]], champion: str | None, former: frozenset[str] = frozenset()
) -> str | None:
    """The newest version that passed the offline gate against `champion`, is newer than
    it and was never champion (`versions`: (version, its tags); `former`: the versions the
    champion history names); None when there is none. An older version, or a former
    champion (the one a rollback took the champion back from), is released only when
    named with --version."""
    passed = [
        str(v)
        for v, tags in versions
        if passed_against(tags, champion)
        and (champion is None or int(v) > int(champion))
        and str(v) not in former
    ]
    return max(passed, key=int, default=None)


def former_champions(model_name: str) -> frozenset[str]:
    """Every version the champion history of `model_name` names."""
    return frozenset(str(e.get("version")) for e in champions.history(model_name))


def pending_release(model_name: str) -> str | None:
    """What `deploy` releases under a canary/shadow release mode: `newest_passed` among
    the versions newer than the champion that had no release yet; None: nothing to release."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow_registry.configure_from_stack()
    current = champions.current(model_name)
    if current is None:
        return None
    released = {e.get("version") for e in champions.release_history(model_name)}
    try:
        found = MlflowClient().search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return None
    newer = [
        (v.version, v.tags)
        for v in found
        if int(v.version) > int(current.version) and str(v.version) not in released
    ]
    return newest_passed(newer, current.version, former_champions(model_name))


def version_to_release(model_name: str, given: str | None, champion: str | None):
    """The registered version to release: `given`, else the newest that passed the
    offline gate and is not the champion; a ConfigError that says what to do otherwise."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow_registry.configure_from_stack()
    if given is not None:
        try:
            chosen = mlflow_registry.get_version(model_name, str(given))
        except MlflowException:
            raise ConfigError(
                f"'{model_name}' has no registered version {given}; `python run.py history "
                f"--model-name {model_name}` lists its champions and releases."
            ) from None
        if chosen.version == champion:
            raise ConfigError(
                f"v{given} is the champion of '{model_name}' already; a release needs "
                "another version (--version N)."
            )
        return chosen
    try:
        found = MlflowClient().search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        found = []
    version = newest_passed(
        [(v.version, v.tags) for v in found], champion, former_champions(model_name)
    )
    if version is None:
        raise ConfigError(
            f"No registered version of '{model_name}' newer than the champion "
            f"(v{champion or '-'}) passed the offline gate against it, so there is nothing "
            "to release. "
            f"Train one (`python run.py train --model-name {model_name}`; the gate tags "
            f"what passes {champions.OFFLINE_GATE_TAG}=passed), or name a version with "
            "--version N (an older version or a former champion is released only when named)."
        )
    return mlflow_registry.get_version(model_name, version)


def older_than_champion(version: str | None, champion: str | None) -> str:
    """What to say of a named version older than the champion ("" when it is not)."""
    numbers = [str(v).isdigit() for v in (version, champion)]
    if not all(numbers) or int(version) >= int(champion):
        return ""
    return (
        f"v{version} is older than the champion v{champion}: it is released only because "
        "--version named it"
    )


def release_limits(spec: ReleaseSpec, unproven: bool) -> dict:
    """The thresholds a release is started with: `require_labels` for an unproven
    candidate, and only when set (a front started before the flag existed refuses the
    key: a gate-passed release reaches it unchanged, a forced one fails closed there)."""
    limits = spec.thresholds.model_dump()
    if unproven or limits.pop("require_labels", False):
        limits["require_labels"] = True
    return limits


def gate_refusal(
    model_name: str, version: str, tags: dict[str, str], champion: str | None = None
) -> str:
    """Why `version` (its MLflow tags) may not be released beside the champion version
    `champion`: it did not pass the offline gate (zenkube.offline_gate is not "passed"),
    or it passed against another champion (zenkube.gate_champion: after a rollback or a
    later promotion, beating v2 says nothing about v1); "" when it passed against this
    one (or was tagged before the gate recorded whom it was compared with). A release of
    it would be promoted on errors, latency and prediction shift, none of which says it
    is right."""
    if passed_against(tags, champion):
        return ""
    verdict = (tags or {}).get(champions.OFFLINE_GATE_TAG)
    against = (tags or {}).get(champions.GATE_CHAMPION_TAG)
    outcome = (tags or {}).get("zenkube.gate_outcome")
    reason = (tags or {}).get("zenkube.gate_reason", "")
    if verdict == PASSED:
        judged = "no champion" if against == "none" else f"the champion v{against}"
        what = (
            f"passed the offline gate against {judged}, but the champion is now "
            f"v{champion}, which it was never compared with"
        )
    elif verdict is None:
        what = "was never judged by the offline gate (it has no zenkube.offline_gate tag)"
    else:
        what = f"did not pass the offline gate (zenkube.offline_gate={verdict}" + (
            f", outcome {outcome}: {reason[:300]})" if outcome else ")"
        )
    return (
        f"v{version} of '{model_name}' {what}, so no release was started: its canary or "
        "shadow would be promoted on errors, latency and prediction shift, none of which "
        "says its answers are right. Train a better version (`python run.py train "
        f"--model-name {model_name}`; `python run.py history --model-name {model_name}` "
        "lists each version's gate outcome), or release this one anyway with `--force`: it "
        "is then promoted only on labelled evidence (feedback labels that show its quality "
        "within `max_quality_drop` of the champion's), or by hand with `release "
        "promote`; without labels its budget aborts it."
    )


def check_same_inputs(candidate, champion):
    """A ConfigError when the two take other inputs: both answer the same requests.
    Returns the candidate's recorded input schema (None: it could not be read)."""
    from core.schema import diff_schemas

    try:
        new = mlflow_registry.read_input_schema(candidate.model_uri)
        old = mlflow_registry.read_input_schema(champion.model_uri)
    except Exception as exc:  # a schema that cannot be read: the smoke test still runs
        if is_interrupt(exc):
            raise
        return None
    change = diff_schemas(old, new) if old is not None and new is not None else None
    if change:
        raise ConfigError(
            f"v{candidate.version} of '{candidate.name}' takes other inputs than the champion "
            f"v{champion.version} ({change.describe()}): a release sends both the same "
            "requests, so it cannot compare them. Replace the champion at once instead "
            "(`release.mode: swap`, promoted with gate.allow_schema_change)."
        )
    return new


def release_label(mode: str, percent: float | None) -> str:
    """`release (canary 10%)` / `release (shadow)`: how history names who moved things."""
    return f"release (canary {percent:g}%)" if mode == "canary" else f"release ({mode})"


def start_release(
    model_name: str,
    version: str | None,
    spec: ReleaseSpec,
    pipeline_name: str = "",
    step_name: str = "",
    timeout: int = 300,
    watch: bool = True,
    force: bool = False,
) -> dict:
    """Serve `version` (default: the newest gate-passed one that is not the champion) as
    a release beside the served champion, as `spec` says (mode, canary share, the
    live-evidence thresholds); its state. With `watch`, a local stack gets a detached
    `release watch` that finishes the release once it is decided.

    A version that did not pass the offline gate is refused (`gate_refusal`); with
    `force` it is released, and its gate promotes it only on labelled evidence
    (`require_labels`)."""
    deployer = deployers.active_deployer()
    deployers.check_release(deployer, spec.mode, spec.canary_percent)
    with locks.model_lock(model_name, "release start", logger.info):
        champions.repair(model_name)
        current = champions.require(model_name, "release beside")
        chosen = version_to_release(model_name, version, current.version)
        tags = mlflow_registry.version_tags(model_name, chosen.version)
        unproven = gate_refusal(model_name, chosen.version, tags, current.version)
        if unproven and not force:
            raise ConfigError(unproven)
        check_stack_model_uri(chosen.artifact_location)
        schema = check_same_inputs(chosen, current)
        request = DeploymentRequest.for_model(chosen, "", pipeline_name, step_name)
        request.task = schema.task if schema is not None else ""
        release = ReleaseRequest(
            candidate=request,
            mode=spec.mode,
            percent=spec.canary_percent,
            thresholds=release_limits(spec, bool(unproven)),
        )
        state = deployers.release_start(deployer, release, timeout)
    if watch:
        spawn_watcher(deployer, model_name)
    return state


def watcher_log(deployer, model_name: str):
    """Where the local release watcher writes (the model's front folder); None: no watcher."""
    front_of = getattr(deployer, "front_of", None)
    return front_of(model_name).dir / "release-watch.log" if front_of else None


def watcher_alive(deployer, model_name: str) -> bool:
    """Whether the release watcher of `model_name` runs (its pid file names a live
    `release watch` process)."""
    from integrations.seldon_local.local_records import watcher_alive as alive

    log = watcher_log(deployer, model_name)
    return log is not None and alive(log.parent, model_name)


def stop_watcher(deployer, model_name: str) -> bool:
    """Stop the release watcher of `model_name` (`serve stop`: the front it watches is
    gone, so it has nothing to finish); True when one ran."""
    if not watcher_alive(deployer, model_name):
        return False
    import signal

    pid_file = watcher_log(deployer, model_name).with_name("release-watch.pid")
    try:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
    except (OSError, ValueError):
        return False
    pid_file.unlink(missing_ok=True)
    return True


def spawn_watcher(deployer, model_name: str) -> int | None:
    """Start `python run.py release watch` detached (own session, logging beside the
    front: front.py `ModelFront.spawn_watcher`): it finishes the release when the front
    decides it. Local stack only."""
    front_of = getattr(deployer, "front_of", None)
    if front_of is None:
        return None
    front = front_of(model_name)
    pid = front.spawn_watcher()
    logger.info(
        "The release watcher of %s runs as pid %s (log: %s)", model_name, pid, front.watcher_log
    )
    return pid


def end_release(deployer, model_name: str, state: dict, outcome: str, who: str, reason: str):
    """End the active release `state` of `model_name` (`who`: "release (mode) by ...").

    promote: champion.promote (alias + stage + history) first, then the deployer sends all
    traffic to the candidate; if the champion cannot be moved, the release is aborted
    instead (a ConfigError says why). abort: the candidate gets no more traffic. Both go
    to the release history. The caller holds the model's lock; uninterrupted."""
    label = release_label(state.get("mode", ""), state.get("percent"))
    version = str((state.get("candidate") or {}).get("version"))
    with locks.uninterrupted():
        if outcome == "promote":
            try:
                champions.promote(
                    model_name,
                    version,
                    champions.zenml_version_for(model_name, version),
                    {mlflow_registry.REASON_TAG: f"{label}: {reason}"},
                    who,
                )
            except Exception as exc:
                if is_interrupt(exc):
                    raise
                why = f"the champion could not be moved to v{version}: {exc}"
                ended = deployers.release_end(deployer, model_name, "abort", who, why)
                champions.record_release(model_name, ended, "aborted", who, why)
                raise ConfigError(
                    f"The release of {model_name} v{version} was aborted: {why}. The champion "
                    "keeps all traffic."
                ) from exc
        ended = deployers.release_end(deployer, model_name, outcome, who, reason)
        champions.record_release(model_name, ended, OUTCOMES[outcome], who, reason)
    return ended


def check_cluster_release(model_name: str, now: float | None = None) -> dict:
    """The cluster's release watcher, one look (the release-check pipeline's step and
    `release check`): the model's running release is judged by the local gate's code on
    the traffic sink's rows since it started (integrations/k8s/release.py `verdict`),
    and ended as a local release is (`end_release`: promote or abort, in MLflow and the
    history, `by` "release (...) by the gate") when the gate decides; inconclusive leaves
    it running for the next look (the gate aborts it once its budget is spent).

    Returns {outcome: promoted | aborted | inconclusive | idle, reasons, next, state,
    evidence}. The local stack's front judges its own releases: a ConfigError there."""
    from integrations.k8s import release as cluster_release

    deployer = deployers.active_deployer()
    if getattr(deployer, "front_of", None):
        raise ConfigError(
            f"On the local stack the model's front judges the release of {model_name} "
            "live and its own watcher ends it; `release check` is the cluster's watcher. "
            f"`python run.py release status --model-name {model_name}` shows the evidence."
        )
    with locks.model_lock(model_name, "release check", logger.info):
        state = deployers.release_state(deployer, model_name) or {}
        if not state.get("active"):
            said = f"its last release is {state['state']}" if state else "it has no release"
            return {"outcome": "idle", "reasons": [f"nothing to judge: {said}"],
                    "next": "", "state": state, "evidence": {}}  # fmt: skip
        verdict = cluster_release.verdict(model_name, state, now)
        result = {"state": state, "evidence": verdict["evidence"], "reasons": verdict["reasons"]}
        if verdict["outcome"] is None:
            return result | {"outcome": "inconclusive", "next": verdict["next"]}
        champions.repair(model_name)
        label = release_label(state.get("mode", ""), state.get("percent"))
        reason = "; ".join(verdict["reasons"])
        ended = end_release(
            deployer, model_name, state, verdict["outcome"], f"{label} by the gate", reason
        )
        ended = {**ended, "evidence": verdict["evidence"]}
        return result | {"outcome": OUTCOMES[verdict["outcome"]], "next": "", "state": ended}
