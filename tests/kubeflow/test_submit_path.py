"""The path a user takes after `stack up kubeflow`: `run.py train` and `monitor` for real.

A real ZenML server (its own process and identity, so ZenML counts it as remote), a real
`mlflow server`, ZenML's own Kubeflow orchestrator (zenkube's flavor) and the real `kfp`
client. Only the KFP API server's HTTP endpoint is stood in (tests/kfp_replay.py): it
records the submitted pipeline and runs its tasks as pods that reach the ZenML server
over REST and share an artifact volume, while the client waits as it would on a cluster.
The deployment pod reaches a Kubernetes API stand-in (tests/kubernetes_api.py) that
records the SeldonDeployment and its Secret and serves the model with the real Seldon
runtime behind an ingress path, so `run.py deploy` smoke-tests it over REST.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from integrations.kubeflow.validate import load_documents
from tests.conftest import cli_in
from tests.kfp_replay import KfpApiRecorder, replay
from tests.kubernetes_api import KubernetesApi
from tests.mlflow_server import MlflowServer
from tests.zenml_server import ZenmlServer

MODEL = "submitted"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    with (
        ZenmlServer(root / "zenml-server") as server,
        MlflowServer(root / "mlflow", root / "volume" / "mlflow") as mlflow_server,
        KubernetesApi(root / "kubernetes", mlflow_server.url) as kubernetes,
        KfpApiRecorder(
            root / "kfp",
            pod_env={"KUBECONFIG": str(kubernetes.kubeconfig())},
            secrets=POD_SECRETS,  # the bucket keys every task gets (stack's storage_secret)
        ) as kfp,
    ):
        cli = cli_in(root / "laptop")
        env = server.client_env()
        zenml = os.path.join(os.path.dirname(sys.executable), "zenml")
        for secret in (
            ["zenkube-mlflow", "--username=u", "--password=p"],
            # What Seldon's storage initializer reads the bucket with (rclone variables).
            [SELDON_SECRET, "--rclone_config_s3_access_key_id=AKIAZENKUBEPOD0000001"],
        ):
            subprocess.run(
                [zenml, "secret", "create", *secret],
                env={**os.environ, **env, "ZENML_CONFIG_PATH": str(cli.home / "zenml")},
                check=True,
                capture_output=True,
            )
        spec = cluster_spec(kfp.url, root / "volume", mlflow_server.url, kubernetes.url)
        spec_file = root / "cluster.yaml"
        spec_file.write_text(yaml.safe_dump(spec))
        up = cli("stack", "up", str(spec_file), extra_env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        config = root / "training.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "enable_cache": False,
                    "parameters": {
                        "model_name": MODEL,
                        "trainer": {"params": {"max_iter": 20, "random_state": 0}},
                    },
                }
            )
        )
        yield {
            "cli": cli,
            "env": env,
            "kfp": kfp,
            "kubernetes": kubernetes,
            "root": root,
            "config": config,
        }


SELDON_SECRET = "seldon-rclone"
# The Kubernetes Secret in KFP's namespace every task reads the bucket keys from
# (docs/kubeflow.md section 3); a pod whose Secret is missing would not start.
POD_SECRETS = {
    "zenkube-s3": {"AWS_ACCESS_KEY_ID": "AKIAZENKUBEPOD0000001", "AWS_SECRET_ACCESS_KEY": "s"}
}


def cluster_spec(kfp_url: str, volume, mlflow_url: str, kubernetes_url: str) -> dict:
    """stacks/kubeflow.yaml with this machine's stand-ins for the cluster's endpoints."""
    from stacks.manage import STACKS_DIR

    spec = yaml.safe_load((STACKS_DIR / "kubeflow.yaml").read_text())
    spec["stack_name"] = "test-cluster"
    comps = spec["components"]
    comps["orchestrator"][0]["configuration"] = {"kubeflow_hostname": kfp_url}
    comps["artifact_store"][0].update(flavor="shared_volume", configuration={"path": str(volume)})
    comps["experiment_tracker"][0]["configuration"]["tracking_uri"] = mlflow_url
    comps["container_registry"][0]["configuration"] = {"uri": "localhost:5000/zenkube"}
    comps["model_deployer"][0]["configuration"] = {
        "kubernetes_namespace": "zenkube",
        "base_url": kubernetes_url,  # the ingress in front of Seldon
        "secret": SELDON_SECRET,
        "kubernetes_secret_name": None,
    }
    return spec


@pytest.fixture(scope="module")
def trained(cluster, laptop_runs):
    result = cluster["cli"]("train", "--config", str(cluster["config"]), extra_env=cluster["env"])
    return result


def submitted_runs(kfp: KfpApiRecorder) -> list[dict]:
    return list(kfp.runs.values())


def test_train_on_the_kubeflow_stack_submits_through_kfp_and_pods_report_over_rest(
    trained, cluster
):
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    assert "Traceback" not in trained.stdout + trained.stderr
    assert "Promoted:     yes" in trained.stdout
    (run,) = submitted_runs(cluster["kfp"])
    assert run["state"] == "SUCCEEDED", run.get("error")
    assert run["order"][0] == "load_data" and run["order"][-1] == "promote_if_better"
    documents = cluster["kfp"].documents(run["run_id"])
    executors = documents[0]["deploymentSpec"]["executors"]
    for executor in executors.values():
        env = {e["name"]: e.get("value") for e in executor["container"]["env"]}
        assert env["ZENML_STORE_URL"] == cluster["env"]["ZENML_STORE_URL"]
        assert env["ZENML_STORE_TYPE"] == "rest"
        # The memory setting of configs/kubeflow/training.yaml survived the submit path.
        assert executor["container"]["resources"]["resourceMemoryLimit"] == "1907Mi"
    assert "sqlite" not in yaml.safe_dump(documents)


def test_the_kfp_ui_shows_metrics_reports_and_links_for_each_task(trained, cluster):
    assert trained.returncode == 0
    (run,) = submitted_runs(cluster["kfp"])
    uploads = run["uploads"]
    evaluation = uploads["evaluate_model"]
    assert {k: v[0] for k, v in evaluation.items()} == {
        "card": "system.Markdown",
        "metrics": "system.Metrics",
        "classification": "system.ClassificationMetrics",
        "report": "system.HTML",
    }
    # Metrics reach KFP as artifact metadata, through the executor output file.
    outputs = evaluation.executor_output["artifacts"]
    metrics = outputs["metrics"]["artifacts"][0]["metadata"]
    f1 = float(line(trained.stdout, "Test metrics:").split("f1=")[1].split()[0].rstrip(","))
    assert round(metrics["f1"], 4) == f1 and metrics["rows"] > 50
    assert "storage_size" not in metrics  # model and data figures only
    matrix = outputs["classification"]["artifacts"][0]["metadata"]["confusionMatrix"]
    assert [a["displayName"] for a in matrix["annotationSpecs"]] == ["0", "1"]
    assert sum(sum(r["row"]) for r in matrix["rows"]) == metrics["rows"]
    roc = outputs["classification"]["artifacts"][0]["metadata"]["confidenceMetrics"]
    assert roc[0]["falsePositiveRate"] == 0 and roc[-1]["recall"] == 1
    report = evaluation["report"][1].read_text()
    assert "Confusion matrix" in report and "test rows" in report
    card = evaluation["card"][1].read_text()
    assert (
        "**ZenML run:**" in card
        and f"experiment 'training_pipeline' at {mlflow_link(cluster)}" in card
    )
    # Every task has its card; the gate's card says what it decided and why.
    assert set(uploads) == set(run["order"])
    gate = uploads["promote_if_better"]["card"][1].read_text()
    assert "**promoted:** True" in gate and "**reason:** f1=" in gate
    model = uploads["register_model"]["card"][1].read_text()
    assert f"**MLflow run:** {mlflow_link(cluster)}/#/experiments/" in model
    assert f"**MLflow model:** {mlflow_link(cluster)}/#/models/{MODEL}/versions/1" in model


def mlflow_link(cluster) -> str:
    spec = yaml.safe_load((cluster["root"] / "cluster.yaml").read_text())
    return spec["components"]["experiment_tracker"][0]["configuration"]["tracking_uri"]


@pytest.fixture(scope="module")
def deployed(trained, cluster):
    assert trained.returncode == 0
    return cluster["cli"]("deploy", "--model-name", MODEL, extra_env=cluster["env"])


def test_deploy_on_the_kubeflow_stack_creates_a_seldon_deployment_that_answers(deployed, cluster):
    result = deployed
    errors = [r.get("error", "")[-4000:] for r in submitted_runs(cluster["kfp"])]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + str(errors)
    runs = [r for r in submitted_runs(cluster["kfp"]) if r.get("order") == ["deploy_champion"]]
    assert len(runs) == 1 and runs[0]["state"] == "SUCCEEDED", runs[0].get("error")
    kubernetes = cluster["kubernetes"]
    (deployment,) = kubernetes.deployments()
    (secret,) = kubernetes.secrets()
    graph = deployment["spec"]["predictors"][0]["graph"]
    assert graph["implementation"] == "MLFLOW_SERVER"
    assert graph["envSecretRefName"] == secret["metadata"]["name"]
    assert "RCLONE_CONFIG_S3_ACCESS_KEY_ID" in secret["data"]
    assert "AKIAZENKUBEPOD0000001" not in json.dumps(deployment)
    assert deployment["status"]["state"] == "Available"
    name = deployment["metadata"]["name"]
    # The endpoint ZenML reports is the ingress path, and the real Seldon runtime answered.
    endpoint = f"{kubernetes.url}/seldon/zenkube/{name}/api/v0.1/predictions"
    assert f"Endpoint:     {endpoint}" in result.stdout
    smoke = line(result.stdout, "Smoke test:")
    assert smoke.startswith("Smoke test:   3 rows → [") and "Traceback" not in result.stdout


@pytest.fixture(scope="module")
def monitored(trained, cluster):
    assert trained.returncode == 0
    return cluster["cli"]("monitor", "--model-name", MODEL, extra_env=cluster["env"])


@pytest.fixture(scope="module")
def laptop_runs(tmp_path_factory, cluster):
    """The same two commands on the local stack (a store of its own), for comparison.

    Started before the cluster's `train` and run beside it (they share only the config
    file): most of the cluster's time is its pods waiting on the servers, so the laptop's
    two commands no longer add their two minutes to the module."""
    cli = cli_in(tmp_path_factory.mktemp("laptop"))
    config = str(cluster["config"])
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(
            lambda: (cli("train", "--config", config), cli("monitor", "--model-name", MODEL))
        )


@pytest.fixture(scope="module")
def laptop(laptop_runs):
    return laptop_runs.result()


def line(output: str, prefix: str) -> str:
    return next(x for x in output.splitlines() if x.startswith(prefix))


def test_pods_reach_the_numbers_and_decisions_of_the_local_stack(trained, monitored, laptop):
    local_train, local_monitor = laptop
    assert local_train.returncode == 0 and local_monitor.returncode == 0
    assert line(trained.stdout, "Test metrics:") == line(local_train.stdout, "Test metrics:")
    for prefix in ("Drift:", "Quality:", "Decision:"):
        assert line(monitored.stdout, prefix) == line(local_monitor.stdout, prefix)


def test_monitor_on_the_kubeflow_stack_runs_in_pods_too(monitored, cluster):
    result = monitored
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Decision:     no threshold breached" in result.stdout
    assert "– deploy_if_promoted skipped" not in result.stdout  # steps print in the pods
    runs = [r for r in submitted_runs(cluster["kfp"]) if "load_reference" in r.get("order", [])]
    assert len(runs) == 1 and runs[0]["state"] == "SUCCEEDED", runs[0].get("error")
    # The whole loop is one KFP run: monitoring, then the retraining steps (skipped here).
    assert runs[0]["order"][0] == "load_reference"
    assert runs[0]["order"][-2:] == ["deploy_if_promoted", "record_outcome"]
    outcome = runs[0]["uploads"]["record_outcome"]["card"][1].read_text()
    assert "- **outcome:** nothing to do" in outcome
    # Its drift step shows the drift report and the drift figures in the KFP UI.
    drift = runs[0]["uploads"]["detect_drift"]
    assert (
        "drift_share" in drift.executor_output["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    )
    assert "<html" in drift["report"][1].read_text().lower()


def zenml_script(cluster, script: str):
    """Run `script` against the ZenML server as the user (with `json` and ZenML's `Client`
    imported); its last line is JSON."""
    read = subprocess.run(
        [sys.executable, "-c", "import json; from zenml.client import Client; " + script],
        env={
            **os.environ,
            **cluster["env"],
            "ZENML_CONFIG_PATH": str(cluster["cli"].home / "zenml"),
        },
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(read.stdout.strip().splitlines()[-1])


def pipeline_spec(recurring: dict) -> dict:
    """A recurring run's pipeline spec (KFP nests it under `pipeline_spec` or not)."""
    spec = recurring["pipeline_spec"]
    return spec.get("pipeline_spec", spec)


