"""`run.py stack check` (integrations/kubeflow/preflight.py) against the Kubernetes API
stand-in (tests/kubernetes_api.py, which answers SubjectAccessReview as the API server's
`subjectaccessreview/rest.go` does, with RBAC's rule matching), reached over HTTP through
the `kubernetes` client and a kubeconfig, as on a cluster.

Seeded with the shipped Role and RoleBinding, the serving CRD, the storage secret and two
HTTP servers that answer, every check passes; each thing taken away (a verb of the Role,
the CRD, the secret, a server) is reported with its fix and nothing else fails.
"""

from __future__ import annotations

import copy
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations.kubeflow import preflight, rbac
from tests.kubeflow.conftest import SELDON_CRD, kserve_crds, load_crd
from tests.kubeflow.test_rbac import schema_problems
from tests.kubernetes_api import KubernetesApi

SECRET = {"apiVersion": "v1", "kind": "Secret",
          "metadata": {"name": "zenkube-s3", "namespace": "kubeflow"}}  # fmt: skip


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def servers():
    """Two HTTP servers standing where the stack's MLflow and ZenML servers are."""
    started = [ThreadingHTTPServer(("127.0.0.1", 0), Health) for _ in range(2)]
    for server in started:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{s.server_address[1]}" for s in started]
    for server in started:
        server.shutdown()


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def settings(backend: str, servers: list[str], **changes) -> preflight.Settings:
    flavor = {v: k for k, v in rbac.BACKENDS.items()}[backend]
    orchestrator = {"kubeflow_namespace": "kubeflow", "storage_secret": "zenkube-s3"}
    found = preflight.settings_of(orchestrator, flavor, {"kubernetes_namespace": "zenkube"},
                                  servers[0], servers[1])  # fmt: skip
    return preflight.Settings(**{**found.__dict__, **changes})


def crd(backend: str) -> dict:
    if backend == "seldon":
        return copy.deepcopy(load_crd(SELDON_CRD))
    return copy.deepcopy(load_crd(kserve_crds("InferenceService")[1][1]))  # the oldest


@pytest.fixture
def cluster(tmp_path):
    with KubernetesApi(tmp_path / "k8s", mlflow_url="") as api:
        api.client = preflight.api_client(None, str(api.kubeconfig()))
        yield api


def seed(api: KubernetesApi, backend: str, documents=None) -> None:
    api.apply(*(documents or rbac.documents(backend)), crd(backend), SECRET)


def report(api, wanted) -> dict[str, preflight.Check]:
    return {c.name: c for c in preflight.run_checks(api.client, wanted)}


@pytest.mark.parametrize("backend", ["seldon", "kserve"])
def test_everything_in_place_passes_every_check(cluster, servers, backend):
    seed(cluster, backend)
    checks = report(cluster, settings(backend, servers))
    assert all(c.ok for c in checks.values()), [c.lines() for c in checks.values() if not c.ok]
    # one review per (verb, group, resource) of the shipped Role, for the runner's account
    reviews = [c["body"] for c in cluster.calls if c["path"].endswith("subjectaccessreviews")]
    assert len(reviews) == len(rbac.granted(backend, "zenkube"))
    assert {r["spec"]["user"] for r in reviews} == {
        "system:serviceaccount:kubeflow:pipeline-runner"
    }
    assert all(r["spec"]["resourceAttributes"]["namespace"] == "zenkube" for r in reviews)
    assert len(checks) == len(reviews) + 4  # CRD, secret, MLflow, ZenML
    # each review is what Kubernetes' own schema accepts (tests/kubeflow/data/openapi)
    for review in reviews:
        problems = schema_problems(review, "SubjectAccessReview")
        assert [p for p in problems if not p.startswith("metadata.name")] == []


