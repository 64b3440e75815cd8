"""A release's control API on the front's socket (router/ as a process, no model server
behind it): start, refuse a second one, status, promote and abort, release.json."""

from __future__ import annotations

import json

import pytest

from integrations.seldon_local import process
from integrations.seldon_local.front import FrontError, ModelFront, control_request


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    """One front for the module: the refusals first (they leave no release), then the
    lifecycle test."""
    front = ModelFront(tmp_path_factory.mktemp("release"), "m")
    front.start(process.free_port(), process.free_port(), served={"protocol": "seldon"})
    yield front
    front.stop()


SERVED = {"version": "4", "columns": json.dumps(["a", "b"])}


@pytest.mark.parametrize(
    "body,reason",
    [
        ({"mode": "blue-green", "port": 1}, '"mode" is "canary" or "shadow"'),
        ({"mode": "canary", "percent": 0, "port": 1}, "over 0 and at most 100"),
        ({"mode": "canary", "percent": 150, "port": 1}, "over 0 and at most 100"),
        ({"mode": "canary"}, '"port" is the candidate'),
        ({"mode": "canary", "port": 1, "thresholds": {"min_requets": 5}}, "unknown release"),
        ({"mode": "canary", "port": 1, "thresholds": {"min_requests": -5}}, "a number >= 0"),
    ],
)
def test_a_bad_release_body_is_refused_with_the_reason(front, body, reason):
    code, answer = control_request(front.control_socket, "PUT", "/release", body)
    assert code == 400 and reason in answer["error"], answer
    code, answer = control_request(front.control_socket, "GET", "/release")
    assert code == 200 and answer == {}


def test_the_candidate_cannot_be_the_champion(front):
    code, answer = control_request(
        front.control_socket,
        "PUT",
        "/release",
        {"mode": "canary", "port": front.status()["backend"]},
    )
    assert code == 400 and "the champion's" in answer["error"]


def test_a_release_starts_once_and_is_promoted_or_aborted_by_the_controller(front):
    assert front.release_status() is None  # never had one
    champion = front.status()["backend"]
    candidate = process.free_port()
    state = front.release_start(candidate, "canary", 10, SERVED, str(front.dir / "c"), {})
    assert state["active"] and state["state"] == "running" and state["mode"] == "canary"
    assert state["percent"] == 10.0 and state["candidate"]["port"] == candidate
    assert state["champion"]["port"] == champion and state["thresholds"]["min_requests"] == 200
    assert "more candidate requests before it is judged" in state["next"]
    assert json.loads((front.dir / "release.json").read_text())["state"] == "running"
    assert front.status()["release"]["candidate"]["version"] == "4"
    with pytest.raises(FrontError, match="a release of version 4 is active"):
        front.release_start(process.free_port(), "shadow", 0, SERVED, "", {})

    ended = front.release_end("promote", "release (canary 10%) by test", "good", timeout=5)
    assert ended["state"] == "promoted" and not ended["active"]
    assert ended["decision"]["outcome"] == "promote" and ended["decision"]["by"].startswith("rel")
    status = front.status()
    assert status["backend"] == candidate and status["release"]["state"] == "promoted"
    assert front.record()["version"] == "4"
    assert front.release_end("promote", "test", "a retry")["state"] == "promoted"  # idempotent
    with pytest.raises(FrontError, match="no release is active to abort"):
        front.release_end("abort", "test", "too late")

    second = front.release_start(champion, "shadow", 0, {"version": "5"}, "", {})
    assert second["mode"] == "shadow" and second["champion"]["version"] == "4"
    aborted = front.release_end("abort", "hand", "changed my mind", timeout=5)
    assert aborted["state"] == "aborted" and aborted["decision"]["reasons"] == ["changed my mind"]
    assert front.release_end("abort", "hand")["state"] == "aborted"  # idempotent
    assert front.status()["backend"] == candidate  # an abort never moves the backend
    on_disk = json.loads((front.dir / "release.json").read_text())
    assert on_disk["state"] == "aborted" and on_disk["candidate"]["version"] == "5"


