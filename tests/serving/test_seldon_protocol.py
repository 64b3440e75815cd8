"""The local Seldon deployer with protocol `seldon`: real HTTP to the real Seldon runtime."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
from zenml.client import Client

from app import runner as runs
from core.traffic.rows import read_kind, stack_folder
from integrations.seldon_local import client
from tests.serving.helpers import deploy_folder, serve_champion_for_tests
from tests.serving.load import wrong_answers

MODEL = "served-model"


@pytest.fixture(scope="module")
def served(module_store):
    yield from serve_champion_for_tests(MODEL, "seldon")


def post(url, body=None, data=None, headers=None):
    return requests.post(url, json=body, data=data, headers=headers, timeout=30)


def test_rest_predictions_equal_in_process_predictions(served):
    info, test, model = served
    assert info.prediction_url.startswith("http://127.0.0.1:")
    predicted = client.predict(info.prediction_url, "seldon", test.features)
    np.testing.assert_array_equal(predicted, model.predict(test.features))


def test_ndarray_without_names_and_tensor_forms_work(served):
    info, test, model = served
    rows = test.features.head(4)
    expected = model.predict(rows).tolist()
    plain = post(info.prediction_url, {"data": {"ndarray": rows.to_numpy().tolist()}})
    assert plain.status_code == 200 and plain.json()["data"]["ndarray"] == expected
    tensor = {
        "data": {"tensor": {"shape": list(rows.shape), "values": rows.to_numpy().ravel().tolist()}}
    }
    assert post(info.prediction_url, tensor).json()["data"]["ndarray"] == expected


def test_health_endpoints_answer(served):
    info, _, _ = served
    base = info.prediction_url.rsplit("/api/", 1)[0]
    assert requests.get(base + "/health/ping", timeout=5).status_code == 200
    assert requests.get(base + "/health/status", timeout=5).status_code == 200


def test_cluster_path_api_v0_1_answers_too(served):
    info, test, model = served
    url = info.prediction_url.replace("/api/v1.0/", "/api/v0.1/")
    rows = test.features.head(2)
    body = client.request_body("seldon", rows)
    assert post(url, body).json()["data"]["ndarray"] == model.predict(rows).tolist()


BAD_REQUESTS = {
    "wrong number of columns": (
        {"data": {"ndarray": [[1.0, 2.0, 3.0]]}},
        "has 3 values but the model expects 30",
    ),
    "unknown column": (
        {"data": {"names": ["nope"], "ndarray": [[1.0]]}},
        "unknown column(s): nope",
    ),
    "strings for numbers": (None, "expects numbers; row 0 has 'abc'"),
    "Infinity": (None, "send finite numbers"),
    "empty batch": ({"data": {"ndarray": []}}, "the batch is empty"),
    "missing data": ({"foo": 1}, 'missing "data"'),
}


@pytest.mark.parametrize("kind", list(BAD_REQUESTS))
def test_bad_request_is_400_with_reason_and_server_survives(served, kind):
    info, test, model = served
    body, reason = BAD_REQUESTS[kind]
    columns = list(test.features.columns)
    row = test.features.iloc[0].tolist()
    if kind == "strings for numbers":
        body = {"data": {"names": columns, "ndarray": [["abc", *row[1:]]]}}
    if kind == "Infinity":
        response = post(
            info.prediction_url,
            data=json.dumps({"data": {"names": columns, "ndarray": [[float("inf"), *row[1:]]]}}),
            headers={"Content-Type": "application/json"},
        )
    else:
        response = post(info.prediction_url, body)
    assert response.status_code == 400, response.text
    assert reason in response.json()["status"]["info"]
    good = client.predict(info.prediction_url, "seldon", test.features.head(1))
    assert good == model.predict(test.features.head(1)).tolist()


def test_nan_and_null_are_missing_values_the_model_imputes(served):
    info, test, model = served
    columns = list(test.features.columns)
    row = test.features.iloc[0].tolist()
    frame = test.features.head(1).copy()
    frame.iloc[0, 0] = float("nan")
    expected = model.predict(frame).tolist()
    for first in ("NaN", "null"):
        body = json.dumps({"data": {"names": columns, "ndarray": [row]}})
        body = body.replace(f"[[{json.dumps(row[0])}", f"[[{first}", 1)
        response = post(
            info.prediction_url, data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["ndarray"] == expected


def test_invalid_json_empty_and_oversized_bodies_are_refused_with_a_reason(served):
    info, _, _ = served
    headers = {"Content-Type": "application/json"}
    invalid = post(info.prediction_url, data="{not json", headers=headers)
    assert invalid.status_code == 400 and "not valid JSON" in invalid.json()["status"]["info"]
    empty = post(info.prediction_url, data="", headers=headers)
    assert empty.status_code == 400 and "empty body" in empty.json()["status"]["info"]
    huge = post(info.prediction_url, data=b" " * (65 * 1024 * 1024), headers=headers)
    assert huge.status_code == 413 and "the limit is" in huge.json()["status"]["info"]


def test_bounded_concurrent_load_has_no_errors(served):
    info, test, model = served
    body = client.request_body("seldon", test.features.head(1))
    expected = model.predict(test.features.head(1)).tolist()

    def ndarray(answer: dict) -> list:
        return answer["data"]["ndarray"]

    assert wrong_answers(info.prediction_url, body, expected, ndarray, each=250) == 0


def test_redeploying_the_same_version_is_a_no_op(served):
    info, _, _ = served
    again = runs.deploy(None, {"model_name": MODEL, "protocol": "seldon"})
    assert again.service_id == info.service_id
    assert again.prediction_url == info.prediction_url


def copy_of_served(folder: Path):
    """The served model's files copied to `folder`: (the served service, `folder`)."""
    service = Client().active_stack.model_deployer.services_for(MODEL)[0]
    shutil.copytree(service.model_dir, folder)
    return service, folder


