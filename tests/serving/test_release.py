"""Releases through the model's front under load (real processes: the front, and Seldon
model servers for a champion and the candidates; no ZenML pipeline, to keep it quick).

Four clients send steadily while a release runs; every answer says which server gave it
(each server runs under its own model name, which Seldon puts in meta.requestPath), so
who answered is checked per request id.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pandas as pd
import pytest
import requests

from integrations.mlflow_registry import PICKLE_ENV
from integrations.seldon_local import process
from integrations.seldon_local.environments import runtime_python
from integrations.seldon_local.front import ModelFront
from integrations.traffic import read_kind
from tests.serving import release_models

CLIENTS = 4
SELDON = process.get_protocol("seldon")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Four model servers started together ({name: port}) and the data they score."""
    root = tmp_path_factory.mktemp("release")
    folders = release_models.models(root)
    python = runtime_python("seldon")
    started = {}
    try:
        for name, folder in folders.items():
            port = process.free_port()
            command = SELDON.command(python, folder, name, port, 1)
            env = {**PICKLE_ENV, "ZENKUBE_HOST": process.HOST}
            started[name] = (port, process.spawn(command, root / f"{name}.log", env, False))
        for name, (port, pid) in started.items():
            url = SELDON.url(port, name, SELDON.health_path)
            process.wait_healthy(pid, url, root / f"{name}.log", 120)
        X, y = release_models.data()
        yield {name: port for name, (port, _) in started.items()}, X, y, root
    finally:  # stopped together: each takes a few seconds
        stops = [
            threading.Thread(target=process.stop_group, args=(pid,)) for _, pid in started.values()
        ]
        for stop in stops:
            stop.start()
        for stop in stops:
            stop.join()


@pytest.fixture(scope="module")
def front(servers, tmp_path_factory):
    ports, _, _, _ = servers
    import os

    os.environ["ZENKUBE_TRAFFIC_FLUSH_SECONDS"] = "0.5"  # the front inherits it
    front = ModelFront(tmp_path_factory.mktemp("state"), "houses")
    served = {
        "model": "houses",
        "version": "1",
        "protocol": "seldon",
        "columns": json.dumps(release_models.COLUMNS),
    }
    traffic = {"traffic-dir": str(front.state_dir / "traffic"), "traffic-max-mb": 64}
    front.start(process.free_port(), ports["champion"], served=served, traffic=traffic)
    os.environ.pop("ZENKUBE_TRAFFIC_FLUSH_SECONDS")
    yield front
    front.stop()


class Clients:
    """Four clients posting one row each request; two send their own request id
    (Seldon-Puid), two do not. With `labels`, each answer's true label is sent back as
    feedback. Records who answered each request (by request id)."""

    def __init__(self, url: str, X: pd.DataFrame, y: pd.Series, labels: bool = False):
        self.url, self.X, self.y, self.labels = url, X, y, labels
        self.answered: dict[str, str] = {}  # request id -> the server that answered
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.run_id = uuid.uuid4().hex[:6]
        self.threads = [
            threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(CLIENTS)
        ]

    def run(self, client: int) -> None:
        session = requests.Session()
        i = 0
        while not self.stop.is_set():
            row = (client * 997 + i * 31) % len(self.X)
            body = SELDON.request_body(release_models.COLUMNS, [self.X.iloc[row].tolist()])
            headers = {"Seldon-Puid": f"{self.run_id}-{client}-{i}"} if client < 2 else {}
            i += 1
            try:
                answer = session.post(self.url, json=body, headers=headers, timeout=30)
                if answer.status_code != 200:
                    raise ValueError(f"HTTP {answer.status_code}: {answer.text[:200]}")
                meta = answer.json()["meta"]
                who = meta["requestPath"]["classifier"].removeprefix("zenkube/")
                if self.labels:
                    feedback = {
                        "response": {"meta": {"puid": meta["puid"]}},
                        "truth": {"data": {"ndarray": [int(self.y.iloc[row])]}},
                    }
                    sent = session.post(
                        self.url.replace("predictions", "feedback"), json=feedback, timeout=30
                    )
                    if sent.status_code != 200:
                        raise ValueError(f"feedback HTTP {sent.status_code}: {sent.text[:200]}")
            except (requests.RequestException, ValueError, KeyError) as exc:
                with self.lock:
                    self.failures.append(repr(exc))
                continue
            with self.lock:
                self.answered[meta["puid"]] = who

    def wait_for(self, requests_done: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.answered) < requests_done and time.monotonic() < deadline:
            time.sleep(0.05)

    def share(self, name: str) -> float:
        with self.lock:
            return sum(v == name for v in self.answered.values()) / max(1, len(self.answered))

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def url_of(front: ModelFront) -> str:
    return f"http://127.0.0.1:{front.port}/api/v1.0/predictions"


def served(version: str) -> dict:
    return {"version": version, "columns": json.dumps(release_models.COLUMNS)}


