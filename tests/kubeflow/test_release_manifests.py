"""Release manifests (issue #27) pass the same CRD validation as the plain deployments:
KServe's full CRDs (v0.20.0, v0.15.0) and Seldon Core v1.18.2's, field by field, pruned
fields included (tests/kubeflow/conftest.py `crd_problems`). Plain functions, no cluster.
"""

from __future__ import annotations

from copy import deepcopy

import pytest

from core.errors import ConfigError
from integrations.k8s import names as k8s_names
from integrations.k8s import patch as k8s_patch
from integrations.kserve import manifest as kserve
from integrations.kubeflow import seldon_manifest as seldon
from integrations.mlflow.registry import RegisteredModel
from steps.deployment.deploy import build_deployment_config
from tests.kubeflow.conftest import SELDON_CRD, crd_problems, kserve_crds
from tests.kubernetes_api import merge

PERCENTS = (1, 10, 50, 99)
CHAMPION_URI = "s3://zenkube-artifacts/mlflow/1/models/m-3/artifacts"
CANDIDATE_URI = "s3://zenkube-artifacts/mlflow/1/models/m-4/artifacts"


def kserve_problems(body: dict) -> dict[str, list[str]]:
    return {release: crd_problems(body, crd) for release, crd in kserve_crds(body["kind"])}


def plain(version: str, uri: str, model: str = "House_Prices", namespace: str = "zenkube"):
    spec = kserve.InferenceServiceSpec(
        model_name=model,
        model_version=version,
        model_uri=uri,
        namespace=namespace,
        service_account="zenkube-storage",
        cpu="500m",
        memory="1Gi",
        logger_url="http://sink",
    )
    return kserve.inference_service(spec)


def release(mode: str = "canary", percent: int = 10, deployment_mode: str = "Standard") -> dict:
    return {
        "active": True,
        "state": "running",
        "mode": mode,
        "percent": percent,
        "champion": {"version": "3", "model_uri": CHAMPION_URI},
        "candidate": {"version": "4", "model_uri": CANDIDATE_URI},
        "deployment_mode": deployment_mode,
    }


