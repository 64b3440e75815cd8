"""The release gate: evidence -> promote, abort or not yet; and where a canary's
predictions go (plain functions, no server)."""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest

from core.release import gate as gate
from core.release.gate import Allocator, RoleStats, decide

LIMITS = {**gate.DEFAULTS, "min_requests": 50, "min_labelled": 20}


def role(n=100, c5xx=0, c4xx=0, latency_ms=10.0, predictions=(0, 1), jitter=0.0):
    stats = RoleStats()
    rng = random.Random(n)
    for i in range(n):
        status = 500 if i < c5xx else 400 if i < c5xx + c4xx else 200
        seconds = (latency_ms + rng.uniform(0, jitter)) / 1000
        stats.answered(status, seconds, [predictions[i % len(predictions)]])
    return stats


def judge(champion: RoleStats, candidate: RoleStats, elapsed=10.0, limits=LIMITS):
    return decide(gate.evidence(champion, candidate), limits, elapsed)


def test_a_candidate_like_the_champion_is_promoted_once_it_answered_enough():
    outcome, reasons, following = judge(role(300), role(30))
    assert outcome is None and reasons == [] and "20 more candidate requests" in following
    outcome, reasons, following = judge(role(300), role(60))
    assert outcome == "promote" and "every judged figure is inside" in reasons[0]
    assert "decided" in following


def test_a_candidate_failing_half_its_requests_is_aborted_after_a_few_dozen():
    outcome, reasons, _ = judge(role(300), role(10, c5xx=5))
    assert outcome is None  # ten requests are not yet evidence
    outcome, reasons, _ = judge(role(300), role(24, c5xx=12))
    assert outcome == "abort" and "candidate 5xx share 50.0%" in reasons[0]


def test_a_5xx_excess_inside_the_noise_waits_for_min_requests_then_aborts():
    # 1 of 30 failed (3.3%): over the 1% bound, but not clearly so with 30 requests
    assert judge(role(300), role(30, c5xx=1))[0] is None
    outcome, reasons, _ = judge(role(300), role(60, c5xx=4))
    assert outcome == "abort" and "5xx" in reasons[0]


def test_the_champions_own_errors_are_subtracted():
    # both fail 10%: not the candidate's fault
    assert judge(role(300, c5xx=30), role(60, c5xx=6))[0] == "promote"
    assert judge(role(300, c4xx=60), role(60, c4xx=12))[0] == "promote"
    assert judge(role(300), role(60, c4xx=12))[0] == "abort"


def test_a_slow_candidate_is_aborted_on_its_p95_but_not_for_a_few_ms():
    outcome, reasons, _ = judge(role(300, latency_ms=10), role(60, latency_ms=60))
    assert outcome == "abort" and "p95 latency 60 ms vs champion 10 ms" in reasons[0]
    # 2× slower, but only 4 ms apart: under the 20 ms margin
    assert judge(role(300, latency_ms=4), role(60, latency_ms=8))[0] == "promote"


def test_a_candidate_50_ms_slower_is_aborted_even_when_load_slows_both():
    # a busy machine: the champion's p95 is 120 ms, the candidate's 170 (+50 ms): the p95
    # ratio (1.42) is under 1.5, the median difference (+50 ms) is not under +30 ms
    outcome, reasons, _ = judge(role(300, latency_ms=100), role(250, latency_ms=150, jitter=0))
    assert outcome == "abort"
    assert reasons == ["candidate median latency 150 ms vs champion 100 ms (+50 ms, bound +30 ms)"]
    assert judge(role(300, latency_ms=100), role(250, latency_ms=120))[0] == "promote"


