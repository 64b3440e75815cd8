"""Releases under steady load (issue #27): real Seldon model servers behind the model's
front, 4 clients posting one row per request, the release gate at its defaults
(core/release/gate.py DEFAULTS = configs/deployment.yaml `release:`).

For each candidate it prints what callers saw: the share of requests the candidate
answered, how many of its requests (and of all requests) passed before the gate decided,
the decision and why, and failed requests (a canary's candidate that errs has the request
re-sent to the champion, so it should be 0). Candidates:
  failing   raises on some rows (its server answers 500)
  wrong     trained on flipped labels; the clients feed the true labels back
  slow      the champion's answers, 50 ms later
  good      as good as the champion (labels fed back too)
Then shadow's cost: the champion's p99 seen by callers with and without a shadow copy
to the candidate, interleaved rounds, as a ratio measured in this run.

    .venv/bin/python benchmarks/bench_release.py [--percent 10]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import requests
from common import REPO_ROOT, save, table
from sklearn.base import BaseEstimator, ClassifierMixin

from tests.serving.load import ClientThreads, row_for, seldon_server

CLIENTS = 4


class SlowerBy(BaseEstimator, ClassifierMixin):
    """`model`'s answers, `seconds` later (pickled by value: defined in __main__)."""

    def __init__(self, model=None, seconds: float = 0.05):
        self.model, self.seconds = model, seconds

    def fit(self, X, y):
        return self

    def predict(self, X):
        time.sleep(self.seconds)
        return self.model.predict(X)


def start_servers(root):
    """{name: port} of one Seldon server per model, and (X, y), and the pids to stop."""
    from sklearn.linear_model import LogisticRegression

    from integrations.mlflow.registry import PICKLE_ENV
    from integrations.seldon_local import process
    from integrations.seldon_local.environments import runtime_python
    from tests.serving import release_models

    folders = release_models.models(root)
    X, y = release_models.data()
    folders["slow"] = release_models.save(
        SlowerBy(LogisticRegression().fit(X, y)), root / "slow", X
    )
    seldon = process.get_protocol("seldon")
    python = runtime_python("seldon")
    started = {}
    for name, folder in folders.items():
        port = process.free_port()
        env = {**PICKLE_ENV, "ZENKUBE_HOST": process.HOST}
        command = seldon.command(python, folder, name, port, 1)
        started[name] = (port, process.spawn(command, root / f"{name}.log", env, False))
    for name, (port, pid) in started.items():
        process.wait_healthy(
            pid, seldon.url(port, name, seldon.health_path), root / f"{name}.log", 180
        )
    return {n: p for n, (p, _) in started.items()}, [pid for _, pid in started.values()], X, y


class Load(ClientThreads):
    """4 clients, one row per request; who answered each (Seldon's meta.requestPath)."""

    def __init__(self, url: str, X, y, labels: bool):
        from integrations.seldon_local import process
        from tests.serving.release_models import COLUMNS

        self.url, self.X, self.y, self.labels = url, X, y, labels
        self.seldon, self.columns = process.get_protocol("seldon"), COLUMNS
        self.answers: list[tuple[float, float, str]] = []  # (sent at, seconds, who)
        self.failed = 0
        super().__init__(CLIENTS, join_timeout=None)

    def run(self, client: int) -> None:
        session, i = requests.Session(), 0
        while not self.stop.is_set():
            row = row_for(client, i, len(self.X))
            i += 1
            body = self.seldon.request_body(self.columns, [self.X.iloc[row].tolist()])
            started = time.perf_counter()
            try:
                answer = session.post(self.url, json=body, timeout=30)
                seconds = time.perf_counter() - started
                if answer.status_code != 200:
                    raise ValueError(answer.status_code)
                got = answer.json()
                meta, who = got["meta"], seldon_server(row, got)
                if self.labels:
                    truth = {"data": {"ndarray": [int(self.y.iloc[row])]}}
                    session.post(
                        self.url.replace("predictions", "feedback"),
                        json={"response": {"meta": {"puid": meta["puid"]}}, "truth": truth},
                        timeout=30,
                    )
            except (requests.RequestException, ValueError, KeyError):
                with self.lock:
                    self.failed += 1
                continue
            with self.lock:
                self.answers.append((started, seconds, who))


