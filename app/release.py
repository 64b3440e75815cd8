"""`release`: a candidate version beside the champion (canary or shadow), promoted or
aborted on live evidence (issue #27).

The local stack's front splits or mirrors the traffic, gathers the evidence and runs the
gate (core/release/gate.py); `release start` spawns a detached `release watch`
that finishes a decided release: promote = the champion's alias + stage move (one history
entry, `by` "release (...)"), then all traffic to the candidate, then the old server
goes; abort = the candidate stops. Anything cut off is put right by the next release
command or `serve repair` (`settle`), never leaving the candidate serving while the
champion records name the old version.
"""

from __future__ import annotations

import getpass
import os
import time

from app.config import model_name as resolve_name
from core.errors import ConfigError, ZenkubeError

OUTCOMES = {"promote": "promoted", "abort": "aborted"}


# -- the commands' work -------------------------------------------------------------------
def release_spec(config=None):
    """The `release:` block of configs/deployment.yaml (core.specs.ReleaseSpec)."""
    from app.config import load_run_config

    return load_run_config("deployment", config, stack_kind="local").params.release


def start(
    model_name: str | None,
    mode: str | None,
    percent: float | None,
    version: str | None,
    echo=print,
    watch: bool = True,
    thresholds: dict | None = None,
    force: bool = False,
) -> dict:
    """`release start`: the version as a canary (PCT %) or shadow beside the champion
    (`thresholds`: on top of the config's). A version that did not pass the offline gate
    is refused, unless `force`: then it is promoted only on labelled evidence."""
    from core.specs import ReleaseSpec
    from steps.deployment.release import start_release

    name = resolve_name(model_name, "deployment")
    spec = release_spec()
    mode = mode or (spec.mode if spec.mode != "swap" else "canary")
    percent = percent if percent is not None else spec.canary_percent
    what = f"a canary at {percent:g}%" if mode == "canary" else "a shadow"
    echo(f"zenkube: starting {what} of '{name}'" + (f" v{version}" if version else "") + "...")
    if version is not None:
        from integrations.mlflow import champion
        from integrations.mlflow import registry as mlflow_registry
        from steps.deployment.release import older_than_champion

        mlflow_registry.configure_from_stack()
        current = champion.current(name)
        older = older_than_champion(str(version), current.version if current else None)
        if older:
            echo(f"zenkube: {older}.")
    with _locked(name, "release start", echo):
        settle(name, echo)
        limits = {**spec.thresholds.model_dump(), **(thresholds or {})}
        release = ReleaseSpec(mode=mode, canary_percent=percent, thresholds=limits)
        state = start_release(name, version, release, watch=watch, force=force)
    if (state.get("thresholds") or {}).get("require_labels") and not limits.get("require_labels"):
        echo(
            f"zenkube: v{(state.get('candidate') or {}).get('version')} has no offline-gate "
            "pass against the champion; --force released it anyway, so it is promoted only on labelled "
            "evidence (or by hand)."
        )
    show(name, state, echo)
    return state


def status(model_name: str | None, echo=print, view=None) -> dict | None:
    """`release status`: the current or last release, its evidence and what decides next.
    With `view` (app/serving.py's LocalDeployerView), read without ZenML."""
    name = resolve_name(model_name, "deployment")
    if view is not None:
        deployer, state = view, view.release_state(name)
    else:
        from integrations.zenml_adapters import deployer as deployers

        deployer = deployers.active_deployer()
        state = deployers.release_state(deployer, name)
    front_of = getattr(deployer, "front_of", None)
    last = front_of(name).release_status() if front_of and not state else None
    if last and last.get("stale"):  # the front is down: what it last wrote
        interrupted(name, last, front_of(name).keeper_alive(), echo)
        return last
    if not state:
        echo(f"'{name}' has no release. Start one: python run.py release start --model-name {name}")
        return None
    if state.get("active") and state.get("backend"):  # a cluster release: the gate's look now
        state = with_verdict(name, state)
    show(name, state, echo)
    if state.get("active") and getattr(deployer, "front_of", None) and not _watched(deployer, name):
        echo(
            "  watcher:   not running, so nothing finishes the release when it is decided "
            "(the front aborts a decided release nobody ends after 5 minutes): `python run.py "
            f"serve repair --model-name {name}` starts one"
        )
    return state