def test_shifted_predictions_abort_classes_and_numbers():
    outcome, reasons, _ = judge(role(300, predictions=(0, 1)), role(60, predictions=(1,)))
    assert outcome == "abort" and "jensenshannon" in reasons[0]
    numbers = [round(0.1 * i + 0.05, 2) for i in range(100)]  # a regression's
    same = judge(role(300, predictions=numbers), role(100, predictions=numbers))
    assert same[0] == "promote"
    moved = [v + 3.0 for v in numbers]  # 3 / σ(≈2.9) ≈ 1.04
    outcome, reasons, _ = judge(role(300, predictions=numbers), role(100, predictions=moved))
    assert outcome == "abort" and "wasserstein_norm 1.0" in reasons[0]
    # whole numbers with many values (prices, say) are numbers, not 100 classes: 5 more
    # on each is a tiny shift (5 / σ 290), though no value of one is a value of the other
    prices = [1000 + 10 * i for i in range(100)]
    higher = [p + 5 for p in prices]
    assert judge(role(300, predictions=prices), role(100, predictions=higher))[0] == "promote"


def labelled(stats: RoleStats, right: int, wrong: int) -> RoleStats:
    for _ in range(right):
        stats.label(1, 1)
    for _ in range(wrong):
        stats.label(1, 0)
    return stats


def test_quality_from_labels_aborts_a_clearly_worse_candidate_and_waits_for_labels():
    champion = labelled(role(300), 90, 10)
    outcome, reasons, _ = judge(champion, labelled(role(60), 10, 20))
    assert outcome == "abort" and "accuracy 0.333 vs champion 0.900" in reasons[0]
    # as good: promoted; a few labels so far: the decision waits for min_labelled
    assert judge(champion, labelled(role(60), 18, 2))[0] == "promote"
    outcome, _, following = judge(champion, labelled(role(60), 5, 0))
    assert outcome is None and "15 more labelled answers" in following


def test_a_regression_candidates_quality_is_its_mean_absolute_error():
    values = [10.0 + 0.1 * i for i in range(100)]  # a regression's predictions
    champion, candidate = role(300, predictions=values), role(100, predictions=values)
    for i in range(40):
        champion.label(10.5, 10.0 + (i % 3) * 0.1)
        candidate.label(14.5, 10.0 + (i % 3) * 0.1)
    outcome, reasons, _ = judge(champion, candidate)
    assert outcome == "abort" and reasons[0].startswith("mae")


def test_the_recorded_task_decides_how_answers_are_judged_not_their_count():
    """A regression answering one repeated request gives few distinct numbers; a
    classifier may have more than 50 numbered classes. The task recorded with the model
    decides, where a guess from the number of distinct answers would judge each wrongly."""
    few = [10.0, 10.5, 11.0]  # a regression asked the same three rows again and again
    champion, candidate = role(300, predictions=few), role(100, predictions=[v + 0.05 for v in few])
    for stats in (champion, candidate):
        for i in range(40):
            stats.label(10.5, 10.4 + (i % 3) * 0.1)
    guessed = gate.evidence(champion, candidate)
    assert guessed["shift"]["metric"] == "jensenshannon"  # three "classes", none shared
    assert guessed["quality"]["metric"] == "accuracy"  # 10.5 is never exactly right
    told = gate.evidence(champion, candidate, "regression")
    assert told["shift"]["metric"] == "wasserstein_norm" and told["shift"]["value"] < 0.2
    assert told["quality"] == {**told["quality"], "metric": "mae", "drop": 0.0}
    assert decide(guessed, LIMITS, 10.0)[0] == "abort"  # a shift of disjoint classes
    assert decide(told, LIMITS, 10.0)[0] == "promote"  # 0.05 over a σ of 0.4, same error
    # a classifier with 100 numbered classes: class shares and accuracy, told so
    classes = list(range(100))
    a, b = role(300, predictions=classes), role(100, predictions=classes)
    assert gate.evidence(a, b)["shift"]["metric"] == "wasserstein_norm"
    assert gate.evidence(a, b, "classification")["shift"]["metric"] == "jensenshannon"
    # the cluster's path (the sink's rows) takes the task the same way
    rows = [
        {"_role": role_, "_request_id": f"{role_}{i}", "_row": 0, "_prediction": 10.0 + i % 3}
        for role_ in ("champion", "canary")
        for i in range(30)
    ]
    assert gate.evidence_from_rows(rows)["shift"]["metric"] == "jensenshannon"
    assert gate.evidence_from_rows(rows, "regression")["shift"]["metric"] == "wasserstein_norm"