def test_a_missing_permission_is_reported_with_the_manifest_to_apply(cluster, servers):
    documents = copy.deepcopy(rbac.documents("seldon"))
    role = next(d for d in documents if d["kind"] == "Role")
    role["rules"][1]["verbs"].remove("delete")  # an old Role without delete
    seed(cluster, "seldon", documents)
    failed = [c for c in report(cluster, settings("seldon", servers)).values() if not c.ok]
    assert [c.name for c in failed] == [
        "kubeflow/pipeline-runner may delete seldondeployments.machinelearning.seldon.io "
        "in namespace zenkube"
    ]
    assert "kubectl apply -f integrations/kubeflow/manifests/rbac-seldon.yaml" in failed[0].fix


def test_a_binding_in_another_namespace_grants_nothing(cluster, servers):
    seed(cluster, "kserve")  # the Role and RoleBinding are in `zenkube`
    checks = report(cluster, settings("kserve", servers, serving_namespace="models")).values()
    assert {c.ok for c in checks if "may" in c.name} == {False}
    assert all(c.ok for c in checks if "may" not in c.name)


def review(cluster, body: dict) -> tuple[int, dict]:
    """POST a SubjectAccessReview to the stand-in through the kubernetes client."""
    return preflight._call(
        cluster.client, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body
    )


RUNNER = {"user": "system:serviceaccount:kubeflow:pipeline-runner",
          "groups": ["system:serviceaccounts", "system:authenticated"]}  # fmt: skip


def test_the_stand_in_answers_a_review_as_rest_go_and_rbac_go_do(cluster):
    """tests/kubernetes_api.py follows subjectaccessreview/rest.go `Create` and rbac.go
    `Authorize`: 201 with status.allowed and the binding that allowed it as the reason; a
    request no rule allows is NoOpinion (allowed false, no `denied`, no reason); a binding
    whose Role is missing is a resolution error in the reason; a review without a subject
    or attributes is 422 Invalid with the field."""
    seed(cluster, "seldon")
    create = {"namespace": "zenkube", "verb": "create", "group": "", "resource": "secrets"}
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {**RUNNER, "resourceAttributes": create}}  # fmt: skip
    status, answer = review(cluster, body)
    binding = rbac.binding("seldon")
    assert status == 201 and answer["status"] == {
        "allowed": True,
        "reason": f'RBAC: allowed by RoleBinding "{binding["metadata"]["name"]}/zenkube" of '
        f'Role "{binding["roleRef"]["name"]}" to ServiceAccount "pipeline-runner/kubeflow"',
    }
    list_pods = {**create, "verb": "list", "resource": "pods"}
    status, answer = review(cluster, {**body, "spec": {**RUNNER, "resourceAttributes": list_pods}})
    assert status == 201 and answer["status"] == {"allowed": False}
    # The Role deleted, its binding left: rbac.go says why in the reason; so does the check.
    cluster.objects = {k: v for k, v in cluster.objects.items() if v.get("kind") != "Role"}
    status, answer = review(cluster, body)
    missing = f'role.rbac.authorization.k8s.io "{binding["roleRef"]["name"]}" not found'
    assert status == 201 and answer["status"] == {"allowed": False, "reason": f"RBAC: {missing}"}
    allowed, said = preflight.access_review(
        cluster.client, settings("seldon", ["http://x", "http://y"]),
        rbac.Request("create", "", "secrets", "zenkube", "", ""),
    )  # fmt: skip
    assert (allowed, said) == (False, f"RBAC: {missing}")
    status, answer = review(cluster, {**body, "spec": {"resourceAttributes": create}})
    assert status == 422 and answer["reason"] == "Invalid"
    assert answer["message"] == (
        'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": '
        "at least one of user or group must be specified"
    )
    status, answer = review(cluster, {**body, "spec": RUNNER})
    assert status == 422 and answer["details"]["causes"][0]["field"] == "spec.resourceAttributes"


