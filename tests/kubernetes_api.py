"""The Kubernetes API a deployment pod reaches, stood in on 127.0.0.1, with Seldon behind it.

There is no Kubernetes here. This stand-in answers the HTTP calls ZenML's Seldon client
makes through the `kubernetes` package (Secrets, SeldonDeployments: read, create, replace,
merge-patch, list by label, delete) and records them. What the cluster's controllers would
do next is done for real: for a new SeldonDeployment the model is copied from its
`modelUri` as Seldon's rclone storage initializer copies a path it can read (here a
folder on the shared volume that stands in for the bucket; any other scheme fails the
pod, as `mlflow-artifacts:/` fails it on a cluster),
the real Seldon Core runtime serves it, the status turns `Available`, and the ingress path
`/seldon/<namespace>/<name>/...` forwards to it. Pods find the API through a kubeconfig.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlparse

SELDON = "/apis/machinelearning.seldon.io/v1/namespaces/"
CORE = "/api/v1/namespaces/"
REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def path_of(obj: dict) -> str:
    """Where the API server keeps `obj` (its REST path), for seeding the stand-in."""
    group, _, version = obj["apiVersion"].rpartition("/")
    plural = obj["kind"].lower() + ("es" if obj["kind"].endswith("s") else "s")
    if obj["kind"] == "CustomResourceDefinition":
        plural = "customresourcedefinitions"
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    namespace = obj["metadata"].get("namespace")
    where = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{where}/{plural}/{obj['metadata']['name']}"


def subject_access_review(objects: list[dict], review: dict) -> tuple[int, dict]:
    """POST /apis/authorization.k8s.io/v1/subjectaccessreviews as the API server answers it.

    kubernetes `pkg/registry/authorization/subjectaccessreview/rest.go`, `REST.Create`
    (v1.30-v1.35; read from the kubernetes/kubernetes sources): it validates the review
    (`pkg/apis/authorization/validation/validation.go`, `ValidateSubjectAccessReview`:
    both or neither of resourceAttributes/nonResourceAttributes, no user and no groups,
    metadata not empty: 422 Invalid, `apierrors.NewInvalid`), asks the authorizer about
    `authorizationutil.AuthorizationAttributesFrom(spec)` and returns 201 with the review
    and `status = {allowed: decision == Allow, denied: decision == Deny, reason,
    evaluationError: BuildEvaluationError(err, attrs)}` (empty fields are left out of the
    JSON: omitempty). The authorizer here is RBAC alone, `rbac_decision`; it never says
    Deny and never returns an error, so `denied` and `evaluationError` never appear.
    """
    spec = review.get("spec") or {}
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    causes = []  # (field, value as Go's %#v-like quoting, detail), in validation.go's order
    if resource is not None and non_resource is not None:
        causes.append(("spec.nonResourceAttributes", json.dumps(non_resource),
                       "cannot be specified in combination with resourceAttributes"))  # fmt: skip
    if resource is None and non_resource is None:
        causes.append(("spec.resourceAttributes", "null",
                       "exactly one of nonResourceAttributes or resourceAttributes must be "
                       "specified"))  # fmt: skip
    if not spec.get("user") and not spec.get("groups"):
        causes.append(("spec.user", json.dumps(spec.get("user") or ""),
                       "at least one of user or group must be specified"))  # fmt: skip
    metadata = {k: v for k, v in (review.get("metadata") or {}).items() if k != "managedFields"}
    if any(v not in (None, "", {}, []) for v in metadata.values()):
        causes.append(("metadata", json.dumps(metadata), "must be empty"))
    if causes:
        return 422, invalid("SubjectAccessReview", "authorization.k8s.io", causes)
    if resource is None:  # RBAC's non-resource rules: not used by zenkube, not stood in
        return 201, {**review, "status": {"allowed": False}}
    allowed, reason = rbac_decision(
        objects, spec.get("user", ""), spec.get("groups") or [], resource
    )
    status = {"allowed": allowed, **({"reason": reason} if reason else {})}
    return 201, {**review, "status": status}


def invalid(kind: str, group: str, causes: list[tuple[str, str, str]]) -> dict:
    """The Status body of `apierrors.NewInvalid(kind, "", errs)` (k8s.io/apimachinery
    pkg/api/errors/errors.go): 422, reason Invalid, one cause per field error, and the
    message `<Kind>.<group> "" is invalid: <errs.ToAggregate()>`."""
    errors = [f"{field}: Invalid value: {value}: {detail}" for field, value, detail in causes]
    return {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'{kind}.{group} "" is invalid: {aggregate(errors)}',
        "reason": "Invalid",
        "details": {"group": group, "kind": kind, "causes": [
            {"reason": "FieldValueInvalid", "message": f"Invalid value: {value}: {detail}",
             "field": field} for field, value, detail in causes]},
        "code": 422,
    }  # fmt: skip


def aggregate(messages: list[str]) -> str:
    """utilerrors.NewAggregate(errs).Error(): one message as it is, several de-duplicated
    in order inside [..., ...]."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def rbac_decision(objects: list[dict], user: str, groups: list[str], attributes: dict):
    """(allowed, reason) of kubernetes `plugin/pkg/auth/authorizer/rbac/rbac.go`
    `RBACAuthorizer.Authorize` for a resource request. Rules are visited in
    `pkg/registry/rbac/validation/rule.go` `DefaultRuleResolver.VisitRulesFor` order: every
    ClusterRoleBinding that applies, then (for a namespaced request) every RoleBinding of
    the namespace that applies, each with its role's rules; a role that does not exist is
    a resolution error (`<kind>.rbac.authorization.k8s.io "<name>" not found`). The first
    rule that allows (`RuleAllows`) gives DecisionAllow and the reason `RBAC: allowed by
    <binding>` (rule.go `roleBindingDescriber`/`clusterRoleBindingDescriber`.String);
    otherwise DecisionNoOpinion with the reason "" or `RBAC: <the resolution errors>`."""
    from integrations.kubeflow import rbac

    request = rbac.Request(
        attributes.get("verb", ""), attributes.get("group", ""),
        attributes.get("resource", ""), attributes.get("namespace", ""),
        attributes.get("name", ""), attributes.get("subresource", ""),
    )  # fmt: skip
    roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
             for o in objects if o["kind"] in ("Role", "ClusterRole")}  # fmt: skip
    cluster = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    local = [o for o in objects if o["kind"] == "RoleBinding"
             and o["metadata"].get("namespace", "") == request.namespace]  # fmt: skip
    errors = []
    for binding in cluster + (local if request.namespace else []):
        where = binding["metadata"].get("namespace", "")
        subject = next((s for s in binding.get("subjects") or []
                        if rbac.applies_to(s, user, groups, where)), None)  # fmt: skip
        if subject is None:
            continue
        ref = binding["roleRef"]
        role = roles.get((ref["kind"], where if ref["kind"] == "Role" else "", ref["name"]))
        if role is None:
            errors.append(f'{ref["kind"].lower()}.rbac.authorization.k8s.io "{ref["name"]}" '
                          "not found")  # fmt: skip
            continue
        if any(rbac.rule_allows(rule, request) for rule in role.get("rules") or []):
            return True, f"RBAC: allowed by {describe(binding, subject)}"
    return False, f"RBAC: {aggregate(errors)}" if errors else ""


