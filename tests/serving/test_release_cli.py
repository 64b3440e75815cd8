"""Releases end to end on the local stack, through the CLI's functions (app/release.py):
two trained versions, a canary and a shadow beside the served champion, promoted or
aborted by hand, and the detached watcher promoting a release its front decided."""

from __future__ import annotations

import os
import signal
import time

import pytest
from zenml.client import Client

from app import champions, release, repair, runner, serving
from core.errors import ConfigError
from integrations.mlflow import champion
from integrations.mlflow import registry as mlflow_registry
from integrations.seldon_local import client, process
from integrations.zenml_adapters import deployer as deployers
from steps.deployment.release import pending_release
from tests.conftest import FAST_TRAINER
from tests.serving.helpers import stop_all, train_champion

MODEL = "release-model"


@pytest.fixture(scope="module")
def versions(module_store):
    """v1 the served champion; v2 trained under `release.mode: canary`: it passed the
    gate (a lenient one) and awaits its release, the champion unmoved."""
    _, test, _ = train_champion(MODEL)
    runner.deploy(None, {"model_name": MODEL, "protocol": "seldon"})
    second = runner.train(
        None,
        {
            "model_name": MODEL,
            **FAST_TRAINER,
            "gate.min_improvement": -1.0,
            "release.mode": "canary",
        },
    )
    yield test, second
    stop_all()


def send(service_url: str, test, count: int) -> None:
    rows = test.features
    for i in range(count):
        client.predict(service_url, "seldon", rows.iloc[[i % len(rows)]])


def endpoint() -> str:
    return serving.current_service(MODEL).prediction_url


def lines():
    said: list[str] = []
    return said, lambda text="", **_: said.append(str(text))


def test_a_version_that_passed_the_gate_in_release_mode_waits_for_its_release(versions):
    _, second = versions
    assert not second.decision.promoted and second.decision.release == "canary"
    assert "awaits a canary release" in second.decision.reason
    assert champion.current(MODEL).version == "1"
    tags = mlflow_registry.version_tags(MODEL, "2")
    assert tags[champion.OFFLINE_GATE_TAG] == "passed"
    assert tags[champion.GATE_CHAMPION_TAG] == "1"  # whom it passed against
    assert pending_release(MODEL) == "2"


def test_a_canary_shows_its_evidence_and_a_promote_by_hand_moves_the_champion(versions):
    test, _ = versions
    said, echo = lines()
    state = release.start(MODEL, "canary", 50, None, echo, watch=False)
    assert state["active"] and state["candidate"]["version"] == "2"
    # the task recorded with v2 at registration reaches the gate (not guessed from answers)
    assert state["candidate"]["task"] == "classification"
    assert state["champion"]["version"] == "1"
    with pytest.raises(ConfigError, match="A canary release of release-model v2 is running"):
        release.start(MODEL, "canary", 10, None, echo, watch=False)
    send(endpoint(), test, 40)

    state = release.status(MODEL, echo)
    evidence = state["evidence"]
    assert evidence["candidate"]["requests"] > 0 and evidence["champion"]["requests"] > 0
    assert evidence["candidate"]["requests"] + evidence["champion"]["requests"] >= 40
    shown = "\n".join(said)
    assert f"candidate: v2  {evidence['candidate']['requests']} requests" in shown
    assert "shares:    candidate 50% of requests, champion 50%" in shown

    listed = "\n".join(serving.status(MODEL, echo))
    assert "release-model v1 [seldon] up" in listed
    assert "release-model v2 candidate (canary 50%, release running) up" in listed
    assert serving.served_version(MODEL) == "1"  # the champion's record is still the served one
    old_pid = serving.current_service(MODEL).pid

    ended = release.promote(MODEL, echo)
    assert ended["state"] == "promoted"
    assert champion.current(MODEL).version == "2"
    assert str(champion.zenml_version(MODEL).run_metadata[champion.MLFLOW_VERSION_KEY]) == "2"
    assert serving.served_version(MODEL) == "2"
    active = deployers.active_deployer()
    assert deployers.candidates(active, MODEL) == []
    assert not process.is_alive(old_pid)
    send(endpoint(), test, 5)  # the endpoint answers, from v2

    found = champions.history(MODEL, echo)
    change = found.events[0]
    assert change["version"] == "2" and change["by"].startswith("release (canary 50%) by hand")
    (entry,) = found.releases
    assert (entry["version"], entry["champion"], entry["outcome"]) == ("2", "1", "promoted")
    shown = "\n".join(said)
    # one line for the move, naming the release as who and why (not a second release line)
    assert "v2    release (canary 50%) by hand by" in shown
    assert "promoted over v1: promoted by hand (release promote)" in shown
    assert "beside v1: promoted" not in shown


