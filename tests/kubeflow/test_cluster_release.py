"""The cluster deployers' release hooks (issue #27) through the Kubernetes API stand-in
(tests/kubeflow/conftest.py: records calls, keeps objects, applies merge patches as the
API server does; nothing else). KServe's and Seldon's controllers are not here: a test
writes the status they would report. Every object applied passes the vendored CRDs.
"""

from __future__ import annotations

import uuid

import pytest
from zenml.client import Client

from app.release import describe
from core.errors import ConfigError
from integrations.kserve import manifest
from integrations.kubeflow import seldon_manifest
from integrations.zenml_adapters import deployer as contract
from integrations.zenml_adapters.request import DeploymentRequest, ReleaseRequest
from steps.deployment.deploy import serve_champion
from tests.kubeflow.conftest import SELDON_CRD, crd_problems, kserve_crds
from tests.kubeflow.test_kserve_manifest import HOUSE, ISVC_PATH, champion, kserve_stack  # noqa: F401
from tests.kubeflow.test_seldon_manifest import seldon_stack  # noqa: F401

THRESHOLDS = {"budget_seconds": 1800}
READY = {"conditions": [{"type": "Ready", "status": "True"}]}


def request(version: str) -> DeploymentRequest:
    model = champion(version)
    return DeploymentRequest(
        model_name=model.name, model_version=version, model_uri=model.artifact_location,
        protocol="v2",
    )  # fmt: skip


def release(candidate: DeploymentRequest, mode: str, percent: float, thresholds=THRESHOLDS):
    return ReleaseRequest(candidate=candidate, mode=mode, percent=percent, thresholds=thresholds)


def assert_kserve_accepts(body: dict, releases=("v0.20.0", "v0.15.0")) -> None:
    for release, crd in kserve_crds("InferenceService"):
        if release in releases:
            assert crd_problems(body, crd) == [], release


def configured(**config):
    """The active stack with a model deployer like its own but with `config` changed (a
    new component: a component's config is frozen, and ZenML caches the stack)."""
    from zenml.enums import StackComponentType as T

    client = Client()
    stack = client.active_stack_model
    old = stack.components[T.MODEL_DEPLOYER][0]
    new = client.create_stack_component(
        f"changed-{uuid.uuid4().hex[:8]}",
        old.flavor_name,
        T.MODEL_DEPLOYER,
        {**old.configuration, **config},
    )
    client.update_stack(stack.id, component_updates={T.MODEL_DEPLOYER: [new.id]})
    return Client().active_stack.model_deployer


def serve_v3(kubernetes_api) -> dict:
    serve_champion(champion("3"), "v2", "deployment_pipeline", "deploy_champion", 0)
    body = kubernetes_api.objects[f"{ISVC_PATH}/{HOUSE}"]
    body["status"] = dict(READY)  # what KServe reports once v3 is Ready
    return body


def kserve_canary(kubernetes_api, thresholds=THRESHOLDS):
    """v3 served by the stack's KServe deployer, then a 10% canary of v4: the deployer."""
    serve_v3(kubernetes_api)
    deployer = Client().active_stack.model_deployer
    deployer.release_start(release(request("4"), "canary", 10, thresholds), 0)
    return deployer


def test_kserve_runs_no_shadow_and_says_why(kserve_stack):  # noqa: F811
    deployer = Client().active_stack.model_deployer
    assert deployer.RELEASE_MODES == ("canary",)
    with pytest.raises(ConfigError) as refused:
        deployer.release_start(release(request("4"), "shadow", 0), 0)
    message = str(refused.value)
    assert "kserve/kserve#2978" in message and "--canary PCT" in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match="only canary releases") as refused:  # the contract's
        contract.release_start(deployer, release(request("4"), "shadow", 0), 0)
    assert "kserve/kserve#2978" in str(refused.value)  # with KServe's own reason


def test_a_standard_canary_behind_an_ingress_is_refused_before_anything_starts(
    kserve_stack,  # noqa: F811
    kubernetes_api,
):
    """KServe v0.20.0's Ingress routes to the stable predictor only: a Standard canary there
    would get no live request, so release start refuses in one paragraph and writes nothing."""
    serve_v3(kubernetes_api)
    deployer = configured(canary_routing="ingress")  # what stack up writes by default
    before = [c for c in kubernetes_api if c["method"] != "GET"]
    with pytest.raises(ConfigError) as refused:
        contract.release_start(deployer, release(request("4"), "canary", 10), 0)
    message = str(refused.value)
    assert "stable predictor only" in message and "nothing was started" in message
    assert "canary_routing: gateway-api" in message and "Serverless" in message
    assert "\n" not in message
    assert [c for c in kubernetes_api if c["method"] != "GET"] == before
    assert deployer.release_state("House Prices") is None  # no release was recorded
    serverless = configured(canary_routing="ingress", deployment_mode="Serverless")
    assert serverless.release_start(release(request("4"), "canary", 10), 0)["active"]