# -- KServe --------------------------------------------------------------------------------
@pytest.mark.parametrize("percent", PERCENTS)
def test_a_standard_mode_canary_is_a_spec_canary_entry_v0_20_accepts(percent):
    body = kserve.canary(plain("3", CHAMPION_URI), plain("4", CANDIDATE_URI), percent,
                         "Standard", release(percent=percent))  # fmt: skip
    problems = kserve_problems(body)
    assert problems["v0.20.0"] == []
    # v0.15 has no spec.canary: its API server would drop it (so no canary there)
    assert problems["v0.15.0"] == [".spec.canary would be pruned"]
    assert body["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    predictor = body["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == CHAMPION_URI  # the stable one serves on
    assert "canaryTrafficPercent" not in predictor
    (entry,) = body["spec"]["canary"]
    assert entry["trafficPercent"] == percent
    assert entry["predictor"]["name"] == "v4"
    assert entry["predictor"]["model"]["storageUri"] == CANDIDATE_URI
    # callers' answers, to the folder --from-traffic reads; the sink's rows say who answered
    assert entry["predictor"]["logger"]["url"] == "http://sink/House_Prices?role=canary&version=4"
    assert predictor["logger"]["url"] == "http://sink/House_Prices?role=champion&version=3"
    assert "minReplicas" not in entry["predictor"]  # KServe sizes it by its share
    env = {e["name"]: e["value"] for e in entry["predictor"]["model"]["env"]}
    assert env["MLSERVER_MODEL_NAME"] == body["metadata"]["name"]  # the same V2 path
    service = kserve.canary_service_name(body["metadata"]["name"], "4")
    assert not k8s_names.problems(service, "1035")
    assert kserve.read_release(body)["candidate"]["version"] == "4"


@pytest.mark.parametrize("percent", PERCENTS)
def test_a_serverless_canary_is_canary_traffic_percent_both_releases_accept(percent):
    body = kserve.canary(plain("3", CHAMPION_URI), plain("4", CANDIDATE_URI), percent,
                         "Serverless", release(percent=percent, deployment_mode="Serverless"))  # fmt: skip
    assert kserve_problems(body) == {"v0.20.0": [], "v0.15.0": []}
    predictor = body["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == percent
    assert predictor["model"]["storageUri"] == CANDIDATE_URI  # the latest revision's
    # its rows are the canary's; the champion's revision keeps the URL it was made with
    assert predictor["logger"]["url"] == "http://sink/House_Prices?role=canary&version=4"
    assert "canary" not in body["spec"]
    assert body["metadata"]["labels"]["zenkube.model-version"] == "3"


@pytest.mark.parametrize("mode", ["Standard", "Serverless"])
def test_promote_and_abort_leave_a_spec_both_releases_accept(mode):
    champion, candidate = plain("3", CHAMPION_URI), plain("4", CANDIDATE_URI)
    running = kserve.canary(champion, candidate, 10, mode, release(deployment_mode=mode))
    ended = release(deployment_mode=mode) | {"active": False}
    abort = k8s_patch.object_patch(running, kserve.aborted(champion, mode, ended))
    promote = k8s_patch.object_patch(running, kserve.promoted(candidate, mode, ended))
    aborted, promoted = merge(deepcopy(running), abort), merge(deepcopy(running), promote)
    for body in (aborted, promoted):
        assert kserve_problems(body) == {"v0.20.0": [], "v0.15.0": []}
        assert "canary" not in body["spec"]
    assert aborted["spec"]["predictor"]["model"]["storageUri"] == CHAMPION_URI
    assert promoted["spec"]["predictor"]["model"]["storageUri"] == CANDIDATE_URI
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]  # 100 % to latest
    if mode == "Serverless":  # KServe's documented rollback: all to the previous revision
        assert aborted["spec"]["predictor"]["canaryTrafficPercent"] == 0
    else:
        assert "canaryTrafficPercent" not in aborted["spec"]["predictor"]
    assert kserve.read_release(aborted)["active"] is False


def test_a_canary_whose_service_name_would_not_fit_is_refused_with_the_fix():
    long_name = "m" * 62
    champion = plain("3", CHAMPION_URI, long_name, "a")
    candidate = plain("12345", CANDIDATE_URI, long_name, "a")
    with pytest.raises(ConfigError) as refused:
        kserve.canary(champion, candidate, 10, "Standard",
                      release() | {"candidate": {"version": "12345"}})  # fmt: skip
    assert "kubernetes_namespace" in str(refused.value) and "63" in str(refused.value)


def test_shares_are_whole_percents_on_the_cluster():
    assert k8s_patch.whole_percent(10.0, "KServe") == 10
    with pytest.raises(ConfigError, match="whole percents; 10.5 was given"):
        k8s_patch.whole_percent(10.5, "KServe")


def test_a_merge_patch_removes_what_the_new_body_lacks_and_keeps_others_metadata():
    current = {"metadata": {"annotations": {"kubectl": "x", "a": "1"}},
               "spec": {"predictor": {"canaryTrafficPercent": 10, "model": {"u": 1}},
                        "canary": [{"trafficPercent": 10}]},
               "status": {"ready": True}}  # fmt: skip
    body = {"metadata": {"annotations": {"a": "2"}}, "spec": {"predictor": {"model": {"u": 2}}}}
    patch = k8s_patch.object_patch(current, body)
    assert patch == {
        "spec": {"predictor": {"canaryTrafficPercent": None, "model": {"u": 2}}, "canary": None},
        "metadata": {"annotations": {"a": "2"}},
    }
    after = merge(current, patch)
    assert after["spec"] == body["spec"] and after["status"] == {"ready": True}
    assert after["metadata"]["annotations"] == {"kubectl": "x", "a": "2"}
    # the stand-in applies it as the API server does: a null inside a new object goes too
    assert merge({"x": {"y": 1}}, {"x": {"y": None, "z": {"w": None}}}) == {"x": {"z": {}}}


# -- Seldon Core ---------------------------------------------------------------------------
def seldon_body(model_name: str = "House_Prices") -> dict:
    from uuid import uuid4

    champion = RegisteredModel(name=model_name, version="3", model_uri="models:/m-3",
                               artifact_location=CHAMPION_URI)  # fmt: skip
    config = build_deployment_config(champion, "seldon", "deployment_pipeline", "deploy")
    body = seldon.for_cluster(seldon.zenml_body(config, uuid4()), "http://sink")
    body["metadata"]["namespace"] = "zenkube"
    return body


def webhook_problems(spec: dict) -> list[str]:
    """Seldon Core v1.18.2's admission rules for traffic and shadows (operator/apis/
    machinelearning.seldon.io/v1/seldondeployment_webhook.go, `checkTraffic`,
    `validateShadow`) and distinct predictor names."""
    predictors = spec["predictors"]
    shadows = [p for p in predictors if p.get("shadow")]
    total = sum(p.get("traffic", 0) for p in predictors if not p.get("shadow"))
    found = []
    if len(shadows) > 1:
        found.append("Multiple shadows are not allowed")
    if any(not 0 <= p.get("traffic", 0) <= 100 for p in shadows):
        found.append("shadow traffic is illegal")
    if total != 100 and len(predictors) - len(shadows) > 1:
        found.append("Traffic must sum to 100 for multiple predictors")
    if 0 < total < 100 and len(predictors) == 1:
        found.append("Traffic must sum be 100 for a single predictor when set")
    if len(predictors) == 1 and predictors[0].get("shadow"):
        found.append("Shadow can not exist as only predictor")
    if len({p["name"] for p in predictors}) != len(predictors):
        found.append("predictor names repeat")
    return found


def check_names(body: dict) -> None:
    for predictor in body["spec"]["predictors"]:
        assert not k8s_names.problems(predictor["name"])  # the Istio subset
        service = seldon.predictor_service(body["metadata"]["name"], predictor["name"])
        assert not k8s_names.problems(service)  # the operator's Service


@pytest.mark.parametrize("model_name", ["House_Prices", "house-prices", "m" * 62])
@pytest.mark.parametrize("percent", PERCENTS)
def test_a_seldon_canary_is_two_predictors_with_weights_summing_to_100(model_name, percent):
    served = seldon_body(model_name)
    body = seldon.release(served, "canary", percent, CANDIDATE_URI, "4", release())
    body = seldon.for_cluster(body, "http://sink")  # as the deployer's API wrapper sends it
    assert crd_problems(body, SELDON_CRD) == []
    assert webhook_problems(body["spec"]) == []
    check_names(body)
    champion, candidate = body["spec"]["predictors"]
    assert champion["name"] == seldon.predictor_name(model_name)  # unchanged: no restart
    assert champion["graph"]["modelUri"] == CHAMPION_URI and champion["traffic"] == 100 - percent
    assert candidate["name"] == seldon.candidate_predictor_name(model_name, "4")
    assert candidate["graph"]["modelUri"] == CANDIDATE_URI and candidate["traffic"] == percent
    assert candidate["graph"].get("envSecretRefName") == champion["graph"].get("envSecretRefName")
    # both answer callers: both log to the folder `monitor --from-traffic` reads
    # (the sink's rows say who answered: the role and version in the URL's query, and the
    # predictor it checks against Seldon's Ce-Endpoint)
    url = seldon.logger_url("http://sink", model_name)
    assert champion["graph"]["logger"]["url"] == (
        f"{url}?role=champion&version=3&predictor={champion['name']}"
    )
    assert candidate["graph"]["logger"]["url"] == (
        f"{url}?role=canary&version=4&predictor={candidate['name']}"
    )
    assert seldon.read_release(body)["candidate"]["version"] == "4"


def test_a_seldon_shadow_is_a_shadow_predictor_whose_answers_are_logged_apart():
    body = seldon.for_cluster(
        seldon.release(seldon_body(), "shadow", 0, CANDIDATE_URI, "4", release("shadow")),
        "http://sink",
    )
    assert crd_problems(body, SELDON_CRD) == []
    assert webhook_problems(body["spec"]) == []
    check_names(body)
    champion, candidate = body["spec"]["predictors"]
    assert champion["traffic"] == 100 and not champion.get("shadow")
    # no traffic on the shadow: Istio mirrors every request (no mirrorPercentage)
    assert candidate["shadow"] is True and "traffic" not in candidate
    assert champion["graph"]["logger"]["url"] == (
        f"http://sink/House_Prices?role=champion&version=3&predictor={champion['name']}"
    )
    assert candidate["graph"]["logger"]["url"] == (
        f"http://sink/House_Prices.shadow?role=shadow&version=4&predictor={candidate['name']}"
    )


@pytest.mark.parametrize("mode", ["canary", "shadow"])
def test_a_seldon_abort_leaves_the_champion_alone_and_valid(mode):
    running = seldon.for_cluster(
        seldon.release(seldon_body(), mode, 10, CANDIDATE_URI, "4", release(mode)), "http://s"
    )
    meta = release(mode) | {
        "candidate": {"version": "4", "predictor": running["spec"]["predictors"][1]["name"]}
    }
    body = seldon.for_cluster(seldon.aborted(running, meta | {"active": False}), "http://s")
    assert crd_problems(body, SELDON_CRD) == [] and webhook_problems(body["spec"]) == []
    (champion,) = body["spec"]["predictors"]
    assert champion["graph"]["modelUri"] == CHAMPION_URI
    assert "traffic" not in champion and "shadow" not in champion
    assert seldon.read_release(body)["active"] is False