def snapshot_of(spec: dict) -> str:
    """The ZenML snapshot a compiled pipeline's tasks load (their `--snapshot_id`)."""
    args = next(iter(spec["deploymentSpec"]["executors"].values()))["container"]["args"]
    return args[args.index("--snapshot_id") + 1]


@pytest.fixture(scope="module")
def scheduled(trained, cluster):
    assert trained.returncode == 0
    from sklearn.datasets import load_breast_cancer

    # Unlabelled held-out rows in the bucket the pods read: no alert, nothing to retrain.
    batch = cluster["root"] / "volume" / "batches" / "scheduled.parquet"
    batch.parent.mkdir(parents=True, exist_ok=True)
    rows = load_breast_cancer(as_frame=True).frame.drop(columns="target")
    rows.sample(100, random_state=7).to_parquet(batch)
    result = cluster["cli"](
        "schedule",
        "--cron",
        "0 * * * *",
        "--input",
        str(batch),
        "--model-name",
        MODEL,
        extra_env=cluster["env"],
    )
    return result, str(batch)


def test_schedule_on_the_kubeflow_stack_creates_a_recurring_run(scheduled, cluster):
    result, batch = scheduled
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Scheduled the continuous-training pipeline of 'submitted'" in result.stdout
    (recurring,) = cluster["kfp"].recurring
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 * * * *"
    spec = pipeline_spec(recurring)
    assert spec["pipelineInfo"]["name"].startswith("continuous-training-pipeline")
    # The parameters live in the ZenML snapshot the tasks load (on the server).
    snapshot = snapshot_of(spec)
    parameters = zenml_script(
        cluster,
        f"s = Client().get_snapshot('{snapshot}'); "
        "print(json.dumps(s.pipeline_spec.parameters, default=str))",
    )
    assert parameters["batch"] == batch and parameters["model_name"] == MODEL