def wait_state(front: ModelFront, states: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = front.release_status()
        if state and state["state"] in states:
            return state
        time.sleep(0.1)
    raise AssertionError(f"the release did not reach {states}: {front.release_status()}")


UNDECIDED = {"min_requests": 100000, "budget_requests": 100000}


def test_a_canary_at_10_percent_answers_10_percent_and_ids_stick(servers, front):
    ports, X, y, _ = servers
    front.release_start(ports["good"], "canary", 10, served("2"), "", UNDECIDED)
    with Clients(url_of(front), X, y) as clients:
        clients.wait_for(600)
    assert clients.failures == []
    assert abs(clients.share("good") - 0.10) <= 0.03, clients.share("good")
    assert set(clients.answered.values()) == {"champion", "good"}
    state = front.release_status()
    answered = state["evidence"]["answered"]
    assert answered["candidate"] == sum(v == "good" for v in clients.answered.values())
    assert state["evidence"]["candidate"]["fallbacks"] == 0
    # a request id sent again lands on the same side
    for puid, who in list(clients.answered.items())[:40]:
        if puid.startswith(clients.run_id):
            body = SELDON.request_body(release_models.COLUMNS, [X.iloc[0].tolist()])
            again = requests.post(url_of(front), json=body, headers={"Seldon-Puid": puid})
            assert again.json()["meta"]["requestPath"]["classifier"] == f"zenkube/{who}"
    ended = front.release_end("abort", "test", "share measured", timeout=10)
    assert ended["state"] == "aborted" and front.status()["backend"] == ports["champion"]


def test_a_shadow_candidate_answers_no_caller_and_its_answers_are_recorded(servers, front):
    ports, X, y, _ = servers
    front.release_start(ports["wrong"], "shadow", 0, served("3"), "", UNDECIDED)
    with Clients(url_of(front), X, y) as clients:
        clients.wait_for(300)
    deadline = time.monotonic() + 30
    while front.release_status()["evidence"]["shadow"]["inflight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    state = front.release_status()
    assert clients.failures == []
    assert set(clients.answered.values()) == {"champion"}  # every caller got the champion's
    evidence = state["evidence"]
    candidate, skipped = evidence["candidate"], evidence["shadow"]["skipped"]
    # every answered request was copied to the shadow, or counted as skipped (over 32
    # copies in flight: the shadow server here answers one request at a time)
    assert candidate["requests"] + skipped == evidence["champion"]["ok"] >= 300
    assert candidate["ok"] == candidate["requests"] > skipped
    front.release_end("abort", "test", "shadow checked", timeout=10)
    time.sleep(1.5)  # the recorder writes every 0.5 s here
    rows = read_kind(front.state_dir / "traffic", "requests", None)
    rows = rows[rows["_request_id"].isin(set(clients.answered))]
    shadow, served_rows = rows[rows["_role"] == "shadow"], rows[rows["_role"] != "shadow"]
    assert set(served_rows["_role"]) == {"champion"} and set(served_rows["_version"]) == {"1"}
    assert set(served_rows["_request_id"]) == set(clients.answered)
    assert set(shadow["_version"]) == {"3"} and len(shadow) >= 0.9 * len(served_rows)
    assert set(shadow["_request_id"]) <= set(clients.answered)


def test_a_candidate_failing_on_some_rows_is_aborted_by_the_gate_and_no_caller_fails(
    servers, front
):
    ports, X, y, _ = servers
    limits = {"min_requests": 50}
    front.release_start(ports["failing"], "canary", 30, served("4"), "", limits)
    with Clients(url_of(front), X, y) as clients:
        state = wait_state(front, {"aborted", "decided"})
        clients.wait_for(len(clients.answered) + 100)  # and traffic goes on
    assert clients.failures == []
    assert state["state"] == "aborted" and state["decision"]["by"] == "gate"
    assert "5xx" in state["decision"]["reasons"][0]
    evidence = front.release_status()["evidence"]["candidate"]
    assert evidence["5xx"] == evidence["fallbacks"] > 0
    assert evidence["requests"] < 150  # aborted within a few dozen of its requests
    # after the abort, only the champion answers
    late = list(clients.answered.values())[-60:]
    assert set(late) <= {"champion", "failing"} and late[-20:] == ["champion"] * 20


def test_a_candidate_with_wrong_answers_is_aborted_on_the_labels_fed_back(servers, front):
    ports, X, y, _ = servers
    limits = {"min_requests": 50, "min_labelled": 20}
    front.release_start(ports["wrong"], "canary", 30, served("3"), "", limits)
    with Clients(url_of(front), X, y, labels=True) as clients:
        state = wait_state(front, {"aborted", "decided"})
    assert clients.failures == []
    assert state["state"] == "aborted" and state["decision"]["by"] == "gate"
    assert any(r.startswith("accuracy") for r in state["decision"]["reasons"]), state["decision"]
    quality = state["evidence"]["quality"]
    assert quality["candidate"] < quality["champion"] - 0.2  # trained on flipped labels


def test_a_good_candidate_is_decided_then_promoted_under_load(servers, front):
    ports, X, y, _ = servers
    limits = {"min_requests": 50, "min_labelled": 20}
    front.release_start(ports["good"], "canary", 30, served("2"), "", limits)
    with Clients(url_of(front), X, y, labels=True) as clients:
        state = wait_state(front, {"aborted", "decided"})
        assert state["state"] == "decided", state["decision"]
        assert state["decision"]["outcome"] == "promote" and state["active"]
        ended = front.release_end("promote", "release (canary 30%) by test", "moved")
        done = len(clients.answered)
        clients.wait_for(done + 100)
    assert clients.failures == []
    assert ended["state"] == "promoted" and front.status()["backend"] == ports["good"]
    assert front.record()["version"] == "2"
    late = list(clients.answered.values())[-50:]
    assert late == ["good"] * 50  # all traffic goes to the promoted candidate
