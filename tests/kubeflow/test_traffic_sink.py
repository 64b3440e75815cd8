"""The cluster's traffic sink, over real HTTP, fed events shaped as Seldon Core v1.18.2's
and KServe's request loggers send them, writes the Parquet batches `monitor
--from-traffic` reads.

Seldon (`executor/predictor/predictor_process.go`, `logPayload`; `executor/logger/
worker.go`, `sendCloudEvent`): binary CloudEvents, a fresh random `Ce-Id` per message,
the puid in `Ce-Requestid`. KServe (`pkg/logger/handler.go`, `ServeHTTP`): one `Ce-Id`
shared by a request and its response.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
import requests

from core.traffic.rows import model_folder, read_kind, traffic_batch
from core.traffic.sink import (
    KSERVE_REQUEST,
    KSERVE_RESPONSE,
    SELDON_FEEDBACK,
    SELDON_REQUEST,
    SELDON_RESPONSE,
)
from integrations.seldon_local.process import free_port
from tests.conftest import REPO_ROOT

COLUMNS = ["size", "rooms"]
TOKEN = "s3cr3t-token-from-a-kubernetes-secret"


def start_sink(root, *extra):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "core.traffic.sink", "--port", str(port), "--host",
         "127.0.0.1", "--root", str(root), "--flush-seconds", "0.3", *extra],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except requests.RequestException:
            time.sleep(0.1)
    process.terminate()
    raise AssertionError("the sink did not start")


@pytest.fixture(scope="module")
def sink(tmp_path_factory):
    root = tmp_path_factory.mktemp("sink") / "traffic"
    process, url = start_sink(root)
    yield url, root
    process.terminate()
    process.wait(timeout=20)


def seldon_event(url, kind, puid, body, node="classifier", endpoint="house-prices"):
    """As Seldon's executor posts it: `sendCloudEvent` (cloudevents sdk-go v1, binary)."""
    headers = {
        "Ce-Id": str(uuid.uuid4()),  # fresh per message: never the pairing key
        "Ce-Specversion": "1.0",
        "Ce-Type": kind,
        "Ce-Source": "http://0.0.0.0:8000/",
        "Ce-Time": "2026-12-01T12:00:00.000000Z",
        "Ce-Modelid": node,
        "Ce-Requestid": puid,
        "Ce-Inferenceservicename": "zenml-0f6c2d9e-4b7a-4f0e-9a51-3b1e8c7d2a10",
        "Ce-Namespace": "zenkube",
        "Ce-Endpoint": endpoint,  # the predictor's name (worker.go: w.PredictorName)
        "Ce-Protocol": "seldon",
        "Content-Type": "application/json",
    }
    return requests.post(url, data=json.dumps(body), headers=headers, timeout=10)


def kserve_event(url, kind, request_id, body, metadata="{}", at="2026-12-01T12:00:00.000000Z"):
    """As KServe's logger posts it: `sendHttpCloudEvent` (cloudevents sdk-go v2, binary)."""
    headers = {
        "Ce-Id": request_id,  # the same for a request and its response
        "Ce-Specversion": "1.0",
        "Ce-Type": kind,
        "Ce-Source": "http://localhost:9081/",
        "Ce-Time": at,  # OccurrenceTime: the request's arrival, the answer's departure
        "Ce-Inferenceservicename": "zenkube-house-prices-501dc41e",
        "Ce-Namespace": "zenkube",
        "Ce-Component": "predictor",
        "Ce-Endpoint": "",
        "Ce-Metadata": metadata,  # the headers named in logger.metadataHeaders
        "Content-Type": "application/json",
    }
    return requests.post(url, data=json.dumps(body), headers=headers, timeout=10)


def wait_for_rows(folder, kind, n):
    deadline = time.monotonic() + 20
    while len(read_kind(folder, kind, None)) < n:
        assert time.monotonic() < deadline, f"the sink did not write {n} {kind} rows"
        time.sleep(0.2)
    return read_kind(folder, kind, None)