def with_verdict(name: str, state: dict, now: float | None = None) -> dict:
    """A cluster release's state with the evidence the traffic sink's rows give now and
    what the gate makes of it (integrations/k8s/release.py `verdict`: the local gate's
    code), so `release status` shows the same table as on the local stack."""
    from core.errors import is_interrupt
    from integrations.k8s import release as cluster_release

    try:
        verdict = cluster_release.verdict(name, state, now)
    except Exception as exc:  # the bucket unreadable, say: the record still shows
        if is_interrupt(exc):
            raise
        why = f"{type(exc).__name__}: {str(exc)[:200]}"
        return {
            **state,
            "next": f"{state.get('next', '')} (the sink's rows could not be read: {why})",
        }
    out = {**state, "evidence": verdict["evidence"]}
    if state.get("state") != "running":
        return out
    if verdict["outcome"]:
        out["next"] = (
            f"the gate decides {verdict['outcome']} ({'; '.join(verdict['reasons'])}); the "
            "release watcher ends it at its next run (`python run.py release check` does it now)"
        )
    else:
        out["next"] = (
            f"{verdict['next']}. The release watcher (`python run.py release schedule`) "
            "looks again at its next run"
        )
    return out


def check(model_name: str | None, echo=print) -> dict:
    """`release check`: the cluster's release watcher, one look, here (what each run of the
    release-check pipeline does): judge the running release and end it if the gate decides."""
    from steps.deployment.release import check_cluster_release

    name = resolve_name(model_name, "deployment")
    result = check_cluster_release(name)
    if result["outcome"] == "idle":
        echo(f"'{name}': {result['reasons'][0]}.")
        return result
    state = {**result["state"], "evidence": result["evidence"]}
    if result["outcome"] == "inconclusive":
        state["next"] = f"inconclusive: {result['next']}; the next look decides"
    show(name, state, echo)
    return result


def schedule(model_name: str | None, cron: str, echo=print) -> bool:
    """`release schedule`: the release-check pipeline of the model as a recurring run of the
    stack's orchestrator (KFP), as `run.py schedule` schedules the loop; the local
    orchestrator cannot schedule, so the message is a crontab line (True: scheduled)."""
    import sys

    from zenml.client import Client
    from zenml.config.schedule import Schedule

    from app import runner
    from app.config import load_run_config
    from core.paths import REPO_ROOT, zenkube_home

    name = resolve_name(model_name, "deployment")
    run_config = load_run_config("release_check", overrides={"model_name": name})
    orchestrator = Client().active_stack.orchestrator
    if orchestrator.flavor in ("local", "local_docker"):
        echo(
            f"The '{orchestrator.flavor}' orchestrator of the active stack cannot schedule "
            "runs; nothing was scheduled. Run the same check from cron (`crontab -e`):\n"
            f"{cron} cd {REPO_ROOT} && {sys.executable} run.py release check --model-name "
            f"'{name}' >> {zenkube_home()}/logs/cron.log 2>&1"
        )
        return False
    runner.run_pipeline(run_config, schedule=Schedule(cron_expression=cron))
    echo(
        f"Scheduled the release-check pipeline of '{name}' with cron '{cron}' "
        f"({orchestrator.flavor}: a recurring run, listed in the Kubeflow Pipelines UI): each "
        "run judges the running release, if any, and promotes or aborts it when the gate decides."
    )
    return True


def _watched(deployer, name: str) -> bool:
    from integrations.seldon_local.local_records import watcher_alive

    return watcher_alive(deployer.front_of(name).dir, name)