def test_a_kserve_canary_starts_reads_back_and_aborts_to_the_champion(
    kserve_stack,  # noqa: F811
    kubernetes_api,
):
    path = f"{ISVC_PATH}/{HOUSE}"
    serve_v3(kubernetes_api)
    deployer = Client().active_stack.model_deployer
    state = contract.release_start(deployer, release(request("4"), "canary", 10), 0)
    body = kubernetes_api.objects[path]
    assert_kserve_accepts(body, ("v0.20.0",))
    (entry,) = body["spec"]["canary"]
    assert entry["trafficPercent"] == 10
    assert entry["predictor"]["model"]["storageUri"] == champion("4").artifact_location
    assert body["spec"]["predictor"]["model"]["storageUri"] == champion("3").artifact_location
    assert state["active"] and state["state"] == "running" and state["mode"] == "canary"
    assert state["percent"] == 10.0 and state["candidate"]["version"] == "4"
    assert state["champion"]["version"] == "3" and state["evidence"] == {}
    assert "release promote" in state["next"] and "request" not in state
    assert state["backend"]["candidate_ready"] is False  # KServe has not reported yet
    assert "Gateway API HTTPRoutes" in state["backend"]["routing"]  # canary_routing
    text = "\n".join(describe("House Prices", state))  # what `release status` prints
    assert f"InferenceService zenkube/{HOUSE}: ready; candidate not ready (KServe has" in text
    assert "release watcher" in text and "routing:   Gateway API HTTPRoutes split" in text
    # what KServe v0.20 reports once the canary's Deployment is available
    body["status"]["canaryStatuses"] = [{"name": "v4", "ready": True, "trafficPercent": 10}]
    assert deployer.release_state("House Prices")["backend"]["candidate_ready"] is True
    assert contract.served(deployer, "House Prices").config.model_version == "3"
    with pytest.raises(ConfigError, match="one release per model"):
        deployer.release_start(release(request("5"), "canary", 10), 0)

    ended = deployer.release_end("House Prices", "abort", "alice", "p95 too high")
    body = kubernetes_api.objects[path]
    assert "canary" not in body["spec"]  # the merge patch removed it (null)
    assert body["spec"]["predictor"]["model"]["storageUri"] == champion("3").artifact_location
    assert_kserve_accepts(body)
    assert ended["state"] == "aborted" and not ended["active"]
    assert ended["decision"]["outcome"] == "abort" and ended["decision"]["by"] == "alice"
    assert ended["decision"]["reasons"] == ["p95 too high"]
    again = deployer.release_end("House Prices", "abort", "bob", "")  # idempotent
    assert again["decision"]["by"] == "alice"
    with pytest.raises(ConfigError, match="no release running"):
        deployer.release_end("House Prices", "promote", "bob", "")
    (record,) = deployer.services_for("House Prices")
    assert record.config.model_version == "3"


def test_a_kserve_promote_deploys_the_candidate_and_the_canary_goes(
    kserve_stack,  # noqa: F811
    kubernetes_api,
):
    path = f"{ISVC_PATH}/{HOUSE}"
    serve_v3(kubernetes_api)
    deployer = configured(ready_timeout=0)  # the stand-in has no controller to wait for
    deployer.release_start(release(request("4"), "canary", 25), 0)
    ended = deployer.release_end("House Prices", "promote", "release (canary 25%)", "good")
    body = kubernetes_api.objects[path]
    assert "canary" not in body["spec"]
    assert body["spec"]["predictor"]["model"]["storageUri"] == champion("4").artifact_location
    assert body["metadata"]["labels"]["zenkube.model-version"] == "4"
    assert_kserve_accepts(body)
    assert ended["state"] == "promoted" and ended["decision"]["outcome"] == "promote"
    (record,) = deployer.services_for("House Prices")
    assert record.config.model_version == "4"  # the records, as after `deploy`