def test_seldon_logged_predictions_and_feedback_become_a_labelled_batch(sink):
    url, root = sink
    model_url = f"{url}/House_Prices"
    puids = []
    for i in range(6):
        puid = str(uuid.uuid4())  # the executor's Seldon-Puid
        puids.append(puid)
        request = {"data": {"ndarray": [[50.0 + i, 2], [80.0 + i, 3]]}}  # no names: ZenML's
        response = {"data": {"names": [], "ndarray": [1, 0]}, "meta": {}}  # no puid in body
        first, second = ((SELDON_REQUEST, request), (SELDON_RESPONSE, response))
        if i % 2:  # the executor queues both from goroutines: no order is promised
            first, second = second, first
        assert seldon_event(model_url, *first[:1], puid, first[1]).status_code == 200
        assert seldon_event(model_url, second[0], puid, second[1]).status_code == 200
    # Labels: the first three through Seldon's feedback API (its logger forwards them as
    # io.seldon.serving.feedback; the body names the prediction's puid), the rest posted to
    # the sink directly, as SeldonClient.feedback's body.
    for puid in puids[:3]:
        message = {"response": {"meta": {"puid": puid}}, "truth": {"data": {"ndarray": [1, 1]}}}
        answer = seldon_event(model_url, SELDON_FEEDBACK, str(uuid.uuid4()), message)
        assert answer.status_code == 200 and answer.json()["accepted"] == puid
    for puid in puids[3:]:
        message = {"response": {"meta": {"puid": puid}}, "truth": {"data": {"ndarray": [1, 1]}}}
        answer = requests.post(f"{model_url}/feedback", json=message, timeout=10)
        assert answer.status_code == 200 and answer.json()["meta"]["puid"] == puid
    folder = model_folder(root, "House_Prices")  # where --from-traffic reads this model
    rows = wait_for_rows(folder, "requests", 12)
    assert set(rows["_request_id"]) == set(puids)  # paired by Ce-Requestid, not Ce-Id
    wait_for_rows(folder, "feedback", 12)
    batch = traffic_batch(folder, COLUMNS, "price_band", 3600, min_rows=10)
    assert batch.labelled_batch and batch.labelled == 12
    assert sorted(batch.frame["size"].tolist())[:2] == [50.0, 51.0]


def test_kserve_logged_v2_predictions_land_in_the_model_folder(sink):
    url, root = sink
    model_url = f"{url}/churn_v2"  # the deployer's logger URL: <sink>/<model>
    ids = []
    for i in range(3):
        request_id = str(uuid.uuid4())
        answer_id = f"mlserver-{i}"  # the V2 response id a client names in its feedback
        ids.append(answer_id)
        request = {
            "inputs": [
                {"name": "size", "shape": [1, 1], "datatype": "FP64", "data": [60.0 + i]},
                {"name": "rooms", "shape": [1, 1], "datatype": "INT64", "data": [2]},
            ]
        }
        response = {
            "model_name": "zenkube-churn-v2-d465b7bf",
            "id": answer_id,
            "outputs": [{"name": "predict", "shape": [1], "datatype": "INT64", "data": [1]}],
        }
        assert kserve_event(model_url, KSERVE_RESPONSE, request_id, response).status_code == 200
        assert kserve_event(model_url, KSERVE_REQUEST, request_id, request).status_code == 200
        if i == 0:  # deploy's smoke request, as KServe forwards its X-Zenkube-Probe header
            probe = json.dumps({"X-Zenkube-Probe": ["smoke"]})
            for kind, body in ((KSERVE_REQUEST, request), (KSERVE_RESPONSE, response)):
                skipped = kserve_event(model_url, kind, "probe-id", body | {"id": "probe"}, probe)
                assert skipped.status_code == 200 and "skipped" in skipped.json()
    # one tensor without names (a V2 client may send that): kept by position
    tensor = {
        "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [70, 3, 71, 4]}]
    }
    answer = {
        "id": "tensor",
        "outputs": [{"name": "p", "shape": [2], "datatype": "INT64", "data": [0, 1]}],
    }
    for kind, body in ((KSERVE_REQUEST, tensor), (KSERVE_RESPONSE, answer)):
        assert kserve_event(model_url, kind, "tensor-id", body).status_code == 200
    ids.append("tensor")
    feedback = {"id": ids[0], "truth": [0]}
    assert requests.post(f"{model_url}/feedback", json=feedback, timeout=10).status_code == 200
    folder = model_folder(root, "churn_v2")
    served = wait_for_rows(folder, "requests", 5)
    assert sorted(set(served["_request_id"])) == sorted(ids)
    rows = traffic_batch(folder, COLUMNS, "churned", 3600, min_rows=5).frame  # --from-traffic
    assert sorted(rows["size"]) == [60.0, 61.0, 62.0, 70.0, 71.0]
    assert sorted(rows["rooms"]) == [2, 2, 2, 3, 4]
    time.sleep(1)  # a flush later: still no row of the smoke request
    assert "probe" not in set(read_kind(folder, "requests", None)["_request_id"])
    assert list(wait_for_rows(folder, "feedback", 1)["_request_id"]) == [ids[0]]


