"""Shared by the cluster tests: a kubeconfig that points nowhere, and a stand-in for the
Kubernetes API server (the one part that cannot run here)."""

from __future__ import annotations

import copy
import functools
import gzip
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from kubernetes.client import ApiClient
from kubernetes.client.rest import ApiException
from kubernetes.config import kube_config

from integrations.k8s import names as k8s_names
from tests.kubernetes_api import merge

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: zenkube, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: zenkube, user: {token: "not-used"}}]
contexts: [{name: zenkube-test, context: {cluster: zenkube, user: zenkube}}]
current-context: zenkube-test
"""


def cluster_stack(name: str, flavor: str, config: dict, key: str, secret: str):
    """Activate stack `name`: the local stack with an S3 bucket (its keys in a ZenML
    secret) and a cluster model deployer (`flavor`, `config`). Returns the bucket."""
    from zenml.client import Client
    from zenml.enums import StackComponentType as T

    client = Client()
    client.create_secret(
        "s3-creds", values={"aws_access_key_id": key, "aws_secret_access_key": secret}
    )
    store = client.create_stack_component(
        "bucket",
        "s3",
        T.ARTIFACT_STORE,
        {
            "path": "s3://zenkube-artifacts/zenml",
            "key": "{{s3-creds.aws_access_key_id}}",
            "secret": "{{s3-creds.aws_secret_access_key}}",
        },
    )
    deployer = client.create_stack_component(f"{name}-deployer", flavor, T.MODEL_DEPLOYER, config)
    local = client.get_stack("zenkube-local")
    components = {t: [c[0].id] for t, c in local.components.items()}
    components[T.ARTIFACT_STORE] = [store.id]
    components[T.MODEL_DEPLOYER] = [deployer.id]
    client.create_stack(name, components=components)
    client.activate_stack(name)
    return store


def use_test_kubeconfig(tmp_path, monkeypatch) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # kubernetes reads KUBECONFIG when it is imported; point its default at our file.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))


@pytest.fixture
def kubernetes_api(monkeypatch):
    """Stand in for the Kubernetes API server: record calls, keep created objects.

    Returns the list of calls; `.objects` holds what was created (path → body)."""
    calls, objects = Calls(), {}
    calls.objects = objects
    calls.prune_with = None  # a vendored CRD file: drop what its schema does not know

    def call_api(
        self,
        resource_path,
        method,
        path_params=None,
        query_params=None,
        header_params=None,
        body=None,
        *args,
        **kwargs,
    ):
        path = resource_path
        for key, value in (path_params or {}).items():
            path = path.replace("{" + key + "}", str(value))
        body = self.sanitize_for_serialization(body)
        calls.append({"method": method, "path": path, "body": body})
        if method == "GET":
            if path in objects:
                return objects[path]
            raise ApiException(status=404, reason="Not Found")
        if method == "POST":
            objects[f"{path}/{body['metadata']['name']}"] = body
            if calls.prune_with:
                prune(body, crd_schema(calls.prune_with))
        elif method == "PUT":
            objects[path] = body
            if calls.prune_with:  # every write is pruned, create, replace and patch alike
                prune(body, crd_schema(calls.prune_with))
        elif method == "PATCH":  # the client sends application/merge-patch+json (RFC 7386)
            if path not in objects:
                raise ApiException(status=404, reason="Not Found")
            objects[path] = merge(copy.deepcopy(objects[path]), body)
            if calls.prune_with:  # the API server prunes what the CRD's schema lacks
                prune(objects[path], crd_schema(calls.prune_with))
            return objects[path]
        elif method == "DELETE":
            objects.pop(path, None)
        return body

    monkeypatch.setattr(ApiClient, "call_api", call_api)
    return calls


class Calls(list):
    objects: dict


# -- the serving operators' full CRDs (tests/kubeflow/data/crds/SOURCES.md) ----------------
CRDS = Path(__file__).parent / "data" / "crds"
SELDON_CRD = "seldon-core-v1.18.2_seldondeployments.yaml.gz"
KSERVE_RELEASES = ("v0.20.0", "v0.15.0")  # the one docs/kubeflow.md installs; the oldest
OBJECT_META = {"name", "namespace", "labels", "annotations", "generateName", "finalizers"}
OBJECT_META |= {"ownerReferences", "uid", "resourceVersion", "generation", "creationTimestamp"}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def crd_text(file: str) -> str:
    return gzip.decompress((CRDS / file).read_bytes()).decode()


@functools.cache
def load_crd(file: str) -> dict:
    """A vendored CRD; Seldon's is a Helm template, whose `{{ }}` lines and values are
    dropped the way `helm template` leaves a plain CRD (they only touch metadata)."""
    text = crd_text(file)
    if "{{" in text:
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("{{")]
        text = re.sub(r"'\{\{[^}]*\}\}'", "'helm'", "\n".join(lines))
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def kserve_crds(kind: str) -> list[tuple[str, str]]:
    """(release, file) of KServe's CRD of `kind` for every supported release."""
    plural = {"InferenceService": "inferenceservices"}.get(kind, "clusterservingruntimes")
    return [(r, f"kserve-{r}_{plural}.yaml.gz") for r in KSERVE_RELEASES]