def test_broken_new_model_leaves_the_old_one_serving(served, tmp_path):
    info, test, model = served
    deployer = Client().active_stack.model_deployer
    _, broken = copy_of_served(tmp_path / "broken")
    (broken / "model.pkl").write_bytes(b"this is not a pickle")
    with pytest.raises(RuntimeError) as failure:
        deploy_folder(MODEL, broken, "broken", start_timeout=60)
    message = str(failure.value)
    assert "Last log lines" in message or "Smoke prediction failed" in message
    if "Last log lines" in message:  # the log it points to is kept, not deleted with the try
        kept = Path(message.split("Last log lines (")[1].split("):")[0])
        assert kept.exists() and kept.read_text(errors="replace").strip()
    rows = test.features.head(3)
    assert client.predict(info.prediction_url, "seldon", rows) == model.predict(rows).tolist()
    (current,) = deployer.services_for(MODEL)
    assert str(current.uuid) == info.service_id


def answered_again(url: str, rows, expected, within: float = 120.0) -> float:
    """Seconds until the endpoint answers `rows` with `expected` again (no command run)."""
    import time

    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            if client.predict(url, "seldon", rows, timeout=5) == expected:
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - 503 while the server restarts
            pass
        time.sleep(0.2)
    raise AssertionError(f"not answering {within:.0f}s after the kill")


def test_a_killed_server_is_restarted_by_the_front_without_any_command(served):
    info, test, model = served
    deployer = Client().active_stack.model_deployer
    service = deployer.services_for(MODEL)[0]
    before = service.front.status()["restarts"]
    killed = service.pid
    os.killpg(killed, 9)  # the whole server, leader and workers
    rows = test.features.head(2)
    # as fast as the server starts (~10 s on an idle machine; its start timeout at most)
    answered_again(info.prediction_url, rows, model.predict(rows).tolist())
    (service,) = deployer.services_for(MODEL)
    assert service.is_running and service.pid != killed  # the record names the new server
    # The front counts the restart when its own health poll (every 0.25 s) sees the new
    # server; a request it forwards can reach that server a moment earlier.
    status = service.front.status()
    deadline = time.monotonic() + 30
    while status["restarts"] == before and time.monotonic() < deadline:
        time.sleep(0.2)
        status = service.front.status()
    assert status["restarts"] == before + 1 and status["last_restart"]
    assert "the server died" in deployer.get_model_server_info(service)["RESTARTS"]  # status
    metrics = requests.get(info.details["METRICS_URL"], timeout=10).text
    assert "zenkube_server_restarts_total{" in metrics


