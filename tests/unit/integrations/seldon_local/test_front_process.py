"""The front as a process (router/, no model server behind it): its control socket is
the owner's alone, the serving port has no control paths, a client sending malformed
HTTP cannot grow its log past the cap, kill -9 of the front or of its keeper is undone
by the other (issue #34), and `serve status` tells a front forwarding elsewhere from one
that is down."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import time

import pytest
import requests

from integrations.seldon_local import process
from integrations.seldon_local.front import ModelFront, control_request, served_state

LOG_CAP = 4000


@pytest.fixture
def front(tmp_path, monkeypatch):
    monkeypatch.setenv("ZENKUBE_LOG_MAX_BYTES", str(LOG_CAP))  # the front inherits it
    deep = tmp_path / ("d" * 90)  # a control socket path past the 107-byte limit
    front = ModelFront(deep, "m")
    front.start(process.free_port(), process.free_port(), served={"protocol": "seldon"})
    yield front
    front.stop()


def test_only_the_owner_controls_the_front_and_the_serving_port_has_no_control(front):
    assert len(str(front.control_socket)) > 107
    assert stat.S_IMODE(front.control_socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(front.dir.stat().st_mode) == 0o700
    assert front.status()["pid"] == front.pid
    base = f"http://127.0.0.1:{front.port}"
    for method in ("GET", "PUT"):
        for path in ("/_zenkube/router", "/_zenkube/backend", "/router", "/backend"):
            answer = requests.request(method, base + path, json={"port": 1}, timeout=5)
            assert answer.status_code in (404, 405), (method, path)
    code, answer = control_request(front.control_socket, "PUT", "/backend", {"port": 1234})
    assert code == 200 and front.status()["backend"] == 1234


def test_malformed_requests_cost_a_line_a_minute_not_a_traceback_each(front):
    for _ in range(300):
        with socket.create_connection(("127.0.0.1", front.port), timeout=5) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad\x01Header: " + b"v" * 500 + b"\r\n\r\n")
            conn.recv(1024)
    assert requests.get(f"http://127.0.0.1:{front.port}/metrics", timeout=5).status_code == 200
    text = front.log_file.read_text(errors="replace")
    assert len(text) <= LOG_CAP + 2000  # one check a second: a second's lines over the cap
    assert "vvvvvvvvvv" not in text and "Traceback" not in text


def test_log_traffic_follows_each_deploy_of_a_running_front(front, tmp_path):
    """The deployment's log_traffic reaches a front that is already running."""
    backend = front.status()["backend"]
    assert front.status()["traffic_dir"] == ""
    front.switch(backend, drain=[], traffic={"traffic-dir": str(tmp_path / "t")})
    assert front.status()["traffic_dir"] == str(tmp_path / "t")
    front.switch(backend, drain=[], traffic={})  # log_traffic: false
    assert front.status()["traffic_dir"] == ""


def wait_for(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("not within the time allowed")


def test_a_killed_front_comes_back_on_its_port_with_what_it_served_and_its_release(front):
    """kill -9 of the front: its keeper starts it again from the served record (version,
    protocol, backend, release); serve status and the metrics say it restarted."""
    backend, candidate = process.free_port(), process.free_port()
    front.switch(backend, drain=[], served={"version": "7", "protocol": "v2", "model": "m"})
    front.release_start(candidate, "canary", 30, {"version": "8"}, "", {})
    port, pid, keeper = front.port, front.pid, front.record()["keeper"]
    os.kill(pid, signal.SIGKILL)
    status = wait_for(lambda: (s := front.status()) and s["pid"] != pid and s)
    assert (status["port"], status["backend"], status["keeper"]) == (port, backend, keeper)
    record = served_state(front.state_dir, "m")
    assert (record["version"], record["protocol"], record["front_restarts"]) == ("7", "v2", 1)
    release = front.release_status()
    assert release["active"] and release["state"] == "running" and release["percent"] == 30
    assert release["candidate"]["version"] == "8" and release["candidate"]["port"] == candidate
    assert len(release["resumed_at"]) == 1 and record["release"]["state"] == "running"
    metrics = requests.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=5)
    assert metrics.status_code == 503  # the v2 protocol's path, forwarded (nothing behind)
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    restarts = [line for line in text.splitlines() if line.startswith("zenkube_front_restarts")]
    assert restarts == ['zenkube_front_restarts_total{model="",protocol="v2",version="7"} 1.0']
    assert front.restarts_note().startswith("front 1 (it died; its keeper restarted it")