def pruned_fields(value, schema: dict, path: str = "") -> list[str]:
    """Fields a structural schema does not know: the API server drops them silently."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, dict):
        properties, extra = schema.get("properties"), schema.get("additionalProperties")
        for key, item in value.items():
            if properties and key in properties:
                found += pruned_fields(item, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += pruned_fields(item, extra, f"{path}.{key}")
            elif extra is True:
                continue
            else:
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += pruned_fields(item, schema["items"], f"{path}[{i}]")
    return found


def crd_schema(file: str) -> dict:
    """The openAPIV3Schema of the CRD's first served version."""
    crd = load_crd(file)
    served = [v for v in crd["spec"]["versions"] if v.get("served", True)]
    return served[0]["schema"]["openAPIV3Schema"]


def prune(value, schema: dict) -> None:
    """Drop in place the fields `pruned_fields` finds, as the API server does on every
    write to a custom resource (kubernetes/apiextensions-apiserver
    pkg/apiserver/schema/pruning/algorithm.go, `Prune`: unknown fields go unless the
    schema says x-kubernetes-preserve-unknown-fields; ObjectMeta has rules of its own)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        properties, extra = schema.get("properties"), schema.get("additionalProperties")
        for key in list(value):
            if key == "metadata" and not (properties or {}).get(key, {}).get("properties"):
                continue  # ObjectMeta: the API server's own rules (metadata_problems)
            if properties and key in properties:
                prune(value[key], properties[key])
            elif isinstance(extra, dict):
                prune(value[key], extra)
            elif extra is not True:
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            prune(item, schema["items"])


def metadata_problems(metadata: dict) -> list[str]:
    """What the API server's ObjectMeta validation refuses (names, labels)."""
    found = [f"metadata.{k} is not an ObjectMeta field" for k in metadata if k not in OBJECT_META]
    name = metadata.get("name", "")
    if not (name and len(name) <= 253 and DNS_SUBDOMAIN.match(name)):
        found.append(f"metadata.name '{name}' is not a DNS-1123 subdomain")
    for key, value in (metadata.get("labels") or {}).items():
        if not LABEL_KEY_NAME.match(key.rsplit("/", 1)[-1]) or len(key.rsplit("/", 1)[-1]) > 63:
            found.append(f"label key '{key}' is invalid")
        if not isinstance(value, str) or k8s_names.problems_label(value):
            found.append(f"label {key}='{value}' is not a valid label value")
    for key, value in (metadata.get("annotations") or {}).items():
        if not isinstance(value, str):
            found.append(f"annotation {key} is not a string")
    return found


def crd_problems(body: dict, file: str) -> list[str]:
    """Everything the API server would refuse or silently drop in `body`, against the CRD
    in `file`: its version's openAPIV3Schema (types, enums, required, patterns), pruned
    unknown fields, and ObjectMeta rules."""
    crd = load_crd(file)
    group, _, version = body.get("apiVersion", "").partition("/")
    if group != crd["spec"]["group"] or body.get("kind") != crd["spec"]["names"]["kind"]:
        return [f"{body.get('apiVersion')} {body.get('kind')} is not what {file} defines"]
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served", True)}
    if version not in served:
        return [f"{file} serves no version {version} (only {sorted(served)})"]
    schema = served[version]["schema"]["openAPIV3Schema"]
    validator = jsonschema.Draft7Validator(schema)
    found = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]
    spec_schema = {k: v for k, v in schema.items() if k != "properties"}
    spec_schema["properties"] = {k: v for k, v in schema["properties"].items() if k != "metadata"}
    found += [f"{p} would be pruned" for p in pruned_fields(body, spec_schema) if p != ".metadata"]
    return found + metadata_problems(body.get("metadata") or {})
