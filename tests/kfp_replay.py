"""Run a compiled KFP pipeline's tasks as KFP's driver and launcher would, and a recorder
standing in for KFP's API.

`replay` runs each task's command, args and env from the YAML, in topological order, in
a fresh process with a fresh working directory and ZENML_CONFIG_PATH (the image's code on
PYTHONPATH). What KFP does to a task on its way to the container, and no more, from
kubeflow/pipelines (backend, 2.15 through master):

- the driver provisions the task's outputs (backend/src/v2/driver/driver.go,
  `provisionOutputs`): each declared output artifact gets the URI
  `<pipeline root>/<task>/<salt>/<name>`, and the executor output file is
  `output_metadata.json` in the task root's local path (KFP 2.4-2.14 used the fixed
  `/tmp/kfp_outputs/output_metadata.json`; a task that reads `outputs.outputFile` of its
  executor input works with both);
- env values are copied verbatim (driver.go `initPodSpecPatch`, the loop over
  `container.GetEnv()`): a `{{$…}}` in an env value is never filled in;
- the platform spec's `secretAsEnv` and `fieldPathAsEnv` become `secretKeyRef` and
  `fieldRef` env (backend/src/v2/driver/k8s.go); a `secretKeyRef` to a Secret or key the
  cluster lacks keeps the pod from starting (unless `optional`), so the replay fails
  the task; the kubelet resolves a `fieldRef` from
  the pod's metadata, and every pod of a run is labelled `pipeline/runid=<run id>`
  (backend/src/common/util/consts.go `LabelKeyWorkflowRunId`, set as pod metadata by
  apiserver/template/v2_template.go and by the ScheduledWorkflow controller,
  crd/controller/scheduledworkflow/util/scheduled_workflow.go);
- the launcher fills in placeholders (backend/src/v2/component/launcher_v2.go,
  `compileCmdAndArgs` with `getPlaceholders`): `{{$}}` (the executor input as JSON) in the
  command and args; in the args only, output artifacts' `uri`/`path`, input artifacts'
  `uri`/`path`, input parameters and output parameters' `output_file`. Anything else
  (`{{$.outputs.output_file}}`, `{{$.pipeline_job_name}}`, ...) reaches the container as
  literal text, so the replay refuses a task that holds one, in its command, args or env;
- after the task the launcher reads the executor output file (`getExecutorOutputFile`)
  and uploads every declared output artifact from its local path (a missing file fails
  the task here; KFP only warns, but then the UI shows nothing).

`KfpApiRecorder` answers the few KFP API calls the `kfp` client makes to submit a run
(experiments, runs, recurring runs), records them, and runs each submitted pipeline with
`replay` while the client polls, as a cluster would; `trigger` starts a run of a recurring
run as the ScheduledWorkflow controller does (a new run id each time).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

from integrations.kubeflow.validate import parse_strict, task_graph, topological_order
from tests.conftest import REPO_ROOT

# backend/src/v2/config/env.go `defaultPipelineRoot`; the run's root adds pipeline and run.
DEFAULT_PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"
# backend/src/common/util/consts.go `LabelKeyWorkflowRunId`.
RUN_ID_LABEL = "pipeline/runid"
PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")
FIELD_LABEL = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


class TaskFailed(AssertionError):
    pass


class Uploaded(dict):
    """What the launcher would upload for one task: artifact name -> (schema title, file)."""

    executor_output: dict


def local_path_for_uri(uri: str, pod: Path) -> Path:
    """launcher_v2.go `LocalPathForURI` (minio:// -> /minio/...), under the pod's root."""
    for scheme, mount in (("gs://", "gcs"), ("minio://", "minio"), ("s3://", "s3")):
        if uri.startswith(scheme):
            return pod / mount / uri.removeprefix(scheme)
    raise TaskFailed(f"unsupported storage scheme: {uri}")


def executor_input(component: dict, pipeline_root: str, task: str, pod: Path) -> dict:
    """The ExecutorInput the driver writes for a task without inputs (`provisionOutputs`)."""
    if component.get("inputDefinitions"):
        raise TaskFailed(f"task {task}: component inputs are not stood in by this replay")
    task_root = f"{pipeline_root.rstrip('/')}/{task}/{uuid.uuid4()}"
    outputs: dict = {"artifacts": {}}
    for name, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items():
        outputs["artifacts"][name] = {
            "artifacts": [
                {
                    "name": name,
                    "uri": f"{task_root}/{name}",
                    "type": {"schemaTitle": definition["artifactType"]["schemaTitle"]},
                }
            ]
        }
    if component.get("outputDefinitions", {}).get("parameters"):
        raise TaskFailed(f"task {task}: output parameters are not stood in by this replay")
    outputs["outputFile"] = str(local_path_for_uri(task_root, pod) / "output_metadata.json")
    return {"inputs": {}, "outputs": outputs}


def launcher_placeholders(executor_in: dict, pod: Path) -> dict[str, str]:
    """launcher_v2.go `getPlaceholders` for a task without inputs: output artifacts only."""
    values = {}
    for name, artifacts in executor_in["outputs"]["artifacts"].items():
        uri = artifacts["artifacts"][0]["uri"]
        values[f"{{{{$.outputs.artifacts['{name}'].uri}}}}"] = uri
        values[f"{{{{$.outputs.artifacts['{name}'].path}}}}"] = str(local_path_for_uri(uri, pod))
    return values


def compile_cmd_and_args(
    executor_in: dict, values: dict[str, str], command: list[str], args: list[str]
) -> tuple[list[str], list[str]]:
    """launcher_v2.go `compileCmdAndArgs`: `{{$}}` everywhere, the other values in args only.

    (It builds the command from `{{$}}` alone: its loop over the placeholders rewrites a
    copy of the command that is then dropped.)
    """
    as_json = json.dumps(executor_in)
    command = [part.replace("{{$}}", as_json) for part in command]
    compiled = []
    for arg in args:
        arg = arg.replace("{{$}}", as_json)
        for placeholder, value in values.items():
            arg = arg.replace(placeholder, value)
        compiled.append(arg)
    return command, compiled


def left_alone(task: str, command: list[str], args: list[str], env: dict[str, str]) -> None:
    """Refuse a task that would see a placeholder KFP does not fill in."""
    found = [p for part in [*command, *args] for p in PLACEHOLDER.findall(part)]
    found += [f"env {k}={v}" for k, v in env.items() if PLACEHOLDER.search(v)]
    if found:
        raise TaskFailed(
            f"task {task}: placeholders KFP's launcher and driver leave as literal text "
            f"(launcher_v2.go compileCmdAndArgs/getPlaceholders, driver.go env copy): {found}"
        )


def resolve_field_path(field_path: str, pod_metadata: dict) -> str:
    """What the kubelet puts in a `fieldRef` env (an absent label or annotation: "")."""
    match = FIELD_LABEL.match(field_path)
    if match:
        return pod_metadata.get(match.group(1), {}).get(match.group(2), "")
    if field_path in ("metadata.name", "metadata.namespace"):
        return pod_metadata[field_path.split(".")[1]]
    raise TaskFailed(f"fieldRef {field_path!r} is not stood in by this replay")


def platform_config(documents: list[dict], executor: str) -> dict:
    platform = documents[1] if len(documents) > 1 else {}
    executors = (platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {})).get(
        "executors", {}
    )
    return executors.get(executor, {})