def release(front, ports, name: str, version: str, percent: float, X, y, labels: bool) -> dict:
    """One canary of candidate `name` under load until the gate decides (or 5 min)."""
    from tests.serving.release_models import COLUMNS

    served = {"version": version, "columns": json.dumps(COLUMNS)}
    started = time.monotonic()
    front.release_start(ports[name], "canary", percent, served, "", {})
    state = {}
    with Load(url(front), X, y, labels) as load:
        while time.monotonic() - started < 300:
            state = front.release_status() or {}
            if state.get("state") in ("decided", "aborted"):
                break
            time.sleep(0.05)
        decided_after = len(load.answers)
        if state.get("state") == "decided":  # what the controller does: promote, then end
            front.release_end("promote", "bench", "decided")
        elif state.get("state") == "running":
            front.release_end("abort", "bench", "undecided after 5 min")
        time.sleep(2)  # traffic goes on through the transition
    if state.get("state") == "decided":  # back to the champion for the next candidate
        front.switch(ports["champion"], drain=[ports[name]], served={"version": "1"})
    before = load.answers[:decided_after]  # until the gate decided (promote moves it all)
    answered_by = sum(1 for _, _, who in before if who == name)
    decision = state.get("decision") or {}
    return {
        "candidate": name,
        "requests": len(load.answers) + load.failed,
        "candidate_share": answered_by / max(1, len(before)),
        "candidate_requests_to_decision": state.get("evidence", {})
        .get("candidate", {})
        .get("requests"),
        "requests_to_decision": decided_after,
        "seconds_to_decision": round(time.monotonic() - started, 1),
        "outcome": decision.get("outcome") or "undecided",
        "why": "; ".join(decision.get("reasons", []))[:90],
        "failed": load.failed,
    }


def url(front) -> str:
    return f"http://127.0.0.1:{front.port}/api/v1.0/predictions"


def p99(load: Load) -> float:
    return float(np.percentile([s for _, s, _ in load.answers], 99)) * 1000


def shadow_cost(front, ports, X, y, rounds: int = 3, seconds: float = 15) -> dict:
    """The champion's p99 for callers without and with a shadow, interleaved rounds."""
    from tests.serving.release_models import COLUMNS

    plain, shadowed, skipped, copied = [], [], 0, 0
    for _ in range(rounds):
        with Load(url(front), X, y, False) as load:
            time.sleep(seconds)
        plain.append(p99(load))
        served = {"version": "2", "columns": json.dumps(COLUMNS)}
        undecided = {"min_requests": 10**6, "budget_requests": 10**6}
        front.release_start(ports["good"], "shadow", 0, served, "", undecided)
        with Load(url(front), X, y, False) as load:
            time.sleep(seconds)
        shadowed.append(p99(load))
        evidence = front.release_status()["evidence"]
        skipped += evidence["shadow"]["skipped"]
        copied += evidence["candidate"]["requests"]
        assert {who for _, _, who in load.answers} == {"champion"}, "a shadow answered a caller"
        front.release_end("abort", "bench", "measured")
    return {
        "p99_ms_without": float(np.median(plain)),
        "p99_ms_with_shadow": float(np.median(shadowed)),
        "ratio": float(np.median(shadowed) / np.median(plain)),
        "copies": copied,
        "copies_skipped": skipped,
    }


def main() -> None:
    import logging
    import tempfile
    from pathlib import Path

    from integrations.seldon_local import process
    from integrations.seldon_local.front import ModelFront
    from tests.serving.release_models import COLUMNS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--percent", type=float, default=10.0, help="canary share (10)")
    args = parser.parse_args()
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)  # the pickle-format notice
    root = Path(tempfile.mkdtemp(prefix="zenkube-bench-release-"))
    print("starting 5 model servers (champion, failing, wrong, slow, good)...", flush=True)
    ports, pids, X, y = start_servers(root)
    front = ModelFront(root / "state", "bench-release")
    served = {"model": "bench-release", "version": "1", "protocol": "seldon",
              "columns": json.dumps(COLUMNS)}  # fmt: skip
    front.start(process.free_port(), ports["champion"], served=served)
    try:
        results = []
        for name, version, labels in (
            ("failing", "4", False), ("wrong", "3", True), ("slow", "5", False), ("good", "2", True),
        ):  # fmt: skip
            print(f"canary {args.percent:g}%: {name}...", flush=True)
            results.append(release(front, ports, name, version, args.percent, X, y, labels))
        print("shadow: interleaved rounds...", flush=True)
        shadow = shadow_cost(front, ports, X, y)
    finally:
        front.stop()
        for pid in pids:
            process.stop_group(pid)
    print()
    print(
        table(
            f"Canary at {args.percent:g}% with {CLIENTS} clients, gate at its defaults",
            [
                "candidate",
                "outcome",
                "its share",
                "its reqs to decision",
                "all reqs to decision",
                "seconds",
                "failed",
                "why",
            ],  # fmt: skip
            [
                [
                    r["candidate"],
                    r["outcome"],
                    f"{r['candidate_share']:.1%}",
                    r["candidate_requests_to_decision"],
                    r["requests_to_decision"],
                    r["seconds_to_decision"],
                    r["failed"],
                    r["why"],
                ]  # fmt: skip
                for r in results
            ],
        )
    )
    print()
    print(
        table(
            "Shadow's cost to callers (champion p99, median of 3 interleaved rounds)",
            ["p99 ms without", "p99 ms with shadow", "ratio", "copies", "skipped (>32 in flight)"],
            [
                [
                    shadow["p99_ms_without"],
                    shadow["p99_ms_with_shadow"],
                    f"{shadow['ratio']:.2f}x",
                    shadow["copies"],
                    shadow["copies_skipped"],
                ]
            ],  # fmt: skip
        )
    )
    print(
        f"\nJSON: {save('release', {'canary': results, 'shadow': shadow, 'repo': str(REPO_ROOT)})}"
    )


if __name__ == "__main__":
    main()