def test_two_runs_of_one_schedule_are_two_zenml_runs_with_their_own_artifacts(scheduled, cluster):
    """KFP starts each scheduled run with the same pipeline spec (one ZenML snapshot) and a
    new run id on the pods' `pipeline/runid` label; each is its own ZenML run. (The first
    two tasks of each run are enough to show it: the run's identity is settled by its first
    task, and the whole loop runs in pods in the monitor test above.)"""
    assert scheduled[0].returncode == 0
    kfp = cluster["kfp"]
    (recurring,) = kfp.recurring
    started = [kfp.trigger(recurring, tasks=2), kfp.trigger(recurring, tasks=2)]
    for run_id in started:
        run = kfp.wait(run_id)
        assert run["state"] == "SUCCEEDED", run.get("error", "")[-4000:]
    first = kfp.runs[started[0]]["order"][0]
    snapshot = snapshot_of(pipeline_spec(recurring))
    runs = zenml_script(
        cluster,
        f"runs = Client().list_pipeline_runs(snapshot_id='{snapshot}', hydrate=True).items; "
        "print(json.dumps([{'id': str(r.id), 'orchestrator_run_id': r.orchestrator_run_id, "
        "'steps': sorted(r.steps), 'outputs': sorted(str(a.id) for s in r.steps.values() "
        "for v in s.outputs.values() for a in v)} for r in runs]))",
    )
    assert sorted(r["orchestrator_run_id"] for r in runs) == sorted(started)
    assert len({r["id"] for r in runs}) == 2
    for run in runs:
        assert run["steps"] == sorted(kfp.runs[started[0]]["order"]) and run["outputs"]
    assert not set(runs[0]["outputs"]) & set(runs[1]["outputs"])  # their own artifacts
    # Each run's KFP UI card names its own ZenML run.
    for run_id in started:
        card = kfp.runs[run_id]["uploads"][first]["card"][1].read_text()
        (zenml_run,) = [r for r in runs if r["orchestrator_run_id"] == run_id]
        assert f"(id `{zenml_run['id']}`)" in card


