"""Traffic-driven monitoring through the real servers: shifted traffic plus feedback labels
→ `monitor --from-traffic` alerts, retrains, and the retrained model serves."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest
import requests

from app import loop, runner
from core.traffic.rows import read_kind, stack_folder
from integrations.mlflow import registry as mlflow_registry
from integrations.seldon_local import client
from tests.conftest import FAST_TRAINER
from tests.serving.helpers import stop_all, trained_on

MODEL = "traffic-model"
FEATURES = [f"x{i}" for i in range(6)]


def sample(rows: int, seed: int, concept_change: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(size=rows) for c in FEATURES})
    frame["label"] = (frame["x0"] + frame["x1"] > 0).astype(int)
    if concept_change:  # a new population: x0 far off, and there the label follows x1 alone
        frame["x0"] += 3.0
        frame["label"] = (frame["x1"] > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def served(module_store, tmp_path_factory):
    previous = os.environ.get("ZENKUBE_TRAFFIC_FLUSH_SECONDS")
    os.environ["ZENKUBE_TRAFFIC_FLUSH_SECONDS"] = "0.5"  # the front inherits it
    path = tmp_path_factory.mktemp("data") / "train.csv"
    trained = trained_on(MODEL, sample(1200, seed=0), path, "label")
    info = runner.deploy(None, {"model_name": MODEL, "protocol": "seldon"})
    yield info, trained
    stop_all()
    if previous is None:
        os.environ.pop("ZENKUBE_TRAFFIC_FLUSH_SECONDS", None)
    else:
        os.environ["ZENKUBE_TRAFFIC_FLUSH_SECONDS"] = previous


def recorded(kind: str, rows: int = 1, request_id: str = "", timeout: float = 30.0):
    """What the front wrote (it flushes every 0.5 s here), once it holds what we wait for."""
    folder = stack_folder(MODEL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = read_kind(folder, kind, None)
        if len(frame) >= rows and (not request_id or request_id in set(frame["_request_id"])):
            return frame
        time.sleep(0.2)
    raise AssertionError(f"{kind}: not recorded in {folder} ({rows} rows, id {request_id!r})")


def test_shifted_traffic_with_feedback_alerts_retrains_and_the_new_model_serves(served):
    info, trained = served
    traffic = sample(300, seed=5, concept_change=True)
    feedback_url = info.prediction_url.replace("/predictions", "/feedback")
    for start in range(0, len(traffic), 30):
        chunk = traffic.iloc[start : start + 30]
        body = client.request_body("seldon", chunk[FEATURES])
        answer = requests.post(info.prediction_url, json=body, timeout=30)
        assert answer.status_code == 200
        puid = answer.json()["meta"]["puid"]  # the request id, as Seldon's executor gives it
        assert answer.headers["Seldon-Puid"] == puid  # in the header too, as on a cluster
        truth = {"data": {"ndarray": chunk["label"].tolist()}}
        sent = requests.post(
            feedback_url, json={"response": answer.json(), "truth": truth}, timeout=30
        )
        assert sent.status_code == 200 and sent.json()["meta"]["puid"] == puid
    logged = recorded("requests", 300)
    assert set(FEATURES) <= set(logged.columns) and logged["_prediction"].notna().all()
    assert recorded("feedback", 300)["_label"].tolist()[:30] == traffic["label"].tolist()[:30]

    # deploy's own smoke request is not traffic
    client.predict(info.prediction_url, "seldon", traffic[FEATURES].head(2), probe=True)
    time.sleep(1.5)  # three flushes of the front's buffer: it would be written by now
    path, what = loop.traffic_batch_file(MODEL, "1h", min_rows=200)
    assert "300 labelled rows of 300 served" in what
    batch = pd.read_parquet(path)
    assert batch["label"].tolist() == traffic["label"].tolist()
    result = loop.monitor(
        None,
        {"model_name": MODEL, "batch": path},
        training_overrides=FAST_TRAINER,
        echo=lambda *_: None,
    )
    assert result.decision.alert and result.decision.retrain
    assert "x0" in result.drift.drifted_columns
    assert result.retraining is not None and result.retraining.decision.promoted
    assert result.deployment is not None  # redeployed through the same front
    mlflow_registry.configure_from_stack()
    champion = mlflow_registry.get_champion(MODEL)
    assert champion.version != trained.registered.version
    assert result.deployment.model_version == champion.version
    assert result.deployment.prediction_url == info.prediction_url
    # The endpoint now answers the new population better than the old model did.
    rows = traffic[FEATURES].head(100)
    served_now = np.array(client.predict(info.prediction_url, "seldon", rows))
    old_hits = (logged["_prediction"].to_numpy()[:100] == traffic["label"].to_numpy()[:100]).mean()
    new_hits = (served_now == traffic["label"].to_numpy()[:100]).mean()
    assert new_hits > old_hits


def test_too_little_traffic_is_one_clear_message(served):
    from core.errors import DataValidationError

    with pytest.raises(DataValidationError, match="at least 100000 are needed"):
        loop.traffic_batch_file(MODEL, "1h", min_rows=100_000)


def metric(url: str, name: str, **labels) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(url, timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_a_request_nested_1020_deep_is_counted_and_recording_goes_on(served):
    info, _ = served
    metrics = info.details["METRICS_URL"]
    before = metric(metrics, "zenkube_traffic_dropped_total", reason="unreadable")
    rows = sample(2, seed=11)[FEATURES]
    body = json.dumps(client.request_body("seldon", rows))
    deep = body[:-1] + ', "meta": {"tags": {"deep": ' + "[" * 1020 + "]" * 1020 + "}}}"
    answer = requests.post(
        info.prediction_url, data=deep, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert answer.status_code == 200, answer.text[:300]
    deadline = time.monotonic() + 30
    while metric(metrics, "zenkube_traffic_dropped_total", reason="unreadable") == before:
        assert time.monotonic() < deadline, "the unreadable request was not counted"
        time.sleep(0.2)
    after = requests.post(info.prediction_url, json=json.loads(body), timeout=30)
    recorded("requests", request_id=after.json()["meta"]["puid"])  # recording went on


def test_v2_feedback_is_recorded_and_a_bad_one_is_a_400(served):
    info = runner.deploy(None, {"model_name": MODEL, "protocol": "v2"})
    rows = sample(3, seed=8)
    body = client.request_body("v2", rows[FEATURES])
    answer = requests.post(info.prediction_url, json=body, timeout=30)
    assert answer.status_code == 200
    request_id = answer.json()["id"]
    feedback_url = info.prediction_url.replace("/infer", "/feedback")
    sent = requests.post(
        feedback_url, json={"id": request_id, "truth": rows["label"].tolist()}, timeout=30
    )
    assert sent.status_code == 200 and sent.json() == {"id": request_id, "labels": 3}
    bad = requests.post(feedback_url, json={"truth": [1]}, timeout=30)
    assert bad.status_code == 400 and "request id" in bad.json()["error"]
    labels = recorded("feedback", request_id=request_id)
    assert labels[labels["_request_id"] == request_id]["_label"].tolist() == rows["label"].tolist()
    served_rows = recorded("requests", request_id=request_id)
    mine = served_rows[served_rows["_request_id"] == request_id]
    assert mine["_protocol"].tolist() == ["v2"] * 3
    np.testing.assert_allclose(mine[FEATURES].to_numpy(), rows[FEATURES].to_numpy())


def test_a_gzipped_v2_answer_is_recorded_and_its_rows_counted(served):
    info = runner.deploy(None, {"model_name": MODEL, "protocol": "v2"})
    rows_before = metric(info.details["METRICS_URL"], "zenkube_rows_total", protocol="v2")
    rows = sample(300, seed=12)[FEATURES]
    answer = requests.post(  # requests asks for gzip, and MLServer gzips a large answer
        info.prediction_url, json=client.request_body("v2", rows), timeout=30
    )
    assert answer.status_code == 200 and answer.headers.get("Content-Encoding") == "gzip"
    request_id = answer.json()["id"]
    mine = recorded("requests", rows=300, request_id=request_id)
    assert (mine["_request_id"] == request_id).sum() == 300
    rows_after = metric(info.details["METRICS_URL"], "zenkube_rows_total", protocol="v2")
    assert rows_after - rows_before == 300
