"""Release plain functions: which version a release takes, how history merges releases
with champion changes, what `release status` prints, and the gate's hold for a release."""

from __future__ import annotations

from app.champions import history_line, merged
from app.release import describe, interrupted
from core.specs import ReleaseThresholds
from steps.deployment.release import (
    gate_refusal,
    newest_passed,
    older_than_champion,
    release_label,
    release_limits,
)

PASSED = {"zenkube.offline_gate": "passed"}
FAILED = {"zenkube.offline_gate": "failed"}


def test_the_default_version_is_the_newest_that_passed_and_is_not_the_champion():
    versions = [("1", PASSED), ("2", PASSED), ("10", PASSED), ("11", FAILED), ("12", {})]
    assert newest_passed(versions, champion="3") == "10"  # 10 > 2 as numbers, not text
    # Never an older version than the champion by default (a former champion, say).
    assert newest_passed(versions, champion="10") is None
    assert newest_passed(versions, champion="1") == "10"
    assert newest_passed(versions, champion=None) == "10"
    assert newest_passed([("4", FAILED), ("5", {})], champion="3") is None
    assert newest_passed([("3", PASSED)], champion="3") is None
    # a pass against another champion (v2, before a rollback to v1) is no pass now
    against_2 = {**PASSED, "zenkube.gate_champion": "2"}
    assert newest_passed([("3", against_2), ("4", FAILED)], champion="1") is None
    assert newest_passed([("3", against_2)], champion="2") == "3"
    # a former champion (v2, rolled back to v1) is not picked, though it passed against v1
    against_1 = {**PASSED, "zenkube.gate_champion": "1"}
    assert newest_passed([("2", against_1)], champion="1", former=frozenset({"1", "2"})) is None
    assert newest_passed([("2", against_1)], champion="1") == "2"


def test_history_merges_releases_with_champion_changes_newest_first():
    changes = [
        {
            "at": "2026-01-03 10:00:05 UTC",
            "version": "3",
            "by": "release (canary 10%) by the gate",
            "reason": "r",
        },  # fmt: skip
        {
            "at": "2026-01-01 09:00:00 UTC",
            "version": "1",
            "by": "the gate (run)",
            "reason": "first",
        },  # fmt: skip
    ]
    releases = [
        {
            "at": "2026-01-03 10:00:05 UTC",
            "version": "3",
            "champion": "1",
            "mode": "canary",
            "percent": 10.0,
            "outcome": "promoted",
            "by": "release (canary 10%) by the gate",
            "reason": "all figures inside their bounds",
        },  # fmt: skip
        {
            "at": "2026-01-02 12:00:00 UTC",
            "version": "2",
            "champion": "1",
            "mode": "shadow",
            "percent": None,
            "outcome": "aborted",
            "by": "release (shadow) by the budget",
            "reason": "undecided after 1800 s",
        },  # fmt: skip
    ]
    events = merged(changes, releases)
    # the promoted release is the who and why of the champion change it made: one line
    assert [(e["kind"], e["version"]) for e in events] == [
        ("change", "3"),
        ("release", "2"),
        ("change", "1"),
    ]
    text = [history_line(e) for e in events]
    assert "v3    release (canary 10%) by the gate" in text[0]
    assert text[0].endswith("promoted over v1: all figures inside their bounds")
    assert "release (shadow) beside v1: aborted" in text[1]
    assert text[1].endswith("release (shadow) by the budget: undecided after 1800 s")
    assert "the gate (run)" in text[2] and "first" in text[2]


