"""The cluster's traffic sink, over real HTTP: Seldon's request-logger CloudEvents and
feedback in, the same Parquet batches out that `monitor --from-traffic` reads."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from integrations.seldon_local.process import free_port
from integrations.traffic import model_folder, read_kind, traffic_batch
from tests.conftest import REPO_ROOT

COLUMNS = ["size", "rooms"]
REQUEST, RESPONSE = "io.seldon.serving.inference.request", "io.seldon.serving.inference.response"


@pytest.fixture
def sink(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "integrations.traffic_sink", "--port", str(port), "--host",
         "127.0.0.1", "--root", str(tmp_path / "traffic"), "--flush-seconds", "0.3"],
        cwd=REPO_ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    yield url, tmp_path / "traffic"
    process.terminate()
    process.wait(timeout=20)


def event(url, kind, puid, body):
    headers = {
        "Ce-Type": kind,
        "Ce-Id": puid,
        "Ce-Source": "seldon",
        "Content-Type": "application/json",
    }
    return requests.post(url, data=json.dumps(body), headers=headers, timeout=10)


def test_logged_predictions_and_feedback_become_a_labelled_batch(sink):
    url, root = sink
    model_url = f"{url}/house_prices"
    for i in range(6):
        puid = f"p{i}"
        rows = [[50.0 + i, 2], [80.0 + i, 3]]  # ZenML's Seldon client sends no names
        request = {"data": {"ndarray": rows}}
        response = {"data": {"names": [], "ndarray": [1, 0]}, "meta": {"puid": puid}}
        first, second = ((REQUEST, request), (RESPONSE, response))
        if i % 2:  # the executor does not promise an order
            first, second = second, first
        assert event(model_url, first[0], puid, first[1]).status_code == 200
        assert event(model_url, second[0], puid, second[1]).status_code == 200
        feedback = {"response": response, "truth": {"data": {"ndarray": [1, 1]}}}
        answer = requests.post(f"{model_url}/feedback", json=feedback, timeout=10)
        assert answer.status_code == 200 and answer.json()["meta"]["puid"] == puid
    bad = requests.post(model_url, json={}, headers={"Ce-Type": "something.else"}, timeout=10)
    assert bad.status_code == 400
    folder = model_folder(root, "house prices")
    deadline = time.monotonic() + 20
    while (
        len(read_kind(folder, "requests", None)) < 12
        or len(read_kind(folder, "feedback", None)) < 12
    ):
        assert time.monotonic() < deadline, "the sink did not write the traffic"
        time.sleep(0.2)
    batch = traffic_batch(folder, COLUMNS, "price_band", 3600, min_rows=10)
    assert batch.labelled_batch and batch.labelled == 12
    assert sorted(batch.frame["size"].tolist())[:2] == [50.0, 51.0]
    assert batch.frame["price_band"].tolist() == [1] * 12
