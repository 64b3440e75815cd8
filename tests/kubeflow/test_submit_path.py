"""The path a user takes after `stack up kubeflow`: `run.py train` and `monitor` for real.

A real ZenML server (its own process and identity, so ZenML counts it as remote), a real
`mlflow server`, ZenML's own Kubeflow orchestrator (zenkube's flavor) and the real `kfp`
client. Only the KFP API server's HTTP endpoint is stood in (tests/kfp_replay.py): it
records the submitted pipeline and runs its tasks as pods that reach the ZenML server
over REST and share an artifact volume, while the client waits as it would on a cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import cli_in
from tests.kfp_replay import KfpApiRecorder
from tests.mlflow_server import MlflowServer
from tests.zenml_server import ZenmlServer

MODEL = "submitted"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    with (
        ZenmlServer(root / "zenml-server") as server,
        MlflowServer(root / "mlflow") as mlflow_server,
        KfpApiRecorder(root / "kfp") as kfp,
    ):
        cli = cli_in(root / "laptop")
        env = server.client_env()
        zenml = os.path.join(os.path.dirname(sys.executable), "zenml")
        subprocess.run(
            [zenml, "secret", "create", "zenkube-mlflow", "--username=u", "--password=p"],
            env={**os.environ, **env, "ZENML_CONFIG_PATH": str(cli.home / "zenml")},
            check=True,
            capture_output=True,
        )
        spec = cluster_spec(kfp.url, root / "volume", mlflow_server.url)
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
                        "trainer": {"params": {"n_estimators": 20, "random_state": 0}},
                    },
                }
            )
        )
        yield {"cli": cli, "env": env, "kfp": kfp, "root": root, "config": config}


def cluster_spec(kfp_url: str, volume, mlflow_url: str) -> dict:
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
        "base_url": "http://seldon.invalid",
        "secret": None,
        "kubernetes_secret_name": None,
    }
    return spec


@pytest.fixture(scope="module")
def trained(cluster):
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


@pytest.fixture(scope="module")
def monitored(trained, cluster):
    assert trained.returncode == 0
    return cluster["cli"]("monitor", "--model-name", MODEL, extra_env=cluster["env"])


@pytest.fixture(scope="module")
def laptop(tmp_path_factory, cluster):
    """The same two commands on the local stack (a store of its own), for comparison."""
    cli = cli_in(tmp_path_factory.mktemp("laptop"))
    return cli("train", "--config", str(cluster["config"])), cli("monitor", "--model-name", MODEL)


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
    runs = submitted_runs(cluster["kfp"])
    assert len(runs) == 2 and runs[-1]["state"] == "SUCCEEDED", runs[-1].get("error")
    # The whole loop is one KFP run: monitoring, then the retraining steps (skipped here).
    assert runs[-1]["order"][0] == "load_reference"
    assert runs[-1]["order"][-1] == "deploy_if_promoted"


def test_schedule_on_the_kubeflow_stack_creates_a_recurring_run(trained, cluster):
    assert trained.returncode == 0
    batch = "/data/batches/current.parquet"
    result = cluster["cli"](
        "schedule",
        "--cron",
        "0 * * * *",
        "--input",
        batch,
        "--model-name",
        MODEL,
        extra_env=cluster["env"],
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Scheduled the continuous-training pipeline of 'submitted'" in result.stdout
    (recurring,) = cluster["kfp"].recurring
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 * * * *"
    spec = recurring["pipeline_spec"]
    spec = spec.get("pipeline_spec", spec)
    assert spec["pipelineInfo"]["name"].startswith("continuous-training-pipeline")
    # The parameters live in the ZenML snapshot the tasks load (on the server).
    args = next(iter(spec["deploymentSpec"]["executors"].values()))["container"]["args"]
    snapshot = args[args.index("--snapshot_id") + 1]
    script = (
        "import json; from zenml.client import Client; "
        f"s = Client().get_snapshot('{snapshot}'); "
        "print(json.dumps(s.pipeline_spec.parameters, default=str))"
    )
    read = subprocess.run(
        [sys.executable, "-c", script],
        env={
            **os.environ,
            **cluster["env"],
            "ZENML_CONFIG_PATH": str(cluster["cli"].home / "zenml"),
        },
        capture_output=True,
        text=True,
        check=True,
    )
    parameters = json.loads(read.stdout.strip().splitlines()[-1])
    assert parameters["batch"] == batch and parameters["model_name"] == MODEL