def test_an_aborted_shadow_leaves_the_champion_and_stops_its_server(versions):
    test, _ = versions
    said, echo = lines()
    # Nothing newer than the champion v2 passed the gate: without --version, no release.
    with pytest.raises(ConfigError, match="newer than the champion"):
        release.start(MODEL, "shadow", None, None, echo, watch=False)
    # as if the offline gate had failed v1: refused before any server starts, unless --force
    mlflow_registry.tag_version(MODEL, "1", {champion.OFFLINE_GATE_TAG: "failed"})
    try:
        with pytest.raises(ConfigError, match="v1 of 'release-model' did not pass the offline"):
            release.start(MODEL, "shadow", None, "1", echo, watch=False)
        assert deployers.candidates(deployers.active_deployer(), MODEL) == []
        state = release.start(MODEL, "shadow", None, "1", echo, watch=False, force=True)  # v1
    finally:  # as it was, for the module's other tests
        mlflow_registry.tag_version(MODEL, "1", {champion.OFFLINE_GATE_TAG: "passed"})
    assert state["thresholds"]["require_labels"]  # promoted only on labelled evidence
    assert (
        "v1 has no offline-gate pass against the champion; --force released it anyway"
        in "\n".join(said)
    )
    assert state["mode"] == "shadow" and state["candidate"]["version"] == "1"
    assert "v1 is older than the champion v2" in "\n".join(said)
    (candidate,) = deployers.candidates(deployers.active_deployer(), MODEL)
    pid = candidate.pid
    assert process.is_alive(pid)
    send(endpoint(), test, 10)
    # a champion moved by hand meanwhile would be taken for the release's promote
    with pytest.raises(ConfigError, match="is running, so this champion set changed nothing"):
        champions.set_by_hand(MODEL, "1", echo)
    with pytest.raises(ConfigError, match="is running, so this rollback changed nothing"):
        champions.rollback(MODEL, None, echo)
    assert champion.current(MODEL).version == "2"

    ended = release.abort(MODEL, "not today", echo)
    assert ended["state"] == "aborted"
    assert champion.current(MODEL).version == "2"
    assert serving.served_version(MODEL) == "2"
    assert deployers.candidates(deployers.active_deployer(), MODEL) == []
    assert not process.is_alive(pid)
    latest = champion.release_history(MODEL)[0]
    assert (latest["version"], latest["outcome"], latest["reason"]) == ("1", "aborted", "not today")
    assert champion.history(MODEL)[0]["version"] == "2"  # no champion change for an abort
    with pytest.raises(ConfigError, match="already aborted"):
        release.abort(MODEL, None, echo)


def test_the_watcher_promotes_a_release_the_front_decided(versions):
    test, _ = versions
    said, echo = lines()
    # Few requests decide; a new server's first answers are slow on a busy machine:
    # latency is not what this test is about.
    small = {"min_requests": 15, "max_p95_latency_ratio": 1000,
             "max_p50_latency_increase_ms": 10_000, "budget_seconds": 600}  # fmt: skip
    # v1 passed the gate when there was no champion: that proves nothing against v2
    assert champion.current(MODEL).version == "2"
    assert mlflow_registry.version_tags(MODEL, "1")[champion.GATE_CHAMPION_TAG] == "none"
    with pytest.raises(ConfigError, match="against no champion, but the champion is now v2"):
        release.start(MODEL, "canary", 50, "1", echo, watch=False)
    assert deployers.candidates(deployers.active_deployer(), MODEL) == []
    # as if the gate had judged v1 against v2 (kept: later tests release v1 beside v2)
    mlflow_registry.tag_version(MODEL, "1", {champion.GATE_CHAMPION_TAG: "2"})
    state = release.start(MODEL, "canary", 50, "1", echo, watch=True, thresholds=small)
    assert state["thresholds"]["min_requests"] == 15
    assert not state["thresholds"].get("require_labels")  # proven: the front may promote it
    active = deployers.active_deployer()
    # the watcher killed (kill -9): the front starts another within seconds, no command
    pid_file = active.front_of(MODEL).dir / "release-watch.pid"
    first = int(pid_file.read_text())
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _new_watcher(pid_file, first):
        time.sleep(0.2)
    assert _new_watcher(pid_file, first)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and champion.current(MODEL).version != "1":
        if (active.release_state(MODEL) or {}).get("state") == "running":
            send(endpoint(), test, 10)
        time.sleep(0.5)
    log = active.front_of(MODEL).dir / "release-watch.log"
    assert champion.current(MODEL).version == "1", log.read_text() if log.exists() else "no log"
    deadline = time.monotonic() + 60  # the watcher ends the release after the move
    while time.monotonic() < deadline and serving.served_version(MODEL) != "1":
        time.sleep(0.5)
    assert serving.served_version(MODEL) == "1"
    change = champion.history(MODEL)[0]
    assert change["by"].startswith("release (canary 50%) by the gate")
    deadline = time.monotonic() + 60  # its last act: the release's history entry
    while (
        time.monotonic() < deadline and champion.release_history(MODEL)[0]["outcome"] != "promoted"
    ):
        time.sleep(0.5)
    latest = champion.release_history(MODEL)[0]
    assert (latest["version"], latest["outcome"]) == ("1", "promoted")
    assert Client().active_stack.model_deployer.candidates_for(MODEL) == []