def test_history_lists_a_promoted_release_once_read_from_a_real_mlflow_registry(tmp_path):
    """A canary promoted by the gate writes a champion change, then (ending) its release,
    as end_release does; `history` shows that move once, with the release as who and why.
    An aborted release keeps its own line; so does a promoted release whose change fell
    out of the kept history."""
    import json
    import time

    from mlflow.tracking import MlflowClient

    from app.champions import history
    from integrations.mlflow.tags import (
        HISTORY_TAG,
        RELEASE_HISTORY_TAG,
        change_event,
        release_event,
    )
    from integrations.seldon_local.local_records import Registry

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("m")
    for _ in range(3):
        client.create_model_version("m", str(tmp_path))
    client.set_registered_model_alias("m", "champion", "2")
    by, why = "release (canary 10%) by the gate", "every judged figure is inside its bound"
    started = time.time() - 5
    changes = [change_event("1", "the gate (training-run-1)", "first champion")]
    canary = {"candidate": {"version": "2"}, "champion": {"version": "1"}, "mode": "canary",
              "percent": 10.0, "started_at": started}  # fmt: skip
    changes.append(change_event("2", by, f"release (canary 10%): {why}"))  # the promote
    releases = [release_event({**canary, "ended_at": time.time()}, "promoted", by, why)]
    aborted = {"candidate": {"version": "3"}, "champion": {"version": "2"}, "mode": "shadow",
               "started_at": time.time(), "ended_at": time.time() + 2}  # fmt: skip
    releases.append(release_event(aborted, "aborted", "release (shadow) by the budget", "budget"))
    client.set_registered_model_tag("m", HISTORY_TAG, json.dumps(changes))
    client.set_registered_model_tag("m", RELEASE_HISTORY_TAG, json.dumps(releases))

    said: list[str] = []
    found = history("m", said.append, registry=Registry(uri))
    assert found.current == "2" and len(found.releases) == 2
    moves = [line for line in said if line.startswith("  20")]
    assert len(moves) == 3, said  # v2's promotion, v3's aborted shadow, v1's first move
    (promotion,) = [line for line in moves if " v2 " in line]
    assert by in promotion and promotion.endswith(f"promoted over v1: {why}")
    assert "beside v1: promoted" not in "\n".join(said)
    assert "release (shadow) beside v2: aborted" in moves[0]
    assert promotion == moves[1] and "the gate (training-run-1)" in moves[2]

    # the change fell out of the champion history (it keeps 20): the release still shows
    client.set_registered_model_tag("m", HISTORY_TAG, json.dumps(changes[:1]))
    said.clear()
    history("m", said.append, registry=Registry(uri))
    assert any("release (canary 10%) beside v1: promoted" in line for line in said), said


def test_release_status_says_shares_evidence_decision_and_what_is_next():
    state = {
        "active": True,
        "state": "running",
        "mode": "canary",
        "percent": 10.0,
        "champion": {"version": "3", "port": 1},
        "candidate": {"version": "4", "port": 2},
        "started_at": 1_700_000_000.0,
        "ended_at": None,
        "evidence": {
            "champion": {
                "requests": 180,
                "ok": 180,
                "latency_ms": {"p50": 3.0, "p95": 5.5, "p99": 9.0},
            },  # fmt: skip
            "candidate": {"requests": 20, "ok": 18, "5xx": 2, "fallbacks": 2},
            "shift": {"metric": "jensenshannon", "value": 0.031},
            "quality": {
                "metric": "accuracy",
                "champion": 0.95,
                "candidate": 0.9,
                "drop": 0.0526,
                "se": 0.02,
            },
        },
        "decision": None,
        "next": "180 more candidate answers before rates are judged",
        "thresholds": ReleaseThresholds().model_dump(),  # the defaults the text quotes
    }
    text = "\n".join(describe("m", state))
    assert "Release of 'm': v4 (canary 10%) beside champion v3: running" in text
    assert "candidate 10% of requests, champion 90%" in text
    assert "champion:  v3  180 requests, 180 ok, p50/p95/p99 3/6/9 ms" in text
    assert "candidate: v4  20 requests, 18 ok, 2 5xx, 2 fallbacks" in text
    assert "jensenshannon 0.031 between the two versions' predictions (aborts over 0.2)" in text
    assert "relative drop 0.0526 (± 0.02); aborts over 0.02" in text
    assert "bounds:    candidate 5xx/4xx share at most +1%/+5% over the champion's, p95 " in text
    assert "median latency at most +30 ms (judged after 200 candidate requests)" in text
    assert "decision:  none yet" in text
    assert "next:      180 more candidate answers" in text
    assert "python run.py release abort --model-name m" in text

    ended = {**state, "active": False, "state": "aborted", "mode": "shadow",
             "decision": {"outcome": "abort", "by": "gate", "reasons": ["5xx 10% vs 0%"]},
             "evidence": {"quality": {"metric": "accuracy", "drop": None, "se": None}}}  # fmt: skip
    text = "\n".join(describe("m", ended))
    assert "(shadow) beside champion v3: aborted" in text
    assert "copy of each" in text
    assert "decision:  abort by gate: 5xx 10% vs 0%" in text
    assert "release abort" not in text  # nothing to end by hand
    assert "accuracy: not judged yet" in text