def test_the_compiled_monitoring_yaml_runs_as_uploaded_with_a_service_account_key(trained, cluster):
    """The alert-only monitoring pipeline, compiled for this model and run as KFP would."""
    assert trained.returncode == 0
    from sklearn.datasets import load_breast_cancer

    root, env = cluster["root"], cluster["env"]
    zenml = os.path.join(os.path.dirname(sys.executable), "zenml")
    key_file = root / "kfp-pods.key"
    subprocess.run(
        [zenml, "service-account", "create", "kfp-pods", "--output-file", str(key_file)],
        env={**os.environ, **env, "ZENML_CONFIG_PATH": str(cluster["cli"].home / "zenml")},
        capture_output=True,
        text=True,
        check=True,
    )
    api_key = key_file.read_text().strip()
    out = root / "compiled"
    result = cluster["cli"](
        "compile",
        "--stack",
        str(root / "cluster.yaml"),
        "--model-name",
        MODEL,
        "--pipeline",
        "monitoring",
        "--out",
        str(out),
        extra_env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"Registered on the ZenML server {env['ZENML_STORE_URL']}" in result.stdout
    # Compiling left no run (ZenML's placeholder run would sit in 'provisioning' forever);
    # the snapshot the YAML loads is on the server, and the KFP run below makes the one run.
    snapshot = snapshot_of(load_documents(out / "monitoring.yaml")[0])
    count_runs = (
        f"runs = Client().list_pipeline_runs(snapshot_id='{snapshot}').items; "
        "print(json.dumps([str(r.status) for r in runs]))"
    )
    assert zenml_script(cluster, count_runs) == []
    batch = (
        load_breast_cancer(as_frame=True).frame.drop(columns="target").sample(120, random_state=1)
    )
    (root / "volume" / "batches").mkdir(parents=True, exist_ok=True)
    batch.to_parquet(root / "volume" / "batches" / "current.parquet")
    uploads: dict = {}
    order = replay(
        load_documents(out / "monitoring.yaml"),
        root / "uploaded",
        {"KUBECONFIG": str(root / "kubernetes" / "kubeconfig")},
        uploads,
        # The Kubernetes Secret the YAML's secretAsEnv names (docs/kubeflow.md).
        secrets={**POD_SECRETS, "zenml-store-credentials": {"ZENML_STORE_API_KEY": api_key}},
    )
    assert order[0] == "load_reference" and "decide_action" in order
    assert "deploy_if_promoted" not in order  # alert only
    drift = uploads["detect_drift"].executor_output["artifacts"]["metrics"]["artifacts"][0]
    assert drift["metadata"]["current_rows"] == 120
    decision = uploads["decide_action"]["card"][1].read_text()
    assert "**alert:** False" in decision
    assert zenml_script(cluster, count_runs) == ["completed"]


def test_release_schedule_is_a_recurring_run_whose_pods_judge_the_release(cluster):
    """`release schedule` on the Kubeflow stack: a recurring run of the release-check
    pipeline (the cluster's release watcher); a run KFP starts at its cron time runs the
    check in a pod, against the ZenML server and the Kubernetes API the pods reach. No
    release of the model runs here, so the run ends idle, changing nothing. (Last in this
    module: the tests above count the loop's recurring run alone.)"""
    kfp, before = cluster["kfp"], len(cluster["kfp"].recurring)
    result = cluster["cli"](
        "release", "schedule", "--cron", "*/5 * * * *", "--model-name", MODEL,
        extra_env=cluster["env"],
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"Scheduled the release-check pipeline of '{MODEL}'" in result.stdout
    recurring = kfp.recurring[before]
    assert recurring["trigger"]["cron_schedule"]["cron"] == "*/5 * * * *"
    spec = pipeline_spec(recurring)
    assert spec["pipelineInfo"]["name"].startswith("release-check-pipeline")
    run = kfp.wait(kfp.trigger(recurring))
    assert run["state"] == "SUCCEEDED", run.get("error")
    assert run["order"] == ["check_release"]
    said = zenml_script(
        cluster,
        "run = Client().get_pipeline('release_check_pipeline').last_run; "
        "step = run.steps['check_release']; "
        "print(json.dumps([str(run.status), str(step.status), len(step.outputs['release_check'])]))",
    )
    assert said == ["completed", "completed", 1]