def test_a_canary_release_rows_say_who_answered_and_labels_join_their_request(sink):
    """Seldon and KServe canaries: each predictor's logger posts to the URL the deployer
    wrote for it (`traffic.logged_as`; tests/kubeflow/test_release_manifests.py checks the
    manifests write these), so every row carries `_role` and `_version`, and a label
    reaches the row of the request it rates, whichever version answered it."""
    from core.traffic.rows import logged_as
    from integrations.kserve import manifest as kserve
    from integrations.kubeflow import seldon_manifest as seldon

    model = "canary_model"
    base = seldon.logger_url(url := sink[0], model)
    predictors = {
        "champion": (seldon.predictor_name(model), "3"),
        "canary": (seldon.candidate_predictor_name(model, "4"), "4"),
    }
    sent = {}
    for i in range(6):
        role = "canary" if i % 3 == 0 else "champion"
        predictor, version = predictors[role]
        target = logged_as(base, role, version, predictor)
        puid = str(uuid.uuid4())
        sent[puid] = (role, version)
        request = {"data": {"names": COLUMNS, "ndarray": [[50.0 + i, 2]]}}
        response = {"data": {"names": [], "ndarray": [i % 2]}, "meta": {}}
        for kind, body in ((SELDON_REQUEST, request), (SELDON_RESPONSE, response)):
            answer = seldon_event(target, kind, puid, body, endpoint=predictor)
            assert answer.status_code == 200 and answer.json()["role"] == role
    # a predictor's URL under another predictor's executor: refused, not written as its
    champion_url = logged_as(base, "champion", "3", predictors["champion"][0])
    wrong = seldon_event(champion_url, SELDON_REQUEST, "p", {}, endpoint=predictors["canary"][0])
    assert wrong.status_code == 400 and "Ce-Endpoint" in wrong.json()["error"]
    bad_role = requests.post(f"{base}?role=boss", json={}, timeout=10,
                             headers={"Ce-Type": KSERVE_REQUEST, "Ce-Id": "x"})  # fmt: skip
    assert bad_role.status_code == 400 and "champion, canary, shadow" in bad_role.json()["error"]
    rated = next(p for p, (role, _) in sent.items() if role == "canary")
    message = {"response": {"meta": {"puid": rated}}, "truth": {"data": {"ndarray": [1]}}}
    assert requests.post(f"{base}/feedback", json=message, timeout=10).status_code == 200

    folder = model_folder(sink[1], model)
    rows = wait_for_rows(folder, "requests", 6)
    got = {r["_request_id"]: (r["_role"], r["_version"]) for _, r in rows.iterrows()}
    assert got == sent and sorted(rows["_role"]).count("canary") == 2
    labels = wait_for_rows(folder, "feedback", 1)
    joined = rows.merge(labels[["_request_id", "_row", "_label"]], on=["_request_id", "_row"])
    assert list(joined["_role"]) == ["canary"] and list(joined["_version"]) == ["4"]

    # KServe: the stable and the canary pods' agents send the same headers (Ce-Component
    # `predictor` for both), so only the URL the manifest wrote per predictor tells them apart
    kmodel = "canary_kserve"
    kbase = kserve.logger_url(url, kmodel)
    for i, (role, version) in enumerate([("champion", "3"), ("canary", "4"), ("champion", "3")]):
        target = logged_as(kbase, role, version)
        request = {"inputs": [{"name": "size", "shape": [1, 1], "datatype": "FP64",
                               "data": [60.0 + i]}]}  # fmt: skip
        response = {"id": f"{role}-{i}", "outputs": [{"name": "predict", "shape": [1],
                                                       "datatype": "INT64", "data": [1]}]}  # fmt: skip
        for kind, body in ((KSERVE_REQUEST, request), (KSERVE_RESPONSE, response)):
            assert kserve_event(target, kind, f"ce-{i}", body).status_code == 200
    assert requests.post(f"{kbase}/feedback", json={"id": "canary-1", "truth": [0]},
                         timeout=10).status_code == 200  # fmt: skip
    kfolder = model_folder(sink[1], kmodel)
    krows = wait_for_rows(kfolder, "requests", 3)
    assert sorted(zip(krows["_request_id"], krows["_role"], krows["_version"], strict=True)) == [
        ("canary-1", "canary", "4"), ("champion-0", "champion", "3"),
        ("champion-2", "champion", "3"),
    ]  # fmt: skip
    klabels = wait_for_rows(kfolder, "feedback", 1)
    kjoined = krows.merge(klabels[["_request_id", "_row", "_label"]], on=["_request_id", "_row"])
    assert list(kjoined["_role"]) == ["canary"]