def describe(binding: dict, subject: dict) -> str:
    """rule.go `roleBindingDescriber.String` / `clusterRoleBindingDescriber.String` with
    `describeSubject` (a ServiceAccount is "name/namespace", else its name)."""
    where = binding["metadata"].get("namespace", "")
    name = binding["metadata"]["name"] + (f"/{where}" if binding["kind"] == "RoleBinding" else "")
    if subject.get("kind") == "ServiceAccount":
        who = json.dumps(f"{subject['name']}/{subject.get('namespace') or where}")
    else:
        who = json.dumps(subject.get("name", ""))
    ref = binding["roleRef"]
    return f"{binding['kind']} {json.dumps(name)} of {ref['kind']} {json.dumps(ref['name'])} to {subject.get('kind')} {who}"


def merge(target: dict, patch: dict) -> dict:
    """JSON merge patch (RFC 7386), as the API server applies it."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        elif isinstance(value, dict):  # RFC 7386: patched into an empty object (nulls go)
            target[key] = merge({}, value)
        else:
            target[key] = value
    return target


def ready(status: bool, reason: str | None = None) -> dict:
    """A status condition as Seldon's operator writes it."""
    return {"type": "Ready", "status": status, **({"reason": reason} if reason else {})}


class KubernetesApi:
    def __init__(self, root: Path, mlflow_url: str):
        self.root = root
        self.mlflow_url = mlflow_url
        self.calls: list[dict] = []
        self.objects: dict[str, dict] = {}  # path -> object
        self.servers: dict[str, tuple[int, int]] = {}  # deployment path -> (pid, port)
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: dict | bytes, content_type="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self, method: str):
                url = urlparse(self.path)
                body = self._body()
                if url.path.startswith("/seldon/"):
                    return self._ingress(method, url, body)
                payload = json.loads(body) if body else None
                api.calls.append(
                    {"method": method, "path": url.path, "query": url.query, "body": payload}
                )
                status, reply = api.handle(method, url.path, parse_qs(url.query), payload)
                return self._reply(status, reply)

            def _ingress(self, method, url, body):
                parts = url.path.split("/", 4)  # "", seldon, ns, name, rest
                target = f"{SELDON}{parts[2]}/seldondeployments/{parts[3]}"
                server = api.servers.get(target)
                if server is None:
                    return self._reply(503, {"error": "no such deployment behind the ingress"})
                request = urllib.request.Request(
                    f"http://127.0.0.1:{server[1]}/{parts[4]}",
                    data=body if method != "GET" else None,
                    method=method,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                )
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        return self._reply(
                            response.status, response.read(), response.headers["Content-Type"]
                        )
                except HTTPError as error:
                    return self._reply(error.code, error.read(), error.headers["Content-Type"])

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

            def do_PATCH(self):
                self._handle("PATCH")

            def do_DELETE(self):
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    # --- the API server -----------------------------------------------------------------

    def apply(self, *objects: dict) -> None:
        """Seed objects (RBAC, CRDs, Secrets) as `kubectl apply` would create them."""
        with self.lock:
            for obj in objects:
                self.objects[path_of(obj)] = obj

    def handle(self, method: str, path: str, query: dict, body) -> tuple[int, dict]:
        with self.lock:
            if method == "POST" and path == REVIEWS:
                rules = [o for o in self.objects.values() if o.get("kind") in RBAC_KINDS]
                return subject_access_review(rules, body or {})
            if method == "GET" and path in self.objects:
                return 200, self.objects[path]
            if method == "GET" and path.endswith(("/secrets", "/seldondeployments")):
                return 200, {"kind": "List", "items": self._listed(path, query)}
            if method == "GET":
                return 404, {"kind": "Status", "reason": "NotFound", "code": 404}
            if method == "POST":
                created = f"{path}/{body['metadata']['name']}"
                if created in self.objects:
                    return 409, {"kind": "Status", "reason": "AlreadyExists", "code": 409}
                self.objects[created] = body
                if "seldondeployments" in path:
                    self._schedule(created)
                return 201, body
            if path not in self.objects:
                return 404, {"kind": "Status", "reason": "NotFound", "code": 404}
            if method == "PUT":
                self.objects[path] = body
            elif method == "PATCH":
                merge(self.objects[path], body)
            elif method == "DELETE":
                self.objects.pop(path)
                self._stop(path)
                return 200, {"kind": "Status", "status": "Success"}
            return 200, self.objects[path]

    def _listed(self, path: str, query: dict) -> list[dict]:
        wanted = dict(
            pair.split("=", 1)
            for pair in (query.get("labelSelector") or [""])[0].split(",")
            if pair
        )
        items = []
        for key, item in self.objects.items():
            labels = item.get("metadata", {}).get("labels") or {}
            if key.rsplit("/", 1)[0] == path and all(labels.get(k) == v for k, v in wanted.items()):
                items.append(item)
        return items

    def kubeconfig(self) -> Path:
        path = self.root / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: standin, cluster: {{server: '{self.url}'}}}}]\n"
            "users: [{name: standin, user: {token: pod-service-account}}]\n"
            "contexts: [{name: standin, context: {cluster: standin, user: standin}}]\n"
            "current-context: standin\n"
        )
        return path

    # --- what the controllers do ----------------------------------------------------------

    def _schedule(self, path: str) -> None:
        self.objects[path]["status"] = {"state": "Creating", "conditions": [ready(False)]}
        threading.Thread(target=self._serve, args=(path,), daemon=True).start()

    def _serve(self, path: str) -> None:
        """Storage initializer + Seldon's MLflow server, for one SeldonDeployment."""
        import shutil
        from urllib.parse import urlparse

        from integrations.mlflow.registry import PICKLE_ENV
        from integrations.seldon_local import process
        from integrations.seldon_local.environments import runtime_python

        manifest = self.objects[path]
        name = manifest["metadata"]["name"]
        graph = manifest["spec"]["predictors"][0]["graph"]
        folder = self.root / "pods" / name
        folder.mkdir(parents=True, exist_ok=True)
        try:
            uri = graph["modelUri"]
            if urlparse(uri).scheme not in ("", "file"):  # what rclone cannot reach here
                raise RuntimeError(f"storage initializer: cannot copy {uri}")
            model_dir = folder / "mnt-models"
            shutil.copytree(uri.removeprefix("file://"), model_dir, dirs_exist_ok=True)
            protocol = process.get_protocol("seldon")
            port = process.free_port()
            command = protocol.command(
                runtime_python("seldon", echo=lambda *_: None),
                Path(model_dir),
                graph["name"],
                port,
                1,
            )
            log = folder / "model.log"
            pid = process.spawn(command, log, {**PICKLE_ENV, "ZENKUBE_HOST": process.HOST})
            self.servers[path] = (pid, port)
            process.wait_healthy(pid, protocol.url(port, name, protocol.health_path), log, 180)
            state = {
                "state": "Available",
                "address": {"url": f"{self.url}/seldon/{name}"},
                "conditions": [ready(True)],
            }
        except Exception as exc:
            state = {
                "state": "Failed",
                "description": str(exc)[:500],
                "conditions": [ready(False, "ModelFailed")],
            }
        with self.lock:
            if path in self.objects:
                self.objects[path]["status"] = state

    def _stop(self, path: str) -> None:
        from integrations.seldon_local import process

        pid, _port = self.servers.pop(path, (None, None))
        process.stop_group(pid)

    def deployments(self) -> list[dict]:
        return [v for k, v in self.objects.items() if "/seldondeployments/" in k]

    def secrets(self) -> list[dict]:
        return [v for k, v in self.objects.items() if "/secrets/" in k]

    def __enter__(self) -> KubernetesApi:
        self.root.mkdir(parents=True, exist_ok=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        for path in list(self.servers):
            self._stop(path)
        self.server.shutdown()
