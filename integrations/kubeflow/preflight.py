"""`run.py stack check`: before the first run, ask the cluster whether it will work.

With a Kubeflow stack active, one check per line:

- every rule of the shipped Role (integrations/kubeflow/manifests/rbac-<backend>.yaml, the
  truth of what the deployers call) is allowed to KFP's runner service account in the
  serving namespace: one `SubjectAccessReview` per (verb, group, resource), POSTed to
  /apis/authorization.k8s.io/v1/subjectaccessreviews (the API server answers with the
  RBAC authorizer's decision; `kubectl auth can-i --as=...` asks the same thing);
- the serving backend's CRD is installed and serves the version the deployer writes;
- the storage secret (the orchestrator's `storage_secret`) exists where the pods run;
- the MLflow and ZenML servers the stack names answer an HTTP GET within a few seconds.

`run_checks` is plain: it takes the settings and a `kubernetes` ApiClient, so the test
points it at the API stand-in (tests/kubernetes_api.py). `settings_of_active_stack` reads
the active stack through ZenML.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from core.errors import ConfigError
from integrations.kubeflow import rbac

SERVICE_ACCOUNT = "pipeline-runner"  # KFP 2.4.0 pipeline-runner-sa.yaml
# (CRD name, kind, the version the deployer writes) per serving backend
CRDS = {
    "seldon": ("seldondeployments.machinelearning.seldon.io", "SeldonDeployment", "v1"),
    "kserve": ("inferenceservices.serving.kserve.io", "InferenceService", "v1beta1"),
}
INSTALL = {
    "seldon": "install Seldon Core 1.18 (docs/kubeflow.md, section 2)",
    "kserve": "install KServe v0.15 or newer (docs/kubeflow.md, 'Serving with KServe instead')",
}
TIMEOUT = 5.0


@dataclass(frozen=True)
class Settings:
    backend: str  # seldon | kserve
    serving_namespace: str  # the model deployer's kubernetes_namespace
    pods_namespace: str  # the orchestrator's kubeflow_namespace (KFP's; the SA lives there)
    storage_secret: str | None  # None/empty: the pods use their own identity
    mlflow_url: str | None
    zenml_url: str | None  # None: a local store, which pods cannot reach
    kube_context: str | None = None
    service_account: str = SERVICE_ACCOUNT


@dataclass
class Check:
    name: str
    ok: bool
    fix: str = ""
    detail: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        mark = "✓" if self.ok else "✗"
        said = [f"{mark} {self.name}"]
        return said if self.ok else said + [f"    fix: {self.fix}"]


def _call(api_client, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """One API call through the kubernetes client (the kubeconfig's server and token);
    (status, JSON body). Connection failures propagate: the caller words them."""
    from kubernetes.client.rest import ApiException

    try:
        response = api_client.call_api(
            path, method, body=body, header_params={"Content-Type": "application/json",
                                                    "Accept": "application/json"},
            auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True, _request_timeout=TIMEOUT,
        )  # fmt: skip
        return response.status, json.loads(response.data or b"{}")
    except ApiException as error:
        try:
            return error.status, json.loads(error.body or b"{}")
        except ValueError:
            return error.status, {"message": error.reason}


def access_review(api_client, settings: Settings, request: rbac.Request) -> tuple[bool, str]:
    """(allowed, reason) of a SubjectAccessReview for the runner's service account. The
    groups are the ones the API server gives a service account's token
    (serviceaccount.MakeGroupNames + system:authenticated): a review names them itself."""
    namespace = settings.pods_namespace
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": rbac.user_of(namespace, settings.service_account),
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ],  # fmt: skip
            "resourceAttributes": {
                "namespace": request.namespace,
                "verb": request.verb,
                "group": request.group,
                "resource": request.resource,
            },
        },
    }
    status, reply = _call(
        api_client, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body
    )
    if status >= 400:
        return False, f"the review itself was refused ({status}: {reply.get('message', '')})"
    answer = reply.get("status") or {}  # rest.go: allowed, denied, reason, evaluationError
    said = "; ".join(answer[k] for k in ("reason", "evaluationError") if answer.get(k))
    return bool(answer.get("allowed")), said


def rbac_checks(api_client, settings: Settings) -> list[Check]:
    sa = f"{settings.pods_namespace}/{settings.service_account}"
    manifest = rbac.manifest_path(settings.backend).relative_to(rbac.MANIFESTS.parents[2])
    checks = []
    for request in rbac.granted(settings.backend, settings.serving_namespace):
        allowed, reason = access_review(api_client, settings, request)
        fix = (
            f"apply {manifest} with its namespace lines set to '{settings.serving_namespace}'"
            f" and the subject to {sa}: kubectl apply -f {manifest}"
            + (f" ({reason})" if reason else "")
        )
        name = f"{sa} may {request.short()} in namespace {settings.serving_namespace}"
        checks.append(Check(name, allowed, fix))
    return checks


def crd_check(api_client, settings: Settings) -> Check:
    name, kind, version = CRDS[settings.backend]
    status, crd = _call(
        api_client, "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    )
    label = f"CRD {name} ({kind}) serves {version}"
    if status == 404:
        return Check(label, False, f"{kind} is not installed: {INSTALL[settings.backend]}")
    if status >= 400:
        return Check(label, False, f"cannot read it ({status}): ask for `get` on "
                     "customresourcedefinitions, or check by hand: kubectl get crd " + name)  # fmt: skip
    served = [v["name"] for v in crd.get("spec", {}).get("versions", []) if v.get("served")]
    if version not in served:
        return Check(label, False, f"it serves {served or 'no version'}, the deployer writes "
                     f"{version}: {INSTALL[settings.backend]}")  # fmt: skip
    return Check(label, True)


def secret_check(api_client, settings: Settings) -> Check:
    secret, namespace = settings.storage_secret, settings.pods_namespace
    if not secret:
        return Check("storage secret: none set (the pods use their own identity)", True)
    status, _ = _call(api_client, "GET", f"/api/v1/namespaces/{namespace}/secrets/{secret}")
    label = f"storage secret {namespace}/{secret} exists"
    if status == 404:
        return Check(label, False, f"kubectl -n {namespace} create secret generic {secret} "
                     "--from-literal=AWS_ACCESS_KEY_ID=... --from-literal="
                     "AWS_SECRET_ACCESS_KEY=... (docs/kubeflow.md, section 3)")  # fmt: skip
    if status >= 400:
        return Check(label, False, f"cannot read it ({status}); check by hand: "
                     f"kubectl -n {namespace} get secret {secret}")  # fmt: skip
    return Check(label, True)


def reachable(url: str, timeout: float = TIMEOUT) -> str | None:
    """None when `url` answers an HTTP GET (any status below 500), else why not, within
    about `timeout` seconds: urlopen's timeout bounds the connect and the read, not the
    host's name lookup (a cluster-internal name can stall the resolver for many seconds),
    so the GET runs in a daemon thread that is given up on at the deadline."""
    import threading

    why = [f"no answer within {timeout:g} s"]

    def get() -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout):
                why[0] = None
        except urllib.error.HTTPError as error:
            why[0] = None if error.code < 500 else f"it answered {error.code}"
        except (OSError, ValueError) as error:
            why[0] = str(getattr(error, "reason", None) or error)

    thread = threading.Thread(target=get, daemon=True)
    thread.start()
    thread.join(timeout + 1)
    return why[0]


def server_checks(settings: Settings) -> list[Check]:
    checks = []
    if not settings.mlflow_url:
        checks.append(Check("MLflow server: none configured", False,
                            "set ZENKUBE_MLFLOW_URI and run `run.py stack up` again"))  # fmt: skip
    else:
        url = settings.mlflow_url.rstrip("/")
        why = reachable(f"{url}/health")
        checks.append(Check(f"MLflow server {url} is reachable", why is None,
                            f"{why}: start it or port-forward it, or set ZENKUBE_MLFLOW_URI "
                            "to where it runs and `run.py stack up` again"))  # fmt: skip
    if not settings.zenml_url:
        checks.append(Check("ZenML server: the stack uses a local store", False,
                            "the pods report to a ZenML server: `zenml login <url>` "
                            "(docs/kubeflow.md, section 4)"))  # fmt: skip
    else:
        url = settings.zenml_url.rstrip("/")
        why = reachable(f"{url}/health")
        checks.append(Check(f"ZenML server {url} is reachable", why is None,
                            f"{why}: start it or port-forward it, then `zenml login {url}`"))  # fmt: skip
    return checks


def run_checks(api_client, settings: Settings) -> list[Check]:
    """Every check, in order; a cluster that does not answer at all is a ConfigError."""
    import urllib3

    try:
        checks = rbac_checks(api_client, settings)
    except (urllib3.exceptions.HTTPError, OSError) as error:
        host = api_client.configuration.host
        raise ConfigError(
            f"The Kubernetes API at {host} does not answer ({type(error).__name__}), so "
            "nothing could be checked. Check the kubeconfig's current context "
            "(`kubectl config current-context`, `kubectl get ns`) and that the cluster is up."
        ) from None
    return (
        checks
        + [crd_check(api_client, settings), secret_check(api_client, settings)]
        + (server_checks(settings))
    )


def api_client(context: str | None, config_file: str | None = None):
    """A `kubernetes` ApiClient from the user's kubeconfig (as the deployers load it)."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        return config.new_client_from_config(config_file, context=context or None)
    except (ConfigException, OSError) as error:
        raise ConfigError(
            f"No cluster to check: the kubeconfig could not be loaded ({error}). Point "
            "KUBECONFIG (or ~/.kube/config) at your cluster and try again."
        ) from None


def settings_of(orchestrator: dict, deployer_flavor: str, deployer: dict,
                mlflow_url: str | None, zenml_url: str | None) -> Settings:  # fmt: skip
    """Settings from the components' configurations (plain dicts)."""
    return Settings(
        backend=rbac.BACKENDS[deployer_flavor],
        serving_namespace=deployer.get("kubernetes_namespace") or "zenkube",
        pods_namespace=orchestrator.get("kubeflow_namespace") or "kubeflow",
        storage_secret=orchestrator.get("storage_secret"),
        mlflow_url=mlflow_url,
        zenml_url=zenml_url,
        kube_context=deployer.get("kubernetes_context"),
    )


def settings_of_active_stack() -> Settings:
    """Read the active stack through ZenML; ConfigError unless it is a Kubeflow stack."""
    from zenml.client import Client

    stack = Client().active_stack
    orchestrator, deployer = stack.orchestrator, stack.model_deployer
    if orchestrator.flavor not in ("zenkube_kubeflow", "kubeflow") or (
        deployer is None or deployer.flavor not in rbac.BACKENDS
    ):
        raise ConfigError(
            f"The active stack '{stack.name}' is not a Kubeflow stack (orchestrator "
            f"{orchestrator.flavor}, model deployer {deployer.flavor if deployer else 'none'}), "
            "so there is no cluster to check. Run `python run.py stack up kubeflow` (or "
            "kubeflow-kserve) first."
        )
    tracker = stack.experiment_tracker
    mlflow_url = tracker.get_tracking_uri() if tracker is not None else None
    store = Client().zen_store
    zenml_url = None if store.is_local_store() else str(store.config.url)
    return settings_of(orchestrator.config.model_dump(), deployer.flavor,
                       deployer.config.model_dump(), mlflow_url, zenml_url)  # fmt: skip