def test_a_killed_keeper_is_replaced_by_its_front_and_a_stop_still_ends_everything(front):
    pid, keeper, group = front.pid, front.record()["keeper"], front.record()["group"]
    os.kill(keeper, signal.SIGKILL)
    new = wait_for(lambda: (k := front.record()["keeper"]) != keeper and process.is_alive(k) and k)
    assert front.pid == pid and front.status()["keeper"] == new
    os.kill(pid, signal.SIGKILL)  # the new keeper keeps the front as the first did
    wait_for(lambda: (s := front.status()) and s["pid"] != pid)
    front.stop()
    assert process.group_members(group) == [] and front.status() is None
    assert front.record()["protocol"] == "seldon"  # the served state outlives the processes


def test_removing_the_state_folder_ends_the_keeper_and_the_front(front):
    group = front.record()["group"]
    shutil.rmtree(front.dir)
    wait_for(lambda: not process.group_members(group))


def test_a_killed_front_goes_on_with_the_release_evidence_it_had(front):
    """kill -9 of the front (not its keeper) mid-release: `release status` shows the
    evidence gathered before (issue #34), and it grows from there. Nothing listens
    behind the front, so each prediction is a 503 of the champion; a canary's share is
    tried on the candidate first (a 503 too, then a fallback)."""
    backend, candidate = process.free_port(), process.free_port()
    front.switch(backend, drain=[], served={"version": "7", "protocol": "seldon", "model": "m"})
    front.release_start(candidate, "canary", 50, {"version": "8"}, "", {"min_requests": 1000})
    url = f"http://127.0.0.1:{front.port}/api/v1.0/predictions"

    def predict(ids) -> None:
        for i in ids:
            body, puid = {"data": {"ndarray": [[1, 2]]}}, {"Seldon-Puid": f"r{i}"}
            assert requests.post(url, json=body, headers=puid, timeout=10).status_code == 503

    def on_disk() -> dict:
        return json.loads((front.dir / "release.json").read_text())["evidence"]

    predict(range(20))
    before = wait_for(lambda: (e := on_disk())["champion"]["requests"] == 20 and e)
    tried = before["candidate"]["requests"]
    assert 0 < tried < 20 and before["candidate"]["fallbacks"] == tried
    assert before["answered"] == {"champion": 20, "candidate": 0, "candidate_share": 0.0}
    pid = front.pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: (s := front.status()) and s["pid"] != pid)
    release = front.release_status()
    assert release["active"] and len(release["resumed_at"]) == 1
    assert release["evidence"] == before and "with the evidence it had" in release["next"]
    assert "stats" not in release  # the full evidence stays in release.json
    predict(range(20, 25))
    live = front.release_status
    after = wait_for(lambda: (e := live()["evidence"])["answered"]["champion"] == 25 and e)
    assert after["champion"]["requests"] == 25 and after["champion"]["5xx"] == 25


def test_a_restarted_front_keeps_the_count_of_server_restarts(tmp_path):
    """serve status' 'restarts' of the model server outlive the front (router.json)."""
    from integrations.seldon_local.router.proxy import Front

    record = tmp_path / "router.json"
    record.write_text(json.dumps({"restarts": 3, "last_restart": 1.5e9, "front_restarts": 1}))
    status = Front(0, 0, record, restore=True).status()
    assert (status["restarts"], status["last_restart"], status["front_restarts"]) == (3, 1.5e9, 2)
    assert Front(0, 0, record).status()["restarts"] == 0  # a fresh start counts anew


def test_serve_status_tells_a_front_forwarding_elsewhere_from_one_that_is_down(front):
    seldon, elsewhere = process.get_protocol("seldon"), process.free_port()

    def why() -> tuple[str, str]:  # this test's process stands in for a live server
        return process.server_state(os.getpid(), elsewhere, front, seldon, "m", "m")

    assert why() == ("inactive", "the model's front is not forwarding to this server")
    os.kill(front.pid, signal.SIGSTOP)  # alive, but it does not answer: not "down"
    try:
        state, reason = why()
    finally:
        os.kill(front.pid, signal.SIGCONT)
    assert state == "error" and "runs but does not answer on its control socket" in reason
    front.stop()  # its process and its keeper
    state, reason = why()
    assert state == "inactive" and reason.startswith("the model's front is down")
    assert "keeper" in reason and "not forwarding" not in reason
