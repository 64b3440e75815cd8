"""On a stack with zenkube's `zenkube_kserve` deployer, the same deployment step yields an
InferenceService that KServe's own full CRDs accept, field by field (v0.20.0 and the
oldest supported, v0.15.0), with nothing the API server would prune.

Only the Kubernetes API server is stood in (`kubernetes.client.ApiClient.call_api`); the
CRDs are KServe's files, unchanged (tests/kubeflow/data/crds/SOURCES.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from zenml.client import Client

from integrations.k8s import names as k8s_names
from integrations.kserve import manifest
from integrations.kserve.flavor import FLAVOR_NAME
from integrations.kserve.manifest import RUNTIME_CLASS, prediction_path, service_name
from integrations.mlflow.registry import RegisteredModel
from stacks.manage import ensure_flavors
from steps.deployment.deploy import serve_champion
from tests.kubeflow.conftest import cluster_stack, crd_problems, kserve_crds, use_test_kubeconfig

ACCESS_KEY = "AKIAZENKUBEKSERVE001"
SECRET_KEY = "zenkube/kserve+secret/0123456789abcdef"
ISVC_PATH = "/apis/serving.kserve.io/v1beta1/namespaces/zenkube/inferenceservices"
HOUSE = service_name("House Prices", "zenkube")


def assert_kserve_accepts(body: dict) -> None:
    for release, crd in kserve_crds(body["kind"]):
        assert crd_problems(body, crd) == [], f"KServe {release} refuses or prunes it"


@pytest.fixture
def kserve_stack(zenml_store, tmp_path, monkeypatch):
    use_test_kubeconfig(tmp_path, monkeypatch)
    ensure_flavors()
    config = {
        "kubernetes_context": "zenkube-test",
        "kubernetes_namespace": "zenkube",
        "base_url": "http://kserve.example.com",
        "service_account": "zenkube-storage",
        # a KServe whose Gateway API HTTPRoutes route a Standard canary (#5912); the
        # Ingress refusal is test_cluster_release's
        "canary_routing": "gateway-api",
    }
    cluster_stack("kserve-cluster", FLAVOR_NAME, config, ACCESS_KEY, SECRET_KEY)


def champion(version: str) -> RegisteredModel:
    return RegisteredModel(
        name="House Prices",
        version=version,
        model_uri=f"models:/m-{version}",
        artifact_location=f"s3://zenkube-artifacts/mlflow/1/models/m-{version}/artifacts",
    )


def test_the_deployment_step_builds_an_inference_service_kserves_schema_accepts(
    kserve_stack, kubernetes_api
):
    info = serve_champion(champion("3"), "v2", "deployment_pipeline", "deploy_champion", 0)
    posted = [c for c in kubernetes_api if c["method"] == "POST"]
    (created,) = [c for c in posted if c["path"] == ISVC_PATH]
    body = created["body"]
    assert_kserve_accepts(body)  # types, enums, required, patterns, pruned fields, names
    assert body["apiVersion"] == "serving.kserve.io/v1beta1"
    assert body["kind"] == "InferenceService"
    name = body["metadata"]["name"]
    assert name == service_name("House Prices", "zenkube")
    assert name.startswith("zenkube-house-prices-") and not k8s_names.problems(name, "1035")
    predictor = body["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "mlflow"}
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"] == champion("3").artifact_location
    assert model["runtime"] == "zenkube-mlserver"
    assert model["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert predictor["serviceAccountName"] == "zenkube-storage"
    text = json.dumps(body)
    assert ACCESS_KEY not in text and SECRET_KEY not in text  # credentials stay in the SA
    assert info.protocol == "v2"
    assert info.prediction_url == "http://kserve.example.com" + prediction_path(name)
    assert info.prediction_url.endswith(f"/v2/models/{name}/infer")
    env = {e["name"]: e["value"] for e in model["env"]}  # MLServer serves it as `name`
    assert env == {"MLSERVER_MODEL_NAME": name, "MLSERVER_MODEL_URI": "/mnt/models"}


def test_a_new_version_replaces_the_spec_and_one_record_remains(kserve_stack, kubernetes_api):
    serve_champion(champion("3"), "v2", "deployment_pipeline", "deploy_champion", 0)
    serve_champion(champion("4"), "v2", "deployment_pipeline", "deploy_champion", 0)
    patched = [c for c in kubernetes_api if c["method"] == "PATCH"]
    assert patched and patched[-1]["path"] == f"{ISVC_PATH}/{HOUSE}"
    body = kubernetes_api.objects[f"{ISVC_PATH}/{HOUSE}"]
    assert body["spec"]["predictor"]["model"]["storageUri"] == champion("4").artifact_location
    assert_kserve_accepts(body)
    deployer = Client().active_stack.model_deployer
    (record,) = deployer.services_for("House Prices")
    assert record.config.model_version == "4"


def test_a_revision_that_never_gets_ready_puts_the_served_version_back(
    kserve_stack, kubernetes_api, monkeypatch
):
    from integrations.kserve import model_deployer

    serve_champion(champion("3"), "v2", "deployment_pipeline", "deploy_champion", 0)
    path = f"{ISVC_PATH}/{HOUSE}"
    kubernetes_api.objects[path]["status"] = {
        "conditions": [
            {"type": "Ready", "status": "False", "message": "storage initializer failed"}
        ]
    }
    monkeypatch.setattr(model_deployer.time, "sleep", lambda _: None)
    with pytest.raises(model_deployer.KServeDeployError, match="storage initializer failed"):
        serve_champion(champion("4"), "v2", "deployment_pipeline", "deploy_champion", 1)
    body = kubernetes_api.objects[path]
    assert body["spec"]["predictor"]["model"]["storageUri"] == champion("3").artifact_location
    (record,) = Client().active_stack.model_deployer.services_for("House Prices")
    assert record.config.model_version == "3"


def test_a_ctrl_c_while_the_new_revision_rolls_out_puts_the_served_version_back(
    kserve_stack, kubernetes_api, monkeypatch
):
    """Moment: waiting for the new revision to be Ready (the Ctrl-C is raised where the
    wait sleeps, as Python raises a SIGINT there)."""
    from integrations.kserve import model_deployer

    serve_champion(champion("3"), "v2", "deployment_pipeline", "deploy_champion", 0)
    path = f"{ISVC_PATH}/{HOUSE}"
    kubernetes_api.objects[path]["status"] = {"conditions": [{"type": "Ready", "status": "False"}]}

    def ctrl_c(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(model_deployer.time, "sleep", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        serve_champion(champion("4"), "v2", "deployment_pipeline", "deploy_champion", 60)
    body = kubernetes_api.objects[path]
    assert body["spec"]["predictor"]["model"]["storageUri"] == champion("3").artifact_location
    (record,) = Client().active_stack.model_deployer.services_for("House Prices")
    assert record.config.model_version == "3"


def test_the_shipped_serving_runtime_runs_the_local_v2_runtime_class():
    """The cluster's runtime and the laptop's `v2` server load the same request checks."""
    import yaml

    text = Path("stacks/kserve/zenkube-mlserver-runtime.yaml").read_text()
    runtime = yaml.safe_load(text.replace("${ZENKUBE_REGISTRY}", "registry.example.com/zenkube"))
    assert_kserve_accepts(runtime)  # as `envsubst | kubectl apply` sends it
    assert runtime["kind"] == "ClusterServingRuntime"
    assert runtime["metadata"]["name"] == "zenkube-mlserver"
    spec = runtime["spec"]
    assert {"name": "mlflow", "version": "2", "autoSelect": False} in spec[
        "supportedModelFormats"
    ] or any(f["name"] == "mlflow" for f in spec["supportedModelFormats"])
    assert spec["protocolVersions"] == ["v2"]
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLSERVER_MODEL_IMPLEMENTATION"] == RUNTIME_CLASS
    assert env["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "true"
    local = Path("integrations/seldon_local/runtime/launch_mlserver.py").read_text()
    assert RUNTIME_CLASS in local  # the local `v2` server loads the same class


def test_the_kserve_stack_registers_idempotently_and_compiles_yaml_kfp_accepts(
    zenml_store, tmp_path
):
    from app.compile import compile_for_kubeflow
    from integrations.kubeflow.validate import check_pipeline_file
    from stacks.manage import stack_up

    Client().create_secret("zenkube-mlflow", values={"username": "u", "password": "p"})
    first = stack_up("kubeflow-kserve")
    assert first.changed and Client().active_stack_model.name == "zenkube-kubeflow-kserve"
    deployer = Client().active_stack.model_deployer
    assert deployer.flavor == FLAVOR_NAME and deployer.config.runtime == "zenkube-mlserver"
    assert not stack_up("kubeflow-kserve").changed  # the same spec again: no change
    Client().activate_stack("zenkube-local")
    written = compile_for_kubeflow(
        tmp_path / "out",
        "kubeflow-kserve",
        lambda *_: None,
        None,
        None,
        ["deployment"],
        require_server=False,
    )
    summary = check_pipeline_file(written["deployment"])  # KFP's own checks
    assert "deploy-champion" in summary.display_names


def test_status_reads_readiness_and_the_host_and_stop_deletes_it(kserve_stack, kubernetes_api):
    serve_champion(champion("3"), "v2", "deployment_pipeline", "deploy_champion", 0)
    path = f"{ISVC_PATH}/{HOUSE}"
    deployer = Client().active_stack.model_deployer
    (service,) = deployer.services_for("House Prices")
    service.update_status()
    assert not service.is_running and "has not reported" in service.status.last_error
    kubernetes_api.objects[path]["status"] = {
        "url": f"http://{manifest.host(HOUSE, 'zenkube')}",
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    service.update_status()
    assert service.is_running
    info = deployer.get_model_server_info(service)
    assert info["HOST_HEADER"] == f"{HOUSE}-zenkube.example.com"
    assert info["INFERENCE_SERVICE"] == f"zenkube/{HOUSE}"
    deployer.stop_model_server(service.uuid, timeout=0)
    assert path not in kubernetes_api.objects  # `serve stop` deletes the InferenceService


NAMES = ["House_Prices", "house-prices", "house.prices", "House Prices", "churn_v2", "my.model"]
NAMES += ["m" * 62, "Ünïcode model", "---", "9lives"]


def spec(model_name: str, **fields) -> manifest.InferenceServiceSpec:
    """Version 1 of `model_name`, files in s3://b/m, service account `sa`."""
    return manifest.InferenceServiceSpec(
        model_name=model_name,
        model_version="1",
        model_uri="s3://b/m",
        service_account="sa",
        **fields,
    )