def test_the_budget_ends_an_undecided_release_as_abort():
    outcome, reasons, _ = judge(role(300), role(10), elapsed=1800)
    assert outcome == "abort" and "budget of 1800 s" in reasons[0]
    limits = {**LIMITS, "budget_requests": 40, "min_requests": 1000}
    outcome, reasons, _ = judge(role(300), role(40), limits=limits)
    assert outcome == "abort" and "within 40 candidate requests" in reasons[0]


def test_thresholds_are_checked():
    assert gate.thresholds({"min_requests": 50})["min_requests"] == 50
    assert gate.thresholds(None) == gate.DEFAULTS
    # a flag: the config's true/false, and the 1.0 a front's release.json keeps
    assert gate.thresholds({"require_labels": True})["require_labels"] == 1.0
    assert gate.thresholds({"require_labels": 1.0})["require_labels"] == 1.0
    assert gate.thresholds({"require_labels": False})["require_labels"] == 0.0
    bad_ones = ({"min_request": 5}, {"min_requests": -1}, {"min_requests": "many"},
                {"require_labels": "yes"}, {"require_labels": 2})  # fmt: skip
    for bad in bad_ones:
        with pytest.raises(gate.ThresholdError):
            gate.thresholds(bad)


def test_a_candidate_that_did_not_pass_the_offline_gate_is_promoted_only_on_labels():
    """require_labels (a release started with --force): errors, latency and shift inside
    their bounds promote nothing without labels; the budget then aborts it (fail closed).
    It is promoted only once labels show its quality within the bound."""
    unproven = {**LIMITS, "require_labels": 1.0}
    assert judge(role(300), role(500))[0] == "promote"  # a gate-passed candidate would be
    outcome, reasons, following = judge(role(300), role(500), limits=unproven)
    assert outcome is None and reasons == []
    assert "promoted only on labelled evidence" in following
    assert "20 more feedback-labelled answers per version" in following
    outcome, reasons, _ = judge(role(300), role(500), elapsed=1800, limits=unproven)
    assert outcome == "abort" and "budget" in reasons[0]
    champion = labelled(role(300), 90, 10)
    # "not clearly worse" is not enough: equal on 20 labels, or 0.70 vs 0.90 on 50 (which
    # a gate-passed candidate's release would promote), waits for labels that show it
    for candidate in (labelled(role(60), 18, 2), labelled(role(300), 35, 15)):
        assert judge(champion, candidate)[0] == "promote"
        outcome, reasons, following = judge(champion, candidate, limits=unproven)
        assert outcome is None and reasons == []
        assert "is not yet shown within the bound (2.0% worse at most)" in following
    # labels enough to show the drop within 2% (one-sided 95%): promoted
    champion = labelled(role(300), 2700, 300)
    outcome, reasons, _ = judge(champion, labelled(role(600), 2690, 310), limits=unproven)
    assert outcome == "promote" and "quality)" in reasons[0]
    assert judge(champion, labelled(role(600), 1760, 240), limits=unproven)[0] is None  # 0.88
    outcome, reasons, _ = judge(champion, labelled(role(60), 10, 20), limits=unproven)
    assert outcome == "abort" and "accuracy" in reasons[0]


@pytest.mark.parametrize("percent", [1, 10, 33.3, 50, 90])
def test_requests_without_an_id_get_exactly_the_share(percent):
    allocator = Allocator(percent)
    for n in (10, 100, 1000, 9999):
        hits = sum(allocator.to_candidate() for _ in range(n))
        allocator = Allocator(percent)
        assert abs(hits - n * percent / 100) <= 1, (n, hits)


