"""The local Seldon deployer with protocol `v2`: MLServer 1.7 answering real HTTP."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from integrations.seldon_local import client
from integrations.seldon_local.process import get_protocol
from tests.serving.helpers import serve_champion_for_tests
from tests.serving.load import wrong_answers

MODEL = "v2-model"


@pytest.fixture(scope="module")
def served(module_store):
    yield from serve_champion_for_tests(MODEL, "v2")


def test_v2_predictions_equal_in_process_predictions(served):
    info, test, model = served
    assert info.prediction_url.endswith(f"/v2/models/{MODEL}/infer")  # its own name
    predicted = client.predict(info.prediction_url, "v2", test.features)
    np.testing.assert_array_equal(predicted, model.predict(test.features))
    old = info.prediction_url.replace(f"/models/{MODEL}/", "/models/classifier/")
    assert client.predict(old, "v2", test.features) == predicted  # the old path still works
    assert requests.get(old.replace("/infer", "/ready"), timeout=5).status_code == 200
    answer = requests.post(old, json=v2_body(["mean radius"], [[1.0]]), timeout=10)
    assert answer.status_code == 400 and "missing column(s)" in answer.text


def test_v2_ready_and_metadata(served):
    info, test, _ = served
    base = info.prediction_url.rsplit("/infer", 1)[0]
    assert requests.get(base + "/ready", timeout=5).status_code == 200
    meta = requests.get(base, timeout=5).json()
    assert [i["name"] for i in meta["inputs"]] == list(test.features.columns)


def v2_body(columns, rows):
    return get_protocol("v2").request_body(columns, rows)


@pytest.mark.parametrize(
    "kind,reason",
    [
        ("missing column", "missing column(s): mean texture"),
        ("unknown column", "unknown column(s): bogus"),
        ("strings for numbers", "expects numbers; row 0 has 'abc'"),
        ("wrong shape", "has 3 values but the model expects 30"),
        ("invalid JSON", "not valid JSON"),
        ("no inputs", "inputs"),
    ],
)
def test_v2_bad_request_is_400_with_reason(served, kind, reason):
    info, test, model = served
    columns = list(test.features.columns)
    row = test.features.iloc[0].tolist()
    url = info.prediction_url
    headers = {"Content-Type": "application/json"}
    if kind == "missing column":
        response = requests.post(url, json=v2_body(columns[:1], [row[:1]]), timeout=10)
    elif kind == "unknown column":
        response = requests.post(url, json=v2_body(["bogus", *columns[1:]], [row]), timeout=10)
    elif kind == "strings for numbers":
        response = requests.post(url, json=v2_body(columns, [["abc", *row[1:]]]), timeout=10)
    elif kind == "wrong shape":
        body = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
        response = requests.post(url, json=body, timeout=10)
    elif kind == "invalid JSON":
        response = requests.post(url, data="{nope", headers=headers, timeout=10)
    else:
        response = requests.post(url, json={"foo": 1}, timeout=10)
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    rows = test.features.head(1)
    assert client.predict(url, "v2", rows) == model.predict(rows).tolist()


def test_v2_bounded_concurrent_load_has_no_errors(served):
    info, test, model = served
    body = client.request_body("v2", test.features.head(1))
    expected = model.predict(test.features.head(1)).tolist()

    def first_output(answer: dict) -> list:
        return answer["outputs"][0]["data"]

    assert wrong_answers(info.prediction_url, body, expected, first_output, each=100) == 0


def _column_inputs(columns, row, first):
    """One V2 input per column; `first` replaces the first column's input fields."""
    inputs = [
        {"name": name, "datatype": "FP64", "shape": [1, 1], "data": [value]}
        for name, value in zip(columns, row, strict=True)
    ]
    inputs[0] = {**inputs[0], **first}
    return {"inputs": inputs}


V2_PROBES = {
    "BOOL holding numbers": (
        {"datatype": "BOOL", "data": [0.5]},
        "is BOOL, which holds true/false",
    ),
    "FP64 holding a boolean": ({"data": [True]}, "is FP64, which holds numbers"),
    "FP64 holding a numeric string": ({"data": ["1.5"]}, "is FP64, which holds numbers"),
    "INT64 out of range": (
        {"datatype": "INT64", "data": [2**70]},
        "is INT64, which holds integers from",
    ),
    "shape that does not match its data": ({"shape": [5, 1]}, "does not match its 1 values"),
    "negative shape": ({"shape": [-1]}, "has a negative dimension"),
    "a column shaped like a matrix": (
        {"shape": [1, 2], "data": [1.0, 2.0]},
        "a column is [rows] or [rows, 1]",
    ),
    "a shape holding text": ({"shape": ["1"]}, "shape must be a list of integers; got ['1']"),
    "data that is null": ({"data": None}, "data is null; send a list of values"),
    "a 1 MB column name": ({"name": "n" * 2**20}, "unknown column(s): nnnn"),
    "a 1 MB id": ({}, '"id" must be text of at most 256 characters'),
}


