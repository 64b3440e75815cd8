"""What KFP's pods may do in the serving namespace: the shipped RBAC manifests, read as data.

`integrations/kubeflow/manifests/rbac-<backend>.yaml` hold a Role and a RoleBinding for
KFP's `pipeline-runner` service account, one file per serving backend. This module reads
them (which verbs the Role grants, for tests/kubeflow/test_rbac.py), names the request attributes
of an HTTP call to the Kubernetes API, and decides whether rules allow them, as the API
server does:

- request attributes: k8s.io/apiserver `pkg/endpoints/request/requestinfo.go`,
  `RequestInfoFactory.NewRequestInfo` (GET of a named object is `get`, of a collection
  `list`, or `watch` with `?watch=true`; POST `create`; PUT `update`; PATCH `patch`;
  DELETE `delete`, of a collection `deletecollection`; `/api/v1` is the core group "");
- rule matching: kubernetes `plugin/pkg/auth/authorizer/rbac/rbac.go`, `RuleAllows`, with
  `pkg/apis/rbac/v1/evaluation_helpers.go` (`VerbMatches`, `APIGroupMatches`,
  `ResourceMatches`: `*`, the exact `resource/subresource`, or `*/subresource`;
  `ResourceNameMatches`: an empty list matches every name);
- who a binding applies to: `rbac.go` `appliesToUser` (a ServiceAccount subject is the
  user `system:serviceaccount:<namespace>:<name>`); a RoleBinding grants only in its own
  namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import yaml

MANIFESTS = Path(__file__).resolve().parent / "manifests"
BACKENDS = {"zenkube_seldon": "seldon", "zenkube_kserve": "kserve"}  # deployer flavor → file


@dataclass(frozen=True)
class Request:
    """The attributes an authorizer judges (k8s.io/apiserver authorizer.AttributesRecord)."""

    verb: str
    group: str
    resource: str
    namespace: str = ""
    name: str = ""
    subresource: str = ""

    def short(self) -> str:
        resource = self.resource + (f"/{self.subresource}" if self.subresource else "")
        group = f".{self.group}" if self.group else ""
        return f"{self.verb} {resource}{group}"


def manifest_path(backend: str) -> Path:
    return MANIFESTS / f"rbac-{backend}.yaml"


def documents(backend: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(manifest_path(backend).read_text()) if d]


def role(backend: str) -> dict:
    (found,) = [d for d in documents(backend) if d["kind"] == "Role"]
    return found


def binding(backend: str) -> dict:
    (found,) = [d for d in documents(backend) if d["kind"] == "RoleBinding"]
    return found


def service_account(backend: str) -> tuple[str, str]:
    """(namespace, name) of the service account the shipped RoleBinding grants to."""
    (subject,) = binding(backend)["subjects"]
    return subject["namespace"], subject["name"]


def granted(backend: str, namespace: str) -> list[Request]:
    """Every (verb, group, resource) the shipped Role grants, in `namespace`."""
    return [
        Request(verb, group, resource, namespace)
        for rule in role(backend)["rules"]
        for group in rule.get("apiGroups") or [""]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    ]


def request_of(method: str, path: str, query: str | dict = "") -> Request:
    """The attributes of an HTTP call to the API (requestinfo.go, `NewRequestInfo`)."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"]:
        group, rest = parts[1], parts[3:]
    else:
        raise ValueError(f"{path} is not a resource path")
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    params = parse_qs(query) if isinstance(query, str) else query
    verb = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update"}.get(method)
    verb = verb or {"PATCH": "patch", "DELETE": "delete"}[method]
    if not name and verb == "get":
        watch = (params.get("watch") or ["false"])[0] in ("true", "1")
        verb = "watch" if watch else "list"
    elif not name and verb == "delete":
        verb = "deletecollection"
    return Request(verb, group, resource, namespace, name, subresource)


def rule_allows(rule: dict, request: Request) -> bool:
    """rbac.go `RuleAllows` for a resource request."""
    combined = request.resource + (f"/{request.subresource}" if request.subresource else "")
    verbs, groups = rule.get("verbs") or [], rule.get("apiGroups") or []
    resources, names = rule.get("resources") or [], rule.get("resourceNames") or []
    resource_ok = any(
        r in ("*", combined) or (request.subresource and r == f"*/{request.subresource}")
        for r in resources
    )
    return (
        ("*" in verbs or request.verb in verbs)
        and ("*" in groups or request.group in groups)
        and resource_ok
        and (not names or request.name in names)
    )


def user_of(namespace: str, name: str) -> str:
    """The user a service account authenticates as (serviceaccount.MakeUsername)."""
    return f"system:serviceaccount:{namespace}:{name}"


def applies_to(subject: dict, user: str, groups: list[str], binding_namespace: str) -> bool:
    """rbac.go `appliesToUser`: User, Group or ServiceAccount subjects."""
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user
    if kind == "Group":
        return subject.get("name") in groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user == user_of(namespace, subject.get("name", ""))
    return False


def authorize(objects: list[dict], user: str, groups: list[str], request: Request) -> bool:
    """Whether RBAC objects (Roles, ClusterRoles and their bindings) allow `request` to
    `user`: a RoleBinding in the request's namespace or any ClusterRoleBinding whose
    subjects include the user and whose role has a rule that allows it."""
    roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
             for o in objects if o["kind"] in ("Role", "ClusterRole")}  # fmt: skip
    for bound in objects:
        if bound["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        where = bound["metadata"].get("namespace", "")
        if bound["kind"] == "RoleBinding" and where != request.namespace:
            continue
        if not any(applies_to(s, user, groups, where) for s in bound.get("subjects") or []):
            continue
        ref = bound["roleRef"]
        key = (ref["kind"], where if ref["kind"] == "Role" else "", ref["name"])
        if any(rule_allows(rule, request) for rule in (roles.get(key) or {}).get("rules", [])):
            return True
    return False