def pod_env(container: dict, config: dict, pod_metadata: dict, secrets: dict) -> dict[str, str]:
    """The task's env as the driver writes it and the kubelet resolves it."""
    env = {item["name"]: item.get("value", "") for item in container.get("env", [])}
    for ref in config.get("secretAsEnv", []):
        values = secrets.get(ref["secretName"], {})
        for key in ref["keyToEnv"]:
            if key["secretKey"] in values:
                env[key["envVar"]] = values[key["secretKey"]]
            elif not ref.get("optional"):
                # The kubelet does not start a container whose non-optional secretKeyRef
                # names a missing Secret or key (CreateContainerConfigError; kubernetes
                # pkg/kubelet/kubelet_pods.go `makeEnvironmentVariables`).
                raise TaskFailed(
                    f"secretKeyRef {ref['secretName']}/{key['secretKey']}: the Secret "
                    f"has no such key (it has {sorted(values)}); the pod would not start"
                )
    for field in config.get("fieldPathAsEnv", []):
        env[field["name"]] = resolve_field_path(field["fieldPath"], pod_metadata)
    return env


def uploaded(executor_in: dict, pod: Path, task: str) -> Uploaded:
    result = Uploaded()
    for name, artifacts in executor_in["outputs"]["artifacts"].items():
        artifact = artifacts["artifacts"][0]
        path = local_path_for_uri(artifact["uri"], pod)
        if not path.is_file():
            raise TaskFailed(f"task {task}: output artifact '{name}' was not written ({path})")
        result[name] = (artifact["type"]["schemaTitle"], path)
    output_file = Path(executor_in["outputs"]["outputFile"])
    result.executor_output = json.loads(output_file.read_text()) if output_file.is_file() else {}
    return result