def test_a_killed_leader_leaves_no_workers_behind_and_serve_stop_ends_everything(served):
    """kill -9 of the server's main process leaves its gunicorn workers holding the port:
    the front ends them and starts the server again; `serve stop` ends all of it."""
    import time

    from integrations.seldon_local.process import group_members, is_alive

    info, test, model = served
    deployer = Client().active_stack.model_deployer
    (service,) = deployer.services_for(MODEL)
    leader, before = service.pid, service.front.status()["restarts"]
    workers = [p for p in group_members(leader) if p != leader]
    assert workers
    os.kill(leader, 9)
    deadline = time.monotonic() + 120
    while service.front.status()["restarts"] == before:  # the new server is up
        assert time.monotonic() < deadline, "the server was not restarted"
        time.sleep(0.2)
    assert not any(is_alive(p) for p in workers)  # ended, not left serving
    rows = test.features.head(2)
    answered_again(info.prediction_url, rows, model.predict(rows).tolist())
    (service,) = deployer.services_for(MODEL)
    second = service.pid
    assert second != leader and service.is_running
    deployer.stop_model_server(service.uuid, timeout=30)
    assert group_members(second) == []
    runs.deploy(None, {"model_name": MODEL, "protocol": "seldon"})
    assert client.predict(info.prediction_url, "seldon", rows) == model.predict(rows).tolist()


def test_new_version_replaces_the_old_one_on_the_same_port(served, tmp_path):
    info, test, model = served
    deployer = Client().active_stack.model_deployer
    current, copy = copy_of_served(tmp_path / "v-next")
    new = deploy_folder(MODEL, copy, "next")
    assert new.uuid != current.uuid
    assert new.prediction_url == current.prediction_url
    (only,) = deployer.services_for(MODEL)
    assert only.uuid == new.uuid and only.config.model_version == "next"
    assert not current.workdir.exists()
    rows = test.features.head(2)
    assert client.predict(new.prediction_url, "seldon", rows) == model.predict(rows).tolist()


def test_a_wrong_method_or_path_is_405_or_404_with_a_reason_and_the_server_serves_on(served):
    info, test, model = served
    base = info.prediction_url.rsplit("/api/", 1)[0]
    for method in ("GET", "PUT", "DELETE"):
        answer = requests.request(method, info.prediction_url, timeout=10)
        assert answer.status_code == 405, (method, answer.text)
        assert "use POST" in answer.json()["status"]["info"]
    for path in ("/api/v1.0/nope", "/nope"):
        answer = requests.post(base + path, json={}, timeout=10)
        assert (
            answer.status_code == 404 and "/api/v1.0/predictions" in answer.json()["status"]["info"]
        )
    rows = test.features.head(2)
    assert client.predict(info.prediction_url, "seldon", rows) == model.predict(rows).tolist()


TENSOR_PROBES = {
    "values given as strings": (
        {"data": {"tensor": {"shape": [1, 30], "values": ["1"] * 30}}},
        "data.tensor.values holds only numbers",
    ),
    "negative shape": (
        {"data": {"tensor": {"shape": [-1, 30], "values": [1.0] * 30}}},
        "has a negative dimension",
    ),
    "fractional shape": (
        {"data": {"tensor": {"shape": [1.5, 30], "values": [1.0] * 30}}},
        "must be [rows, columns] (two integers)",
    ),
    "shape and values disagree": (
        {"data": {"tensor": {"shape": [2, 30], "values": [1.0] * 30}}},
        "needs 60 values; 30 were sent",
    ),
    # 83 bytes that used to allocate 16 million rows (7 s, 1.1 GB) before answering.
    "a shape product far beyond its values": (
        {"data": {"tensor": {"shape": [16000000, 0], "values": []}}},
        "16000000 rows in one request; the limit is",
    ),
}


