"""Compiled KFP YAML passes KFP's own checks and has the ZenML pipeline's graph.

The YAML's shape does not depend on the store, so this module compiles on its own SQL
store (`require_server=False`: what `run.py compile` refuses, tested below) and needs no
ZenML server; tests/kubeflow/test_submit_path.py compiles through the CLI against a real
server and runs the result as KFP would.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml
from zenml.client import Client

from app.compile import compile_for_kubeflow
from integrations.kubeflow.flavors import STORAGE_SECRET
from integrations.kubeflow.secrets import credentials_in, strip_credentials
from integrations.kubeflow.validate import (
    check_pipeline_file,
    load_documents,
    parse_strict,
    round_trip_identical,
    task_graph,
)
from tests.kfp_replay import TaskFailed, platform_config, pod_env
from tests.kubeflow.s3_recorder import S3Recorder

PIPELINE_NAMES = {
    "training": "training_pipeline",
    "deployment": "deployment_pipeline",
    "monitoring": "monitoring_pipeline",
    "continuous_training": "continuous_training_pipeline",
    "batch_inference": "batch_inference_pipeline",
    "release_check": "release_check_pipeline",
}


@pytest.fixture(scope="module")
def s3():
    with S3Recorder() as recorder:
        yield recorder


def store_contents() -> dict[str, int]:
    """What compiling must not add to a store: runs and model versions (and how many
    snapshots it holds, which compiling must add: one per pipeline)."""
    client = Client()
    return {
        "runs": client.list_pipeline_runs(size=1).total,
        "model_versions": client.list_model_versions(size=1).total,
        "snapshots": client.list_snapshots(size=1, named_only=False).total,
    }


@pytest.fixture(scope="module")
def compile_output(module_store, s3, tmp_path_factory):
    out, said = tmp_path_factory.mktemp("compiled"), []
    before = store_contents()
    with pytest.MonkeyPatch.context() as mp:  # an S3-compatible bucket (MinIO's case)
        mp.setenv("ZENKUBE_S3_ENDPOINT_URL", s3.url)
        written = compile_for_kubeflow(out, echo=said.append, require_server=False)
    return written, said, before, store_contents()


@pytest.fixture(scope="module")
def compiled(compile_output):
    return compile_output[0]


def snapshot_of(path) -> str:
    """The snapshot id every task of a compiled file loads (`--snapshot_id`)."""
    found = set()
    for executor in load_documents(path)[0]["deploymentSpec"]["executors"].values():
        command = executor["container"].get("command", []) + executor["container"]["args"]
        found.add(command[command.index("--snapshot_id") + 1])
    (snapshot,) = found
    return snapshot


def steps_of(path):
    return Client().get_snapshot(snapshot_of(path)).step_configurations


def zenml_graph(path) -> set[tuple[str, str]]:
    steps = steps_of(path)
    return {(up, name) for name, step in steps.items() for up in step.spec.upstream_steps}


def test_compiling_leaves_no_run_and_no_model_version(compile_output):
    """ZenML's own `pipeline()` call leaves a placeholder run per pipeline (stuck in
    'provisioning') and a Model version per run; compiling must leave neither, so the first
    real training is version 1. The snapshots the YAML loads are there, one per file."""
    written, _, before, after = compile_output
    assert after["runs"] == before["runs"]
    assert after["model_versions"] == before["model_versions"]
    assert after["snapshots"] == before["snapshots"] + len(written)
    for name, path in written.items():
        snapshot = Client().get_snapshot(snapshot_of(path))
        assert snapshot.pipeline_configuration.name == PIPELINE_NAMES[name]
        assert Client().list_pipeline_runs(snapshot_id=snapshot.id).total == 0


@pytest.mark.parametrize("name", list(PIPELINE_NAMES))
def test_compiled_yaml_passes_kfp_checks(compiled, name, tmp_path):
    path = compiled[name]
    summary = check_pipeline_file(path)
    assert summary.tasks >= 1
    assert load_documents(path)[0]["schemaVersion"] == "2.1.0"
    assert round_trip_identical(path, tmp_path)


@pytest.mark.parametrize("name", list(PIPELINE_NAMES))
def test_kfp_task_graph_equals_zenml_graph(compiled, name):
    spec = parse_strict(load_documents(compiled[name])[0])
    display, edges = task_graph(spec)
    named_edges = {(display[a], display[b]) for a, b in edges}
    steps = steps_of(compiled[name])
    assert set(display.values()) == set(steps)  # readable task names: ZenML step names
    assert named_edges == zenml_graph(compiled[name])


@pytest.mark.parametrize("name", list(PIPELINE_NAMES))
def test_kfp_ui_description_points_to_zenml_and_mlflow(compiled, name):
    info = load_documents(compiled[name])[0]["pipelineInfo"]
    assert f"ZenML snapshot {snapshot_of(compiled[name])}" in info["description"]
    assert (
        "MLflow: http://mlflow.mlflow.svc.cluster.local:5000/#/experiments" in info["description"]
    )


def test_memory_setting_compiles_as_a_quantity(compiled):
    executors = load_documents(compiled["training"])[0]["deploymentSpec"]["executors"]
    resources = next(iter(executors.values()))["container"]["resources"]
    assert resources["resourceMemoryLimit"] == "1907Mi"  # 2GB in mebibytes


def test_no_credential_in_any_compiled_yaml(compiled):
    for path in compiled.values():
        text = path.read_text()
        assert credentials_in(load_documents(path)) == []
        assert "unset" not in text  # placeholder secret values never reach the YAML


def test_a_store_token_is_moved_to_a_secret_reference(compiled, tmp_path):
    documents = load_documents(compiled["deployment"])
    executor = next(iter(documents[0]["deploymentSpec"]["executors"].values()))
    # What ZenML writes when connected to an authenticated server:
    executor["container"]["env"].append(
        {"name": "ZENML_STORE_API_TOKEN", "value": "eyJhbGciOi.secret"}
    )
    cleaned = strip_credentials(documents, "zenml-store-credentials")
    text = yaml.safe_dump_all(cleaned)
    assert "eyJhbGciOi.secret" not in text
    (entry,) = cleaned[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
    storage, ref = entry["secretAsEnv"]  # one reference per secret, keys merged
    assert storage["secretName"] == STORAGE_SECRET  # the bucket keys (stack's storage_secret)
    assert ref["secretName"] == "zenml-store-credentials"
    assert ref["keyToEnv"] == [
        {"secretKey": "ZENML_STORE_API_KEY", "envVar": "ZENML_STORE_API_KEY"},
        {"secretKey": "ZENML_STORE_API_TOKEN", "envVar": "ZENML_STORE_API_TOKEN"},
    ]
    out = tmp_path / "with-secret.yaml"
    out.write_text(text)
    check_pipeline_file(out)  # the platform spec parses strictly too
    assert round_trip_identical(out, tmp_path)


@pytest.mark.parametrize("name", list(PIPELINE_NAMES))
def test_compiled_yaml_holds_no_path_of_this_machine(compiled, name):
    import os

    from integrations.kubeflow.compile import STORE_TOKEN_SECRET, STORE_URL_PLACEHOLDER

    text = compiled[name].read_text()
    for local in (os.environ["ZENKUBE_HOME"], os.environ["ZENML_CONFIG_PATH"], "sqlite:"):
        assert local not in text
    documents = load_documents(compiled[name])
    for executor in documents[0]["deploymentSpec"]["executors"].values():
        env = {e["name"]: e["value"] for e in executor["container"]["env"]}
        assert env["ZENML_STORE_TYPE"] == "rest"
        assert env["ZENML_STORE_URL"] == STORE_URL_PLACEHOLDER
        assert "ZENML_STORE_API_KEY" not in env  # a secret reference, not a value
    secrets = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for entry in secrets.values():
        storage, ref = entry["secretAsEnv"]
        assert storage["secretName"] == STORAGE_SECRET  # the bucket's keys, not the store's
        assert ref["secretName"] == STORE_TOKEN_SECRET
        assert ref["keyToEnv"] == [
            {"secretKey": "ZENML_STORE_API_KEY", "envVar": "ZENML_STORE_API_KEY"}
        ]


def test_zenml_url_option_is_what_the_tasks_reach(module_store, tmp_path):
    written = compile_for_kubeflow(
        tmp_path,
        echo=lambda *_: None,
        zenml_url="https://zenml.example.com",
        pipelines=["deployment"],
        require_server=False,
    )
    spec = load_documents(written["deployment"])[0]
    for executor in spec["deploymentSpec"]["executors"].values():
        env = {e["name"]: e["value"] for e in executor["container"]["env"]}
        assert env["ZENML_STORE_URL"] == "https://zenml.example.com"
    assert check_pipeline_file(written["deployment"]).tasks == 1


# What KFP's launcher fills in (kubeflow/pipelines backend/src/v2/component/launcher_v2.go,
# `compileCmdAndArgs` and `getPlaceholders`); in the command only `{{$}}`.
LAUNCHER_FILLS = re.compile(
    r"\{\{\$(\}|\.(outputs|inputs)\.artifacts\['[^']+'\]\.(path|uri)\}|"
    r"\.inputs\.parameters\['[^']+'\]\}|\.outputs\.parameters\['[^']+'\]\.output_file\})\}"
)
PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")


@pytest.mark.parametrize("name", list(PIPELINE_NAMES))
def test_every_placeholder_is_one_kfp_fills_and_the_run_id_is_the_pods_label(compiled, name):
    documents = load_documents(compiled[name])
    platform = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for label, executor in documents[0]["deploymentSpec"]["executors"].items():
        container = executor["container"]
        assert [
            p for c in container["command"] for p in PLACEHOLDER.findall(c) if p != "{{$}}"
        ] == []
        found = [p for arg in container["args"] for p in PLACEHOLDER.findall(arg)]
        assert "{{$}}" in found  # the executor input: where the executor output goes
        assert [p for p in found if not LAUNCHER_FILLS.fullmatch(p)] == []
        # KFP's driver copies env values verbatim: none may hold a placeholder.
        assert [e for e in container["env"] if "{{" in e["value"]] == []
        assert "KFP_RUN_ID" not in {e["name"] for e in container["env"]}
        assert platform[label]["fieldPathAsEnv"] == [
            {"name": "KFP_RUN_ID", "fieldPath": "metadata.labels['pipeline/runid']"}
        ]


def test_compile_names_the_image_and_warns_of_the_placeholder_default(compile_output):
    from integrations.kubeflow.compile import DEFAULT_IMAGE

    said = compile_output[1]
    assert f"zenkube: the tasks run the image {DEFAULT_IMAGE}" in said
    assert any(f"warning: {DEFAULT_IMAGE} is the placeholder default" in s for s in said)


def test_the_placeholder_image_is_the_configs_default():
    from core.paths import REPO_ROOT
    from integrations.kubeflow.compile import DEFAULT_IMAGE

    for config in (REPO_ROOT / "configs" / "kubeflow").glob("*.yaml"):
        assert f"${{ZENKUBE_IMAGE:-{DEFAULT_IMAGE}}}" in config.read_text(), config


@pytest.mark.parametrize(
    "url", ["https://user:PASSWORD@zenml.example.com", "https://PASSWORD@zenml.example.com:8080"]
)
def test_a_zenml_url_with_credentials_is_refused_before_anything_is_written(tmp_path, url):
    from core.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        compile_for_kubeflow(tmp_path, echo=lambda *_: None, zenml_url=url, require_server=False)
    message = str(refused.value)
    assert "PASSWORD" not in message and "holds credentials" in message
    assert "--zenml-url https://zenml.example.com" in message
    assert "zenml-store-credentials" in message
    assert list(tmp_path.iterdir()) == []


def test_the_loops_retraining_task_declares_the_evaluations_ui_outputs(compiled):
    """The loop's retraining saves its evaluation only when it trains; its task still has
    the boxes the evaluation fills (metrics, confusion matrix and ROC, the report)."""
    spec = load_documents(compiled["continuous_training"])[0]
    (task,) = (
        t
        for t in spec["root"]["dag"]["tasks"].values()
        if t["taskInfo"]["name"] == "retrain_if_needed"
    )
    outputs = spec["components"][task["componentRef"]["name"]]["outputDefinitions"]["artifacts"]
    assert set(outputs) == {"card", "metrics", "classification", "report"}


# -- what a pod needs to write the bucket (docs/kubeflow.md section 3) --------------------
KEY_ID, SECRET = "AKIAZENKUBEPODS3KEY1", "pod/secret+key/0123456789"
SECRETS = {
    STORAGE_SECRET: {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET},
    "zenml-store-credentials": {"ZENML_STORE_API_KEY": "key"},
}
WRITE = """
import json, sys, tempfile, pathlib
import s3fs
from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository

client_kwargs = json.loads(sys.argv[1])
folder = pathlib.Path(tempfile.mkdtemp())
(folder / "MLmodel").write_text("flavors: {}")
# MLflow with --no-serve-artifacts: the client writes the model files itself (boto3)
S3ArtifactRepository("s3://zenkube-artifacts/mlflow/1/models/m-1/artifacts").log_artifact(
    str(folder / "MLmodel")
)
# ZenML's S3 artifact store: s3fs with the store's client_kwargs and no key of its own
# (zenml/integrations/s3/artifact_stores/s3_artifact_store.py, `filesystem`)
fs = s3fs.S3FileSystem(key=None, secret=None, token=None, client_kwargs=client_kwargs)
with fs.open("zenkube-artifacts/zenml/step/output", "wb") as f:
    f.write(b"artifact")
"""


@pytest.mark.parametrize("name", list(PIPELINE_NAMES))
def test_every_task_gets_the_storage_secret_and_the_endpoint(compiled, s3, name):
    compiled = load_documents(compiled[name])
    executors = compiled[0]["deploymentSpec"]["executors"]
    assert executors
    for executor_name, executor in executors.items():
        container = executor["container"]
        env = pod_env(container, platform_config(compiled, executor_name), {"labels": {}}, SECRETS)
        assert env["AWS_ACCESS_KEY_ID"] == KEY_ID and env["AWS_SECRET_ACCESS_KEY"] == SECRET
        assert env["MLFLOW_S3_ENDPOINT_URL"] == s3.url
        values = {e["name"]: e.get("value") for e in container.get("env") or []}
        assert KEY_ID not in str(compiled) and "AWS_ACCESS_KEY_ID" not in values
        # without the Secret the kubelet would not start the pod (CreateContainerConfigError)
        with pytest.raises(TaskFailed, match=STORAGE_SECRET):
            pod_env(container, platform_config(compiled, executor_name), {"labels": {}}, {})


def test_a_pod_writes_the_bucket_with_mlflow_and_s3fs(compiled, s3, tmp_path):
    from zenml.client import Client
    from zenml.enums import StackComponentType

    compiled = load_documents(compiled["training"])
    name = next(iter(compiled[0]["deploymentSpec"]["executors"]))
    container = compiled[0]["deploymentSpec"]["executors"][name]["container"]
    env = pod_env(container, platform_config(compiled, name), {"labels": {}}, SECRETS)
    store = Client().get_stack_component(StackComponentType.ARTIFACT_STORE, "zenkube-bucket")
    client_kwargs = store.configuration["client_kwargs"]
    assert client_kwargs == {"endpoint_url": s3.url}  # the stack spec's endpoint setting
    process_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env}
    result = subprocess.run(
        [sys.executable, "-c", WRITE, json.dumps(client_kwargs)],
        env=process_env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    paths = {r["path"]: r for r in s3.requests}
    model = paths["/zenkube-artifacts/mlflow/1/models/m-1/artifacts/MLmodel"]
    artifact = paths["/zenkube-artifacts/zenml/step/output"]
    for request in (model, artifact):
        assert f"Credential={KEY_ID}/" in request["auth"]  # signed with the Secret's key
    assert artifact["body"] == b"artifact"


def test_an_empty_endpoint_leaves_aws_s3_alone(monkeypatch):
    from stacks.manage import load_spec

    monkeypatch.delenv("ZENKUBE_S3_ENDPOINT_URL", raising=False)
    spec = load_spec("kubeflow")
    (store,) = spec["components"]["artifact_store"]
    assert "client_kwargs" not in store["configuration"]  # botocore refuses endpoint ""
    (orchestrator,) = spec["components"]["orchestrator"]
    assert orchestrator["configuration"]["storage_secret"] == STORAGE_SECRET


def root_of(cli) -> str:
    return str(cli.home / "zenml")


def test_compile_on_a_local_store_refuses_in_one_sentence_and_registers_nothing(tmp_path):
    """A fresh clone (local store): `run.py compile` says to connect to a ZenML server,
    writes no file and leaves no Kubeflow stack, run or model version in the store."""
    from tests.conftest import cli_in

    cli = cli_in(tmp_path / "clone")
    out = tmp_path / "compiled"
    result = cli("compile", "--out", str(out), "--zenml-url", "https://zenml.example.com")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    (paragraph,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "local ZenML store" in paragraph
    assert "zenml login https://zenml.example.com`" in paragraph
    assert f"ZENML_CONFIG_PATH={root_of(cli)}" in paragraph  # zenkube's config, not the global one
    assert not out.exists()
    root = tmp_path / "clone"
    listed = subprocess.run(
        [sys.executable, "-c", "import json; from zenml.client import Client; c = Client(); "
         "print(json.dumps([[s.name for s in c.list_stacks(size=50).items], "
         "c.list_pipeline_runs().total, c.list_model_versions().total]))"],
        env={**__import__("os").environ, "ZENML_CONFIG_PATH": str(root / "home" / "zenml"),
             "ZENML_REPOSITORY_PATH": str(root / "repo"), "ZENKUBE_HOME": str(root / "home")},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stacks, runs, versions = json.loads(listed.stdout.strip().splitlines()[-1])
    assert not [name for name in stacks if "kubeflow" in name], stacks
    assert (runs, versions) == (0, 0)