def test_request_ids_stick_to_one_side_and_share_the_traffic():
    allocator = Allocator(10)
    ids = [f"client-{i}" for i in range(5000)]
    first = [allocator.to_candidate(i) for i in ids]
    assert first == [Allocator(10).to_candidate(i) for i in ids]  # same id, same side
    assert 0.085 <= sum(first) / len(ids) <= 0.115
    assert not any(Allocator(0).to_candidate(i) for i in ids[:200])
    assert all(Allocator(100).to_candidate(i) for i in ids[:200])


def test_effect_sizes_match_the_drift_checks():
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    p, q = Counter(a=30, b=50, c=20), Counter(a=10, b=50, d=40)
    keys = sorted(set(p) | set(q))
    expected = jensenshannon([p[k] / 100 for k in keys], [q[k] / 100 for k in keys])
    assert math.isclose(gate.jensen_shannon(p, q), expected, rel_tol=1e-9)
    rng = random.Random(0)
    a = [rng.gauss(0, 2) for _ in range(300)]
    b = [rng.gauss(1, 2) for _ in range(200)]
    sd = (sum((x - sum(a) / len(a)) ** 2 for x in a) / len(a)) ** 0.5
    assert math.isclose(gate.normed_wasserstein(a, b), wasserstein_distance(a, b) / sd)


def test_latency_percentiles_come_from_a_bounded_sample():
    reservoir = gate.Reservoir(size=500)
    for i in range(100_000):
        reservoir.add(float(i % 1000))
    assert len(reservoir.values) == 500
    assert 900 <= reservoir.percentile(95) <= 990
    assert 400 <= reservoir.percentile(50) <= 600


def test_the_request_id_a_caller_sent_is_found_in_each_protocol():
    from aiohttp.test_utils import make_mocked_request

    from integrations.seldon_local.router.release import read_answer, sticky_id

    def asked(headers: dict, body: bytes, protocol: str):
        return sticky_id(protocol, make_mocked_request("POST", "/", headers=headers), body)

    assert asked({"Seldon-Puid": "p1"}, b"{}", "seldon") == "p1"
    assert asked({}, b'{"data": {"ndarray": [[1]]}}', "seldon") is None
    assert asked({"X-Request-Id": "x1"}, b'{"id": "b1"}', "v2") == "x1"
    assert asked({}, b'{"id": "b1", "inputs": []}', "v2") == "b1"
    assert asked({}, b'{"inputs": [{"name": "id"}]}', "v2") is None
    assert asked({}, b'{"id": "b1", "inputs": [' + b" " * 300_000 + b"]}", "v2") is None
    assert read_answer("v2", b'{"id": "r", "outputs": [{"data": [1, 0]}]}') == ("r", [1, 0])
    seldon = b'{"data": {"ndarray": [[1], [0]]}, "meta": {"puid": "p"}}'
    assert read_answer("seldon", seldon) == ("p", [1, 0])
    assert read_answer("seldon", b"nope") == ("", [])


# -- one gate, any backend: the same evidence through the front's path and the sink's rows --
def answers(
    kind: str, seed: int = 7, counts: tuple[int, int] = (300, 120), classes=("low", "high")
) -> list[tuple]:
    """(role, request id, status, latency ms, predictions, labels) of a release's traffic:
    `counts` champion and candidate requests of 2 rows of `classes`; every third labelled.
    `kind`: what is wrong with the candidate (5xx, slow, wrong answers; else nothing)."""
    rng = random.Random(seed)
    out = []
    for role, n in zip(("champion", "candidate"), counts, strict=True):
        for i in range(n):
            status = 500 if kind == "5xx" and role == "candidate" and i % 4 == 0 else 200
            slow = 60.0 if kind == "slow" and role == "candidate" else 0.0
            latency = 10.0 + slow + rng.uniform(0, 4)
            truth = [rng.choice(classes) for _ in range(2)]
            wrong = kind == "wrong" and role == "candidate" and i % 2 == 0
            predictions = [classes[1 - classes.index(t)] if wrong else t for t in truth]
            labels = truth if i % 3 == 0 else None
            out.append((role, f"{role}-{i}", status, latency, predictions, labels))
    return out


