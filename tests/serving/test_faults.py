"""kill -9 of each serving process kind in turn under 4 clients (issue #34): the front,
the champion's primary model server and its warm standby (two replicas, as a user's
deploy runs them: integrations/seldon_local/replicas.py), the release's candidate (its
primary), the
release watcher and the front's keeper. After each, the endpoint answers again on the
same port with the same version, protocol (V2) and release (a canary at 50% of v2, still
running), with no command run, and the killed process is replaced. How many seconds each
took is benchmarks/bench_faults.py's to print (docs/performance.md)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from integrations.seldon_local import process
from tests.serving.faults import (
    CLIENTS,
    KINDS,
    RECOVER_SECONDS,
    REPLICAS,
    Load,
    kill_and_recover,
    served_release,
    served_replicas,
    server_pid,
)


def ready_replicas(metrics_url: str) -> float:
    text = requests.get(metrics_url, timeout=10).text
    (sample,) = [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "zenkube_ready_replicas"
    ]
    return sample.value


def test_every_serving_process_killed_in_turn_is_replaced_and_serves_what_it_served(
    tmp_path,
):
    results = []
    with served_release(tmp_path) as served, Load(served.url, served.body) as load:
        start = served.state()
        assert start["protocol"] == "v2" and start["release"] == ("running", "canary", 50.0, "2")
        assert served.front.replicas_note() == f"{REPLICAS}/{REPLICAS} ready"
        for kind in KINDS:
            result = kill_and_recover(served, kind, load)
            results.append(result)
            assert result["replaced"] is not None, (
                f"no new {kind} in {RECOVER_SECONDS:.0f} s: {result}"
            )
            assert result["after"] == start, result
            answer = requests.post(served.url, json=served.body, timeout=10)
            assert answer.status_code == 200 and "outputs" in answer.json(), kind
        # the front restarted once; both champion replicas were restarted by it
        status = served.front.status()
        assert status["front_restarts"] == 1 and status["restarts"] == 2
        assert status["replicas"] == {"ready": REPLICAS, "total": REPLICAS}
        assert ready_replicas(served.front.metrics_url) == REPLICAS
        assert load.answered > 0
    by_kind = {r["kind"]: r for r in results}
    # the champion's primary killed: its standby answers at once, so at most the
    # requests in flight on the killed process fail (one per client), not a restart's worth
    assert by_kind["model server"]["failed"] <= CLIENTS, by_kind["model server"]
    # a standby, the candidate's primary, the watcher or the keeper killed costs callers
    # nothing: the other replica answers meanwhile (the candidate's standby too, so its
    # 5xx share stays zero and the release is not aborted), the others serve no request
    for kind in ("standby", "candidate", "watcher", "keeper"):
        assert by_kind[kind]["failed"] == 0, by_kind[kind]


def first_child(pid: int, group: list[int]) -> int:
    """The first process `pid` started in its group: Seldon's metrics Manager (its
    `SeldonMetrics` starts it before the REST, metrics and gRPC servers)."""
    parent = {p: Path(f"/proc/{p}/stat").read_text().split(")")[-1].split()[1] for p in group}
    return min(p for p in group if parent[p] == str(pid))


def test_the_primary_seldon_server_killed_under_load_costs_no_request(tmp_path):
    """kill -9 of the primary's leader (Seldon Core's microservice: a gunicorn arbiter,
    its worker, its metrics Manager and metrics server in one process group), then of its
    metrics Manager alone. The front found the leader dead and stopped the rest with
    SIGTERM, which ended the Manager while the worker finished its request: the worker
    answered Seldon's own HTTP 500 ("[Errno 32] Broken pipe") in about two kills of three.
    The Manager killed alone made every prediction a 500 while the server looked alive.
    Now the front kills a dead leader's group at once (process.py `kill_group`) and a
    worker that finds the Manager gone ends its server (launch_seldon.py
    `_end_when_metrics_are_gone`): either way the request is cut off and the standby
    answers it."""
    with served_replicas(tmp_path, "seldon") as (front, folder, url, body), Load(url, body) as load:
        for kind in ("leader", "metrics Manager"):
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and (
                load.answered < 20 or front.replicas_note() != f"{REPLICAS}/{REPLICAS} ready"
            ):
                time.sleep(0.2)  # the primary (back) answers again
            leader = server_pid(folder)
            group = process.group_members(leader)
            assert len(group) > 2, group  # the leader and its children: what the front ends
            answered = load.answered
            os.kill(leader if kind == "leader" else first_child(leader, group), signal.SIGKILL)
            deadline = time.monotonic() + 30
            while any(process.is_alive(p) for p in group) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert process.group_members(leader) == [], kind  # the whole group ended
            time.sleep(1.5)  # requests in flight at the kill, and after it, are counted
            assert load.answered > answered, kind  # the standby answered meanwhile
        with load.lock:
            reasons = list(load.reasons)
    assert reasons == [], reasons
