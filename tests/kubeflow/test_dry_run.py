"""`run.py deploy --dry-run` prints what `deploy` would apply on a cluster stack: YAML the
vendored CRDs accept, with valid names that differ between `House_Prices` and
`house-prices`; no cluster, no ZenML server, no store created."""

from __future__ import annotations

import yaml

from integrations import k8s_names
from tests.conftest import cli_in
from tests.kubeflow.conftest import SELDON_CRD, crd_problems, kserve_crds

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
            result, (body,) = dry_run(cli, stack, model)
            assert result.returncode == 0, result.stdout + result.stderr
            assert body["kind"] == kind
            crds = [SELDON_CRD] if kind == "SeldonDeployment" else [f for _, f in kserve_crds(kind)]
            for crd in crds:
                assert crd_problems(body, crd) == []
            if kind == "SeldonDeployment":
                name = body["spec"]["predictors"][0]["name"]  # the Service / Istio subset
                assert body["spec"]["predictors"][0]["graph"]["modelUri"] == URI
                assert body["spec"]["predictors"][0]["graph"]["logger"]["url"].endswith(model)
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
    assert "from MLflow at http://127.0.0.1:9" in out and "--model-uri" in out
