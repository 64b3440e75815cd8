"""The front as a process (router.py, no model server behind it): its control socket is
the owner's alone, the serving port has no control paths, and a client sending malformed
HTTP cannot grow its log past the cap."""

from __future__ import annotations

import socket
import stat

import pytest
import requests

from integrations.seldon_local import process
from integrations.seldon_local.front import ModelFront, control_request

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