def test_a_cluster_release_is_judged_from_the_sinks_rows_errors_and_latency_included(tmp_path):
    """KServe's logger logs a response only for a 200 (handler.go:183) and stamps each
    message with its OccurrenceTime: the sink writes a request left without a response as
    a failed row of its role, and the answers' latency from the two times; the release
    gate reads them (release_rows -> evidence_from_rows), monitoring leaves them out."""
    from core.release import gate as release_gate
    from core.traffic.rows import logged_as, release_rows
    from integrations.kserve import manifest as kserve

    root = tmp_path / "traffic"
    process, url = start_sink(root, "--unanswered-seconds", "1")
    try:
        base = kserve.logger_url(url, "judged")
        for i in range(12):
            role, version, latency = ("canary", "4", 70) if i % 3 == 0 else ("champion", "3", 10)
            target = logged_as(base, role, version)
            request = {"inputs": [{"name": "size", "shape": [1, 1], "datatype": "FP64",
                                   "data": [60.0 + i]}]}  # fmt: skip
            response = {"id": f"r{i}", "outputs": [{"name": "predict", "shape": [1],
                                                     "datatype": "INT64", "data": [1]}]}  # fmt: skip
            sent = kserve_event(target, KSERVE_REQUEST, f"ce-{i}", request,
                                at="2026-12-01T12:00:00.000000Z")  # fmt: skip
            assert sent.status_code == 200
            if role == "canary" and i % 2 == 0:
                continue  # the canary answered 500: KServe logs no response
            answered = kserve_event(target, KSERVE_RESPONSE, f"ce-{i}", response,
                                    at=f"2026-12-01T12:00:00.{latency:03d}000Z")  # fmt: skip
            assert answered.status_code == 200
        folder = model_folder(root, "judged")
        wait_for_rows(folder, "requests", 12)
        found = release_gate.evidence_from_rows(release_rows([folder], None))
        assert found["champion"]["requests"] == 8 and found["champion"]["5xx"] == 0
        assert found["candidate"]["requests"] == 4 and found["candidate"]["5xx"] == 2
        assert found["champion"]["latency_ms"]["p50"] == pytest.approx(10, abs=0.01)
        assert found["candidate"]["latency_ms"]["p50"] == pytest.approx(70, abs=0.01)
        batch = traffic_batch(folder, ["size"], "y", 3600, min_rows=10)
        assert batch.rows == 10  # the two failed requests are no monitoring rows
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_events_the_loggers_never_send_are_refused_with_a_reason(sink):
    url, _ = sink
    other = requests.post(f"{url}/m", json={}, headers={"Ce-Type": "something.else"}, timeout=10)
    assert other.status_code == 400 and SELDON_FEEDBACK in other.json()["error"]
    no_puid = requests.post(f"{url}/m", json={}, headers={"Ce-Type": SELDON_REQUEST}, timeout=10)
    assert no_puid.status_code == 400 and "Ce-Requestid" in no_puid.json()["error"]