@pytest.mark.parametrize("kind", list(TENSOR_PROBES))
def test_tensor_and_range_probes_are_400_with_a_reason_and_a_valid_request_follows(served, kind):
    info, test, model = served
    body, reason = TENSOR_PROBES[kind]
    response = post(info.prediction_url, body)
    assert response.status_code == 400, response.text
    assert reason in response.json()["status"]["info"]
    rows = test.features.head(1)
    assert client.predict(info.prediction_url, "seldon", rows) == model.predict(rows).tolist()


def test_a_form_encoded_json_field_is_served_and_a_bad_one_is_a_400(served):
    """Seldon's own client can send the message as a form field `json=…`."""
    info, test, model = served
    rows = test.features.head(2)
    message = json.dumps(client.request_body("seldon", rows))
    good = requests.post(info.prediction_url, data={"json": message}, timeout=30)
    assert good.status_code == 200, good.text
    assert good.json()["data"]["ndarray"] == model.predict(rows).tolist()
    base = info.prediction_url.rsplit("/api/", 1)[0]
    for url, form, reason in (
        (info.prediction_url, {"json": "{nope"}, "the json form field is not valid JSON"),
        (base + "/predict", {"json": "{nope"}, "the json form field is not valid JSON"),
        (info.prediction_url, {"other": "1"}, "needs a field json="),
    ):
        bad = requests.post(url, data=form, timeout=30)
        assert bad.status_code == 400, (url, bad.text)
        assert reason in bad.json()["status"]["info"]