def test_a_kserve_serverless_canary_is_canary_traffic_percent_and_aborts_to_zero(
    kserve_stack,  # noqa: F811
    kubernetes_api,
):
    path = f"{ISVC_PATH}/{HOUSE}"
    serve_v3(kubernetes_api)
    deployer = configured(deployment_mode="Serverless")
    deployer.release_start(release(request("4"), "canary", 10), 0)
    body = kubernetes_api.objects[path]
    assert body["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert body["spec"]["predictor"]["model"]["storageUri"] == champion("4").artifact_location
    assert_kserve_accepts(body)
    # the champion's record still serves (Knative keeps its revision for 90 %)
    assert contract.served(deployer, "House Prices").config.model_version == "3"
    deployer.release_end("House Prices", "abort", "alice", "")
    body = kubernetes_api.objects[path]
    assert body["spec"]["predictor"]["canaryTrafficPercent"] == 0  # KServe's rollback
    assert body["spec"]["predictor"]["model"]["storageUri"] == champion("3").artifact_location
    assert_kserve_accepts(body)
    serve_champion(champion("5"), "v2", "deployment_pipeline", "deploy_champion", 0)
    assert "canaryTrafficPercent" not in kubernetes_api.objects[path]["spec"]["predictor"]


def test_a_kserve_canary_that_never_gets_ready_is_aborted(
    kserve_stack,  # noqa: F811
    kubernetes_api,
    monkeypatch,
):
    from integrations.kserve import model_deployer

    path = f"{ISVC_PATH}/{HOUSE}"
    serve_v3(kubernetes_api)
    deployer = Client().active_stack.model_deployer
    clock = iter(range(0, 10_000, 5))
    monkeypatch.setattr(model_deployer.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(model_deployer.time, "sleep", lambda _: None)
    with pytest.raises(model_deployer.KServeDeployError, match="did not get Ready"):
        deployer.release_start(release(request("4"), "canary", 10), 60)
    body = kubernetes_api.objects[path]
    assert "canary" not in body["spec"]
    state = deployer.release_state("House Prices")
    assert state["state"] == "aborted" and state["decision"]["by"] == "release start"
    assert "did not get Ready" in state["decision"]["reasons"][0]


def test_an_undecided_cluster_release_is_decided_abort_by_the_budget(
    kserve_stack,  # noqa: F811
    kubernetes_api,
):
    deployer = kserve_canary(kubernetes_api, {"budget_seconds": 60})
    body = kubernetes_api.objects[f"{ISVC_PATH}/{HOUSE}"]
    record = manifest.read_release(body)
    record["started_at"] -= 61  # a minute ago
    body["metadata"]["annotations"].update(manifest.release_annotation(record))
    state = deployer.release_state("House Prices")
    assert state["state"] == "decided"
    assert state["decision"]["outcome"] == "abort" and state["decision"]["by"] == "budget"
    assert "release abort" in state["next"]


# -- Seldon Core -------------------------------------------------------------------------
SDEP_PATH = "/apis/machinelearning.seldon.io/v1/namespaces/zenkube/seldondeployments"


def seldon_request(version: str) -> DeploymentRequest:
    return request(version).model_copy(update={"protocol": "seldon"})


def serve_seldon_v3(kubernetes_api) -> tuple[str, dict]:
    serve_champion(champion("3"), "seldon", "deployment_pipeline", "deploy_champion", 0)
    (path,) = [p for p in kubernetes_api.objects if p.startswith(SDEP_PATH + "/")]
    # what Seldon's operator reports once it is Available
    ready = {"type": "Ready", "status": "True"}
    kubernetes_api.objects[path]["status"] = {"state": "Available", "conditions": [ready]}
    return path, kubernetes_api.objects[path]


@pytest.mark.parametrize("mode", ["canary", "shadow"])
def test_a_seldon_release_starts_reads_back_and_aborts_to_the_champion(
    seldon_stack,  # noqa: F811
    kubernetes_api,
    mode,
):
    path, _ = serve_seldon_v3(kubernetes_api)
    deployer = Client().active_stack.model_deployer
    assert deployer.RELEASE_MODES == ("canary", "shadow")
    state = contract.release_start(deployer, release(seldon_request("4"), mode, 10), 0)
    body = kubernetes_api.objects[path]
    assert crd_problems(body, SELDON_CRD) == []
    champ, cand = body["spec"]["predictors"]
    assert champ["graph"]["modelUri"] == champion("3").artifact_location
    assert cand["graph"]["modelUri"] == champion("4").artifact_location
    assert cand["name"] == seldon_manifest.candidate_predictor_name("House Prices", "4")
    if mode == "canary":
        assert (champ["traffic"], cand["traffic"]) == (90, 10)
    else:
        assert champ["traffic"] == 100 and cand["shadow"] is True and "traffic" not in cand
    assert state["state"] == "running" and state["mode"] == mode
    assert state["backend"]["kind"] == "SeldonDeployment" and state["backend"]["ready"]
    assert [p["name"] for p in state["backend"]["predictors"]] == [champ["name"], cand["name"]]
    ended = deployer.release_end("House Prices", "abort", "alice", "5xx")
    body = kubernetes_api.objects[path]
    assert crd_problems(body, SELDON_CRD) == []
    (only,) = body["spec"]["predictors"]
    assert only["name"] == champ["name"] and "traffic" not in only
    assert only["graph"]["modelUri"] == champion("3").artifact_location
    assert ended["state"] == "aborted" and ended["decision"]["reasons"] == ["5xx"]


def test_a_seldon_promote_deploys_the_candidate_and_the_released_object_goes(
    seldon_stack,  # noqa: F811
    kubernetes_api,
    monkeypatch,
):
    from integrations.kubeflow.seldon import ZenkubeSeldonModelDeployer

    monkeypatch.setattr(ZenkubeSeldonModelDeployer, "RELEASE_TIMEOUT", 0)  # no operator here
    path, _ = serve_seldon_v3(kubernetes_api)
    deployer = Client().active_stack.model_deployer
    deployer.release_start(release(seldon_request("4"), "canary", 10), 0)
    assert deployer.release_state("House Prices")["candidate"]["version"] == "4"
    ended = deployer.release_end("House Prices", "promote", "release (canary 10%)", "good")
    assert path not in kubernetes_api.objects  # the released SeldonDeployment went
    (new_path,) = [p for p in kubernetes_api.objects if p.startswith(SDEP_PATH + "/")]
    body = kubernetes_api.objects[new_path]
    assert crd_problems(body, SELDON_CRD) == []
    (predictor,) = body["spec"]["predictors"]
    assert predictor["graph"]["modelUri"] == champion("4").artifact_location
    assert ended["state"] == "promoted" and ended["decision"]["by"] == "release (canary 10%)"
    (record,) = deployer.services_for("House Prices")
    assert record.config.model_version == "4"


def test_a_standard_canary_on_a_kserve_without_spec_canary_is_refused_at_once(
    kserve_stack,  # noqa: F811
    kubernetes_api,
):
    """KServe v0.15's API server prunes `spec.canary` (its CRD lacks it): the release is
    refused and the InferenceService is the champion's, not a silent canary of nothing."""
    path = f"{ISVC_PATH}/{HOUSE}"
    serve_v3(kubernetes_api)
    kubernetes_api.prune_with = "kserve-v0.15.0_inferenceservices.yaml.gz"
    deployer = Client().active_stack.model_deployer
    with pytest.raises(ConfigError, match="dropped the InferenceService's spec.canary"):
        deployer.release_start(release(request("4"), "canary", 10), 0)
    body = kubernetes_api.objects[path]
    assert "canary" not in body["spec"]
    assert body["spec"]["predictor"]["model"]["storageUri"] == champion("3").artifact_location
    state = deployer.release_state("House Prices")
    assert state["state"] == "aborted" and "spec.canary" in state["decision"]["reasons"][0]


def test_a_deploy_during_a_cluster_release_is_refused_and_changes_nothing(
    kserve_stack,  # noqa: F811
    kubernetes_api,
):
    path = f"{ISVC_PATH}/{HOUSE}"
    deployer = kserve_canary(kubernetes_api)
    before = [c for c in kubernetes_api if c["method"] != "GET"]
    with pytest.raises(ConfigError, match="release abort --model-name House Prices"):
        serve_champion(champion("5"), "v2", "deployment_pipeline", "deploy_champion", 0)
    assert [c for c in kubernetes_api if c["method"] != "GET"] == before
    assert kubernetes_api.objects[path]["spec"]["canary"][0]["trafficPercent"] == 10
    assert deployer.release_state("House Prices")["state"] == "running"
    (record,) = deployer.services_for("House Prices")
    assert record.config.model_version == "3"