def interrupted(name: str, last: dict, restarting: bool, echo=print) -> list[str]:
    """`release status` while the model's front is down: one story from what the front
    last wrote (`last`): an active release is interrupted, and what happens next depends
    on whether its keeper runs (`restarting`: it restarts the front, which resumes the
    release) or not (a deploy serves the champion again, ending the release)."""
    version = (last.get("candidate") or {}).get("version")
    champ = (last.get("champion") or {}).get("version")
    was = last.get("state")
    if not last.get("active"):  # it had ended before the front went down
        echo(
            f"The model's front is not running; its last release ('{name}' v{version}) had "
            f"already ended ({was}). `python run.py deploy --model-name {name}` serves "
            f"v{champ} again. What the front last wrote:"
        )
        return show(name, {**last, "active": False}, echo)
    if restarting:
        echo(
            f"The model's front is restarting (its keeper starts it again within seconds), "
            f"so the release of '{name}' v{version} is interrupted: no request is answered "
            "until it is back. The restarted front resumes the release as it was (same "
            "candidate, share, budget, decision and the evidence it had written, at most "
            "half a second old). What the front last wrote:"
        )
        following = "the front resumes the release when it is back (seconds)"
    else:
        echo(
            f"The model's front is not running, nor its keeper, so the release of '{name}' "
            f"v{version} is interrupted: no traffic reaches either version. What the front "
            "last wrote:"
        )
        following = (
            f"`python run.py deploy --model-name {name}` serves the champion v{champ} again "
            f"and ends this release as aborted (v{version} was never made the champion)"
        )
    return show(name, {**last, "active": False, "state": "interrupted", "next": following}, echo)


def promote(model_name: str | None, echo=print) -> dict:
    """`release promote` by hand: the candidate becomes the champion and takes all traffic."""
    name = resolve_name(model_name, "deployment")
    by = f"by hand by {getpass.getuser()}"
    return finish(name, "promote", by, "promoted by hand (release promote)", echo)


def abort(model_name: str | None, reason: str | None, echo=print) -> dict:
    """`release abort` by hand: the candidate gets no more traffic and stops."""
    name = resolve_name(model_name, "deployment")
    by = f"by hand by {getpass.getuser()}"
    return finish(name, "abort", by, reason or "aborted by hand (release abort)", echo)


def finish(name: str, outcome: str, by: str, reason: str, echo=print) -> dict:
    """End the active release of `name` (`by`: who, after "release (mode)").

    promote: champion.promote (alias + stage + history) first, then the front sends all
    traffic to the candidate and the old server goes; if the champion cannot be moved,
    the release is aborted instead. abort: no more candidate traffic, its server stops.
    Both are recorded in the release history. Under the model's lock, uninterrupted."""
    from integrations.zenml_adapters import deployer as deployers
    from steps.deployment.release import end_release, release_label

    deployer = deployers.active_deployer()
    with _locked(name, f"release {outcome}", echo):
        settle(name, echo)
        state = deployers.release_state(deployer, name) or {}
        if not state.get("active"):
            raise ConfigError(_not_active(name, state))
        label = release_label(state.get("mode", ""), state.get("percent"))
        ended = end_release(deployer, name, state, outcome, f"{label} {by}", reason)
    show(name, ended, echo)
    return ended