def test_release_status_tells_one_story_when_the_front_is_gone():
    """What the front last wrote of a running release, once it is down: interrupted, and
    what happens next; never "running" or "N more candidate requests" (issue #34)."""
    last = {
        "active": True, "state": "running", "mode": "canary", "percent": 50.0,
        "champion": {"version": "1", "port": 1}, "candidate": {"version": "2", "port": 2},
        "started_at": 1_700_000_000.0, "ended_at": None, "decision": None,
        "evidence": {"candidate": {"requests": 33, "ok": 33}},
        "next": "167 more candidate requests before rates are judged",
        "thresholds": {"min_requests": 200}, "stale": True,
    }  # fmt: skip
    for restarting, then in (
        (True, "the front resumes the release when it is back"),
        (False, "`python run.py deploy --model-name m` serves the champion v1 again"),
    ):
        said: list[str] = []
        interrupted("m", last, restarting, said.append)
        text = "\n".join(said)
        assert "is interrupted" in said[0] and "v2" in said[0]
        assert "beside champion v1: interrupted" in said[1]
        assert f"next:      {then}" in text
        assert "running" not in text.replace("not running", "")
        for stale in ("more candidate requests", "bounds:", "by hand:"):
            assert stale not in text
    said = []
    interrupted("m", {**last, "active": False, "state": "aborted"}, False, said.append)
    assert "had already ended (aborted)" in said[0] and "interrupted" not in "\n".join(said)
    resumed = describe("m", {**last, "stale": False, "resumed_at": [1_700_000_060.0]})
    assert any(
        line.startswith("  restarted: the front restarted at 22:14:20 UTC and resumed")
        for line in resumed
    )


def test_history_names_who_moved_the_champion_after_the_release():
    assert release_label("canary", 12.5) == "release (canary 12.5%)"
    assert release_label("shadow", None) == "release (shadow)"


def test_a_bad_release_block_is_a_clear_config_error(tmp_path):
    import pytest

    from app.config import load_run_config
    from core.errors import ConfigError

    config = tmp_path / "deployment.yaml"
    config.write_text("parameters:\n  release:\n    mode: canary\n    canary_percent: 150\n")
    with pytest.raises(ConfigError, match=r"`parameters.release.canary_percent`: .*less than 100"):
        load_run_config("deployment", config, stack_kind="local")
    config.write_text("parameters:\n  release:\n    mode: canary\n    tresholds: {}\n")
    with pytest.raises(ConfigError, match=r"unknown key `parameters.release.tresholds`"):
        load_run_config("deployment", config, stack_kind="local")


def test_training_and_continuous_training_take_the_deployment_release_mode():
    from app.config import load_run_config

    deployment = load_run_config("deployment", stack_kind="local").params.release
    assert load_run_config("training", stack_kind="local").params.release == deployment
    looped = load_run_config("continuous_training", stack_kind="local").params.release
    assert looped == deployment and deployment.mode == "swap"  # the default: today's swap
    canary = load_run_config("training", overrides={"release.mode": "canary"}, stack_kind="local")
    assert canary.params.release.mode == "canary"


def test_a_named_version_older_than_the_champion_is_said_to_be_older():
    assert older_than_champion("1", "2") == (
        "v1 is older than the champion v2: it is released only because --version named it"
    )
    assert older_than_champion("3", "2") == "" and older_than_champion("1", None) == ""


