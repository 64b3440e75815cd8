"""The local Seldon deployer with protocol `seldon`: real HTTP to the real Seldon runtime."""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from zenml.client import Client

from app import runner as runs
from integrations.seldon_local import client
from tests.serving.helpers import deploy_folder, serve_champion_for_tests

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

    def client_loop(_):
        session, errors = requests.Session(), 0
        for _ in range(250):
            response = session.post(info.prediction_url, json=body, timeout=30)
            if response.status_code != 200 or response.json()["data"]["ndarray"] != expected:
                errors += 1
        return errors

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(client_loop, range(8))) == 0


def test_redeploying_the_same_version_is_a_no_op(served):
    info, _, _ = served
    again = runs.deploy(None, {"model_name": MODEL, "protocol": "seldon"})
    assert again.service_id == info.service_id
    assert again.prediction_url == info.prediction_url


def test_broken_new_model_leaves_the_old_one_serving(served, tmp_path):
    info, test, model = served
    deployer = Client().active_stack.model_deployer
    service = deployer.services_for(MODEL)[0]
    broken = tmp_path / "broken"
    shutil.copytree(service.model_dir, broken)
    (broken / "model.pkl").write_bytes(b"this is not a pickle")
    with pytest.raises(RuntimeError) as failure:
        deploy_folder(MODEL, broken, "broken", start_timeout=60)
    assert "Last log lines" in str(failure.value) or "Smoke prediction failed" in str(failure.value)
    rows = test.features.head(3)
    assert client.predict(info.prediction_url, "seldon", rows) == model.predict(rows).tolist()
    (current,) = deployer.services_for(MODEL)
    assert str(current.uuid) == info.service_id


def test_killed_server_is_reported_down_and_redeploy_restores_it(served):
    info, test, model = served
    deployer = Client().active_stack.model_deployer
    service = deployer.services_for(MODEL)[0]
    os.killpg(service.pid, 9)
    service = deployer.services_for(MODEL)[0]
    assert not service.is_running
    restored = runs.deploy(None, {"model_name": MODEL, "protocol": "seldon"})
    assert restored.prediction_url == info.prediction_url
    rows = test.features.head(2)
    assert client.predict(restored.prediction_url, "seldon", rows) == model.predict(rows).tolist()


def test_new_version_replaces_the_old_one_on_the_same_port(served, tmp_path):
    info, test, model = served
    deployer = Client().active_stack.model_deployer
    current = deployer.services_for(MODEL)[0]
    copy = tmp_path / "v-next"
    shutil.copytree(current.model_dir, copy)
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