def settle(name: str, echo=print, revive_watcher: bool = False) -> list[str]:
    """Put right what a cut-off release left, under the model's lock (every release
    command and `serve repair` run it): a champion already moved to the candidate gets the
    traffic too (the promote is completed); a champion moved to a candidate whose release
    was aborted meanwhile is put back; an ended release gets its history entry; candidate
    servers and records follow their release (integrations/zenml_adapters/deployer.py repair_release)."""
    from app.serving import served_version
    from integrations.mlflow import champion
    from integrations.zenml_adapters import deployer as deployers
    from steps.deployment.release import release_label, spawn_watcher, watcher_alive

    deployer = deployers.active_deployer()
    fixed: list[str] = []
    with _locked(name, "release repair", echo):
        champion.repair(name)
        state = deployers.release_state(deployer, name) or {}
        if not state:
            return fixed
        candidate = str((state.get("candidate") or {}).get("version"))
        was = str((state.get("champion") or {}).get("version"))
        current = champion.current(name)
        now = current.version if current else None
        label = release_label(state.get("mode", ""), state.get("percent"))
        if state.get("active") and now == candidate:
            why = (
                f"v{candidate} had become the champion; the promote was cut off before the "
                "traffic followed"
            )
            ended = deployers.release_end(deployer, name, "promote", f"{label} repair", why)
            champion.record_release(name, ended, "promoted", f"{label} repair", why)
            fixed.append(f"completed the promote of {name} v{candidate}: {why}")
        elif not state.get("active"):
            if state.get("state") == "aborted" and now == candidate != was:
                if served_version(name) != candidate:
                    champion.undo_move(name, was, candidate, "its release was aborted")
                    fixed.append(
                        f"the champion of {name} is v{was} again: its release to v{candidate} "
                        "was aborted before the traffic followed the champion move"
                    )
            decision = state.get("decision") or {}
            outcome = "promoted" if state.get("state") == "promoted" else "aborted"
            by = f"{label} by the {decision.get('by') or 'front'}"
            reason = "; ".join(decision.get("reasons") or []) or "ended"
            if champion.record_release(name, state, outcome, by, reason):
                fixed.append(f"recorded the {outcome} release of {name} v{candidate}: {reason}")
        elif (
            (state.get("state") == "decided" or revive_watcher)
            and getattr(deployer, "front_of", None)  # a local release: the watcher's job
            and not watcher_alive(deployer, name)
        ):
            # the watcher that would finish it is gone (killed): a new one watches (and
            # finishes a decided release once this command lets go of the lock)
            spawn_watcher(deployer, name)
            fixed.append(
                f"started a release watcher for {name} v{candidate}: none was running to "
                "finish the release when it is decided"
            )
        fixed += deployers.repair(deployer, name)
    return fixed


def watch(model_name: str, state_dir: str, interval: float = 0.5, echo=print) -> str:
    """`release watch` (spawned by `release start`): poll the model's front, without
    ZenML, until its release is decided or over; then finish it (promote) or clean up
    after it (abort). Returns the outcome it saw."""
    from integrations.seldon_local.front import ModelFront

    front = ModelFront(state_dir, model_name)
    if not front.dir.exists():
        echo(f"{_now()} the model has no front folder ({front.dir}): nothing to watch")
        return "front gone"
    lock = _watch_lock(front.dir)
    if lock is None:
        echo(f"{_now()} another watcher watches this release: this one stops")
        return "duplicate"
    try:
        return _watch(model_name, front, interval, echo)
    finally:  # ended by itself: the front must not start another (it does for a killed one)
        pid_file = front.dir / "release-watch.pid"
        try:
            if int(pid_file.read_text()) == os.getpid():
                pid_file.unlink()
        except (OSError, ValueError):
            pass
        os.close(lock)