def test_a_missing_crd_or_version_is_reported_with_the_install_step(cluster, servers):
    cluster.apply(*rbac.documents("kserve"), SECRET)
    (failed,) = [c for c in report(cluster, settings("kserve", servers)).values() if not c.ok]
    assert failed.name.startswith("CRD inferenceservices.serving.kserve.io")
    assert "InferenceService is not installed: install KServe" in failed.fix
    old = crd("kserve")
    for version in old["spec"]["versions"]:
        version["served"] = version["name"] != "v1beta1"
    cluster.apply(old)
    (failed,) = [c for c in report(cluster, settings("kserve", servers)).values() if not c.ok]
    assert "the deployer writes v1beta1" in failed.fix


def test_a_missing_storage_secret_is_reported_with_the_command_that_creates_it(cluster, servers):
    cluster.apply(*rbac.documents("seldon"), crd("seldon"))
    (failed,) = [c for c in report(cluster, settings("seldon", servers)).values() if not c.ok]
    assert failed.name == "storage secret kubeflow/zenkube-s3 exists"
    assert failed.fix.startswith("kubectl -n kubeflow create secret generic zenkube-s3")
    no_secret = settings("seldon", servers, storage_secret="")  # the pods' own identity
    assert all(c.ok for c in report(cluster, no_secret).values())


def test_an_unreachable_server_is_reported_with_its_fix(cluster, servers):
    seed(cluster, "seldon")
    down = closed_port()
    failed = [c for c in report(cluster, settings("seldon", [down, servers[1]])).values()
              if not c.ok]  # fmt: skip
    assert [c.name for c in failed] == [f"MLflow server {down} is reachable"]
    assert "set ZENKUBE_MLFLOW_URI" in failed[0].fix
    failed = [c for c in report(cluster, settings("seldon", servers, zenml_url=None)).values()
              if not c.ok]  # fmt: skip
    assert [c.name for c in failed] == ["ZenML server: the stack uses a local store"]
    assert "zenml login" in failed[0].fix


def test_a_cluster_that_does_not_answer_is_one_paragraph(servers, tmp_path):
    from core.errors import ConfigError

    api = KubernetesApi(tmp_path, mlflow_url="")  # never started
    client = preflight.api_client(None, str(api.kubeconfig()))
    api.server.server_close()
    with pytest.raises(ConfigError, match="does not answer"):
        preflight.run_checks(client, settings("seldon", servers))
    with pytest.raises(ConfigError, match="kubeconfig could not be loaded"):
        preflight.api_client(None, str(tmp_path / "missing"))


def test_the_settings_come_from_the_active_kubeflow_stack(
    zenml_store, monkeypatch, cluster, servers
):
    from zenml.client import Client

    from stacks.manage import stack_up

    monkeypatch.setenv("ZENKUBE_MLFLOW_URI", servers[0])
    monkeypatch.setenv("SELDON_NAMESPACE", "models")
    monkeypatch.setenv("KFP_NAMESPACE", "kfp")
    monkeypatch.setenv("ZENKUBE_STORAGE_SECRET", "bucket-keys")
    Client().create_secret("zenkube-mlflow", values={"username": "u", "password": "p"})
    stack_up("kubeflow")
    found = preflight.settings_of_active_stack()
    assert found == preflight.Settings("seldon", "models", "kfp", "bucket-keys", servers[0], None)
    documents = copy.deepcopy(rbac.documents("seldon"))
    for document in documents:
        document["metadata"]["namespace"] = "models"
    documents[1]["subjects"][0]["namespace"] = "kfp"
    secret = {**SECRET, "metadata": {"name": "bucket-keys", "namespace": "kfp"}}
    cluster.apply(*documents, crd("seldon"), secret)
    failed = [c.name for c in preflight.run_checks(cluster.client, found) if not c.ok]
    assert failed == ["ZenML server: the stack uses a local store"]


def test_a_local_stack_has_nothing_to_check(zenml_store):
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="is not a Kubeflow stack"):
        preflight.settings_of_active_stack()
