"""`run.py deploy --dry-run` prints what `deploy` would apply on a cluster stack: YAML the
vendored CRDs accept, with valid names that differ between `House_Prices` and
`house-prices`; no cluster, no ZenML server, no store created."""

from __future__ import annotations

import base64

import yaml

from integrations.k8s import names as k8s_names
from integrations.mlflow.registry import RegisteredModel
from tests.conftest import cli_in
from tests.kubeflow.conftest import SELDON_CRD, crd_problems, kserve_crds
from tests.kubeflow.test_seldon_manifest import seldon_stack  # noqa: F401

URI = "s3://zenkube-artifacts/mlflow/1/models/m-abc/artifacts"


def dry_run(cli, stack: str, name: str, uri: str = URI):
    result = cli("deploy", "--dry-run", "--stack", stack, "--model-name", name, "--model-uri", uri,
                 extra_env={"ZENKUBE_TRAFFIC_SINK": "http://zenkube-traffic-sink.zenkube"})  # fmt: skip
    return result, [d for d in yaml.safe_load_all(result.stdout) if d]


def test_dry_run_prints_manifests_the_crds_accept_with_distinct_names(tmp_path):
    cli = cli_in(tmp_path)
    names = {}
    for stack, kind in (("kubeflow", "SeldonDeployment"), ("kubeflow-kserve", "InferenceService")):
        for model in ("House_Prices", "house-prices"):
            result, documents = dry_run(cli, stack, model)
            assert result.returncode == 0, result.stdout + result.stderr
            # Seldon: the storage Secret deploy writes, then the SeldonDeployment
            *secret, body = documents
            assert [d["kind"] for d in secret] == (["Secret"] if kind == "SeldonDeployment" else [])
            assert body["kind"] == kind
            crds = [SELDON_CRD] if kind == "SeldonDeployment" else [f for _, f in kserve_crds(kind)]
            for crd in crds:
                assert crd_problems(body, crd) == []
            if kind == "SeldonDeployment":
                name = body["spec"]["predictors"][0]["name"]  # the Service / Istio subset
                assert body["spec"]["predictors"][0]["graph"]["modelUri"] == URI
                logged = body["spec"]["predictors"][0]["graph"]["logger"]["url"]
                folder, query = logged.split("?")
                assert folder.endswith(model) and query.startswith("role=champion&version=1")
            else:
                name = body["metadata"]["name"]
                assert body["spec"]["predictor"]["model"]["storageUri"] == URI
            assert not k8s_names.problems(name)
            names[(stack, model)] = name
    assert names[("kubeflow", "House_Prices")] != names[("kubeflow", "house-prices")]
    assert names[("kubeflow-kserve", "House_Prices")] != names[("kubeflow-kserve", "house-prices")]
    assert not list(cli.home.rglob("*.db"))  # no ZenML store was created, no server asked


def test_dry_run_refuses_an_mlflow_artifacts_uri_in_one_sentence(tmp_path):
    result, _ = dry_run(cli_in(tmp_path), "kubeflow-kserve", "m", "mlflow-artifacts:/1/m/artifacts")
    assert result.returncode != 0
    assert "cannot be read by KServe's storage initializer" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_without_a_model_uri_an_unreachable_mlflow_server_says_how_to_go_offline(tmp_path):
    cli = cli_in(tmp_path)
    result = cli("deploy", "--dry-run", "--stack", "kubeflow", "--model-name", "m",
                 extra_env={"ZENKUBE_MLFLOW_URI": "http://127.0.0.1:9"})  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in out
    assert "MLflow server at http://127.0.0.1:9" in out and "--model-uri" in out


def test_the_seldon_dry_run_is_what_deploy_applies(seldon_stack, kubernetes_api):  # noqa: F811
    """The Secret and the SeldonDeployment the dry run prints equal the bodies deploy sends
    the API (captured by the stand-in), but for the ids deploy makes (service, artifact
    store) and the credentials' values."""
    from app.dry_run import REDACTED, seldon_manifests
    from steps.deployment.deploy import serve_champion
    from tests.kubeflow.test_seldon_manifest import ACCESS_KEY, SECRET_KEY, SELDON

    model = RegisteredModel(name="House_Prices", version="3", model_uri="models:/m-abc",
                            artifact_location=URI)  # fmt: skip
    serve_champion(model, "seldon", "deployment_pipeline", "deploy_champion", timeout=0)
    (secret,) = [
        c["body"] for c in kubernetes_api if c["method"] == "POST" and "/secrets" in c["path"]
    ]
    (sdep,) = [
        c for c in kubernetes_api if c["method"] == "POST" and "seldondeployments" in c["path"]
    ]
    namespace = sdep["path"].split("/namespaces/")[1].split("/")[0]  # the path carries it
    sdep = sdep["body"]
    store = {"configuration": {"path": "s3://zenkube-artifacts/zenml",
                               "key": "{{s3-creds.aws_access_key_id}}",
                               "secret": "{{s3-creds.aws_secret_access_key}}"}}  # fmt: skip
    printed_secret, printed_sdep = seldon_manifests(model, SELDON, "seldon", store)

    # the ids deploy makes, and what the Secret's values are, as the dry run shows them
    ids = {
        secret["metadata"]["name"]: printed_secret["metadata"]["name"],
        sdep["metadata"]["name"]: printed_sdep["metadata"]["name"],  # zenml-<service id>
    }
    ids[sdep["metadata"]["name"].removeprefix("zenml-")] = printed_sdep["metadata"]["name"][6:]
    import json

    text = json.dumps({"secret": secret, "sdep": sdep})
    for deployed, printed in ids.items():
        text = text.replace(deployed, printed)
    deployed = json.loads(text)
    credentials = {base64.b64encode(v.encode()).decode() for v in (ACCESS_KEY, SECRET_KEY)}
    deployed["secret"]["data"] = {
        k: REDACTED if v in credentials else v for k, v in deployed["secret"]["data"].items()
    }
    deployed["secret"] = {"apiVersion": "v1", "kind": "Secret", **deployed["secret"]}
    deployed["secret"]["metadata"]["namespace"] = namespace
    deployed["sdep"]["metadata"]["namespace"] = namespace
    assert printed_secret == deployed["secret"]
    graph = printed_sdep["spec"]["predictors"][0]["graph"]
    assert graph["envSecretRefName"] == printed_secret["metadata"]["name"]
    assert differences(printed_sdep, deployed["sdep"]) == []


def test_the_seldon_dry_run_prints_the_secret_before_the_deployment(tmp_path):
    result, documents = dry_run(cli_in(tmp_path), "kubeflow", "House_Prices")
    assert result.returncode == 0, result.stdout + result.stderr
    secret, sdep = documents
    assert (secret["kind"], sdep["kind"]) == ("Secret", "SeldonDeployment")
    assert sdep["spec"]["predictors"][0]["graph"]["envSecretRefName"] == secret["metadata"]["name"]
    assert not k8s_names.problems(secret["metadata"]["name"][:63])
    # stacks/kubeflow.yaml gives the store no keys: the cluster's own identity
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert values == {"RCLONE_CONFIG_S3_TYPE": "s3", "RCLONE_CONFIG_S3_PROVIDER": "aws",
                      "RCLONE_CONFIG_S3_ENV_AUTH": "True"}  # fmt: skip


def differences(a, b, path: str = "") -> list[str]:
    """Where two JSON values differ (paths), for a readable failure."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k),
                f"{path}.{k}")]  # fmt: skip
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