def _new_watcher(pid_file, old: int) -> bool:
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return False
    return pid != old and process.is_alive(pid)


def test_deploy_in_canary_mode_releases_the_version_the_gate_passed(versions):
    third = runner.train(
        None,
        {
            "model_name": MODEL,
            **FAST_TRAINER,
            "gate.min_improvement": -1.0,
            "release.mode": "canary",
        },
    )
    assert third.decision.release == "canary" and champion.current(MODEL).version == "1"
    assert pending_release(MODEL) == "3"
    info = runner.deploy(None, {"model_name": MODEL, "release.mode": "canary"})
    assert info.model_version == "1"  # the champion still serves; v3 beside it
    assert info.details["RELEASE"].startswith("v3 (canary 10%) beside the champion v1: running")
    active = deployers.active_deployer()
    pid_file = active.front_of(MODEL).dir / "release-watch.pid"
    watcher = int(pid_file.read_text())
    assert process.is_alive(watcher)
    with pytest.raises(ConfigError, match="release of release-model v3 is running"):
        runner.deploy(None, {"model_name": MODEL, "protocol": "v2"})  # a swap would pull it
    said, echo = lines()
    release.abort(MODEL, None, echo)
    deadline = time.monotonic() + 60  # the watcher sees the abort and ends
    while time.monotonic() < deadline and process.is_alive(watcher):
        time.sleep(0.5)
    assert not process.is_alive(watcher)
    assert serving.served_version(MODEL) == "1" and champion.current(MODEL).version == "1"
    assert pending_release(MODEL) is None  # released once: a plain deploy swaps nothing now


def test_a_promote_cut_off_after_the_champion_moved_is_completed_by_serve_repair(versions):
    said, echo = lines()
    release.start(MODEL, "canary", 20, "2", echo, watch=False)
    # What `release promote` had done when it was killed: the champion records moved, the
    # traffic not yet (the candidate must then get it, never the other way round).
    champion.set_by_hand(MODEL, "2", "a promote that was cut off")
    assert serving.served_version(MODEL) == "1"
    # and the candidate's server was killed meanwhile: once promoted, the front restarts it
    (candidate,) = deployers.candidates(deployers.active_deployer(), MODEL)
    process.stop_group(candidate.pid, timeout=10)
    fixed = repair.repair(MODEL, echo)
    assert any("completed the promote of release-model v2" in line for line in fixed), fixed
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and serving.served_version(MODEL) != "2":
        time.sleep(1)
    assert serving.served_version(MODEL) == "2" and champion.current(MODEL).version == "2"
    assert deployers.candidates(deployers.active_deployer(), MODEL) == []
    latest = champion.release_history(MODEL)[0]
    assert (latest["version"], latest["outcome"]) == ("2", "promoted")


def test_a_release_the_front_ended_alone_is_cleaned_up_by_the_next_release_command(versions):
    said, echo = lines()
    release.start(MODEL, "shadow", None, "1", echo, watch=False)
    active = deployers.active_deployer()
    (candidate,) = deployers.candidates(active, MODEL)
    pid = candidate.pid
    # The front ends a release on its own (gate or budget) while no watcher runs.
    active.front_of(MODEL).release_end("abort", "budget", "undecided after the budget")
    with pytest.raises(ConfigError, match="is already aborted by budget"):
        release.promote(MODEL, echo)
    assert not process.is_alive(pid)
    assert deployers.candidates(active, MODEL) == []
    latest = champion.release_history(MODEL)[0]
    assert (latest["version"], latest["outcome"]) == ("1", "aborted")
    assert "by the budget" in latest["by"]
    assert champion.current(MODEL).version == "2" and serving.served_version(MODEL) == "2"
