"""The cluster watcher's judgement (integrations/k8s/release.py `judge`): the gate's
own decide on the sink's rows of the release's two versions, with its thresholds and
elapsed time: promote, abort, or inconclusive until the budget is spent."""

from __future__ import annotations

import time

from core.release import gate as gate
from integrations.k8s import release as cluster_release
from tests.unit.integrations.test_release_gate import LIMITS, answers, local_decision


def rows_of(traffic: list[tuple], versions=("3", "4")) -> list[dict]:
    """The rows the sink writes for `traffic` (as release_rows reads them back)."""
    rows = []
    for role, request_id, status, latency, predictions, labels in traffic:
        written = "canary" if role == "candidate" else "champion"
        version = versions[1] if role == "candidate" else versions[0]
        for row, prediction in enumerate(predictions if status == 200 else [None]):
            label = labels[row] if labels and status == 200 else None
            rows.append({"_request_id": request_id, "_row": row, "_prediction": prediction,
                         "_version": version, "_role": written, "_status": status,
                         "_latency_ms": latency, "_label": label})  # fmt: skip
    return rows


def release(started_ago: float = 60.0, **limits) -> dict:
    return {"active": True, "state": "running", "mode": "canary", "percent": 25.0,
            "champion": {"version": "3"}, "candidate": {"version": "4"},
            "started_at": time.time() - started_ago, "thresholds": {**LIMITS, **limits}}  # fmt: skip


def test_the_watcher_decides_what_the_local_gate_decides_on_the_same_traffic():
    for kind, outcome in (("5xx", "abort"), ("slow", "abort"), ("wrong", "abort"),
                          ("good", "promote")):  # fmt: skip
        traffic = answers(kind)
        judged = cluster_release.judge(release(), rows_of(traffic))
        assert (judged["outcome"], judged["reasons"]) == local_decision(traffic)[:2], kind
        assert judged["outcome"] == outcome


def test_too_little_evidence_is_inconclusive_until_the_budget_aborts_it():
    early = answers("good")[:330]  # 300 champion, 30 candidate requests
    judged = cluster_release.judge(release(), rows_of(early))
    assert judged["outcome"] is None and judged["reasons"] == []
    assert "more candidate requests" in judged["next"]
    late = cluster_release.judge(release(started_ago=1900, budget_seconds=1800), rows_of(early))
    assert late["outcome"] == "abort"
    assert late["reasons"] == ["no decision within the budget of 1800 s"]


def test_only_the_two_versions_rows_count():
    """A straggler of an earlier release (its candidate v2 failing) is not this release's."""
    good = rows_of(answers("good"))
    stale = rows_of(answers("5xx"), versions=("3", "2"))
    stale = [r for r in stale if r["_version"] == "2"]
    judged = cluster_release.judge(release(), good + stale)
    assert judged["outcome"] == "promote"
    assert judged["evidence"] == gate.evidence_from_rows(good)


def test_a_seldon_shadows_rows_get_the_labels_callers_post_to_the_model(tmp_path):
    """Feedback goes to `<sink>/<model>/feedback`; the shadow predictor's rows are in
    `<model>.shadow`: a label reaches the shadow's answer to the same request too, so a
    wrong shadow is judged on quality as a wrong canary is."""
    import pandas as pd

    from core.traffic.rows import TrafficLog, release_rows

    folder = tmp_path / "m"
    requests, shadow, feedback = [], [], []
    for i, (_, request_id, _, latency, predictions, labels) in enumerate(answers("wrong")):
        for row, prediction in enumerate(predictions):
            served = {"_request_id": f"r{i % 300}", "_row": row, "_time": 1.0 + i,
                      "_prediction": prediction, "_latency_ms": latency}  # fmt: skip
            if request_id.startswith("champion"):
                requests.append(served | {"_role": "champion", "_version": "3"})
                label = labels[row] if labels else None
                if label is not None:
                    feedback.append({"_request_id": f"r{i}", "_row": row, "_label": label,
                                     "_time": 2.0 + i})  # fmt: skip
            else:
                shadow.append(served | {"_role": "shadow", "_version": "4"})
    TrafficLog(folder).write("requests", pd.DataFrame(requests))
    TrafficLog(f"{folder}.shadow").write("requests", pd.DataFrame(shadow))
    TrafficLog(folder).write("feedback", pd.DataFrame(feedback))
    rows = release_rows([folder, f"{folder}.shadow"], None)
    labelled = [r for r in rows if r["_role"] == "shadow" and pd.notna(r.get("_label"))]
    assert labelled  # the shadow's rows of labelled requests carry the caller's label
    evidence = gate.evidence_from_rows(rows)
    assert evidence["candidate"]["labelled"] == len(labelled)
    assert evidence["quality"]["drop"] is not None
