"""The KFP replay does what KFP's driver and launcher do, no more: it refuses a task that
would see a placeholder KFP leaves as literal text, and gives the run id through the pod
label only to tasks that ask for it with a field path."""

# No `from __future__ import annotations`: kfp reads the component's annotations.
import sys

import pytest
import yaml
from kfp import compiler, dsl, kubernetes

from tests.kfp_replay import TaskFailed, replay

WRITE = (
    "import json, pathlib, sys, os; a = dict(zip(sys.argv[1::2], sys.argv[2::2])); "
    "out = json.loads(a['--in'])['outputs']['outputFile']; "
    "pathlib.Path(a['--path']).parent.mkdir(parents=True, exist_ok=True); "
    "pathlib.Path(a['--path']).write_text(os.environ.get('RUN', '') + ' ' + a['--uri']); "
    "pathlib.Path(out).parent.mkdir(parents=True, exist_ok=True); "
    "pathlib.Path(out).write_text(json.dumps({'artifacts': {}}))"
)


def compiled(tmp_path, args, env: dict[str, str] | None = None, run_id_field: bool = False):
    @dsl.container_component
    def task(card: dsl.Output[dsl.Markdown]):
        return dsl.ContainerSpec(
            image="python:3.11", command=[sys.executable, "-c", WRITE], args=args(card)
        )

    @dsl.pipeline(name="replayed")
    def pipeline():
        step = task()
        for name, value in (env or {}).items():
            step.set_env_variable(name, value)
        if run_id_field:
            kubernetes.use_field_path_as_env(step, "RUN", "metadata.labels['pipeline/runid']")

    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def faithful(card):
    return ["--in", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER, "--path", card.path]


def test_a_task_with_launcher_placeholders_runs_and_sees_the_run_id_from_the_pod_label(tmp_path):
    documents = compiled(
        tmp_path, lambda card: [*faithful(card), "--uri", card.uri], run_id_field=True
    )
    uploads: dict = {}
    assert replay(documents, tmp_path, uploads=uploads, run_id="run-1") == ["task"]
    schema, path = uploads["task"]["card"]
    run_id, uri = path.read_text().split(" ")
    assert schema == "system.Markdown" and run_id == "run-1"
    assert uri.startswith("minio://mlpipeline/v2/artifacts/replayed/run-1/task/")
    assert uploads["task"].executor_output == {"artifacts": {}}


@pytest.mark.parametrize(
    "args,env",
    [
        # kfp's SDK names it, but KFP's launcher never fills it in
        (lambda card: [*faithful(card), "--out", dsl.PIPELINE_TASK_EXECUTOR_OUTPUT_PATH_PLACEHOLDER], None),
        (lambda card: [*faithful(card), "--job", dsl.PIPELINE_JOB_NAME_PLACEHOLDER], None),
        # KFP's driver copies env values verbatim (what ZenML does with KFP_RUN_ID)
        (faithful, {"KFP_RUN_ID": dsl.PIPELINE_JOB_NAME_PLACEHOLDER}),
    ],
)  # fmt: skip
def test_the_replay_refuses_a_placeholder_kfp_leaves_as_literal_text(tmp_path, args, env):
    documents = compiled(tmp_path, args, env)
    with pytest.raises(TaskFailed, match="placeholders KFP's launcher and driver leave") as info:
        replay(documents, tmp_path)
    assert "{{$." in str(info.value)
    assert not list(tmp_path.glob("pods/*/task/minio/**/card"))  # the task never ran


def test_a_secret_key_the_cluster_lacks_keeps_the_pod_from_starting():
    from tests.kfp_replay import pod_env

    config = {
        "secretAsEnv": [
            {"secretName": "creds", "keyToEnv": [{"secretKey": "TOKEN", "envVar": "TOKEN"}]}
        ]
    }
    assert pod_env({}, config, {}, {"creds": {"TOKEN": "t"}}) == {"TOKEN": "t"}
    with pytest.raises(TaskFailed, match="creds/TOKEN"):
        pod_env({}, config, {}, {"creds": {"KEY": "k"}})
    optional = {"secretAsEnv": [{**config["secretAsEnv"][0], "optional": True}]}
    assert pod_env({}, optional, {}, {}) == {}
