"""The cluster's release watcher (issue #38): releases on Seldon Core and KServe, their
traffic logged as the backends' request loggers send it to the real traffic sink (over
HTTP), judged and ended by the release-check pipeline's function with the local gate's
code; the Kubernetes API is the stand-in of tests/kubeflow/conftest.py, MLflow and the
ZenML store are real.

Logger events, per upstream:
- Seldon Core v1.18.2's executor (`executor/predictor/predictor_process.go` `logPayload`,
  `executor/logger/worker.go` `sendCloudEvent`): binary CloudEvents, a fresh `Ce-Id` per
  message, the puid in `Ce-Requestid`, the predictor's name in `Ce-Endpoint`, the send
  time in `Ce-Time`; a response is logged only for a prediction without error.
- KServe v0.20's agent logger (`pkg/logger/handler.go` `ServeHTTP`): one `Ce-Id` for a
  request and its response, `Ce-Time` the request's arrival and the answer's departure
  (`OccurrenceTime`), a response logged only for a 200 (handler.go:183).
Each predictor's logger posts to the URL its deployer wrote into the object (read back
from the stand-in here), as the operators configure the loggers.

Four candidates per backend, as the issue asks: one failing (5xx), one slow, one wrong
(feedback labels), one good: aborted, aborted, aborted, promoted, each with the decision
the local gate (the front's RoleStats, seldon_local/router/routing.py) takes on the same traffic.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests
from zenml.client import Client
from zenml.enums import StackComponentType as T

from app.release import describe, status
from core.traffic.rows import folder_name, model_folder, read_kind
from core.traffic.sink import (
    KSERVE_REQUEST,
    KSERVE_RESPONSE,
    SELDON_REQUEST,
    SELDON_RESPONSE,
)
from integrations.k8s import patch as k8s_patch
from integrations.kserve import manifest as kserve_manifest
from integrations.kserve.flavor import FLAVOR_NAME as KSERVE_FLAVOR
from integrations.kubeflow.flavors import SELDON_FLAVOR
from integrations.mlflow import champion as champions
from integrations.mlflow import registry as mlflow_registry
from integrations.mlflow.registry import RegisteredModel
from integrations.zenml_adapters.request import DeploymentRequest, ReleaseRequest
from stacks.manage import ensure_flavors
from steps.deployment.deploy import serve_champion
from steps.deployment.release import check_cluster_release
from tests.kubeflow.conftest import use_test_kubeconfig
from tests.kubeflow.test_traffic_sink import start_sink
from tests.unit.integrations.test_release_gate import (
    LIMITS,
    answers,
    local_decision,
    local_evidence,
)

KINDS = {"5xx": "aborted", "slow": "aborted", "wrong": "aborted", "good": "promoted"}
NAMESPACE = "zenkube"
ISVC_PATH = f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices"
SDEP_PATH = f"/apis/machinelearning.seldon.io/v1/namespaces/{NAMESPACE}/seldondeployments"
READY = {"type": "Ready", "status": "True"}


def traffic(kind: str, seed: int = 3) -> list[tuple]:
    """(role, request id, status, latency ms, predictions, labels): 150 champion and 75
    candidate requests of two rows; every third labelled. Latencies are whole
    microseconds, as Ce-Time carries them."""
    return [
        (role, f"{kind}-{request_id}", status, round(ms, 3), predictions, labels)
        for role, request_id, status, ms, predictions, labels in answers(
            kind, seed, (150, 75), (0, 1)
        )
    ]


def at(latency_ms: float = 0.0) -> str:
    micros = int(round(latency_ms * 1000))
    return f"2026-12-01T12:00:{micros // 1_000_000:02d}.{micros % 1_000_000:06d}Z"


class Loggers:
    """Posts what a backend's request loggers post for one request (module docstring)."""

    def __init__(self, backend: str):
        self.backend, self.http = backend, requests.Session()

    def post(self, url: str, headers: dict, body: dict) -> None:
        answer = self.http.post(url, data=json.dumps(body), headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text

    def request(self, url, predictor, request_id, status, latency, predictions) -> None:
        rows = [[50.0 + p, 2] for p in predictions]
        if self.backend == "seldon":
            common = {"Ce-Specversion": "1.0", "Ce-Source": "http://0.0.0.0:8000/",
                      "Ce-Modelid": "classifier", "Ce-Requestid": request_id,
                      "Ce-Namespace": NAMESPACE, "Ce-Endpoint": predictor,
                      "Ce-Protocol": "seldon", "Content-Type": "application/json"}  # fmt: skip
            request = {"data": {"names": ["size", "rooms"], "ndarray": rows}}
            sent = {"Ce-Id": str(uuid.uuid4()), "Ce-Type": SELDON_REQUEST, "Ce-Time": at()}
            self.post(url, common | sent, request)
            if status == 200:
                answer = {"data": {"names": [], "ndarray": predictions}, "meta": {}}
                back = {"Ce-Id": str(uuid.uuid4()), "Ce-Type": SELDON_RESPONSE,
                        "Ce-Time": at(latency)}  # fmt: skip
                self.post(url, common | back, answer)
            return
        common = {"Ce-Id": request_id, "Ce-Specversion": "1.0",
                  "Ce-Source": "http://localhost:9081/", "Ce-Namespace": NAMESPACE,
                  "Ce-Component": "predictor", "Ce-Endpoint": "", "Ce-Metadata": "{}",
                  "Content-Type": "application/json"}  # fmt: skip
        request = {"inputs": [
            {"name": "size", "shape": [len(rows), 1], "datatype": "FP64", "data": [r[0] for r in rows]},
            {"name": "rooms", "shape": [len(rows), 1], "datatype": "INT64", "data": [2] * len(rows)},
        ]}  # fmt: skip
        self.post(url, common | {"Ce-Type": KSERVE_REQUEST, "Ce-Time": at()}, request)
        if status == 200:
            answer = {"id": request_id, "outputs": [{"name": "predict", "shape": [len(rows)],
                                                     "datatype": "INT64", "data": predictions}]}  # fmt: skip
            self.post(url, common | {"Ce-Type": KSERVE_RESPONSE, "Ce-Time": at(latency)}, answer)

    def feedback(self, base: str, request_id: str, labels: list) -> None:
        """A caller's labels, posted to the sink as SeldonClient / a V2 client sends them."""
        if self.backend == "seldon":
            body = {
                "response": {"meta": {"puid": request_id}},
                "truth": {"data": {"ndarray": labels}},
            }
        else:
            body = {"id": request_id, "truth": labels}
        answer = self.http.post(f"{base}/feedback", json=body, timeout=60)
        assert answer.status_code == 200, answer.text


def registered(name: str, volume, versions=("3", "4")) -> None:
    """MLflow versions 1-4 of `name` (champion alias on 3) and the ZenML Model versions
    that registered 3 and 4 (3 in stage production), as training leaves them."""
    from mlflow.tracking import MlflowClient

    mlflow_registry.configure_from_stack()
    mlflow = MlflowClient()
    mlflow.create_registered_model(name)
    for v in range(1, 5):
        mlflow.create_model_version(name, f"s3://zenkube-artifacts/mlflow/{name}/m-{v}")
    mlflow_registry.set_champion(name, "3")
    from zenml import log_metadata

    client = Client()
    client.create_model(name=name)
    made = {}
    for v in versions:  # ZenML numbers its own versions; the metadata names MLflow's
        made[v] = client.create_model_version(name)
        log_metadata({champions.MLFLOW_VERSION_KEY: v}, model_version_id=made[v].id)
    client.update_model_version(name, made["3"].id, stage=champions.STAGE, force=True)


def version(name: str, v: str) -> RegisteredModel:
    uri = f"s3://zenkube-artifacts/mlflow/1/models/{name}-m-{v}/artifacts"
    return RegisteredModel(name=name, version=v, model_uri=f"models:/m-{v}", artifact_location=uri)


def logger_urls(backend: str, objects: dict, name: str) -> dict[str, tuple[str, str]]:
    """{role: (logger URL, predictor name)} as the deployer wrote them into the object."""
    if backend == "kserve":
        body = objects[f"{ISVC_PATH}/{kserve_manifest.service_name(name, NAMESPACE)}"]
        (canary,) = body["spec"]["canary"]
        return {"champion": (body["spec"]["predictor"]["logger"]["url"], ""),
                "candidate": (canary["predictor"]["logger"]["url"], "")}  # fmt: skip
    (body,) = [b for p, b in objects.items() if p.startswith(SDEP_PATH + "/")
               and f"/{folder_name(name)}?" in b["spec"]["predictors"][0]["graph"]["logger"]["url"]]  # fmt: skip
    champion, candidate = body["spec"]["predictors"]
    return {"champion": (champion["graph"]["logger"]["url"], champion["name"]),
            "candidate": (candidate["graph"]["logger"]["url"], candidate["name"])}  # fmt: skip


@pytest.fixture(params=["kserve", "seldon"])
def cluster(request, zenml_store, tmp_path, monkeypatch):
    """The local stack with a cluster model deployer whose request loggers post to a real
    traffic sink, which writes into the artifact store (a shared volume: the bucket's
    stand-in) where the watcher reads."""
    from integrations.kubeflow.seldon import ZenkubeSeldonModelDeployer

    backend = request.param
    use_test_kubeconfig(tmp_path, monkeypatch)
    monkeypatch.setattr(ZenkubeSeldonModelDeployer, "RELEASE_TIMEOUT", 0)  # no operator here
    ensure_flavors()
    volume = tmp_path / "volume"
    volume.mkdir()
    sink, url = start_sink(volume / "traffic", "--unanswered-seconds", "1")
    common = {"kubernetes_context": "zenkube-test", "kubernetes_namespace": NAMESPACE,
              "request_logger_url": url}  # fmt: skip
    if backend == "kserve":
        config = common | {"base_url": "http://kserve.example.com", "ready_timeout": 0,
                           "canary_routing": "gateway-api"}  # fmt: skip
        flavor = KSERVE_FLAVOR
    else:
        # what Seldon's storage initializer reads the bucket with (rclone variables)
        Client().create_secret("seldon-rclone", {"rclone_config_s3_access_key_id": "AKIA0"})
        config = common | {"base_url": "http://seldon.example.com", "secret": "seldon-rclone",
                           "kubernetes_secret_name": None}  # fmt: skip
        flavor = SELDON_FLAVOR
    client = Client()
    store = client.create_stack_component(
        "volume", "shared_volume", T.ARTIFACT_STORE, {"path": str(volume)}
    )
    deployer = client.create_stack_component("cluster", flavor, T.MODEL_DEPLOYER, config)
    local = client.get_stack("zenkube-local")
    components = {t: [c[0].id] for t, c in local.components.items()}
    components[T.ARTIFACT_STORE], components[T.MODEL_DEPLOYER] = [store.id], [deployer.id]
    client.create_stack("watched", components=components)
    client.activate_stack("watched")
    yield backend, volume
    sink.terminate()
    sink.wait(timeout=20)


def start(backend: str, kubernetes_api, name: str) -> dict:
    """v3 served and Ready, then a canary of v4 at 25% with the gate's limits."""
    from integrations.zenml_adapters import deployer as deployers

    protocol = "v2" if backend == "kserve" else "seldon"
    serve_champion(version(name, "3"), protocol, "deployment_pipeline", "deploy_champion", 0)
    for path, body in kubernetes_api.objects.items():
        if path.startswith((ISVC_PATH, SDEP_PATH)) and "status" not in body:
            body["status"] = {"state": "Available", "conditions": [dict(READY)]}
    candidate = version(name, "4")
    request = DeploymentRequest(model_name=name, model_version="4",
                                model_uri=candidate.artifact_location, protocol=protocol)  # fmt: skip
    deployer = Client().active_stack.model_deployer
    release = ReleaseRequest(candidate=request, mode="canary", percent=25, thresholds=LIMITS)
    return deployers.release_start(deployer, release, 0)


def send(loggers: Loggers, urls: dict, kind_traffic: list[tuple]) -> None:
    base = urls["champion"][0].split("?", 1)[0]
    for role, request_id, status_code, latency, predictions, labels in kind_traffic:
        url, predictor = urls[role]
        loggers.request(url, predictor, request_id, status_code, latency, predictions)
        if labels and status_code == 200:
            loggers.feedback(base, request_id, labels)


def wait_for(folder: str, kind_traffic: list[tuple]) -> None:
    rows = sum(len(p) if s == 200 else 1 for _, _, s, _, p, _ in kind_traffic)
    labels = sum(len(lab) for _, _, s, _, _, lab in kind_traffic if lab and s == 200)
    deadline = time.monotonic() + 30
    while True:
        got = (len(read_kind(folder, "requests", None)), len(read_kind(folder, "feedback", None)))
        if got == (rows, labels):
            return
        assert time.monotonic() < deadline, f"the sink wrote {got}, not {(rows, labels)}"
        time.sleep(0.2)


def evidence_lines(lines: list[str]) -> list[str]:
    keys = ("champion:", "candidate:", "shift:", "quality:", "bounds:")
    return [line for line in lines if line.strip().startswith(keys)]


def test_the_cluster_watcher_takes_the_local_gates_decisions_on_both_backends(
    cluster, kubernetes_api
):
    backend, volume = cluster
    loggers = Loggers(backend)
    for kind, expected in KINDS.items():
        name = f"watched_{kind}"
        registered(name, volume)
        started = start(backend, kubernetes_api, name)
        assert started["active"] and started["candidate"]["version"] == "4"
        urls = logger_urls(backend, kubernetes_api.objects, name)
        waiting = check_cluster_release(name)  # no traffic yet: inconclusive, nothing changes
        assert waiting["outcome"] == "inconclusive" and "more candidate requests" in waiting["next"]
        assert Client().active_stack.model_deployer.release_state(name)["state"] == "running"
        sent = traffic(kind)
        send(loggers, urls, sent)
        folder = model_folder(volume / "traffic", name)
        wait_for(folder, sent)

        # rows land with who answered: the sent request's role and version
        rows = read_kind(folder, "requests", None)
        written = {(r["_request_id"], r["_role"], r["_version"]) for _, r in rows.iterrows()}
        assert written == {
            (rid, "canary" if role == "candidate" else "champion",
             "4" if role == "candidate" else "3")
            for role, rid, *_ in sent
        }  # fmt: skip

        # release status on the cluster: the local evidence table, figure for figure
        evidence = local_evidence(sent)
        shown: list[str] = []
        state = status(name, shown.append)
        assert state["evidence"]["candidate"]["requests"] == 75
        table = evidence_lines(describe(name, {**state, "evidence": evidence}))
        assert evidence_lines(shown) == table and len(table) == 5, shown

        # the watcher's look: the local gate's decision, and the release ended by it
        outcome, reasons, _ = local_decision(sent)
        result = check_cluster_release(name)
        assert result["outcome"] == expected, (kind, result["reasons"])
        assert (outcome, result["reasons"]) == (
            {"promoted": "promote", "aborted": "abort"}[expected],
            reasons,
        ), kind
        ended = Client().active_stack.model_deployer.release_state(name)
        decision = ended["decision"]
        assert ended["state"] == expected and not ended["active"]
        assert decision["by"] == "release (canary 25%) by the gate"
        assert decision["reasons"] == ["; ".join(reasons)]
        (entry, *_) = champions.release_history(name)  # MLflow's history, as locally
        assert (entry["version"], entry["outcome"]) == ("4", expected)
        assert entry["by"] == "release (canary 25%) by the gate"
        champion = champions.current(name).version
        assert champion == ("4" if expected == "promoted" else "3")
        # what serves now: the candidate's files after a promote, the champion's after an abort
        served = json.dumps(
            {p: b for p, b in kubernetes_api.objects.items() if p.startswith((ISVC_PATH, SDEP_PATH))}
        )  # fmt: skip
        assert version(name, champion).artifact_location in served
        if backend == "kserve":
            body = kubernetes_api.objects[
                f"{ISVC_PATH}/{kserve_manifest.service_name(name, NAMESPACE)}"
            ]
            assert "canary" not in body["spec"]
        again = check_cluster_release(name)  # the next scheduled run: nothing to do
        assert again["outcome"] == "idle" and expected in again["reasons"][0]

    # Too little evidence: each look leaves the release running until its budget is
    # spent; then the gate's abort, with that reason, ends it like any abort.
    name = "watched_budget"
    registered(name, volume)
    start(backend, kubernetes_api, name)
    urls = logger_urls(backend, kubernetes_api.objects, name)
    send(Loggers(backend), urls, traffic("good")[:160])  # 150 champion, 10 candidate
    wait_for(model_folder(volume / "traffic", name), traffic("good")[:160])
    assert check_cluster_release(name)["outcome"] == "inconclusive"
    for body in kubernetes_api.objects.values():  # the release began 31 minutes ago
        record = k8s_patch.read_release(body)
        if record and record.get("active"):
            record["started_at"] -= 1860
            body["metadata"]["annotations"].update(k8s_patch.release_annotation(record))
    result = check_cluster_release(name)
    assert result["outcome"] == "aborted"
    assert result["reasons"] == ["no decision within the budget of 1800 s"]
    (entry, *_) = champions.release_history(name)
    assert entry["outcome"] == "aborted" and "budget" in entry["reason"]
    assert champions.current(name).version == "3"