@pytest.mark.parametrize("namespace", ["zenkube", "a-much-longer-namespace-name"])
def test_every_model_name_yields_a_distinct_inference_service_kserve_accepts(namespace):
    bodies = [
        manifest.inference_service(spec(n, namespace=namespace, logger_url="http://sink"))
        for n in NAMES
    ]
    names = [b["metadata"]["name"] for b in bodies]
    assert len(set(names)) == len(NAMES)  # no two models share (and PATCH) one object
    assert names[1] == "zenkube-house-prices"  # a name that is already valid stays readable
    for body in bodies:
        name = body["metadata"]["name"]
        assert not k8s_names.problems(name, "1035")
        # KServe's predictor host label `<name>-predictor-<namespace>` fits a DNS label
        assert len(f"{name}-predictor-{namespace}") <= 63
        assert_kserve_accepts(body)


def test_labels_never_end_in_punctuation_and_the_logger_posts_to_the_model_folder():
    from core.traffic.rows import model_folder

    long = "x" * 62 + "_y"  # cut at 63 would end in `_`
    body = manifest.inference_service(spec(long, logger_url="http://s/"))
    label = body["metadata"]["labels"]["zenkube.model-name"]
    assert len(label) <= 63 and label[-1].isalnum() and not k8s_names.problems_label(label)
    logger = body["spec"]["predictor"]["logger"]
    assert logger["metadataHeaders"] == ["X-Zenkube-Probe"]  # the sink skips deploy's smoke
    url, query = logger["url"].split("?")
    assert query == "role=champion&version=1"  # the sink's rows say who answered
    # the sink writes `<root>/<last path segment>`: the folder `--from-traffic` reads
    assert model_folder("root", url.rsplit("/", 1)[1]) == model_folder("root", long)