def test_a_chunked_body_over_the_cap_is_413_and_the_server_serves_on(served):
    info, test, model = served

    def chunks():  # no Content-Length: the cap must hold while the body streams in
        for _ in range(66):
            yield b" " * 2**20

    response = requests.post(
        info.prediction_url,
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413 and "the limit is" in response.json()["status"]["info"]
    rows = test.features.head(1)
    assert client.predict(info.prediction_url, "seldon", rows) == model.predict(rows).tolist()


def test_idle_and_slow_clients_do_not_starve_a_valid_request(served):
    """Connections that send nothing, or a body byte by byte, hold no worker."""
    import socket

    info, test, model = served
    port = int(info.prediction_url.split(":")[2].split("/")[0])
    held = []
    for i in range(6):
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        if i % 2:  # a slow client: headers sent, the body promised but never finished
            conn.sendall(
                b"POST /api/v1.0/predictions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
        held.append(conn)
    try:
        rows = test.features.head(3)
        body = client.request_body("seldon", rows)
        for _ in range(3):  # the old sync workers stalled here until their 5000 s timeout
            answer = requests.post(info.prediction_url, json=body, timeout=5)
            assert answer.status_code == 200
            assert answer.json()["data"]["ndarray"] == model.predict(rows).tolist()
    finally:
        for conn in held:
            conn.close()


def test_logs_never_hold_request_values(served):
    info, test, model = served
    deployer = Client().active_stack.model_deployer
    service = deployer.services_for(MODEL)[0]
    columns = list(test.features.columns)
    row = test.features.iloc[0].tolist()
    marker = "PRIVATE-7f3a9c"
    for body in (
        {"data": {"names": columns, "ndarray": [[marker * 1000, *row[1:]]]}},
        {"data": {"names": columns, "ndarray": [[marker]]}},
        {"data": {"tensor": {"shape": [1, 30], "values": [marker] * 30}}},
    ):
        answer = post(info.prediction_url, body)
        assert answer.status_code == 400
        assert len(answer.json()["status"]["info"]) < 300  # a short prefix, not the value
    logs = service.log_file.read_text(errors="replace") + service.front.log_file.read_text(
        errors="replace"
    )
    assert "refused a request" in logs  # the refusals were logged, without their reasons
    assert marker not in logs


def test_the_control_plane_is_the_owners_socket_not_the_serving_port(served):
    import stat

    info, test, model = served
    base = info.prediction_url.rsplit("/api/", 1)[0]
    for method, path in (("PUT", "/_zenkube/backend"), ("GET", "/_zenkube/router")):
        answer = requests.request(method, base + path, json={"port": 1}, timeout=10)
        assert answer.status_code == 404, answer.text
    (service,) = Client().active_stack.model_deployer.services_for(MODEL)
    socket_file = service.front.control_socket
    assert stat.S_ISSOCK(socket_file.stat().st_mode)
    assert stat.S_IMODE(socket_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(socket_file.parent.stat().st_mode) == 0o700
    assert service.front.status()["backend"] == service.backend_port
    rows = test.features.head(2)
    assert client.predict(info.prediction_url, "seldon", rows) == model.predict(rows).tolist()


def test_web_pages_are_refused_and_feedback_is_json_or_seldons_form_field(served):
    info, test, _ = served
    body = json.dumps(client.request_body("seldon", test.features.head(1)))
    foreign = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
    feedback = info.prediction_url.replace("/predictions", "/feedback")
    base = info.prediction_url.rsplit("/api/", 1)[0]
    label = json.dumps({"response": {"meta": {"puid": "p"}}, "truth": {"data": {"ndarray": [1]}}})
    for url, data in ((info.prediction_url, body), (feedback, label)):
        answer = post(url, data=data, headers=foreign)
        assert answer.status_code == 403 and "ZENKUBE_CORS_ORIGINS" in answer.text
        assert "Access-Control-Allow-Origin" not in answer.headers
    # a page's cross-origin <form> POST: the form body SeldonClient sends, with what a
    # browser adds (Origin; Sec-Fetch-Site, which an <img>'s GET carries without Origin)
    browser = [
        {
            "Origin": "https://evil.example",
            "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "navigate",
        },
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},  # a sandboxed page
        {"Sec-Fetch-Site": "same-site"},  # another port of this host, Origin left out
    ]
    for headers in browser:
        for url in (feedback, base + "/send-feedback", base + "/predict"):
            answer = requests.post(url, data={"json": label}, headers=headers, timeout=30)
            assert answer.status_code == 403, (url, headers, answer.text)
            assert "requests from web pages" in answer.json()["status"]["info"]
    image = requests.get(base + "/predict", params={"json": body}, headers=browser[2], timeout=30)
    assert image.status_code == 403
    # typed in the address bar (Sec-Fetch-Site: none): health is answered
    typed = requests.get(base + "/health/ping", headers={"Sec-Fetch-Site": "none"}, timeout=10)
    assert typed.status_code == 200
    preflight = requests.options(
        info.prediction_url,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 403 and "Access-Control-Allow-Origin" not in preflight.headers
    answer = post(feedback, data=label, headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415 and "application/json" in answer.json()["status"]["info"]
    assert "form field json=" in answer.json()["status"]["info"]
    # no Origin (curl, scripts): served, and Seldon's own CORS headers are gone
    answer = post(info.prediction_url, data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200 and "Access-Control-Allow-Origin" not in answer.headers


def seldon_client(info, rows, labels) -> dict:
    """seldon-core 1.18's own SeldonClient, run by the pinned Seldon runtime's python."""
    from integrations.seldon_local.environments import runtime_python

    spec = {
        "endpoint": info.prediction_url.split("//", 1)[1].split("/", 1)[0],
        "rows": rows.to_numpy().tolist(),
        "names": list(rows.columns),
        "labels": list(labels),
    }
    script = Path(__file__).with_name("seldon_client_calls.py")
    done = subprocess.run(
        [str(runtime_python("seldon")), str(script), json.dumps(spec)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_seldons_own_client_predicts_and_sends_feedback_end_to_end(served):
    """SeldonClient(gateway="seldon"): predict with ndarray and tensor payloads and column
    names, feedback with truth (recorded, joined by puid), and the microservice API's form
    field json=… on /predict and /send-feedback (a reward without truth: Seldon's server
    takes it). SeldonClient sends no Origin or Sec-Fetch-Site, so the web-page rule lets it."""
    info, test, model = served
    rows = test.features.head(5)
    labels = test.frame[test.target].head(5).tolist()
    expected = model.predict(rows).tolist()
    done = seldon_client(info, rows, labels)
    for call in ("predict_ndarray", "predict_tensor", "microservice_predict"):
        assert done[call]["success"], (call, done[call])
        data = done[call]["response"]["data"]
        values = data["ndarray"] if "ndarray" in data else data["tensor"]["values"]
        assert [type(e)(v) for e, v in zip(expected, values, strict=True)] == expected, call
    for call in ("feedback", "microservice_feedback"):
        assert done[call]["success"], (call, done[call])
    puid = done["feedback_puid"]
    folder = stack_folder(MODEL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frame = read_kind(folder, "feedback", None)
        if len(frame) and puid in set(frame["_request_id"]):
            break
        time.sleep(0.5)
    recorded = frame[frame["_request_id"] == puid]
    assert recorded["_label"].tolist() == labels
    # Seldon's form field with truth is recorded like JSON feedback; without json= it is a 400
    puid = uuid.uuid4().hex
    form = {"response": {"meta": {"puid": puid}}, "truth": {"data": {"ndarray": labels}}}
    sent = requests.post(
        info.prediction_url.rsplit("/api/", 1)[0] + "/send-feedback",
        data={"json": json.dumps(form)},
        timeout=30,
    )
    assert sent.status_code == 200 and sent.json()["meta"]["puid"] == puid
    bad = requests.post(
        info.prediction_url.replace("/predictions", "/feedback"), data={"other": "1"}, timeout=30
    )
    assert bad.status_code == 400 and "feedback" in bad.json()["status"]["info"]


def test_prometheus_metrics_of_the_served_model_are_on_the_url_deploy_prints(served):
    from prometheus_client.parser import text_string_to_metric_families

    info, test, _ = served
    url = info.details["METRICS_URL"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")

    def counts():
        text = requests.get(url, timeout=10).text
        found = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.labels.get("model") == MODEL and s.labels.get("protocol") == "seldon":
                    key = (s.name, s.labels.get("handler"), s.labels.get("code"))
                    found[key] = found.get(key, 0) + s.value  # summed over versions
        return found

    before = counts()
    client.predict(info.prediction_url, "seldon", test.features.head(7))
    post(info.prediction_url, {"data": {"ndarray": []}})  # a 400
    requests.get(info.prediction_url, timeout=10)  # a 405
    requests.get(info.prediction_url.rsplit("/api/", 1)[0] + "/nope", timeout=10)  # a 404
    after = counts()

    def grew(key):
        return after.get(key, 0) - before.get(key, 0)

    # every answered request by code, 404 and 405 included (the scrape is one of them)
    assert grew(("zenkube_requests_total", "predict", "200")) == 1
    assert grew(("zenkube_requests_total", "predict", "400")) == 1
    assert grew(("zenkube_requests_total", "predict", "405")) == 1
    assert grew(("zenkube_requests_total", "other", "404")) == 1
    assert grew(("zenkube_requests_total", "metrics", "200")) == 1
    assert grew(("zenkube_rows_total", None, None)) == 7
    assert grew(("zenkube_request_duration_seconds_count", None, None)) == 2
    text = requests.get(url, timeout=10).text
    assert 'version="' in text and "zenkube_request_duration_seconds_bucket" in text
    assert "_created" not in text  # series that carry nothing