def test_a_release_the_front_was_running_when_it_restarted_is_over(front):
    """Fail closed: a new front process sends the old release's candidate nothing."""
    port, backend = front.port, front.status()["backend"]
    front.release_start(process.free_port(), "canary", 20, {"version": "6"}, "", {})
    front.stop()
    front.start(port, backend, served={"protocol": "seldon"})
    state = front.release_status()
    assert state["state"] == "aborted" and not state["active"]
    assert state["decision"]["by"] == "front" and "restarted" in state["decision"]["reasons"][0]
    assert front.release_end("abort", "watch")["candidate"]["version"] == "6"
    with pytest.raises(FrontError, match="no release is active to promote"):
        front.release_end("promote", "watch")
    assert front.release_start(process.free_port(), "shadow", 0, {"version": "7"}, "", {})["active"]


def test_the_gate_ends_a_release_by_itself_and_a_decided_one_nobody_ends():
    """No server: the front's release object judged at chosen times."""
    from integrations.seldon_local.router.release import Release

    def release(**limits):
        wanted = {"mode": "canary", "percent": 50, "port": 2, "version": "4"}
        return Release({**wanted, "thresholds": limits}, ("3", 1), "m", "seldon")

    budget = release(budget_seconds=10)
    assert not budget.judge(budget.started_at + 5) and budget.state == "running"
    assert budget.judge(budget.started_at + 11) and budget.state == "aborted"
    assert budget.decision["by"] == "budget" and not budget.active

    failing = release(min_requests=10)
    for _ in range(30):
        failing.roles["champion"].answered(200, 0.01, [1])
        failing.roles["candidate"].answered(500, 0.01)
    assert failing.judge() and failing.state == "aborted" and failing.decision["by"] == "gate"

    good = release(min_requests=10, budget_seconds=100)
    for role in ("champion", "candidate"):
        for _ in range(30):
            good.roles[role].answered(200, 0.01, [1])
    assert good.judge(good.started_at + 95) and good.state == "decided" and good.active
    assert good.decision == {**good.decision, "outcome": "promote", "by": "gate"}
    assert not good.judge(good.started_at + 101)  # over the budget, but decided 6 s ago
    assert not good.judge(good.started_at + 95 + 299)  # nobody ended it yet: it waits
    assert good.judge(good.started_at + 95 + 301) and good.state == "aborted"
    assert good.decision["by"] == "budget" and "nobody ended it" in good.decision["reasons"][0]

    # a candidate that did not pass the offline gate (release start --force): the same
    # good answers decide nothing without labels, through a front restart too; the
    # budget aborts it
    unproven = release(min_requests=10, budget_seconds=100, require_labels=True)
    for role in ("champion", "candidate"):
        for _ in range(30):
            unproven.roles[role].answered(200, 0.01, [1])
    assert not unproven.judge(unproven.started_at + 95) and unproven.state == "running"
    assert "promoted only on labelled evidence" in unproven.next
    state = {**unproven.as_dict(), "stats": unproven.stats()}
    resumed = Release.resumed(state, "m", "seldon")
    assert resumed.thresholds["require_labels"] == 1.0
    assert not resumed.judge(resumed.started_at + 95) and resumed.state == "running"
    assert resumed.judge(resumed.started_at + 101) and resumed.state == "aborted"
    assert resumed.decision["by"] == "budget"


def test_a_release_keeps_the_candidates_task_through_a_front_restart():
    """The task (core/release/gate.py `evidence`) travels with the release state and
    comes back with a resumed release; an unknown one is refused."""
    from integrations.seldon_local.router.release import Release

    wanted = {"mode": "canary", "percent": 50, "port": 2, "version": "4", "task": "regression"}
    release = Release(wanted, ("3", 1), "m", "seldon")
    for role in ("champion", "candidate"):
        release.roles[role].answered(200, 0.01, [10.0, 10.5])
    assert release.evidence()["shift"]["metric"] == "wasserstein_norm"
    state = release.as_dict()
    assert state["candidate"]["task"] == "regression"
    resumed = Release.resumed({**state, "stats": release.stats()}, "m", "seldon")
    assert resumed.task == "regression"
    assert resumed.evidence()["shift"]["metric"] == "wasserstein_norm"
    with pytest.raises(ValueError, match='"task" is "classification" or "regression"'):
        Release({**wanted, "task": "ranking"}, ("3", 1), "m", "seldon")
