"""The RBAC manifests KFP's `pipeline-runner` needs in the serving namespace
(integrations/kubeflow/manifests/rbac-*.yaml) grant exactly what the deployers call.

The verbs are not written down twice: each backend's deployer deploys, replaces, rolls
back and runs releases (start, abort, promote) through the Kubernetes API stand-in of
tests/kubeflow/conftest.py, which records every call; each call becomes the request
attributes the API server would authorize (integrations/kubeflow/rbac.py, after
requestinfo.go), and that set must equal what the Role grants: nothing missing (a 403 on
the cluster), nothing extra (least privilege). The manifests are checked against
Kubernetes' own schema (tests/kubeflow/data/openapi/SOURCES.md).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import jsonschema
import pytest
from zenml.client import Client

from integrations.kubeflow import rbac
from integrations.kubeflow.rbac import Request
from tests.kubeflow.conftest import metadata_problems
from tests.kubeflow.test_cluster_release import (
    kserve_canary,
    release,
    request,
    seldon_request,
    serve_seldon_v3,
)
from tests.kubeflow.test_kserve_manifest import champion, kserve_stack  # noqa: F401
from tests.kubeflow.test_seldon_manifest import seldon_stack  # noqa: F401

OPENAPI = Path(__file__).parent / "data" / "openapi"
DEFINITIONS = "kubernetes-release-1.36_rbac-authorization-definitions.json.gz"
EXCERPT_SHA256 = "8737b71ecc3cf76137e004711503c31069dd4fe92367ad1b683e25f857757bd9"


def definitions() -> dict:
    return json.loads(gzip.decompress((OPENAPI / DEFINITIONS).read_bytes()))["definitions"]


def schema_problems(body: dict, kind: str) -> list[str]:
    """What Kubernetes' OpenAPI schema refuses in `body` (types, required fields) and the
    fields it does not know (a strict `kubectl apply` refuses them too)."""
    defs = definitions()
    group = {"SubjectAccessReview": "authorization"}.get(kind, "rbac")
    root = f"io.k8s.api.{group}.v1.{kind}"
    schema = {"$ref": f"#/definitions/{root}", "definitions": defs}
    validator = jsonschema.Draft4Validator(schema)
    found = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]

    def unknown(value, definition: dict, path: str) -> None:
        ref = definition.get("$ref") or (definition.get("allOf") or [{}])[0].get("$ref")
        if ref:
            definition = defs[ref.rsplit("/", 1)[-1]]
        if isinstance(value, dict) and "properties" in definition:
            for key, item in value.items():
                if key not in definition["properties"]:
                    found.append(f"{path}.{key} is not a field of {kind}")
                else:
                    unknown(item, definition["properties"][key], f"{path}.{key}")
        elif isinstance(value, list) and isinstance(definition.get("items"), dict):
            for i, item in enumerate(value):
                unknown(item, definition["items"], f"{path}[{i}]")

    unknown(body, defs[root], "")
    return found + metadata_problems(body.get("metadata") or {})


def test_vendored_schema_is_the_recorded_excerpt():
    text = gzip.decompress((OPENAPI / DEFINITIONS).read_bytes())
    assert hashlib.sha256(text).hexdigest() == EXCERPT_SHA256
    assert EXCERPT_SHA256 in (OPENAPI / "SOURCES.md").read_text()


@pytest.mark.parametrize("backend", ["seldon", "kserve"])
def test_the_manifests_are_rbac_objects_kubernetes_accepts(backend):
    documents = rbac.documents(backend)
    assert [d["kind"] for d in documents] == ["Role", "RoleBinding"]
    for document in documents:
        assert document["apiVersion"] == "rbac.authorization.k8s.io/v1"
        assert schema_problems(document, document["kind"]) == []
    role, binding = documents
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]
    }  # fmt: skip
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"] == "zenkube"
    assert rbac.service_account(backend) == ("kubeflow", "pipeline-runner")  # KFP 2.4.0's


def test_the_schema_check_catches_what_the_api_server_refuses():
    role = rbac.role("seldon")
    assert schema_problems({**role, "rules": [{"resources": ["secrets"]}]}, "Role")  # no verbs
    assert schema_problems({**role, "rules": [{**role["rules"][0], "verb": ["get"]}]}, "Role")
    binding = {k: v for k, v in rbac.binding("seldon").items() if k != "roleRef"}
    assert schema_problems(binding, "RoleBinding")  # roleRef is required


def derived(calls) -> set[Request]:
    """The (verb, group, resource, namespace) of every recorded call."""
    found = set()
    for call in calls:
        path, _, query = call["path"].partition("?")
        r = rbac.request_of(call["method"], path, query)
        found.add(Request(r.verb, r.group, r.resource, r.namespace, subresource=r.subresource))
    return found


def assert_grants_exactly(backend: str, calls) -> None:
    used = derived(calls)
    granted = set(rbac.granted(backend, "zenkube"))
    assert used == granted, (
        f"missing: {sorted(r.short() for r in used - granted)}; "
        f"unused: {sorted(r.short() for r in granted - used)}"
    )
    user = rbac.user_of(*rbac.service_account(backend))
    groups = ["system:serviceaccounts", "system:serviceaccounts:kubeflow"]
    objects = rbac.documents(backend)
    for call in calls:  # every call, with its object's name, is authorized
        path, _, query = call["path"].partition("?")
        assert rbac.authorize(objects, user, groups, rbac.request_of(call["method"], path, query))


def test_the_seldon_role_grants_exactly_what_the_seldon_deployer_calls(
    seldon_stack,  # noqa: F811
    kubernetes_api,
    monkeypatch,
):
    from integrations.kubeflow.seldon import ZenkubeSeldonModelDeployer
    from steps.deployment.deploy import serve_champion

    monkeypatch.setattr(ZenkubeSeldonModelDeployer, "RELEASE_TIMEOUT", 0)  # no operator here
    serve_seldon_v3(kubernetes_api)  # the Secret, then a SeldonDeployment
    deployer = Client().active_stack.model_deployer
    deployer.release_start(release(seldon_request("4"), "canary", 10), 0)
    deployer.release_end("House Prices", "abort", "alice", "5xx")
    deployer.release_start(release(seldon_request("4"), "shadow", 0), 0)
    deployer.release_end("House Prices", "promote", "alice", "good")  # a new one, old goes
    serve_champion(champion("5"), "seldon", "deployment_pipeline", "deploy_champion", 0)
    assert {c["method"] for c in kubernetes_api} == {"GET", "POST", "PUT", "PATCH", "DELETE"}
    assert_grants_exactly("seldon", kubernetes_api)


def test_the_kserve_role_grants_exactly_what_the_kserve_deployer_calls(
    kserve_stack,  # noqa: F811
    kubernetes_api,
):
    from steps.deployment.deploy import serve_champion

    deployer = kserve_canary(kubernetes_api)  # create, then patch
    deployer.release_end("House Prices", "abort", "alice", "5xx")
    deployer.release_start(release(request("4"), "canary", 10), 0)
    deployer.release_end("House Prices", "promote", "alice", "good")
    serve_champion(champion("5"), "v2", "deployment_pipeline", "deploy_champion", 0)
    assert {c["method"] for c in kubernetes_api} == {"GET", "POST", "PATCH"}
    assert_grants_exactly("kserve", kubernetes_api)


def test_request_attributes_are_the_api_servers():
    core = "/api/v1/namespaces/zenkube/secrets"
    assert rbac.request_of("GET", f"{core}/s") == Request("get", "", "secrets", "zenkube", "s")
    assert rbac.request_of("GET", core).verb == "list"
    assert rbac.request_of("GET", core, "watch=true").verb == "watch"
    assert rbac.request_of("DELETE", core).verb == "deletecollection"
    assert rbac.request_of("PUT", f"{core}/s").verb == "update"
    status = rbac.request_of(
        "PATCH", "/apis/serving.kserve.io/v1beta1/namespaces/z/inferenceservices/m/status"
    )
    assert status == Request("patch", "serving.kserve.io", "inferenceservices", "z", "m", "status")
    sar = rbac.request_of("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews")
    assert sar == Request("create", "authorization.k8s.io", "subjectaccessreviews")


def test_rules_match_as_rbac_go_matches_them():
    isvc = Request("patch", "serving.kserve.io", "inferenceservices", "zenkube", "m")
    rule = {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"]}
    assert rbac.rule_allows({**rule, "verbs": ["patch"]}, isvc)
    assert rbac.rule_allows({**rule, "verbs": ["*"]}, isvc)
    assert not rbac.rule_allows({**rule, "verbs": ["update"]}, isvc)  # PUT is not PATCH
    assert not rbac.rule_allows({**rule, "apiGroups": [""], "verbs": ["patch"]}, isvc)
    assert rbac.rule_allows({**rule, "verbs": ["patch"], "resourceNames": ["m"]}, isvc)
    assert not rbac.rule_allows({**rule, "verbs": ["patch"], "resourceNames": ["x"]}, isvc)
    status = Request("patch", "serving.kserve.io", "inferenceservices", "zenkube", "m", "status")
    assert not rbac.rule_allows({**rule, "verbs": ["patch"]}, status)  # a subresource apart
    assert rbac.rule_allows({**rule, "resources": ["*/status"], "verbs": ["patch"]}, status)
    # a RoleBinding grants in its own namespace only, to the subjects it names
    objects = rbac.documents("kserve")
    user = rbac.user_of("kubeflow", "pipeline-runner")
    assert rbac.authorize(objects, user, [], isvc)
    assert not rbac.authorize(objects, user, [], Request(**{**isvc.__dict__, "namespace": "x"}))
    assert not rbac.authorize(objects, rbac.user_of("kubeflow", "default"), [], isvc)