@pytest.mark.parametrize("kind", list(V2_PROBES))
def test_v2_datatype_and_shape_probes_are_400_and_a_valid_request_follows(served, kind):
    info, test, model = served
    first, reason = V2_PROBES[kind]
    body = _column_inputs(list(test.features.columns), test.features.iloc[0].tolist(), first)
    if kind == "a 1 MB id":
        body["id"] = "i" * 2**20
    response = requests.post(info.prediction_url, json=body, timeout=10)
    assert response.status_code == 400, response.text[:300]
    assert reason in response.json()["error"]
    assert len(response.content) < 2000  # no traceback, no echo of what was sent
    rows = test.features.head(1)
    assert client.predict(info.prediction_url, "v2", rows) == model.predict(rows).tolist()


def test_the_model_repository_api_is_not_reachable_and_the_model_keeps_answering(served):
    info, test, model = served
    base = info.prediction_url.split("/v2/")[0]
    for method, path in (
        ("POST", "/v2/repository/models/classifier/unload"),
        ("POST", "/v2/repository/models/classifier/load"),
        ("POST", "/v2/repository/index"),
        ("GET", "/v2/models/classifier/docs"),
        ("POST", "/v2/models/classifier/generate"),
        ("PUT", "/_zenkube/backend"),
        ("GET", "/_zenkube/router"),
        ("POST", "/api/v1.0/predictions"),  # the other protocol's path
    ):
        answer = requests.request(method, base + path, json={"port": 1}, timeout=10)
        assert answer.status_code == 404, (path, answer.text)
        assert "no such path" in answer.json()["error"]
    assert requests.get(base + "/v2/health/ready", timeout=10).status_code == 200
    rows = test.features.head(2)
    assert client.predict(info.prediction_url, "v2", rows) == model.predict(rows).tolist()


def test_v2_two_dimensional_tensors_flat_or_nested_and_bool_columns(served):
    info, test, model = served
    rows = test.features.head(2)
    flat = rows.to_numpy().ravel().tolist()
    expected = model.predict(rows).tolist()
    for data in (flat, rows.to_numpy().tolist()):  # V2 allows nested row-major data
        body = {"inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP64", "data": data}]}
        answer = requests.post(info.prediction_url, json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == expected
    # The type policy on both protocols: a boolean counts as 1/0 in a numeric column.
    one = test.features.head(1).copy()
    one.iloc[0, 0] = 1.0
    body = _column_inputs(
        list(one.columns), one.iloc[0].tolist(), {"datatype": "BOOL", "data": [True]}
    )
    answer = requests.post(info.prediction_url, json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == model.predict(one).tolist()
    huge = {"inputs": [{"name": "x", "shape": [16000000, 0], "datatype": "FP64", "data": []}]}
    answer = requests.post(info.prediction_url, json=huge, timeout=10)
    assert answer.status_code == 400 and "rows in one request" in answer.json()["error"]
    unknown = {**body, "outputs": [{"name": "probabilities"}]}
    answer = requests.post(info.prediction_url, json=unknown, timeout=10)
    assert answer.status_code == 400 and "unknown output" in answer.json()["error"]


def raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    """A POST with exactly these headers (no client adds Accept-Encoding, as curl does)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    head = f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(body)}\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(head.encode() + body)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in fields.items()}, rest


def test_v2_errors_come_back_uncompressed_unless_the_caller_asks(served):
    """MLServer gzips an answer (a long 400 too) when asked: the front no longer asks
    for the caller (aiohttp's client would); a caller that asks still gets gzip."""
    import json
    import zlib

    info, _, _ = served
    names = [f"c{i:05d}" + "x" * 40 for i in range(300)]
    inputs = [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]} for n in names]
    body = json.dumps({"inputs": inputs}).encode()
    json_type = {"Content-Type": "application/json"}
    status, headers, text = raw_post(info.prediction_url, body, json_type)
    assert status == 400 and "content-encoding" not in headers
    assert json.loads(text)["error"]
    status, headers, text = raw_post(
        info.prediction_url, body, {**json_type, "Accept-Encoding": "gzip"}
    )
    assert status == 400 and headers.get("content-encoding") == "gzip"
    assert json.loads(zlib.decompress(text, 16 + zlib.MAX_WBITS))["error"]


def test_deploy_keeps_v2_after_every_process_of_the_endpoint_was_killed(served):
    """The served record (router.json) says v2 and outlives the processes: after kill -9
    of keeper, front and model server at once, `serve repair` and a `deploy` without
    --protocol serve v2 again on the same URL (issue #34: it fell back to seldon)."""
    import os
    import signal

    from app import repair, runner
    from integrations.seldon_local import process
    from integrations.zenml_adapters import deployer as deployers

    info, test, model = served
    active = deployers.active_deployer()
    front = active.front_of(MODEL)
    (service,) = active.services_for(MODEL)
    for group in (front.record()["group"], service.pid):
        os.killpg(group, signal.SIGKILL)
    process.stop_group(front.record()["group"], timeout=5)  # until they are gone
    process.stop_group(service.pid, timeout=5)
    assert front.status() is None and not process.is_alive(service.pid)
    repair.repair(MODEL, lambda *_: None)
    again = runner.deploy(None, {"model_name": MODEL})
    assert again.protocol == "v2" and again.prediction_url == info.prediction_url
    predicted = client.predict(again.prediction_url, "v2", test.features.head(5))
    np.testing.assert_array_equal(predicted, model.predict(test.features.head(5)))