def local_evidence(traffic: list[tuple]) -> dict:
    """The evidence as the local front fills it (seldon_local/router/routing.py:
    `answered` per answer, `labelled` per feedback row)."""
    roles = {"champion": RoleStats(), "candidate": RoleStats()}
    for role, _, status, latency, predictions, labels in traffic:
        answered = predictions if status == 200 else []
        roles[role].answered(status, latency / 1000, answered)
        for prediction, label in zip(answered, labels or [], strict=False):
            roles[role].label(prediction, label)
    return gate.evidence(roles["champion"], roles["candidate"])


def local_decision(traffic: list[tuple]):
    """The local gate's decision on `traffic` (after a minute)."""
    return decide(local_evidence(traffic), LIMITS, 60.0)


def rows_decision(traffic: list[tuple], folder):
    """As a cluster release is judged: the rows written as the sink writes them (Parquet
    under the model's folder, labels as feedback files), read back by `release_rows`."""
    import pandas as pd

    from core.traffic.rows import TrafficLog, release_rows

    requests, feedback = [], []
    for role, request_id, status, latency, predictions, labels in traffic:
        written = "canary" if role == "candidate" else "champion"
        version = "4" if role == "candidate" else "3"
        for row, prediction in enumerate(predictions if status == 200 else [None]):
            requests.append({"size": 50.0, "_request_id": request_id, "_row": row,
                             "_time": 0.0, "_prediction": prediction, "_version": version,
                             "_protocol": "v2", "_role": written, "_status": status,
                             "_latency_ms": latency})  # fmt: skip
        for row, label in enumerate(labels if status == 200 and labels else []):
            feedback.append({"_request_id": request_id, "_row": row, "_label": label,
                             "_time": 0.0})  # fmt: skip
    log = TrafficLog(folder)
    log.write("requests", pd.DataFrame(requests))
    log.write("feedback", pd.DataFrame(feedback))
    found = gate.evidence_from_rows(release_rows([folder], None))
    return decide(found, LIMITS, 60.0)


@pytest.mark.parametrize(
    ("kind", "outcome", "why"),
    [("5xx", "abort", "5xx share"), ("slow", "abort", "latency"),
     ("wrong", "abort", "accuracy"), ("good", "promote", "inside its bound")],
)  # fmt: skip
def test_the_local_and_the_cluster_rows_paths_take_the_same_decision(kind, outcome, why, tmp_path):
    traffic = answers(kind)
    local = local_decision(traffic)
    from_rows = rows_decision(traffic, tmp_path / "traffic" / "m")
    assert local[0] == outcome and why in " ".join(local[1])
    assert from_rows == local  # outcome, reasons (with their figures) and what comes next


def test_a_roles_evidence_is_restored_whole_from_its_json_state():
    """What a front restarted mid-release reads back from release.json (issue #34)."""
    stats = RoleStats()
    for i in range(3000):  # past the latency reservoir's 2,000 values
        stats.answered(200, 0.001 * (i % 97), [i % 3])
    stats.answered(503, 0.2)
    stats.answered(404, 0.01)
    stats.fallbacks = 2
    for i in range(60):
        stats.label(i % 3, (i + i // 10) % 3)
    back = RoleStats.restored(json.loads(json.dumps(stats.state())))
    assert back.as_dict() == stats.as_dict() and back.quality() == stats.quality()
    assert back.classes == stats.classes and back.numbers.values == stats.numbers.values
    back.answered(200, 0.5, [1])
    assert back.requests == stats.requests + 1 and back.latency.seen == 3001
