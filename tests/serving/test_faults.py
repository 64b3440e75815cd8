"""kill -9 of each serving process kind in turn under 4 clients (issue #34): the front,
the model server, the release's candidate, the release watcher and the front's keeper.
After each, the endpoint answers again on the same port with the same version, protocol
(V2) and release (a canary at 50% of v2, still running), with no command run. How many
seconds each took is benchmarks/bench_faults.py's to print (docs/performance.md)."""

from __future__ import annotations

import requests

from tests.serving.faults import KINDS, Load, kill_and_recover, served_release


def test_every_serving_process_killed_in_turn_is_replaced_and_serves_what_it_served(
    tmp_path,
):
    results = []
    with served_release(tmp_path) as served, Load(served.url, served.body) as load:
        start = served.state()
        assert start["protocol"] == "v2" and start["release"] == ("running", "canary", 50.0, "2")
        for kind in KINDS:
            result = kill_and_recover(served, kind, load)
            results.append(result)
            assert result["replaced"] is not None, f"no new {kind} within a minute: {result}"
            assert result["after"] == start, result
            answer = requests.post(served.url, json=served.body, timeout=10)
            assert answer.status_code == 200 and "outputs" in answer.json(), kind
        # the front restarted once; the model servers behind it were restarted by it
        status = served.front.status()
        assert status["front_restarts"] == 1 and status["restarts"] == 1
        assert load.answered > 0
    by_kind = {r["kind"]: r for r in results}
    # a candidate, a watcher or a keeper killed costs callers nothing: the champion
    # answers a canary's share while its candidate restarts, the others serve no request
    for kind in ("candidate", "watcher", "keeper"):
        assert by_kind[kind]["failed"] == 0, by_kind[kind]