def test_a_version_that_did_not_pass_the_offline_gate_is_refused_in_one_paragraph():
    """`release start --version N` of a version the offline gate did not pass: what is
    wrong (its verdict and the gate's reason), and both ways on (train, or --force and
    what that means); a passed version is not refused."""
    assert gate_refusal("m", "3", PASSED) == ""
    inconclusive = {**FAILED, "zenkube.gate_outcome": "inconclusive",
                    "zenkube.gate_reason": "inconclusive: 40 rows cannot tell"}  # fmt: skip
    said = gate_refusal("m", "3", inconclusive)
    assert said.startswith("v3 of 'm' did not pass the offline gate (zenkube.offline_gate=failed")
    assert "outcome inconclusive: inconclusive: 40 rows cannot tell)" in said
    assert "no release was started" in said and "\n" not in said
    assert "`python run.py train --model-name m`" in said
    assert "`--force`" in said and "promoted only on labelled evidence" in said
    assert "without labels its budget aborts it" in said
    assert "was never judged by the offline gate" in gate_refusal("m", "4", {})


def test_a_version_that_passed_against_another_champion_is_refused_as_unproven():
    """The gate tags whom it compared a version with (zenkube.gate_champion); a pass is
    proof only while that version is the champion: after a rollback (or a later
    promotion) the version is refused as unproven, in one paragraph that names both, and
    `--force` releases it on labelled evidence only. A version tagged before the gate
    recorded its champion keeps its pass."""
    against_2 = {**PASSED, "zenkube.gate_champion": "2"}
    assert gate_refusal("m", "3", against_2, "2") == ""
    said = gate_refusal("m", "3", against_2, "1")
    assert said.startswith(
        "v3 of 'm' passed the offline gate against the champion v2, but the champion is now "
        "v1, which it was never compared with, so no release was started"
    )
    assert "\n" not in said and "`--force`" in said and "promoted only on labelled" in said
    first = {**PASSED, "zenkube.gate_champion": "none"}  # judged when there was no champion
    assert "passed the offline gate against no champion, but the champion is now v1" in (
        gate_refusal("m", "2", first, "1")
    )
    assert gate_refusal("m", "3", PASSED, "1") == ""  # tagged before the champion was kept


def test_the_release_start_command_takes_force(monkeypatch):
    """--force reaches `start` (the refusal names it, so it must exist), and only when
    given."""
    from click.testing import CliRunner

    from app import release_cli, session

    shown = CliRunner().invoke(release_cli.release_group, ["start", "--help"]).output
    assert "--force" in shown and "did not pass the offline" in shown
    calls = []
    monkeypatch.setattr(session, "ready", lambda echo: None)
    monkeypatch.setattr(release_cli, "start", lambda *args, **kw: calls.append(kw["force"]))
    for argv in (["start", "--version", "3", "--force"], ["start", "--version", "3"]):
        assert CliRunner().invoke(release_cli.release_group, argv).exit_code == 0
    assert calls == [True, False]


def test_only_an_unproven_release_carries_require_labels():
    """A gate-passed release's thresholds leave the flag out when it is off (a front
    started before it existed refuses the key); an unproven one, or a config that asks
    it, sends it."""
    from core.specs import ReleaseSpec

    assert "require_labels" not in release_limits(ReleaseSpec(), unproven=False)
    assert release_limits(ReleaseSpec(), unproven=True)["require_labels"] is True
    asked = ReleaseSpec(thresholds={"require_labels": True})
    assert release_limits(asked, unproven=False)["require_labels"] is True


def test_release_status_says_an_unproven_candidate_waits_for_labels():
    state = {
        "active": True, "state": "running", "mode": "canary", "percent": 10.0,
        "champion": {"version": "3"}, "candidate": {"version": "4"},
        "evidence": {"candidate": {"requests": 300, "ok": 300}},
        "thresholds": {**ReleaseThresholds().model_dump(), "require_labels": True},
    }  # fmt: skip
    text = "\n".join(describe("m", state))
    assert "promote:   only on labelled evidence (require_labels): 50+ feedback-labelled" in text
    assert "that show its quality within 2% of the champion's" in text
    gated = {**state, "thresholds": ReleaseThresholds().model_dump()}
    assert "only on labelled evidence" not in "\n".join(describe("m", gated))