def replay(
    documents: list[dict],
    root: Path,
    extra_env: dict | None = None,
    uploads: dict[str, Uploaded] | None = None,
    run_id: str | None = None,
    secrets: dict[str, dict[str, str]] | None = None,
    tasks: int | None = None,
) -> list[str]:
    """Run every task of the compiled pipeline as a pod would; return the task order.

    `extra_env` is what every pod of the cluster has (e.g. how to reach the Kubernetes
    API or a key); `uploads`, when given, receives what each task's launcher would upload
    (by task name); `run_id` is the KFP run's id (a new one by default). `tasks` stops
    after that many tasks, as a run still in progress (a test's saving, not KFP's).
    """
    spec = parse_strict(documents[0])
    display, edges = task_graph(spec)
    executors = documents[0]["deploymentSpec"]["executors"]
    run_id = run_id or str(uuid.uuid4())
    pipeline_root = f"{DEFAULT_PIPELINE_ROOT}/{spec.pipeline_info.name}/{run_id}"
    order = topological_order(set(display), edges)[:tasks]
    for task in order:
        component_name = documents[0]["root"]["dag"]["tasks"][task]["componentRef"]["name"]
        component = documents[0]["components"][component_name]
        executor = component["executorLabel"]
        container = executors[executor]["container"]
        pod = root / "pods" / run_id / task
        pod.mkdir(parents=True)
        metadata = {
            "name": f"{spec.pipeline_info.name}-{task}"[:63],
            "namespace": "kubeflow",
            "labels": {RUN_ID_LABEL: run_id},
            "annotations": {},
        }
        env = pod_env(container, platform_config(documents, executor), metadata, secrets or {})
        executor_in = executor_input(component, pipeline_root, task, pod)
        command, args = compile_cmd_and_args(
            executor_in,
            launcher_placeholders(executor_in, pod),
            container["command"],
            container.get("args", []),
        )
        left_alone(task, command, args, env)
        process_env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(pod),
            # the image's code: in a pod it sits in the image's working directory
            "PYTHONPATH": str(REPO_ROOT),
            "ZENML_CONFIG_PATH": str(pod / "zenml-config"),
            **(extra_env or {}),
            **env,
        }
        result = subprocess.run(
            command + args,
            cwd=pod,
            env=process_env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise TaskFailed(
                f"task {task} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
            )
        if uploads is not None:
            uploads[display[task]] = uploaded(executor_in, pod, task)
    return [display[t] for t in order]


class KfpApiRecorder:
    """The KFP API server's HTTP endpoint, stood in on 127.0.0.1 (see the module doc)."""

    def __init__(
        self,
        root: Path,
        secrets: dict[str, dict[str, str]] | None = None,
        pod_env: dict[str, str] | None = None,
    ):
        self.root = root
        # What every pod of the cluster has (e.g. how to reach the Kubernetes API).
        self.pod_env = pod_env or {}
        self.requests: list[tuple[str, str, dict]] = []
        self.runs: dict[str, dict] = {}
        self.recurring: list[dict] = []
        # Kubernetes Secrets the pods get as env (secretAsEnv in the platform spec).
        self.secrets = secrets or {}
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}") if length else {}

            def do_GET(self):
                path = urlparse(self.path).path
                recorder.requests.append(("GET", self.path, {}))
                if path.endswith("/experiments"):
                    return self._reply(200, {})
                if "/runs/" in path:
                    run = recorder.runs.get(path.rsplit("/", 1)[-1])
                    if run is None:
                        return self._reply(404, {"error": "no such run"})
                    return self._reply(200, {"run_id": run["run_id"], "state": run["state"]})
                return self._reply(200, {})

            def do_POST(self):
                path = urlparse(self.path).path
                body = self._body()
                recorder.requests.append(("POST", self.path, body))
                if path.endswith("/experiments"):
                    return self._reply(200, {**body, "experiment_id": "exp-1"})
                if path.endswith("/recurringruns"):
                    recorder.recurring.append(body)
                    return self._reply(200, {**body, "recurring_run_id": "rr-1"})
                if path.endswith("/runs"):
                    run_id = str(uuid.uuid4())
                    recorder.runs[run_id] = {"run_id": run_id, "state": "RUNNING", "body": body}
                    threading.Thread(target=recorder._execute, args=(run_id,), daemon=True).start()
                    return self._reply(200, {**body, "run_id": run_id, "state": "RUNNING"})
                return self._reply(404, {"error": f"not stood in: {path}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def documents(self, run_id: str) -> list[dict]:
        spec = self.runs[run_id]["body"]["pipeline_spec"]
        if "pipeline_spec" in spec:  # with a platform spec, kfp nests both
            return [spec["pipeline_spec"], spec.get("platform_spec") or {}]
        return [spec]

    def trigger(self, recurring: dict, tasks: int | None = None) -> str:
        """Start a run of a recurring run, as KFP's ScheduledWorkflow controller does at its
        cron time: the recorded pipeline spec, a new run id (scheduled_workflow.go
        `NewWorkflow`). Returns the run id; `wait` waits for it. `tasks`: see `replay`."""
        run_id = str(uuid.uuid4())
        self.runs[run_id] = {
            "run_id": run_id,
            "state": "RUNNING",
            "body": {"pipeline_spec": recurring["pipeline_spec"]},
            "recurring": True,
        }
        self.runs[run_id]["thread"] = threading.Thread(
            target=self._execute, args=(run_id, tasks), daemon=True
        )
        self.runs[run_id]["thread"].start()
        return run_id

    def wait(self, run_id: str, timeout: float = 900) -> dict:
        self.runs[run_id]["thread"].join(timeout)
        return self.runs[run_id]

    def _execute(self, run_id: str, tasks: int | None = None) -> None:
        run = self.runs[run_id]
        try:
            documents = self.documents(run_id)
            run["uploads"] = {}
            run["order"] = replay(
                documents, self.root, self.pod_env, run["uploads"], run_id, self.secrets, tasks
            )
            run["state"] = "SUCCEEDED"
        except Exception as exc:  # reported through the run's state, as KFP does
            run["error"] = str(exc)
            run["state"] = "FAILED"

    def __enter__(self) -> KfpApiRecorder:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