def test_vendored_crds_are_the_upstream_files():
    """Each CRD is the file at the commit SOURCES.md names (its sha256), unchanged."""
    import hashlib
    import re

    from tests.kubeflow.conftest import CRDS, crd_text

    sources = (CRDS / "SOURCES.md").read_text()
    rows = re.findall(
        r"^\| (\S+\.yaml\.gz) \|.*, ([0-9a-f]{40}) \| ([0-9a-f]{64}) \|$", sources, re.M
    )
    assert {r[0] for r in rows} == {p.name for p in CRDS.glob("*.yaml.gz")}
    for file, _commit, digest in rows:
        assert hashlib.sha256(crd_text(file).encode()).hexdigest() == digest, file


def test_the_names_and_host_in_the_docs_are_the_ones_the_code_gives():
    from integrations.kubeflow import seldon_manifest
    from tests.conftest import REPO_ROOT

    docs = (REPO_ROOT / "docs/kubeflow.md").read_text()
    name = service_name("House_Prices", "zenkube")
    assert f"/v2/models/{name}/infer" in docs
    assert f"-H 'Host: {manifest.host(name, 'zenkube')}'" in docs  # v0.20's domain template
    for model in ("House_Prices", "my.model"):
        assert f"`{seldon_manifest.predictor_name(model)}`" in docs