def _watch_lock(folder) -> int | None:
    """An exclusive lock on the model's watcher (two started at once: one watches)."""
    import fcntl

    try:
        fd = os.open(folder / "release-watch.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _watch(model_name: str, front, interval: float, echo) -> str:
    started, gone_since, state = None, None, {}
    echo(f"{_now()} watching the release of '{model_name}' (front: {front.dir})")
    while True:
        if not front.dir.exists():  # `make clean` removed the state: nothing to finish
            echo(f"{_now()} the front's folder is gone: stopping")
            return "front gone"
        if front.status() is None:
            gone_since = gone_since or time.monotonic()
            if time.monotonic() - gone_since > 30:
                echo(f"{_now()} the front is gone: stopping; `serve repair` cleans up")
                return "front gone"
            time.sleep(interval)
            continue
        gone_since = None
        state = front.release_status() or {}
        started = started if started is not None else state.get("started_at")
        if state.get("started_at") != started:
            echo(f"{_now()} another release started: this watcher stops")
            return "replaced"
        if state.get("state") != "running":
            break
        time.sleep(interval)
    decision = state.get("decision") or {}
    echo(f"{_now()} the release is {state.get('state')}: {decision}")
    if state.get("state") in OUTCOMES.values() and str(decision.get("by")).startswith("release ("):
        # ended by a release command (`finish`), which recorded and cleaned up after it
        echo(f"{_now()} ended by a command that put everything right: nothing to finish")
        return str(state.get("state"))
    from app import session

    session.ready(echo, runs_on_stack=False)
    reasons = "; ".join(decision.get("reasons") or []) or "decided by the front"
    try:
        if state.get("state") == "decided" and decision.get("outcome") == "promote":
            finish(model_name, "promote", f"by the {decision.get('by') or 'gate'}", reasons, echo)
            return "promoted"
        if state.get("state") == "decided":
            finish(model_name, "abort", f"by the {decision.get('by') or 'gate'}", reasons, echo)
            return "aborted"
        settle(model_name, echo)
    except ZenkubeError as exc:
        echo(f"{_now()} {exc}")
        return "failed"
    return str(state.get("state"))


# -- printing -------------------------------------------------------------------------------
def show(name: str, state: dict, echo=print) -> list[str]:
    """The release as `release status` prints it (lines, also returned)."""
    lines = describe(name, state)
    for line in lines:
        echo(line)
    return lines


def describe(name: str, state: dict) -> list[str]:
    """Readable lines of a release state (RELEASE-DESIGN.md's shape; absent keys are
    left out rather than guessed)."""
    mode, percent = state.get("mode", "?"), state.get("percent")
    champ = (state.get("champion") or {}).get("version", "?")
    cand = (state.get("candidate") or {}).get("version", "?")
    share = f"canary {percent:g}%" if mode == "canary" and percent is not None else mode
    since = state.get("started_at")
    ended = state.get("ended_at")
    took = ((ended or time.time()) - since) if since else None
    when = f"started {_clock(since)}" if since else ""
    if took is not None and (ended or state.get("active")):
        when += f", {'ran' if ended else 'running for'} {took:.0f}s"
    lines = [
        f"Release of '{name}': v{cand} ({share}) beside champion v{champ}: "
        f"{state.get('state', '?')}" + (f" ({when})" if when else "")
    ]
    if mode == "canary" and percent is not None:
        lines.append(
            f"  shares:    candidate {percent:g}% of requests, champion {100 - percent:g}%"
        )
    elif mode == "shadow":
        lines.append(
            "  shares:    champion answers 100%; the candidate gets a copy of each (unseen)"
        )
    evidence = state.get("evidence") or {}
    from core.release.gate import DEFAULTS

    # a release records only the thresholds it was given (a cluster's: its budget)
    limits = {**DEFAULTS, **state["thresholds"]} if state.get("thresholds") else {}
    for role, version in (("champion", champ), ("candidate", cand)):
        stats = evidence.get(role)
        if stats:
            lines.append(f"  {role + ':':<10} v{version}  {_stats(stats)}")
    shift = evidence.get("shift") or {}
    if shift:
        value = shift.get("value")
        lines.append(
            f"  shift:     {shift.get('metric', 'distance')} "
            f"{'- (no predictions to compare yet)' if value is None else _num(value)}"
            " between the two versions' predictions"
            + (f" (aborts over {limits['max_prediction_shift']:g})" if limits else "")
        )
    quality = evidence.get("quality") or {}
    if quality:
        metric = quality.get("metric") or "quality"
        if quality.get("drop") is None:
            lines.append(f"  quality:   {metric}: not judged yet (feedback labels for both needed)")
        else:
            lines.append(
                f"  quality:   {metric} champion {_num(quality.get('champion'))}, candidate "
                f"{_num(quality.get('candidate'))}: relative drop {_num(quality['drop'])} "
                f"(± {_num(quality.get('se'))})"
                + (f"; aborts over {limits['max_quality_drop']:g}" if limits else "")
            )
    backend = state.get("backend") or {}
    if backend:  # a cluster release: what the operator reports (integrations/k8s/release.py)

        def said(ok, why) -> str:
            return "ready" if ok else f"not ready ({why or 'no status yet'})"

        line = f"  cluster:   {backend.get('kind')} {backend.get('name')}: "
        line += said(backend.get("ready"), backend.get("why_not_ready"))
        if "candidate_ready" in backend:
            line += "; candidate " + said(
                backend["candidate_ready"], backend.get("candidate_why_not")
            )
        lines.append(line)
        if backend.get("routing"):
            lines.append(f"  routing:   {backend['routing']}")
    for at in state.get("resumed_at") or []:
        lines.append(
            f"  restarted: the front restarted at {_clock(at)} and resumed the release "
            "with the evidence it had (answers not yet labelled then cannot be joined "
            "to feedback)"
        )
    decision = state.get("decision")
    if decision:
        reasons = "; ".join(decision.get("reasons") or [])
        lines.append(
            f"  decision:  {decision.get('outcome')} by {decision.get('by')}"
            + (f" at {_clock(decision['at'])}" if decision.get("at") else "")
            + (f": {reasons}" if reasons else "")
        )
    else:
        lines.append("  decision:  none yet")
    if limits and state.get("active") and evidence:  # a live gate judges (the local front)
        lines.append(
            f"  bounds:    candidate 5xx/4xx share at most +{limits['max_5xx_increase']:.0%}/"
            f"+{limits['max_4xx_increase']:.0%} over the champion's, p95 latency at most "
            f"{limits['max_p95_latency_ratio']:g}×, median latency at most "
            f"+{limits['max_p50_latency_increase_ms']:g} ms (judged after "
            f"{limits['min_requests']:g} candidate requests)"
        )
    if limits.get("require_labels") and state.get("active"):
        lines.append(
            f"  promote:   only on labelled evidence (require_labels): {limits['min_labelled']:g}"
            "+ feedback-labelled answers per version that show its quality within "
            f"{limits['max_quality_drop']:.0%} of the champion's; without them the budget "
            "aborts it"
        )
    if state.get("next"):
        lines.append(f"  next:      {state['next']}")
    if state.get("active"):
        lines.append(
            f"  by hand:   python run.py release promote --model-name {name}   |   "
            f"python run.py release abort --model-name {name}"
        )
    return lines


def _stats(stats: dict) -> str:
    parts = [f"{stats.get('requests', 0)} requests"]
    for key in ("ok", "4xx", "5xx", "fallbacks"):
        if stats.get(key):
            parts.append(f"{stats[key]} {key}")
    latency = stats.get("latency_ms") or {}
    if latency:
        figures = "/".join(
            "-" if latency.get(k) is None else f"{latency[k]:.0f}" for k in ("p50", "p95", "p99")
        )
        parts.append(f"p50/p95/p99 {figures} ms")
    if stats.get("labelled"):
        parts.append(f"{stats['labelled']} labelled")
    if stats.get("quality") is not None:
        parts.append(f"quality {_num(stats['quality'])}")
    return ", ".join(parts)


def _num(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(epoch))


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def _not_active(name: str, state: dict) -> str:
    if not state:
        return (
            f"'{name}' has no release to end. Start one: python run.py release start "
            f"--model-name {name}"
        )
    decision = state.get("decision") or {}
    reasons = "; ".join(decision.get("reasons") or [])
    return (
        f"The last release of '{name}' (v{(state.get('candidate') or {}).get('version')}) is "
        f"already {state.get('state')}"
        + (f" by {decision.get('by')}: {reasons}" if decision else "")
        + f"; nothing to end. `python run.py history --model-name {name}` lists releases."
    )


def _locked(name: str, command: str, echo):
    from core.champion import locks

    return locks.model_lock(name, command, echo)