def test_with_a_token_only_its_holders_change_the_labels(tmp_path):
    token_file = tmp_path / "token"  # as the mounted Secret key
    token_file.write_text(TOKEN + "\n")
    root = tmp_path / "traffic"
    process, url = start_sink(root, "--token-file", str(token_file))
    try:
        message = {"response": {"meta": {"puid": "p1"}}, "truth": {"data": {"ndarray": [1]}}}
        model_url = f"{url}/house_prices"
        assert requests.post(f"{model_url}/feedback", json=message, timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        answer = requests.post(f"{model_url}/feedback", json=message, headers=wrong, timeout=10)
        assert answer.status_code == 401
        # Seldon's feedback API is open to whoever reaches the ingress: not trusted here
        ignored = seldon_event(model_url, SELDON_FEEDBACK, "p9", message)
        assert ignored.status_code == 200 and "ignored" in ignored.json()
        good = {"Authorization": f"Bearer {TOKEN}"}
        answer = requests.post(f"{model_url}/feedback", json=message, headers=good, timeout=10)
        assert answer.status_code == 200
        labels = wait_for_rows(model_folder(root, "house_prices"), "feedback", 1)
        assert list(labels["_request_id"]) == ["p1"]  # only the token holder's label
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_the_documented_sink_objects_fit_the_sink_and_each_other():
    """docs/kubeflow.md's sink Deployment runs flags the sink has, mounts the token where
    --token-file reads it, uses the service account and Secrets the commands before it
    create, and its NetworkPolicy admits the pods Seldon and KServe run loggers in."""
    import re
    import textwrap

    import yaml

    from core.traffic import sink as traffic_sink
    from tests.conftest import REPO_ROOT

    text = (REPO_ROOT / "docs/kubeflow.md").read_text()
    section = text[text.index("### Watching the traffic") :]
    block = re.search(r"kubectl apply -f - <<'EOF'\n(.*?)\n\s*EOF\n", section, re.S).group(1)
    objects = {o["kind"]: o for o in yaml.safe_load_all(textwrap.dedent(block))}
    assert set(objects) == {"Deployment", "Service", "NetworkPolicy"}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:3] == ["python", "-m", "core.traffic.sink"]
    args = traffic_sink.arguments().parse_args(command[3:])  # the sink's own parser
    assert args.root.startswith("s3://") and args.root.endswith("/traffic")
    token_file = command[command.index("--token-file") + 1]
    (mount,) = container["volumeMounts"]
    assert token_file.startswith(mount["mountPath"] + "/")
    (volume,) = pod["volumes"]
    created = re.findall(r"kubectl -n zenkube create (\w+) (?:generic )?([\w-]+)", section)
    assert ("serviceaccount", pod["serviceAccountName"]) in created
    assert ("secret", volume["secret"]["secretName"]) in created
    assert ("secret", container["envFrom"][0]["secretRef"]["name"]) in created
    assert token_file.rsplit("/", 1)[1] == "token" and "--from-literal=token=" in section
    sources = objects["NetworkPolicy"]["spec"]["ingress"][0]["from"]
    selectors = json.dumps(sources)
    assert "app.kubernetes.io/managed-by" in selectors and "seldon-core" in selectors
    assert "serving.kserve.io/inferenceservice" in selectors
